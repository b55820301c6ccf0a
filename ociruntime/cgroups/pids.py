"""linux.resources.pids: pids.max (v1 and v2).  A limit of 0 leaves the value alone (runc 1.1);
a negative one is "max"."""
from ociruntime.cgroups import fs


def set_any(d, pids):
    limit = pids.get("limit") or 0
    if limit:
        fs.write(d, "pids.max", str(limit) if limit > 0 else "max")


def stats(d, out):
    p = {}
    cur = fs.read_int(d, "pids.current")
    if cur:
        p["current"] = cur
    limit = fs.read_int(d, "pids.max")
    if limit:
        p["limit"] = limit
    out["pids"] = p
