#!/usr/bin/env bash
# The chat demo at http://127.0.0.1:5000 (in-memory manager), from a fresh
# clone with only Python 3 and Node installed: makes .venv, installs greensio
# with Flask, fetches the official socket.io browser client with npm, runs.
# A second run skips the installs.
# Usage: bash examples/demo.sh [--host H] [--port P]
set -euo pipefail
cd "$(dirname "$0")/.."
. examples/setup.sh

python_env flask
node_modules examples/chat
say "starting the chat; open the address below in two browser tabs, Ctrl-C stops it"
exec python -m examples.chat "$@"
