#!/usr/bin/env bash
# The whole pipeline on the built-in synthetic EN->DE corpus, on CPU:
#   make corpus -> prepare (SentencePiece, binarize) -> train baseline, ContextPool and
#   ContextPool with fewer encoder layers -> average checkpoints -> BLEU -> report.
# `make demo` runs it with the defaults (about 15 minutes on 2 CPU cores). Re-running it
# skips every finished step (corpus, data, finished trainings, scored checkpoints).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/run_demo.sh [options]

  --out DIR            where corpus, data, runs and the report go    [runs/demo]
  --train-pairs N      synthetic training pairs                      [20000]
  --test-pairs N       synthetic valid and test pairs (each)         [500]
  --vocab-size N       joint SentencePiece vocabulary                [2000]
  --epochs N           training epochs per model                     [5]
  --avg N              average the last N epoch checkpoints          [2]
  --dim N              embedding size (ffn = 2 x dim)                [128]
  --layers N           encoder and decoder layers of the full models [3]
  --fewer-layers N     encoder layers of the cheaper ContextPool run [1]
  --jobs J             models trained at once                        [1]
  --force              start again from nothing (deletes DIR)

Runs: baseline = transformer_tiny, contextpool = contextpool_transformer_tiny, both with
--layers layers; contextpool_fewer has --fewer-layers encoder layers. The model size is set
on top of the tiny architectures so that the demo trains in minutes. The training, scoring and
report steps are scripts/run_comparison.sh.
USAGE
}

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$REPO/runs/demo" TRAIN_PAIRS=20000 TEST_PAIRS=500 VOCAB=2000 EPOCHS=5 AVG=2
DIM=128 LAYERS=3 FEWER=1 JOBS=1 FORCE=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --train-pairs) TRAIN_PAIRS="$2"; shift 2 ;;
    --test-pairs) TEST_PAIRS="$2"; shift 2 ;;
    --vocab-size) VOCAB="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --avg) AVG="$2"; shift 2 ;;
    --dim) DIM="$2"; shift 2 ;;
    --layers) LAYERS="$2"; shift 2 ;;
    --fewer-layers) FEWER="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_demo.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

source "$REPO/scripts/lib/python.sh"

[[ "$FORCE" == 1 ]] && rm -rf "$OUT"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
DATA="$OUT/data" INPUT="$OUT/corpus"
START=$SECONDS

printf '== [%s] synthetic EN->DE corpus (%s train pairs) -> %s\n' "$(date +%H:%M:%S)" "$TRAIN_PAIRS" "$INPUT"
if [[ -f "$INPUT/.done" ]]; then
  echo "already there"
else
  cpmt-make-demo-corpus --out "$INPUT" \
    --train "$TRAIN_PAIRS" --valid "$TEST_PAIRS" --test "$TEST_PAIRS"
  touch "$INPUT/.done"
fi

printf '\n== [%s] prepare: clean, SentencePiece (%s pieces), binarize -> %s\n' "$(date +%H:%M:%S)" "$VOCAB" "$DATA"
cpmt-prepare-corpus --input "$INPUT" --src en --tgt de --out "$DATA" \
  --vocab-size "$VOCAB" --workers "$(nproc 2>/dev/null || echo 2)"
echo

MODEL=(--encoder-layers "$LAYERS" --decoder-layers "$LAYERS"
  --encoder-embed-dim "$DIM" --decoder-embed-dim "$DIM"
  --encoder-ffn-embed-dim $((2 * DIM)) --decoder-ffn-embed-dim $((2 * DIM))
  --encoder-attention-heads 4 --decoder-attention-heads 4 --dropout 0.1)
bash "$REPO/scripts/run_comparison.sh" --data "$DATA" --out "$OUT" --epochs "$EPOCHS" \
  --avg "$AVG" --jobs "$JOBS" \
  --run "baseline=transformer_tiny" \
  --run "contextpool=contextpool_transformer_tiny" \
  --run "contextpool_fewer=contextpool_transformer_tiny --encoder-layers $FEWER" \
  -- --cpu --max-tokens 4096 --lr 0.002 --warmup 150 -- "${MODEL[@]}"

printf '\nDemo finished in %d min %d s.\nReport: %s/report/report.md (report.json and the plots beside it)\n' \
  $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60)) "$OUT"
