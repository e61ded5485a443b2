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
if [ $# -gt 0 ]; then
    say "running the tests"
    exec python -m pytest -q "$@"
fi
# The whole suite: most tests wait on sockets, timers and other processes, so
# two shards run side by side; then, alone, the tests that stop the services
# the others share (pytest -m serial).
say "running the tests: two shards side by side, then the serial ones"
logs=$(mktemp -d)
python -m pytest -q -p no:cacheprovider -m "not serial" --shard 0/2 > "$logs/0" 2>&1 & first=$!
python -m pytest -q -p no:cacheprovider -m "not serial" --shard 1/2 > "$logs/1" 2>&1 & second=$!
status=0
wait "$first" || status=1
wait "$second" || status=1
cat "$logs/0" "$logs/1"
rm -rf "$logs"
python -m pytest -q -m serial || status=1
exit "$status"
