#!/bin/bash
# Set up the machine and run the test suite: tests/run.sh [PYTEST ARGS...]
# e.g. tests/run.sh --runtime-bin=/usr/sbin/runc tests/integration   (extra args go to pytest)
# PYTHON (default python3) picks the Python the project is installed for and tested with.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh || { echo "tests/setup.sh failed" >&2; exit 1; }
venv=$(bash tests/venv.sh) || exit 1
# -P: the installed package, not the checkout's sources (which have no compiled shim)
# the whole suite unless paths are given
paths=0
for a in "$@"; do [ -e "${a%%::*}" ] && paths=1; done
[ $paths = 1 ] || set -- tests "$@"
exec "$venv/bin/python" -P -m pytest -q "$@"
