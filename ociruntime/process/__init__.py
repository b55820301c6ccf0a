"""The child side: the container's init (init.py), exec's children (execproc.py), the protocol
between them and the runtime (channel.py), the process's settings (spec.py)."""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime.errors import init_step


def take_stdio(stdio):
    """In a forked child (the init, or exec's first child): ``stdio``, three fds or None, become
    its stdin, stdout and stderr in place of the runtime's (ociruntime.api's stdin=, stdout=,
    stderr=).  The API passes them above 2 (so no dup2 here overwrites another's source) and
    close-on-exec: the copies at 0-2 are what the process keeps."""
    if stdio:
        for target, fd in enumerate(stdio):
            if fd is not None:
                init_step("set up stdio", os.dup2, fd, target)
