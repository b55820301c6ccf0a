"""ociruntime: an OCI runtime (runc's command line), and its Python API.

``ociruntime.Container`` and ``ociruntime.Bundle`` (ociruntime/api.py, ociruntime/bundle.py; the
README's "Python API") are loaded when first named: ``import ociruntime`` loads only this module,
which every command loads anyway.

Every command starts a whole interpreter, so what it imports is a large part of what it costs.
The package's modules therefore use the C halves of os and signal (``import posix as os``,
``import _signal as signal``): importing os itself runs its body and _collections_abc's (which
builds all the ABCs), signal imports enum.  The path helpers below are os.path's (posixpath's,
for str paths) on posix, for the same reason.  No module on the paths of create, run, start,
state, delete, kill or exec imports os; those that need more of it (os.walk, shutil) import it
where they use it.  docs/NOTES.md ("Speed") has the measurements.
"""
import posix
import sys


def join(a, *parts):
    """os.path.join(a, *parts)."""
    for b in parts:
        if b.startswith("/"):
            a = b
        else:
            a = a + b if not a or a.endswith("/") else a + "/" + b
    return a


def dirname(path):
    """os.path.dirname(path)."""
    head = path[:path.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head


def normpath(path):
    """os.path.normpath(path): "." and ".." resolved lexically, slashes collapsed (two leading
    slashes kept, as POSIX allows)."""
    if not path:
        return "."
    lead = 2 if path.startswith("//") and not path.startswith("///") else 1 if path.startswith("/") else 0
    out = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part != ".." or (not lead and not out) or (out and out[-1] == ".."):
            out.append(part)
        elif out:
            out.pop()
    return "/" * lead + "/".join(out) or "."


def abspath(path):
    """os.path.abspath(path)."""
    return normpath(path if path.startswith("/") else join(posix.getcwd(), path))


# st_mode's file types (stat.S_IF*: fixed by POSIX's octal values; no module to import for them)
S_IFMT, S_IFDIR, S_IFCHR, S_IFBLK, S_IFREG, S_IFIFO = 0o170000, 0o040000, 0o020000, 0o060000, 0o100000, 0o010000


def _mode(path):
    try:
        return posix.stat(path).st_mode & S_IFMT
    except (OSError, ValueError):
        return 0


def exists(path):
    """os.path.exists(path)."""
    try:
        posix.stat(path)
    except (OSError, ValueError):
        return False
    return True


def isfile(path):
    """os.path.isfile(path)."""
    return _mode(path) == S_IFREG


def isdir(path):
    """os.path.isdir(path)."""
    return _mode(path) == S_IFDIR


def fsencode(name):
    """os.fsencode(name) for str or bytes."""
    return name if isinstance(name, bytes) else name.encode(sys.getfilesystemencoding(), "surrogateescape")


def fsdecode(name):
    """os.fsdecode(name) for str or bytes."""
    return name if isinstance(name, str) else name.decode(sys.getfilesystemencoding(), "surrogateescape")


def read_file(path):
    """The whole file as bytes, read with posix calls: open() builds an io stack for it (and, in
    text mode, a decoder), with an isatty ioctl, seeks and stats on the way.
    Raises what open() raises (FileNotFoundError, PermissionError, ...)."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        # a regular file in one read of its size (+1 to see the end); /proc files say 0
        chunks = [posix.read(fd, (posix.fstat(fd).st_size or 65535) + 1)]
        while chunks[-1]:
            chunks.append(posix.read(fd, 65536))
        return chunks[0] if len(chunks) == 2 else b"".join(chunks)  # one read: no copy
    finally:
        posix.close(fd)


def write_atomic(path, data, mode=0o600):
    """Replace the file ``path`` (absolute) with the bytes ``data`` at once: a temporary file
    beside it (".NAME.tmp") renamed over it, removed again if that fails.  Raises OSError."""
    head, _, name = path.rpartition("/")
    tmp = "%s/.%s.tmp" % (head, name.lstrip("."))
    try:
        fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[posix.write(fd, view):]
        finally:
            posix.close(fd)
        posix.rename(tmp, path)
    except OSError:
        try:
            posix.unlink(tmp)
        except OSError:
            pass
        raise


def read_text(path):
    """read_file decoded as the file system encoding does (bad bytes kept, as os.fsdecode)."""
    return read_file(path).decode(sys.getfilesystemencoding(), "surrogateescape")


LOCK_EX, LOCK_NB, LOCK_UN = 2, 4, 8


def flock(fd, op=LOCK_EX):
    """flock(2) (fcntl's: retried after a signal whose handler ran)."""
    import fcntl
    fcntl.flock(fd, op)


def poll(fds, timeout=-1):
    """{fd: revents} of those of ``fds`` readable (or hung up, in error) within ``timeout`` ms (-1:
    no limit), {} at the timeout (select's poll: retried after a signal)."""
    import select
    p = select.poll()
    for fd in fds:
        p.register(fd, select.POLLIN)
    return dict(p.poll(timeout))


def single_threaded(what):
    """Refuse ``what`` (fork, unshare, setns) unless this process has one thread: a namespace
    change applies to the calling thread alone, and a fork copies only the caller, with whatever
    locks another thread held.  The runtime starts no threads; this makes sure of it.  The count
    is /proc/self/task's link count (2 + the threads); where /proc is not this process's (an exec
    that joined the container's mount namespace), Python's own count of the threads it started."""
    try:
        n = posix.stat("/proc/self/task").st_nlink - 2
    except OSError:
        import _thread
        n = 1 + _thread._count()
    if n != 1:
        from ociruntime.errors import InitError
        raise InitError(what, 0, "", "the runtime has %d threads: it must be single-threaded" % n)


def fork(what="fork"):
    """posix.fork, refused unless this process is single-threaded (single_threaded)."""
    single_threaded(what)
    return posix.fork()


# the API's names, and the module each is loaded from when first asked for (PEP 562)
_API = {"Container": "ociruntime.api", "State": "ociruntime.api", "Result": "ociruntime.api",
        "Process": "ociruntime.api", "Event": "ociruntime.api", "Bundle": "ociruntime.bundle"}


def __getattr__(name):
    where = _API.get(name)
    if where is None:
        raise AttributeError("module 'ociruntime' has no attribute %r" % name)
    module = __import__(where, fromlist=[name])
    return getattr(module, name)


def __dir__():
    return sorted(set(globals()) | set(_API))


def long_wait():
    """Before a wait that may last (run and exec in the foreground, events): the program runs a
    command with the cyclic garbage collector off (_program.main) and turns it back on here, what
    was made so far frozen (a first collection would scan it all).  A program that embeds the API
    keeps its collector as it has it."""
    program = sys.modules.get("ociruntime._program")
    if program is not None and program.gc_off:
        import gc
        gc.freeze()
        gc.enable()
        program.gc_off = False

# The tests' fault injection (tests/integration/test_leaks_kill9.py): OCIRUNTIME_TEST_KILL_AT
# names a step of a lifecycle command ("create:cgroups", "delete:cgroups-removed", ...) at which
# the command SIGKILLs itself, so that each step a kill -9 can interrupt is shown to leave a
# machine `delete --force` makes clean.  OCIRUNTIME_TEST_STOP_AT stops the command there instead
# (SIGSTOP), for a test that changes something at that moment and continues it
# (tests/integration/test_cgroup_birth.py).  Unset, a step costs two comparisons.
_KILL_AT = posix.environ.get(b"OCIRUNTIME_TEST_KILL_AT")
_STOP_AT = posix.environ.get(b"OCIRUNTIME_TEST_STOP_AT")


def kill_point(step):
    """Where the runtime may be killed: SIGKILL this process if the tests named ``step`` (or
    SIGSTOP it, for OCIRUNTIME_TEST_STOP_AT)."""
    if _KILL_AT is not None and _KILL_AT == step.encode():
        posix.kill(posix.getpid(), 9)
    if _STOP_AT is not None and _STOP_AT == step.encode():
        posix.kill(posix.getpid(), 19)
