#!/usr/bin/env bash
# Train several models on one prepared corpus with the same recipe, average their last
# checkpoints, score them and write the comparison report: train.sh -> cpmt-average
# -> cpmt-evaluate -> cpmt-compare. Re-running skips finished trainings and scores.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/run_comparison.sh --data DATA_DIR --out DIR --epochs N \
         --run NAME=ARCH[ FAIRSEQ_ARGS] [--run ...] [options] [-- TRAIN_SH_ARGS [-- FAIRSEQ_ARGS]]

  --data DIR      prepared corpus (cpmt-prepare-corpus output: raw/, spm/, bin/)
  --out DIR       runs go to DIR/NAME, the report to DIR/report
  --epochs N      epochs per model (every run gets the same budget)
  --run SPEC      "NAME=ARCH" plus fairseq-train arguments of this run only, e.g.
                  --run "contextpool_enc2=contextpool_transformer_tiny --encoder-layers 2";
                  the first run is the baseline of the report
  --avg N         average the last N epoch checkpoints                 [2]
  --seed N        training seed                                        [1]
  --jobs J        train J models at once, each with cores / J threads  [1]
  --src L --tgt L languages of the corpus                              [en de]

After "--": arguments for every train.sh call (e.g. --cpu --lr 0.002 --warmup 150), and after a
second "--" fairseq-train arguments for every run (the run's own come after them, so they win).
With --jobs > 1 the runs share the machine: words/s then compare runs of one batch only.
USAGE
}

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="" OUT="" EPOCHS="" AVG=2 SEED=1 JOBS=1 SRC=en TGT=de
RUNS=() TRAIN_ARGS=() FAIRSEQ_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --run) RUNS+=("$2"); shift 2 ;;
    --avg) AVG="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --src) SRC="$2"; shift 2 ;;
    --tgt) TGT="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift
        while [[ $# -gt 0 && "$1" != "--" ]]; do TRAIN_ARGS+=("$1"); shift; done
        [[ $# -gt 0 ]] && { shift; FAIRSEQ_ARGS=("$@"); }
        break ;;
    *) echo "run_comparison.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$DATA" && -n "$OUT" && -n "$EPOCHS" && ${#RUNS[@]} -gt 0 ]] || { usage >&2; exit 2; }
source "$REPO/scripts/lib/python.sh"
# DATA/bin (what train.sh reads) given for DATA: the one line the cpmt-* commands give
LAYOUT_ERROR="$("$PY" -c 'import sys; from contextpool_mt.corpus import binarised_folder_error
print(binarised_folder_error(sys.argv[1]) or "")' "$DATA")"
[[ -z "$LAYOUT_ERROR" ]] || { echo "run_comparison.sh: $LAYOUT_ERROR" >&2; exit 2; }
[[ -d "$DATA/bin" ]] || { echo "run_comparison.sh: $DATA/bin not found: prepare the corpus first (cpmt-prepare-corpus)" >&2; exit 2; }
(( AVG >= 1 && AVG <= EPOCHS )) || { echo "run_comparison.sh: --avg $AVG must be in 1..--epochs $EPOCHS" >&2; exit 2; }
for spec in "${RUNS[@]}"; do
  [[ "$spec" =~ ^[A-Za-z0-9_.-]+=[A-Za-z0-9_]+( |$) ]] || {
    echo "run_comparison.sh: --run '$spec' is not NAME=ARCH [fairseq args]" >&2; exit 2; }
done

CORES="$(nproc 2>/dev/null || echo 2)"
THREADS=$(( CORES / JOBS > 0 ? CORES / JOBS : 1 ))
mkdir -p "$OUT"

# train_one SPEC: one train.sh run; its progress is one line per epoch
train_one() {
  local name="${1%%=*}" rest="${1#*=}" arch run
  read -r arch _ <<< "$rest"
  local -a own=()
  read -r -a own <<< "${rest#"$arch"}"
  run="$OUT/$name"
  if [[ -f "$run/checkpoints/checkpoint$EPOCHS.pt" ]]; then
    echo "$name: trained ($run/checkpoints/checkpoint$EPOCHS.pt)"
    return 0
  fi
  echo "$name: $arch ${own[*]:-}"
  OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" \
  bash "$REPO/scripts/train.sh" --data "$DATA/bin" --arch "$arch" --run-dir "$run" \
    --max-epoch "$EPOCHS" --seed "$SEED" "${TRAIN_ARGS[@]}" -- \
    --keep-last-epochs "$AVG" "${FAIRSEQ_ARGS[@]}" "${own[@]}" \
    | "$PY" -m contextpool_mt.fairseq_logs progress "$name" || {
      tail -n 15 "$run/train.log" >&2
      echo "run_comparison.sh: training $name failed; the full log is $run/train.log" >&2
      return 1; }
}

printf '== [%s] train %d models, %d epochs each, %d at a time (logs: %s/NAME/train.log)\n' \
  "$(date +%H:%M:%S)" "${#RUNS[@]}" "$EPOCHS" "$JOBS" "$OUT"
pids=() failed=0
for spec in "${RUNS[@]}"; do
  train_one "$spec" &
  pids+=($!)
  if (( ${#pids[@]} >= JOBS )); then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
(( failed == 0 )) || { echo "run_comparison.sh: a training failed (see above); stopping" >&2; exit 1; }

printf '\n== [%s] average the last %d epoch checkpoints, translate and score (beam 4)\n' "$(date +%H:%M:%S)" "$AVG"
REPORT_RUNS=()
for spec in "${RUNS[@]}"; do
  name="${spec%%=*}" ckpts="$OUT/${spec%%=*}/checkpoints"
  REPORT_RUNS+=(--run "$name=$OUT/$name")
  if [[ ! -f "$ckpts/average.pt" || "$ckpts/checkpoint$EPOCHS.pt" -nt "$ckpts/average.pt" ]]; then
    cpmt-average --inputs "$ckpts" \
      --num-epoch-checkpoints "$AVG" --output "$ckpts/average.pt"
  fi
  for eval in avg last; do
    ckpt="$ckpts/average.pt"; [[ "$eval" == last ]] && ckpt="$ckpts/checkpoint$EPOCHS.pt"
    dir="$OUT/$name/eval/$eval"
    if [[ -f "$dir/scores.json" && "$dir/scores.json" -nt "$ckpt" ]]; then
      echo "$name/$eval: scored"
      continue
    fi
    mkdir -p "$dir"
    # --force: scores older than their checkpoint are replaced (the test above)
    OMP_NUM_THREADS="$CORES" cpmt-evaluate --data "$DATA" --checkpoint "$ckpt" --force \
      --out "$dir" --cpu --src "$SRC" --tgt "$TGT" > "$dir/evaluate.out" 2>&1 || {
      tail -n 15 "$dir/evaluate.out" >&2
      echo "run_comparison.sh: scoring $ckpt failed (full output: $dir/evaluate.out)" >&2; exit 1; }
    sed -n -e "s|^BLEU  detok sacreBLEU *|$name/$eval: BLEU |p" -e "s|^chrF2 sacreBLEU *|$name/$eval: chrF2 |p" "$dir/evaluate.out"
  done
done

printf '\n== [%s] comparison report\n' "$(date +%H:%M:%S)"
cpmt-compare --data "$DATA" --out "$OUT/report" --eval avg "${REPORT_RUNS[@]}"
