"""start: release a created container's init through exec.fifo, then run poststart hooks."""
import os
import select

from ociruntime import _sys as S
from ociruntime.container import state as _state
from ociruntime.container import status as _status
from ociruntime.errors import HookError, StateError


def start(ctx, cid):
    sd, state, st = _state.load(ctx.root, cid, lock=True)
    try:
        _status.check_start(cid, st)
        release(sd, state)
        hooks = (state.get("config") or {}).get("hooks") or {}
        if hooks.get("poststart"):
            from ociruntime.hooks import run_hooks
            try:
                run_hooks(hooks["poststart"], "poststart", _state.state_json(state, _status.RUNNING))
            except HookError as e:
                raise HookError("poststart hook failed: %s" % e) from None
    finally:
        sd.close()


def release(sd, state):
    """Open the fifo for reading (the blocked init's open completes), read its byte, remove it."""
    try:
        pidfd = S.pidfd_open(state["pid"])
    except OSError:
        raise StateError("cannot start a container that has stopped") from None
    try:
        fd = os.open(sd.fifo_path(), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        os.close(pidfd)
        raise StateError("cannot start an already running container") from None
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        p.register(pidfd, select.POLLIN)
        while True:
            events = dict(p.poll(10_000))
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
