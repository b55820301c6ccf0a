"""kill: signal the init (pidfd, so a reused pid is never hit), or with --all every process of the
container's cgroup."""
import os

from ociruntime import _sys as S
from ociruntime.container import state as _state
from ociruntime.container import status as _status
from ociruntime.errors import StateError


def kill(ctx, cid, sig, all_procs=False):
    sd, state, st = _state.load(ctx.root, cid, lock=True)
    try:
        if not (all_procs and st == _status.STOPPED):
            _status.check_kill(cid, st)
        if all_procs:
            signal_all(state, sig)
        else:
            signal_init(state, sig)
    finally:
        sd.close()


def signal_init(state, sig):
    try:
        pidfd = S.pidfd_open(state["pid"])
    except OSError:
        raise StateError("container not running") from None
    try:
        if not _status.init_alive(state):
            raise StateError("container not running")
        S.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise StateError("container not running") from None
    finally:
        os.close(pidfd)


def signal_all(state, sig):
    from ociruntime.cgroups import Manager
    if not state.get("cgroup"):
        return signal_init(state, sig)
    cg = Manager.from_state(state["cgroup"])
    for pid in cg.procs():
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
