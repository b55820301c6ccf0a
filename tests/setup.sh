#!/bin/bash
# Idempotent setup of a Debian 12 machine, as root, for the test suite:
#   system packages (busybox-static for the test rootfs, runc to compare with, iproute2, util-linux, procps,
#   libseccomp (the shim builds against seccomp.h and dlopens libseccomp.so.2), gcc for the seccomp tests' probe),
#   the project itself (editable, when it has a setup.py/pyproject.toml) and the Python test tools.
# Environment: PYTHON (default python3) is the interpreter the project and the tests run with.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

packages=(busybox-static runc iproute2 util-linux procps libseccomp2 libseccomp-dev gcc libc6-dev)
# tests/clients: podman (conmon, netavark for the bridge network, iptables; nftables only to remove the
# tables iptables-nft leaves), containerd (its shim), grpcio for Debian's python3 (containerd's
# Tasks/Update: ctr has no update command).  Those tests skip when these are missing.
client_packages=(podman conmon netavark iptables nftables containerd python3-grpcio)
missing=()
for p in "${packages[@]}" "${client_packages[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null; then
        echo "tests/setup.sh: could not install the client packages; tests/clients will be skipped" >&2
        apt-get install -y -qq --no-install-recommends "${packages[@]}" </dev/null
    fi
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
"$PYTHON" -m pip install -q pytest hypothesis jsonschema </dev/null
if [ -f setup.py ] || [ -f pyproject.toml ]; then
    "$PYTHON" -m pip install -q -e . </dev/null
fi
