#!/bin/bash
# What tests/clients/test_cri.py needs, installed idempotently as root on Debian 12 (tests/setup.sh calls it):
#   containerd (its CRI plugin and containerd-shim-runc-v2), containernetworking-plugins (the bridge,
#   host-local and loopback CNI plugins in /usr/lib/cni), gcc and libc6-dev (the pause image's static
#   /pause is compiled at test time), and grpcio + grpcio-tools for the interpreter the tests run with
#   (the CRI client: cri_api.proto is compiled at test time).
# Environment: PYTHON (default python3) is that interpreter.
set -euo pipefail
PYTHON=${PYTHON:-python3}

packages=(containerd containernetworking-plugins gcc libc6-dev iproute2)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

if ! "$PYTHON" -c 'import grpc, grpc_tools.protoc' 2>/dev/null; then
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
        "$PYTHON" -m pip install -q grpcio grpcio-tools </dev/null
fi
