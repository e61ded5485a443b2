# Sourced by examples/demo.sh and tests/run.sh: install what they need into
# the repository's .venv, once.  Each step leaves a stamp (a copy of the file
# it installed from), so a second run skips what is already installed and a
# changed setup.py or package-lock.json installs again.

say() { printf '[%s] %s\n' "$(basename "$0")" "$*"; }

# quietly PATTERN COMMAND...: show only the output lines that match PATTERN
# (progress), and the last lines of the whole output if the command fails.
quietly() {
    local pattern=$1 log
    shift
    log=$(mktemp)
    if "$@" 2>&1 | tee "$log" | sed -u -n "/$pattern/p"; then
        rm -f "$log"
        return 0
    fi
    say "failed: $*"
    tail -n 40 "$log"
    rm -f "$log"
    return 1
}

# install_env DIR EXTRAS: a venv in DIR with greensio installed editable with those extras.
install_env() {
    if [ ! -x "$1/bin/python" ]; then
        say "creating $1"
        python3 -m venv "$1"
    fi
    local stamp="$1/.greensio-installed-$2"
    if [ -f "$stamp" ] && cmp -s setup.py "$stamp"; then
        return 0
    fi
    say "installing greensio[$2] into $1 (first run, or setup.py changed)"
    quietly '^Successfully' "$1/bin/python" -m pip install --progress-bar off --upgrade pip
    quietly '^\(Collecting\|Successfully\)' "$1/bin/python" -m pip install --progress-bar off -e ".[$2]"
    cp setup.py "$stamp"
}

# python_env EXTRAS: .venv with greensio installed editable with those extras, activated.
python_env() {
    install_env .venv "$1"
    . .venv/bin/activate
}

# node_modules DIR: npm ci in DIR unless its package-lock.json is the one last installed.
node_modules() {
    local stamp="$1/node_modules/.greensio-installed"
    if [ -f "$stamp" ] && cmp -s "$1/package-lock.json" "$stamp"; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || { say "error: npm not found: install Node.js 20 with npm"; return 1; }
    say "npm ci in $1"
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$1/package-lock.json" "$stamp"
}

# system_package COMMAND PACKAGE: the Debian package that provides COMMAND, installed if missing.
system_package() {
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "error: $1 is missing: install it first (sudo apt-get install -y $2)"
        return 1
    fi
    if [ -z "${_apt_updated:-}" ]; then
        say "apt-get update (to install $2)"
        quietly '^Fetched' timeout 600 apt-get update -q
        _apt_updated=1
    fi
    say "apt-get install $2 (up to a few minutes)"
    DEBIAN_FRONTEND=noninteractive quietly '^\(Need to get\|Setting up '"$2"' \)' \
        timeout 1200 apt-get install -y -q --no-install-recommends "$2"
}
