#!/bin/bash
# Inside the test VM (tests/vm/run.sh runs it from the read-only share /vm/src): copy the checkout to
# the VM's own disk, install it into a venv from what the image carries (no network: --no-index,
# the dependencies are Debian's; a normal install, as tests/setup.sh makes it, pytest run with -P
# as tests/run.sh runs it), then run pytest with the arguments given, once per runtime named
# in $VM_RUNTIMES (default "ociruntime"; "runc" is /usr/sbin/runc).  Exit status: pytest's worst.
#
#   bash /vm/src/tests/vm/inside.sh [PYTEST ARG...]
set -uo pipefail
SRC=/opt/ociruntime/src VENV=/opt/ociruntime/venv  # readable by the rootless tests' user
t0=$(cut -d' ' -f1 /proc/uptime)
mkdir -p "$SRC"
tar -C /vm/src --exclude=./.venv --exclude=./.git --exclude=./build --exclude='*.egg-info' \
    --exclude='__pycache__' --exclude='*.so' --exclude=./.pytest_cache --exclude=./.hypothesis -cf - . |
    tar -C "$SRC" -xf -
python3 -m venv --system-site-packages --without-pip "$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1
if ! python3 -m pip --python "$VENV/bin/python" install -q --no-index --no-build-isolation --force-reinstall --no-deps "$SRC"; then
    echo "inside.sh: pip install of the checkout failed" >&2
    exit 3
fi
echo "inside.sh: installed in $(awk -v t="$t0" '{printf "%.0f", $1 - t}' /proc/uptime) s" \
     "($(cat /sys/fs/cgroup/cgroup.controllers); systemd $(systemctl --version | head -1 | cut -d' ' -f2))"
cd "$SRC" || exit 3
export OCI_TEST_RUNTIME_TIMEOUT=${OCI_TEST_RUNTIME_TIMEOUT:-300}
worst=0
for rt in ${VM_RUNTIMES:-ociruntime}; do
    case $rt in
        runc) bin=/usr/sbin/runc ;;
        *) bin=$VENV/bin/$rt ;;
    esac
    echo "inside.sh: pytest with $bin"
    "$VENV/bin/python" -P -m pytest -p no:cacheprovider --runtime-bin="$bin" "$@"
    rc=$?
    echo "inside.sh: pytest with $rt: exit $rc"
    if [ $rc -ne 0 ]; then
        echo "inside.sh: the journal's last lines (systemd, not the kernel):"
        journalctl -b --no-pager -n 300 -o short-monotonic | grep -v ' kernel: ' | tail -n 60
    fi
    [ $rc -gt $worst ] && worst=$rc
done
exit $worst
