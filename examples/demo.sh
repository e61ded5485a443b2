#!/usr/bin/env bash
# The chat demo at http://127.0.0.1:5000 (in-memory manager), from a fresh
# clone with only Python 3 and Node installed: makes .venv, installs greensio
# with Flask, fetches the official socket.io browser client with npm, runs.
# Usage: bash examples/demo.sh [--host H] [--port P]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
. .venv/bin/activate
# reinstall only when setup.py changed since the last install
stamp=.venv/.greensio-demo-installed
if [ ! -f "$stamp" ] || ! cmp -s setup.py "$stamp"; then
    python -m pip install --quiet --upgrade pip
    python -m pip install --quiet -e '.[flask]'
    cp setup.py "$stamp"
fi
if [ ! -f examples/chat/node_modules/socket.io-client/dist/socket.io.min.js ]; then
    (cd examples/chat && npm ci --no-audit --no-fund --silent)
fi
echo "open the address below in two browser tabs; Ctrl-C stops the demo"
exec python -m examples.chat "$@"
