"""ociruntime: an OCI runtime (runc's command line).

The path helpers below are os.path's, on ``posix`` (os's C half), for the modules on the paths of
start, state, delete and kill: ``import os`` alone costs ~1.5 ms (it imports _collections_abc), a
tenth of such a command.
"""
import posix
import sys


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


# flock and poll for the state dir and start's waits.  create, run and exec have the cffi shim
# loaded and use its wrappers; start, kill and delete do not load it (_cffi_backend, the shim and
# the os module it imports cost ~2 ms, against ~0.5 ms for fcntl or select): they import those.

LOCK_EX = 2


def flock(fd, op=LOCK_EX):
    """flock(2), retried after a signal."""
    S = sys.modules.get("ociruntime._sys")
    if S is not None:
        S.flock(fd, op)
    else:
        import fcntl
        fcntl.flock(fd, op)


def poll(fds, timeout=-1):
    """{fd: revents} of those of ``fds`` readable (or hung up, in error) within ``timeout`` ms (-1:
    no limit), {} at the timeout; retried after a signal."""
    S = sys.modules.get("ociruntime._sys")
    if S is not None:
        return S.poll(fds, timeout)
    import select
    p = select.poll()
    for fd in fds:
        p.register(fd, select.POLLIN)
    return dict(p.poll(timeout))
