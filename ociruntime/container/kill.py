"""kill: signal the init (pidfd, so a reused pid is never hit), or with --all every process of the
container's cgroup."""
import posix as os  # os's C half (ociruntime/__init__.py says why)
import _signal  # not the shim: pidfd_open and pidfd_send_signal are in posix and _signal

from ociruntime.container import state as _state
from ociruntime.container import status as _status
from ociruntime.errors import StateError


def kill(ctx, cid, signal, all_procs=False):
    """``signal`` as the command line gives it (a name or a number), read once the container is
    found (runc's order of errors)."""
    from ociruntime.signals import parse_signal
    sd, state, st = _state.load(ctx.root, cid, lock=True)
    try:
        sig = parse_signal(signal)
        ctx.log.debug("kill %s: signal %d to %s", cid, sig, "every process" if all_procs else "the init")
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
        pidfd = os.pidfd_open(state["pid"])
    except OSError:
        raise StateError("container not running") from None
    try:
        if not _status.init_alive(state):
            raise StateError("container not running")
        _signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise StateError("container not running") from None
    finally:
        os.close(pidfd)


def signal_all(state, sig):
    from ociruntime.cgroups import Manager
    if not state.get("cgroup"):
        return signal_init(state, sig)
    Manager.from_state(state["cgroup"]).kill_all(sig)
