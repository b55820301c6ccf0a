"""linux.resources.cpu without cpus/mems (cpuset.py): shares, quota, period, burst, realtime, idle.

v1: cpu.shares (read back: the kernel clamps, runc reports the bound), cpu.cfs_period_us and
cpu.cfs_quota_us (a period the kernel refuses before the quota is retried after it, as runc),
cpu.cfs_burst_us, cpu.rt_period_us / cpu.rt_runtime_us, cpu.idle.  Usage comes from cpuacct.
v2: shares become cpu.weight with runc 1.1's formula, quota/period become cpu.max, burst
cpu.max.burst; realtime has no v2 file and is refused.
"""
import errno

from ociruntime.cgroups import fs
from ociruntime.errors import CgroupError

NS_PER_TICK = 10_000_000  # USER_HZ is 100 on Linux


def set_v1(d, cpu):
    shares = cpu.get("shares") or 0
    if shares:
        fs.write(d, "cpu.shares", shares)
        got = fs.read_int(d, "cpu.shares")
        if shares > got:
            raise CgroupError("the maximum allowed cpu-shares is %d" % got)
        if shares < got:
            raise CgroupError("the minimum allowed cpu-shares is %d" % got)
    period, quota = cpu.get("period") or 0, cpu.get("quota") or 0
    retry_period = False
    if period:
        try:
            fs.write(d, "cpu.cfs_period_us", period)
        except CgroupError as e:
            # a shorter period can exceed the parent's bandwidth with the old quota
            if getattr(e, "errno", 0) != errno.EINVAL or not quota:
                raise
            retry_period = True
    if quota:
        fs.write(d, "cpu.cfs_quota_us", quota)
        if retry_period:
            fs.write(d, "cpu.cfs_period_us", period)
    if cpu.get("burst") is not None:
        fs.write(d, "cpu.cfs_burst_us", cpu["burst"])
    if cpu.get("realtimePeriod"):
        fs.write(d, "cpu.rt_period_us", cpu["realtimePeriod"])
    if cpu.get("realtimeRuntime"):
        fs.write(d, "cpu.rt_runtime_us", cpu["realtimeRuntime"])
    if cpu.get("idle") is not None:
        fs.write(d, "cpu.idle", cpu["idle"])


def shares_to_weight(shares):
    """runc 1.1's ConvertCPUSharesToCgroupV2Value: [2, 262144] onto [1, 10000], linearly."""
    if not shares:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def set_v2(d, cpu):
    if cpu.get("realtimeRuntime") or cpu.get("realtimePeriod"):
        raise CgroupError("cpu.realtimeRuntime/realtimePeriod: realtime scheduling limits are not "
                          "supported on cgroup v2")
    weight = shares_to_weight(cpu.get("shares") or 0)
    if weight:
        fs.write(d, "cpu.weight", weight)
    period, quota = cpu.get("period") or 0, cpu.get("quota") or 0
    if period or quota:
        val = str(quota) if quota > 0 else "max"
        if period:
            val += " %d" % period
        fs.write(d, "cpu.max", val)
    if cpu.get("burst") is not None:
        fs.write(d, "cpu.max.burst", cpu["burst"])
    if cpu.get("idle") is not None:
        fs.write(d, "cpu.idle", cpu["idle"])


def _throttling(kv, time_key, scale):
    t = {}
    for key, name in (("periods", "nr_periods"), ("throttledPeriods", "nr_throttled")):
        if kv.get(name):
            t[key] = kv[name]
    if kv.get(time_key):
        t["throttledTime"] = kv[time_key] * scale
    return t


def stats_v1(cpu_dir, cpuacct_dir, out):
    usage = {}
    if cpuacct_dir:
        total = fs.read_int(cpuacct_dir, "cpuacct.usage")
        if total:
            usage["total"] = total
        try:
            percpu = [int(x) for x in fs.read(cpuacct_dir, "cpuacct.usage_percpu").split()]
        except OSError:
            percpu = []
        if percpu:
            usage["percpu"] = percpu
        try:
            rows = [line.split() for line in fs.read(cpuacct_dir, "cpuacct.usage_all").splitlines()[1:]]
        except OSError:
            rows = []
        if rows:
            usage["percpu_kernel"] = [int(r[2]) for r in rows]
            usage["percpu_user"] = [int(r[1]) for r in rows]
        st = fs.read_kv(cpuacct_dir, "cpuacct.stat")
        usage["kernel"] = st.get("system", 0) * NS_PER_TICK
        usage["user"] = st.get("user", 0) * NS_PER_TICK
    else:
        usage["kernel"] = usage["user"] = 0
    out["cpu"] = {"usage": usage,
                  "throttling": _throttling(fs.read_kv(cpu_dir, "cpu.stat") if cpu_dir else {},
                                            "throttled_time", 1)}


def stats_v2(d, out):
    kv = fs.read_kv(d, "cpu.stat")
    usage = {}
    if kv.get("usage_usec"):
        usage["total"] = kv["usage_usec"] * 1000
    usage["kernel"] = kv.get("system_usec", 0) * 1000
    usage["user"] = kv.get("user_usec", 0) * 1000
    out["cpu"] = {"usage": usage, "throttling": _throttling(kv, "throttled_usec", 1000)}
