"""security/seccomp.py and security/procattrs.py without containers: the checks, the compiled
program's shape, the cache."""

import errno

import pytest

from ociruntime.errors import ConfigError
from ociruntime.security import procattrs, seccomp


def allow_but(*rules, **kw):
    return dict({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules)}, **kw)


def test_no_section():
    assert seccomp.compile(None) is None and seccomp.compile({}) is None


def test_compiles_to_bpf():
    f = seccomp.compile(allow_but({"names": ["getpgid"], "action": "SCMP_ACT_ERRNO"}), cache=False)
    assert len(f.bpf) % 8 == 0 and len(f.bpf) > 8
    assert f.flags == 0 and f.listener_path == ""


def test_errno_in_program():
    """SECCOMP_RET_ERRNO | errno appears as a BPF return constant (k of a RET instruction)."""
    import struct
    f = seccomp.compile(allow_but({"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV}),
                        cache=False)
    rets = {k for code, _, _, k in struct.iter_unpack("=HBBI", f.bpf) if code == 0x06}
    assert 0x00050000 | errno.EXDEV in rets and 0x7FFF0000 in rets


def test_unknown_names_skipped_or_refused():
    rules = allow_but({"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"})
    assert seccomp.compile(rules, cache=False).bpf == seccomp.compile(allow_but(), cache=False).bpf
    with pytest.raises(ConfigError, match='unknown syscall "no_such_syscall"'):
        seccomp.compile(rules, {seccomp.FAIL_UNKNOWN: "true"}, cache=False)


def test_notify_sets_listener_flag():
    f = seccomp.compile(allow_but({"names": ["getpgid"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/x",
                                  flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]), cache=False)
    assert f.flags == seccomp.FLAG_NEW_LISTENER | seccomp.FLAG_WAIT_KILLABLE_RECV and f.listener_path == "/x"
    # without a listener WAIT_KILLABLE_RECV means nothing (the kernel refuses it alone)
    f = seccomp.compile(allow_but(flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_LOG"]),
                        cache=False)
    assert f.flags == seccomp.FLAG_LOG and f.listener_path == ""


@pytest.mark.parametrize("bad,words", [
    ({"defaultAction": "SCMP_ACT_FOO"}, "unknown action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}, "returns no errno"),
    (allow_but({"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}), "unknown operator"),
    (allow_but(architectures=["SCMP_ARCH_NOPE"]), "unknown architecture"),
    (allow_but(flags=["SECCOMP_FILTER_FLAG_NOPE"]), "unknown flag"),
    (allow_but({"names": ["send"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/x"), "cannot be used for send"),
])
def test_refusals(bad, words):
    with pytest.raises(ConfigError, match=words):
        seccomp.compile(bad, cache=False)


def test_listener_message():
    f = seccomp.Filter(b"", 8, "/x", "meta")
    msg = seccomp.listener_message(f, {"id": "c", "pid": 7, "status": "created"}, "creating")
    import json
    assert json.loads(msg) == {"ociVersion": seccomp.OCI_VERSION, "fds": ["seccompFd"], "pid": 7, "metadata": "meta",
                               "state": {"id": "c", "pid": 7, "status": "creating"}}


def test_cpu_list():
    assert procattrs.cpu_list("0-3,7") == {0, 1, 2, 3, 7}
    assert procattrs.cpu_list("5") == {5}
    for bad in ("", "a", "3-1", "-1", "1,,2"):
        with pytest.raises(ConfigError):
            procattrs.cpu_list(bad)


def test_sched_params():
    assert procattrs.sched_params({"policy": "SCHED_FIFO", "priority": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}) \
        == (1, 1, 0, 5, 0, 0, 0)
    assert procattrs.sched_params({"policy": "SCHED_DEADLINE", "runtime": 1, "deadline": 2, "period": 3}) \
        == (6, 0, 0, 0, 1, 2, 3)


def test_ioprio_value():
    assert procattrs.ioprio_value({"class": "IOPRIO_CLASS_BE", "priority": 4}) == 2 << 13 | 4


@pytest.mark.parametrize("key,ns,ok", [
    ("net.core.somaxconn", {"network": ""}, True),
    ("net.core.somaxconn", {}, False),
    ("net.core.somaxconn", {"network": "/proc/self/ns/net"}, False),   # joined: the runtime's own
    ("kernel.sem", {"ipc": ""}, True),
    ("kernel.sem", {}, False),
    ("kernel.domainname", {"uts": ""}, True),
    ("kernel.hostname", {"uts": ""}, False),
    ("kernel.pid_max", {"pid": ""}, False),
])
def test_sysctl_rules(key, ns, ok):
    if ok:
        procattrs.check_sysctl({key: "1"}, ns)
    else:
        with pytest.raises(ConfigError, match=key):
            procattrs.check_sysctl({key: "1"}, ns)
