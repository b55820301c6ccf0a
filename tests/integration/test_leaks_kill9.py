"""kill -9 of the runtime at any step of create, start, exec, run, update, pause and delete
(issue 19): `state` and `list` do not crash on what is left, and `delete --force ID` removes the
state dir, every cgroup directory the runtime made, every mount on the host side and every
process of the container.

Each step is hit on purpose: the runtime SIGKILLs itself where OCIRUNTIME_TEST_KILL_AT names the
step (ociruntime/__init__.py, kill_point), and the test checks it died there (a step the command
no longer reaches fails the test).  A second test kills create and run from outside after
increasing delays, at whatever they are doing then.  ociruntime_only: the steps are ociruntime's,
and runc 1.1.5 leaks in the second test (it writes its state.json at the end of create, so
`delete --force` of a create killed before knows nothing of the cgroups it made: tried here, its
cpuset cgroup was left after kills at 13 and 16 ms)."""

import json
import os
import signal
import subprocess
import time

import pytest

from helpers import (LONG_RUNNING, MS_BIND, MS_SHARED, assert_nothing_left, assert_state_and_list_survive,
                     cgroups_named, killed_at, mount, mounts_under, umount)

pytestmark = pytest.mark.ociruntime_only

CREATE_STEPS = ["create:recorded", "create:cgroup-made", "create:cgroups", "create:resources", "create:forked",
                "create:init-pid", "create:joined", "create:hooks", "create:saved", "create:ready",
                "create:pid-file"]
STEPS = (
    [("create", s, v) for s in CREATE_STEPS for v in ("plain", "shared-mounts")]
    + [("start", s, "plain") for s in ("start:released", "start:fifo-removed")]
    + [("exec", s, v) for s in ("exec:prepared", "exec:forked", "exec:joined", "exec:started") for v in ("plain", "host-pid")]
    + [("run", s, v) for s in ("create:joined", "create:saved", "start:released", "run:waiting",
                               "delete:cgroups-removed", "delete:files-removed") for v in ("plain", "host-pid")]
    + [("update", "update:applied", "plain"), ("pause", "pause:written", "plain"),
       ("resume", "resume:written", "plain")]
    + [("delete", s, v) for s in ("delete:killed", "delete:cgroups-removed", "delete:files-removed",
                                  "delete:records-removed") for v in ("plain", "host-pid")]
    # no mount namespace: the rootfs bound onto itself in the host's, the mounts under it there
    + [("create", s, "host-mounts") for s in CREATE_STEPS[CREATE_STEPS.index("create:resources"):]]
    + [("create", "create:host-root", "host-mounts")]
    + [("delete", s, "host-mounts") for s in ("delete:killed", "delete:cgroups-removed", "delete:host-root-released",
                                              "delete:files-removed")]
)


def _bundle(bundle, tmp_path, variant, args=LONG_RUNNING):
    b = bundle(*args)
    c = b.config
    c["linux"]["resources"] = {"pids": {"limit": 100}, "memory": {"limit": 64 << 20}}
    c["hooks"] = {"prestart": [{"path": "/bin/true"}]}
    if variant == "host-pid":
        c["linux"]["namespaces"] = [ns for ns in c["linux"]["namespaces"] if ns["type"] != "pid"]
    if variant == "host-mounts":
        b.copy_rootfs()  # (its own: the binds are made on it, in the host's mount namespace)
        c["linux"]["namespaces"] = [ns for ns in c["linux"]["namespaces"] if ns["type"] != "mount"]
        c["linux"].pop("maskedPaths", None)
        c["linux"].pop("readonlyPaths", None)
    if variant == "shared-mounts":
        # the bundle (and its rootfs) on a shared mount, the container's root shared too: a mount
        # that escaped the container's namespace would show on the host side, under the bundle
        b.copy_rootfs()
        mount(str(b.path), str(b.path), None, MS_BIND)
        mount("none", str(b.path), None, MS_SHARED)
        c["linux"]["rootfsPropagation"] = "shared"
        c["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]})
    return b


def _prepare(runtime, bundle, tmp_path, cmd, variant):
    """The container the command acts on (None for create and run), in the status it needs, and
    its bundle."""
    if cmd in ("create", "run"):
        return None, None
    b = _bundle(bundle, tmp_path, variant)
    cid = runtime.create(b)
    if cmd != "start":
        runtime.start(cid)
    if cmd == "resume":
        runtime.run("pause", cid, check=True)
    return cid, b


def _argv(cmd, cid, b, tmp_path):
    return {
        "create": ("create", "--bundle", b, "--pid-file", tmp_path / "pid", cid),
        "run": ("run", "--bundle", b, cid),
        "start": ("start", cid),
        "exec": ("exec", "--detach", cid, "sh", "-c", "sleep 1000 & exec sleep 1000"),
        "update": ("update", "--pids-limit", "50", "--memory", str(32 << 20), cid),
        "pause": ("pause", cid),
        "resume": ("resume", cid),
        "delete": ("delete", "--force", cid),
    }[cmd]


@pytest.mark.parametrize("cmd,step,variant", STEPS, ids=["-".join(s) for s in STEPS])
def test_killed_at_each_step(runtime, bundle, tmp_path, cmd, step, variant):
    try:
        cid, b = _prepare(runtime, bundle, tmp_path, cmd, variant)
        if cid is None:
            args = LONG_RUNNING
            if cmd == "run":  # what outlives the init (host-pid); it exits, for run's delete
                args = ("sh", "-c", "sleep 1000 & " + ("sleep 0.3" if step.startswith("delete:") else "exec sleep 1000"))
            b = _bundle(bundle, tmp_path, variant, args)
            cid = runtime.new_id()
        ours = [str(b.path)] if variant == "shared-mounts" else []  # (the test's own shared bind)
        killed_at(runtime, step, *_argv(cmd, cid, b, tmp_path))
        assert_state_and_list_survive(runtime, cid)
        r = runtime.run("delete", "--force", cid)
        assert r.rc == 0 and r.err == "", r.err
        assert_nothing_left(runtime, cid, ours)
    finally:
        for mp in sorted(mounts_under([str(tmp_path)]), key=len, reverse=True):
            umount(mp)


def test_what_a_killed_create_leaves_is_a_stopped_container(runtime, bundle, tmp_path):
    """Killed after it recorded its cgroups, create leaves a container `state` and `list` show as
    stopped (it has no process), which a plain `delete` removes with its cgroups."""
    b = _bundle(bundle, tmp_path, "plain")
    cid = runtime.new_id()
    killed_at(runtime, "create:resources", "create", "--bundle", b, cid)
    assert cgroups_named(cid), "create:resources comes after the cgroups are made"
    st = runtime.state(cid)
    assert (st["status"], st["pid"], st["id"]) == ("stopped", 0, cid)
    listed = [ln.split() for ln in runtime.run("list", check=True).out.splitlines()[1:]]
    assert [cid, "0", "stopped"] in [row[:3] for row in listed]
    r = runtime.run("start", cid)
    assert r.rc == 1
    assert runtime.refused(r) == "ociruntime: cannot start a container that has stopped"
    assert cgroups_named(cid), "a refused start removed nothing: that is delete's"
    assert runtime.delete(cid).rc == 0
    assert_nothing_left(runtime, cid)


def test_a_start_killed_after_the_release(runtime, bundle, tmp_path):
    """start killed after the init read its go-ahead but before it removed exec.fifo: the
    container runs; a second start says so at once (the init no longer holds the state dir) and
    removes the stale fifo, after which `state` says running."""
    cid = runtime.create(_bundle(bundle, tmp_path, "plain"))
    killed_at(runtime, "start:released", "start", cid)
    assert os.path.exists(os.path.join(runtime.root, cid, "exec.fifo"))
    t0 = time.monotonic()
    r = runtime.run("start", cid)
    assert r.rc != 0 and r.err.strip() == "ociruntime: cannot start an already running container", r.err
    assert time.monotonic() - t0 < 5
    assert runtime.state(cid)["status"] == "running"


def test_a_create_at_work_is_creating(runtime, bundle, tmp_path):
    """While create holds the container (here: a prestart hook that waits), `state` says
    "creating"; a `delete --force` meanwhile waits for it, then removes the container."""
    b = _bundle(bundle, tmp_path, "plain")
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    b.config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"read x < {gate}"]}]}
    cid = runtime.new_id()
    d = None
    p = subprocess.Popen([runtime.bin, "--root", runtime.root, "create", "--bundle", os.fspath(b), cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while runtime.status(cid) != "creating" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runtime.status(cid) == "creating"
        d = subprocess.Popen([runtime.bin, "--root", runtime.root, "delete", "--force", cid],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.2)
        assert d.poll() is None  # waits for the lock
        with open(gate, "w") as f:
            f.write("go\n")
        assert p.wait(20) == 0, p.stderr.read()
        assert d.wait(20) == 0, d.stderr.read()
    finally:
        for proc in (p, d):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert_nothing_left(runtime, cid)


def test_a_command_waiting_for_the_lock_ends_on_a_signal(runtime, bundle, tmp_path):
    """Commands on one container wait for each other (the state dir's flock), which is not
    bounded (a create's hooks may take long): SIGINT ends the waiting one at once (exit 130, no
    traceback), SIGTERM too, and the holder carries on."""
    b = _bundle(bundle, tmp_path, "plain")
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    b.config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"read x < {gate}"]}]}
    cid = runtime.new_id()
    p = subprocess.Popen([runtime.bin, "--root", runtime.root, "create", "--bundle", os.fspath(b), cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while runtime.status(cid) != "creating" and time.monotonic() < deadline:
            time.sleep(0.02)
        for sig, rc in ((signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)):
            k = subprocess.Popen([runtime.bin, "--root", runtime.root, "kill", cid, "KILL"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0.3)
            assert k.poll() is None  # waits for the lock
            t0 = time.monotonic()
            k.send_signal(sig)
            assert k.wait(5) == rc
            assert time.monotonic() - t0 < 1 and k.stderr.read() == b""
        with open(gate, "w") as f:
            f.write("go\n")
        assert p.wait(20) == 0, p.stderr.read()
        assert runtime.state(cid)["status"] == "created"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("cmd", ["create", "run"])
def test_killed_after_increasing_delays(runtime, bundle, tmp_path, cmd):
    """SIGKILL from outside after 0 to 150 ms: wherever create (or run) was, `delete --force`
    leaves nothing."""
    args = ("sh", "-c", "sleep 1000 & exec sleep 1000") if cmd == "run" else LONG_RUNNING
    b = _bundle(bundle, tmp_path, "plain", args)
    os.fspath(b)
    seen = set()
    for ms in (0, 1, 2, 3, 5, 7, 10, 13, 16, 20, 25, 30, 40, 50, 65, 80, 100, 150):
        cid = runtime.new_id(f"d{ms}")
        p = subprocess.Popen([runtime.bin, "--root", runtime.root, cmd, "--bundle", os.fspath(b.path), cid],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(ms / 1000)
        p.kill()
        p.wait()
        r = assert_state_and_list_survive(runtime, cid)
        seen.add(json.loads(r.out)["status"] if r.rc == 0 else r.err.strip())
        r = runtime.run("delete", "--force", cid)
        assert r.rc == 0 and r.err == "", (ms, r.err)
        assert_nothing_left(runtime, cid)
    assert len(seen) > 1, seen  # (killed at more than one place)
