"""start: release a created container's init through exec.fifo, wait until its process is
exec'd, then run the poststart hooks.  A container created without a process (the spec lets
create accept one) is refused here, and stays created.

The init holds exec.fifo's write end from the release until its final execve (close-on-exec): after
the byte that releases start come either EOF (the process was exec'd) or a report of what failed
after the release, which start prints: "error:<message>" (a startContainer hook, or another step
of the init) or the shim's and the trampoline's "<step>:<errno>" (cext/shim.c, oci_exec;
cext/trampoline.c)."""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import kill_point, poll
from ociruntime.container import state as _state
from ociruntime.container import status as _status
from ociruntime.errors import HookError, InitError, OCIError, StateError


def start(ctx, cid):
    sd, state, st = _state.load(ctx.root, cid, lock=True)
    try:
        _status.check_start(cid, st)
        check_process(state)
        ctx.log.debug("start %s: releasing the init (pid %d) through exec.fifo", cid, state["pid"])
        report = release(sd, state)
        run_start_hooks(ctx, sd, state, report)
        ctx.log.debug("start %s: done", cid)
    finally:
        sd.close()


def check_process(state):
    cfg = state.get("config")
    if cfg is not None and "process" not in cfg:
        raise StateError("cannot start a container without a process (its config.json has none)")


def run_start_hooks(ctx, sd, state, report):
    """After the release: what the init reported (``report``, release's result: a failed
    startContainer hook destroys the container, as the spec's lifecycle says; a failed exec leaves
    it stopped), then the poststart hooks, once the process runs (a failure fails start and stops
    the container, runtime-spec v1.3.0; it stays, stopped, until deleted)."""
    cfg = state.get("config") or {}
    hooks = cfg.get("hooks") or {}
    if report:
        if report.startswith("error:"):
            err = report[len("error:"):]
            if err.startswith("error running startContainer hook"):
                from ociruntime.container.delete import destroy, kill_and_wait
                kill_and_wait(state)
                try:
                    destroy(ctx, sd, state)
                except OCIError as e:
                    ctx.log.warning("destroy after a failed startContainer hook: %s" % e)
                raise HookError(err)
            raise InitError(err)
        step, _, errno_text = report.strip().rpartition(":")
        err = int(errno_text) if errno_text.isdigit() else 0
        if step == "exec":
            args = (cfg.get("process") or {}).get("args") or [""]
            raise InitError("exec %s" % args[0], err)
        raise InitError(step or report.strip(), err)
    if hooks.get("poststart"):
        from ociruntime.hooks import run_hooks
        ctx.log.debug("running the poststart hooks")
        try:
            run_hooks(hooks["poststart"], "poststart", _state.state_json(state, _status.RUNNING), state["bundle"])
        except HookError:
            from ociruntime.container.delete import kill_and_wait
            kill_and_wait(state)
            raise


def release(sd, state):
    """Open the fifo for reading (the blocked init's open completes), read its byte, remove the
    fifo, then read to EOF: "" once the process is exec'd, else the init's report of what failed."""
    try:
        pidfd = os.pidfd_open(state["pid"])
    except OSError:
        raise StateError("cannot start a container that has stopped") from None
    try:
        fd = os.open(sd.fifo_path(), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        os.close(pidfd)
        if _status.waits_for_start(state["pid"]):
            raise StateError("container %s: %s is missing: its init waits for start on it, and can only be "
                             "killed or deleted" % (state["id"], sd.fifo_path())) from None
        raise StateError("cannot start an already running container") from None
    data = b""
    released = False
    waited = 0
    try:
        while True:
            wait = -1 if released else 100 if not waited else 10_000 - waited
            events = poll((fd, pidfd) if pidfd >= 0 else (fd,), wait)
            waited += max(wait, 0)
            if fd in events:
                chunk = os.read(fd, 65536)
                if chunk and not released:
                    released, data = True, chunk[1:]
                    kill_point("start:released")
                    os.unlink(sd.fifo_path())
                    kill_point("start:fifo-removed")
                    continue
                if chunk:
                    data += chunk
                    continue
                if not released:
                    raise StateError("container init exited before it was started")
                break  # EOF: the init exec'd its process, or exited after its report
            if pidfd in events:
                if not released:
                    raise StateError("cannot start a container that has stopped")
                os.close(pidfd)  # the init is gone: what it wrote is read to EOF
                pidfd = -1
            if not events and _released_before(state["pid"], fd):
                # a start killed between the release and the fifo's removal: the fifo is stale
                os.unlink(sd.fifo_path())
                raise StateError("cannot start an already running container")
            if not events and waited >= 10_000:
                raise StateError("timed out waiting for the container init to accept start")
    finally:
        os.close(fd)
        if pidfd >= 0:
            os.close(pidfd)
    return data.decode(errors="replace")


def _released_before(pid, fifo_fd):
    """Whether the init is past its release already: it no longer holds exec.fifo, which it keeps
    (its handle, then the write end) until its final execve.  Its fds are compared by what they
    open, not by path (its mounts are not ours); False when they cannot be looked at."""
    want = os.fstat(fifo_fd)
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            st = os.stat("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
            return False
    return True
