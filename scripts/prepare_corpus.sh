#!/usr/bin/env bash
# Bring your own parallel corpus -> DATA_DIR/{raw,spm,spm_encoded,bin} (fairseq data-bin).
#
#   scripts/prepare_corpus.sh --input DIR --src en --tgt de --out DATA_DIR \
#       [--train-prefix P] [--valid-prefix P] [--test-prefix P] [--vocab-size 32000] \
#       [--max-len 250] [--ratio 1.5] [--workers N] [--dedup] [--spm-model-type unigram|bpe] ...
#
# Thin wrapper: the logic (and the full --help) is in scripts/pipeline/corpus.py.
# Python: scripts/lib/python.sh ($PYTHON, else the repository's .venv, else python3).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/scripts/lib/python.sh"

export PYTHONPATH="$REPO/scripts${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m pipeline.corpus "$@"
