#!/usr/bin/env bash
# Install vaultkit into .venv and run the end-to-end quickstart on embedded defaults:
# no servers, a local key provider, local files. Everything it writes goes to a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[sql]'
exec .venv/bin/python examples/quickstart.py "$@"
