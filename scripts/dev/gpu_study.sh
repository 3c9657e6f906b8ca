#!/usr/bin/env bash
# The study (scripts/run_study.sh) on a GPU machine that can reach no package index: the GPU
# machine this project is sometimes lent (docs/results.md, "On a lent GPU"), whose image
# has PyTorch, numpy, scipy, matplotlib and scikit-learn but not fairseq. Two halves:
#
#   bundle (here, where pip reaches the registry): writes .gpu/ (git-ignored) with
#     wheels/  the pinned wheels (requirements/constraints.txt) that such an image lacks, for its
#              Python (--python-version), and this project's own wheel
#     data/    the prepared corpus as far as training and scoring read it (bin/, spm/, raw/ of
#              valid and test)
#   run (there, from the repository root): installs .gpu/wheels into a folder beside the image's
#     own torch, trains and scores with run_study.sh --device cuda (--jobs runs share the GPU),
#     stops the study cleanly before --budget-s seconds, and packs what it made into OUT:
#     artefacts.tar.gz (the exported runs, as committed under docs/results/), logs.tar.gz (every
#     run's output and train.log, finished or not), status.txt and run.log (all it printed).
#     With --detach-after D it packs what exists after D seconds and returns, leaving the study
#     running (in a process session of its own) until --budget-s: a study longer than one
#     command (10 minutes there) spans two calls, and the first one's finished runs come back
#     even if the second never happens.
#   collect (there, the next call while the machine is still held): waits until that study has
#     ended and packs everything into OUT.
#   bench (there): benchmarks/benchmark.py with the bundle, e.g. its --device cuda columns.
#
# Nothing here is needed where pip works: there, `make install` and run_study.sh --device cuda.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUNDLE="$REPO/.gpu"
# what the GPU image lacks (its package list: torch, numpy, scipy, matplotlib, scikit-learn, cffi,
# cython, regex, tqdm, packaging, lxml, tabulate, colorama, portalocker, pyyaml, protobuf are
# there), and what must be our pinned version there too (sacreBLEU and SentencePiece score and
# detokenise). Not protobuf: `import fairseq` imports the image's tensorboard, whose generated
# code may refuse another major version of protobuf's runtime; SentencePiece's model file reads
# with any recent one.
PACKAGES=(fairseq-fixed hydra-core omegaconf antlr4-python3-runtime bitarray sacrebleu sacremoses
          sentencepiece tensorboardX)

usage() {
  cat <<'USAGE'
Usage: scripts/dev/gpu_study.sh bundle --data DATA_DIR [--python-version 3.12] [--find-links DIR]
       scripts/dev/gpu_study.sh run --out OUT --budget-s S [--detach-after D] [--configs "C ..."]
           [--seeds "1 2 3"] [--jobs 8] [--budget-epochs 12] [--avg 5] [--precision bf16] [--device cuda]
       scripts/dev/gpu_study.sh collect --out OUT
       scripts/dev/gpu_study.sh bench [benchmarks/benchmark.py options]

bundle: .gpu/wheels and .gpu/data/NAME (NAME = DATA_DIR's folder name) for a machine whose
        python3 is --python-version (default 3.12) and holds PyTorch; --find-links adds a folder
        of wheels built here (fairseq-fixed publishes none for Python 3.11: a rehearsal on 3.11
        takes the one pip built for `make install`, from ~/.cache/pip/wheels)
run:    the study of run_study.sh over .gpu/data/*, on --device (cuda; cpu rehearses the whole
        path on a machine without a GPU), its runs in /tmp/cpmt-gpu; packs OUT/artefacts.tar.gz,
        OUT/logs.tar.gz, OUT/status.txt and OUT/run.log when the study ends or --budget-s runs out (the runs
        still training then are stopped and lost: the machine is given back bare); with
        --detach-after D (< S), packs what exists after D seconds and leaves the study running
collect: the next call on the same machine: waits for that study's end, packs it into OUT
bench:   benchmarks/benchmark.py with the bundle (installed if no run did), e.g.
         bench --frontier --device cuda --precision bf16 --out "$OUT/NAME.json" --results "$OUT/NAME.md"
USAGE
}

version_of() {  # the pinned version of a package (requirements/constraints.txt)
  local line
  line="$(grep -i -E "^$1==" "$REPO/requirements/constraints.txt")" || {
    echo "gpu_study.sh: $1 is not pinned in requirements/constraints.txt" >&2; exit 2; }
  echo "${line#*==}"
}

bundle() {
  local data="" pyver=3.12 links=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --data) data="$2"; shift 2 ;;
      --python-version) pyver="$2"; shift 2 ;;
      --find-links) links=(--find-links "$2" --platform linux_x86_64); shift 2 ;;
      *) echo "gpu_study.sh bundle: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
  done
  [[ -n "$data" ]] || { usage >&2; exit 2; }
  [[ -d "$data/bin" && -f "$data/spm/spm.model" ]] && compgen -G "$data/raw/test.*" > /dev/null || {
    echo "gpu_study.sh: $data is not a prepared corpus (bin/, spm/spm.model, raw/test.*)" >&2; exit 2; }
  source "$REPO/scripts/lib/python.sh"
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/wheels" "$BUNDLE/data"
  local tag="${pyver/./}" package version
  for package in "${PACKAGES[@]}"; do
    version="$(version_of "$package")"
    if [[ "$package" == antlr4-python3-runtime ]]; then
      # published as a source archive only; pure Python, so a wheel built here installs there
      "$PY" -m pip wheel -q --no-deps --no-binary :all: -w "$BUNDLE/wheels" "$package==$version"
    else
      "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" \
        --implementation cp --abi "cp$tag" --abi abi3 --abi none --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
        "${links[@]}" -d "$BUNDLE/wheels" "$package==$version"
    fi
  done
  "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$BUNDLE/wheels" "$REPO"
  local name
  name="$(basename "$(cd "$data" && pwd)")"
  mkdir -p "$BUNDLE/data/$name/raw"
  cp -r "$data/bin" "$data/spm" "$BUNDLE/data/$name/"
  cp "$data"/raw/valid.* "$data"/raw/test.* "$BUNDLE/data/$name/raw/"
  ls -1 "$BUNDLE/wheels"
  du -sh "$BUNDLE" "$REPO" --exclude=.venv --exclude=.git | sed 's/^/size: /'
  echo "gpu_study.sh: the working tree travels whole (at most 64 MiB with .gpu); carry .gpu"
}

WORK=/tmp/cpmt-gpu  # on the GPU machine: the installed bundle, the runs, the study's state
COMMAND_S=600  # the longest one command may run there (the device tool's limit)

# study_running: whether a study detached by `run --detach-after` is still going on this machine
study_running() {
  [[ -f "$WORK/study.pid" && ! -f "$WORK/study.rc" ]] && kill -0 "$(cat "$WORK/study.pid")" 2> /dev/null
}

# install SITE: the bundle's wheels into SITE, beside the image's own packages, and SITE/bin/python
install() {
  local site="$1" real
  real="$(command -v python3)"
  "$real" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check \
    --target "$site" "$BUNDLE"/wheels/*.whl
  # the image's own python with the bundle first on its path; run_study.sh finds the project's
  # commands beside $PYTHON, so the interpreter is named from the folder pip put them in
  printf '#!/bin/sh\nexec %q "$@"\n' "$real" > "$site/bin/python"
  chmod +x "$site/bin/python"
}

# bench [benchmark.py options]: benchmarks/benchmark.py with the bundle (installed once into
# WORK/site); the checkout first on the path, as the benchmark reads configs/study/ from it
bench() {
  local site="$WORK/site"
  [[ -x "$site/bin/python" ]] || install "$site"
  PYTHONPATH="$REPO:$site${PYTHONPATH:+:$PYTHONPATH}" "$site/bin/python" "$REPO/benchmarks/benchmark.py" "$@"
}

run() {
  local out="" budget_s="" configs="baseline contextpool" seeds="1 2 3" jobs=8 epochs=12 avg=5
  local precision=bf16 device=cuda detach_after=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --out) out="$2"; shift 2 ;;
      --budget-s) budget_s="$2"; shift 2 ;;
      --detach-after) detach_after="$2"; shift 2 ;;
      --configs) configs="$2"; shift 2 ;;
      --seeds) seeds="$2"; shift 2 ;;
      --jobs) jobs="$2"; shift 2 ;;
      --budget-epochs) epochs="$2"; shift 2 ;;
      --avg) avg="$2"; shift 2 ;;
      --precision) precision="$2"; shift 2 ;;
      --device) device="$2"; shift 2 ;;
      *) echo "gpu_study.sh run: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
  done
  [[ -n "$out" && -n "$budget_s" ]] || { usage >&2; exit 2; }
  if [[ -n "$detach_after" ]]; then
    # each half must end, packing included, within one command's limit
    if (( detach_after >= budget_s || detach_after > COMMAND_S - 60 || budget_s - detach_after > COMMAND_S - 100 )); then
      echo "gpu_study.sh run: --detach-after D needs D < --budget-s S, D <= $(( COMMAND_S - 60 )) and" \
        "S - D <= $(( COMMAND_S - 100 )) (this call and the collecting one each fit one ${COMMAND_S}s command);" \
        "got D = $detach_after, S = $budget_s" >&2; exit 2
    fi
  fi
  if study_running; then
    echo "gpu_study.sh run: the study an earlier 'run --detach-after' started is still running" \
      "(pid $(cat "$WORK/study.pid")): 'collect' it first" >&2; exit 2
  fi
  mkdir -p "$out" && out="$(cd "$out" && pwd)"
  # everything this prints also goes to OUT/run.log, which comes back even if a step fails
  exec > >(tee "$out/run.log") 2>&1
  local data
  data="$(find "$BUNDLE/data" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
  [[ -n "$data" ]] || { echo "gpu_study.sh: no corpus in $BUNDLE/data: run 'bundle' first" >&2; exit 2; }
  local site="$WORK/site"
  rm -rf "$WORK"
  install "$site"
  # what the study and a later `collect` need, in one file they both source
  {
    printf 'export PYTHONPATH=%q PYTHON=%q\n' "$site${PYTHONPATH:+:$PYTHONPATH}" "$site/bin/python"
    printf 'DATA=%q CONFIGS=%q SEEDS=%q JOBS=%q EPOCHS=%q AVG=%q PRECISION=%q DEVICE=%q\n' \
      "$data" "$configs" "$seeds" "$jobs" "$epochs" "$avg" "$precision" "$device"
    # the budget counts from this script's start (the install above took some)
    printf 'END=%q\n' "$(( $(date +%s) + budget_s - SECONDS ))"
  } > "$WORK/study.env"
  source "$WORK/study.env"
  "$PYTHON" -c 'import torch, fairseq, fairseq_cli.train, fairseq_plugins, contextpool_mt, sacrebleu
print("torch", torch.__version__, "fairseq", fairseq.__version__, "sacrebleu", sacrebleu.__version__,
      "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")'

  if [[ -z "$detach_after" ]]; then
    study
  else
    # in a process session of its own, the study outlives this command (the device tool ends
    # the rest when a command returns) and runs on while the machine is held: `collect`, the
    # next call, waits for it and packs what it made
    setsid bash "$REPO/scripts/dev/gpu_study.sh" _study < /dev/null > "$WORK/study.log" 2>&1 &
    echo $! > "$WORK/study.pid"
    local stop_at=$(( $(date +%s) + detach_after - SECONDS ))
    while study_running && (( $(date +%s) < stop_at )); do sleep 5; done
    cat "$WORK/study.log"
    if [[ ! -f "$WORK/study.rc" ]]; then
      echo "gpu_study.sh: detached after ${detach_after}s; the study runs on until $(date -d "@$END" +%H:%M:%S):" \
        "call 'gpu_study.sh collect --out \"\$OUT\"' next, while the machine is still held"
    fi
  fi
  pack "$out"
}

# study: the study of WORK/study.env under its time limit, with a sweeper that frees the disk
# and prints progress; writes WORK/study.rc (its exit status) when it has ended
study() {
  source "$WORK/study.env"
  local runs="$WORK/runs" artefacts="$WORK/artefacts" rc=0
  mkdir -p "$runs" "$artefacts"
  # an exported run's checkpoints are not needed again: free the disk while the others train;
  # every minute, a line of progress (epochs each started run has ended, the GPU's load)
  ( tick=0
    while sleep 15; do
      for scores in "$artefacts"/*/eval/avg/scores.json; do
        if [[ -f "$scores" ]]; then
          name="${scores#"$artefacts"/}"
          rm -rf "$runs/${name%%/*}/checkpoints"
        fi
      done
      if (( ++tick % 4 == 0 )); then
        line="[$(date +%H:%M:%S)] epochs ended:"
        for log in "$runs"/*/train.log; do
          [[ -f "$log" ]] || continue
          name="${log%/train.log}"
          line+=" ${name##*/}=$(grep -c 'end of epoch' "$log" || true)"
        done
        echo "$line; GPU $(nvidia-smi --query-gpu=utilization.gpu,memory.used \
          --format=csv,noheader 2> /dev/null | tr -d '\n' || echo '?')"
      fi
    done ) &
  local sweeper=$!
  local left=$(( END - $(date +%s) ))
  (( left > 0 )) || left=1  # `timeout 0` would set no limit at all
  timeout --signal=TERM --kill-after=20 "$left" \
    bash "$REPO/scripts/run_study.sh" --data "$DATA" --runs "$runs" --artefacts "$artefacts" \
      --budget-epochs "$EPOCHS" --avg "$AVG" --seeds "$SEEDS" --configs "$CONFIGS" --jobs "$JOBS" \
      --precision "$PRECISION" --device "$DEVICE" < /dev/null || rc=$?
  kill "$sweeper" 2> /dev/null || true
  echo "gpu_study.sh: the study ended with exit status $rc (124: --budget-s ran out)"
  echo "$rc" > "$WORK/study.rc"
}

# pack OUT: what the study has made so far, into OUT (status.txt, logs.tar.gz, artefacts.tar.gz)
pack() {
  local out="$1" runs="$WORK/runs" artefacts="$WORK/artefacts"
  source "$WORK/study.env"
  bash "$REPO/scripts/run_study.sh" --status --runs "$runs" --artefacts "$artefacts" \
    --seeds "$SEEDS" --configs "$CONFIGS" --budget-epochs "$EPOCHS" | tee "$out/status.txt" || true
  # logs first: a run killed mid-write must not cost the others' logs or artefacts
  ( cd "$runs" && tar -czf "$out/logs.tar.gz" --ignore-failed-read --warning=no-file-changed \
      ./*.out ./*/train.log ./*/*.out ./*/eval/*/generate.log 2> /dev/null ) || true
  # an export in progress writes NAME.tmp and renames it when complete: only complete ones
  tar -czf "$out/artefacts.tar.gz" --warning=no-file-changed --exclude='*.tmp' -C "$artefacts" . || true
  ls -l "$out"
}

# collect --out OUT: on the machine a `run --detach-after` left the study running on, wait
# until it has ended (its --budget-s bounds that), then pack what it made into OUT
collect() {
  local out=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --out) out="$2"; shift 2 ;;
      *) echo "gpu_study.sh collect: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
  done
  [[ -n "$out" ]] || { usage >&2; exit 2; }
  [[ -f "$WORK/study.env" ]] || {
    echo "gpu_study.sh collect: no study on this machine ($WORK/study.env): the machine was given back" \
      "since 'run --detach-after' (a fresh one holds nothing)" >&2; exit 2; }
  mkdir -p "$out" && out="$(cd "$out" && pwd)"
  exec > >(tee "$out/run.log") 2>&1
  source "$WORK/study.env"
  # the study's own limit plus its stop (kill-after 20 s) and a margin
  local stop_at=$(( $(date +%s) + COMMAND_S - 60 ))
  while study_running && (( $(date +%s) < END + 40 && $(date +%s) < stop_at )); do sleep 5; done
  cat "$WORK/study.log" 2> /dev/null || true
  [[ -f "$WORK/study.rc" ]] || echo "gpu_study.sh collect: the study has not ended (or was killed before" \
    "writing $WORK/study.rc); packing what exists"
  pack "$out"
}

case "${1:-}" in
  bundle) shift; bundle "$@" ;;
  run) shift; run "$@" ;;
  collect) shift; collect "$@" ;;
  bench) shift; bench "$@" ;;
  _study) study ;;  # internal: the detached half of run --detach-after
  -h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
