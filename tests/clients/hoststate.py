"""The host state the client tests guard: what podman, netavark, conmon and the containerd shim change
outside their private directories (iptables, nftables tables, links, sysctls, hard-coded directories,
cgroups), snapshotted before a module and restored after it; shared between concurrent sessions."""

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess

import helpers

from .clientlib import read

IPT_TABLES = ("filter", "nat", "mangle", "raw")
# paths some client creates whatever its configuration says (hard-coded in podman's image library,
# netavark and the containerd shim); removed afterwards when they did not exist before
HARDCODED_PATHS = ("/run/containers", "/var/lib/containers", "/etc/containers", "/etc/cni", "/run/containerd",
                   "/run/libpod", "/run/runc", "/run/ociruntime", "/run/crun", "/var/lib/cni")
SYSCTLS = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/conf/all/forwarding",
           "/proc/sys/net/ipv6/conf/all/forwarding", "/proc/sys/net/ipv4/conf/all/route_localnet")


def iptables_rules(cmd):
    """{table: [lines of `CMD -t TABLE -S`]}, or {} when the command is missing."""
    if not shutil.which(cmd):
        return {}
    out = {}
    for t in IPT_TABLES:
        r = subprocess.run([cmd, "-w", "-t", t, "-S"], capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            out[t] = r.stdout.splitlines()
    return out


def nft_tables():
    """{'ip nat', ...}: the nftables tables (iptables-nft creates them on first use), or None without nft."""
    if not shutil.which("nft"):
        return None
    r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=30)
    return {line.split(None, 1)[1] for line in r.stdout.splitlines() if line.startswith("table ")}


def links():
    r = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=30)
    return {line.split(":")[1].strip().split("@")[0] for line in r.stdout.splitlines() if ":" in line}


def tree_listing(path):
    if not os.path.lexists(path):
        return None
    out = set()
    for top, dirs, files in os.walk(path):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(top, n), path))
    return out




class HostState:
    """What the clients may change outside their private directory: iptables rules and chains (and the
    nftables tables iptables-nft creates), network links, forwarding sysctls, hard-coded state
    directories, cgroups near the top of each hierarchy, mounts there.

    Other test sessions run concurrently on the machine: only links and cgroups whose names match
    `watch` regexes (what these clients create) are compared, and only mounts under the hard-coded
    directories."""

    def __init__(self, watch_links=(), watch_cgroups=(), shared=None):
        """shared: the shared parts (iptables, nftables, sysctls, hard-coded paths, mounts there) from
        SharedBaseline.join(), taken when the first of the concurrent sessions started."""
        self.watch_links, self.watch_cgroups = watch_links, watch_cgroups
        self.links = {n for n in links() if any(re.search(p, n) for p in watch_links)}
        self.cgroup_top = self._cgroup_top()
        shared = shared or self.shared_snapshot()
        self.ipt, self.sysctls = shared["ipt"], shared["sysctls"]
        self.nft = set(shared["nft"]) if shared["nft"] is not None else None
        self.paths = {p: set(v) if v is not None else None for p, v in shared["paths"].items()}
        self.mounts = set(shared["mounts"])

    @classmethod
    def shared_snapshot(cls):
        """The state every session's clients share, as JSON-able data."""
        nft = nft_tables()
        return {"ipt": {cmd: iptables_rules(cmd) for cmd in ("iptables", "ip6tables")},
                "nft": sorted(nft) if nft is not None else None,
                "sysctls": {p: read(p) for p in SYSCTLS},
                "paths": {p: sorted(v) if v is not None else None for p, v in
                          ((p, tree_listing(p)) for p in HARDCODED_PATHS)},
                "mounts": sorted(cls._mounts())}

    @staticmethod
    def _mounts():
        return set(helpers.mounts_under(HARDCODED_PATHS))

    def _cgroup_top(self):
        """'hierarchy' and 'hierarchy/dir' entries of /sys/fs/cgroup that match watch_cgroups."""
        out = set()
        for h in os.listdir(helpers.CGROUP_ROOT):
            p = os.path.join(helpers.CGROUP_ROOT, h)
            out.add(h)
            if os.path.isdir(p) and os.path.ismount(p):
                out.update(h + "/" + d for d in os.listdir(p) if os.path.isdir(os.path.join(p, d)))
        return {c for c in out if any(re.search(p, c) for p in self.watch_cgroups)}

    def restore(self, expected_rules=(), expected_links=(), expected_paths=(), expected_cgroups=(),
                shared_busy=False):
        """Undo what changed since the snapshot; returns (expected changes undone, unexpected changes
        undone).  expected_*: regexes of what the clients are known to create (their own chains,
        bridge, hard-coded directories, cgroups).  shared_busy: another session's clients are running,
        so what they share (iptables, nftables tables, sysctls, the hard-coded directories) is left
        for the last one to finish."""
        expected, unexpected = [], []
        if shared_busy:
            expected.append("iptables, sysctls and the shared directories left: another session's clients run")

        def note(ok, text):
            (expected if ok else unexpected).append(text)

        def matches(pats, text):
            return any(re.search(p, text) for p in pats)

        now = HostState(self.watch_links, self.watch_cgroups)      # a fresh snapshot of everything
        for cmd in ("iptables", "ip6tables") if not shared_busy else ():
            for table, rules in now.ipt.get(cmd, {}).items():
                before = self.ipt[cmd].get(table, [])
                new = [r for r in rules if r not in before]
                # rules first (they reference chains), in reverse, then the chains: flush, delete
                for rule in reversed([r for r in new if r.startswith("-A ")]):
                    note(matches(expected_rules, rule), f"{cmd} -t {table} {rule}")
                    subprocess.run([cmd, "-w", "-t", table, "-D", *_split_rule(rule[3:])],
                                   capture_output=True, timeout=30)
                chains = [r.split()[1] for r in new if r.startswith("-N ")]
                for ch in chains:
                    subprocess.run([cmd, "-w", "-t", table, "-F", ch], capture_output=True, timeout=30)
                for ch in chains:
                    note(matches(expected_rules, ch), f"{cmd} -t {table} chain {ch}")
                    subprocess.run([cmd, "-w", "-t", table, "-X", ch], capture_output=True, timeout=30)
                for rule in before:     # netavark removes another session's network chains
                    if rule not in rules:
                        note(matches(expected_rules, rule), f"{cmd} -t {table}: {rule!r} gone (not restored)")
        if self.nft is not None and not shared_busy:
            for table in sorted((nft_tables() or set()) - self.nft):
                note(matches(expected_rules, "nft table " + table), f"nft table {table} (iptables-nft)")
                subprocess.run(["nft", "delete", "table", *table.split()], capture_output=True, timeout=30)
        for name in sorted(now.links - self.links):
            note(matches(expected_links, name), f"network link {name}")
            subprocess.run(["ip", "link", "delete", name], capture_output=True, timeout=30)
        for p, v in self.sysctls.items() if not shared_busy else ():
            cur = read(p)
            if cur != v and v is not None:
                note(True, f"sysctl {p} {v} -> {cur}")
                with open(p, "w") as f:
                    f.write(v)
        for p, listing in self.paths.items() if not shared_busy else ():
            cur = now.paths[p]
            if cur == listing:
                continue
            if listing is None:
                note(matches(expected_paths, p), f"{p} created")
                shutil.rmtree(p, ignore_errors=True)
                continue
            for rel in sorted(cur - listing, key=len, reverse=True):
                full = os.path.join(p, rel)
                if any(full.startswith(os.path.join(p, r) + "/") for r in cur - listing if r != rel):
                    continue
                note(matches(expected_paths, full), f"{full} created")
                if os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    try:
                        os.unlink(full)
                    except OSError:
                        pass
        for cg in sorted(now.cgroup_top - self.cgroup_top, key=lambda c: c.count("/"), reverse=True):
            full = os.path.join(helpers.CGROUP_ROOT, cg)
            note(matches(expected_cgroups, cg), f"cgroup {full}")
            if "/" in cg:
                for d in sorted((d for d, _, _ in os.walk(full)), key=lambda x: x.count("/"), reverse=True):
                    helpers.remove_cgroup(d)
            elif not os.path.ismount(full):   # a plain directory conmon made on the cgroup tmpfs
                shutil.rmtree(full, ignore_errors=True)
        for mp in sorted(self._mounts() - self.mounts, key=len, reverse=True):
            unexpected.append(f"mount on {mp}")
            try:
                helpers.umount(mp)
            except OSError:
                pass
        return expected, unexpected


class SharedBaseline:
    """Sessions on this machine may run the client tests at the same time; they share iptables,
    nftables, sysctls and the hard-coded directories.  The first to start records the host's state in
    BASELINE; each module registers as an owner; the last owner to leave restores the host to that
    state (while holding the lock, so no session snapshots a half-restored host).  A baseline whose
    owners all died is kept: the next session restores what the dead ones left."""

    BASELINE = f"/tmp/{helpers.ID_PREFIX}clients-baseline.json"
    LOCK_DIR = "/tmp"          # flock on the directory itself: nothing to leave behind

    def __init__(self, owner):
        self.owner = f"{os.getpid()}:{owner}"

    @contextlib.contextmanager
    def _locked(self):
        fd = os.open(self.LOCK_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                with open(self.BASELINE) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                data = None
            yield data
        finally:
            os.close(fd)

    def _save(self, data):
        tmp = self.BASELINE + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.rename(tmp, self.BASELINE)

    @staticmethod
    def _alive(owners):
        return [o for o in owners if helpers.pid_alive(int(o.split(":")[0]))]

    def join(self):
        """Register; returns the baseline (HostState(shared=...))."""
        with self._locked() as data:
            if data is None:
                data = {"owners": [], "baseline": HostState.shared_snapshot()}
            data["owners"] = self._alive(data["owners"]) + [self.owner]
            self._save(data)
            return data["baseline"]

    @contextlib.contextmanager
    def leave(self):
        """with leave() as last: ... -- last is True when no other owner is alive: restore then."""
        with self._locked() as data:
            owners = self._alive([o for o in (data or {}).get("owners", []) if o != self.owner])
            yield not owners
            if owners:
                data["owners"] = owners
                self._save(data)
            else:
                try:
                    os.unlink(self.BASELINE)
                except FileNotFoundError:
                    pass


def _split_rule(text):
    import shlex
    return shlex.split(text)
