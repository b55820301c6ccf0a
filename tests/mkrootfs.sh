#!/bin/bash
# Build a minimal busybox rootfs for integration tests: mkrootfs.sh DIR
#   DIR/bin/busybox (busybox-static) and every applet as a hard link to it in DIR/bin,
#   /etc/passwd and /etc/group with root and nobody (65534), /tmp 1777, /root 700,
#   empty /proc /sys /dev. Idempotent: rerunning over an existing DIR refreshes it.
set -euo pipefail
dir=${1:?usage: mkrootfs.sh DIR}
busybox=${BUSYBOX:-/bin/busybox}
if ! "$busybox" true; then
    echo "mkrootfs.sh: $busybox does not run (install busybox-static)" >&2
    exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
    echo "mkrootfs.sh: $busybox is dynamically linked (install busybox-static)" >&2
    exit 1
fi

mkdir -p "$dir"
cd "$dir"
rm -rf bin
mkdir -p bin etc proc sys dev root tmp mnt home var
chmod 755 . bin etc proc sys dev mnt home var
chmod 700 root
chmod 1777 tmp
install -m 755 "$busybox" bin/busybox
# hard links (the copy's own --install links to itself), so no link points outside the rootfs
bin/busybox --install "$PWD/bin"
[ -x bin/sh ] || { echo "mkrootfs.sh: busybox --install made no links" >&2; exit 1; }
cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
nobody:x:65534:
GROUP
chmod 644 etc/passwd etc/group
