"""State files damaged on disk (issue 19): a truncated, corrupt or empty state.json, a missing
exec.fifo, a state dir left without its records, a full disk while state is written (a small
tmpfs as --root).  Each gives one clear line naming the file (no traceback; a JSON line in --log
with --log-format json), `list` still lists the other containers, and `delete --force` still
removes the container: its processes and cgroups too, found through the copies of the record
(statedir.py: the marshal copy of state.json, made.json).

ociruntime_only: runc 1.1.5 fails `delete --force` of a container whose state.json is damaged
("unexpected end of JSON input"), leaving its state dir, processes and cgroups.  ociruntime has no
lock file to lose (the state dir itself is flocked): a state dir without its records (empty, or
made.json only) stands in for that case."""

import json
import os
import time

import pytest

import helpers
from helpers import LONG_RUNNING, assert_one_line_error, cgroups_named, mount, pid_alive, umount

pytestmark = pytest.mark.ociruntime_only


def _two(runtime, bundle, start=False):
    """Two containers: the one to damage, and a witness `list` must still show."""
    ids = [runtime.create(bundle(*LONG_RUNNING)) for _ in range(2)]
    if start:
        for cid in ids:
            runtime.start(cid)
    return ids


def _gone(runtime, cid, pid, cgroups):
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        helpers.reap_zombies()
        time.sleep(0.02)
    assert not pid_alive(pid)
    assert not os.path.lexists(os.path.join(runtime.root, cid))
    assert [d for d in cgroups if os.path.exists(d)] == []


def _listed(runtime):
    r = runtime.run("list", "--format", "json")
    assert r.rc == 0 and "Traceback" not in r.err, r.err
    return {s["id"]: s["status"] for s in json.loads(r.out) or ()}, r.err


DAMAGE = {
    "truncated": lambda data: data[:len(data) // 2],
    "corrupt": lambda data: b"\x00\xff" + data[2:],
    "empty": lambda data: b"",
    "not-an-object": lambda data: b"[1, 2]",
    "no-pid": lambda data: json.dumps({k: v for k, v in json.loads(data).items() if k != "pid"}).encode(),
}


@pytest.mark.parametrize("copies", ["intact", "copy-damaged"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_state_json(runtime, bundle, tmp_path, damage, copies):
    """`state` names the file, `list` lists the witness (and warns about the damaged one),
    `delete --force` removes the container, its init and its cgroups (from the marshal copy or,
    when that is damaged too, made.json: processes found through the cgroup)."""
    cid, witness = _two(runtime, bundle, start=True)
    st = runtime.state(cid)
    cgroups = cgroups_named(cid)
    path = os.path.join(runtime.root, cid, "state.json")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(DAMAGE[damage](data))
    if copies == "copy-damaged":
        with open(os.path.join(runtime.root, cid, ".state.marshal"), "wb") as f:
            f.write(b"garbage")
    line = assert_one_line_error(runtime.run("state", cid), path, "damaged", f"delete --force {cid}")
    assert line.startswith("ociruntime: ")
    log = tmp_path / "log.json"
    r = runtime.run("--log", log, "--log-format", "json", "state", cid)
    assert_one_line_error(r, path)
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and path in entry["msg"]
    listed, warnings = _listed(runtime)
    assert listed == {witness: "running"}
    assert path in warnings and "Traceback" not in warnings
    for cmd in ("start", "kill", "pause", "exec"):
        argv = [cmd, cid] + (["true"] if cmd == "exec" else [])
        assert_one_line_error(runtime.run(*argv), path)
    r = runtime.run("delete", "--force", cid)
    assert r.rc == 0, r.err
    assert len(r.err.strip().splitlines()) == 1 and "warning" in r.err and path in r.err, r.err
    _gone(runtime, cid, st["pid"], cgroups)
    assert _listed(runtime)[0] == {witness: "running"}


def test_every_record_damaged(runtime, bundle):
    """With state.json, its copy and made.json all unreadable nothing says what the container ran:
    `delete --force` removes the state dir and says what it could not remove."""
    cid, witness = _two(runtime, bundle)
    st = runtime.state(cid)
    cgroups = cgroups_named(cid)
    for name in ("state.json", ".state.marshal", "made.json"):
        with open(os.path.join(runtime.root, cid, name), "wb") as f:
            f.write(b"{")
    r = runtime.run("delete", "--force", cid)
    assert r.rc == 0 and "processes and cgroups" in r.err and "Traceback" not in r.err, r.err
    assert not os.path.lexists(os.path.join(runtime.root, cid))
    # what it said was left, the test removes (by pid, its own cgroup names)
    helpers.kill_pid(st["pid"])
    for d in cgroups:
        assert helpers.remove_cgroup(d) == ""
    assert _listed(runtime)[0] == {witness: "created"}


def test_missing_exec_fifo(runtime, bundle):
    """A created container whose exec.fifo is gone is still "created" (its init waits in the open
    of the fifo); `start` says the fifo is missing, naming it; delete --force removes it."""
    cid, witness = _two(runtime, bundle)
    st = runtime.state(cid)
    cgroups = cgroups_named(cid)
    fifo = os.path.join(runtime.root, cid, "exec.fifo")
    os.unlink(fifo)
    assert runtime.state(cid)["status"] == "created"
    assert _listed(runtime)[0] == {cid: "created", witness: "created"}
    assert_one_line_error(runtime.run("start", cid), fifo, "missing")
    r = runtime.run("delete", "--force", cid)
    assert r.rc == 0 and r.err == "", r.err
    _gone(runtime, cid, st["pid"], cgroups)


@pytest.mark.parametrize("left", ["empty", "made.json only", "made.json corrupt"])
def test_state_dir_without_its_records(runtime, bundle, left):
    """What a command killed at its first or last step leaves (no record, or only made.json):
    `state` and `list` do not crash on it, `delete --force` removes it."""
    witness = runtime.create(bundle(*LONG_RUNNING))
    cid = runtime.new_id()
    d = os.path.join(runtime.root, cid)
    os.mkdir(d, 0o711)
    if left != "empty":
        made = {"id": cid, "pid": 0, "start_time": 0, "bundle": "/nonexistent", "rootfs": "/nonexistent/rootfs",
                "created": "2026-01-01T00:00:00Z", "owner": "", "ociVersion": "1.0.2", "cgroup": None}
        with open(os.path.join(d, "made.json"), "w") as f:
            f.write(json.dumps(made) if left == "made.json only" else "{\"id\": ")
    r = runtime.run("state", cid)
    if left == "made.json only":
        assert r.rc == 0 and json.loads(r.out)["status"] == "stopped", r.err
    elif left == "empty":
        assert_one_line_error(r, "container does not exist")
    else:
        assert_one_line_error(r, os.path.join(d, "made.json"), "damaged")
    listed, _ = _listed(runtime)
    assert listed == ({witness: "created", cid: "stopped"} if left == "made.json only" else {witness: "created"})
    r = runtime.run("delete", "--force", cid)
    assert r.rc == 0 and "Traceback" not in r.err, r.err
    assert not os.path.lexists(d)


# ---------------------------------------------------------------------------------------------------
# A full disk


@pytest.fixture
def small_root(runtime, tmp_path):
    """A Runtime whose --root is a tmpfs of 64 KiB (mounted and unmounted here), and fill(pages)
    that leaves that many 4 KiB pages free."""
    root = tmp_path / "tmpfs-root"
    root.mkdir()
    mount("tmpfs", str(root), "tmpfs", 0, "size=64k,mode=0711")
    rt = helpers.Runtime(runtime.bin, root, runtime.token, "small-root", label="tmpfs")
    runtime.peers.append(rt)
    filler = root / ".filler"

    def fill(pages):
        if filler.exists():
            filler.unlink()
        free = os.statvfs(root).f_bavail * os.statvfs(root).f_bsize
        with open(filler, "wb") as f:
            f.write(b"\0" * (free - pages * 4096))
        assert os.statvfs(root).f_bavail == pages
    rt.fill = fill
    yield rt
    for cid in rt.ids:
        rt.run("delete", "--force", cid)
    if filler.exists():
        filler.unlink()
    umount(str(root))


@pytest.mark.parametrize("pages,file", [(0, "made.json"), (1, "state.json")])
def test_full_disk_at_create(small_root, bundle, tmp_path, pages, file):
    """No room for the record (or for state.json, after the init was forked): one line naming the
    file and the errno, a JSON line in --log, and nothing left behind."""
    rt = small_root
    rt.fill(pages)
    cid = rt.new_id()
    log = tmp_path / "log.json"
    r = rt.run("--log", log, "--log-format", "json", "create", "--bundle", bundle(*LONG_RUNNING), cid)
    path = os.path.join(rt.root, cid, file)
    assert_one_line_error(r, path, "No space left on device")
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and path in entry["msg"]
    assert os.listdir(rt.root) == [".filler"]
    assert cgroups_named(cid) == []
    assert runtime_list_ok(rt) == []


def runtime_list_ok(rt):
    r = rt.run("list", "--format", "json")
    assert r.rc == 0 and r.err == "", r.err
    return json.loads(r.out) or []


def test_full_disk_at_update(small_root, bundle):
    """update cannot save the new limits: one line naming state.json; the cgroup keeps the old
    limit (the record still has it); the container runs on and delete --force removes it."""
    rt = small_root
    b = bundle(*LONG_RUNNING)
    b.config["linux"]["resources"] = {"pids": {"limit": 100}}
    cid = rt.create(b)
    rt.start(cid)
    pids_max = [d for d in cgroups_named(cid) if "/pids/" in d][0] + "/pids.max"
    rt.fill(0)
    r = rt.run("update", "--pids-limit", "50", cid)
    assert_one_line_error(r, os.path.join(rt.root, cid, "state.json"), "No space left on device")
    with open(pids_max) as f:
        assert f.read().strip() == "100"
    assert rt.state(cid)["status"] == "running"
    assert [s["id"] for s in runtime_list_ok(rt)] == [cid]
    pid = rt.state(cid)["pid"]
    r = rt.run("delete", "--force", cid)
    assert r.rc == 0 and r.err == "", r.err
    _gone(rt, cid, pid, [os.path.dirname(pids_max)])


def test_full_disk_start_kill_delete(small_root, bundle):
    """Nothing but create and update writes state: with the disk full, a created container still
    starts, is killed and deleted."""
    rt = small_root
    cid = rt.create(bundle(*LONG_RUNNING))
    rt.fill(0)
    rt.start(cid)
    assert rt.kill(cid, "KILL").rc == 0
    rt.wait_status(cid, "stopped")
    assert rt.delete(cid).rc == 0
    assert os.listdir(rt.root) == [".filler"]
    assert cgroups_named(cid) == []
