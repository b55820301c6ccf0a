"""linux.resources.network: net_cls.classid and net_prio.ifpriomap (v1 only: v2 has neither
controller, and runc ignores the setting there; so does ociruntime)."""
from ociruntime.cgroups import fs


def set_cls(d, net):
    if net.get("classID"):
        fs.write(d, "net_cls.classid", net["classID"])


def set_prio(d, net):
    for p in net.get("priorities") or ():
        fs.write(d, "net_prio.ifpriomap", "%s %d" % (p["name"], p["priority"]))
