"""Process attributes outside credentials: oomScoreAdj, scheduler, ioPriority, personality,
execCPUAffinity, sysctl (its namespace rules), and the LSM labels (security/lsm.py).

``check`` runs in the parent before anything exists and refuses what the config alone shows to
be wrong (runc 1.2's validation rules and messages where it has them); ``apply`` runs in the
process that will exec (the init, or an exec'd process), after pivot_root: everything here is
inherited across execve.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime.errors import ConfigError, InitError

POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
            "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
               "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10,
               "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20, "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_WHO_PROCESS = 1
PERSONALITIES = {"LINUX": 0x0000, "LINUX32": 0x0008}

# sysctls that belong to the IPC namespace (runc's list; fs.mqueue.* too)
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
               "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def check(cfg, nsmap):
    process = cfg.get("process") or {}
    linux = cfg.get("linux") or {}
    if process.get("scheduler") is not None:
        sched_params(process["scheduler"])
    if process.get("ioPriority") is not None:
        ioprio_value(process["ioPriority"])
    if linux.get("personality") is not None:
        persona(linux["personality"])
    aff = process.get("execCPUAffinity") or {}
    for k in ("initial", "final"):
        if aff.get(k):
            cpu_list(aff[k], "process.execCPUAffinity." + k)
    check_sysctl(linux.get("sysctl") or {}, nsmap)
    from ociruntime.security import lsm
    lsm.check(cfg)


def sched_params(s):
    """(policy, flags, nice, priority, runtime, deadline, period) of process.scheduler, checked as
    runc 1.2 does."""
    where = "config.json: process.scheduler"
    pol = s.get("policy")
    if pol not in POLICIES:
        raise ConfigError('%s.policy: unknown policy "%s"' % (where, pol))
    if pol == "SCHED_ISO":
        raise ConfigError("%s.policy: SCHED_ISO is not implemented by Linux" % where)
    nice, prio = s.get("nice", 0), s.get("priority", 0)
    if not -20 <= nice <= 19:
        raise ConfigError("%s.nice: %d is out of range (-20 to 19)" % (where, nice))
    if prio and pol not in ("SCHED_FIFO", "SCHED_RR"):
        raise ConfigError("%s.priority: only SCHED_FIFO and SCHED_RR take a priority" % where)
    if pol in ("SCHED_FIFO", "SCHED_RR") and not 1 <= prio <= 99:
        raise ConfigError("%s.priority: %s needs a priority from 1 to 99, not %d" % (where, pol, prio))
    dl = (s.get("runtime", 0), s.get("deadline", 0), s.get("period", 0))
    if any(dl) and pol != "SCHED_DEADLINE":
        raise ConfigError("%s: runtime, deadline and period are for SCHED_DEADLINE only" % where)
    flags = 0
    for f in s.get("flags") or ():
        if f not in SCHED_FLAGS:
            raise ConfigError('%s.flags: unknown flag "%s"' % (where, f))
        flags |= SCHED_FLAGS[f]
    return (POLICIES[pol], flags, nice, prio) + dl


def ioprio_value(io):
    where = "config.json: process.ioPriority"
    cls = IOPRIO_CLASSES.get(io.get("class"))
    if cls is None:
        raise ConfigError('%s.class: unknown class "%s"' % (where, io.get("class")))
    prio = io.get("priority", 0)
    if not 0 <= prio <= 7:
        raise ConfigError("%s.priority: %d is out of range (0 to 7)" % (where, prio))
    return cls << 13 | prio


def persona(p):
    dom = p.get("domain")
    if dom not in PERSONALITIES:
        raise ConfigError('config.json: linux.personality.domain: unknown domain "%s"' % dom)
    if p.get("flags"):
        # the spec defines none yet
        raise ConfigError('config.json: linux.personality.flags: unknown flag "%s"' % p["flags"][0])
    return PERSONALITIES[dom]


def cpu_list(text, where="cpu list"):
    """"0-3,7" -> {0, 1, 2, 3, 7}"""
    cpus = set()
    try:
        for part in text.split(","):
            part = part.strip()
            lo, _, hi = part.partition("-")
            lo, hi = int(lo), int(hi or lo)
            if lo < 0 or hi < lo:
                raise ValueError
            cpus.update(range(lo, hi + 1))
    except ValueError:
        raise ConfigError('config.json: %s: "%s" is not a list of CPUs such as "0-3,7"' % (where, text)) from None
    return cpus


def exec_cpu_affinity(process):
    """(initial, final) CPU sets of process.execCPUAffinity (None when unset), for exec: initial
    before joining the container's cgroup, final after (the spec: not for the init)."""
    aff = process.get("execCPUAffinity") or {}
    return tuple(cpu_list(aff[k], "process.execCPUAffinity." + k) if aff.get(k) else None
                 for k in ("initial", "final"))


def check_sysctl(sysctl, nsmap):
    """runc's rules: IPC sysctls need an IPC namespace, net.* a network namespace that is not the
    runtime's own, kernel.domainname a UTS namespace; kernel.hostname conflicts with `hostname`;
    anything else is not namespaced and is refused."""
    hostnet = None
    for key in sysctl:
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if "ipc" not in nsmap:
                raise ConfigError('sysctl "%s" is not allowed in the hosts ipc namespace' % key)
            continue
        if key.startswith("net."):
            if hostnet is None:
                hostnet = "network" not in nsmap or (bool(nsmap["network"]) and _is_host_netns(nsmap["network"]))
            if hostnet:
                raise ConfigError('sysctl "%s" not allowed in host network namespace' % key)
            continue
        if "uts" in nsmap and key == "kernel.domainname":
            continue
        if "uts" in nsmap and key == "kernel.hostname":
            raise ConfigError('sysctl "%s" is not allowed as it conflicts with the OCI "hostname" field' % key)
        raise ConfigError('sysctl "%s" is not in a separate kernel namespace' % key)


def _is_host_netns(path):
    try:
        a, b = os.stat(path), os.stat("/proc/self/ns/net")
    except OSError as e:
        raise ConfigError("linux.namespaces: network namespace path %s: %s" % (path, e.strerror)) from None
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def apply(process, linux):
    """In the process about to exec, after pivot_root; procfs files through ociruntime.procfs (the
    runtime's /proc, opened before)."""
    from ociruntime import _sys as S
    if process.get("oomScoreAdj") is not None:
        from ociruntime import procfs
        procfs.write("self/oom_score_adj", str(process["oomScoreAdj"]), "set oom_score_adj")
    if process.get("scheduler") is not None:
        try:
            S.sched_setattr(0, *sched_params(process["scheduler"]))
        except OSError as e:
            raise InitError("set scheduler %s" % process["scheduler"]["policy"], e.errno) from None
    if process.get("ioPriority") is not None:
        try:
            S.ioprio_set(IOPRIO_WHO_PROCESS, 0, ioprio_value(process["ioPriority"]))
        except OSError as e:
            raise InitError("set I/O priority %s" % process["ioPriority"]["class"], e.errno) from None
    if (linux or {}).get("personality") is not None:
        try:
            S.personality(persona(linux["personality"]))
        except OSError as e:
            raise InitError("set personality", e.errno) from None
    from ociruntime.security import lsm
    lsm.apply(process)
