"""linux.resources.rdma: one rdma.max line per device, the same on v1 and v2."""
from ociruntime.cgroups import fs


def set_any(d, rdma):
    for dev, lim in sorted(rdma.items()):
        parts = [dev]
        if lim.get("hcaHandles") is not None:
            parts.append("hca_handle=%d" % lim["hcaHandles"])
        if lim.get("hcaObjects") is not None:
            parts.append("hca_object=%d" % lim["hcaObjects"])
        if len(parts) > 1:
            fs.write(d, "rdma.max", " ".join(parts))
