"""linux.resources.blockIO: weight, leafWeight, weightDevice, throttle{Read,Write}{Bps,IOPS}Device.

v1: blkio.weight / blkio.weight_device (blkio.bfq.* when the BFQ scheduler provides them, as runc),
blkio.leaf_weight*, blkio.throttle.*_device.  v2 (runc's conversion): weight goes to io.bfq.weight
when it exists, else to io.weight as 1 + (weight - 10) * 9999 / 990; weightDevice only with BFQ
(runc ignores it otherwise); leafWeight has no v2 file and is ignored (as runc); throttles become
io.max lines "MAJ:MIN rbps=N" (wbps, riops, wiops).
"""
from ociruntime.cgroups import fs

_THROTTLE = (("throttleReadBpsDevice", "read_bps_device", "rbps"),
             ("throttleWriteBpsDevice", "write_bps_device", "wbps"),
             ("throttleReadIOPSDevice", "read_iops_device", "riops"),
             ("throttleWriteIOPSDevice", "write_iops_device", "wiops"))


def set_v1(d, bio):
    bfq = fs.exists(d, "blkio.bfq.weight")
    weight_file = "blkio.bfq.weight" if bfq else "blkio.weight"
    device_file = "blkio.bfq.weight_device" if bfq else "blkio.weight_device"
    if bio.get("weight"):
        fs.write(d, weight_file, bio["weight"])
    if bio.get("leafWeight"):
        fs.write(d, "blkio.leaf_weight", bio["leafWeight"])
    for wd in bio.get("weightDevice") or ():
        if wd.get("weight"):
            fs.write(d, device_file, "%d:%d %d" % (wd["major"], wd["minor"], wd["weight"]))
        if wd.get("leafWeight"):
            fs.write(d, "blkio.leaf_weight_device", "%d:%d %d" % (wd["major"], wd["minor"], wd["leafWeight"]))
    for key, name, _ in _THROTTLE:
        for td in bio.get(key) or ():
            fs.write(d, "blkio.throttle." + name, "%d:%d %d" % (td["major"], td["minor"], td["rate"]))


def weight_to_io_weight(weight):
    """runc's ConvertBlkIOToIOWeightValue: [10, 1000] onto [1, 10000]."""
    if not weight:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def set_v2(d, bio):
    bfq = fs.exists(d, "io.bfq.weight")
    if bio.get("weight"):
        if bfq:
            fs.write(d, "io.bfq.weight", bio["weight"])
        else:
            fs.write(d, "io.weight", weight_to_io_weight(bio["weight"]))
    if bfq:
        for wd in bio.get("weightDevice") or ():
            if wd.get("weight"):
                fs.write(d, "io.bfq.weight", "%d:%d %d" % (wd["major"], wd["minor"], wd["weight"]))
    for key, _, v2name in _THROTTLE:
        for td in bio.get(key) or ():
            fs.write(d, "io.max", "%d:%d %s=%d" % (td["major"], td["minor"], v2name, td["rate"]))


def _entries_v1(d, name):
    out = []
    try:
        text = fs.read(d, name)
    except OSError:
        return out
    for line in text.splitlines():
        f = line.split()
        if len(f) != 3:
            continue  # the "Total N" line
        major, _, minor = f[0].partition(":")
        e = {}
        if int(major):
            e["major"] = int(major)
        if int(minor):
            e["minor"] = int(minor)
        e["op"] = f[1]
        if int(f[2]):
            e["value"] = int(f[2])
        out.append(e)
    return out


def stats_v1(d, out):
    b = {}
    for prefix in ("blkio.", "blkio.bfq.", "blkio.throttle."):
        if fs.exists(d, prefix + "io_service_bytes_recursive"):
            break
    for key, name in (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                      ("ioServicedRecursive", "io_serviced_recursive")):
        e = _entries_v1(d, prefix + name)
        if e:
            b[key] = e
    out["blkio"] = b


def stats_v2(d, out):
    nbytes, nios = [], []
    try:
        text = fs.read(d, "io.stat")
    except OSError:
        text = ""
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        major, _, minor = f[0].partition(":")
        kv = dict(x.split("=", 1) for x in f[1:] if "=" in x)
        for lst, key, op in ((nbytes, "rbytes", "Read"), (nbytes, "wbytes", "Write"),
                             (nios, "rios", "Read"), (nios, "wios", "Write")):
            if key in kv:
                e = {"major": int(major), "minor": int(minor), "op": op}
                if int(kv[key]):
                    e["value"] = int(kv[key])
                lst.append(e)
    b = {}
    if nbytes:
        b["ioServiceBytesRecursive"] = nbytes
    if nios:
        b["ioServicedRecursive"] = nios
    out["blkio"] = b
