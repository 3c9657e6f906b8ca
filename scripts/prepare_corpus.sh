#!/usr/bin/env bash
# Bring your own parallel corpus -> DATA_DIR/{raw,spm,spm_encoded,bin} (fairseq data-bin).
#
#   scripts/prepare_corpus.sh --input DIR --src en --tgt de --out DATA_DIR \
#       [--train-prefix P] [--valid-prefix P] [--test-prefix P] [--vocab-size 32000] \
#       [--max-len 250] [--ratio 1.5] [--workers N] [--dedup] [--spm-model-type unigram|bpe] ...
#
# Thin wrapper: the logic (and the full --help) is in scripts/pipeline/corpus.py.
# The Python used is $PYTHON if set, else the repository's .venv, else python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

if [[ -n "${PYTHON:-}" ]]; then
    py="$PYTHON"
elif [[ -x "$root/.venv/bin/python" ]]; then
    py="$root/.venv/bin/python"
else
    py="python3"
fi

export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" -m pipeline.corpus "$@"
