#!/usr/bin/env bash
# The multi-seed study of docs/results.md ("The verdict at convergence"): every configuration x
# seed trained with the same recipe to one budget, its last checkpoints averaged, scored on the
# test set, its FLOPs counted, and its small artefacts exported for committing; then the report.
# A run whose artefacts exist (ARTEFACTS/NAME/eval/avg/scores.json) is skipped, so the study
# resumes on any machine from what is committed; an unfinished run resumes from its checkpoints.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/run_study.sh --data DATA_DIR --runs DIR --artefacts DIR (--pilot | --budget-epochs E)
         [--seeds "1 2 3"] [--configs "baseline contextpool contextpool_enc2 baseline_enc2"]
         [--avg N] [--jobs J] [--precision fp32|bf16]

  --data DIR           prepared corpus (cpmt-prepare-corpus output: raw/, spm/, bin/)
  --runs DIR           run folders with checkpoints (keep outside the repository)
  --artefacts DIR      exported artefacts, e.g. docs/results/study (commit these)
  --pilot              train baseline_s1 until its valid BLEU stops improving (patience 6, at
                       most 40 epochs) and print the curve, from which the budget is chosen
  --budget-epochs E    train every run to E epochs, average its last --avg epoch checkpoints <= E
  --seeds "S ..."      seeds per configuration                              [1 2 3]
  --configs "C ..."    configurations (names below)                         [the four main ones]
  --avg N              epoch checkpoints to average                         [5]
  --jobs J             runs at once, each with cores / J threads            [2]
  --precision P        fp32 | bf16 (train.sh --precision), the same for every run of a
                       study: bf16 only where the CPU has native bf16 (docs/results.md)  [fp32]

Configurations (all: 3+3 layers, 256 dims, FFN 1024, 4 heads, dropout 0.1, shared embeddings;
lr 0.002, 300 warm-up updates, 4096 tokens per update, fairseq --eval-bleu every epoch):
  baseline          transformer_tiny
  contextpool       contextpool_transformer_tiny
  contextpool_enc2  contextpool_transformer_tiny, 2 encoder layers
  baseline_enc2     transformer_tiny, 2 encoder layers (the control)
  cp_norm_sum cp_inputs_kv cp_max_size4 cp_max_size16   ablations of ContextPool's defaults
  lightconv dynamicconv  fairseq's lightconv_iwslt_de_en (lightweight / dynamic convolutions), kernels 3,7,15
USAGE
}

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="" RUNS="" ARTEFACTS="" PILOT=0 BUDGET="" SEEDS="1 2 3" AVG=5 JOBS=2 PRECISION=fp32
CONFIGS="baseline contextpool contextpool_enc2 baseline_enc2"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --artefacts) ARTEFACTS="$2"; shift 2 ;;
    --pilot) PILOT=1; shift ;;
    --budget-epochs) BUDGET="$2"; shift 2 ;;
    --seeds) SEEDS="$2"; shift 2 ;;
    --configs) CONFIGS="$2"; shift 2 ;;
    --avg) AVG="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --precision) PRECISION="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_study.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$DATA" && -n "$RUNS" && -n "$ARTEFACTS" ]] || { usage >&2; exit 2; }
[[ "$PILOT" == 1 || -n "$BUDGET" ]] || { echo "run_study.sh: give --pilot or --budget-epochs E" >&2; exit 2; }
[[ -d "$DATA/bin" ]] || { echo "run_study.sh: $DATA/bin not found: prepare the corpus first (cpmt-prepare-corpus)" >&2; exit 2; }
if [[ "$PRECISION" == bf16 ]] && ! grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then
  # every run trains on CPU; without native bf16 a run takes ~20x longer (docs/results.md)
  echo "run_study.sh: --precision bf16 on a CPU without avx512_bf16/amx_bf16: continue this study on a" \
    "native-bf16 machine, or run an fp32 study (never mix precisions in one study)" >&2
  exit 2
fi

source "$REPO/scripts/lib/python.sh"
CORES="$(nproc 2>/dev/null || echo 2)"
THREADS=$(( CORES / JOBS > 0 ? CORES / JOBS : 1 ))

RECIPE=(--cpu --max-tokens 4096 --lr 0.002 --warmup 300 --precision "$PRECISION")
SIZE=(--encoder-layers 3 --decoder-layers 3 --encoder-embed-dim 256 --decoder-embed-dim 256
      --encoder-ffn-embed-dim 1024 --decoder-ffn-embed-dim 1024
      --encoder-attention-heads 4 --decoder-attention-heads 4 --dropout 0.1)
EVAL=(--eval-bleu --eval-bleu-args '{"beam": 4, "lenpen": 0.6}' --eval-bleu-remove-bpe sentencepiece
      --best-checkpoint-metric bleu --maximize-best-checkpoint-metric
      --num-workers 0)  # no loader processes: fairseq keeps one per epoch alive (2-4 GB each here)

# fairseq's LightConv/DynamicConv (Wu et al. 2019) at the study's size: 3+3 layers (SIZE), one
# kernel per layer, growing as in the paper's IWSLT set-up (3, 7, 15); the rest as
# lightconv_iwslt_de_en sets it (softmax-normalised kernels, weight dropout 0.1, no GLU).
# 6.80 M (lightweight) and 6.85 M (dynamic) parameters against the Transformer's 7.59 M.
CONV_SIZE="--encoder-kernel-size-list [3,7,15] --decoder-kernel-size-list [3,7,15]"

# config_args NAME: "ARCH [fairseq args]" of a configuration
config_args() {
  case "$1" in
    baseline) echo "transformer_tiny" ;;
    contextpool) echo "contextpool_transformer_tiny" ;;
    contextpool_enc2) echo "contextpool_transformer_tiny --encoder-layers 2" ;;
    baseline_enc2) echo "transformer_tiny --encoder-layers 2" ;;
    cp_norm_sum) echo "contextpool_transformer_tiny --contextpool-normalize sum" ;;
    cp_inputs_kv) echo "contextpool_transformer_tiny --contextpool-inputs kv" ;;
    cp_max_size4) echo "contextpool_transformer_tiny --contextpool-max-size 4" ;;
    cp_max_size16) echo "contextpool_transformer_tiny --contextpool-max-size 16" ;;
    lightconv) echo "lightconv_iwslt_de_en $CONV_SIZE --encoder-conv-type lightweight --decoder-conv-type lightweight" ;;
    dynamicconv) echo "lightconv_iwslt_de_en $CONV_SIZE --encoder-conv-type dynamic --decoder-conv-type dynamic" ;;
    *) return 1 ;;
  esac
}
for config in $CONFIGS; do
  config_args "$config" > /dev/null || { echo "run_study.sh: unknown configuration '$config' (see --help)" >&2; exit 2; }
done

# train NAME SEED MAX_EPOCH [extra fairseq args]: train.sh, resuming where the run stopped
train() {
  local name="$1" seed="$2" epochs="$3" arch
  shift 3
  local -a own=()
  read -r arch <<< "$(config_args "${name%_s*}" | cut -d' ' -f1)"
  read -r -a own <<< "$(config_args "${name%_s*}" | cut -s -d' ' -f2-)"
  OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" \
    bash "$REPO/scripts/train.sh" --data "$DATA/bin" --arch "$arch" --run-dir "$RUNS/$name" \
      "${RECIPE[@]}" --max-epoch "$epochs" --seed "$seed" -- "${SIZE[@]}" "${EVAL[@]}" \
      "${own[@]}" "$@" > "$RUNS/$name.out" 2>&1 || {
    tail -n 15 "$RUNS/$name.out" >&2
    echo "run_study.sh: training $name failed (full output: $RUNS/$name.out)" >&2
    return 1; }
}

# one NAME SEED: train to the budget, average, score, count, export
one() {
  local name="$1" seed="$2" run="$RUNS/$1"
  if [[ -f "$ARTEFACTS/$name/eval/avg/scores.json" ]]; then
    echo "$name: done (artefacts in $ARTEFACTS/$name)"; return 0
  fi
  echo "[$(date +%H:%M:%S)] $name: training to epoch $BUDGET (log: $run/train.log)"
  train "$name" "$seed" "$BUDGET" || return 1
  [[ -f "$run/checkpoints/checkpoint$BUDGET.pt" ]] || {
    echo "run_study.sh: $name stopped before epoch $BUDGET (early stop?): see $run/train.log" >&2; return 1; }
  cpmt-average --inputs "$run/checkpoints" \
    --num-epoch-checkpoints "$AVG" --checkpoint-upper-bound "$BUDGET" \
    --output "$run/checkpoints/average.pt" > "$run/average.out" 2>&1 || {
    cat "$run/average.out" >&2; return 1; }
  OMP_NUM_THREADS="$THREADS" cpmt-evaluate --data "$DATA" --cpu \
    --checkpoint "$run/checkpoints/average.pt" --out "$run/eval/avg" > "$run/evaluate.out" 2>&1 || {
    tail -n 15 "$run/evaluate.out" >&2; echo "run_study.sh: scoring $name failed" >&2; return 1; }
  OMP_NUM_THREADS="$THREADS" cpmt-study cost \
    --checkpoint "$run/checkpoints/average.pt" --data "$DATA" --out "$run/cost.json" > "$run/cost.out" 2>&1 || {
    tail -n 15 "$run/cost.out" >&2; return 1; }
  cpmt-study export --run-dir "$run" --out "$ARTEFACTS/$name"
  grep -h "^BLEU" "$run/evaluate.out" | sed "s/^/$name: /"
}

mkdir -p "$RUNS" "$ARTEFACTS"
if [[ "$PILOT" == 1 ]]; then
  echo "[$(date +%H:%M:%S)] pilot: baseline_s1 until valid BLEU stops improving (log: $RUNS/baseline_s1/train.log)"
  train baseline_s1 1 40 --patience 6
  cpmt-study curve --run-dir "$RUNS/baseline_s1"
  exit 0
fi

echo "== [$(date +%H:%M:%S)] $(wc -w <<< "$CONFIGS") configurations x seeds ($SEEDS), budget $BUDGET epochs, $JOBS at a time"
pids=() failed=0
for seed in $SEEDS; do
  for config in $CONFIGS; do
    one "${config}_s$seed" "$seed" &
    pids+=($!)
    if (( ${#pids[@]} >= JOBS )); then
      wait "${pids[0]}" || failed=1
      pids=("${pids[@]:1}")
    fi
  done
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
(( failed == 0 )) || { echo "run_study.sh: a run failed (see above)" >&2; exit 1; }
cpmt-study report --artefacts "$ARTEFACTS" --data "$DATA" \
  --out "$ARTEFACTS/report" --budget-epochs "$BUDGET"
