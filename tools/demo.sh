#!/bin/bash
# Set everything up on a fresh Debian 12 machine (as root) and run a busybox container from a bundle
# built here: `sudo bash tools/demo.sh [COMMAND...]` (default: a few lines about the container).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive
# busybox-static for the rootfs; libseccomp-dev to build the C shim (seccomp.h)
if ! command -v busybox >/dev/null || ldd "$(command -v busybox)" >/dev/null 2>&1 ||
        ! dpkg-query -W -f='${Status}' libseccomp-dev 2>/dev/null | grep -q 'ok installed'; then
    apt-get update -qq && apt-get install -y -qq busybox-static libseccomp-dev >/dev/null
fi
python3 -m pip install -q -e "$here" 2>&1 | grep -v -e '^WARNING' -e 'pip as the' || true
bundle=$(mktemp -d /tmp/ociruntime-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
bash "$here/tests/mkrootfs.sh" "$bundle/rootfs"
cd "$bundle"
python3 -m ociruntime spec
if [ $# -eq 0 ]; then
    set -- sh -c 'echo "hello from PID $$ on $(hostname)"; id; ls /'
fi
python3 - "$@" <<'PY'
import json, sys
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = sys.argv[1:]
json.dump(c, open("config.json", "w"), indent=2)
PY
rc=0; python3 -m ociruntime run "ociruntime-demo-$$" || rc=$?
exit $rc
