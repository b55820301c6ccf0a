"""Where create's init enters its cgroup2 cgroup: it is born there (clone3 with CLONE_INTO_CGROUP)
wherever the kernel allows it -- the unified hierarchy of this hybrid host, the container's cgroup on
pure v2 (tests/vm/ci.sh runs these in such a host) -- so it is in it before it runs a single step of
its own; where clone3 is refused (hidden by a seccomp profile: ENOSYS, or forbidden: EPERM) it is
forked and the runtime writes its pid to cgroup.procs, as before.

How it is seen: the runtime stops itself once it has made and limited the container's cgroups,
before the fork (OCIRUNTIME_TEST_STOP_AT: create refuses a cgroup frozen before it), and the test
freezes the cgroup2 one (cgroup.freeze) and continues it.  A process born in a frozen cgroup
freezes before its first instruction in user space, so the runtime's child is found there still
in the runtime's own mount (and user) namespace, while `run` waits for it; a process moved in
later has already made its namespaces.  Thawed, the container runs: the host's cgroup.procs lists
its init, and its process reads /proc/self/cgroup (with a cgroup namespace, unshared once the init
was in every cgroup, it is at the root of each).  Nothing is left: run's delete removes the
cgroups.
"""

import os
import signal
import threading
import time

import pytest

from helpers import LONG_RUNNING, RUNTIME_TIMEOUT, children, proc_status, runtime_without_syscalls

CLONE3 = 435  # x86_64
EPERM = 1
RANGES = [{"containerID": 0, "hostID": 200000, "size": 65536}]
# the container's process: its cgroups as it sees them, then it runs until the test is done
SCRIPT = "cat /proc/self/cgroup; while [ ! -e /tmp/go ]; do sleep 0.02; done; echo done"


def cgroup2_mount():
    """The host's cgroup2 hierarchy (its mount of the whole hierarchy), or skip."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if right.split()[:1] == ["cgroup2"] and fields[3] == "/":
                return fields[4]
    pytest.skip("the host mounts no cgroup2 hierarchy")


def procs(d):
    with open(os.path.join(d, "cgroup.procs")) as f:
        return f.read().split()


def ns(pid, kind):
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def wait_for(what, fn, timeout=RUNTIME_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s"
        time.sleep(0.01)


CASES = [
    # (namespaces, how clone3 fares)
    ("pid", "used"),
    ("no pid", "used"),
    ("user+pid", "used"),
    ("cgroup+pid", "used"),
    ("pid", "ENOSYS"),
    ("cgroup+pid", "ENOSYS"),
    ("pid", "EPERM"),
    ("user+pid", "ENOSYS"),
]


@pytest.mark.ociruntime_only
@pytest.mark.parametrize("namespaces,clone3", CASES, ids=["-".join(c).replace(" ", "") for c in CASES])
def test_init_is_in_its_cgroup2_cgroup_from_its_first_step(runtime, bundle, tmp_path, namespaces, clone3):
    mp = cgroup2_mount()
    rt = runtime
    if clone3 == "ENOSYS":
        rt = runtime_without_syscalls(runtime, tmp_path, [CLONE3])
    elif clone3 == "EPERM":
        rt = runtime_without_syscalls(runtime, tmp_path, [f"{CLONE3}={EPERM}"])
    b = bundle("sh", "-c", SCRIPT, public=namespaces.startswith("user"))
    nss = b.config["linux"]["namespaces"]
    if namespaces == "no pid":
        nss[:] = [n for n in nss if n["type"] != "pid"]
    if namespaces.startswith("cgroup"):
        nss.append({"type": "cgroup"})
    if namespaces.startswith("user"):
        nss.append({"type": "user"})
        b.config["linux"]["uidMappings"] = [dict(m) for m in RANGES]
        b.config["linux"]["gidMappings"] = [dict(m) for m in RANGES]
    ctl = b.path / "ctl"
    ctl.mkdir(parents=True)
    ctl.chmod(0o777)
    b.config["mounts"].append({"destination": "/tmp", "type": "bind", "source": str(ctl), "options": ["rbind"]})
    cid = rt.new_id()
    b.config["linux"]["cgroupsPath"] = "/" + cid
    d = os.path.join(mp, cid)
    freeze = os.path.join(d, "cgroup.freeze")
    # create refuses a cgroup frozen before it: the runtime stops itself once its cgroups are made
    # and limited, before the fork (ociruntime/__init__.py, kill_point), the test freezes the
    # cgroup2 one and continues it
    env = dict(os.environ, OCIRUNTIME_TEST_STOP_AT="create:resources")
    result = {}

    def run():
        try:
            result["r"] = rt.run("run", "--bundle", b, cid, env=env)
        except BaseException as e:  # (a timeout: told below)
            result["r"] = e
    t = threading.Thread(target=run)
    t.start()
    runtime_pid = None
    try:
        # the runtime (the test's child: the wrapper execs it), stopped
        runtime_pid = wait_for("the runtime", lambda: next((p for p, _ in children() if cid in cmdline(p)), None))
        wait_for("the runtime stopped", lambda: (proc_status(runtime_pid) or {}).get("State", "")[:1] == "T")
        assert open(os.path.join(d, "cgroup.procs")).read() == ""
        with open(freeze, "w") as f:
            f.write("1")
        os.kill(runtime_pid, signal.SIGCONT)
        pids = wait_for("a process in the frozen cgroup", lambda: open(os.path.join(d, "cgroup.procs")).read().split())
        assert len(pids) == 1, pids
        pid = int(pids[0])
        if clone3 == "used":
            # born there: frozen before it ran anything, still in the runtime's namespaces
            assert proc_status(pid)["PPid"] == str(runtime_pid)
            assert ns(pid, "mnt") == ns(runtime_pid, "mnt")
            assert ns(pid, "user") == ns(runtime_pid, "user")
        else:
            # forked, then moved in by the runtime once it had made its namespaces
            assert ns(pid, "mnt") != ns(runtime_pid, "mnt")
            if namespaces.startswith("user"):
                assert ns(pid, "user") != ns(runtime_pid, "user")
        assert t.is_alive()  # run waits for it
        with open(freeze, "w") as f:
            f.write("0")
        # the container's process runs: its init is listed in the cgroup2 cgroup
        init = wait_for("the container running", lambda: not t.is_alive() or (
            rt.status(cid) == "running" and rt.state(cid)["pid"]))
        assert t.is_alive(), result
        if not (clone3 == "used" and namespaces.startswith("user")):  # (there the frozen one forked it)
            assert init == pid
        assert str(init) in open(os.path.join(d, "cgroup.procs")).read().split()
    finally:
        if os.path.exists(freeze):
            with open(freeze, "w") as f:
                f.write("0")
        if runtime_pid is not None:
            os.kill(runtime_pid, signal.SIGCONT)
        (ctl / "go").touch()
        t.join(RUNTIME_TIMEOUT + 5)
    assert not os.path.exists(d)  # removed by run's delete
    r = result["r"]
    assert not isinstance(r, BaseException), r
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[-1] == "done", lines
    # every hierarchy's cgroup is the container's (absolute cgroupsPath), the root of its cgroup
    # namespace if it has one (unshared once the init was in all of them)
    own = lines[:-1]
    path = "/" if namespaces.startswith("cgroup") else "/" + cid
    assert own and all(ln.endswith(":" + path) for ln in own), own
    assert "0::" + path in own


@pytest.mark.ociruntime_only
@pytest.mark.parametrize("clone3", ["used", "ENOSYS"])
def test_exec_process_is_in_its_cgroup2_cgroup_from_its_first_step(runtime, bundle, tmp_path, clone3):
    """exec's first process is born in the container's cgroup2 cgroup too (the process it forks
    into the container's pid namespace, the one exec'd, inherits it); with clone3 hidden, the
    runtime moves the exec'd process in once it has joined the container's namespaces.  The
    runtime stops itself before the fork (exec:prepared), the test freezes the container's cgroup
    (its init with it) and continues it."""
    mp = cgroup2_mount()
    rt = runtime_without_syscalls(runtime, tmp_path, [CLONE3]) if clone3 == "ENOSYS" else runtime
    b = bundle(*LONG_RUNNING)
    cid = rt.new_id()
    b.config["linux"]["cgroupsPath"] = "/" + cid
    rt.create(b, cid)
    rt.start(cid)
    init = rt.state(cid)["pid"]
    d = os.path.join(mp, cid)
    freeze = os.path.join(d, "cgroup.freeze")
    wait_for("the container's sleep", lambda: len(procs(d)) == 2)
    before = set(procs(d))
    env = dict(os.environ, OCIRUNTIME_TEST_STOP_AT="exec:prepared")
    result = {}

    def run():
        try:
            result["r"] = rt.run("exec", cid, "cat", "/proc/self/cgroup", env=env)
        except BaseException as e:  # (a timeout: told below)
            result["r"] = e
    t = threading.Thread(target=run)
    t.start()
    runtime_pid = None
    try:
        runtime_pid = wait_for("the runtime", lambda: next((p for p, _ in children()
                                                            if "exec" in cmdline(p) and cid in cmdline(p)), None))
        wait_for("the runtime stopped", lambda: (proc_status(runtime_pid) or {}).get("State", "")[:1] == "T")
        with open(freeze, "w") as f:
            f.write("1")
        os.kill(runtime_pid, signal.SIGCONT)
        new = wait_for("a new process in the frozen cgroup", lambda: set(procs(d)) - before)
        assert len(new) == 1, new
        pid = int(new.pop())
        if clone3 == "used":  # born there: still in the runtime's namespaces
            assert proc_status(pid)["PPid"] == str(runtime_pid)
            assert ns(pid, "mnt") == ns(runtime_pid, "mnt") and ns(pid, "pid") == ns(runtime_pid, "pid")
        else:  # moved in once in the container's
            assert ns(pid, "mnt") == ns(init, "mnt") and ns(pid, "pid") == ns(init, "pid")
        assert t.is_alive()
    finally:
        with open(freeze, "w") as f:
            f.write("0")
        if runtime_pid is not None:
            os.kill(runtime_pid, signal.SIGCONT)
        t.join(RUNTIME_TIMEOUT + 5)
    r = result["r"]
    assert not isinstance(r, BaseException), r
    assert r.rc == 0, r
    own = r.out.splitlines()
    assert own and all(ln.endswith(":/" + cid) for ln in own), own
    assert "0::/" + cid in own
    assert rt.delete(cid, force=True).rc == 0
    assert not os.path.exists(d)
