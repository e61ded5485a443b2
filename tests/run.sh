#!/usr/bin/env bash
# Install everything the test suite needs (once) and run it.
# Needs Python 3.11 with venv, Node 20 with npm, RabbitMQ and Redis on
# 127.0.0.1, Chromium and nginx (installed here with apt-get when run as root).
# Usage: bash tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
. examples/setup.sh

if [ -z "${CHROMIUM:-}" ]; then  # the browser test's headless browser
    system_package chromium chromium
fi
# the load balancer in front of several gunicorns (Debian puts it in /usr/sbin)
PATH="$PATH:/usr/sbin" system_package nginx nginx
python_env dev
# sanic brings uvloop, which uvicorn would pick for every asyncio test: its server runs from a venv of its own
install_env .venv-sanic sanic
export GREENSIO_SANIC_PYTHON="$PWD/.venv-sanic/bin/python"
for dir in tests/js tests/performance tests/browser examples/chat; do
    node_modules "$dir"
done
say "running the tests"
exec python -m pytest -q "$@"
