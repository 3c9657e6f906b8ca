#!/usr/bin/env bash
# The multi-seed study of docs/results.md ("The study's verdict"): every configuration x
# seed trained with the same recipe to one budget, its last checkpoints averaged, scored on the
# test set, its FLOPs counted, and its small artefacts exported for committing; then the report.
# A run whose artefacts exist (ARTEFACTS/NAME/eval/avg/scores.json) is skipped, so the study
# resumes on any machine from what is committed; an unfinished run resumes from its checkpoints.
# The configurations are the lines of configs/study/configurations.txt.
set -euo pipefail
# Started in the background by a non-interactive shell (`run_study.sh ... &` in a script, nohup ... &),
# bash inherits SIGINT ignored and can neither trap nor reset a signal ignored on entry, so
# `kill -INT` would be lost. Run this script once more with SIGINT at its default: exec keeps
# the PID, so the signal still reaches it. (The variable is not passed on to the children.)
if [[ -z "${CPMT_SIGINT_RESET:-}" ]]; then
  CPMT_SIGINT_RESET=1 exec env --default-signal=INT bash "${BASH_SOURCE[0]}" "$@"
fi
unset CPMT_SIGINT_RESET

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TABLE="$REPO/configs/study/configurations.txt"

# The configuration table: NAME ARCH [options]; the line `common` holds the options every
# configuration starts from (the study's size).
declare -A ARCH_OF=() OPTIONS_OF=()
NAMES=() COMMON=""
[[ -f "$TABLE" ]] || { echo "run_study.sh: $TABLE: missing (the configuration table)" >&2; exit 2; }
line_no=0
while IFS= read -r line || [[ -n "$line" ]]; do
  line_no=$((line_no + 1))
  read -r name arch options <<< "$line" || true
  [[ -z "${name:-}" || "$name" == \#* ]] && continue
  if [[ -z "${arch:-}" || -n "${ARCH_OF[$name]+x}" ]]; then
    echo "run_study.sh: $TABLE, line $line_no: '$name' needs an ARCH and must appear once" >&2
    exit 2
  fi
  if [[ "$name" == common ]]; then
    COMMON="$options"
  else
    NAMES+=("$name")
  fi
  ARCH_OF[$name]="$arch" OPTIONS_OF[$name]="$options"
done < "$TABLE"

usage() {
  cat <<'USAGE'
Usage: scripts/run_study.sh --data DATA_DIR --runs DIR --artefacts DIR (--pilot | --budget-epochs E)
         [--seeds "1 2 3"] [--configs "baseline contextpool contextpool_enc2 baseline_enc2"]
         [--avg N] [--jobs J] [--precision fp32|bf16] [--device cpu|cuda] [--print-commands]
       scripts/run_study.sh --status --runs DIR --artefacts DIR [--seeds ...] [--configs ...]
         [--budget-epochs E]

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
  --device D           cpu | cuda: where every run trains and is scored; with cuda the --jobs
                       runs share the first visible GPU (one machine type per study)  [cpu]
  --print-commands     print the train.sh command of every run (one line each) and stop;
                       trains nothing and checks neither the corpus nor the CPU
  --status             per configuration x seed: done (exported, test BLEU), running (another
                       run_study.sh holds the run), stopped (last epoch checkpoint) or not
                       started; reads RUNS and ARTEFACTS only (cpmt-study status)

Ctrl-C or SIGTERM stops every run this script started (train.sh, fairseq-train, scoring) and
exits with 130 / 143; a stopped run resumes from its last epoch checkpoint when the same command
is run again. A run is locked (RUNS/NAME.lock) while it trains, so two studies on one RUNS
folder never train the same run at once.

Recipe (every configuration): lr 0.002, 300 warm-up updates, 4096 tokens per update, shared
embeddings, fairseq --eval-bleu every epoch (beam 4, lenpen 0.6). Configurations (NAME ARCH
[options], from configs/study/configurations.txt; `common` is every configuration's start):
USAGE
  printf '  %-17s %s\n' common "${COMMON}"
  local name
  for name in "${NAMES[@]}"; do
    printf '  %-17s %s\n' "$name" "${ARCH_OF[$name]}${OPTIONS_OF[$name]:+ ${OPTIONS_OF[$name]}}"
  done
}

DATA="" RUNS="" ARTEFACTS="" PILOT=0 BUDGET="" SEEDS="1 2 3" AVG=5 JOBS=2 PRECISION=fp32
PRINT=0 STATUS=0 DEVICE=cpu
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
    --device) DEVICE="$2"; shift 2 ;;
    --print-commands) PRINT=1; shift ;;
    --status) STATUS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_study.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for config in $CONFIGS; do
  if [[ "$config" == common || -z "${ARCH_OF[$config]+x}" ]]; then
    echo "run_study.sh: unknown configuration '$config'; known: ${NAMES[*]} (configs/study/configurations.txt)" >&2
    exit 2
  fi
done

case "$DEVICE" in
  cpu) DEVICE_FLAGS=(--cpu) ;;
  cuda) DEVICE_FLAGS=() ;;
  *) echo "run_study.sh: --device must be cpu or cuda, got '$DEVICE'" >&2; exit 2 ;;
esac

source "$REPO/scripts/lib/python.sh"
if [[ "$STATUS" == 1 ]]; then
  [[ -n "$RUNS" && -n "$ARTEFACTS" ]] || { echo "run_study.sh: --status needs --runs and --artefacts" >&2; exit 2; }
  exec cpmt-study status --runs "$RUNS" --artefacts "$ARTEFACTS" --configs "$CONFIGS" --seeds "$SEEDS" \
    ${BUDGET:+--budget-epochs "$BUDGET"}
fi
[[ -n "$DATA" && -n "$RUNS" && -n "$ARTEFACTS" ]] || { usage >&2; exit 2; }
[[ "$PILOT" == 1 || -n "$BUDGET" ]] || { echo "run_study.sh: give --pilot or --budget-epochs E" >&2; exit 2; }
if [[ "$PRINT" == 0 ]]; then
  [[ -d "$DATA/bin" ]] || { echo "run_study.sh: $DATA/bin not found: prepare the corpus first (cpmt-prepare-corpus)" >&2; exit 2; }
  # a study's runs share one corpus: nothing is trained on another than the exported runs record
  if [[ -d "$ARTEFACTS" ]]; then
    cpmt-study check-corpus --artefacts "$ARTEFACTS" --data "$DATA" > /dev/null || exit 2
  fi
  if [[ "$DEVICE" == cuda ]] && ! "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    echo "run_study.sh: --device cuda, but $PY's torch sees no CUDA GPU (torch.cuda.is_available() is False)" >&2
    exit 2
  fi
  if [[ "$DEVICE" == cpu && "$PRECISION" == bf16 ]] && ! grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then
    # every run trains on CPU; without native bf16 a run takes ~20x longer (docs/results.md)
    echo "run_study.sh: --precision bf16 on a CPU without avx512_bf16/amx_bf16: continue this study on a" \
      "native-bf16 machine, or run an fp32 study (never mix precisions in one study)" >&2
    exit 2
  fi
fi

CORES="$(nproc 2>/dev/null || echo 2)"
THREADS=$(( CORES / JOBS > 0 ? CORES / JOBS : 1 ))

RECIPE=("${DEVICE_FLAGS[@]}" --max-tokens 4096 --lr 0.002 --warmup 300 --precision "$PRECISION")
read -r -a SIZE <<< "$COMMON"
EVAL=(--eval-bleu --eval-bleu-args '{"beam": 4, "lenpen": 0.6}' --eval-bleu-remove-bpe sentencepiece
      --best-checkpoint-metric bleu --maximize-best-checkpoint-metric
      --num-workers 0)  # no loader processes: fairseq keeps one per epoch alive (2-4 GB each here)

# train_command NAME SEED MAX_EPOCH [extra fairseq args]: sets CMD to the train.sh command of a run
train_command() {
  local name="$1" seed="$2" epochs="$3" config="${1%_s*}"
  shift 3
  local -a own=()
  read -r -a own <<< "${OPTIONS_OF[$config]}"
  CMD=(bash "$REPO/scripts/train.sh" --data "$DATA/bin" --arch "${ARCH_OF[$config]}" --run-dir "$RUNS/$name"
       "${RECIPE[@]}" --max-epoch "$epochs" --seed "$seed" -- "${SIZE[@]}" "${EVAL[@]}" "${own[@]}" "$@")
}

# train NAME SEED MAX_EPOCH [extra fairseq args]: train.sh, resuming where the run stopped
train() {
  local name="$1"
  train_command "$@"
  OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" "${CMD[@]}" > "$RUNS/$name.out" 2>&1 || {
    tail -n 15 "$RUNS/$name.out" >&2
    echo "run_study.sh: training $name failed (full output: $RUNS/$name.out)" >&2
    return 1; }
}

# lock NAME: hold RUNS/NAME.lock for the rest of this (sub)shell and the processes it starts;
# waits a few seconds, since `--status` (study.is_locked) takes it for an instant to test it
lock() {
  local fd
  exec {fd}> "$RUNS/$1.lock"
  flock -w 5 "$fd" || {
    echo "run_study.sh: $1 is being trained by another process (it holds $RUNS/$1.lock)" >&2; return 1; }
}

# on_stop: in a run's subshell, exit on SIGINT / SIGTERM only once the command it waits for
# (train.sh, scoring) has ended: bash runs a trap after its foreground command, so run_study.sh's
# `wait` for the subshell covers the whole run, and its lock is free when the script exits
on_stop() {
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# one NAME SEED: train to the budget, average, score, count, export
one() {
  local name="$1" seed="$2" run="$RUNS/$1"
  on_stop
  if [[ -f "$ARTEFACTS/$name/eval/avg/scores.json" ]]; then
    echo "$name: done (artefacts in $ARTEFACTS/$name)"; return 0
  fi
  lock "$name" || return 1
  echo "[$(date +%H:%M:%S)] $name: training to epoch $BUDGET (log: $run/train.log)"
  train "$name" "$seed" "$BUDGET" || return 1
  [[ -f "$run/checkpoints/checkpoint$BUDGET.pt" ]] || {
    echo "run_study.sh: $name stopped before epoch $BUDGET (early stop?): see $run/train.log" >&2; return 1; }
  cpmt-average --inputs "$run/checkpoints" \
    --num-epoch-checkpoints "$AVG" --checkpoint-upper-bound "$BUDGET" \
    --output "$run/checkpoints/average.pt" > "$run/average.out" 2>&1 || {
    cat "$run/average.out" >&2; return 1; }
  OMP_NUM_THREADS="$THREADS" cpmt-evaluate --data "$DATA" "${DEVICE_FLAGS[@]}" \
    --checkpoint "$run/checkpoints/average.pt" --out "$run/eval/avg" > "$run/evaluate.out" 2>&1 || {
    tail -n 15 "$run/evaluate.out" >&2; echo "run_study.sh: scoring $name failed" >&2; return 1; }
  OMP_NUM_THREADS="$THREADS" cpmt-study cost \
    --checkpoint "$run/checkpoints/average.pt" --data "$DATA" --out "$run/cost.json" --force > "$run/cost.out" 2>&1 || {
    tail -n 15 "$run/cost.out" >&2; return 1; }
  cpmt-study export --run-dir "$run" --out "$ARTEFACTS/$name"
  grep -h "^BLEU" "$run/evaluate.out" | sed "s/^/$name: /"
}

if [[ "$PRINT" == 1 ]]; then
  if [[ "$PILOT" == 1 ]]; then
    train_command baseline_s1 1 40 --patience 6
    printf '%q' "${CMD[0]}"; printf ' %q' "${CMD[@]:1}"; echo
    exit 0
  fi
  for seed in $SEEDS; do
    for config in $CONFIGS; do
      train_command "${config}_s$seed" "$seed" "$BUDGET"
      printf '%q' "${CMD[0]}"; printf ' %q' "${CMD[@]:1}"; echo
    done
  done
  exit 0
fi

# Every run is a background job in a process group of its own (job control), so that a stop
# reaches all of it: train.sh, fairseq-train and its tee, the scoring commands. Its stdin is
# /dev/null: a job of another process group that read the terminal would be stopped (SIGTTIN).
set -m
pids=()
stop() {
  local signal="$1" code="$2" pid
  trap '' INT TERM
  echo "run_study.sh: SIG$signal: stopping ${#pids[@]} run(s); run the same command again to resume" >&2
  for pid in "${pids[@]}"; do kill "-$signal" -- "-$pid" 2> /dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null || true; done
  exit "$code"
}
trap 'stop INT 130' INT
trap 'stop TERM 143' TERM

mkdir -p "$RUNS" "$ARTEFACTS"
if [[ "$PILOT" == 1 ]]; then
  echo "[$(date +%H:%M:%S)] pilot: baseline_s1 until valid BLEU stops improving (log: $RUNS/baseline_s1/train.log)"
  ( on_stop; lock baseline_s1 && train baseline_s1 1 40 --patience 6 ) < /dev/null &
  pids=($!)
  wait "${pids[0]}"
  pids=()
  cpmt-study curve --run-dir "$RUNS/baseline_s1"
  exit 0
fi

# reap_one: wait until whichever run ends first (not the oldest: a run already done ends at
# once, and its slot must not wait for the run started before it), reap it, drop it from pids;
# its exit status. Polls, as `wait -n -p` needs bash 5.1; a stop signal is handled within a second.
reap_one() {
  local i pid
  while :; do
    for i in "${!pids[@]}"; do
      pid="${pids[$i]}"
      if ! kill -0 "$pid" 2> /dev/null; then
        unset "pids[$i]"
        pids=("${pids[@]}")
        wait "$pid"
        return
      fi
    done
    sleep 1
  done
}

echo "== [$(date +%H:%M:%S)] $(wc -w <<< "$CONFIGS") configurations x seeds ($SEEDS), budget $BUDGET epochs, $JOBS at a time"
failed=0
for seed in $SEEDS; do
  for config in $CONFIGS; do
    one "${config}_s$seed" "$seed" < /dev/null &
    pids+=($!)
    if (( ${#pids[@]} >= JOBS )); then
      reap_one || failed=1
    fi
  done
done
while (( ${#pids[@]} > 0 )); do
  wait "${pids[0]}" || failed=1
  pids=("${pids[@]:1}")
done
(( failed == 0 )) || { echo "run_study.sh: a run failed (see above)" >&2; exit 1; }
cpmt-study report --artefacts "$ARTEFACTS" --data "$DATA" \
  --out "$ARTEFACTS/report" --budget-epochs "$BUDGET"
