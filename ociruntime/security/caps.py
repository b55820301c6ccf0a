"""Capability names (the spec's CAP_*) to bit masks."""
from ociruntime import read_file

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
NUMBER = {n: i for i, n in enumerate(NAMES)}
SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def last_cap():
    try:
        return int(read_file("/proc/sys/kernel/cap_last_cap"))
    except OSError:
        return len(NAMES) - 1


def bounding():
    """The runtime's own bounding set (a mask): what it can grant."""
    try:
        for line in read_file("/proc/self/status").split(b"\n"):
            if line.startswith(b"CapBnd:"):
                return int(line[7:].strip(), 16)
    except (OSError, ValueError):
        pass
    return (1 << (last_cap() + 1)) - 1


def masks(capabilities):
    """((bounding, effective, permitted, inheritable, ambient) masks, [names left out]).

    A name the runtime does not know, or a capability it cannot grant (above the kernel's last one,
    or outside its own bounding set: root lacks CAP_SYS_RESOURCE on some hosts), is left out of
    the sets and listed (runtime-spec 1.1+: a warning, not an error; runc 1.1 words it "ignoring
    unknown or unavailable capabilities")."""
    caps = capabilities or {}
    have = bounding() & ((1 << (last_cap() + 1)) - 1)
    out, ignored = [], set()
    for s in SETS:
        m = 0
        for n in caps.get(s) or ():
            name = n.upper() if n.upper().startswith("CAP_") else "CAP_" + n.upper()
            num = NUMBER.get(name)
            if num is None or not (have >> num) & 1:
                ignored.add(n)
                continue
            m |= 1 << num
        out.append(m)
    return tuple(out), sorted(ignored)


def ignored_message(names):
    return "ignoring unknown or unavailable capabilities: [%s]" % " ".join(names)
