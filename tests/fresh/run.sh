#!/bin/bash
# The README's commands on fresh Debian 12 machines that have only their own python3:
#   tests/fresh/run.sh [PYTEST ARGS]   (as root; the arguments replace the default test selection)
#
# A machine: a Debian 12 root made by mmdebstrap (minbase, this machine's Debian sources, python3
# and ca-certificates, nothing else), cached as a tarball in $FRESH_CACHE keyed by a hash of the
# recipe, unpacked anew into a tmpfs for each machine, given this machine's own certificate
# authorities (its network's TLS proxy) and a copy of the checkout's tracked files at
# /root/ociruntime, and started as a privileged container of its own with runc
# (tests/fresh/machine.py writes its config). tests/fresh/inside.sh runs the commands in it:
#   machine "scripts": `bash tools/demo.sh`, then `bash tests/run.sh` with the test selection;
#   machine "pip": the apt command the README gives for its pip install line, that line from
#   /root, and the installed program's --version.
# Each must exit 0; the demo must print its container's lines, the tests must end with pytest's
# totals and no failure. Every step's output is printed (whole when it failed). Each machine's
# container, state, cgroups and root are removed after it; the tarball and apt's download cache
# (its .debs: apt still reads the indexes each time, and each machine starts without any of the
# packages) stay. pip downloads anew: this network's proxy makes PyPI's answers uncacheable.
# Environment: FRESH_CACHE (default /var/cache/ociruntime-fresh), FRESH_TIMEOUT (seconds per
# machine, default 2400).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${FRESH_CACHE:-/var/cache/ociruntime-fresh}
limit=${FRESH_TIMEOUT:-2400}
started=$(date +%s)
if [ $# -eq 0 ]; then
    set -- -rfEs tests/unit/test_statedir.py tests/integration/test_lifecycle.py tests/integration/test_install.py
fi
say() { echo "fresh: $*"; }
die() { echo "fresh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
# what this script uses beyond a Debian 12 base: mmdebstrap makes the root, runc runs the machines
missing=()
for p in mmdebstrap runc git; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null \
        || die "cannot install ${missing[*]}"
fi
for tool in mmdebstrap runc git python3 flock timeout chroot; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
mkdir -p "$cache/apt/partial" || die "cannot make $cache"

work=$(mktemp -d /tmp/ociruntime-fresh-XXXXXX) || die "mktemp failed"
id=$(basename "$work")

mounts_under() {  # mount points at or under $1, deepest first
    awk -v d="$1" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r
}

our_cgroups() {  # the cgroup directories of machine $1 (named after it: made for this run), deepest first
    find /sys/fs/cgroup -mindepth 2 -type d -name "$1" 2>/dev/null | while read -r d; do
        find "$d" -depth -type d
    done
}

remove() {  # remove DIR [CONTAINER]: the machine's container and cgroups, then the mounts and files under DIR
    local dir=$1 name=${2:-} left=() d i
    if [ -n "$name" ] && [ -d "$dir/state/$name" ]; then
        timeout 60 runc --root "$dir/state" delete --force "$name" || left+=("runc delete --force $name failed")
    fi
    if [ -n "$name" ]; then
        for i in $(seq 50); do
            [ -z "$(our_cgroups "$name")" ] && break
            our_cgroups "$name" | while read -r d; do rmdir "$d" 2>/dev/null; done
            sleep 0.2
        done
        for d in $(our_cgroups "$name"); do left+=("cgroup $d"); done
    fi
    for d in $(mounts_under "$dir"); do
        umount -l "$d" || left+=("mount $d")
    done
    if [ ${#left[@]} -eq 0 ]; then
        rm -rf "$dir"
    else
        printf 'fresh: left behind: %s\n' "${left[@]}" >&2
        return 1
    fi
}
cleanup() {
    local plan ok=0
    for plan in scripts pip; do
        [ ! -d "$work/$plan" ] || remove "$work/$plan" "$id-$plan" || ok=1
    done
    remove "$work" || ok=1
    return $ok
}
runner=""
bounded() {  # bounded [TIMEOUT OPTIONS] SECONDS COMMAND...: timeout, in the background, so that a
    # signal to this script is handled at once (timeout puts itself in a process group of its own,
    # out of reach of the terminal's ^C)
    timeout -k 30 "$@" &
    runner=$!
    wait "$runner"
    local rc=$?
    runner=""
    return $rc
}
trap 'cleanup || exit 1' EXIT
trap '[ -z "$runner" ] || kill "$runner" 2>/dev/null; say "interrupted: removing what this run made"; exit 130' INT TERM

# --- the root: Debian 12 minbase with python3, from this machine's Debian sources ---------------
sources=$work/debian.sources
python3 - "$sources" <<'PY' || die "no Debian 12 apt sources on this machine"
# the entries of this machine's apt sources for Debian 12's suites (bookworm, -updates, -security):
# other repositories need keys the fresh machine does not have
import glob, re, sys
files = glob.glob("/etc/apt/sources.list") + sorted(glob.glob("/etc/apt/sources.list.d/*.list")
                                                    + glob.glob("/etc/apt/sources.list.d/*.sources"))
suite = re.compile(r"^bookworm(-updates|-security)?$")
kept = []
for path in files:
    text = open(path).read()
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
            if fields.get("Enabled", "yes") != "no" and any(suite.match(s) for s in fields.get("Suites", "").split()):
                kept.append("\n".join(l for l in stanza.strip().splitlines() if not l.startswith("#")))
    else:
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if len(words) >= 3 and words[0] == "deb" and suite.match(words[2]):
                kept.append("Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\n"
                            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
                            % (words[1], words[2], " ".join(words[3:])))
if not kept:
    sys.exit(1)
open(sys.argv[1], "w").write("\n\n".join(s.strip() for s in kept) + "\n")
PY
recipe=(--variant=minbase --include=python3,ca-certificates)
if grep -q 'snapshot\.debian\.org' "$sources"; then     # a snapshot's Release files have expired
    recipe+=(--aptopt='Acquire::Check-Valid-Until "false"')
fi
key=$( { printf '%s\n' "${recipe[@]}" bookworm; cat "$sources"; } | sha256sum | cut -c1-16)
tarball=$cache/debian12-$key.tar
exec 8>"$cache/build.lock"
flock -w 1200 8 || die "timed out waiting for another run building $cache"
if [ ! -s "$tarball" ]; then
    say "building the Debian 12 root ($tarball)"
    # TMPDIR: a build cut short leaves its mounts and files under $work, which cleanup removes
    if ! TMPDIR=$work bounded 1200 mmdebstrap --quiet --format=tar "${recipe[@]}" bookworm "$tarball.part" "$sources"; then
        rm -f "$tarball.part"
        die "mmdebstrap failed"
    fi
    mv "$tarball.part" "$tarball"
    for old in "$cache"/debian12-*.tar; do          # roots of earlier recipes
        [ "$old" = "$tarball" ] || rm -f "$old"
    done
fi
exec 8>&-

# --- the machines ---------------------------------------------------------------------------------
# one run at a time uses the apt cache (apt refuses a locked archive directory); another run at the
# same time downloads into a cache of its own
downloads=$cache
exec 9>"$cache/downloads.lock"
if ! flock -n 9; then
    say "another run is using $cache: downloading afresh"
    downloads=$work/downloads
    mkdir -p "$downloads/apt/partial"
fi

passed=0 failed=0 machines=()
judge() {  # judge OUT STEP WHAT LINES: STEP by its exit status and the named check of its output
    local out=$1 name=$2 what=$3 lines=$4 log=$1/$2.log why="" last rc
    rc=$(cat "$out/$name.rc" 2>/dev/null) || rc="none (it did not finish)"
    [ "$rc" = 0 ] || why="exit status $rc"
    if [ -z "$why" ]; then
        case $what in
        demo)
            grep -q '^hello from PID 1 on ' "$log" && grep -q '^uid=0(root)' "$log" \
                || why="the container's lines are missing" ;;
        totals)
            last=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)
            if ! [[ $last =~ ^=*\ ?[0-9]+\ passed ]] || [[ $last =~ [0-9]+\ (failed|errors?)([^a-z]|$) ]]; then
                why="the last line is not pytest's totals without failures: $last"
            fi ;;
        version)
            grep -q '^ociruntime version ' "$log" || why="no version line" ;;
        esac
    fi
    if [ -z "$why" ]; then
        passed=$((passed + 1))
        echo "== $name: passed ($(cat "$out/$name.time") s); its last lines:"
        grep -v '^[[:space:]]*$' "$log" | tail -n "$lines" | sed 's/^/    /'
    else
        failed=$((failed + 1))
        echo "== $name: FAILED: $why; its output:"
        sed 's/^/    /' "$log" 2>/dev/null || echo "    (none)"
    fi
}

machine() {  # machine PLAN [ARGS...]: runs inside.sh PLAN in a fresh machine; its output in $work/PLAN
    local plan=$1 dir=$work/$1 name=$id-$1 rootfs rc t0 cas ca ca_name ca_out
    rootfs=$dir/bundle/rootfs
    mkdir -p "$rootfs" "$dir/state" || die "mkdir failed"
    # the machine's disk is memory: apt's and pip's writes (dpkg syncs every file) and the removal
    # at the end go several times faster than on this machine's shared disk
    mount -t tmpfs -o mode=755,size=8g "$name" "$rootfs" || die "cannot mount a tmpfs on $rootfs"
    tar -C "$rootfs" --numeric-owner --xattrs --xattrs-include='*' -xpf "$tarball" || die "cannot unpack $tarball"
    # the certificate authorities this machine adds to Debian's (its network's TLS proxy): a machine
    # on this network is given them, the way Debian adds a local one
    cas=$rootfs/usr/local/share/ca-certificates
    mkdir -p "$cas"
    for ca in /etc/ssl/certs/*.pem /usr/local/share/ca-certificates/*.crt; do
        [ -f "$ca" ] && [ ! -L "$ca" ] || continue
        ca_name=$(basename "$ca")
        cp "$ca" "$cas/host-${ca_name%.*}.crt" || die "cannot copy $ca"
    done
    ca_out=$(chroot "$rootfs" update-ca-certificates 2>&1) || die "update-ca-certificates failed in the root: $ca_out"
    mkdir -p "$rootfs/root/ociruntime" "$rootfs/var/cache/apt/archives"
    git -C "$repo" ls-files -z | tar -C "$repo" --null -T - -cf - | tar -C "$rootfs/root/ociruntime" -xf - \
        || die "cannot copy the checkout's tracked files"
    python3 "$here/machine.py" "$dir/bundle" "$downloads" fresh-debian12 "$name" \
        /bin/bash /root/ociruntime/tests/fresh/inside.sh "$@" || die "cannot write the machine's config"

    say "machine $name: at most $limit s"
    t0=$(date +%s)
    # SIGKILL: the machine's init ignores SIGTERM (a namespace's init without a handler); runc run
    # killed leaves the container to `runc delete --force` in remove
    bounded -s KILL "$limit" runc --root "$dir/state" run --bundle "$dir/bundle" "$name" >"$dir/machine.log" 2>&1 </dev/null
    rc=$?
    echo "== machine $plan: its own output (runc exit status $rc, $(( $(date +%s) - t0 )) s):"
    [ $rc = 124 ] || [ $rc = 137 ] && echo "    (the machine did not finish in $limit s)"
    sed 's/^/    /' "$dir/machine.log"
    machines+=("$plan $(( $(date +%s) - t0 )) s")
}

machine scripts "$@"
out=$work/scripts/bundle/rootfs/root/fresh-out
judge "$out" fresh status 20
judge "$out" demo demo 14
judge "$out" tests totals 3
remove "$work/scripts" "$id-scripts" || failed=$((failed + 1))

machine pip
out=$work/pip/bundle/rootfs/root/fresh-out
judge "$out" fresh status 20
judge "$out" apt status 2
judge "$out" pip status 2
judge "$out" version version 2
remove "$work/pip" "$id-pip" || failed=$((failed + 1))

say "$(( $(date +%s) - started )) s in all (machines: $(IFS=,; echo "${machines[*]}"))"
echo "fresh: $passed passed, $failed failed"
[ $failed = 0 ]
