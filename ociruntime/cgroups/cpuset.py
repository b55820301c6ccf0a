"""linux.resources.cpu.cpus / .mems: cpuset.cpus and cpuset.mems (same names on v1 and v2).

A new v1 cpuset cgroup starts empty; create() copies the parent's values first (as runc), so a
container without cpus/mems can still run.
"""
from ociruntime.cgroups import fs


def set_any(d, cpu):
    if cpu.get("cpus"):
        fs.write(d, "cpuset.cpus", cpu["cpus"])
    if cpu.get("mems"):
        fs.write(d, "cpuset.mems", cpu["mems"])


def parse_list(text):
    """ "0-2,5" -> [0, 1, 2, 5]"""
    out = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _list(d, name):
    try:
        return parse_list(fs.read(d, name))
    except (OSError, ValueError):
        return []


def stats_v1(d, out):
    s = {}
    cpus = _list(d, "cpuset.cpus")
    if cpus:
        s["cpus"] = cpus
    s["cpu_exclusive"] = fs.read_int(d, "cpuset.cpu_exclusive")
    mems = _list(d, "cpuset.mems")
    if mems:
        s["mems"] = mems
    for key in ("mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                "memory_spread_slab", "memory_pressure", "sched_load_balance",
                "sched_relax_domain_level"):
        s[key] = fs.read_int(d, "cpuset." + key)
    out["cpuset"] = s


def stats_v2(d, out):
    s = {}
    for key, name in (("cpus", "cpuset.cpus.effective"), ("mems", "cpuset.mems.effective")):
        v = _list(d, name)
        if v:
            s[key] = v
    out["cpuset"] = s
