"""pause / resume: freeze and thaw the container's cgroup."""
from ociruntime.cgroups import freeze
from ociruntime.container import state as _state
from ociruntime.container import status as _status
from ociruntime.errors import StateError


def pause(ctx, cid):
    sd, state, st = _state.load(ctx.root, cid, lock=True)
    try:
        if st not in (_status.RUNNING, _status.CREATED):
            raise StateError("container not running" if st == _status.STOPPED else "container %s is already paused" % cid)
        freeze(state["cgroup"], True)
    finally:
        sd.close()


def resume(ctx, cid):
    sd, state, st = _state.load(ctx.root, cid, lock=True)
    try:
        if st != _status.PAUSED:
            raise StateError("container not paused")
        freeze(state["cgroup"], False)
    finally:
        sd.close()


def pids(ctx, cid):
    from ociruntime.cgroups import Manager
    sd, state, st = _state.load(ctx.root, cid)
    sd.close()
    if st == _status.STOPPED or not state.get("cgroup"):
        return []
    return Manager.from_state(state["cgroup"]).procs()
