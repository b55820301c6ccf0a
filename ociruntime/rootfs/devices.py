"""/dev inside the container: the default devices, ``linux.devices``, and the standard links."""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import S_IFBLK, S_IFCHR, S_IFIFO, exists
from ociruntime import _sys
from ociruntime.errors import InitError
from ociruntime.rootfs import paths

# runc's default devices: (path, type, major, minor)
DEFAULT = (("/dev/null", "c", 1, 3), ("/dev/zero", "c", 1, 5), ("/dev/full", "c", 1, 7),
           ("/dev/random", "c", 1, 8), ("/dev/urandom", "c", 1, 9), ("/dev/tty", "c", 5, 0))
LINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
         ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))
_TYPES = {"c": S_IFCHR, "u": S_IFCHR, "b": S_IFBLK, "p": S_IFIFO}


def create_device(rootfd, dev, bind_from_host):
    path = dev["path"]
    dtype = dev.get("type", "c")
    mode = dev.get("fileMode", 0o666) & 0o7777
    what = "create device %s" % path
    parent, _, name = path.rstrip("/").rpartition("/")
    try:
        pfd = paths.mkdir_all(rootfd, parent or "/")
    except OSError as e:
        raise InitError(what, e.errno, e.filename or path) from None
    try:
        if bind_from_host:
            # mknod is not allowed in a user namespace: bind the host's node onto an empty file
            try:
                fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=pfd)
                os.close(fd)
            except FileExistsError:
                pass
            tfd = _sys.openat2(pfd, name, paths.O_PATH, 0, paths.RESOLVE)
            try:
                _sys.mount(path, paths.fdpath(tfd), None, _sys.MS_BIND)
            finally:
                os.close(tfd)
            return
        _mknod(pfd, name, dtype, mode, dev.get("major", 0), dev.get("minor", 0))
        # the umask, a default ACL or a setgid directory of the rootfs may have changed the mode or
        # the group: both set through a real fd of the new node
        nfd = _sys.openat2(pfd, name, paths.O_PATH, 0, paths.RESOLVE)
        try:
            os.chmod(paths.fdpath(nfd), mode)
            os.chown(paths.fdpath(nfd), dev.get("uid", 0), dev.get("gid", 0))
        finally:
            os.close(nfd)
    except OSError as e:
        raise InitError(what, e.errno, e.filename if isinstance(e.filename, str) else path) from None
    finally:
        os.close(pfd)


def _mknod(dirfd, name, dtype, mode, major, minor):
    """The node ``name`` in the directory ``dirfd``; whatever was there (a file of the rootfs, a
    symlink) is replaced, as runc does."""
    devno = os.makedev(major, minor) if dtype != "p" else 0
    try:
        os.mknod(name, _TYPES[dtype] | mode, devno, dir_fd=dirfd)
    except FileExistsError:
        os.unlink(name, dir_fd=dirfd)
        os.mknod(name, _TYPES[dtype] | mode, devno, dir_fd=dirfd)


def _default_devices(rootfd, devfd, given, in_userns):
    """runc's default nodes in the /dev the runtime mounted (``devfd``), but those linux.devices
    gives.  That tmpfs is fresh (mode 755, no default ACL): with the umask set aside the nodes get
    their mode exactly, and made by root they are root's (no chmod, no chown)."""
    as_root = os.geteuid() == 0 and os.getegid() == 0
    umask = os.umask(0)
    try:
        for path, t, ma, mi in DEFAULT:
            if path in given:
                continue
            dev = {"path": path, "type": t, "major": ma, "minor": mi, "fileMode": 0o666}
            if in_userns or not as_root:
                create_device(rootfd, dev, in_userns)
                continue
            try:
                _mknod(devfd, path[5:], t, 0o666, ma, mi)
            except OSError as e:
                raise InitError("create device %s" % path, e.errno, path) from None
    finally:
        os.umask(umask)


def setup_dev(rootfd, config, in_userns, dev_is_ours):
    """Default devices and links (only on a /dev the runtime mounted), then linux.devices."""
    devices = list(config.get("linux", {}).get("devices") or ())
    if dev_is_ours:
        given = {d["path"] for d in devices}
        devfd = paths.mkdir_all(rootfd, "/dev")
        try:
            _default_devices(rootfd, devfd, given, in_userns)
            for target, name in LINKS + (("pts/ptmx", "/dev/ptmx"),):
                base = name[5:]
                try:
                    os.symlink(target, base, dir_fd=devfd)
                except FileExistsError:  # replaced, unless it is a directory
                    try:
                        os.unlink(base, dir_fd=devfd)
                    except IsADirectoryError:
                        continue
                    os.symlink(target, base, dir_fd=devfd)
            if exists("/proc/kcore"):
                try:
                    os.symlink("/proc/kcore", "core", dir_fd=devfd)
                except FileExistsError:
                    pass
            for d in ("pts", "shm"):
                try:
                    os.mkdir(d, 0o755, dir_fd=devfd)
                except FileExistsError:
                    pass
        except OSError as e:
            raise InitError("create /dev links", e.errno, "/dev") from None
        finally:
            os.close(devfd)
    for dev in devices:
        create_device(rootfd, dev, in_userns)
