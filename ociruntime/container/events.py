"""events: runc's event stream for a container: {"type":"stats","id":ID,"data":{...}} every
interval (or once with --stats) and {"type":"oom","id":ID} when the memory controller reports an
OOM kill.  The stream ends when the container stops (runc's ends when the cgroup goes away)."""
import select
import time

from ociruntime.cgroups import Manager
from ociruntime.container import state as _state
from ociruntime.container import status as _status
from ociruntime.errors import StateError


def _load(ctx, cid):
    sd, state, st = _state.load(ctx.root, cid)
    sd.close()
    if st == _status.STOPPED or not state.get("cgroup"):
        raise StateError("container with id %s is not running" % cid)
    return state


def stats_event(cid, mgr):
    return {"type": "stats", "id": cid, "data": mgr.stats()}


def stream(ctx, cid, interval=5.0, stats_only=False):
    """An iterator of the events (dicts, runc's shape) as they come, which ends when the container
    has stopped (with ``stats_only``, after the one stats event).  A container that is not running
    is refused now, not at the first event."""
    return _stream(cid, _load(ctx, cid), interval, stats_only)


def _stream(cid, state, interval, stats_only):
    from ociruntime import long_wait
    long_wait()
    mgr = Manager.from_state(state["cgroup"])
    if stats_only:
        yield stats_event(cid, mgr)
        return
    watch = None
    try:
        watch = mgr.oom_watch()
    except Exception:  # noqa: BLE001 - no memory controller: stats only
        watch = None
    poller = select.poll()
    if watch is not None:
        poller.register(watch.fileno(), watch.events)
    try:
        next_tick = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_tick:
                if not _status.init_alive(state):
                    return
                yield stats_event(cid, mgr)
                next_tick = now + interval
            timeout = max(0.0, min(next_tick - time.monotonic(), 0.5))
            if poller.poll(int(timeout * 1000)) and watch is not None:
                for _ in range(watch.check()):
                    yield {"type": "oom", "id": cid}
            if not _status.init_alive(state):
                if watch is not None:
                    for _ in range(watch.check()):
                        yield {"type": "oom", "id": cid}
                return
    finally:
        if watch is not None:
            watch.close()


def stats(ctx, cid):
    """The container's stats now (runc's "stats" data)."""
    state = _load(ctx, cid)
    return Manager.from_state(state["cgroup"]).stats()
