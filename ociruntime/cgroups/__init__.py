"""Cgroups: find the host's layout (pure v1, hybrid, pure v2) and manage the container's cgroups.

``Manager`` is the one interface the lifecycle uses: create, add (a process, optionally into a
sub-cgroup: exec --cgroup), apply (linux.resources), freeze / frozen, stats, procs, kill_all,
oom_watch, destroy.  It keeps, per hierarchy, the container's directory and the directories it
created, so that ``destroy`` removes exactly those and never touches a cgroup the runtime did not
make (the removal, the freezer check and the walk are ociruntime/cgroupdirs.py's, imported where
used: create does not need them).  Pure v2 (only the unified hierarchy) is driven by v2.py; v1 and
hybrid by v1.py (on a hybrid host the unified hierarchy is joined only, as runc does).  One module
per controller.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)
import time

from ociruntime import dirname, exists, isdir, join, kill_point, normpath, read_file, read_text
from ociruntime.errors import CgroupError


def _unescape(s):
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


# a v1 hierarchy's superblock options that name no controller (systemd mounts name=systemd with
# xattr: its controllers-option is "name=systemd", as /proc/self/cgroup names it)
MOUNT_OPTIONS = frozenset(("rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods"))


def detect():
    """[(key, mountpoint, version, controllers-option)]: each cgroup hierarchy of this mount
    namespace once, at its first mount of the whole hierarchy (root "/") still seen, else its
    first mount.  Other mounts of a hierarchy are not its mountpoint: a container's view of its
    own cgroup (a bind of a subtree), or a whole hierarchy mounted again elsewhere (a container
    running in this mount namespace mounts one under its rootfs)."""
    top = {}
    for line in read_text("/proc/self/mountinfo").split("\n"):
        left, _, right = line.partition(" - ")
        fields, fs = left.split(), right.split()
        if fs and len(fields) > 4:  # the last mount on a mountpoint is the one seen (a tmpfs may cover one)
            top[_unescape(fields[4])] = (_unescape(fields[3]), fs)
    found = {}  # hierarchy -> (key, mountpoint, version, opts, whole), in the order first mounted
    for mp, (root, fs) in top.items():
        if fs[0] not in ("cgroup", "cgroup2"):
            continue
        if fs[0] == "cgroup2":
            key, version, opts = "unified", 2, ""
        else:
            opts = ",".join(o for o in fs[2].split(",")
                            if o not in MOUNT_OPTIONS and "=" not in o or o.startswith("name="))
            key, version = mp.rpartition("/")[2], 1
        hierarchy = opts if version == 1 else ""
        if hierarchy not in found or (root == "/" and not found[hierarchy][4]):
            found[hierarchy] = (key, mp, version, opts, root == "/")
    return [f[:4] for f in found.values()]


def own_cgroups():
    """{controllers-option or "" (v2): path} from /proc/self/cgroup."""
    own = {}
    for line in read_text("/proc/self/cgroup").split("\n"):
        if not line:
            continue
        _, ctrls, path = line.split(":", 2)
        own[ctrls] = path
    return own


def _own_path(own, version, opts):
    if version == 2:
        return own.get("", "/")
    want = set(opts.split(","))
    for ctrls, path in own.items():
        if ctrls and set(ctrls.split(",")) == want:
            return path
    return "/"


def container_paths(cgroups_path, cid):
    """{key: (mountpoint, path inside the hierarchy, version, opts)} for the container.

    Absolute cgroupsPath is taken from each hierarchy's root.  A relative one (and the default,
    the container id) nests, as runc's: on v1 (and a hybrid host's unified hierarchy) under the
    runtime's own cgroup in that hierarchy; on pure v2 under the *parent* of the runtime's own
    cgroup, which holds processes (the runtime's at least) and so, by the kernel's no-internal-
    process rule, can enable no controller for a child.
    """
    rel = cgroups_path if cgroups_path else cid
    own = None
    out = {}
    found = detect()
    pure_v2 = len(found) == 1 and found[0][2] == 2
    for key, mp, version, opts in found:
        if rel.startswith("/"):
            p = normpath(rel)
        else:
            if own is None:
                own = own_cgroups()
            base = _own_path(own, version, opts)
            if pure_v2:
                base = dirname(base) or "/"
            p = normpath(join(base, rel))
        if p == "/" or ".." in p.split("/"):
            raise CgroupError("cgroupsPath %r: must name a cgroup below the root" % cgroups_path)
        out[key] = (mp, p, version, opts)
    return out


class Manager:
    def __init__(self, paths, created=(), ancestors=False):
        self.paths = paths          # key -> (mountpoint, cgroup path, version, opts)
        self.created = list(created)  # directories made by create(), parents first
        # create() enables controllers in the cgroups above the container's that it did not make
        # (the host's layout is pure v2); otherwise only in those it made
        self.ancestors = ancestors

    @classmethod
    def for_config(cls, config, cid):
        paths = container_paths(config.get("linux", {}).get("cgroupsPath") or "", cid)
        return cls(paths, ancestors=list(paths) == ["unified"])

    @classmethod
    def from_state(cls, st):
        if st.get("systemd") and cls is Manager:  # the systemd driver's scope
            from ociruntime.cgroups.systemd import SystemdManager
            return SystemdManager.from_state(st)
        return cls({k: tuple(v) for k, v in st["paths"].items()}, st.get("created", ()))

    def to_state(self):
        return {"paths": {k: list(v) for k, v in self.paths.items()}, "created": self.created}

    @property
    def v2(self):
        """True on a pure v2 layout (the unified hierarchy is the only one)."""
        return all(v[2] == 2 for v in self.paths.values()) and bool(self.paths)

    def dir(self, key):
        mp, p, _, _ = self.paths[key]
        return mp + p

    def v1dir(self, ctrl):
        """The container's directory in the v1 hierarchy that carries controller ``ctrl``, or None."""
        for key, (mp, p, version, opts) in self.paths.items():
            if version == 1 and ctrl in opts.split(","):
                return mp + p
        return None

    def key_of(self, ctrl):
        """The hierarchy key (of ``paths``) carrying controller ``ctrl`` ("cpu", "name=systemd"),
        for exec --cgroup CTRL:PATH; on pure v2 every controller is "unified"; None if absent."""
        if self.v2:
            return "unified"
        for key, (_, _, version, opts) in self.paths.items():
            if version == 1 and ctrl in opts.split(","):
                return key
        return None

    def plan(self):
        """The directories create() is to make: those missing now, parents first (recorded before
        they are made, statedir.py's made.json, so that a create killed half-way leaves a record
        of each)."""
        out = []
        for mp, p, _, _ in self.paths.values():
            missing, cur = [], mp + p
            while cur != mp and not isdir(cur):
                missing.append(cur)
                cur = dirname(cur)
            out += reversed(missing)
        return out

    def create(self, planned=None):
        """Make the directories ``planned`` (plan()'s list; every missing one when None), recorded
        in ``created`` as each is made; returns False when one of them turned out to exist (made
        by someone else meanwhile: not ours, and not in ``created``).  On pure v2, as runc, the
        controllers the root offers are enabled down the path, in each ancestor's
        cgroup.subtree_control from the root (best effort: what an ancestor cannot pass on is
        refused by apply, naming the controller)."""
        if planned is None:
            planned = self.plan()
        if self.v2:
            from ociruntime.cgroups.v2 import enable_down
            mp, p, _, _ = self.paths["unified"]
            before = len(self.created)
            enable_down(mp, p, self.created, self.ancestors)
            return self.created[before:] == planned
        exact = True
        for cur in planned:
            try:
                os.mkdir(cur, 0o755)
            except FileExistsError:
                exact = False
                continue
            except OSError as e:
                raise CgroupError("create cgroup %s: %s" % (cur, e.strerror)) from None
            self.created.append(cur)  # (first: destroy removes it whatever fails next)
            kill_point("create:cgroup-made")
        if "cpuset" in self.paths and self.paths["cpuset"][2] == 1:
            fill_cpuset(self.paths["cpuset"][0], self.dir("cpuset"), self.dir("cpuset") in self.created)
        return exact

    def check_thawed(self):
        """Refuse a cgroup frozen before the container is in it (by another tool, itself or an
        ancestor: a new cgroup inherits its parent's freeze): the init would stop in the freezer
        as it joins, and create would wait for it for ever (runc refuses the same way)."""
        for key, (mp, p, version, opts) in self.paths.items():
            d = mp + p
            try:
                if version == 1 and "freezer" in opts.split(","):
                    value = read_text(d + "/freezer.state").strip()
                    frozen = value in ("FROZEN", "FREEZING")
                    what = "freezer.state " + value
                elif version == 2:
                    # frozen, or freezing: its own cgroup.freeze set while processes in it have
                    # yet to stop (as v1's FREEZING)
                    frozen = "frozen 1" in read_text(d + "/cgroup.events").splitlines()
                    what = "cgroup.events: frozen 1"
                    if not frozen and d not in self.created and read_text(d + "/cgroup.freeze").strip() == "1":
                        frozen, what = True, "cgroup.freeze 1"  # (one made here starts thawed)
                else:
                    continue
            except FileNotFoundError:  # no freezer there (a v2 root, a kernel without it)
                continue
            except OSError as e:
                raise CgroupError("read the freezer state of %s: %s" % (d, e.strerror)) from None
            if frozen:
                raise CgroupError("container's cgroup unexpectedly frozen: %s (%s)" % (d, what))

    def revert_unit(self, resources):
        """update failed after apply: what the cgroup manager keeps beyond the files (the systemd
        driver's unit properties) back to ``resources``; cgroupfs keeps nothing."""

    def birth_dir(self):
        """(key, directory) of the container's cgroup in the cgroup2 hierarchy (pure v2: its cgroup;
        hybrid: the unified hierarchy's), where create's init can be born (clone3 with
        CLONE_INTO_CGROUP: _sys.fork_into_cgroup), or None."""
        for key, (mp, p, version, _) in self.paths.items():
            if version == 2:
                return key, mp + p
        return None

    def add(self, pid, sub=None, skip=()):
        """Move ``pid`` into the container's cgroups; ``sub`` ({key: relative path}, key "" for
        every hierarchy) names an existing sub-cgroup of the container's cgroup instead; ``skip``:
        hierarchies the process joins itself (create's init, see process/init.py)."""
        sub = sub or {}
        for key in self.paths:
            if key in skip:
                continue
            rel = sub.get(key, sub.get(""))
            d = self.dir(key)
            if rel:
                rel = normpath(rel.strip("/"))
                if rel.startswith(".."):
                    raise CgroupError("cgroup %r: must be below the container's cgroup" % rel)
                d = join(d, rel)
            path = join(d, "cgroup.procs")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, b"%d" % pid)
                finally:
                    os.close(fd)
            except OSError as e:
                raise CgroupError("join cgroup %s: %s" % (path, e.strerror)) from None

    def apply(self, resources, skip_devices=False):
        """Write linux.resources (update passes skip_devices: runc's update leaves devices alone)."""
        if self.v2:
            from ociruntime.cgroups import v2
            v2.apply(self.dir("unified"), resources, skip_devices)
        else:
            from ociruntime.cgroups import v1
            v1.apply(self.v1dir, resources, skip_devices)

    def stats(self):
        """runc's events "stats" data: cpu, cpuset, memory, pids, blkio, hugetlb."""
        if self.v2:
            from ociruntime.cgroups import v2
            data = v2.stats(self.dir("unified"))
        else:
            from ociruntime.cgroups import v1
            data = v1.stats(self.v1dir)
        for key, empty in (("cpu", {"usage": {"kernel": 0, "user": 0}, "throttling": {}}), ("cpuset", {}),
                           ("memory", {}), ("pids", {}), ("blkio", {}), ("hugetlb", {}),
                           ("intel_rdt", {}), ("network_interfaces", None)):
            data.setdefault(key, empty)
        return data

    def _procs_dir(self):
        if self.v2:
            return self.dir("unified")
        for ctrl in ("pids", "freezer", "memory", "cpu", "devices", "name=systemd"):
            d = self.v1dir(ctrl)
            if d:
                return d
        return self.dir(next(iter(self.paths))) if self.paths else None

    def procs(self):
        """Pids in the container's cgroup and its sub-cgroups."""
        top = self._procs_dir()
        out = []
        if top is None:
            return out
        from ociruntime.cgroupdirs import walk
        for d, _ in walk(top):
            try:
                out += [int(x) for x in read_file(join(d, "cgroup.procs")).split()]
            except FileNotFoundError:
                continue
        return out

    def _freezer(self):
        """(control file, frozen value, thawed value), or None without a freezer."""
        if self.v2:
            d = self.dir("unified")
            return d + "/cgroup.freeze", "1", "0"
        d = self.v1dir("freezer")
        if d:
            return d + "/freezer.state", "FROZEN", "THAWED"
        return None

    def frozen(self):
        from ociruntime.cgroupdirs import frozen
        return frozen(self.paths)

    def freeze(self, on):
        """Freeze (or thaw) and wait until the kernel reports it done."""
        fz = self._freezer()
        if fz is None:
            raise CgroupError("the container has no freezer cgroup")
        path, frozen_value, thawed_value = fz
        value = frozen_value if on else thawed_value
        what = "freeze" if on else "thaw"
        deadline = time.monotonic() + 5.0
        try:
            while True:
                _put(path, value)  # v1: FREEZING can stall on a busy task; write again
                kill_point("pause:written" if on else "resume:written")
                for delay in (0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1):
                    time.sleep(delay)
                    if self.frozen() == on:
                        return
                if time.monotonic() > deadline:
                    break
        except OSError as e:
            raise CgroupError("%s cgroup %s: %s" % (what, path, e.strerror)) from None
        if on:
            try:
                _put(path, thawed_value)
            except OSError:
                pass
        raise CgroupError("%s cgroup %s: timed out" % (what, path))

    def kill_all(self, sig):
        """Signal every process of the cgroup.  SIGKILL on v2 uses cgroup.kill; otherwise, as
        runc, the cgroup is frozen around the signals so that nothing forks past them (and a paused
        container is left paused, except by SIGKILL)."""
        if self.v2 and sig == 9 and exists(self.dir("unified") + "/cgroup.kill"):
            try:
                _put(self.dir("unified") + "/cgroup.kill", "1")
                return
            except OSError:
                pass
        was_frozen, froze = False, False
        if self._freezer() is not None:
            was_frozen = self.frozen()
            if not was_frozen:
                try:
                    self.freeze(True)
                    froze = True
                except CgroupError:
                    pass
        try:
            for pid in self.procs():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            # SIGKILL thaws a paused container too: frozen v1 tasks die only once thawed
            if froze or (was_frozen and sig == 9):
                self.freeze(False)

    def oom_watch(self):
        from ociruntime.cgroups.oom import OomWatch
        return OomWatch(self)

    def destroy(self):
        """Remove the directories create() made (and any sub-cgroup made inside them), deepest
        first (cgroupdirs.remove_all)."""
        from ociruntime.cgroupdirs import remove_all
        remove_all(self.created)


class BirthFork:
    """Forks a process born in the cgroup2 cgroup ``directory`` (clone3 CLONE_INTO_CGROUP:
    _sys.fork_into_cgroup), so that nobody writes its pid to that cgroup.procs: such a write
    waits for the kernel's global threadgroup lock, whose first taking after idle waits out an
    RCU grace period (a task writing "0" to a v1 tasks file moves itself without it, but a v2
    cgroup takes whole processes only).  Where there is no directory, or the kernel or a seccomp
    profile refuses clone3 or its flag, a plain fork (ociruntime.fork), and the caller writes
    cgroup.procs as before (an error it meets there is reported in its usual words).  ``born``
    tells, in both processes, which way it went.  The directory is open only for the fork (a
    handle on the host's cgroup tree: closed in both processes before the call returns)."""

    def __init__(self, directory, log):
        self.directory, self.log, self.born = directory, log, False

    def __call__(self, what):
        from ociruntime import fork
        if self.directory is None:
            return fork(what)
        try:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            self.log.debug("cgroup %s: %s: a plain fork, then cgroup.procs", self.directory, e.strerror)
            return fork(what)
        try:
            from ociruntime import _sys
            pid = _sys.fork_into_cgroup(fd, what)
        except OSError as e:  # nothing forked
            self.log.debug("clone3 into cgroup %s: %s: a plain fork, then cgroup.procs", self.directory,
                           e.strerror)
        else:
            self.born = True
            return pid
        finally:
            os.close(fd)
        return fork(what)


def _put(path, value):
    """Write ``value`` to an existing (control) file."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def fill_cpuset(mp, leaf, made):
    """A v1 cpuset cgroup starts with empty cpuset.cpus and cpuset.mems, and no task may join it
    (ENOSPC) until both are set: each empty one of ``leaf`` and its ancestors below ``mp`` (those
    create made, or made empty by another tool with a plain mkdir) gets the value of the nearest
    populated ancestor, top down, as runc's cpuset copy does; a value already set is never
    changed.  ``made``: create made the leaf (empty, no need to read it)."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        empty = [leaf] if made else []
        cur = leaf if made else None
        value = None
        if not made:
            value = _cpuset_value(leaf, name)
            if value is None or value:
                continue  # unreadable (not v1), or set
            empty, cur = [leaf], leaf
        while cur != mp:
            cur = dirname(cur)
            value = _cpuset_value(cur, name)
            if value:
                break
            if value is None:
                return
            empty.append(cur)
        if not value:
            return  # nothing populated up to the root (not a real cpuset hierarchy)
        for d in reversed(empty):
            try:
                _put(join(d, name), value)
            except OSError as e:
                raise CgroupError("write %r to %s: %s" % (value, join(d, name), e.strerror)) from None


def _cpuset_value(d, name):
    try:
        return read_text(join(d, name)).strip()
    except OSError:
        return None


def freeze(st, on):
    Manager.from_state(st).freeze(on)
