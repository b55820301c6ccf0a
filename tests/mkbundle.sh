#!/bin/bash
# Write a test bundle: mkbundle.sh DIR [ARG...]
#   DIR/rootfs (tests/mkrootfs.sh) and DIR/config.json: what `runc spec` prints, with terminal false
#   and process.args = ARG... (default: sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: mkbundle.sh DIR [ARG...]}
shift
mkdir -p "$dir"
bash "$here/mkrootfs.sh" "$dir/rootfs"
"${PYTHON:-python3}" "$here/helpers.py" spec "$@" > "$dir/config.json"
