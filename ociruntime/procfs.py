"""The runtime's own writes to procfs: sysctl, oom_score_adj, /proc/self/attr/*, the id maps and
setgroups, timens_offsets.

None of them goes through a path the container's rootfs controls.  Each process that writes opens
the runtime's /proc (``open_root``) before anything of the container's is mounted or joined, checks
that it is a procfs, and keeps that fd; every file is then opened beneath it with openat2
RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS and checked to be on
procfs: no symlink of the image (a /dev/console -> /proc/sys/kernel/shmmni bound over by the pty,
CVE-2025-52565), no mount the container put over or under /proc, can take a write elsewhere; such a
write fails with the path instead of being lost.  ``self`` (a symlink) is resolved by reading it
in that procfs: the process's pid there, which is the host's numbering when the fd was opened
before the container's pid namespace.

The fd is the host's procfs: it is closed before the container's process can run (``close``), and
the processes holding it are not dumpable, so nothing inside can reach it through /proc/PID/fd.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import _sys as S
from ociruntime.errors import InitError

RESOLVE = S.RESOLVE_BENEATH | S.RESOLVE_NO_XDEV | S.RESOLVE_NO_MAGICLINKS | S.RESOLVE_NO_SYMLINKS
_root = -1


def open_root():
    """Open (once per process tree: a forked child inherits it) the runtime's /proc."""
    global _root
    if _root >= 0:
        return _root
    try:
        fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise InitError("open procfs", e.errno, "/proc") from None
    try:
        kind = S.fstatfs_type(fd)
    except OSError as e:
        os.close(fd)
        raise InitError("open procfs", e.errno, "/proc") from None
    if kind != S.PROC_SUPER_MAGIC:
        os.close(fd)
        raise InitError("open procfs", 0, "/proc", "not a procfs (filesystem type %#x): refused" % kind)
    _root = fd
    return fd


def close():
    global _root
    if _root >= 0:
        os.close(_root)
    _root = -1


def _pid():
    # read each time: a process forked into a new pid namespace has a new number there, even
    # when getpid() gives the same one (1) as its parent's
    try:
        return os.readlink("self", dir_fd=open_root())
    except OSError as e:
        raise InitError("find this process in procfs", e.errno, "/proc/self") from None


def _path(rel):
    """``rel`` beneath the procfs root, a leading "self/" made this process's pid."""
    if rel.startswith("self/"):
        return _pid() + rel[4:]
    return rel


def open_file(rel, flags):
    """An fd of /proc/``rel`` opened beneath the runtime's procfs (see the module's docstring)."""
    path = _path(rel)
    flags |= os.O_CLOEXEC if flags & os.O_PATH else os.O_CLOEXEC | os.O_NOCTTY
    fd = S.openat2(open_root(), path, flags, 0, RESOLVE)
    try:
        kind = S.fstatfs_type(fd)
    except OSError:
        os.close(fd)
        raise
    if kind != S.PROC_SUPER_MAGIC:  # (RESOLVE_NO_XDEV keeps it on the procfs root's own mount)
        os.close(fd)
        import errno
        raise OSError(errno.EXDEV, "not on procfs", "/proc/" + rel)
    return fd


def write(rel, data, what):
    """Write ``data`` (str) to /proc/``rel`` in one write; InitError naming ``what`` and the path."""
    try:
        fd = open_file(rel, os.O_WRONLY)
        try:
            raw = data.encode()
            if os.write(fd, raw) != len(raw):
                import errno
                raise OSError(errno.EIO, "short write")
        finally:
            os.close(fd)
    except OSError as e:
        raise InitError(what, e.errno, "/proc/" + rel, "" if e.errno else str(e)) from None


def read(rel):
    """The bytes of /proc/``rel`` (a small file, one read); OSError on failure."""
    fd = open_file(rel, os.O_RDONLY)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def exists(rel):
    try:
        os.close(open_file(rel, os.O_PATH))
    except OSError:
        return False
    return True
