#!/usr/bin/env bash
# Install everything the test suite needs into .venv and run it.
# Usage: bash tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e '.[dev]'

for dir in tests/js tests/performance tests/browser examples/chat; do
    if [ -f "$dir/package-lock.json" ]; then
        (cd "$dir" && npm ci --no-audit --no-fund --silent)
    fi
done

exec python -m pytest -q "$@" tests
