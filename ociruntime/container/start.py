"""start: release a created container's init through exec.fifo, then the startContainer outcome
and the poststart hooks.  A container created without a process (the spec lets create accept
one) is refused here, and stays created."""
import posix as os  # not os: ~1.5 ms (see ociruntime/__init__.py)

from ociruntime import join, poll
from ociruntime.container import state as _state
from ociruntime.container import status as _status
from ociruntime.errors import HookError, OCIError, StateError


def start(ctx, cid):
    sd, state, st = _state.load(ctx.root, cid, lock=True)
    try:
        _status.check_start(cid, st)
        check_process(state)
        ctx.log.debug("start %s: releasing the init (pid %d) through exec.fifo", cid, state["pid"])
        release(sd, state)
        run_start_hooks(ctx, sd, state)
        ctx.log.debug("start %s: done", cid)
    finally:
        sd.close()


def check_process(state):
    cfg = state.get("config")
    if cfg is not None and "process" not in cfg:
        raise StateError("cannot start a container without a process (its config.json has none)")


def run_start_hooks(ctx, sd, state):
    """After the release: the startContainer hooks' outcome (a failure destroys the container, as
    the spec's lifecycle says), then the poststart hooks (a failure fails start and stops the
    container, runtime-spec v1.3.0; it stays, stopped, until deleted)."""
    hooks = (state.get("config") or {}).get("hooks") or {}
    if hooks.get("startContainer"):
        err = _start_hooks_outcome(sd, state)
        if err is not None:
            from ociruntime.container.delete import destroy, kill_and_wait
            kill_and_wait(state)
            try:
                destroy(ctx, sd, state)
            except OCIError as e:
                ctx.log.warning("destroy after a failed startContainer hook: %s" % e)
            raise HookError(err)
    if hooks.get("poststart"):
        from ociruntime.hooks import run_hooks
        ctx.log.debug("running the poststart hooks")
        try:
            run_hooks(hooks["poststart"], "poststart", _state.state_json(state, _status.RUNNING), state["bundle"])
        except HookError:
            from ociruntime.container.delete import kill_and_wait
            kill_and_wait(state)
            raise


def _start_hooks_outcome(sd, state):
    """What the init wrote to start.fifo after its startContainer hooks: None for "ok", else the
    error; the init dying first is an error too."""
    path = join(sd.path, "start.fifo")
    try:
        pidfd = os.pidfd_open(state["pid"])
    except OSError:
        return "startContainer hooks: the container init exited"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        os.close(pidfd)
        return "startContainer hooks: open %s: %s" % (path, e.strerror)
    data = b""
    fds = [fd, pidfd]
    try:
        while True:
            events = poll(fds)
            if fd in events:
                chunk = os.read(fd, 65536)
                if chunk:
                    data += chunk
                    continue
                if data:
                    break  # the writer closed: all is read
            if pidfd in events and not data:
                return "startContainer hooks: the container init exited before reporting their outcome"
            if pidfd in events:
                fds.remove(pidfd)
    finally:
        os.close(fd)
        os.close(pidfd)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    text = data.decode(errors="replace")
    return None if text == "ok" else text[len("error:"):] if text.startswith("error:") else text


def release(sd, state):
    """Open the fifo for reading (the blocked init's open completes), read its byte, remove it."""
    try:
        pidfd = os.pidfd_open(state["pid"])
    except OSError:
        raise StateError("cannot start a container that has stopped") from None
    try:
        fd = os.open(sd.fifo_path(), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        os.close(pidfd)
        raise StateError("cannot start an already running container") from None
    try:
        while True:
            events = poll((fd, pidfd), 10_000)
            if fd in events:
                data = os.read(fd, 1)
                if data:
                    break
                raise StateError("container init exited before it was started")
            if pidfd in events:
                raise StateError("cannot start a container that has stopped")
            if not events:
                raise StateError("timed out waiting for the container init to accept start")
    finally:
        os.close(fd)
        os.close(pidfd)
    os.unlink(sd.fifo_path())
