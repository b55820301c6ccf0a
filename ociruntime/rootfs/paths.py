"""Resolve paths inside the container's rootfs without ever leaving it.

Every lookup goes through openat2(RESOLVE_IN_ROOT): ``..`` and absolute symlinks are clamped to the
rootfs, and magic links (/proc/self/...) are refused, so a hostile rootfs, or one changed while the
container is being created, cannot point a mount at the host.  Callers mount onto the returned
O_PATH fd through /proc/self/fd/N, never onto a path string that could be re-resolved.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import S_IFDIR, S_IFMT, _sys

RESOLVE = _sys.RESOLVE_IN_ROOT | _sys.RESOLVE_NO_MAGICLINKS
O_PATH = os.O_PATH | os.O_CLOEXEC


def fdpath(fd):
    return "/proc/self/fd/%d" % fd


def open_in_root(rootfd, path, flags=O_PATH, mode=0):
    return _sys.openat2(rootfd, path.lstrip("/") or ".", flags, mode, RESOLVE)


def components(path):
    return [c for c in path.split("/") if c and c != "."]


def mkdir_all(rootfd, path, mode=0o755, _links=0):
    """Create every missing directory of ``path`` inside the root; returns an O_PATH fd of it.

    A dangling symlink on the way is followed inside the root (as runc's securejoin does): what it
    points at is created below the rootfs, never outside it."""
    try:
        fd = open_in_root(rootfd, path, O_PATH | os.O_DIRECTORY)
        return fd
    except FileNotFoundError:
        pass
    parent = os.dup(rootfd)
    try:
        parts = components(path)
        for i, name in enumerate(parts):
            prefix = "/".join(parts[:i + 1])
            try:
                nxt = open_in_root(rootfd, prefix, O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                try:
                    os.mkdir(name, mode, dir_fd=parent)
                except FileExistsError:
                    try:
                        target = os.readlink(name, dir_fd=parent)
                    except OSError:
                        import errno  # only on this error path (see ociruntime/__init__.py)
                        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), prefix) from None
                    if _links >= 40:
                        import errno
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), prefix) from None
                    base = target if target.startswith("/") else "/".join(parts[:i]) + "/" + target
                    rest = "/".join(parts[i + 1:])
                    os.close(parent)
                    parent = -1
                    return mkdir_all(rootfd, base + ("/" + rest if rest else ""), mode, _links + 1)
                nxt = open_in_root(rootfd, prefix, O_PATH | os.O_DIRECTORY)
            os.close(parent)
            parent = nxt
        return parent
    except BaseException:
        if parent >= 0:
            os.close(parent)
        raise


def make_target(rootfd, path, is_dir, mode=0o755, _links=0):
    """An O_PATH fd of the mount target, created as a directory or an empty file when missing.
    A dangling symlink (an image's /etc/resolv.conf -> /run/...) is followed inside the root and
    what it points at is created there, as runc does."""
    if is_dir:
        return mkdir_all(rootfd, path, mode)
    try:
        return open_in_root(rootfd, path)
    except FileNotFoundError:
        pass
    parent, _, name = path.rstrip("/").rpartition("/")
    pfd = mkdir_all(rootfd, parent or "/")
    try:
        try:
            fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=pfd)
            os.close(fd)
        except FileExistsError:
            pass
        except OSError as e:
            if e.errno != 40:  # ELOOP: a dangling symlink
                raise
            target = os.readlink(name, dir_fd=pfd)
            if _links >= 40:
                raise
            if not target.startswith("/"):
                # relative to the directory it is in, as that directory is inside the root
                target = "/".join(components(parent) + [target])
            return make_target(rootfd, target, False, mode, _links + 1)
        return _sys.openat2(pfd, name, O_PATH, 0, RESOLVE)
    finally:
        os.close(pfd)


def is_dir_path(path):
    try:
        return os.stat(path).st_mode & S_IFMT == S_IFDIR
    except (FileNotFoundError, NotADirectoryError):  # ENOENT, ENOTDIR
        return True
