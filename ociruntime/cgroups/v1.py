"""cgroup v1 (and hybrid): linux.resources written to each controller's own hierarchy.

``dirs(ctrl)`` gives the container's directory in the hierarchy that carries ``ctrl``, or None when
the host does not mount that controller; asking for a resource of an unmounted controller is an
error (runc: "cannot set X limit: container could not join or create cgroup").  Only the modules
of the resources present are imported.
"""
from ociruntime.errors import CgroupError

V1_NO_UNIFIED = "invalid configuration: cannot use unified on cgroup v1"


def _need(dirs, ctrl, what):
    d = dirs(ctrl)
    if d is None:
        raise CgroupError("cannot set %s: the %s controller is not available on this host's cgroup v1 "
                          "hierarchies" % (what, ctrl))
    return d


def memory_wanted(mem):
    return bool(mem.get("limit") or mem.get("reservation") or mem.get("swap") or mem.get("disableOOMKiller")
                or mem.get("swappiness") not in (None, -1))


def cpu_wanted(cpu):
    return bool(cpu.get("shares") or cpu.get("quota") or cpu.get("period") or cpu.get("realtimeRuntime")
                or cpu.get("realtimePeriod") or cpu.get("idle") is not None or cpu.get("burst") is not None)


def blkio_wanted(bio):
    return any(bio.get(k) for k in ("weight", "leafWeight", "weightDevice", "throttleReadBpsDevice",
                                    "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                                    "throttleWriteIOPSDevice"))


def apply(dirs, res, skip_devices=False):
    res = res or {}
    if res.get("unified"):
        raise CgroupError(V1_NO_UNIFIED)
    if not skip_devices and (res.get("devices") or dirs("devices") is not None):
        from ociruntime.cgroups import devices
        devices.apply_v1(_need(dirs, "devices", "linux.resources.devices"), res)
    mem = res.get("memory") or {}
    if memory_wanted(mem):
        from ociruntime.cgroups import memory
        memory.set_v1(_need(dirs, "memory", "linux.resources.memory"), mem)
    cpu = res.get("cpu") or {}
    if cpu_wanted(cpu):
        from ociruntime.cgroups import cpu as _cpu
        _cpu.set_v1(_need(dirs, "cpu", "linux.resources.cpu"), cpu)
    if cpu.get("cpus") or cpu.get("mems"):
        from ociruntime.cgroups import cpuset
        cpuset.set_any(_need(dirs, "cpuset", "linux.resources.cpu.cpus/mems"), cpu)
    if (res.get("pids") or {}).get("limit"):
        from ociruntime.cgroups import pids
        pids.set_any(_need(dirs, "pids", "linux.resources.pids"), res["pids"])
    bio = res.get("blockIO") or {}
    if blkio_wanted(bio):
        from ociruntime.cgroups import blkio
        blkio.set_v1(_need(dirs, "blkio", "linux.resources.blockIO"), bio)
    if res.get("hugepageLimits"):
        from ociruntime.cgroups import hugetlb
        hugetlb.set_v1(_need(dirs, "hugetlb", "linux.resources.hugepageLimits"), res["hugepageLimits"])
    net = res.get("network") or {}
    if net.get("classID"):
        from ociruntime.cgroups import net as _net
        _net.set_cls(_need(dirs, "net_cls", "linux.resources.network.classID"), net)
    if net.get("priorities"):
        from ociruntime.cgroups import net as _net
        _net.set_prio(_need(dirs, "net_prio", "linux.resources.network.priorities"), net)
    if res.get("rdma"):
        from ociruntime.cgroups import rdma
        rdma.set_any(_need(dirs, "rdma", "linux.resources.rdma"), res["rdma"])


def stats(dirs):
    from ociruntime.cgroups import blkio, cpu, cpuset, hugetlb, memory, pids
    out = {}
    cpu.stats_v1(dirs("cpu"), dirs("cpuacct"), out)
    if dirs("cpuset"):
        cpuset.stats_v1(dirs("cpuset"), out)
    if dirs("memory"):
        memory.stats_v1(dirs("memory"), out)
    if dirs("pids"):
        pids.stats(dirs("pids"), out)
    if dirs("blkio"):
        blkio.stats_v1(dirs("blkio"), out)
    if dirs("hugetlb"):
        hugetlb.stats_v1(dirs("hugetlb"), out)
    return out
