#!/bin/bash
# Idempotent setup of a Debian 12 machine, as root, for the test suite:
#   the system packages the build and the tests need, then a venv of the project's own
#   (tests/venv.sh says where) with the test tools and the project installed as users get it
#   (a normal install from this checkout: the `ociruntime` program built, the shim compiled).
# Environment: PYTHON (default python3) is the interpreter the venv is made from.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# to build: a C compiler, the Python headers and static library (python3-dev, for Debian's own
# python3), seccomp.h; to run the tests: busybox-static (the test rootfs), runc and crun (to compare with),
# uidmap (newuidmap for the rootless tests), strace, iproute2, util-linux, procps
packages=(gcc libc6-dev make python3-venv python3-dev libseccomp2 libseccomp-dev
          busybox-static runc crun uidmap strace iproute2 util-linux procps)
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

venv=$(PYTHON="$PYTHON" bash tests/venv.sh)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
if [ ! -x "$venv/bin/python" ]; then
    "$PYTHON" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q setuptools wheel cffi jsonschema pyroute2 pytest hypothesis fastjsonschema </dev/null
# not editable: the tests run what a user installs (the program, with the package frozen in)
"$venv/bin/python" -m pip install -q --no-build-isolation --force-reinstall --no-deps . </dev/null
# tests/clients/test_cri.py: containerd's CRI plugin, CNI plugins, grpcio and grpcio-tools in the venv
PYTHON="$venv/bin/python" bash tests/clients/setup-cri.sh
