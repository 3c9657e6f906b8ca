#!/usr/bin/env bash
# Train a baseline Transformer or a ContextPool Transformer with the standard
# WMT EN-DE recipe. Re-running the same command resumes from
# RUN_DIR/checkpoints/checkpoint_last.pt (fairseq's own resume).
set -euo pipefail
# Started in the background by a non-interactive shell (`train.sh ... &` in a script, nohup ... &),
# bash inherits SIGINT ignored and can neither trap nor reset a signal ignored on entry, so
# `kill -INT` would be lost. Run this script once more with SIGINT at its default: exec keeps
# the PID, so the signal still reaches it. (The variable is not passed on to the children.)
if [[ -z "${CPMT_SIGINT_RESET:-}" ]]; then
  CPMT_SIGINT_RESET=1 exec env --default-signal=INT bash "${BASH_SOURCE[0]}" "$@"
fi
unset CPMT_SIGINT_RESET

usage() {
  cat <<'USAGE'
Usage: scripts/train.sh --data DATA_BIN --arch ARCH --run-dir RUN_DIR [options] [-- fairseq-train args]

Required:
  --data DIR          binarized data: DATA/bin of a prepared corpus (fairseq-preprocess
                      output, joined dictionary); the cpmt-* commands take DATA itself
  --arch ARCH         e.g. transformer_wmt_en_de, contextpool_transformer_wmt_en_de, *_big, *_tiny
  --run-dir DIR       checkpoints go to DIR/checkpoints, the log (appended) to DIR/train.log

Recipe (defaults = Vaswani et al. 2017 / fairseq "Scaling NMT"):
  --max-tokens N      tokens per GPU batch            [4096]
  --update-freq N     gradient accumulation           [1]
  --lr LR             peak learning rate              [0.0007]
  --warmup N          inverse_sqrt warm-up updates    [4000]
  --max-update N      stop after N updates            [100000]
  --max-epoch N       stop after N epochs (0 = none)  [0]
  --seed N                                            [1]
  --precision P       fp32 | fp16 (GPU) | bf16 (mixed precision, CPU or GPU)  [fp32]
  --cpu               train on CPU
  --tensorboard       also log to TensorBoard, in RUN_DIR/tensorboard (tensorboard --logdir ...)

Label smoothing 0.1, Adam (0.9, 0.98), shared embeddings (joined dictionary), JSON logs.
Anything after "--" goes to fairseq-train unchanged, e.g. -- --dropout 0.3 --keep-last-epochs 5

Several GPUs: one node uses every visible GPU by itself. Several nodes:
  torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \
      "$(command -v fairseq-train)" ...    (set FAIRSEQ_TRAIN="torchrun ... fairseq-train path" here)
  or under Slurm: srun ... scripts/train.sh ... -- --distributed-port 12345 --distributed-world-size 16
See docs/training.md.
USAGE
}

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/scripts/lib/python.sh"
DATA="" ARCH="" RUN_DIR=""
MAX_TOKENS=4096 UPDATE_FREQ=1 LR=0.0007 WARMUP=4000 MAX_UPDATE=100000 MAX_EPOCH=0 SEED=1
PRECISION=fp32 CPU=0 TENSORBOARD=0
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --arch) ARCH="$2"; shift 2 ;;
    --run-dir) RUN_DIR="$2"; shift 2 ;;
    --max-tokens) MAX_TOKENS="$2"; shift 2 ;;
    --update-freq) UPDATE_FREQ="$2"; shift 2 ;;
    --lr) LR="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --max-update) MAX_UPDATE="$2"; shift 2 ;;
    --max-epoch) MAX_EPOCH="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --precision) PRECISION="$2"; shift 2 ;;
    --cpu) CPU=1; shift ;;
    --tensorboard) TENSORBOARD=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "train.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$DATA" && -n "$ARCH" && -n "$RUN_DIR" ]] || { usage >&2; exit 2; }
if ! compgen -G "$DATA/dict.*.txt" > /dev/null; then
  if compgen -G "$DATA/bin/dict.*.txt" > /dev/null; then
    # the cpmt-* commands take the prepared corpus (DATA); train.sh, like fairseq-train, DATA/bin
    echo "train.sh: --data $DATA is a prepared corpus (bin/ inside): give --data ${DATA%/}/bin" \
      "(train.sh reads the binarised folder, as fairseq-train does)" >&2
  else
    echo "train.sh: $DATA has no dict.*.txt: is it fairseq-preprocess output? (cpmt-prepare-corpus makes it)" >&2
  fi
  exit 2
fi

# bf16: mixed precision through the plugin's translation_bf16 task (autocast; fp32 weights and
# optimizer state) on CPU and GPU alike. Not fairseq's --bf16: that casts the whole model and, on
# the command line, sets --tpu, which crashes without torch_xla (docs/training.md).
# Every precision trains with a task of the plugin that keeps the corpus fingerprint in its state,
# which fairseq saves in every checkpoint: translation_provenance, or its subclass translation_bf16.
PRECISION_FLAGS=(--task translation_provenance)
case "$PRECISION" in
  fp32) ;;
  fp16)
    if [[ "$CPU" == 1 ]]; then
      echo "train.sh: --precision fp16 needs a CUDA GPU (fairseq's fp16 optimizers are CUDA-only); on CPU use --precision bf16" >&2
      exit 2
    fi
    PRECISION_FLAGS+=(--fp16) ;;
  bf16) PRECISION_FLAGS=(--task translation_bf16) ;;
  *) echo "train.sh: --precision must be fp32, fp16 or bf16, got '$PRECISION'" >&2; exit 2 ;;
esac
if [[ "$PRECISION" == bf16 && "$CPU" == 1 ]] && ! grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then
  echo "train.sh: warning: this CPU lists no avx512_bf16/amx_bf16 in /proc/cpuinfo, so bf16 matrix products take a slow fallback (about 20-40x slower than fp32 on an AVX2-only AMD EPYC, docs/results.md): --precision fp32 is faster here" >&2
fi
for arg in "${EXTRA[@]}"; do
  case "$arg" in
    --bf16|--fp16|--amp|--memory-efficient-bf16|--memory-efficient-fp16)
      echo "train.sh: pass precision as --precision fp32|fp16|bf16, not '$arg' after '--'" >&2
      exit 2 ;;
  esac
done
DEVICE_FLAGS=()
[[ "$CPU" == 1 ]] && DEVICE_FLAGS=(--cpu)
LOG_FLAGS=()
[[ "$TENSORBOARD" == 1 ]] && LOG_FLAGS=(--tensorboard-logdir "$RUN_DIR/tensorboard")

mkdir -p "$RUN_DIR/checkpoints"
# one training per run folder: a second one would write the same checkpoints and log, and could
# replace the provenance record of a first one that has not saved a checkpoint yet. The lock is
# held by fairseq-train too (it inherits the descriptor), so it lasts as long as the training.
exec {RUN_LOCK}> "$RUN_DIR/train.lock"
if ! flock -n "$RUN_LOCK"; then
  echo "train.sh: $RUN_DIR is being trained by another process (it holds $RUN_DIR/train.lock): wait for it to end, or give another --run-dir" >&2
  exit 2
fi
# what this run is trained on (the corpus fingerprint: languages, dictionaries, DATA/../spm/spm.model)
# goes to RUN_DIR/checkpoints/provenance.json, and the task puts it into every checkpoint too;
# evaluation, averaging, the report and the pool inspection check it against the data they are
# given. Resuming on other data stops here.
"$PY" -m contextpool_mt.provenance record --data "$DATA" --out "$RUN_DIR/checkpoints"
# --update-epoch-batch-itr True (below) forms the batches anew each epoch under seed + epoch.
# Without it fairseq forms them once, under seed + the epoch it starts in, and reuses them: a
# run resumed in epoch E >= 2 would form them under seed + E and skip other sentences than
# those the killed run had trained on (tests/test_resume.py).
# FAIRSEQ_TRAIN lets a launcher wrap the command (torchrun, srun); default: fairseq-train
read -r -a TRAIN_CMD <<< "${FAIRSEQ_TRAIN:-fairseq-train}"
CMD=("${TRAIN_CMD[@]}" "$DATA"
  --user-dir "$REPO/fairseq_plugins"
  --arch "$ARCH" --share-all-embeddings
  --optimizer adam --adam-betas "(0.9, 0.98)" --adam-eps 1e-08 --clip-norm 0.0 --weight-decay 0.0
  --lr "$LR" --lr-scheduler inverse_sqrt --warmup-updates "$WARMUP" --warmup-init-lr 1e-07
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1
  --max-tokens "$MAX_TOKENS" --update-freq "$UPDATE_FREQ"
  --max-update "$MAX_UPDATE" --max-epoch "$MAX_EPOCH" --seed "$SEED"
  --update-epoch-batch-itr True
  --save-dir "$RUN_DIR/checkpoints"
  --log-format json --log-interval 50 --no-progress-bar
  "${PRECISION_FLAGS[@]}" "${DEVICE_FLAGS[@]}" "${LOG_FLAGS[@]}" "${EXTRA[@]}")

# The checkpoint fairseq-train will load: --restore-file if given, else checkpoint_last.pt.
# fairseq fails on an unreadable one with a torch traceback that does not name the file, and
# silently trains from scratch when an explicit --restore-file does not exist: check first.
# The limits fairseq-train will stop at (the last value given wins, as in its argparse); a
# --reset-optimizer resume starts counting updates anew, a --reset-dataloader one epochs.
RESTORE="$RUN_DIR/checkpoints/checkpoint_last.pt"
LIMIT_UPDATE="$MAX_UPDATE" LIMIT_EPOCH="$MAX_EPOCH"
for ((i = 0; i < ${#EXTRA[@]}; i++)); do
  case "${EXTRA[i]}" in
    --restore-file) RESTORE="${EXTRA[i+1]:-}" ;;
    --restore-file=*) RESTORE="${EXTRA[i]#--restore-file=}" ;;
    --max-update) LIMIT_UPDATE="${EXTRA[i+1]:-0}" ;;
    --max-update=*) LIMIT_UPDATE="${EXTRA[i]#--max-update=}" ;;
    --max-epoch) LIMIT_EPOCH="${EXTRA[i+1]:-0}" ;;
    --max-epoch=*) LIMIT_EPOCH="${EXTRA[i]#--max-epoch=}" ;;
  esac
done
for arg in "${EXTRA[@]}"; do
  case "$arg" in
    --reset-optimizer) LIMIT_UPDATE=0 ;;
    --reset-dataloader) LIMIT_EPOCH=0 ;;
  esac
done
[[ "$RESTORE" == checkpoint_last.pt ]] && RESTORE="$RUN_DIR/checkpoints/checkpoint_last.pt"
if [[ "$RESTORE" != "$RUN_DIR/checkpoints/checkpoint_last.pt" && ! -f "$RESTORE" ]]; then
  echo "train.sh: --restore-file $RESTORE: no such file" >&2
  exit 2
fi
DEFAULT_RESTORE="$RUN_DIR/checkpoints/checkpoint_last.pt"
RESUME_FROM=""
if [[ "$RESTORE" != "$DEFAULT_RESTORE" && -f "$RESTORE" ]]; then
  "$PY" -m contextpool_mt.resume check "$RESTORE" || exit 1
  RESUME_FROM="$RESTORE"
elif [[ "$RESTORE" == "$DEFAULT_RESTORE" && -f "$RESTORE" ]]; then
  # checkpoint_last.pt, or the newest intact one if it is damaged (contextpool_mt/resume.py)
  RESUME_FROM="$("$PY" -m contextpool_mt.resume choose "$RUN_DIR/checkpoints")" || exit 1
  if [[ "$RESUME_FROM" != "$DEFAULT_RESTORE" ]]; then
    CMD+=(--restore-file "$RESUME_FROM")
  fi
fi
if [[ -n "$RESUME_FROM" ]]; then
  # fairseq-train tests --max-update only after an update: resumed at the limit it would train
  # one more and overwrite checkpoint_last/_best. A finished training is left alone.
  DONE="$("$PY" -m contextpool_mt.resume finished "$RESUME_FROM" \
    --max-update "$LIMIT_UPDATE" --max-epoch "$LIMIT_EPOCH")" || exit 1
  if [[ -n "$DONE" ]]; then
    echo "train.sh: $DONE"
    exit 0
  fi
  echo "train.sh: resuming from $RESUME_FROM"
fi
# which machine trains this process (contextpool_mt/machine.py); warns if the run was begun on another
MACHINE_ARGS=(--log "$RUN_DIR/train.log")
[[ "$CPU" == 1 ]] && MACHINE_ARGS+=(--cpu)
MACHINE="$("$PY" -m contextpool_mt.machine "${MACHINE_ARGS[@]}")" || exit 1
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) train.sh start"
  printf '# command:'; printf ' %q' "${CMD[@]}"; echo
  echo "$MACHINE"
} >> "$RUN_DIR/train.log"
echo "train.sh: training $ARCH -> $RUN_DIR (log: $RUN_DIR/train.log)"
# fairseq-train runs as a job train.sh waits for, so that SIGINT or SIGTERM sent to train.sh
# (kill -INT, a scheduler) stops it: bash runs no trap until a foreground command ends. A
# background job of a non-interactive shell starts with SIGINT ignored, and Python then never
# raises KeyboardInterrupt: `env --default-signal=INT` (GNU env) restores it. tee ignores both
# signals and ends with its input, so the log keeps fairseq's last lines; it is appended, so a
# resumed run keeps its history. Whatever fairseq saved before the signal stays: re-running resumes.
SIGNAL="" TRAIN_PID=""
forward() {
  SIGNAL="$1"
  [[ -n "$TRAIN_PID" ]] && kill -s "$1" "$TRAIN_PID" 2>/dev/null || true
}
trap 'forward INT' INT
trap 'forward TERM' TERM
env --default-signal=INT "${CMD[@]}" 2>&1 | (trap '' INT TERM; exec tee -a "$RUN_DIR/train.log") &
PIPELINE=$!
TRAIN_PID="$(jobs -p %%)"  # the job's first process: fairseq-train (or FAIRSEQ_TRAIN's launcher)
[[ -n "$SIGNAL" ]] && { kill -s "$SIGNAL" "$TRAIN_PID" 2>/dev/null || true; }
while :; do
  STATUS=0
  wait "$PIPELINE" || STATUS=$?
  kill -0 "$PIPELINE" 2>/dev/null || break  # wait also returns when a trapped signal arrives
done
if [[ -n "$SIGNAL" ]]; then
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) train.sh stopped by SIG$SIGNAL" >> "$RUN_DIR/train.log"
  echo "train.sh: stopped by SIG$SIGNAL; the checkpoints saved so far are in $RUN_DIR/checkpoints:" \
    "re-run the same command to resume" >&2
  [[ "$SIGNAL" == INT ]] && exit 130
  exit 143
fi
exit "$STATUS"
