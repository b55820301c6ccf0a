"""config.json ``mounts``: option parsing and mounting onto targets resolved inside the rootfs."""
import posix as os  # not os: ~1.6 ms (see ociruntime/__init__.py)

from ociruntime import S_IFDIR, S_IFMT, join
from ociruntime import _sys
from ociruntime.errors import ConfigError, InitError
from ociruntime.rootfs import paths

S = _sys
# option -> (clear, set) of mount(2) flags
FLAG_OPTS = {
    "async": (S.MS_SYNCHRONOUS, 0), "sync": (0, S.MS_SYNCHRONOUS),
    "atime": (S.MS_NOATIME, 0), "noatime": (0, S.MS_NOATIME),
    "defaults": (0, 0),
    "dev": (S.MS_NODEV, 0), "nodev": (0, S.MS_NODEV),
    "diratime": (S.MS_NODIRATIME, 0), "nodiratime": (0, S.MS_NODIRATIME),
    "dirsync": (0, S.MS_DIRSYNC),
    "exec": (S.MS_NOEXEC, 0), "noexec": (0, S.MS_NOEXEC),
    "mand": (0, S.MS_MANDLOCK), "nomand": (S.MS_MANDLOCK, 0),
    "relatime": (0, S.MS_RELATIME), "norelatime": (S.MS_RELATIME, 0),
    "strictatime": (0, S.MS_STRICTATIME), "nostrictatime": (S.MS_STRICTATIME, 0),
    "lazytime": (0, S.MS_LAZYTIME), "nolazytime": (S.MS_LAZYTIME, 0),
    "ro": (0, S.MS_RDONLY), "rw": (S.MS_RDONLY, 0),
    "suid": (S.MS_NOSUID, 0), "nosuid": (0, S.MS_NOSUID),
    "symfollow": (S.MS_NOSYMFOLLOW, 0), "nosymfollow": (0, S.MS_NOSYMFOLLOW),
    "remount": (0, S.MS_REMOUNT),
    "bind": (0, S.MS_BIND), "rbind": (0, S.MS_BIND | S.MS_REC),
    "silent": (0, S.MS_SILENT), "loud": (S.MS_SILENT, 0),
}
PROPAGATION = {
    "private": S.MS_PRIVATE, "rprivate": S.MS_PRIVATE | S.MS_REC,
    "shared": S.MS_SHARED, "rshared": S.MS_SHARED | S.MS_REC,
    "slave": S.MS_SLAVE, "rslave": S.MS_SLAVE | S.MS_REC,
    "unbindable": S.MS_UNBINDABLE, "runbindable": S.MS_UNBINDABLE | S.MS_REC,
}
# recursive attributes (mount_setattr(AT_RECURSIVE)): option -> (set, clear)
REC_ATTRS = {
    "rro": (S.MOUNT_ATTR_RDONLY, 0), "rrw": (0, S.MOUNT_ATTR_RDONLY),
    "rnosuid": (S.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, S.MOUNT_ATTR_NOSUID),
    "rnodev": (S.MOUNT_ATTR_NODEV, 0), "rdev": (0, S.MOUNT_ATTR_NODEV),
    "rnoexec": (S.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, S.MOUNT_ATTR_NOEXEC),
    "rnoatime": (S.MOUNT_ATTR_NOATIME, 0), "ratime": (0, S.MOUNT_ATTR_NOATIME),
    "rnodiratime": (S.MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, S.MOUNT_ATTR_NODIRATIME),
    "rstrictatime": (S.MOUNT_ATTR_STRICTATIME, 0),
    "rnosymfollow": (S.MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, S.MOUNT_ATTR_NOSYMFOLLOW),
}
# flags that may stay set on a bind mount made inside a user namespace ("locked"); a remount
# must repeat them or the kernel refuses it
_ATIME_MASK = 0x70  # MOUNT_ATTR__ATIME: relatime (0), noatime, strictatime
_LOCKABLE = S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC | S.MS_RDONLY
_ST_TO_MS = ((1, S.MS_RDONLY), (2, S.MS_NOSUID), (4, S.MS_NODEV), (8, S.MS_NOEXEC))


class Mount:
    """One entry of ``mounts`` with its options parsed."""
    __slots__ = ("dest", "type", "source", "flags", "prop", "rec_set", "rec_clr", "data", "extra")

    def __init__(self, m):
        self.dest = m["destination"]
        self.type = m.get("type") or ""
        self.source = m.get("source") or ""
        flags, prop, rset, rclr, data, extra = 0, 0, 0, 0, [], []
        for opt in m.get("options") or ():
            if opt in FLAG_OPTS:
                clr, st = FLAG_OPTS[opt]
                flags = (flags & ~clr) | st
            elif opt in PROPAGATION:
                prop |= PROPAGATION[opt]
            elif opt in REC_ATTRS:
                s, c = REC_ATTRS[opt]
                rset, rclr = (rset | s) & ~c, (rclr | c) & ~s
            elif opt in ("idmap", "ridmap", "tmpcopyup", "copy-symlink", "notmpcopyup"):
                extra.append(opt)
            else:
                data.append(opt)
        if self.type == "bind":
            flags |= S.MS_BIND
        if (rset | rclr) & _ATIME_MASK:
            # the kernel takes an atime mode only with the whole MOUNT_ATTR__ATIME field cleared
            # (ratime: clear it all, i.e. relatime), as runc does
            rclr |= _ATIME_MASK
        self.flags, self.prop, self.rec_set, self.rec_clr = flags, prop, rset, rclr
        self.data, self.extra = ",".join(data) or None, extra

    @property
    def is_bind(self):
        return bool(self.flags & S.MS_BIND)


def parse_all(config):
    out = []
    for i, m in enumerate(config.get("mounts") or ()):
        mm = Mount(m)
        if not mm.dest.startswith("/"):
            raise ConfigError("config.json: mounts[%d].destination: %r is not an absolute path" % (i, mm.dest))
        if "idmap" in mm.extra or "ridmap" in mm.extra:
            raise ConfigError("config.json: mounts[%d]: idmapped mounts are not supported yet" % i)
        out.append(mm)
    return out


def _locked_flags(target):
    try:
        f = os.statvfs(target).f_flag
    except OSError:
        return 0
    return sum(ms for st, ms in _ST_TO_MS if f & st)


def remount_bind(target, flags):
    """Change the per-mount flags of a bind mount, keeping the flags the kernel locks."""
    want = S.MS_BIND | S.MS_REMOUNT | (flags & ~(S.MS_BIND | S.MS_REC | S.MS_REMOUNT))
    try:
        S.mount(None, target, None, want)
    except PermissionError:
        S.mount(None, target, None, want | (_locked_flags(target) & _LOCKABLE))


def mount_one(m, rootfd, bundle, cgroup_mounter=None):
    """Mount ``m`` at its destination inside the root referred to by ``rootfd``."""
    what = "mount %s to %s" % (m.source or m.type, m.dest)
    src = m.source
    if m.is_bind and src and not src.startswith("/"):
        src = join(bundle, src)
    if m.type == "cgroup" or m.type == "cgroup2":
        if cgroup_mounter is not None:
            cgroup_mounter(m, rootfd)
            return
        # no cgroup of its own (rootless without delegation): the host's hierarchies, read-only,
        # as runc shows them to a rootless container
        m = Mount({"destination": m.dest, "type": "bind", "source": "/sys/fs/cgroup",
                   "options": ["rbind", "ro", "nosuid", "noexec", "nodev"]})
        src = m.source
    try:
        if m.type in ("proc", "sysfs"):
            _check_ordinary_dir(rootfd, m)
        is_dir = paths.is_dir_path(src) if m.is_bind else True
        fd = paths.make_target(rootfd, m.dest, is_dir)
    except OSError as e:
        raise InitError(what, e.errno, e.filename or m.dest) from None
    try:
        _check_proc_mount(rootfd, fd, m, src)
    except BaseException:
        os.close(fd)
        raise
    try:
        if m.is_bind:
            S.mount(src, paths.fdpath(fd), None, S.MS_BIND | (m.flags & S.MS_REC))
        else:
            try:
                S.mount(src or m.type, paths.fdpath(fd), m.type, m.flags & ~S.MS_REMOUNT, m.data)
            except PermissionError:
                if m.type != "sysfs":
                    raise
                # sysfs needs a network namespace of our own user namespace: bind the host's
                # /sys instead, as runc does for rootless containers
                S.mount("/sys", paths.fdpath(fd), None, S.MS_BIND | S.MS_REC)
                m.flags |= S.MS_BIND | S.MS_RDONLY
        os.close(fd)
        # the fd still names the directory under the new mount: look the target up again
        fd = paths.open_in_root(rootfd, m.dest)
        target = paths.fdpath(fd)
        if m.is_bind and m.flags & ~(S.MS_BIND | S.MS_REC | S.MS_REMOUNT):
            remount_bind(target, m.flags)
        if m.prop:
            S.mount(None, target, None, m.prop)
        if m.rec_set or m.rec_clr:
            S.mount_setattr(fd, "", S.AT_RECURSIVE | 0x1000, m.rec_set, m.rec_clr)  # AT_EMPTY_PATH
    except OSError as e:
        raise InitError(what, e.errno, "", "" if e.errno else str(e)) from None
    finally:
        os.close(fd)


# what may be mounted inside /proc (lxcfs's files), as runc allows
PROC_OK = frozenset(("cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo",
                     "net/dev", "sys/kernel/ns_last_pid"))


def _check_ordinary_dir(rootfd, m):
    """proc and sysfs only on a real directory, never through a symlink (CVE-2019-16884)."""
    parent, _, name = m.dest.rstrip("/").rpartition("/")
    try:
        pfd = paths.open_in_root(rootfd, parent or "/")
    except FileNotFoundError:
        return
    try:
        st = os.lstat(name, dir_fd=pfd) if name else None
    except FileNotFoundError:
        return
    finally:
        os.close(pfd)
    if st is not None and st.st_mode & S_IFMT != S_IFDIR:
        raise InitError("mount %s to %s" % (m.source or m.type, m.dest), 0, "",
                        "filesystem %r must be mounted on ordinary directory" % m.type)


def _check_proc_mount(rootfd, fd, m, src):
    """Nothing may be mounted over or inside the container's /proc but procfs itself (and a few
    files lxcfs provides): a fake /proc would let the container answer for the kernel, e.g. for
    the LSM label written to /proc/self/attr (CVE-2019-16884)."""
    root = os.readlink(paths.fdpath(rootfd))
    dest = os.readlink(paths.fdpath(fd))
    proc = join(root, "proc")  # both as the kernel gives them: absolute, normalized
    if dest == proc:
        rel = "."
    elif dest.startswith(proc + "/"):
        rel = dest[len(proc) + 1:]
    else:
        return  # not /proc nor inside it
    what = "mount %s to %s" % (m.source or m.type, m.dest)
    if rel == ".":
        if m.type == "proc" and not m.is_bind:
            return
        if m.is_bind and src and _is_procfs(src):
            return
        raise InitError(what, 0, "", "%r cannot be mounted because it is not of type proc" % m.dest)
    if rel not in PROC_OK:
        raise InitError(what, 0, "", "%r cannot be mounted because it is inside /proc" % m.dest)


def _is_procfs(path):
    import os  # only for a bind mount onto /proc: os.path.realpath
    return os.path.realpath(path) == "/proc"
