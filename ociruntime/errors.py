"""The runtime's one exception family.

Every error the user can see is an ``OCIError``; its ``str()`` is the one line printed on stderr and
logged with ``level=error``.  The CLI catches ``OCIError`` only; anything else is a bug and gets a
traceback with ``--debug``.
"""


class OCIError(Exception):
    """Base: ``str(err)`` is the complete user-facing message."""


class ConfigError(OCIError):
    """config.json is unreadable, invalid, or asks for something unsupported."""


class StateError(OCIError):
    """Unknown container, id in use, or an operation not allowed in the current status."""


class UsageError(OCIError):
    """Bad command line (unknown flag, missing argument)."""


class HookError(OCIError):
    """A hook failed, or timed out and was killed."""


class CgroupError(OCIError):
    """A cgroup could not be created, joined, configured or removed."""


class WaitTimeout(OCIError, TimeoutError):
    """The API's wait for a process gave up after its timeout (the process runs on)."""


class InitError(OCIError):
    """A setup step of the container's init failed.

    ``step`` names what was being done ("mount proc to /proc"), ``errno`` the kernel's answer (0 when
    not a syscall failure), ``path`` the file involved.  The message reads
    ``<step>: <path>: <strerror>`` the way crun's do.
    """

    def __init__(self, step, errno=0, path="", text=""):
        self.step, self.errno, self.path, self.text = step, errno, path, text
        super().__init__(self._format())

    def _format(self):
        import posix as os
        parts = [self.step]
        if self.path:
            parts.append(self.path)
        if self.text:
            parts.append(self.text)
        elif self.errno:
            parts.append(os.strerror(self.errno))
        return ": ".join(parts)


def init_step(what, fn, *args, path=""):
    """``fn(*args)``, its OSError turned into the InitError that names the step."""
    try:
        return fn(*args)
    except OSError as e:
        raise InitError(what, e.errno, path or (e.filename if isinstance(e.filename, str) else "")) from None


def init_write(path, data, what):
    """Write ``data`` (str) to an existing file such as /proc/self/oom_score_adj, as one write."""
    import posix as os
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise InitError(what, e.errno, path) from None
