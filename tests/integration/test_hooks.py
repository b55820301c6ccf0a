"""Lifecycle hooks: the order, the namespace each runs in, the state on stdin, args and env, the
timeout, and the failure rules (with nothing left behind)."""

import json
import os
import time

import pytest

from helpers import LONG_RUNNING, wait_exit

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
RECORDER = """#!/bin/sh
# args: KIND LOG; appends one JSON-ish record: kind, argv, env, mount and pid namespace, stdin
log=$2
{
  printf '%s|%s|%s|%s|%s|' "$1" "$*" "$(env | grep -v -e '^PWD=' -e '^SHLVL=' -e '^_=' | sort | tr '\\n' ' ')" \
    "$(readlink /proc/self/ns/mnt)" "$(readlink /proc/self/ns/pid)"
  cat
  echo
} >> "$log"
"""


def host_ns(kind):
    return os.readlink(f"/proc/self/ns/{kind}")


def recorder_bundle(bundle, tmp_path, args):
    """A bundle whose six hooks record themselves: the runtime-namespace ones (and createContainer,
    which runs before pivot_root: host paths) into tmp_path/hooks.log, startContainer (whose path
    resolves in the container) into the rootfs' /hooks.log."""
    b = bundle(*args)
    rootfs = b.copy_rootfs()
    b.config["root"]["readonly"] = False
    script = tmp_path / "record.sh"
    script.write_text(RECORDER)
    script.chmod(0o755)
    (rootfs / "record.sh").write_text(RECORDER)
    (rootfs / "record.sh").chmod(0o755)
    hooks = {}
    for kind in KINDS:
        inside = kind == "startContainer"
        log = "/hooks.log" if inside else str(tmp_path / "hooks.log")
        hooks[kind] = [{"path": "/record.sh" if inside else str(script), "args": ["record.sh", kind, log],
                        "env": [f"HOOK_KIND={kind}", "EXTRA=1"]}]
    b.config["hooks"] = hooks
    return b, tmp_path / "hooks.log", rootfs / "hooks.log"


def records(path):
    out = []
    for line in path.read_text().splitlines():
        kind, argv, env, mnt, pidns, state = line.split("|", 5)
        out.append({"kind": kind, "argv": argv, "env": env.split(), "mnt": mnt, "pidns": pidns,
                    "state": json.loads(state)})
    return out


def test_hooks_order_namespaces_state_args_env(runtime, bundle, tmp_path):
    b, host_log, inside_log = recorder_bundle(
        bundle, tmp_path, ("sh", "-c", "echo process >> /hooks.log; readlink /proc/self/ns/mnt"))
    b.config["annotations"] = {"org.test.hooks": "yes"}
    cid = runtime.new_id()
    r = runtime.run("run", "--bundle", b, cid)
    assert r.rc == 0, r.err
    container_mnt = r.out.split()[0]
    host = records(host_log)
    assert [h["kind"] for h in host] == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    inside = inside_log.read_text().splitlines()
    assert inside[0].startswith("startContainer|") and inside[1] == "process"   # before the process
    start = records_from_lines([inside[0]])[0]
    by = {h["kind"]: h for h in host + [start]}

    # namespaces: the runtime's for prestart, createRuntime, poststart, poststop; the container's
    # mount namespace for createContainer (before pivot_root) and startContainer
    for kind in ("prestart", "createRuntime", "poststart", "poststop"):
        assert by[kind]["mnt"] == host_ns("mnt"), kind
        assert by[kind]["pidns"] == host_ns("pid"), kind
    for kind in ("createContainer", "startContainer"):
        assert by[kind]["mnt"] == container_mnt != host_ns("mnt"), kind
        assert by[kind]["pidns"] != host_ns("pid"), kind

    # state on stdin, with the status of the moment
    want = {"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
            "startContainer": "created", "poststart": "running", "poststop": "stopped"}
    if runtime.name == "runc":  # runc 1.1.5 runs poststart before it records the container running
        want["poststart"] = "created"
    pids = set()
    for kind, status in want.items():
        st = by[kind]["state"]
        assert st["status"] == status, kind
        assert st["id"] == cid and st["bundle"] == str(b.path) and st["ociVersion"] == b.config["ociVersion"]
        assert st["annotations"] == {"org.test.hooks": "yes"}
        if status == "stopped":
            assert "pid" not in st
        else:
            pids.add(st["pid"])
    assert len(pids) == 1 and pids.pop() > 0          # the init's pid, as the host sees it

    # args and env exactly as given (the shell itself adds PWD/SHLVL; busybox sh a default PATH)
    for kind, h in by.items():
        log = "/hooks.log" if kind == "startContainer" else str(host_log)
        assert h["argv"] == f"{kind} {log}"
        env = [e for e in h["env"] if not e.startswith("PATH=")]
        assert env == ["EXTRA=1", f"HOOK_KIND={kind}"], kind


def records_from_lines(lines):
    out = []
    for line in lines:
        kind, argv, env, mnt, pidns, state = line.split("|", 5)
        out.append({"kind": kind, "argv": argv, "env": env.split(), "mnt": mnt, "pidns": pidns,
                    "state": json.loads(state)})
    return out


def test_hooks_run_in_order_within_a_kind(runtime, bundle, tmp_path):
    log = tmp_path / "order.log"
    b = bundle("true")
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", f"echo {i} >> {log}"]}
                                           for i in range(4)]}
    assert runtime.run_container(b).rc == 0
    assert log.read_text().split() == ["0", "1", "2", "3"]


def failing(kind, tmp_path, code=3):
    """A hook of ``kind`` that writes to stdout and stderr and exits ``code``."""
    path = "/bin/sh"
    return {"path": path, "args": ["sh", "-c", f"echo out-{kind}; echo err-{kind} >&2; exit {code}"]}


def poststop_marker(tmp_path):
    return {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {tmp_path}/poststop.json"]}


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_destroys_container(runtime, bundle, tmp_path, kind):
    b = bundle(*LONG_RUNNING)
    b.config["hooks"] = {kind: [failing(kind, tmp_path)], "poststop": [poststop_marker(tmp_path)]}
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", b, cid)
    runtime.refused(r, "exit status 3")
    assert runtime.status(cid) is None                  # nothing of it is left (the fixture checks the rest)
    assert os.listdir(runtime.root) == []
    if runtime.name == "ociruntime":
        assert r.err == (f"ociruntime: error running {kind} hook #0 (/bin/sh): exit status 3, "
                         f"stdout: out-{kind}, stderr: err-{kind}\n")
        # the lifecycle goes on with destroy and the poststop hooks (as runc does)
        assert json.loads((tmp_path / "poststop.json").read_text())["status"] == "stopped"


@pytest.mark.ociruntime_only  # the spec's behaviour; runc 1.1.5 ignores the failure (docs/NOTES.md)
def test_failing_start_container_hook(runtime, bundle, tmp_path):
    b = bundle("touch", "/ran")
    b.copy_rootfs()
    b.config["root"]["readonly"] = False
    b.config["hooks"] = {"startContainer": [failing("startContainer", tmp_path)],
                         "poststop": [poststop_marker(tmp_path)]}
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    r = runtime.run("start", cid)
    assert r.rc != 0
    runtime.refused(r, "error running startContainer hook #0", "exit status 3")
    wait_exit(pid)
    assert not (b.rootfs / "ran").exists()             # the process never ran
    assert runtime.status(cid) is None                  # stopped and destroyed
    assert json.loads((tmp_path / "poststop.json").read_text())["status"] == "stopped"


@pytest.mark.ociruntime_only
def test_failing_start_container_hook_in_run(runtime, bundle, tmp_path):
    b = bundle("true")
    b.config["hooks"] = {"startContainer": [failing("startContainer", tmp_path)]}
    r = runtime.run_container(b)
    runtime.refused(r, "error running startContainer hook #0")
    assert os.listdir(runtime.root) == []


@pytest.mark.ociruntime_only
def test_failing_poststart_hook_stops_the_container(runtime, bundle, tmp_path):
    """runtime-spec v1.3.0: a failing poststart hook fails start and stops the container, which
    stays (stopped) until deleted.  (runc 1.1.5 runs the poststart hooks at create, not start.)"""
    b = bundle(*LONG_RUNNING)
    b.config["hooks"] = {"poststart": [failing("poststart", tmp_path)], "poststop": [poststop_marker(tmp_path)]}
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    r = runtime.run("start", cid)
    assert r.rc == 1
    assert r.err == ("ociruntime: error running poststart hook #0 (/bin/sh): exit status 3, "
                     "stdout: out-poststart, stderr: err-poststart\n")
    wait_exit(pid)
    assert runtime.status(cid) == "stopped"
    assert not (tmp_path / "poststop.json").exists()    # not destroyed: that is delete's
    runtime.delete(cid, check=True)
    assert json.loads((tmp_path / "poststop.json").read_text())["status"] == "stopped"


@pytest.mark.ociruntime_only
def test_failing_poststart_hook_in_run(runtime, bundle, tmp_path):
    b = bundle(*LONG_RUNNING)
    b.config["hooks"] = {"poststart": [failing("poststart", tmp_path)]}
    r = runtime.run_container(b)
    assert r.rc == 1
    runtime.refused(r, "error running poststart hook #0 (/bin/sh): exit status 3")
    assert os.listdir(runtime.root) == []


def test_create_container_hook_runs_in_the_rootfs(runtime, bundle, tmp_path):
    """createContainer hooks have the rootfs as their working directory (runc's; hooks written
    for runc use relative paths), the other runtime hooks the bundle."""
    b = bundle(*LONG_RUNNING)
    out = tmp_path / "cwd"
    b.config["hooks"] = {kind: [{"path": "/bin/sh", "args": ["sh", "-c", f"echo {kind} $(pwd -P) >> {out}"]}]
                         for kind in ("prestart", "createRuntime", "createContainer")}
    cid = runtime.create(b)
    got = dict(line.split(" ", 1) for line in out.read_text().splitlines())
    assert got["createContainer"] == os.path.realpath(b.rootfs)
    assert got["prestart"] == got["createRuntime"] == os.path.realpath(b.path)
    runtime.delete(cid, force=True, check=True)


def test_failing_poststop_hook_is_a_warning(runtime, bundle, tmp_path):
    b = bundle(*LONG_RUNNING)
    b.config["hooks"] = {"poststop": [failing("poststop", tmp_path), poststop_marker(tmp_path)]}
    cid = runtime.create(b)
    r = runtime.delete(cid, force=True)
    assert r.rc == 0
    assert "exit status 3" in r.err
    assert runtime.status(cid) is None
    # the remaining hooks still run (the spec's rule; runc 1.1.5 stops at the failed one)
    if runtime.name == "ociruntime":
        assert json.loads((tmp_path / "poststop.json").read_text())["status"] == "stopped"


# runc 1.1.5 kills a timed-out hook but then waits for its output pipe, which what the hook
# started still holds (a hang of up to the child's lifetime): these hold ociruntime to more
@pytest.mark.ociruntime_only
@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_hook_timeout_kills_it_and_fails(runtime, bundle, tmp_path, kind):
    """A hung hook (and what it started) is killed; the operation fails naming the hook."""
    b = bundle(*LONG_RUNNING)
    b.config["hooks"] = {kind: [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 60 & sleep 60"], "timeout": 1}]}
    cid = runtime.new_id()
    t0 = time.monotonic()
    r = runtime.run("create", "--bundle", b, cid)
    elapsed = time.monotonic() - t0
    runtime.refused(r)
    assert elapsed < 10, "the timeout did not stop the hook"
    assert runtime.status(cid) is None
    if runtime.name == "ociruntime":
        assert r.err == f"ociruntime: error running {kind} hook #0 (/bin/sh): timed out after 1s, killed\n"
    # the fixture fails the test if the backgrounded sleep survived


def test_hook_not_found(runtime, bundle, tmp_path):
    b = bundle(*LONG_RUNNING)
    b.config["hooks"] = {"prestart": [{"path": str(tmp_path / "no-such-hook")}]}
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", b, cid)
    runtime.refused(r, "no-such-hook")
    assert runtime.status(cid) is None


@pytest.mark.ociruntime_only
def test_hook_error_in_json_log(runtime, bundle, tmp_path):
    b = bundle(*LONG_RUNNING)
    b.config["hooks"] = {"createRuntime": [failing("createRuntime", tmp_path)]}
    log = tmp_path / "log.json"
    r = runtime.run("--log", log, "--log-format", "json", "create", "--bundle", b, runtime.new_id())
    runtime.refused(r)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries[-1]["level"] == "error"
    assert entries[-1]["msg"] == ("error running createRuntime hook #0 (/bin/sh): exit status 3, "
                                  "stdout: out-createRuntime, stderr: err-createRuntime")
    assert r.err == "ociruntime: " + entries[-1]["msg"] + "\n"


# -- startContainer hooks run as the container's process would ---------------------------------------

HOOK_VIEW = ("grep -E '^(CapBnd|CapEff|CapPrm|CapInh|NoNewPrivs|Seccomp|Uid|Gid):' /proc/self/status; "
             "env | grep -v -e '^PWD=' -e '^SHLVL=' -e '^_=' | sort")


def start_container_view(runtime, bundle, nnp):
    """What two startContainer hooks see (one without env, one with its own), and the process."""
    b = bundle("sh", "-c", HOOK_VIEW)
    b.config["root"]["readonly"] = False
    b.copy_rootfs()
    p = b.config["process"]
    p["env"] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "OCI_PROCESS=1"]
    p["noNewPrivileges"] = nnp
    p["capabilities"] = {"bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_SETUID"],
                         "effective": ["CAP_KILL", "CAP_DAC_OVERRIDE"], "permitted": ["CAP_KILL", "CAP_DAC_OVERRIDE"],
                         "inheritable": ["CAP_KILL"], "ambient": []}
    b.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    b.config["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "{ %s; mkdir /x && echo mkdir=ok || echo mkdir=refused; } > /hook1" % HOOK_VIEW]},
        {"path": "/bin/sh", "args": ["sh", "-c", "env | grep -v -e '^PWD=' -e '^SHLVL=' -e '^_=' | sort > /hook2"],
         "env": ["OCI_HOOK=2"]}]}
    out = runtime.output(b)
    return (b.rootfs / "hook1").read_text(), (b.rootfs / "hook2").read_text(), out


@pytest.mark.parametrize("nnp", [True, False])
def test_start_container_hooks_see_the_process_privileges_and_env(runtime, bundle, nnp):
    """runc 1.1 runs startContainer hooks in its init after the capabilities, no_new_privs and
    seccomp are applied, with the process's environment unless a hook has its own: so must we."""
    hook1, hook2, process = start_container_view(runtime, bundle, nnp)
    view = hook1.splitlines()
    assert view[-1] == "mkdir=refused"                 # the process's seccomp filter
    assert "\n".join(view[:-1]) + "\n" == process      # the same caps, nnp, seccomp, ids, env
    assert "OCI_PROCESS=1" in view and "HOME=/root" in view
    fields = dict(line.split(":\t") for line in view if ":\t" in line)
    assert fields["NoNewPrivs"] == ("1" if nnp else "0") and fields["Seccomp"] == "2"
    assert int(fields["CapBnd"], 16) == (1 << 5) | (1 << 0) | (1 << 1) | (1 << 7)
    assert [e for e in hook2.split() if not e.startswith("PATH=")] == ["OCI_HOOK=2"]   # its own env only


@pytest.mark.needs_runc
@pytest.mark.parametrize("nnp", [True, False])
def test_start_container_hooks_match_runc(runtime, runc, bundle, nnp):
    assert start_container_view(runtime, bundle, nnp) == start_container_view(runc, bundle, nnp)


# -- poststart after the exec; a failed exec is start's ----------------------------------------------

@pytest.mark.ociruntime_only
def test_poststart_runs_once_the_process_is_executed(runtime, bundle, tmp_path):
    """start returns, and runs poststart hooks, only after the init's final execve: the hook finds
    the container's program running, not the runtime (runc 1.1 does not wait for it)."""
    b = bundle("sleep", "30")
    out = tmp_path / "exe"
    b.config["hooks"] = {"poststart": [{"path": "/bin/sh", "args": [
        "sh", "-c", "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); readlink /proc/$pid/exe > %s" % out]}]}
    for _ in range(5):
        cid = runtime.create(b)
        runtime.start(cid)
        assert out.read_text().strip() == "/bin/sleep"    # (the container's root, as the host sees it)
        runtime.delete(cid, force=True, check=True)


@pytest.mark.ociruntime_only
def test_a_failed_exec_is_reported_by_start(runtime, bundle, tmp_path):
    """A program that exists but cannot be executed (its interpreter is missing) passes create's
    lookup and fails the init's final execve: start reports it, runs no poststart hook, and the
    container is stopped."""
    b = bundle("/script")
    rootfs = b.copy_rootfs()
    b.config["root"]["readonly"] = False
    (rootfs / "script").write_text("#!/no/such/interpreter\n")
    (rootfs / "script").chmod(0o755)
    b.config["hooks"] = {"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", f"touch {tmp_path}/poststart"]}]}
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    r = runtime.run("start", cid)
    assert r.rc != 0
    assert r.err == "ociruntime: exec /script: No such file or directory\n"
    wait_exit(pid)
    assert runtime.status(cid) == "stopped"
    assert not (tmp_path / "poststart").exists()
    r = runtime.run_container(b)
    assert r.rc != 0 and r.err == "ociruntime: exec /script: No such file or directory\n"


# runc 1.1.5 kills a timed-out hook but then waits for its output pipe, which what the hook
# started still holds (a hang of up to the child's lifetime): these hold ociruntime to more
@pytest.mark.ociruntime_only
@pytest.mark.parametrize("kind", ["startContainer", "poststart", "poststop"])
def test_hook_timeout_after_create(runtime, bundle, tmp_path, kind):
    """A hung hook of start or delete (a startContainer hook in the container, poststart and
    poststop in the runtime's namespaces) is killed at its timeout with what it started: start
    fails (startContainer, poststart), delete warns and goes on (poststop); no command hangs."""
    b = bundle(*LONG_RUNNING)
    b.config["hooks"] = {kind: [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 60 & sleep 60"], "timeout": 1}]}
    cid = runtime.create(b)
    t0 = time.monotonic()
    r = runtime.run("start", cid)
    if kind != "poststop":
        runtime.refused(r, ours=("timed out",))
    else:
        assert r.rc == 0, r
    r = runtime.run("delete", "--force", cid)
    assert time.monotonic() - t0 < 15, "the timeout did not stop the hook"
    assert r.rc == 0 and "Traceback" not in r.err, r
    if kind == "poststop" and runtime.name == "ociruntime":
        assert r.err.count("\n") == 1 and r.err.endswith(
            ' level=warning msg="poststop hook failed: error running poststop hook #0 (/bin/sh): timed out after 1s, '
            'killed"\n'), r.err
    assert runtime.status(cid) is None
    # the fixture fails the test if the backgrounded sleep survived
