#!/bin/bash
# Prints the directory of the test venv for $PYTHON (default python3): $OCI_VENV, or
# .venv/pyX.Y in the checkout.
set -euo pipefail
if [ -n "${OCI_VENV:-}" ]; then
    echo "$OCI_VENV"
    exit 0
fi
v=$("${PYTHON:-python3}" -c 'import sys; print("py%d.%d" % sys.version_info[:2])')
echo "$(cd "$(dirname "$0")/.." && pwd)/.venv/$v"
