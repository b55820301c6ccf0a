"""cgroup v2 (unified): linux.resources converted the way runc converts them, in runc's order
(pids, memory, io, cpu, devices, cpuset, hugetlb, rdma, then the ``unified`` key/values last so
they win).

A resource needs its controller in the container cgroup's ``cgroup.controllers``.  As runc, the
runtime enables the root's controllers in ``cgroup.subtree_control`` of every cgroup above the
container's, from the root down (enable_down); one that still does not reach the container (an
ancestor with processes of its own, or not writable by a rootless caller) is an error naming it.
Ignored as runc ignores them: network (no v2 controller), swappiness,
disableOOMKiller, kernel memory, blockIO leafWeight, weightDevice without BFQ.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import join, kill_point
from ociruntime.cgroups import fs
from ociruntime.cgroups.v1 import blkio_wanted, cpu_wanted
from ociruntime.errors import CgroupError


def controllers(d):
    try:
        return set(fs.read(d, "cgroup.controllers").split())
    except OSError:
        return set()


def enable_down(mp, path, created, ancestors=True):
    """Make ``path`` (inside the hierarchy mounted at ``mp``) and its missing parents, appending
    each directory made to ``created`` as soon as it exists (destroy removes it whatever fails
    next), and enable the root's controllers in the cgroup.subtree_control of the root and of
    every directory above the last, as runc's fs2 driver does (``ancestors`` False: only in those
    it made).  An ancestor that cannot enable a controller (it holds processes, or it is not the
    caller's: rootless) is left as it is."""
    want = controllers(mp)
    cur = mp
    for part in path.strip("/").split("/"):
        if want and (ancestors or cur in created):
            _enable(cur, want)
        cur = join(cur, part)
        try:
            os.mkdir(cur, 0o755)
        except FileExistsError:
            continue
        except OSError as e:
            raise CgroupError("create cgroup %s: %s" % (cur, e.strerror)) from None
        created.append(cur)  # (first: destroy removes it whatever fails next)
        kill_point("create:cgroup-made")


def _enable(d, want):
    try:
        on = set(fs.read(d, "cgroup.subtree_control").split())
    except OSError:
        return
    missing = [c for c in sorted(want - on) if c in controllers(d)]
    if not missing:
        return
    try:
        fs.write(d, "cgroup.subtree_control", " ".join("+" + c for c in missing))
    except CgroupError:
        for c in missing:  # all at once fails as a whole: each that can be
            try:
                fs.write(d, "cgroup.subtree_control", "+" + c)
            except CgroupError:
                pass


def _memory_wanted(mem):
    return bool(mem.get("limit") or mem.get("reservation") or mem.get("swap"))


def needed(res):
    """{controller: what needs it} for the resources present."""
    need = {}
    if (res.get("pids") or {}).get("limit"):
        need["pids"] = "linux.resources.pids"
    if _memory_wanted(res.get("memory") or {}):
        need["memory"] = "linux.resources.memory"
    if blkio_wanted(res.get("blockIO") or {}):
        need["io"] = "linux.resources.blockIO"
    cpu = res.get("cpu") or {}
    if cpu_wanted(cpu) and not (cpu.get("realtimeRuntime") or cpu.get("realtimePeriod")):
        need["cpu"] = "linux.resources.cpu"
    if cpu.get("cpus") or cpu.get("mems"):
        need["cpuset"] = "linux.resources.cpu.cpus/mems"
    if res.get("hugepageLimits"):
        need["hugetlb"] = "linux.resources.hugepageLimits"
    if res.get("rdma"):
        need["rdma"] = "linux.resources.rdma"
    return need


def apply(d, res, skip_devices=False):
    res = res or {}
    have = controllers(d)
    for ctrl, what in needed(res).items():
        if ctrl not in have:
            raise CgroupError("cannot set %s: the %s controller is not enabled for %s (not delegated by "
                              "its parent's cgroup.subtree_control)" % (what, ctrl, d))
    if (res.get("pids") or {}).get("limit"):
        from ociruntime.cgroups import pids
        pids.set_any(d, res["pids"])
    if _memory_wanted(res.get("memory") or {}):
        from ociruntime.cgroups import memory
        memory.set_v2(d, res["memory"])
    if blkio_wanted(res.get("blockIO") or {}):
        from ociruntime.cgroups import blkio
        blkio.set_v2(d, res["blockIO"])
    cpu = res.get("cpu") or {}
    if cpu_wanted(cpu):
        from ociruntime.cgroups import cpu as _cpu
        _cpu.set_v2(d, cpu)
    if not skip_devices:
        from ociruntime.cgroups import ebpf
        ebpf.apply_v2(d, res)
    if cpu.get("cpus") or cpu.get("mems"):
        from ociruntime.cgroups import cpuset
        cpuset.set_any(d, cpu)
    if res.get("hugepageLimits"):
        from ociruntime.cgroups import hugetlb
        hugetlb.set_v2(d, res["hugepageLimits"])
    if res.get("rdma"):
        from ociruntime.cgroups import rdma
        rdma.set_any(d, res["rdma"])
    if res.get("unified"):
        set_unified(d, res["unified"], have)


def set_unified(d, unified, have):
    for key, value in unified.items():
        if "/" in key:
            raise CgroupError("unified resource %r must be a file name (no slashes)" % key)
        ctrl, dot, _ = key.partition(".")
        if not dot:
            raise CgroupError("unified resource %r must be in the form CONTROLLER.PARAMETER" % key)
        if ctrl not in have and ctrl != "cgroup":
            raise CgroupError("unified resource %r can't be set: controller %r not available" % (key, ctrl))
        fs.write(d, key, value)


def stats(d):
    from ociruntime.cgroups import blkio, cpu, cpuset, hugetlb, memory, pids
    out = {}
    cpu.stats_v2(d, out)
    cpuset.stats_v2(d, out)
    memory.stats_v2(d, out)
    pids.stats(d, out)
    blkio.stats_v2(d, out)
    hugetlb.stats_v2(d, out)
    return out
