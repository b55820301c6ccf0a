"""Build the container's filesystem view, in the init, in its new mount namespace.

Order (as runc): make / a slave so nothing propagates to the host (or rootfsPropagation's kind);
take the rootfs's own mount out of a shared peer group; bind the rootfs onto itself;
apply ``mounts`` in order; create /dev nodes and links; run createRuntime/createContainer hooks
(through ``hooks_cb``); pivot_root (or MS_MOVE + chroot with --no-pivot); then maskedPaths,
readonlyPaths, readonly root and rootfsPropagation.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import S_IFCHR, S_IFDIR, S_IFMT, dirname, read_text
from ociruntime import _sys as S
from ociruntime.errors import InitError
from ociruntime.errors import init_step as _step
from ociruntime.rootfs import devices, mounts

# errno.EINVAL, the same on every Linux architecture (errno-base.h; see cgroupdirs.EBUSY)
EINVAL = 22

ROOT_PROPAGATION = {"private": S.MS_PRIVATE, "rprivate": S.MS_PRIVATE | S.MS_REC,
                    "slave": S.MS_SLAVE, "rslave": S.MS_SLAVE | S.MS_REC,
                    "shared": S.MS_SHARED, "rshared": S.MS_SHARED | S.MS_REC,
                    "unbindable": S.MS_UNBINDABLE, "runbindable": S.MS_UNBINDABLE | S.MS_REC}


def prepare_root(rootfs, propagation):
    # "unbindable" on / would refuse the rootfs's own bind below: the new root gets it (finish),
    # which is what rootfsPropagation describes (runc fails such a config); / starts as the default
    flags = ROOT_PROPAGATION.get(propagation, S.MS_SLAVE | S.MS_REC)
    if propagation in ("unbindable", "runbindable"):
        flags, propagation = S.MS_SLAVE | S.MS_REC, None
    _step("make / %s" % (propagation or "rslave"), S.mount, None, "/", None, flags)
    # After a recursive slave or private (the default) no mount is shared any more: nothing to
    # change.  Otherwise the rootfs's own mount may still be in a shared peer group (containerd's
    # snapshot is a mount point under /run, shared on systemd hosts)
    if not flags & S.MS_REC or flags & S.MS_SHARED:
        _unshare_rootfs_mount(rootfs, S.MS_SLAVE if flags & S.MS_SLAVE else S.MS_PRIVATE)
    _step("bind rootfs", S.mount, rootfs, rootfs, None, S.MS_BIND | S.MS_REC, path=rootfs)


def _unshare_rootfs_mount(rootfs, kind):
    """Take the mount the rootfs is (or, for a plain directory, lies on) out of its shared peer
    group, as runc: a slave for the slave kinds, else private.  The bind of a shared mount joins
    its group, so the container's /proc, /dev, /sys and cgroup mounts would appear wherever the
    group has members (the caller's namespace), and pivot_root refuses a new root whose parent
    mount is shared.  mount(2) says EINVAL for a path that is not a mount point: walk up."""
    path = rootfs
    while True:
        try:
            S.mount(None, path, None, kind)
            return
        except OSError as e:
            if e.errno != EINVAL or path == "/":
                what = "slave" if kind == S.MS_SLAVE else "private"
                raise InitError("make the rootfs mount %s" % what, e.errno, path) from None
        path = dirname(path)


def apply_mounts(rootfs, config, bundle, cgroup_mounter, in_userns, trees=None):
    """``trees``: {index in mounts: clone of the bind's source} made before the user namespace
    (mounts.open_sources); each is handed to mount_one, which owns it from then on."""
    trees = dict(trees or ())
    try:
        rootfd = _step("open rootfs", os.open, rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, path=rootfs)
        try:
            mlist = mounts.parse_all(config)
            # a read-only /dev is filled first (pts, shm, mqueue, devices, links), then made
            # read-only (its own mount only), as runc does
            ro_dev = [m for m in mlist if m.dest.rstrip("/") == "/dev" and m.flags & S.MS_RDONLY]
            for m in ro_dev:
                m.flags &= ~S.MS_RDONLY
            for i, m in enumerate(mlist):
                mounts.mount_one(m, rootfd, bundle, cgroup_mounter, trees.pop(i, -1))
            dev_is_ours = not any(m.dest.rstrip("/") == "/dev" and m.is_bind for m in mlist)
            devices.setup_dev(rootfd, config, in_userns, dev_is_ours)
            if ro_dev:
                if (config.get("process") or {}).get("terminal"):
                    _console_target(rootfd)  # the pty's bind target, made while /dev is writable
                _dev_read_only(rootfd)
        finally:
            os.close(rootfd)
    finally:
        for fd in trees.values():
            os.close(fd)


def _console_target(rootfd):
    try:
        dev = mounts.paths.open_in_root(rootfd, "/dev")
        try:
            os.close(os.open("console", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600, dir_fd=dev))
        except FileExistsError:
            pass  # (what it is, tty.bind_dev_console checks)
        finally:
            os.close(dev)
    except OSError as e:
        raise InitError("create /dev/console", e.errno, "/dev/console") from None


def _dev_read_only(rootfd):
    try:
        fd = mounts.paths.open_in_root(rootfd, "/dev")
        try:
            S.mount_setattr(fd, "", S.AT_EMPTY_PATH, S.MOUNT_ATTR_RDONLY, 0)
        except OSError as e:
            if e.errno != 38:  # ENOSYS (before 5.12): a bind remount keeping its other flags
                raise
            mounts.remount_bind(mounts.paths.fdpath(fd), S.MS_RDONLY | mounts.flags_of(fd))
        finally:
            os.close(fd)
    except OSError as e:
        raise InitError("make /dev read-only", e.errno, "/dev") from None


def pivot(rootfs):
    """pivot_root(".", ".") on the rootfs, then lazily detach the old root stacked under it."""
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        _step("pivot_root", S.pivot_root, ".", ".", path=rootfs)
        os.fchdir(old)
        _step("make old root rslave", S.mount, None, ".", None, S.MS_SLAVE | S.MS_REC)
        _step("unmount old root", S.umount2, ".", S.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def move_root(rootfs):
    """--no-pivot: move the rootfs mount over / and chroot into it.  The old root stays in the
    mount namespace below it, with the host's procfs and sysfs: a procfs mount there, fully
    visible, would let a user namespace made inside the container mount a fresh, unmasked
    /proc (the kernel's mount_too_revealing check accepts a new instance when one such mount
    exists).  They are detached first, or covered where they cannot be (runc's msMoveRoot)."""
    for mp in _host_proc_sys(rootfs):
        _cover(mp)
    os.chdir(rootfs)
    _step("move rootfs to /", S.mount, rootfs, "/", None, S.MS_MOVE, path=rootfs)
    _step("chroot", os.chroot, ".", path=rootfs)
    os.chdir("/")


def _host_proc_sys(rootfs):
    """Mount points of whole procfs and sysfs instances outside the rootfs, outermost first."""
    out = []
    inside = rootfs.rstrip("/") + "/"
    for line in read_text("/proc/self/mountinfo").split("\n"):
        left, _, right = line.partition(" - ")
        f = left.split()
        if len(f) < 5 or right.split(" ", 1)[0] not in ("proc", "sysfs") or f[3] != "/":
            continue
        mp = _unescape(f[4])
        if mp != rootfs and not mp.startswith(inside):
            out.append(mp)
    return out


def _unescape(field):
    if "\\" not in field:
        return field
    parts = field.split("\\")
    return parts[0] + "".join(chr(int(p[:3], 8)) + p[3:] for p in parts[1:])


def _cover(mp):
    """Detach the mount at ``mp`` (after making it a slave, so the host's copy stays), or lay a
    read-only tmpfs over it where it cannot be unmounted (a mount locked in a user namespace)."""
    try:
        S.mount(None, mp, None, S.MS_SLAVE | S.MS_REC)
    except (FileNotFoundError, NotADirectoryError):
        return  # below a mount detached already
    except OSError as e:
        raise InitError("hide %s before moving the root" % mp, e.errno, mp) from None
    try:
        S.umount2(mp, S.MNT_DETACH | S.UMOUNT_NOFOLLOW)
        return
    except OSError as e:
        if e.errno not in (1, 22):  # EPERM, EINVAL (locked)
            raise InitError("hide %s before moving the root" % mp, e.errno, mp) from None
    _step("hide %s before moving the root" % mp, S.mount, "tmpfs", mp, "tmpfs",
          S.MS_RDONLY | S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC, "mode=0", path=mp)


def mask_paths(masked):
    null = -1
    try:
        for p in masked or ():
            # the target and the /dev/null bound over it are opened without following a symlink
            # the container may have planted (e.g. /dev/null -> /proc/sys/kernel/core_pattern)
            try:
                fd = os.open(p, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as e:
                raise InitError("mask %s" % p, e.errno) from None
            try:
                st = os.fstat(fd)
                if st.st_mode & S_IFMT == S_IFDIR:
                    S.mount("tmpfs", "/proc/self/fd/%d" % fd, "tmpfs", S.MS_RDONLY, None)
                    continue
                if null < 0:
                    null = _open_dev_null()
                S.mount("/proc/self/fd/%d" % null, "/proc/self/fd/%d" % fd, None, S.MS_BIND)
            except OSError as e:
                raise InitError("mask %s" % p, e.errno) from None
            finally:
                os.close(fd)
    finally:
        if null >= 0:
            os.close(null)


def _open_dev_null():
    try:
        fd = os.open("/dev/null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise InitError("mask paths: open /dev/null", e.errno, "/dev/null") from None
    st = os.fstat(fd)
    if st.st_mode & S_IFMT != S_IFCHR or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise InitError("mask paths", 0, "/dev/null", "not the null device (1:3): refused")
    return fd


def readonly_paths(ro):
    for p in ro or ():
        try:
            S.mount(p, p, None, S.MS_BIND | S.MS_REC)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            raise InitError("make %s read-only" % p, e.errno) from None
        try:
            mounts.remount_bind(p, S.MS_RDONLY | S.MS_REC)
        except OSError as e:
            raise InitError("make %s read-only" % p, e.errno) from None


def finish(config):
    """After pivot: masked and read-only paths, read-only root, root propagation."""
    linux = config.get("linux", {})
    readonly_paths(linux.get("readonlyPaths"))
    mask_paths(linux.get("maskedPaths"))
    if config.get("root", {}).get("readonly"):
        try:
            mounts.remount_bind("/", S.MS_RDONLY)
        except OSError as e:
            raise InitError("make root read-only", e.errno, "/") from None
    prop = linux.get("rootfsPropagation")
    if prop:
        _step("set rootfs propagation %s" % prop, S.mount, None, "/", None, ROOT_PROPAGATION[prop])
