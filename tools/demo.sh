#!/bin/bash
# Set everything up on a fresh Debian 12 machine (as root) and run a busybox container from a bundle
# built here: `sudo bash tools/demo.sh [COMMAND...]` (default: a few lines about the container).
# Installs the system packages the build needs, makes a venv of its own (.venv/pyX.Y in the
# checkout, as the tests do), installs ociruntime there and runs the container with it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
packages=(gcc libc6-dev python3-venv python3-dev libseccomp2 libseccomp-dev busybox-static)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi
venv=$(PYTHON="$PYTHON" bash "$here/tests/venv.sh")
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
[ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install -q setuptools wheel cffi </dev/null
"$venv/bin/python" -m pip install -q --no-build-isolation "$here" </dev/null
ociruntime=$venv/bin/ociruntime

bundle=$(mktemp -d /tmp/ociruntime-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
bash "$here/tests/mkrootfs.sh" "$bundle/rootfs"
cd "$bundle"
"$ociruntime" spec
if [ $# -eq 0 ]; then
    set -- sh -c 'echo "hello from PID $$ on $(hostname)"; id; ls /'
fi
"$venv/bin/python" - "$@" <<'PY'
import json, sys
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = sys.argv[1:]
json.dump(c, open("config.json", "w"), indent=2)
PY
rc=0; "$ociruntime" run "ociruntime-demo-$$" || rc=$?
exit $rc
