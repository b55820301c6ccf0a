"""The systemd cgroup driver (--systemd-cgroup), as runc's on pure cgroup v2.

cgroupsPath is "slice:prefix:name" (empty: runc's defaults, slice system.slice, or user.slice
rootless, prefix "runc", the container id as name).  The container gets a transient scope unit
``prefix-name.scope`` in that slice, started over D-Bus (dbus.py) with the init's pid and
Delegate=yes; its cgroup is the slice's path (``a-b.slice`` is /a.slice/a-b.slice, which systemd
makes as needed) plus the scope, below the user manager's own cgroup when rootless.  The resources
systemd has a property for go to the unit (runc's conversions: MemoryMax, MemoryLow,
MemorySwapMax, CPUWeight, CPUQuotaPerSecUSec/CPUQuotaPeriodUSec, AllowedCPUs/AllowedMemoryNodes,
TasksMax, IO weights and limits, DevicePolicy/DeviceAllow), so that systemd keeps them when it
rewrites the unit's cgroup; then every resource is written to the scope's files as the cgroupfs
driver writes them (v2.py), which also covers what has no property.  update sets the properties
(SetUnitProperties) and the files; delete stops the unit.  exec, pause/resume, ps, events and
kill --all work on the scope's cgroup files, as with the cgroupfs driver.
"""
from ociruntime import join
from ociruntime.cgroups import Manager
from ociruntime.errors import CgroupError, ConfigError

MOUNT = "/sys/fs/cgroup"
UINT64_MAX = (1 << 64) - 1


def parse_path(cgroups_path, cid, rootless):
    """(slice, prefix, name) of cgroupsPath, runc's defaults when it is empty."""
    if not cgroups_path:
        return ("user.slice" if rootless else "system.slice"), "runc", cid
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise ConfigError("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, "
                          "got %r instead" % cgroups_path)
    slice_, prefix, name = parts
    if not slice_:
        slice_ = "user.slice" if rootless else "system.slice"
    if not name:
        raise ConfigError("cgroupsPath %r: the unit's name (slice:prefix:NAME) is empty" % cgroups_path)
    if name.endswith(".slice"):
        raise ConfigError("cgroupsPath %r: a slice as the container's own unit is not supported (name a "
                          "scope)" % cgroups_path)
    return slice_, prefix, name


def unit_name(prefix, name):
    return "%s-%s.scope" % (prefix, name) if prefix else name + ".scope"


def expand_slice(slice_):
    """The cgroup path of a slice: "a-b.slice" -> "/a.slice/a-b.slice" ("-.slice" is the root)."""
    if len(slice_) <= len(".slice") and slice_ != "-.slice" or not slice_.endswith(".slice") or "/" in slice_:
        raise ConfigError("invalid slice name: %s" % slice_)
    base = slice_[:-len(".slice")]
    if base == "-":
        return "/"
    path, prefix = "", ""
    for comp in base.split("-"):
        if not comp:
            raise ConfigError("invalid slice name: %s" % slice_)
        path += "/" + prefix + comp + ".slice"
        prefix += comp + "-"
    return path


def available():
    """None when the driver can be used here, else why not (the refusal's words)."""
    from ociruntime import isdir
    if not isdir("/run/systemd/system"):
        return ("systemd cgroup driver requested (--systemd-cgroup), but systemd is not running (not booted "
                "with systemd as PID 1)")
    from ociruntime.cgroups import detect
    found = detect()
    if len(found) != 1 or found[0][2] != 2:
        return ("the systemd cgroup driver (--systemd-cgroup) needs a pure cgroup v2 host (this one mounts "
                "cgroup v1 hierarchies)")
    return None


# -- resources as unit properties (runc's genV2ResourcesProperties)

def _bitmask(spec):
    """A cpuset list ("0-2,5") as systemd's AllowedCPUs/AllowedMemoryNodes byte array."""
    bits = 0
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            lo, hi = int(lo), int(hi or lo)
        except ValueError:
            raise CgroupError("invalid cpuset list %r" % spec) from None
        for i in range(lo, hi + 1):
            bits |= 1 << i
    return bits.to_bytes((bits.bit_length() + 7) // 8 or 1, "little")


def _u64(v):
    return ("t", UINT64_MAX if v < 0 else v)


def _quota_props(quota, period):
    out = []
    if period:
        out.append(("CPUQuotaPeriodUSec", ("t", period)))
    if quota or period:
        per_sec = UINT64_MAX
        if quota and quota > 0:
            per_sec = quota * 1000000 // (period or 100000)
            if per_sec % 10000:  # systemd keeps whole percents: round up to the next
                per_sec = (per_sec // 10000 + 1) * 10000
        out.append(("CPUQuotaPerSecUSec", ("t", per_sec)))
    return out


def _device_props(res):
    """DevicePolicy/DeviceAllow as runc generates them: a whitelist becomes DevicePolicy=strict
    with one DeviceAllow entry per allowed rule (/dev/{char,block}/MAJ:MIN, char-MAJ, char-*); a
    list that allows everything, DevicePolicy=auto; any other blacklist is left to the eBPF
    program alone (systemd has no deny entries), under strict."""
    from ociruntime.cgroups.devices import rules
    from ociruntime.cgroups.ebpf import emulate
    default_allow, exc = emulate(rules(res))
    if default_allow:
        if not exc:
            return [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
        return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", []))]
    allow = []
    for (t, major, minor), bits in sorted(exc.items(), key=lambda kv: (kv[0][0], kv[0][1] or -1, kv[0][2] or -1)):
        perms = "".join(ch for ch, b in (("r", 2), ("w", 4), ("m", 1)) if bits & b)
        group = "char-" if t == "c" else "block-"
        if major is None:
            if minor is not None:
                continue  # "*:n" has no systemd form: the eBPF program has it
            path = group + "*"
        elif minor is None:
            path = group + str(major)
        else:
            path = "/dev/%s/%d:%d" % ("char" if t == "c" else "block", major, minor)
        allow.append((path, perms))
    return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", allow))]


def _io_props(bio):
    from ociruntime.cgroups.blkio import weight_to_io_weight
    out = []
    if bio.get("weight"):
        out.append(("IOWeight", ("t", weight_to_io_weight(bio["weight"]))))
    dev = [("/dev/block/%d:%d" % (w["major"], w["minor"]), weight_to_io_weight(w["weight"]))
           for w in bio.get("weightDevice") or () if w.get("weight")]
    if dev:
        out.append(("IODeviceWeight", ("a(st)", dev)))
    for key, prop in (("throttleReadBpsDevice", "IOReadBandwidthMax"),
                      ("throttleWriteBpsDevice", "IOWriteBandwidthMax"),
                      ("throttleReadIOPSDevice", "IOReadIOPSMax"),
                      ("throttleWriteIOPSDevice", "IOWriteIOPSMax")):
        vals = [("/dev/block/%d:%d" % (t["major"], t["minor"]), t["rate"]) for t in bio.get(key) or ()]
        if vals:
            out.append((prop, ("a(st)", vals)))
    return out


_UNIFIED = {"memory.min": "MemoryMin", "memory.low": "MemoryLow", "memory.high": "MemoryHigh",
            "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax", "pids.max": "TasksMax"}


def properties(res, skip_devices=False):
    """[(property, (signature, value))] for linux.resources."""
    res = res or {}
    out = [] if skip_devices else _device_props(res)
    mem = res.get("memory") or {}
    limit, swap = mem.get("limit") or 0, mem.get("swap") or 0
    if limit:
        out.append(("MemoryMax", _u64(limit)))
    if mem.get("reservation"):
        out.append(("MemoryLow", _u64(mem["reservation"])))
    if limit == -1 and not swap:
        out.append(("MemorySwapMax", _u64(-1)))
    elif swap == -1:
        out.append(("MemorySwapMax", _u64(-1)))
    elif swap and limit > 0 and swap >= limit:
        out.append(("MemorySwapMax", ("t", swap - limit)))
    cpu = res.get("cpu") or {}
    if cpu.get("shares"):
        from ociruntime.cgroups.cpu import shares_to_weight
        out.append(("CPUWeight", ("t", shares_to_weight(cpu["shares"]))))
    out += _quota_props(cpu.get("quota") or 0, cpu.get("period") or 0)
    if cpu.get("cpus"):
        out.append(("AllowedCPUs", ("ay", _bitmask(cpu["cpus"]))))
    if cpu.get("mems"):
        out.append(("AllowedMemoryNodes", ("ay", _bitmask(cpu["mems"]))))
    limit = (res.get("pids") or {}).get("limit") or 0
    if limit > 0 or limit == -1:
        out.append(("TasksMax", _u64(limit)))
    out += _io_props(res.get("blockIO") or {})
    for key, value in (res.get("unified") or {}).items():
        value = value.strip()
        if key in _UNIFIED and (value == "max" or value.isdigit()):
            out.append((_UNIFIED[key], _u64(-1 if value == "max" else int(value))))
        elif key == "cpu.weight" and value.isdigit():
            out.append(("CPUWeight", ("t", int(value))))
        elif key == "cpu.max":
            q, _, p = value.partition(" ")
            if q == "max" or q.isdigit():
                out += _quota_props(-1 if q == "max" else int(q), int(p) if p.isdigit() else 0)
    return out


class SystemdManager(Manager):
    """Manager whose cgroup is a systemd scope: created by starting the unit with the init's pid
    (add), stopped by destroy; the files are handled by Manager (pure v2)."""

    def __init__(self, paths, unit, slice_, user=False, created=()):
        super().__init__(paths, created)
        self.unit, self.slice, self.user = unit, slice_, user
        self.resources = None
        self.live = bool(created)  # the unit is started (add() starts it at create)
        self._sd = None

    @classmethod
    def for_config(cls, config, cid, rootless=False):
        slice_, prefix, name = parse_path((config.get("linux") or {}).get("cgroupsPath") or "", cid, rootless)
        unit = unit_name(prefix, name)
        path = expand_slice(slice_)
        m = cls({}, unit, slice_, rootless)
        if rootless:
            path = m.systemd().control_group().rstrip("/") + path
        m.paths = {"unified": (MOUNT, join(path, unit), 2, "")}
        return m

    @classmethod
    def from_state(cls, st):
        sd = st["systemd"]
        m = cls({k: tuple(v) for k, v in st["paths"].items()}, sd["unit"], sd["slice"], sd.get("user", False),
                st.get("created", ()))
        m.live = True
        return m

    def to_state(self):
        st = super().to_state()
        st["systemd"] = {"unit": self.unit, "slice": self.slice, "user": self.user}
        return st

    def systemd(self):
        if self._sd is None:
            from ociruntime.cgroups.dbus import Systemd
            self._sd = Systemd(self.user)
        return self._sd

    def plan(self):
        """Nothing for create's record to list: systemd makes the scope's cgroup (and its slices)
        when add() starts the unit, and removes them when destroy stops it; the record names the
        unit (to_state), which a delete after a killed create stops (a unit never started is
        fine: stop ignores NoSuchUnit)."""
        return []

    def create(self, planned=None):
        self.systemd()  # connected before the fork: a refusal leaves nothing to undo
        return True

    def apply(self, resources, skip_devices=False):
        if not self.live:
            self.resources = resources  # given to the unit when add() starts it
            return
        # the files first: a value the kernel refuses never reaches the unit, which systemd
        # would write back into the cgroup later (update restores the files it wrote)
        super().apply(resources, skip_devices)
        self.systemd().set_properties(self.unit, properties(resources, skip_devices))

    def revert_unit(self, resources):
        """update failed after apply: the unit's properties back to ``resources``."""
        if self.live:
            self.systemd().set_properties(self.unit, properties(resources, True))

    def birth_dir(self):
        # systemd places the init: the scope is started with its pid (add); exec's process can
        # be born in the scope's cgroup once it exists
        return super().birth_dir() if self.live else None

    def add(self, pid, sub=None, skip=()):
        if sub or self.live:  # exec: the scope's (or its sub-cgroup's) cgroup.procs
            return super().add(pid, sub, skip)
        props = [("Description", ("s", "ociruntime container " + self.unit)),
                 ("Slice", ("s", self.slice)), ("Delegate", ("b", True)), ("PIDs", ("au", [pid])),
                 ("MemoryAccounting", ("b", True)), ("CPUAccounting", ("b", True)),
                 ("IOAccounting", ("b", True)), ("TasksAccounting", ("b", True)),
                 ("DefaultDependencies", ("b", False))]
        props += properties(self.resources)
        self.systemd().start_transient(self.unit, props)
        self.live = True
        self.created.append(self.dir("unified"))  # removed after the stop, if systemd left it
        if self.resources:
            super().apply(self.resources)

    def destroy(self):
        try:
            if self.live:
                self.systemd().stop(self.unit)
        finally:
            super().destroy()
