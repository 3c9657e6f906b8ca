#!/usr/bin/env bash
# Translate a prepared corpus's test set with one checkpoint and score it.
#
#   scripts/evaluate.sh --data DATA_DIR --checkpoint CKPT --out EVAL_DIR \
#       [--subset test] [--src en --tgt de] [--beam 4] [--lenpen 0.6] \
#       [--max-tokens 4096] [--batch-size N] [--cpu] [-- EXTRA_FAIRSEQ_GENERATE_ARGS]
#
# Writes EVAL_DIR/hyp.txt, generate.log, hyp.tok, ref.tok and scores.json; the
# work is done by scripts/pipeline/evaluate.py (its docstring says how each
# number is computed). Python: scripts/lib/python.sh ($PYTHON, else .venv, else python3).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$REPO"
source "$REPO/scripts/lib/python.sh"
export PYTHONPATH="$ROOT/scripts:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m pipeline.evaluate "$@"
