# Sourced by every shell recipe in scripts/: finds the project's Python in one way.
#
#   $PYTHON if set, else the repository's .venv/bin/python (made by `make install`), else python3.
#
# Sets PY to it, exports PYTHON=PY for the scripts this one calls, and puts the interpreter's
# folder first on PATH, so that fairseq-train and the project's commands (cpmt-evaluate, ...)
# installed beside it are the ones found (without an activated venv, `fairseq-train` would
# otherwise be "command not found"). Stops when that Python has not got the project installed.
# Needs REPO (the repository root) set before it is sourced.
if [[ -n "${PYTHON:-}" ]]; then
  PY="$PYTHON"
elif [[ -x "$REPO/.venv/bin/python" ]]; then
  PY="$REPO/.venv/bin/python"
else
  PY="$(command -v python3 || true)"
  [[ -n "$PY" ]] || { echo "$(basename "$0"): no Python: run 'make install', or set PYTHON" >&2; exit 127; }
fi
PY_BIN="$(cd "$(dirname "$PY")" && pwd)"
if [[ ! -x "$PY_BIN/cpmt-evaluate" ]]; then
  echo "$(basename "$0"): $PY has not got contextpool-mt installed (no $PY_BIN/cpmt-evaluate):" \
    "run 'make install', or set PYTHON to the venv's python" >&2
  exit 127
fi
case ":$PATH:" in
  *":$PY_BIN:"*) ;;
  *) export PATH="$PY_BIN:$PATH" ;;
esac
export PYTHON="$PY"
