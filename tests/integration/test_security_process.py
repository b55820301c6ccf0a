"""Process security attributes as the container's process sees them: the five capability sets,
scheduler, I/O priority, personality, oom_score_adj, sysctl (and their namespace rules),
execCPUAffinity, LSM labels on a host without an LSM; and what the runtime refuses."""

import os
import time

import pytest

CAP = {"CHOWN": 0, "KILL": 5, "SETUID": 7, "NET_BIND_SERVICE": 10, "SYS_CHROOT": 18, "SYS_NICE": 23,
       "AUDIT_WRITE": 29}


def caps_of(names):
    m = 0
    for n in names:
        m |= 1 << CAP[n[len("CAP_"):]]
    return m


def status_caps(out):
    return {k: int(v, 16) for k, v in (line.split(":\t") for line in out.splitlines() if line.startswith("Cap"))}


SETS = {
    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE"],
    "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"],
    "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"],
    "ambient": ["CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"],
}


@pytest.mark.parametrize("nnp", [True, False])
@pytest.mark.parametrize("user", [{"uid": 0, "gid": 0}, {"uid": 1000, "gid": 1000}])
def test_five_capability_sets(runtime, bundle, user, nnp):
    """The sets after execve follow capabilities(7): bounding and inheritable as configured, ambient
    kept (it is within permitted and inheritable); a non-root user's permitted and effective are
    the ambient set; root's are bounding | inheritable | ambient (a root exec), which
    no_new_privs keeps within the permitted set the runtime gave it."""
    b = bundle("grep", "^Cap", "/proc/self/status")
    b.config["process"]["capabilities"] = {k: list(v) for k, v in SETS.items()}
    b.config["process"]["user"] = user
    b.config["process"]["noNewPrivileges"] = nnp
    got = status_caps(runtime.output(b))
    bnd, inh, amb = caps_of(SETS["bounding"]), caps_of(SETS["inheritable"]), caps_of(SETS["ambient"])
    prm = amb
    if user["uid"] == 0:
        prm = (bnd | inh | amb) & (caps_of(SETS["permitted"]) if nnp else -1)
    assert got == {"CapBnd": bnd, "CapInh": inh, "CapAmb": amb, "CapPrm": prm, "CapEff": prm}


@pytest.mark.needs_runc
@pytest.mark.parametrize("nnp", [True, False])
@pytest.mark.parametrize("user", [{"uid": 0, "gid": 0}, {"uid": 1000, "gid": 1000}])
def test_capability_sets_match_runc(runtime, runc, bundle, user, nnp):
    b = bundle("grep", "^Cap", "/proc/self/status")
    b.config["process"]["capabilities"] = {k: list(v) for k, v in SETS.items()}
    b.config["process"]["user"] = user
    b.config["process"]["noNewPrivileges"] = nnp
    assert status_caps(runtime.output(b)) == status_caps(runc.output(b))


def test_empty_capability_sets(runtime, bundle):
    b = bundle("grep", "^Cap", "/proc/self/status")
    b.config["process"]["capabilities"] = {k: [] for k in SETS}
    assert set(status_caps(runtime.output(b)).values()) == {0}


def test_unknown_capability_is_a_warning(runtime, bundle):
    """runtime-spec 1.1+: an unknown name is logged as a warning and left out (runc 1.1's words);
    the container runs with the rest."""
    b = bundle("grep", "^Cap", "/proc/self/status")
    b.config["process"]["capabilities"] = {k: list(v) for k, v in SETS.items()}
    b.config["process"]["capabilities"]["effective"].append("CAP_OCI_TEST")
    r = runtime.run_container(b)
    assert r.rc == 0, r.err
    assert "ignoring unknown or unavailable capabilities: [CAP_OCI_TEST]" in r.err
    b.config["process"]["capabilities"]["effective"].remove("CAP_OCI_TEST")
    assert status_caps(r.out) == status_caps(runtime.output(b))


def _bounding_of_this_process():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("CapBnd:")).split()[1], 16)


ALL_CAP_NAMES = ["CAP_" + n for n in (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE")]


@pytest.mark.ociruntime_only
@pytest.mark.parametrize("log", [False, True])
def test_capability_the_runtime_lacks_is_a_warning(runtime, bundle, tmp_path, log):
    """runtime-spec 1.3: a capability the runtime cannot grant (here root's bounding set lacks
    CAP_SYS_RESOURCE) is a warning, on stderr and in --log, and the container runs without it
    (runc 1.1.5 fails the container at start: "unable to apply caps")."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    have = _bounding_of_this_process()
    missing = [n for i, n in enumerate(ALL_CAP_NAMES[:last + 1]) if not (have >> i) & 1]
    if not missing:
        pytest.skip("this host's root holds every capability: none the runtime lacks")
    b = bundle("grep", "^Cap", "/proc/self/status")
    b.config["process"]["capabilities"] = {k: ALL_CAP_NAMES[:last + 1] for k in ("bounding", "effective", "permitted")}
    extra = ("--log", str(tmp_path / "log")) if log else ()
    r = runtime.run(*extra, "run", "--bundle", b, runtime.new_id())
    assert r.rc == 0, r.err
    words = 'level=warning msg="ignoring unknown or unavailable capabilities: [%s]"' % " ".join(sorted(missing))
    assert len(r.err.splitlines()) == 1 and r.err.rstrip("\n").endswith(words), r.err   # runc's line
    if log:
        assert words in (tmp_path / "log").read_text()
    got = status_caps(r.out)
    assert got["CapBnd"] == got["CapEff"] == got["CapPrm"] == have & ((1 << (last + 1)) - 1)


def test_a_failed_final_step_fails_create(runtime, bundle):
    """The credentials, capabilities, no_new_privs and seccomp are applied before create returns
    (runc's order): their failure is create's, naming the step, and nothing is left."""
    b = bundle("true")
    b.config["process"]["capabilities"] = {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                           "permitted": [], "inheritable": [], "ambient": []}
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", b, cid)
    line = runtime.refused(r)
    if runtime.name == "ociruntime":
        assert line == "ociruntime: capset: Operation not permitted"
    else:
        assert "caps" in line
    assert runtime.status(cid) is None


@pytest.mark.parametrize("user", [{"uid": 0, "gid": 0}, {"uid": 1000, "gid": 1000}])
def test_no_capabilities_means_none(runtime, bundle, tmp_path, user):
    """process.capabilities absent: every set of the init is empty (runc), never the runtime's own
    sets (as it reads them itself, and as the host reads them); also for a process exec'd into that
    container without capabilities of its own."""
    none = dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0)
    b = bundle("sh", "-c", "grep ^Cap /proc/self/status; echo done; exec sleep 1000")
    del b.config["process"]["capabilities"]
    b.config["process"]["user"] = user
    b.config["process"]["noNewPrivileges"] = False
    init_out = tmp_path / "init.out"
    with open(init_out, "wb") as f:         # the container's stdout (create hands it over)
        cid = runtime.create(b, stdout=f)
    pid = runtime.state(cid)["pid"]
    runtime.start(cid)
    deadline = time.monotonic() + 10
    while not init_out.read_text().endswith("done\n") and time.monotonic() < deadline:
        time.sleep(0.02)
    text = init_out.read_text()
    assert text.endswith("done\n"), text
    assert status_caps(text) == none                              # what the init saw
    assert status_caps("".join(open(f"/proc/{pid}/status"))) == none   # and the host sees (now sleep)
    out = runtime.run("exec", cid, "grep", "^Cap", "/proc/self/status", check=True).out
    assert status_caps(out) == none
    runtime.kill(cid, "KILL")
    runtime.wait_status(cid, "stopped")


@pytest.mark.parametrize("given", [("bounding",), ("bounding", "permitted", "effective")])
def test_absent_capability_set_means_empty(runtime, bundle, given):
    """A capabilities object naming some sets: the others are empty (with no_new_privs, root's
    exec keeps its permitted set within the one given)."""
    b = bundle("grep", "^Cap", "/proc/self/status")
    b.config["process"]["capabilities"] = {"bounding": ["CAP_KILL", "CAP_CHOWN"]}
    for k in given[1:]:
        b.config["process"]["capabilities"][k] = ["CAP_KILL"]
    prm = caps_of(["CAP_KILL"]) if len(given) > 1 else 0
    assert status_caps(runtime.output(b)) == {"CapBnd": caps_of(["CAP_KILL", "CAP_CHOWN"]), "CapInh": 0,
                                              "CapAmb": 0, "CapPrm": prm, "CapEff": prm}
    assert os.listdir(runtime.root) == []


# -- scheduler, I/O priority, personality, oom_score_adj ------------------------------------------------

def stat_fields(line):
    """(nice, rt_priority, policy) from a /proc/PID/stat line of a process whose comm has no space."""
    f = line.split()
    return int(f[18]), int(f[39]), int(f[40])


@pytest.mark.parametrize("sched,want", [
    ({"policy": "SCHED_OTHER", "nice": 5}, (5, 0, 0)),
    ({"policy": "SCHED_BATCH", "nice": -3}, (-3, 0, 3)),
    ({"policy": "SCHED_IDLE"}, (0, 0, 5)),
    ({"policy": "SCHED_FIFO", "priority": 10}, (0, 10, 1)),
    ({"policy": "SCHED_RR", "priority": 20}, (0, 20, 2)),
    ({"policy": "SCHED_DEADLINE", "runtime": 1000000, "deadline": 10000000, "period": 10000000}, (0, 0, 6)),
])
def test_scheduler(runtime, bundle, sched, want):
    if runtime.name == "runc":
        pytest.skip("runc 1.1 has no process.scheduler")
    b = bundle("cat", "/proc/self/stat")     # no fork: a SCHED_DEADLINE task may not fork
    b.config["process"]["scheduler"] = sched
    if sched["policy"] in ("SCHED_FIFO", "SCHED_RR"):
        # real-time group scheduling: a new cgroup has no real-time budget of its own
        b.config["linux"]["resources"]["cpu"] = {"realtimeRuntime": 100000, "realtimePeriod": 1000000}
    assert stat_fields(runtime.output(b)) == want


def test_scheduler_reset_on_fork(runtime, bundle):
    """RESET_ON_FORK: children get SCHED_OTHER instead of a real-time policy, and nice 0 instead
    of a negative nice."""
    if runtime.name == "runc":
        pytest.skip("runc 1.1 has no process.scheduler")
    # the shell's own line, then a forked child's (`; true`: the last command would be exec'd)
    b = bundle("sh", "-c", "cut -d' ' -f19,41 /proc/$$/stat; cut -d' ' -f19,41 /proc/self/stat; true")
    b.config["process"]["scheduler"] = {"policy": "SCHED_RR", "priority": 3, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    b.config["linux"]["resources"]["cpu"] = {"realtimeRuntime": 100000, "realtimePeriod": 1000000}
    assert runtime.output(b).splitlines() == ["0 2", "0 0"]
    b.config["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": -2, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    assert runtime.output(b).splitlines() == ["-2 3", "0 3"]


@pytest.mark.parametrize("io,want", [
    ({"class": "IOPRIO_CLASS_BE", "priority": 3}, "best-effort: prio 3"),
    ({"class": "IOPRIO_CLASS_IDLE", "priority": 7}, "idle"),          # busybox shows no level for idle
    ({"class": "IOPRIO_CLASS_RT", "priority": 1}, "realtime: prio 1"),
])
def test_io_priority(runtime, bundle, io, want):
    if runtime.name == "runc":
        pytest.skip("runc 1.1 has no process.ioPriority")
    b = bundle("sh", "-c", "ionice -p $$")
    b.config["process"]["ioPriority"] = io
    assert runtime.output(b) == want + "\n"


@pytest.mark.parametrize("domain,machine,persona", [("LINUX32", "i686", "00000008"), ("LINUX", "x86_64", "00000000")])
def test_personality(runtime, bundle, domain, machine, persona):
    if runtime.name == "runc":
        pytest.skip("runc 1.1 has no linux.personality")
    if os.uname().machine != "x86_64":
        pytest.skip("the uname values are x86_64's")
    b = bundle("sh", "-c", "uname -m; cat /proc/self/personality")
    b.config["linux"]["personality"] = {"domain": domain}
    assert runtime.output(b).split() == [machine, persona]


def test_oom_score_adj(runtime, bundle):
    b = bundle("cat", "/proc/self/oom_score_adj")
    b.config["process"]["oomScoreAdj"] = 123
    assert runtime.output(b) == "123\n"


def test_oom_score_adj_unset_is_inherited(runtime, bundle):
    with open("/proc/self/oom_score_adj") as f:
        mine = f.read()
    assert runtime.output(bundle("cat", "/proc/self/oom_score_adj")) == mine


# -- sysctl ------------------------------------------------------------------------------------------

def test_sysctl_in_container_namespaces(runtime, bundle):
    b = bundle("sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/sys/kernel/domainname "
                           "/proc/sys/fs/mqueue/msg_max")
    b.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234",
                                   "kernel.domainname": "oci-test.example", "fs.mqueue.msg_max": "20"}
    with open("/proc/sys/kernel/shmmni") as f:
        host_shmmni = f.read()
    assert runtime.output(b).split() == ["1", "1234", "oci-test.example", "20"]
    with open("/proc/sys/kernel/shmmni") as f:
        assert f.read() == host_shmmni


def _without(b, nstype):
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != nstype]


@pytest.mark.parametrize("key,value,nstype,words", [
    ("net.ipv4.ip_forward", "1", "network", 'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'),
    ("kernel.shmmax", "1000000", "ipc", 'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace'),
    ("fs.mqueue.msg_max", "20", "ipc", 'sysctl "fs.mqueue.msg_max" is not allowed in the hosts ipc namespace'),
    ("kernel.hostname", "x", None, 'sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field'),
    ("vm.swappiness", "10", None, 'sysctl "vm.swappiness" is not in a separate kernel namespace'),
    ("kernel.domainname", "x", "uts", 'sysctl "kernel.domainname" is not in a separate kernel namespace'),
])
def test_sysctl_refused(runtime, bundle, key, value, nstype, words):
    """runc's rules and messages; nothing is created."""
    b = bundle("true")
    b.config["linux"]["sysctl"] = {key: value}
    if nstype:
        _without(b, nstype)
    if nstype == "uts":
        del b.config["hostname"]
    r = runtime.run("create", "--bundle", b, runtime.new_id())
    runtime.refused(r)
    assert words in r.err.replace('\\"', '"') and len(r.err.splitlines()) == 1, r.err  # runc quotes its "
    assert os.listdir(runtime.root) == []


# -- execCPUAffinity -----------------------------------------------------------------------------------

def test_exec_cpu_affinity_not_applied_to_init(runtime, bundle):
    """The spec: execCPUAffinity is for processes exec'd into the container, not its init."""
    if runtime.name == "runc":
        pytest.skip("runc 1.1 has no execCPUAffinity")
    with open("/proc/self/status") as f:
        mine = [line for line in f if line.startswith("Cpus_allowed_list:")]
    b = bundle("grep", "Cpus_allowed_list:", "/proc/self/status")
    b.config["process"]["execCPUAffinity"] = {"initial": "0", "final": "0"}
    assert runtime.output(b).splitlines() == [line.rstrip("\n") for line in mine]


# -- refusals ------------------------------------------------------------------------------------------

def _set(path, value):
    def edit(cfg):
        d = cfg
        for k in path[:-1]:
            d = d.setdefault(k, {})
        d[path[-1]] = value
    return edit


REFUSED = {
    "sched-priority-for-other": (_set(["process", "scheduler"], {"policy": "SCHED_OTHER", "priority": 5}),
                                 "process.scheduler.priority"),
    "sched-fifo-without-priority": (_set(["process", "scheduler"], {"policy": "SCHED_FIFO"}),
                                    "process.scheduler.priority"),
    "sched-nice-range": (_set(["process", "scheduler"], {"policy": "SCHED_OTHER", "nice": 20}),
                         "process.scheduler.nice"),
    "sched-deadline-fields": (_set(["process", "scheduler"], {"policy": "SCHED_OTHER", "runtime": 5}),
                              "SCHED_DEADLINE"),
    "sched-iso": (_set(["process", "scheduler"], {"policy": "SCHED_ISO"}), "SCHED_ISO"),
    "ioprio-range": (_set(["process", "ioPriority"], {"class": "IOPRIO_CLASS_BE", "priority": 8}),
                     "process.ioPriority.priority"),
    "cpu-affinity": (_set(["process", "execCPUAffinity"], {"initial": "0-x"}), "execCPUAffinity.initial"),
    "cpu-affinity-range": (_set(["process", "execCPUAffinity"], {"final": "3-1"}), "execCPUAffinity.final"),
    "apparmor": (_set(["process", "apparmorProfile"], "oci-test-profile"), "apparmor is not enabled"),
    "selinux-label": (_set(["process", "selinuxLabel"], "system_u:system_r:container_t:s0"),
                      "selinux is disabled"),
    "mount-label": (_set(["linux", "mountLabel"], "system_u:object_r:container_file_t:s0"), "selinux is disabled"),
}


@pytest.mark.ociruntime_only
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused(runtime, bundle, case):
    edit, words = REFUSED[case]
    b = bundle("true")
    edit(b.config)
    r = runtime.run("create", "--bundle", b, runtime.new_id())
    runtime.refused(r)
    assert r.err.startswith("ociruntime: ") and len(r.err.splitlines()) == 1, r.err
    assert words in r.err
    assert os.listdir(runtime.root) == []


@pytest.mark.parametrize("field,value", [("apparmorProfile", "oci-test-profile"),
                                         ("selinuxLabel", "system_u:system_r:container_t:s0")])
def test_lsm_label_without_the_lsm_fails(runtime, bundle, field, value):
    """runc and crun fail too (runc in its init for AppArmor, at create for SELinux)."""
    if os.path.isdir("/sys/kernel/security/apparmor") or os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("an LSM is enabled on this host")
    b = bundle("true")
    b.config["process"][field] = value
    r = runtime.run("run", "--bundle", b, runtime.new_id())
    runtime.refused(r)
    assert os.listdir(runtime.root) == []
