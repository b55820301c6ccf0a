"""update: change a running container's linux.resources, as runc's update does.

The new values are merged into the container's recorded resources (a field given as 0 or left
out keeps its value; devices are never changed by update, as runc), the merged set is written,
and the record is saved.  Every cgroup file written is journalled first: when a write is refused
the files already changed are put back, so a failed update leaves the old limits in place.
"""
from ociruntime import kill_point
from ociruntime.cgroups import Manager
from ociruntime.cgroups import fs
from ociruntime.container import state as _state
from ociruntime.container import status as _status
from ociruntime.errors import CgroupError, StateError


def merge(old, delta):
    """old updated with delta's non-zero values (dicts merged, lists replaced)."""
    out = dict(old)
    for k, v in delta.items():
        if k == "devices":
            continue
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        elif v not in (None, 0, "") and v != {} and v != []:
            out[k] = v
        elif isinstance(v, dict) and k not in out:
            out[k] = merge({}, v)
    mem_delta = delta.get("memory") or {}
    if mem_delta.get("limit") == -1 and not mem_delta.get("swap") and "memory" in out:
        out["memory"] = dict(out["memory"], swap=-1)  # unlimited memory: unlimited memory+swap too
    return out


def update(ctx, cid, delta):
    sd, state, st = _state.load(ctx.root, cid, lock=True)
    try:
        if st == _status.STOPPED:
            raise StateError("container not running")
        if not state.get("cgroup"):
            raise StateError("container %s has no cgroup" % cid)
        linux = state["config"].setdefault("linux", {})
        new = merge(linux.get("resources") or {}, delta)
        cg = Manager.from_state(state["cgroup"])
        fs.journal = []
        old = linux.get("resources")
        try:
            cg.apply(new, skip_devices=True)
            kill_point("update:applied")
            linux["resources"] = new
            sd.save(state)  # (a full disk: the old limits go back, as the record still has them)
        except (CgroupError, StateError) as e:
            entries, fs.journal = fs.journal, None
            linux["resources"] = old
            failed = fs.restore(entries)
            try:
                cg.revert_unit(old)
            except CgroupError as unit_error:
                failed.append(str(unit_error))
            if failed:
                raise e.__class__("%s (and restoring %s failed)" % (e, ", ".join(sorted(set(failed))))) from None
            raise
        finally:
            fs.journal = None
    finally:
        sd.close()
