"""ociruntime update [flags] ID: runc's flags, or --resources FILE|- (LinuxResources JSON)."""
import re
import sys

from ociruntime.errors import UsageError

FLAGS = {
    "resources": ("resources", "str"), "r": ("resources", "str"),
    "blkio-weight": ("blkio_weight", "uint"),  # (runc's types: "invalid value" errors at parse)
    "cpu-period": ("cpu_period", "str"), "cpu-quota": ("cpu_quota", "str"),
    "cpu-share": ("cpu_share", "str"), "cpu-rt-period": ("cpu_rt_period", "str"),
    "cpu-rt-runtime": ("cpu_rt_runtime", "str"), "cpuset-cpus": ("cpuset_cpus", "str"),
    "cpuset-mems": ("cpuset_mems", "str"), "memory": ("memory", "str"),
    "memory-reservation": ("memory_reservation", "str"), "memory-swap": ("memory_swap", "str"),
    "kernel-memory": ("kernel_memory", "str"), "kernel-memory-tcp": ("kernel_memory_tcp", "str"),
    "pids-limit": ("pids_limit", "int"),
    "l3-cache-schema": ("l3_cache_schema", "str"), "mem-bw-schema": ("mem_bw_schema", "str"),
}
ARGS = (1, 1)

_RAM = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")


def ram_in_bytes(text, flag):
    """docker/go-units RAMInBytes: "512m", "1.5g", "100" (binary multipliers)."""
    m = _RAM.match(text)
    if not m:
        raise UsageError("invalid value for %s: invalid size: '%s'" % (flag, text))
    mult = 1024 ** " kmgtp".index((m.group(2) or " ").lower())
    return int(float(m.group(1)) * mult)


def _int(opts, key, flag, signed):
    text = opts[key]
    try:
        v = int(text, 10)
    except ValueError:
        raise UsageError("invalid value for %s: %r" % (flag, text)) from None
    if not signed and v < 0:
        raise UsageError("invalid value for %s: %r" % (flag, text))
    return v


def from_flags(opts):
    r = {}
    if opts.get("blkio_weight"):  # (0, runc's default, changes nothing)
        r.setdefault("blockIO", {})["weight"] = opts["blkio_weight"]
    cpu = {}
    for key, field, flag, signed in (("cpu_period", "period", "--cpu-period", False),
                                     ("cpu_rt_period", "realtimePeriod", "--cpu-rt-period", False),
                                     ("cpu_share", "shares", "--cpu-share", False),
                                     ("cpu_quota", "quota", "--cpu-quota", True),
                                     ("cpu_rt_runtime", "realtimeRuntime", "--cpu-rt-runtime", True)):
        if opts.get(key):
            cpu[field] = _int(opts, key, flag, signed)
    for key, field in (("cpuset_cpus", "cpus"), ("cpuset_mems", "mems")):
        if opts.get(key):
            cpu[field] = opts[key]
    if cpu:
        r["cpu"] = cpu
    mem = {}
    for key, field, flag in (("memory", "limit", "--memory"), ("memory_swap", "swap", "--memory-swap"),
                             ("memory_reservation", "reservation", "--memory-reservation"),
                             ("kernel_memory", "kernel", "--kernel-memory"),
                             ("kernel_memory_tcp", "kernelTCP", "--kernel-memory-tcp")):
        if opts.get(key):
            mem[field] = -1 if opts[key] == "-1" else ram_in_bytes(opts[key], flag)
    if mem:
        r["memory"] = mem
    if opts.get("pids_limit"):
        r["pids"] = {"limit": opts["pids_limit"]}
    if opts.get("l3_cache_schema") or opts.get("mem_bw_schema"):
        raise UsageError("Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported")
    return r


def read_resources(path):
    from ociruntime import jsonio
    try:
        if path == "-":
            data = sys.stdin.read()
        else:
            with open(path) as f:
                data = f.read()
        res = jsonio.loads(data)
    except OSError as e:
        raise UsageError("open %s: %s" % (path, e.strerror)) from None
    except (ValueError, SystemError) as e:  # SystemError: jsonio's _json scanner on truncated input
        raise UsageError("decode resources JSON: %s" % e) from None
    check_types(res)
    return res


_STRINGS = {"cpus", "mems"}
_BOOLS = {"disableOOMKiller", "checkBeforeUpdate", "useHierarchy"}


def check_types(res):
    """The scalar fields runc's decoder types: a wrong type is a usage error, not a traceback."""
    if not isinstance(res, dict):
        raise UsageError("decode resources JSON: not an object")
    for section in ("memory", "cpu", "pids", "blockIO"):
        sub = res.get(section)
        if sub is None:
            continue
        if not isinstance(sub, dict):
            raise UsageError("decode resources JSON: %s: expected an object" % section)
        for k, v in sub.items():
            if isinstance(v, (list, dict)) or v is None:
                continue
            want = str if k in _STRINGS else bool if k in _BOOLS else int
            if not isinstance(v, want) or (want is int and isinstance(v, bool)):
                raise UsageError("decode resources JSON: %s.%s: expected %s" % (
                    section, k, {str: "a string", bool: "a boolean", int: "an integer"}[want]))
    if res.get("unified") is not None and not (
            isinstance(res["unified"], dict) and all(isinstance(v, str) for v in res["unified"].values())):
        raise UsageError("decode resources JSON: unified: expected an object of strings")


def run(ctx, opts, args):
    from ociruntime.container.update import update
    cid = args[0]
    delta = read_resources(opts["resources"]) if opts.get("resources") else from_flags(opts)
    update(ctx, cid, delta)
    return 0
