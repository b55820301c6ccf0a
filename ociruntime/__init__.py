"""ociruntime: an OCI runtime (runc's command line).

The path helpers below are os.path's, on ``posix`` (os's C half), for the modules on the paths of
start, state, delete and kill: ``import os`` alone costs ~1.5 ms (it imports _collections_abc), a
tenth of such a command.
"""
import posix


def join(a, b):
    """os.path.join(a, b)."""
    if b.startswith("/"):
        return b
    return a + b if not a or a.endswith("/") else a + "/" + b


def exists(path):
    """os.path.exists(path)."""
    try:
        posix.stat(path)
    except (OSError, ValueError):
        return False
    return True


def isfile(path):
    """os.path.isfile(path)."""
    try:
        return posix.stat(path).st_mode & 0o170000 == 0o100000
    except (OSError, ValueError):
        return False
