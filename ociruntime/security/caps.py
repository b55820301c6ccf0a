"""Capability names (the spec's CAP_*) to bit masks."""
from ociruntime import read_file
from ociruntime.errors import ConfigError

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


def mask(names, where):
    m = 0
    for n in names or ():
        num = NUMBER.get(n.upper() if n.upper().startswith("CAP_") else "CAP_" + n.upper())
        if num is None:
            raise ConfigError('%s: unknown capability "%s"' % (where, n))
        m |= 1 << num
    return m


def masks(capabilities, where="config.json: process.capabilities"):
    """(bounding, effective, permitted, inheritable, ambient) masks; capabilities above the
    kernel's last one are dropped (the kernel would refuse them)."""
    caps = capabilities or {}
    top = (1 << (last_cap() + 1)) - 1
    return tuple(mask(caps.get(s), "%s.%s" % (where, s)) & top for s in SETS)
