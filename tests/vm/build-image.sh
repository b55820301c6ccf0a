#!/bin/bash
# Build (or reuse) the test VM's image: Debian 12 with systemd as PID 1 on pure cgroup v2.
#
#   tests/vm/build-image.sh        prints the image's directory on its last line
#
# The image is made with mmdebstrap (minbase) from this machine's apt sources, with the packages of
# tests/vm/packages.txt, and packed as an ext4 disk image; beside it the kernel, unpacked from its
# vmlinuz (booted directly: the decompressor alone costs ~10 s under TCG), and a tiny busybox initrd
# that loads the disk's modules and switches to it.  It is cached in $OCIRUNTIME_VM_CACHE (default
# /var/cache/ociruntime-vm) under a hash of this script and the package list, and reused while
# both are unchanged; older builds are removed.  Everything it needs on this machine is installed
# here (CI starts from a clean machine).  Runs as root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${OCIRUNTIME_VM_CACHE:-/var/cache/ociruntime-vm}
SUITE=bookworm

log() { echo "build-image: $*" >&2; }

host_tools() {
    local want=(mmdebstrap qemu-system-x86 e2fsprogs busybox-static xz-utils zstd cpio) missing=() p
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq </dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
    fi
}

packages() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$HERE/packages.txt" | tr -d ' \t'; }

# the host's Debian sources (deb822 or one-line), without third-party repositories
sources() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && grep -qE 'debian\.org|debian/?( |$)' "$f" && echo "$f"
    done
    return 0
}

host_tools
KEY=$(cat "$0" "$HERE/packages.txt" | sha256sum | cut -c1-16)
OUT=$CACHE/$KEY
if [ -f "$OUT/ready" ]; then
    echo "$OUT"
    exit 0
fi
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9                       # one build at a time; another may have finished it meanwhile
if [ -f "$OUT/ready" ]; then
    echo "$OUT"
    exit 0
fi

WORK=$(mktemp -d "$CACHE/.build-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
start=$(date +%s)
mapfile -t SRC < <(sources)
[ ${#SRC[@]} -gt 0 ] || { log "no Debian apt sources on this machine"; exit 1; }
log "mmdebstrap $SUITE from ${SRC[*]}"
mmdebstrap --variant=minbase --quiet \
    --include="$(packages | paste -sd,)" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --aptopt='APT::Install-Recommends "false"' \
    "$SUITE" "$ROOT" "${SRC[@]}" </dev/null

log "configuring"
echo vm >"$ROOT/etc/hostname"
echo "127.0.1.1 vm" >>"$ROOT/etc/hosts"
: >"$ROOT/etc/machine-id"      # made at each boot
passwd_line() { grep -q "^$1:" "$ROOT/etc/passwd"; }
# the disk is the root, the checkout (read-only) and the results directory are 9p shares
cat >"$ROOT/etc/fstab" <<'EOF'
/dev/vda / ext4 rw,noatime 0 1
src /vm/src 9p trans=virtio,version=9p2000.L,msize=524288,ro,nofail 0 0
out /vm/out 9p trans=virtio,version=9p2000.L,msize=524288,nofail 0 0
EOF
mkdir -p "$ROOT/vm/src" "$ROOT/vm/out"
# the unit that runs the command once the system is up (tests/vm/run.sh), with a delegated cgroup
# as a container manager's (podman's, containerd's) has, then powers the machine off
cat >"$ROOT/etc/systemd/system/vm-run.service" <<'EOF'
[Unit]
Description=ociruntime test VM: run /vm/out/cmd
After=basic.target local-fs.target dbus.service systemd-logind.service systemd-user-sessions.service
Wants=dbus.service systemd-logind.service
RequiresMountsFor=/vm/src /vm/out
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=exec
Delegate=yes
ExecStart=/usr/local/sbin/vm-run
Environment=HOME=/root LANG=C.UTF-8
WorkingDirectory=/root
TimeoutStartSec=infinity
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
EOF
cat >"$ROOT/usr/local/sbin/vm-run" <<'EOF'
#!/bin/bash
# run /vm/out/cmd as root; its output goes to /vm/out/output, its exit status to /vm/out/rc
echo "vm-run: system up after $(cut -d' ' -f1 /proc/uptime) s" >/vm/out/output
bash /vm/out/cmd >>/vm/out/output 2>&1 </dev/null
rc=$?
sync
echo $rc >/vm/out/rc.tmp && mv /vm/out/rc.tmp /vm/out/rc
exit 0
EOF
chmod 755 "$ROOT/usr/local/sbin/vm-run"
ln -sf /etc/systemd/system/vm-run.service "$ROOT/etc/systemd/system/multi-user.target.wants/vm-run.service"
# nothing that is not needed starts at boot (every process is ~30x slower under TCG); containerd is
# started by its tests with their own configuration
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
         man-db.timer dpkg-db-backup.timer systemd-tmpfiles-clean.timer containerd.service \
         podman-auto-update.timer podman-auto-update.service podman-restart.service \
         podman-clean-transient.service podman.service podman.socket \
         serial-getty@ttyS0.service getty@tty1.service systemd-timesyncd.service \
         systemd-networkd-wait-online.service; do
    ln -sf /dev/null "$ROOT/etc/systemd/system/$u"
done
# a user for the rootless tests (linger is enabled by the test that needs its user@UID.service)
if ! passwd_line ocivm; then
    chroot "$ROOT" useradd --create-home --uid 1000 --user-group --shell /bin/bash ocivm
fi
grep -q '^ocivm:' "$ROOT/etc/subuid" 2>/dev/null || echo "ocivm:100000:65536" >>"$ROOT/etc/subuid"
grep -q '^ocivm:' "$ROOT/etc/subgid" 2>/dev/null || echo "ocivm:100000:65536" >>"$ROOT/etc/subgid"
# podman: the systemd cgroup manager (its default), no network, files as this kind of machine needs
mkdir -p "$ROOT/etc/containers"
cat >"$ROOT/etc/containers/containers.conf" <<'EOF'
[engine]
cgroup_manager = "systemd"
events_logger = "file"
EOF
rm -rf "$ROOT/var/cache/apt/"*.bin "$ROOT/var/lib/apt/lists/"*_Packages "$ROOT/var/cache/apt/archives/"*.deb

log "kernel and initrd"
KVER=$(basename "$(ls -d "$ROOT"/lib/modules/* | sort -V | tail -1)")
# the ELF kernel out of the bzImage (what scripts/extract-vmlinux does): the first payload that
# decompresses to an ELF file
unpack_kernel() {
    local img=$1 out=$2 pair off
    for pair in '\xfd\x37\x7a\x58\x5a\x00:xz -dc' '\x28\xb5\x2f\xfd:zstd -dc' '\x1f\x8b\x08\x00:gzip -dc'; do
        for off in $(LC_ALL=C grep -obUaP "${pair%%:*}" "$img" | cut -d: -f1); do
            tail -c +$((off + 1)) "$img" | ${pair#*:} 2>/dev/null >"$out.tmp" || true
            if [ "$(head -c 4 "$out.tmp" | od -A n -t x1 | tr -d ' ')" = 7f454c46 ]; then
                mv "$out.tmp" "$out"
                return 0
            fi
        done
    done
    rm -f "$out.tmp"
    return 1
}
unpack_kernel "$ROOT/boot/vmlinuz-$KVER" "$WORK/vmlinux" || { log "cannot unpack vmlinuz-$KVER"; exit 1; }

INITRD=$WORK/initrd
mkdir -p "$INITRD"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$ROOT/bin/busybox" "$INITRD/bin/busybox"      # busybox-static's
# the modules the initrd needs for the disk (virtio, ext4), with their dependencies, in load order
MODDIR=$ROOT/lib/modules/$KVER
moddeps() {  # prints the module files (relative to MODDIR) for module name $1, dependencies first
    local name=$1 line f dep
    line=$(grep -E "(^|/)${name//_/[-_]}\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep" || true)
    [ -n "$line" ] || return 0          # built in
    f=${line%%:*}
    for dep in ${line#*:}; do
        dep=$(basename "$dep"); dep=${dep%%.ko*}
        moddeps "$dep"
    done
    echo "$f"
}
: >"$INITRD/modules"
for m in virtio_pci virtio_blk ext4 crc32c_generic; do
    for f in $(moddeps "$m"); do
        grep -qx "$f" "$INITRD/modules" && continue
        echo "$f" >>"$INITRD/modules"
    done
done
while read -r f; do
    mkdir -p "$INITRD/lib/modules/$(dirname "$f")"
    case $f in
        *.xz) xz -dc "$MODDIR/$f" >"$INITRD/lib/modules/${f%.xz}" ;;
        *.zst) zstd -qdc "$MODDIR/$f" >"$INITRD/lib/modules/${f%.zst}" ;;
        *) cp "$MODDIR/$f" "$INITRD/lib/modules/$f" ;;
    esac
done <"$INITRD/modules"
sed -i -e 's/\.xz$//' -e 's/\.zst$//' "$INITRD/modules"
cat >"$INITRD/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
while read -r m; do /bin/busybox insmod "/lib/modules/$m" 2>/dev/null; done </modules
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do /bin/busybox sleep 0.05; i=$((i + 1)); done
/bin/busybox mount -t ext4 -o rw,noatime /dev/vda /newroot || { echo "initrd: cannot mount /dev/vda"; /bin/busybox poweroff -f; }
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /sbin/init
EOF
chmod 755 "$INITRD/init"
(cd "$INITRD" && find . | cpio -o -H newc --quiet | gzip -1) >"$WORK/initrd.gz"

log "disk image"
used=$(du -sm "$ROOT" | cut -f1)
# room for the tests' bundles, podman's and containerd's stores (writes go to qemu's -snapshot file)
truncate -s $((used + 3072))M "$WORK/root.img"
mkfs.ext4 -q -F -L vmroot -d "$ROOT" "$WORK/root.img"
echo "$KVER" >"$WORK/kernel-version"
rm -rf "$ROOT" "$INITRD"
mv "$WORK" "$OUT.tmp"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
touch "$OUT/ready"
trap - EXIT
for old in "$CACHE"/*; do
    [ "$old" = "$OUT" ] || rm -rf "$old"
done
log "built $OUT in $(( $(date +%s) - start )) s ($(du -sh "$OUT/root.img" | cut -f1) used of $(du -sh --apparent-size "$OUT/root.img" | cut -f1))"
echo "$OUT"
