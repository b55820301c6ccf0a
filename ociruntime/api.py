"""The Python API: ``Container`` (the lifecycle of one container) and what its methods return
(``State``, ``Result``, ``Process``, ``Event``).  The README's "Python API" shows it in use.

One implementation: each method calls the function of ``ociruntime.container`` that the command
of the same name calls (the commands parse their flags and call those functions directly, so that
none loads this module: docs/NOTES.md, "Python API"), with a Container as the ``ctx`` they
take (``root``, ``log``, ``systemd_cgroup``: the global options).  What is the API's own is only
what a program needs beyond the command line: Python objects for the answers, the process's stdio
(files, or captured), and waiting for and reaping the processes it started.  The container/
modules are imported when a method runs: importing this module loads nothing else.

Errors are ``ociruntime.errors`` types (all ``OCIError``); ``str(err)`` is the line the command
prints after "ociruntime: " (for exec the command adds "exec failed: ", as runc).  The methods
that fork (create, run, exec) must be called from a single-threaded process (InitError
otherwise): a fork copies only the calling thread, and the runtime's child then runs Python.
create, run and exec make the calling process a child subreaper (as runc's run and exec make
themselves), so that the container's init and exec'd processes are its children even when an
intermediate process forked them; ``wait`` and ``delete`` reap them.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import log as _log
from ociruntime.errors import StateError, UsageError, WaitTimeout

# the inits this process created, until they are deleted: (root, id) -> [pid, start time, exit
# status once reaped].  They are its children (or adopted: a subreaper), so wait() gets their
# status and delete() reaps them.
_children = {}
_logs = {}


def _make_log(path, fmt, debug):
    """One Log a file (the API opens each log file once, however many Containers name it)."""
    if fmt not in ("text", "json"):
        raise UsageError("invalid log-format: %s" % fmt)
    key = (path, fmt, bool(debug))
    log = _logs.get(key)
    if log is None:
        log = _log.Log(path, fmt, bool(debug))
        try:
            log.open()
        except OSError as e:
            raise UsageError("open log file %s: %s" % (path, e.strerror)) from None
        _logs[key] = log
    return log


class Container:
    """One container, by id, in a state root.  Making the object does nothing: ``create`` or
    ``run`` makes the container; the other methods act on an existing one (created by this
    process or any other, the command line included).

    The constructor's arguments are the command line's global options, with its defaults:
    ``root`` (--root: /run/ociruntime, $XDG_RUNTIME_DIR/ociruntime for a user), ``log`` (--log:
    a file, or None for stderr; or an ociruntime.log.Log), ``log_format`` (--log-format: "text" or
    "json"), ``debug`` (--debug), ``systemd_cgroup`` (--systemd-cgroup).  Raises UsageError for a
    log format that is neither, or a log file that cannot be opened.  Used as a context manager,
    the container is deleted (``delete(force=True)``) when the block ends.
    """

    def __init__(self, id, *, root=None, log=None, log_format="text", debug=False, systemd_cgroup=False):
        self.id = id
        if root is None:
            from ociruntime.container.state import default_root
            root = default_root()
        self.root = os.fspath(root)
        self.log = log if isinstance(log, _log.Log) else _make_log(log, log_format, debug)
        self.systemd_cgroup = bool(systemd_cgroup)
        self._status = None  # the exit status, once this object has seen it

    def __repr__(self):
        return "Container(%r, root=%r)" % (self.id, self.root)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.delete(force=True)

    # -- the lifecycle ---------------------------------------------------------------------------
    def create(self, bundle, *, pid_file=None, console_socket=None, no_pivot=False, preserve_fds=0,
               no_new_keyring=False, stdin=None, stdout=None, stderr=None, start=False):
        """Create the container from ``bundle`` (a directory with config.json, or a Bundle, which
        is written first); with ``start``, start it too (`run --detach`).  ``stdin``, ``stdout``,
        ``stderr``: a file object or fd for the process's, instead of this process's (with
        ``process.terminal``, the terminal's are used).  The other arguments are create's flags.
        Returns self.  Raises ConfigError (the bundle: unreadable, invalid, refused), StateError
        (the id in use or invalid, the state root not writable), CgroupError, HookError, InitError
        (a step of the container's setup, naming it)."""
        from ociruntime import _sys as S
        path = _bundle_path(bundle)
        stdio = _Stdio(stdin, stdout, stderr)
        self._status = None
        S.prctl(S.PR_SET_CHILD_SUBREAPER, 1)
        try:
            kw = dict(pid_file=pid_file, console_socket=console_socket, no_pivot=no_pivot,
                      preserve_fds=max(0, preserve_fds), no_new_keyring=no_new_keyring, stdio=stdio.fds)
            if start:
                from ociruntime.container.run import run
                state = run(self, self.id, path, detach=True, **kw)
            else:
                from ociruntime.container.create import create
                state = create(self, self.id, path, **kw)
        finally:
            stdio.close()
        _children[(self.root, self.id)] = [state["pid"], state["start_time"], None]
        return self

    def start(self):
        """Start the created container's process.  Raises StateError (no such container, not
        created), InitError (its exec failed: the container is then stopped), HookError."""
        from ociruntime.container.start import start
        start(self, self.id)

    def run(self, bundle, *, keep=False, capture_output=False, input=None, stdin=None, stdout=None,
            stderr=None, pid_file=None, console_socket=None, no_pivot=False,
            preserve_fds=0, no_new_keyring=False):
        """Create and start the container, wait for its process to exit and delete it (unless
        ``keep``); returns a Result (``returncode``: the exit status, 128+n for signal n; with
        ``capture_output``, ``stdout`` and ``stderr`` as bytes; ``input``: bytes for its stdin).
        Signals are not forwarded (the command line's run forwards them): anything that ends the
        wait early (KeyboardInterrupt) kills the container and deletes it (unless ``keep``).  A
        process with a terminal and no ``console_socket`` gets this process's terminal, relayed.
        Raises what create and start raise."""
        from ociruntime import _sys as S
        from ociruntime.container.run import run
        path = _bundle_path(bundle)
        stdio = _Stdio(stdin, stdout, stderr, capture_output, input)
        self._status = None
        S.prctl(S.PR_SET_CHILD_SUBREAPER, 1)
        try:
            status = run(self, self.id, path, keep=keep, forward=False, pid_file=pid_file,
                         console_socket=console_socket, no_pivot=no_pivot, preserve_fds=max(0, preserve_fds),
                         no_new_keyring=no_new_keyring, stdio=stdio.fds)
            out, err = stdio.captured()
        finally:
            stdio.close()
        self._status = status
        return Result(None, status, out, err)

    def state(self):
        """The container's State (runc's `state`).  Raises StateError (no such container)."""
        from ociruntime.container.state import get
        return State(get(self.root, self.id))

    @property
    def status(self):
        """"created", "running", "paused" or "stopped"."""
        return self.state().status

    @property
    def pid(self):
        """The init's pid (0 once stopped)."""
        return self.state().pid

    def kill(self, signal="SIGTERM", all=False):
        """Send ``signal`` (a number, or a name: "KILL", "SIGKILL") to the init, or with ``all`` to
        every process of the container.  Raises StateError (no such container, not running),
        OCIError (an unknown signal)."""
        from ociruntime.container.kill import kill
        kill(self, self.id, str(int(signal)) if isinstance(signal, int) else signal, all_procs=all)

    def delete(self, force=False):
        """Delete the container (stopped or created; with ``force``, killing what runs: a
        container that does not exist is then no error).  Its init is reaped when it is this
        process's child (``wait`` still returns its status).  Raises StateError (no such container,
        running without ``force``), CgroupError (a cgroup that would not go)."""
        from ociruntime.container.delete import delete
        delete(self, self.id, force=force)
        child = _children.pop((self.root, self.id), None)
        if child is not None and self._status is None:
            self._status = _reap(child, block=False)

    def pause(self):
        """Freeze every process of the container.  Raises StateError (not running, or paused)."""
        from ociruntime.container.pause import pause
        pause(self, self.id)

    def resume(self):
        """Thaw a paused container.  Raises StateError (not paused)."""
        from ociruntime.container.pause import resume
        resume(self, self.id)

    def update(self, resources=None, **sections):
        """Change the container's linux.resources: ``resources`` (a runtime-spec LinuxResources
        dict) and/or its sections as keywords (``memory={"limit": 64 << 20}``, ``pids={"limit":
        32}``); a field left out or 0 keeps its value, as runc's update.  Raises StateError (not
        running, no cgroup), CgroupError (a value refused: the old ones are put back)."""
        from ociruntime.container.update import update
        delta = dict(resources or {})
        delta.update(sections)
        update(self, self.id, delta)

    def pids(self):
        """The pids (as the host sees them) of the container's processes."""
        from ociruntime.container.pause import pids
        return pids(self, self.id)

    def stats(self):
        """The container's resource usage now: a dict of runc's `events --stats` data (cpu,
        memory, pids, blkio, hugetlb, ...).  Raises StateError (not running)."""
        from ociruntime.container.events import stats
        return stats(self, self.id)

    def events(self, interval=5.0):
        """An iterator of Events: a "stats" Event every ``interval`` seconds and an "oom" Event for
        each OOM kill in the container, until it stops.  Raises StateError (not running) now."""
        if interval <= 0:
            raise UsageError("duration interval must be greater than 0")
        from ociruntime.container.events import stream
        return (Event(e) for e in stream(self, self.id, interval))

    def exec(self, args=None, *, process=None, cwd=None, env=None, uid=None, gid=None, additional_gids=(),
             caps=(), no_new_privs=None, tty=False, apparmor=None, process_label=None, console_socket=None,
             preserve_fds=0, cgroup=None, ignore_paused=False, detach=False, pid_file=None, stdin=None,
             stdout=None, stderr=None, capture_output=False, input=None):
        """Run ``args`` in the container, as the container's own process runs (its env, user,
        capabilities...) changed by the keywords, which are exec's flags (``env``: a dict or
        "K=V" strings, added; ``caps``: capability names, added; ``uid``, ``gid``,
        ``additional_gids``: numbers; ``cgroup``: "[CONTROLLER:]PATH" strings); or ``process``, a
        runtime-spec process dict (the other process keywords are then not used, as --process).
        Returns a Result once the process has exited (``returncode``; ``stdout`` and ``stderr``
        bytes with ``capture_output``; ``input``: bytes for its stdin); with ``detach``, a
        Process at once.  As in run, signals are not forwarded, and anything that ends the wait
        early kills the process.  Raises StateError (no such container, stopped, paused without
        ``ignore_paused``), ConfigError (a process the runtime refuses), InitError (a step of its
        setup, or the exec itself, failed), UsageError (arguments that do not go together)."""
        from ociruntime.container.exec import exec_process, override
        if detach and (capture_output or input is not None):
            raise UsageError("exec: capture_output and input need to wait for the process (not detach)")
        if process is None:
            if not args:
                raise UsageError("process args cannot be empty")
            if isinstance(args, str):
                raise UsageError("exec: args must be a list of strings, not a string")
            if isinstance(env, dict):
                env = ["%s=%s" % kv for kv in env.items()]
            changes = dict(cwd=cwd, env=env, tty=tty, uid=uid, gid=gid, additional_gids=additional_gids,
                           caps=caps, no_new_privs=no_new_privs, apparmor=apparmor, process_label=process_label)
            spec = lambda base: override(base, args, **changes)  # noqa: E731 (given the container's process)
        else:
            spec, args = process, process.get("args")
        stdio = _Stdio(stdin, stdout, stderr, capture_output, input)
        try:
            got = exec_process(self, self.id, spec, detach=detach, pid_file=pid_file,
                               console_socket=console_socket, preserve_fds=max(0, preserve_fds),
                               cgroup=[cgroup] if isinstance(cgroup, str) else cgroup,
                               ignore_paused=ignore_paused, stdio=stdio.fds, forward=False)
            if detach:
                return Process(got, args)
            out, err = stdio.captured()
        finally:
            stdio.close()
        return Result(list(args or ()), got, out, err)

    def wait(self, timeout=None):
        """Wait until the container's process has exited; its exit status (128+n for signal n), or
        None when this process did not create the container (the status is its creator's to read).
        Raises WaitTimeout (also a TimeoutError) after ``timeout`` seconds, StateError (no such
        container)."""
        if self._status is not None:
            return self._status
        child = _children.get((self.root, self.id))
        if child is not None and child[2] is not None:
            return child[2]
        from ociruntime.container.state import load
        try:
            sd, state, _ = load(self.root, self.id, lock=False)
            sd.close()
        except StateError:
            if child is None:
                raise
            state = {"pid": child[0], "start_time": child[1]}  # deleted by another process
        if child is None or child[:2] != [state["pid"], state["start_time"]]:
            _wait_exit(state["pid"], state["start_time"], timeout, "container " + self.id)
            return None
        _wait_exit(child[0], child[1], timeout, "container " + self.id)
        self._status = _reap(child, block=True)
        return self._status

    @classmethod
    def list(cls, root=None):
        """The States of every container in ``root`` (default: the command line's), with their
        owners."""
        from ociruntime.container.state import default_root, list_all
        return [State(s) for s in list_all(os.fspath(root) if root is not None else default_root())]


def _bundle_path(bundle):
    write = getattr(bundle, "write", None)
    return write() if write is not None else os.fspath(bundle)


def _wait_exit(pid, start_time, timeout, what):
    """Until the process ``pid`` (the one started at ``start_time``; None: a child not yet
    reaped, whose pid cannot be another's) has exited."""
    from ociruntime import poll
    if start_time is not None:
        from ociruntime.container.status import proc_stat
        st = proc_stat(pid)
        if st is None or st[1] != start_time or st[0] in ("Z", "X"):
            return
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not poll((pidfd,), -1 if timeout is None else max(0, int(timeout * 1000))):
            raise WaitTimeout("%s: still running after %gs" % (what, timeout))
    finally:
        os.close(pidfd)


def _reap(child, block):
    """The exit status of ``child`` (an entry of _children), reaped if it has exited (with
    ``block``, once it has); None while it runs, or when it is not (or no longer) this process's
    child."""
    if child[2] is None:
        if child[1] is not None:
            from ociruntime.container.status import proc_stat
            st = proc_stat(child[0])
            if st is None or st[1] != child[1]:
                return None  # reaped by someone else (or never ours): its pid may be another's now
        try:
            pid, status = os.waitpid(child[0], 0 if block else os.WNOHANG)
        except ChildProcessError:
            return None
        if pid:
            child[2] = _exit_status(status)
    return child[2]


def _exit_status(status):
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class _Stdio:
    """The fds the process gets as stdin, stdout and stderr (``fds``: three, or None for all this
    process's): copies above 2, close-on-exec (process/__init__.py, take_stdio), of the caller's
    files or fds, or of memfds holding ``input`` and taking the captured output.  ``close`` closes
    them; ``captured`` reads the output."""

    def __init__(self, stdin=None, stdout=None, stderr=None, capture=False, input=None):
        self.fds, self.memfds = None, [None, None]
        if stdin is None and stdout is None and stderr is None and not capture and input is None:
            return
        if input is not None and stdin is not None:
            raise UsageError("stdin and input cannot both be given")
        if capture and (stdout is not None or stderr is not None):
            raise UsageError("stdout and stderr cannot be given with capture_output")
        self.fds = [None, None, None]
        try:
            if input is not None:
                fd = os.memfd_create("stdin", os.MFD_CLOEXEC)
                try:
                    os.write(fd, input.encode() if isinstance(input, str) else bytes(input))
                    os.lseek(fd, 0, 0)
                    self.fds[0] = _above2(fd)
                finally:
                    os.close(fd)
            if capture:
                for i, name in ((1, "stdout"), (2, "stderr")):
                    fd = os.memfd_create(name, os.MFD_CLOEXEC)
                    try:
                        self.fds[i] = self.memfds[i - 1] = _above2(fd)
                    finally:
                        os.close(fd)
            for i, f in enumerate((stdin, stdout, stderr)):
                if f is not None:
                    self.fds[i] = _above2(f if isinstance(f, int) else f.fileno())
        except BaseException:
            self.close()
            raise

    def captured(self):
        """(stdout, stderr) as bytes, or (None, None) without capture."""
        out = []
        for fd in self.memfds:
            if fd is None:
                out.append(None)
                continue
            chunks, offset = [], 0
            while True:
                chunk = os.pread(fd, 1 << 20, offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
            out.append(b"".join(chunks))
        return tuple(out)

    def close(self):
        for fd in self.fds or ():
            if fd is not None:
                os.close(fd)
        self.fds = None


def _above2(fd):
    import fcntl
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    except OSError as e:
        raise UsageError("stdio: fd %d: %s" % (fd, e.strerror)) from None


class State:
    """runc's `state` of a container: ``id``, ``pid`` (0 once stopped), ``status`` ("created",
    "running", "paused", "stopped"), ``bundle``, ``rootfs``, ``created`` (RFC 3339), ``annotations``
    (dict), ``owner``, ``oci_version``; ``as_dict()`` is the JSON object `state` prints."""

    __slots__ = ("id", "pid", "status", "bundle", "rootfs", "created", "annotations", "owner", "oci_version",
                 "_doc")

    def __init__(self, doc):
        self._doc = doc
        self.id, self.pid, self.status = doc["id"], doc["pid"], doc["status"]
        self.bundle, self.rootfs, self.created = doc["bundle"], doc["rootfs"], doc["created"]
        self.annotations, self.owner = doc.get("annotations") or {}, doc.get("owner", "")
        self.oci_version = doc.get("ociVersion")

    def as_dict(self):
        return dict(self._doc)

    def __repr__(self):
        return "State(id=%r, status=%r, pid=%r)" % (self.id, self.status, self.pid)


class Result:
    """A process that has exited: ``args`` (None for run), ``returncode`` (128+n for signal n),
    ``stdout`` and ``stderr`` (bytes when captured, else None)."""

    __slots__ = ("args", "returncode", "stdout", "stderr")

    def __init__(self, args, returncode, stdout=None, stderr=None):
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr

    def __repr__(self):
        return "Result(args=%r, returncode=%r)" % (self.args, self.returncode)


class Process:
    """A process exec'd with ``detach``: ``pid`` (the host's), ``args``; a child of this process
    (a subreaper), so its pid stays its own until ``wait`` reaps it (a zombie until then)."""

    __slots__ = ("pid", "args", "returncode")

    def __init__(self, pid, args):
        self.pid, self.args, self.returncode = pid, list(args or ()), None

    def wait(self, timeout=None):
        """The exit status (128+n for signal n) once it has exited.  Raises WaitTimeout after
        ``timeout`` seconds."""
        if self.returncode is None:
            _wait_exit(self.pid, None, timeout, "process %d" % self.pid)
            self.returncode = _reap([self.pid, None, None], block=True)
        return self.returncode

    def kill(self, signal=9):
        """Send ``signal`` (a number) to it, unless it has been waited for."""
        if self.returncode is None:
            try:
                os.kill(self.pid, int(signal))
            except ProcessLookupError:
                pass

    def __repr__(self):
        return "Process(pid=%r, args=%r)" % (self.pid, self.args)


class Event:
    """An event of ``Container.events``: ``type`` ("stats" or "oom"), ``id`` (the container's),
    ``data`` (for "stats": the dict ``Container.stats`` returns; else None)."""

    __slots__ = ("type", "id", "data")

    def __init__(self, doc):
        self.type, self.id, self.data = doc["type"], doc["id"], doc.get("data")

    def as_dict(self):
        """runc's JSON object of the event."""
        doc = {"type": self.type, "id": self.id}
        if self.data is not None:
            doc["data"] = self.data
        return doc

    def __repr__(self):
        return "Event(type=%r, id=%r)" % (self.type, self.id)
