"""linux.resources.memory: limit, reservation, swap, swappiness, disableOOMKiller, checkBeforeUpdate.

v1 writes memory.limit_in_bytes / memory.memsw.limit_in_bytes in the order the kernel accepts
(runc's setMemoryAndSwap); v2 converts as runc does: swap (memory+swap in the spec) becomes
memory.swap.max = swap - limit, reservation becomes memory.low.  kernel/kernelTCP are ignored
everywhere and swappiness/disableOOMKiller on v2 (runc ignores them too: v2 has no such files).
"""
import errno

from ociruntime.cgroups import fs
from ociruntime.errors import CgroupError

MAX_U64 = 18446744073709551615


def _limit_v1(d, limit):
    try:
        fs.write(d, "memory.limit_in_bytes", limit)
    except CgroupError as e:
        if getattr(e, "errno", 0) == errno.EBUSY:
            raise CgroupError("unable to set memory limit to %d (current usage: %d, peak usage: %d)" % (
                limit, fs.read_int(d, "memory.usage_in_bytes"),
                fs.read_int(d, "memory.max_usage_in_bytes"))) from None
        raise


def set_v1(d, mem):
    limit, swap = mem.get("limit") or 0, mem.get("swap") or 0
    if limit == -1 and not swap and fs.exists(d, "memory.memsw.limit_in_bytes"):
        swap = -1
    # raising both: swap first (memsw must stay >= limit); lowering both: memory first
    if limit and swap and (swap == -1 or fs.read_int(d, "memory.limit_in_bytes", MAX_U64) < swap):
        fs.write(d, "memory.memsw.limit_in_bytes", swap)
        _limit_v1(d, limit)
    else:
        if limit:
            _limit_v1(d, limit)
        if swap:
            fs.write(d, "memory.memsw.limit_in_bytes", swap)
    if mem.get("reservation"):
        fs.write(d, "memory.soft_limit_in_bytes", mem["reservation"])
    if mem.get("disableOOMKiller"):
        fs.write(d, "memory.oom_control", "1")
    sw = mem.get("swappiness")
    if sw is not None and sw != -1:
        if not 0 <= sw <= 100:
            raise CgroupError("invalid memory swappiness value: %d (valid range is 0-100)" % sw)
        fs.write(d, "memory.swappiness", sw)


def swap_v2(swap, limit):
    """runc's ConvertMemorySwapToCgroupV2Value: the spec's memory+swap to memory.swap.max."""
    if limit == -1 and not swap:
        return -1
    if swap in (-1, 0):
        return swap
    if limit in (0, -1):
        raise CgroupError("unable to set swap limit without memory limit")
    if swap < limit:
        raise CgroupError("memory+swap limit should be >= memory limit")
    return swap - limit


def set_v2(d, mem):
    limit, swap_spec = mem.get("limit") or 0, mem.get("swap") or 0
    swap = swap_v2(swap_spec, limit)
    sval = fs.num_v2(swap)
    if sval is None and swap == 0 and swap_spec > 0:
        sval = "0"  # memory == memory+swap: no swap at all
    if sval is not None:
        try:
            fs.write(d, "memory.swap.max", sval)
        except CgroupError:
            # without swap the file is absent: "max" or "0" are then what the host has anyway
            if fs.exists(d, "memory.swap.max") or sval not in ("max", "0"):
                raise
    val = fs.num_v2(limit)
    if val is not None:
        if mem.get("checkBeforeUpdate") and limit > 0:
            cur = fs.read_int(d, "memory.current")
            if cur > limit:
                raise CgroupError("rejecting memory limit %d below current usage %d" % (limit, cur))
        fs.write(d, "memory.max", val)
    val = fs.num_v2(mem.get("reservation") or 0)
    if val is not None:
        fs.write(d, "memory.low", val)


def _entry(d, prefix):
    e = {"limit": fs.read_int(d, prefix + "limit_in_bytes")}
    for key, name in (("usage", "usage_in_bytes"), ("max", "max_usage_in_bytes")):
        v = fs.read_int(d, prefix + name)
        if v:
            e[key] = v
    e["failcnt"] = fs.read_int(d, prefix + "failcnt")
    return e


def stats_v1(d, out):
    raw = fs.read_kv(d, "memory.stat")
    m = {}
    if raw.get("cache"):
        m["cache"] = raw["cache"]
    m["usage"] = _entry(d, "memory.")
    m["swap"] = _entry(d, "memory.memsw.")
    m["kernel"] = _entry(d, "memory.kmem.")
    m["kernelTCP"] = _entry(d, "memory.kmem.tcp.")
    if raw:
        m["raw"] = raw
    out["memory"] = m


def stats_v2(d, out):
    raw = fs.read_kv(d, "memory.stat")
    m = {}
    if raw.get("file"):
        m["cache"] = raw["file"]
    usage = fs.read_int(d, "memory.current")
    limit = fs.read_int(d, "memory.max", MAX_U64)
    events = fs.read_kv(d, "memory.events")
    m["usage"] = {"limit": limit, "usage": usage, "failcnt": events.get("max", 0)}
    peak = fs.read_int(d, "memory.peak")
    if peak:
        m["usage"]["max"] = peak
    if fs.exists(d, "memory.swap.current"):
        # as runc: v1's memsw (memory + swap) from the two v2 counters
        swap = fs.read_int(d, "memory.swap.current")
        smax = fs.read_int(d, "memory.swap.max", MAX_U64)
        m["swap"] = {"limit": MAX_U64 if MAX_U64 in (smax, limit) else smax + limit,
                     "usage": swap + usage, "failcnt": 0}
    else:
        m["swap"] = {"limit": 0, "failcnt": 0}
    m["kernel"] = {"limit": 0, "failcnt": 0}
    m["kernelTCP"] = {"limit": 0, "failcnt": 0}
    if raw:
        m["raw"] = raw
    out["memory"] = m
