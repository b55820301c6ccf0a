"""config.json ``mounts``: option parsing and mounting onto targets resolved inside the rootfs."""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import S_IFDIR, S_IFMT, join, read_text
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


def flags_of(fd):
    """The MS_* per-mount flags (ro, nosuid, nodev, noexec) the mount of ``fd`` has."""
    f = os.fstatvfs(fd).f_flag
    return sum(ms for st, ms in _ST_TO_MS if f & st)


def remount_bind(target, flags):
    """Change the per-mount flags of a bind mount, keeping the flags the kernel locks."""
    want = S.MS_BIND | S.MS_REMOUNT | (flags & ~(S.MS_BIND | S.MS_REC | S.MS_REMOUNT))
    try:
        S.mount(None, target, None, want)
    except PermissionError:
        S.mount(None, target, None, want | (_locked_flags(target) & _LOCKABLE))


# per-mount attributes a bind remount sets (all of them: MS_REMOUNT|MS_BIND resets the others)
_MS_TO_ATTR = ((S.MS_RDONLY, S.MOUNT_ATTR_RDONLY), (S.MS_NOSUID, S.MOUNT_ATTR_NOSUID),
               (S.MS_NODEV, S.MOUNT_ATTR_NODEV), (S.MS_NOEXEC, S.MOUNT_ATTR_NOEXEC),
               (S.MS_NODIRATIME, S.MOUNT_ATTR_NODIRATIME), (S.MS_NOSYMFOLLOW, S.MOUNT_ATTR_NOSYMFOLLOW))
_ALL_ATTRS = sum(a for _, a in _MS_TO_ATTR) | _ATIME_MASK
_BIND_FLAGS = S.MS_BIND | S.MS_REC | S.MS_REMOUNT


def _attrs_of(flags):
    """The mount_setattr (set, clear) that a bind remount with these MS_* flags amounts to."""
    attrs = sum(a for ms, a in _MS_TO_ATTR if flags & ms)
    if flags & S.MS_NOATIME:
        attrs |= S.MOUNT_ATTR_NOATIME
    elif flags & S.MS_STRICTATIME:
        attrs |= S.MOUNT_ATTR_STRICTATIME
    return attrs, _ALL_ATTRS


def bind_source(m, bundle):
    """The host path a bind mount's source names (relative: to the bundle)."""
    src = m.source
    if src and not src.startswith("/"):
        src = join(bundle, src)
    return src


def clone_source(src, m):
    """A detached copy of the mount at ``src`` (its submounts too for rbind): open_tree
    OPEN_TREE_CLONE.  ENOSYS where the kernel (or a seccomp filter) lacks it."""
    flags = S.OPEN_TREE_CLONE | S.OPEN_TREE_CLOEXEC | (S.AT_RECURSIVE if m.flags & S.MS_REC else 0)
    return S.open_tree(S.AT_FDCWD, src, flags)


def open_sources(config, bundle):
    """Before the user namespace: detached clones of the bind mounts' sources, opened as the
    runtime's user ({index in mounts: fd}).  Inside the namespace a source under a directory only
    the host's root may enter (0700) could not be opened (runc opens them on the host's side too).
    A source that cannot be cloned here (no such file, a rootless runtime) is left to mount_one,
    which reports it."""
    trees = {}
    for i, m in enumerate(parse_all(config)):
        if not m.is_bind or m.type in ("cgroup", "cgroup2") or not m.source:
            continue
        try:
            tree = clone_source(bind_source(m, bundle), m)
        except OSError:
            continue
        try:
            # a clone stays in its source's peer group: made a slave (as the mounts of a mount
            # namespace of a user namespace are), nothing mounted in the container propagates
            # back to the host
            S.mount_setattr(tree, "", S.AT_EMPTY_PATH | S.AT_RECURSIVE, 0, 0, S.MS_SLAVE)
        except OSError:
            os.close(tree)
            continue
        trees[i] = tree
    return trees


def mount_one(m, rootfd, bundle, cgroup_mounter=None, tree=-1):
    """Mount ``m`` at its destination inside the root referred to by ``rootfd``; ``tree`` is a
    clone of a bind's source made beforehand (open_sources), which this call owns."""
    what = "mount %s to %s" % (m.source or m.type, m.dest)
    src = bind_source(m, bundle) if m.is_bind else m.source
    if m.type == "cgroup" or m.type == "cgroup2":
        if cgroup_mounter is not None:
            cgroup_mounter(m, rootfd)
            return
        # no cgroup of its own (rootless without delegation): the host's hierarchies, read-only,
        # as runc shows them to a rootless container
        m = Mount({"destination": m.dest, "type": "bind", "source": "/sys/fs/cgroup",
                   "options": ["rbind", "ro", "nosuid", "noexec", "nodev"]})
        src = m.source
    if m.is_bind:
        _bind(m, src, rootfd, what, tree)
        return
    try:
        if m.type in ("proc", "sysfs"):
            _check_ordinary_dir(rootfd, m)
        data = m.data
        if m.type == "tmpfs" and "mode=" not in (data or ""):
            data = _with_mode_of(rootfd, m.dest, data)
        fd = paths.make_target(rootfd, m.dest, True)
    except OSError as e:
        raise InitError(what, e.errno, e.filename or m.dest) from None
    try:
        _check_proc_mount(rootfd, fd, m, src)
        try:
            S.mount(src or m.type, paths.fdpath(fd), m.type, m.flags & ~S.MS_REMOUNT, data)
        except PermissionError:
            if m.type != "sysfs":
                raise
            # sysfs needs a network namespace of our own user namespace: bind the host's
            # /sys instead, as runc does for rootless containers
            m.flags |= S.MS_BIND | S.MS_REC | S.MS_RDONLY
            tree = _clone_or_none("/sys", m)
            try:
                _attach(tree, fd, m, "/sys", rootfd)
            finally:
                if tree >= 0:
                    os.close(tree)
            return
    except OSError as e:
        raise InitError(what, e.errno, "", "" if e.errno else str(e)) from None
    finally:
        os.close(fd)
    if m.prop or m.rec_set or m.rec_clr:
        # the fd names the directory under the new mount: the mount is found again by its path
        try:
            fd = paths.open_in_root(rootfd, m.dest)
        except OSError as e:
            raise InitError(what, e.errno, m.dest) from None
        try:
            if m.prop:
                S.mount(None, paths.fdpath(fd), None, m.prop)
            if m.rec_set or m.rec_clr:
                S.mount_setattr(fd, "", S.AT_RECURSIVE | S.AT_EMPTY_PATH, m.rec_set, m.rec_clr)
        except OSError as e:
            raise InitError(what, e.errno, "", "" if e.errno else str(e)) from None
        finally:
            os.close(fd)


def _with_mode_of(rootfd, dest, data):
    """A tmpfs without mode= over an existing directory takes that directory's mode (runc)."""
    try:
        fd = paths.open_in_root(rootfd, dest)
    except OSError:
        return data  # made now: the tmpfs's own default
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if st.st_mode & S_IFMT != S_IFDIR:
        return data
    mode = "mode=%o" % (st.st_mode & 0o7777)
    return data + "," + mode if data else mode


def _clone_or_none(src, m):
    try:
        return clone_source(src, m)
    except OSError as e:
        if e.errno != 38:  # ENOSYS: mount(2) by path (_attach)
            raise
    return -1


def _bind(m, src, rootfd, what, tree):
    """A bind mount made on fds: the source cloned (or the clone given), its attributes set while
    it is detached, then attached onto the destination resolved inside the rootfs.  No path is
    looked up twice: a destination swapped for a symlink meanwhile changes nothing."""
    try:
        try:
            if tree < 0:
                tree = _clone_or_none(src, m)
            st = os.fstat(tree) if tree >= 0 else None
        except OSError as e:
            raise InitError(what, e.errno, e.filename or src) from None
        try:
            is_dir = st.st_mode & S_IFMT == S_IFDIR if st is not None else paths.is_dir_path(src)
            fd = paths.make_target(rootfd, m.dest, is_dir)
        except OSError as e:
            raise InitError(what, e.errno, e.filename or m.dest) from None
        try:
            _check_proc_mount(rootfd, fd, m, src)
            _attach(tree, fd, m, src, rootfd)
        except OSError as e:
            raise InitError(what, e.errno, "", "" if e.errno else str(e)) from None
        finally:
            os.close(fd)
    finally:
        if tree >= 0:
            os.close(tree)


def _attach(tree, fd, m, src, rootfd):
    """Attach the bind of ``src`` (``tree``: its detached clone, or -1) onto the target ``fd``,
    with ``m``'s flags, propagation and recursive attributes.  ``tree`` stays the caller's."""
    if tree < 0:
        _attach_legacy(fd, m, src, rootfd)
        return
    flags = m.flags & ~_BIND_FLAGS
    late = False  # mount_setattr missing (before 5.12): a remount through the attached clone's fd
    try:
        if flags:
            _setattr_keeping_locks(tree, flags)
        if m.rec_set or m.rec_clr:
            S.mount_setattr(tree, "", S.AT_EMPTY_PATH | S.AT_RECURSIVE, m.rec_set, m.rec_clr)
    except OSError as e:
        if e.errno != 38 or m.rec_set or m.rec_clr:  # (recursive attributes need mount_setattr)
            raise
        late = True
    S.move_mount(tree, "", fd, "", S.MOVE_MOUNT_F_EMPTY_PATH | S.MOVE_MOUNT_T_EMPTY_PATH)
    target = paths.fdpath(tree)  # the mount just attached, held by its fd
    if late and flags:
        remount_bind(target, flags)
    if m.prop:
        S.mount(None, target, None, m.prop)


def _setattr_keeping_locks(tree, flags):
    """Set the per-mount flags of the detached ``tree`` as a bind remount would; where the kernel
    locks some (a source mounted with them in a user namespace's parent), keep those."""
    attr_set, attr_clr = _attrs_of(flags)
    try:
        S.mount_setattr(tree, "", S.AT_EMPTY_PATH, attr_set, attr_clr)
        return
    except PermissionError:
        pass
    f = os.fstatvfs(tree).f_flag
    locked = sum(a for st, a in ((1, S.MOUNT_ATTR_RDONLY), (2, S.MOUNT_ATTR_NOSUID), (4, S.MOUNT_ATTR_NODEV),
                                 (8, S.MOUNT_ATTR_NOEXEC)) if f & st)
    try:
        S.mount_setattr(tree, "", S.AT_EMPTY_PATH, attr_set | locked, attr_clr)
    except PermissionError:  # the atime mode is locked too: left as it is
        S.mount_setattr(tree, "", S.AT_EMPTY_PATH, (attr_set | locked) & ~_ATIME_MASK, attr_clr & ~_ATIME_MASK)


def _attach_legacy(fd, m, src, rootfd):
    """Without open_tree: bind by path, then find the mount again by its path and check that it
    is the one just made (a mount on the target's directory, showing the source) before changing
    its flags; anything else is refused."""
    S.mount(src, paths.fdpath(fd), None, S.MS_BIND | (m.flags & S.MS_REC))
    if not (m.flags & ~_BIND_FLAGS or m.prop or m.rec_set or m.rec_clr):
        return
    import errno
    try:
        new = paths.open_in_root(rootfd, m.dest)
    except OSError as e:
        raise OSError(e.errno, "find the new mount again: " + e.strerror) from None
    try:
        a, b = os.stat(src), os.fstat(new)
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) or _mnt_id(new) == _mnt_id(fd):
            raise OSError(errno.EXDEV, "the destination changed while it was mounted: refused")
        target = paths.fdpath(new)
        if m.flags & ~_BIND_FLAGS:
            remount_bind(target, m.flags)
        if m.prop:
            S.mount(None, target, None, m.prop)
        if m.rec_set or m.rec_clr:
            S.mount_setattr(new, "", S.AT_RECURSIVE | S.AT_EMPTY_PATH, m.rec_set, m.rec_clr)
    finally:
        os.close(new)


def _mnt_id(fd):
    for line in read_text("/proc/self/fdinfo/%d" % fd).split("\n"):
        if line.startswith("mnt_id:"):
            return int(line[7:])
    return -1


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
