#!/bin/bash
# Set up the machine and run the whole test suite: tests/run.sh [PYTEST ARGS...]
# e.g. tests/run.sh --runtime-bin=/usr/sbin/runc tests/integration   (extra args go to pytest)
set -uo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh || { echo "tests/setup.sh failed" >&2; exit 1; }
exec "${PYTHON:-python3}" -m pytest -q tests "$@"
