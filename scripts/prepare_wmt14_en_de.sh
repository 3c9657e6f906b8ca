#!/usr/bin/env bash
# WMT14 English->German (Europarl v7 + Common Crawl + News Commentary v9; newstest2013 as
# valid, newstest2014 "full" as test), prepared into DATA_DIR/bin for fairseq:
#
#   scripts/prepare_wmt14_en_de.sh --out DATA_DIR [--download-dir DIR] [--mirror URL_OR_DIR]
#       [--checksums FILE] [--vocab-size 32000] [--workers N] [--download-only] ...
#
# Downloads resume and are checked against published checksums; extraction refuses unsafe
# archive members; then cpmt-prepare-corpus does the rest.  Thin wrapper: the logic
# (and the full --help) is cpmt-prepare-wmt14: contextpool_mt/wmt14.py and download.py.
# Python: scripts/lib/python.sh ($PYTHON, else the repository's .venv, else python3).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/scripts/lib/python.sh"

exec cpmt-prepare-wmt14 "$@"
