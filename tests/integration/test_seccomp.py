"""linux.seccomp: what the container's process sees (errno of denied syscalls, signals, the agent's
answers with SCMP_ACT_NOTIFY), and what the runtime refuses.

A tiny static program (syscall_probe.c, built with gcc once per session) makes raw syscalls inside
the container and prints "ret errno" per call, so argument comparisons are checked exactly."""

import errno
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# x86_64 syscall numbers
NR = {"getppid": 110, "getpgid": 121, "getpriority": 140, "getpid": 39, "setresuid": 117, "personality": 135,
      "socket": 41, "acct": 163}

DEFAULT_CAPS = {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
                "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"}

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64's")


@pytest.fixture(scope="session")
def probe(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.fail("gcc is needed to build the syscall probe (tests/setup.sh installs it)")
    out = tmp_path_factory.mktemp("probe") / "syscall_probe"
    subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(HERE / "syscall_probe.c")], check=True,
                   timeout=120)
    return out


def probe_bundle(bundle, probe, seccomp, nr, *calls):
    b = bundle()
    b.copy_rootfs()
    shutil.copy2(probe, b.own_rootfs / "probe")
    b.args = ["/probe", str(nr), *calls]
    b.config["linux"]["seccomp"] = seccomp
    return b


def probe_errnos(runtime, b):
    """errno of each call the probe made (0: it succeeded)."""
    out = runtime.output(b)
    return [int(line.split()[1]) for line in out.splitlines()]


def allow_all_but(*syscalls):
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(syscalls)}


def podman_profile(path="/usr/share/containers/seccomp.json", caps=DEFAULT_CAPS):
    """podman's default profile (containers/common) in the OCI form podman passes for amd64."""
    p = json.loads(Path(path).read_text())
    out = {"defaultAction": p["defaultAction"], "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": []}
    if p.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = p["defaultErrnoRet"]
    for s in p["syscalls"]:
        inc, exc = s.get("includes") or {}, s.get("excludes") or {}
        if (inc.get("arches") and "amd64" not in inc["arches"]) or (inc.get("caps") and not set(inc["caps"]) <= caps):
            continue
        if (exc.get("arches") and "amd64" in exc["arches"]) or (exc.get("caps") and set(exc["caps"]) & caps):
            continue
        e = {"names": s["names"], "action": s["action"]}
        if s.get("args"):
            e["args"] = s["args"]
        if s.get("errnoRet") is not None:
            e["errnoRet"] = s["errnoRet"]
        out["syscalls"].append(e)
    return out


# -- actions and errno -------------------------------------------------------------------------------

def test_errno_rule_with_errno_ret(runtime, bundle):
    b = bundle("sh", "-c", "mkdir /dev/shm/x; echo rc=$?; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status")
    b.config["linux"]["seccomp"] = allow_all_but(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV})
    r = runtime.run_container(b)
    assert r.rc == 0, r
    assert "rc=1" in r.out
    assert os.strerror(errno.EXDEV) in r.err
    assert r.out.split()[1:] == ["NoNewPrivs:", "1", "Seccomp:", "2"]


def test_errno_defaults_to_eperm(runtime, bundle, probe):
    b = probe_bundle(bundle, probe, allow_all_but({"names": ["getpgid"], "action": "SCMP_ACT_ERRNO"}),
                     NR["getpgid"], "0")
    assert probe_errnos(runtime, b) == [errno.EPERM]


def test_default_errno_ret(runtime, bundle, probe):
    """An allow list with defaultAction ERRNO: what is not listed gets defaultErrnoRet."""
    prof = podman_profile()
    prof["defaultErrnoRet"] = errno.ENXIO
    # personality is allowed for a few personas only (podman's profile)
    b = probe_bundle(bundle, probe, prof, NR["personality"], "0x1234", "8")
    assert probe_errnos(runtime, b) == [errno.ENXIO, 0]


@pytest.mark.parametrize("action,want", [
    ("SCMP_ACT_KILL", -signal.SIGSYS),
    ("SCMP_ACT_KILL_THREAD", -signal.SIGSYS),
    ("SCMP_ACT_KILL_PROCESS", -signal.SIGSYS),
    ("SCMP_ACT_TRAP", -signal.SIGSYS),
    ("SCMP_ACT_LOG", 0),                     # allowed (and logged)
    ("SCMP_ACT_TRACE", errno.ENOSYS),        # no tracer attached: ENOSYS
])
def test_actions(runtime, bundle, probe, action, want):
    b = probe_bundle(bundle, probe, allow_all_but({"names": ["getpgid"], "action": action}), NR["getpgid"], "0")
    r = runtime.run_container(b)
    if want < 0:
        assert r.rc == 128 + -want, r        # killed by SIGSYS (the run exit status of a signalled process)
        assert r.out == ""
    else:
        assert r.rc == 0, r
        assert int(r.out.split()[1]) == want


def test_trace_with_errno_ret(runtime, bundle, probe):
    """No tracer: the kernel returns ENOSYS whatever the filter's data (seccomp(2))."""
    b = probe_bundle(bundle, probe, allow_all_but({"names": ["getpgid"], "action": "SCMP_ACT_TRACE", "errnoRet": 5}),
                     NR["getpgid"], "0")
    assert probe_errnos(runtime, b) == [errno.ENOSYS]


# -- arguments ---------------------------------------------------------------------------------------

DENIED = errno.ENOMSG
OPERATOR_CASES = {
    # op: (value, valueTwo, {arg0: denied?})
    "SCMP_CMP_NE": (10, 0, {9: True, 10: False, 11: True}),
    "SCMP_CMP_LT": (10, 0, {9: True, 10: False, 11: False}),
    "SCMP_CMP_LE": (10, 0, {9: True, 10: True, 11: False}),
    "SCMP_CMP_EQ": (10, 0, {9: False, 10: True, 11: False}),
    "SCMP_CMP_GE": (10, 0, {9: False, 10: True, 11: True}),
    "SCMP_CMP_GT": (10, 0, {9: False, 10: False, 11: True}),
    # (arg & value) == valueTwo
    "SCMP_CMP_MASKED_EQ": (0xF0, 0x20, {0x20: True, 0x2F: True, 0x30: False, 0x120: True, 0x10: False}),
}


@pytest.mark.parametrize("op", sorted(OPERATOR_CASES))
def test_arg_operators(runtime, bundle, probe, op):
    value, two, cases = OPERATOR_CASES[op]
    rule = {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": DENIED,
            "args": [{"index": 0, "value": value, "valueTwo": two, "op": op}]}
    b = probe_bundle(bundle, probe, allow_all_but(rule), NR["getpgid"], *(str(a) for a in cases))
    got = [e == DENIED for e in probe_errnos(runtime, b)]
    assert got == list(cases.values())


def test_conditions_on_two_args_all_must_match(runtime, bundle, probe):
    rule = {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": DENIED,
            "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 123, "op": "SCMP_CMP_EQ"}]}
    b = probe_bundle(bundle, probe, allow_all_but(rule), NR["getpriority"], "0,123", "0,0", "0,124", "1,123")
    assert [e == DENIED for e in probe_errnos(runtime, b)] == [True, False, False, False]


def test_conditions_on_one_arg_any_matches(runtime, bundle, probe):
    """Two conditions on the same argument: one rule each (runc's behaviour), so either denies."""
    rule = {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": DENIED,
            "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]}
    b = probe_bundle(bundle, probe, allow_all_but(rule), NR["getpgid"], "5", "6", "7")
    assert [e == DENIED for e in probe_errnos(runtime, b)] == [True, False, True]


def test_64bit_argument_values(runtime, bundle, probe):
    rule = {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": DENIED,
            "args": [{"index": 0, "value": 0x100000005, "op": "SCMP_CMP_EQ"}]}
    b = probe_bundle(bundle, probe, allow_all_but(rule), NR["getpgid"], "0x100000005", "5")
    assert [e == DENIED for e in probe_errnos(runtime, b)] == [True, False]


# -- order, users, profiles ---------------------------------------------------------------------------

def test_filter_is_loaded_after_the_credential_change(runtime, bundle, probe):
    """With noNewPrivileges the filter comes last: denying the syscalls the runtime itself needs to
    drop privileges (setgroups, setresuid, capset, prctl, chdir) does not stop the container."""
    names = ["setgroups", "setresgid", "setresuid", "capset", "prctl", "chdir", "close_range"]
    b = probe_bundle(bundle, probe, allow_all_but({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": DENIED}),
                     NR["setresuid"], "1000,1000,1000")
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}
    b.config["process"]["cwd"] = "/tmp"
    assert probe_errnos(runtime, b) == [DENIED]


@pytest.mark.parametrize("user", [{"uid": 0, "gid": 0}, {"uid": 1000, "gid": 1000}])
def test_without_no_new_privileges(runtime, bundle, probe, user):
    """Without no_new_privs the filter is loaded while the runtime still has CAP_SYS_ADMIN."""
    b = probe_bundle(bundle, probe, allow_all_but({"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                                                   "errnoRet": DENIED}), NR["getpgid"], "0")
    b.config["process"]["noNewPrivileges"] = False
    b.config["process"]["user"] = user
    assert probe_errnos(runtime, b) == [DENIED]
    b.args = ["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs|Uid):' /proc/self/status"]
    out = runtime.output(b).split()
    assert out == ["Uid:"] + [str(user["uid"])] * 4 + ["NoNewPrivs:", "0", "Seccomp:", "2"]


def test_podman_default_profile(runtime, bundle, probe):
    prof = podman_profile()
    b = probe_bundle(bundle, probe, prof, NR["socket"], "16,3,9", "16,3,0")   # AF_NETLINK, NETLINK_AUDIT: EINVAL
    assert probe_errnos(runtime, b) == [errno.EINVAL, 0]
    b.args = ["/probe", str(NR["acct"]), "0"]                                   # listed: EPERM
    assert probe_errnos(runtime, b) == [errno.EPERM]
    b.args = ["/probe", str(NR["personality"]), "0x1234"]                       # not listed: defaultErrnoRet
    assert probe_errnos(runtime, b) == [prof["defaultErrnoRet"]]
    b.args = ["sh", "-c", "grep Seccomp: /proc/self/status; ls /bin | wc -l; id -u"]
    seccomp_line, count, uid = runtime.output(b).split("\n")[:3]
    assert seccomp_line.split() == ["Seccomp:", "2"] and int(count) > 100 and uid == "0"


def test_architectures(runtime, bundle, probe):
    b = probe_bundle(bundle, probe, allow_all_but({"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                                                   "errnoRet": DENIED}), NR["getpgid"], "0")
    b.config["linux"]["seccomp"]["architectures"] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert probe_errnos(runtime, b) == [DENIED]


@pytest.mark.parametrize("flags", [["SECCOMP_FILTER_FLAG_LOG"], ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                                   ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]])
def test_flags(runtime, bundle, probe, flags):
    if runtime.name == "runc":
        pytest.skip("runc 1.1 supports no seccomp flags")
    b = probe_bundle(bundle, probe, allow_all_but({"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                                                   "errnoRet": DENIED}), NR["getpgid"], "0")
    b.config["linux"]["seccomp"]["flags"] = flags
    assert probe_errnos(runtime, b) == [DENIED]


def test_unknown_syscall_names_are_skipped(runtime, bundle, probe):
    """As runc and crun: profiles list syscalls newer than libseccomp."""
    b = probe_bundle(bundle, probe, allow_all_but({"names": ["oci_test_no_such_syscall", "getpgid"],
                                                   "action": "SCMP_ACT_ERRNO", "errnoRet": DENIED}),
                     NR["getpgid"], "0")
    assert probe_errnos(runtime, b) == [DENIED]


def test_rule_with_the_default_action_is_skipped(runtime, bundle, probe):
    b = probe_bundle(bundle, probe, allow_all_but({"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                                                  {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": DENIED}),
                     NR["getpgid"], "0")
    assert probe_errnos(runtime, b) == [DENIED]


# -- refusals ----------------------------------------------------------------------------------------

REFUSED = {
    "errno-with-allow": ({"defaultAction": "SCMP_ACT_ALLOW",
                          "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_KILL", "errnoRet": 5}]},
                         "returns no errno"),
    "default-errno-with-kill": ({"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 5}, "returns no errno"),
    "arg-index": ({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                                 "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}, "index"),
    "notify-without-listener": ({"defaultAction": "SCMP_ACT_ALLOW",
                                 "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]},
                                "listenerPath"),
    "notify-default": ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/nonexistent"}, "default action"),
    "notify-sendmsg": ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent",
                        "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}, "sendmsg"),
    "listener-missing": ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/agent.sock",
                          "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}, "/nonexistent/agent.sock"),
    "unknown-arch": ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_SHEB"]}, "SCMP_ARCH_SHEB"),
    "unknown-action": ({"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_FOO"}]}, "SCMP_ACT_FOO"),
    "unknown-operator": ({"defaultAction": "SCMP_ACT_ALLOW",
                          "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]}, "SCMP_CMP_FOO"),
    "unknown-flag": ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"]},
                     "SECCOMP_FILTER_FLAG_FOO"),
}


@pytest.mark.ociruntime_only
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused(runtime, bundle, case):
    seccomp, words = REFUSED[case]
    b = bundle("true")
    b.config["linux"]["seccomp"] = seccomp
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", b, cid)
    runtime.refused(r)
    assert r.err.startswith("ociruntime: ") and len(r.err.splitlines()) == 1, r.err
    assert words in r.err
    assert os.listdir(runtime.root) == []


@pytest.mark.ociruntime_only
def test_unknown_syscall_refused_with_crun_annotation(runtime, bundle):
    b = bundle("true")
    b.config["annotations"] = {"run.oci.seccomp_fail_unknown_syscall": "1"}
    b.config["linux"]["seccomp"] = allow_all_but({"names": ["oci_test_no_such_syscall"], "action": "SCMP_ACT_ERRNO"})
    r = runtime.run("create", "--bundle", b, runtime.new_id())
    assert r.rc != 0 and r.err.splitlines() == [
        'ociruntime: config.json: linux.seccomp.syscalls[0].names: unknown syscall "oci_test_no_such_syscall"']
    assert os.listdir(runtime.root) == []


# -- SCMP_ACT_NOTIFY: a seccomp agent ------------------------------------------------------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100     # _IOWR('!', 0, struct seccomp_notif), 80 bytes
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101     # _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes


class Agent:
    """Listens on a unix socket, takes the container process state and the listener fd, and
    answers the first notification with `answer` as the syscall's return value."""

    def __init__(self, path, answer):
        self.path, self.answer = str(path), answer
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.sock.settimeout(20)
        self.state = self.nr = self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
                while True:                      # the state may come in several writes
                    try:
                        self.state = json.loads(data)
                        break
                    except ValueError:
                        more = conn.recv(65536)
                        if not more:
                            raise
                        data += more
            fd = fds[0]
            try:
                ready, _, _ = select.select([fd], [], [], 20)
                assert ready, "no notification within 20 s"
                req = bytearray(80)
                fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req, True)
                ident, _pid, _flags, self.nr = struct.unpack_from("=QIIi", req)
                fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(struct.pack("=QqiI", ident, self.answer, 0, 0)),
                            True)
            finally:
                for f in fds:
                    os.close(f)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def close(self):
        self.sock.close()
        self.thread.join(25)


@pytest.mark.parametrize("nnp", [True, False])
def test_notify_agent_answers(runtime, bundle, probe, tmp_path, nnp):
    if runtime.name == "runc":
        pytest.skip("runc 1.1 supports no seccomp flags (WAIT_KILLABLE_RECV)")
    agent = Agent(tmp_path / "agent.sock", 4242)
    try:
        b = probe_bundle(bundle, probe, {
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.path, "listenerMetadata": "oci-test-meta",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_NOTIFY"}]}, NR["getpgid"], "0")
        b.config["process"]["noNewPrivileges"] = nnp
        b.config["annotations"] = {"oci-test": "yes"}
        cid = runtime.create(b)
        pid = runtime.state(cid)["pid"]
        runtime.start(cid)
        agent.thread.join(20)
        assert agent.error is None, agent.error
        runtime.wait_status(cid, "stopped")
    finally:
        agent.close()
    st = agent.state
    assert st["fds"] == ["seccompFd"] and st["pid"] == pid and st["metadata"] == "oci-test-meta"
    assert st["state"]["id"] == cid and st["state"]["pid"] == pid and st["state"]["status"] == "creating"
    assert st["state"]["bundle"] == str(b.path) and st["state"]["annotations"] == {"oci-test": "yes"}
    assert agent.nr == NR["getpgid"]


def test_notify_answer_seen_inside(runtime, bundle, probe, tmp_path):
    agent = Agent(tmp_path / "agent.sock", 4242)
    try:
        b = probe_bundle(bundle, probe, {
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.path,
            "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_NOTIFY"}]}, NR["getpgid"], "0")
        out = runtime.output(b)
        assert agent.error is None, agent.error
    finally:
        agent.close()
    assert out.split() == ["4242", "0"]       # getpgid(0) of PID 1 is 1 without the agent
