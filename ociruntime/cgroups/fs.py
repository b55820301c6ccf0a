"""Reading and writing cgroup files: one place for the open flags and the error text.

Files are opened without O_CREAT: on cgroupfs a file that is not there is a controller or feature
the kernel does not offer, and that must be an error naming the file, never a new regular file.
Tests swap ``write`` for a recording one (the file-level translation tests).
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import exists as _exists
from ociruntime import read_text
from ociruntime.errors import CgroupError

_WFLAGS = os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC

journal = None
"""While a list (update sets one): (path, content before the first write) of each file written,
so that a failed update can put the old values back."""


def write(cgdir, name, value):
    """Write one value; a refusal raises CgroupError naming the file, the value and the errno."""
    path = cgdir + "/" + name
    data = value.encode() if isinstance(value, str) else str(value).encode()
    if journal is not None and path not in (p for p, _ in journal):
        try:
            journal.append((path, read_text(path)))
        except OSError:
            pass
    try:
        fd = os.open(path, _WFLAGS)
    except FileNotFoundError:
        raise CgroupError("cannot set %s: %s does not exist (not supported by this host's cgroups)"
                          % (name, path)) from None
    except OSError as e:
        raise _error(path, data, e) from None
    try:
        os.write(fd, data)
    except OSError as e:
        raise _error(path, data, e) from None
    finally:
        os.close(fd)


def _error(path, data, e):
    err = CgroupError("write %r to %s: %s" % (data.decode(), path, e.strerror))
    err.errno = e.errno
    return err


def read(cgdir, name):
    return read_text(cgdir + "/" + name)


def exists(cgdir, name):
    return _exists(cgdir + "/" + name)


def read_int(cgdir, name, default=0):
    """An integer file ("max" reads as default); a missing file gives default."""
    try:
        text = read(cgdir, name).strip()
    except OSError:
        return default
    if text == "max" or not text:
        return default
    return int(text)


def read_kv(cgdir, name):
    """{key: int} of a flat keyed file (memory.stat, cpu.stat, memory.events, ...)."""
    out = {}
    try:
        text = read(cgdir, name)
    except OSError:
        return out
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            continue
    return out


def num_v2(v):
    """runc's numToStr for v2 files: 0 is "not set" (None), -1 is "max"."""
    if v is None or v == 0:
        return None
    if v == -1:
        return "max"
    return str(v)


def restore(entries):
    """Write back what ``journal`` recorded, last first; returns the paths that refused."""
    failed = []
    for path, old in reversed(entries):
        if path.endswith("/memory.oom_control"):
            old = "1" if "oom_kill_disable 1" in old else "0"
        d, _, name = path.rpartition("/")
        for line in old.splitlines() or [""]:
            if not line.strip():
                continue
            try:
                write(d, name, line.strip())
            except CgroupError:
                failed.append(path)
    return failed
