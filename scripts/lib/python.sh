# Sourced by every shell recipe in scripts/: finds the project's Python in one way.
#
#   $PYTHON if set, else the repository's .venv/bin/python (made by `make install`), else python3.
#
# Sets PY to it, exports PYTHON=PY for the scripts this one calls, and puts the interpreter's
# folder first on PATH, so that the fairseq-train / fairseq-generate installed beside it are the
# ones found (without an activated venv, `fairseq-train` would otherwise be "command not found").
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
case ":$PATH:" in
  *":$PY_BIN:"*) ;;
  *) export PATH="$PY_BIN:$PATH" ;;
esac
export PYTHON="$PY"
