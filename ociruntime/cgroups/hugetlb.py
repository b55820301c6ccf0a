"""linux.resources.hugepageLimits: hugetlb.<size>.limit_in_bytes (v1) / hugetlb.<size>.max (v2),
and the reservation limit (.rsvd.) too where the kernel has it, as runc does."""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime.cgroups import fs


def set_v1(d, limits):
    for h in limits:
        fs.write(d, "hugetlb.%s.limit_in_bytes" % h["pageSize"], h["limit"])
        if fs.exists(d, "hugetlb.%s.rsvd.limit_in_bytes" % h["pageSize"]):
            fs.write(d, "hugetlb.%s.rsvd.limit_in_bytes" % h["pageSize"], h["limit"])


def set_v2(d, limits):
    for h in limits:
        fs.write(d, "hugetlb.%s.max" % h["pageSize"], h["limit"])
        if fs.exists(d, "hugetlb.%s.rsvd.max" % h["pageSize"]):
            fs.write(d, "hugetlb.%s.rsvd.max" % h["pageSize"], h["limit"])


def page_sizes():
    """The host's huge page sizes as the cgroup files name them: 2MB, 1GB, 64KB."""
    out = []
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return out
    for n in names:
        kb = int(n[len("hugepages-"):-2])
        for unit, div in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1)):
            if kb % div == 0:
                out.append("%d%s" % (kb // div, unit))
                break
    return sorted(out)


def stats_v1(d, out):
    h = {}
    for size in page_sizes():
        p = "hugetlb.%s." % size
        e = {}
        for key, name in (("usage", "usage_in_bytes"), ("max", "max_usage_in_bytes")):
            v = fs.read_int(d, p + name)
            if v:
                e[key] = v
        e["failcnt"] = fs.read_int(d, p + "failcnt")
        h[size] = e
    out["hugetlb"] = h


def stats_v2(d, out):
    h = {}
    for size in page_sizes():
        p = "hugetlb.%s." % size
        if not fs.exists(d, p + "current"):
            continue
        e = {}
        v = fs.read_int(d, p + "current")
        if v:
            e["usage"] = v
        e["failcnt"] = fs.read_kv(d, p + "events").get("max", 0)
        h[size] = e
    out["hugetlb"] = h
