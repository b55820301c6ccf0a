#!/bin/bash
# Boot the test VM (tests/vm/build-image.sh's image, built first when missing) and run a command in it.
#
#   tests/vm/run.sh [--timeout SECONDS] [--smp N] [--mem MiB] COMMAND [ARG...]
#
# The VM: Debian 12, systemd as PID 1 on pure cgroup v2 (systemd.unified_cgroup_hierarchy=1), under
# qemu's TCG (this machine's /dev/kvm does not boot a stock kernel), the disk in -snapshot mode (the
# image is never written), no network.  This checkout is shared read-only at /vm/src (9p); the
# command runs as root with bash, once the system is up, in a systemd service with Delegate=yes
# (vm-run.service: its cgroup is /system.slice/vm-run.service), with /vm/out (a second 9p share)
# for what it leaves to the host.  Its output is printed here as it comes, and this script exits
# with its exit status; 124 when the hard timeout (default 3600 s) ends the VM first, 125 when the
# VM stopped without the command's status.  qemu is always ended (by pid) and the temporary files
# removed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
TIMEOUT=3600 SMP=2 MEM=3072
while [ $# -gt 0 ]; do
    case $1 in
        --timeout) TIMEOUT=$2; shift 2 ;;
        --smp) SMP=$2; shift 2 ;;
        --mem) MEM=$2; shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--timeout SECONDS] [--smp N] [--mem MiB] COMMAND [ARG...]" >&2; exit 2; }

IMAGE=$(bash "$HERE/build-image.sh" | tail -1)
TMP=$(mktemp -d /var/tmp/ociruntime-vm-XXXXXX)
QEMU_PID= TAIL_PID=
cleanup() {
    local pid
    for pid in $QEMU_PID $TAIL_PID; do
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir "$TMP/out"
{
    printf '%q ' "$@"
    echo
} >"$TMP/out/cmd"
: >"$TMP/out/output"

# -snapshot's overlay goes to TMPDIR: into $TMP, removed with it
TMPDIR=$TMP qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp "$SMP" -m "$MEM" \
    -nodefaults -no-user-config -display none -no-reboot \
    -serial "file:$TMP/console.log" \
    -kernel "$IMAGE/vmlinux" -initrd "$IMAGE/initrd.gz" \
    -append "console=ttyS0 rdinit=/init systemd.unified_cgroup_hierarchy=1 panic=-1 quiet loglevel=4 systemd.show_status=0 mitigations=off" \
    -drive "file=$IMAGE/root.img,format=raw,if=virtio,cache=unsafe" -snapshot \
    -fsdev "local,id=src,path=$SRC,security_model=none,readonly=on" \
    -device virtio-9p-pci,fsdev=src,mount_tag=src \
    -fsdev "local,id=out,path=$TMP/out,security_model=none" \
    -device virtio-9p-pci,fsdev=out,mount_tag=out \
    -device virtio-rng-pci -nic none \
    </dev/null >"$TMP/qemu.log" 2>&1 &
QEMU_PID=$!
tail -n +1 -F "$TMP/out/output" 2>/dev/null &
TAIL_PID=$!

deadline=$(( $(date +%s) + TIMEOUT ))
rc=
while kill -0 "$QEMU_PID" 2>/dev/null; do
    if [ -f "$TMP/out/rc" ]; then
        rc=$(cat "$TMP/out/rc")
        sleep 1          # the powering off (poweroff-force) takes a moment; qemu is ended anyway
        break
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "tests/vm/run.sh: timed out after $TIMEOUT s; the console's last lines:" >&2
        tail -n 30 "$TMP/console.log" >&2 || true
        exit 124
    fi
    sleep 1
done
[ -n "$rc" ] || { [ -f "$TMP/out/rc" ] && rc=$(cat "$TMP/out/rc"); } || true
sleep 0.5                # let tail print the last lines
if [ -z "$rc" ]; then
    echo "tests/vm/run.sh: the VM stopped without the command's exit status; qemu said:" >&2
    tail -n 20 "$TMP/qemu.log" >&2 || true
    echo "tests/vm/run.sh: the console's last lines:" >&2
    tail -n 40 "$TMP/console.log" >&2 || true
    exit 125
fi
exit "$rc"
