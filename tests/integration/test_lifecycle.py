"""The container lifecycle as a client sees it: create/start/kill/delete/run/list/state and pid files."""

import json
import os
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest

from helpers import LONG_RUNNING, TERM_REPORTER, assert_forwards_term, cgroups_named, parse_rfc3339, pid_alive, wait_exit


def test_create_gives_created_state(runtime, bundle, tmp_path):
    b = bundle(*LONG_RUNNING)
    b.config["annotations"] = {"org.oci-test.a": "1", "org.oci-test.b": "two"}
    pidfile = tmp_path / "pid"
    before = datetime.now(timezone.utc)
    cid = runtime.create(b, None, "--pid-file", pidfile)
    st = runtime.state(cid)
    assert st["ociVersion"] == b.config["ociVersion"]
    assert st["id"] == cid
    assert st["status"] == "created"
    assert isinstance(st["pid"], int) and st["pid"] > 0 and pid_alive(st["pid"])
    assert st["bundle"] == str(b.path)
    assert st["rootfs"] == str(b.rootfs)
    assert st["annotations"] == b.config["annotations"]
    assert st["owner"] == ""
    created = parse_rfc3339(st["created"])
    assert before - timedelta(seconds=2) <= created <= datetime.now(timezone.utc) + timedelta(seconds=2)
    assert pidfile.read_text() == str(st["pid"])
    # the container's process has not run the user's program yet
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] != b"sh"


def _text_rss_kb(pid):
    """kB resident of the program text (r-xp file mappings) of process ``pid``."""
    total, text = 0, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if not parts[0].endswith(":"):  # a mapping's header line
                text = len(parts) >= 6 and parts[1] == "r-xp" and parts[5].startswith("/")
            elif parts[0] == "Rss:" and text:
                total += int(parts[1])
    return total


@pytest.mark.ociruntime_only  # ociruntime's own design: runc's waiting init keeps its text
def test_waiting_init_gives_back_its_program_text(runtime, bundle):
    # the interpreter's text (2-3 MB resident once run) is dropped while the init waits for start:
    # shared and in the page cache, it comes back on use (cext/shim.c, oci_wait)
    cid = runtime.create(bundle(*LONG_RUNNING))
    pid = runtime.state(cid)["pid"]
    assert _text_rss_kb(pid) < 1024
    runtime.start(cid)
    runtime.wait_status(cid, "running")


def test_state_without_annotations(runtime, bundle):
    cid = runtime.create(bundle(*LONG_RUNNING))
    assert runtime.state(cid).get("annotations", {}) == {}


def test_relative_rootfs_resolves_against_bundle(runtime, bundle):
    b = bundle(*LONG_RUNNING)
    b.copy_rootfs()
    cid = runtime.create(b)
    assert runtime.state(cid)["rootfs"] == str(b.path / "rootfs")


def test_start_kill_delete(runtime, bundle):
    cid = runtime.create(bundle(*LONG_RUNNING))
    pid = runtime.state(cid)["pid"]
    r = runtime.start(cid)
    assert r.out == "" and r.err == ""
    st = runtime.state(cid)
    assert st["status"] == "running" and st["pid"] == pid
    runtime.kill(cid, check=True)
    status = wait_exit(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 42, "TERM was not delivered"
    assert runtime.status(cid) == "stopped"
    runtime.delete(cid, check=True)
    assert cid not in os.listdir(runtime.root)
    r = runtime.run("state", cid)
    runtime.refused(r, "container does not exist")


@pytest.mark.parametrize("sig,killed_by", [
    ("TERM", None), ("SIGTERM", None), ("15", None),
    ("KILL", signal.SIGKILL), ("SIGKILL", signal.SIGKILL), ("9", signal.SIGKILL),
])
def test_kill_signal_forms(runtime, bundle, sig, killed_by):
    cid = runtime.create(bundle(*LONG_RUNNING))
    pid = runtime.state(cid)["pid"]
    runtime.start(cid)
    runtime.kill(cid, sig, check=True)
    status = wait_exit(pid)
    if killed_by:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == killed_by
    else:
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 42
    assert runtime.status(cid) == "stopped"
    runtime.delete(cid, check=True)


def test_kill_created_container(runtime, bundle):
    cid = runtime.create(bundle(*LONG_RUNNING))
    pid = runtime.state(cid)["pid"]
    runtime.kill(cid, "KILL", check=True)
    wait_exit(pid)
    assert runtime.status(cid) == "stopped"
    runtime.delete(cid, check=True)


def test_stopped_without_reaping(runtime, bundle):
    """A container whose init exited but is not reaped yet (a zombie) is stopped."""
    cid = runtime.create(bundle("true"))
    pid = runtime.state(cid)["pid"]
    runtime.start(cid)
    runtime.wait_status(cid, "stopped")
    assert os.path.exists(f"/proc/{pid}")          # still our zombie: nobody reaped it
    runtime.delete(cid, check=True)
    wait_exit(pid)


@pytest.mark.ociruntime_only
def test_create_without_process(runtime, bundle):
    """The spec: create accepts a config without process; start refuses it (runc 1.1.5 refuses at
    create).  The container stays created, and is deleted as any other."""
    b = bundle(*LONG_RUNNING)
    del b.config["process"]
    cid = runtime.create(b)
    st = runtime.state(cid)
    assert st["status"] == "created" and pid_alive(st["pid"])
    r = runtime.run("start", cid)
    assert r.rc == 1
    assert r.err == "ociruntime: cannot start a container without a process (its config.json has none)\n"
    assert runtime.status(cid) == "created"
    runtime.delete(cid, check=True)
    wait_exit(st["pid"])
    assert runtime.status(cid) is None


def test_run_without_process_refused(runtime, bundle):
    b = bundle(*LONG_RUNNING)
    del b.config["process"]
    cid = runtime.new_id()
    r = runtime.run("run", "--bundle", b, cid)
    runtime.refused(r, ours=("process",))
    assert os.listdir(runtime.root) == [] and cgroups_named(cid) == []


def test_invalid_signal_refused(runtime, bundle):
    cid = runtime.create(bundle(*LONG_RUNNING))
    r = runtime.kill(cid, "NOSUCHSIG")
    runtime.refused(r, "NOSUCHSIG")
    assert runtime.status(cid) == "created"


def test_run_returns_exit_status(runtime, bundle):
    r = runtime.run_container(bundle("sh", "-c", "echo out; echo err >&2; exit 3"))
    assert r.rc == 3
    assert r.out == "out\n"
    assert "err\n" in r.err
    assert os.listdir(runtime.root) == []


def test_run_killed_by_signal(runtime, bundle):
    """Without a pid namespace (PID 1 of one is immune to its own signals) a killed process gives 128+n."""
    b = bundle("sh", "-c", "kill -9 $$")
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "pid"]
    r = runtime.run_container(b)
    assert r.rc == 128 + 9


def test_run_forwards_a_signal_sent_as_soon_as_the_process_runs(runtime, bundle):
    """A signal that comes right after the process started (before `run` reached its wait) is
    forwarded, not lost and not fatal to `run` (which would leave the container running)."""
    for _ in range(5):
        cid = runtime.new_id()
        assert_forwards_term(runtime, "run", "--bundle", bundle(*TERM_REPORTER).write(), cid)
        runtime.refused(runtime.run("state", cid), "does not exist")   # deleted: nothing left running


def test_run_detached(runtime, bundle, tmp_path):
    pidfile = tmp_path / "pid"
    cid = runtime.new_id()
    r = runtime.run("run", "-d", "--bundle", bundle(*LONG_RUNNING), "--pid-file", pidfile, cid, check=True)
    assert r.out == ""
    st = runtime.state(cid)
    assert st["status"] == "running"
    assert pidfile.read_text() == str(st["pid"])
    runtime.kill(cid, "KILL", check=True)
    wait_exit(st["pid"])
    runtime.wait_status(cid, "stopped")
    runtime.delete(cid, check=True)


def test_detached_output_goes_to_callers_stdio(runtime, bundle, tmp_path):
    out = tmp_path / "out"
    cid = runtime.new_id()
    with open(out, "w") as f:
        runtime.run("run", "-d", "--bundle", bundle("echo", "hello"), cid, stdout=f, check=True)
    pid_gone = time.monotonic() + 5
    while "hello" not in out.read_text() and time.monotonic() < pid_gone:
        time.sleep(0.02)
    assert out.read_text() == "hello\n"


def test_pid_file_format(runtime, bundle, tmp_path):
    pidfile = tmp_path / "sub" / "init.pid"
    pidfile.parent.mkdir()
    cid = runtime.create(bundle(*LONG_RUNNING), None, "--pid-file", pidfile)
    text = pidfile.read_text()
    assert text.isdigit(), f"pid file holds {text!r}"
    assert int(text) == runtime.state(cid)["pid"]


def test_list(runtime, bundle):
    b = bundle(*LONG_RUNNING)
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    r = runtime.run("list", check=True)
    lines = r.out.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = [line.split() for line in lines[1:]]
    assert [row[:4] for row in rows] == [[cid, str(pid), "created", str(b.path)]]
    parse_rfc3339(rows[0][4])
    assert rows[0][5] == "root"

    r = runtime.run("list", "--format", "json", check=True)
    entries = json.loads(r.out)
    assert len(entries) == 1
    e = entries[0]
    assert (e["id"], e["pid"], e["status"], e["bundle"], e["rootfs"]) == (
        cid, pid, "created", str(b.path), str(b.rootfs))
    assert e["ociVersion"] == b.config["ociVersion"]
    assert e["created"] == runtime.state(cid)["created"]
    assert e["owner"] == "root"

    assert runtime.run("list", "-q", check=True).out == cid + "\n"
    runtime.start(cid)
    assert runtime.run("list", "-q", check=True).out == cid + "\n"
    assert json.loads(runtime.run("list", "-f", "json", check=True).out)[0]["status"] == "running"


def test_list_empty(runtime):
    r = runtime.run("list", check=True)
    assert r.out.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert runtime.run("list", "-q", check=True).out == ""
    # runc prints `null` (a nil Go slice), not []
    assert runtime.run("list", "--format", "json", check=True).out.strip() == "null"


def test_list_several_sorted(runtime, bundle):
    ids = [runtime.create(bundle(*LONG_RUNNING)) for _ in range(3)]
    assert runtime.run("list", "-q", check=True).out.split() == sorted(ids)


@pytest.mark.parametrize("argv", [["state"], ["delete"], ["kill"], ["kill", "{id}", "KILL"], ["start"],
                                  ["ps"], ["pause"], ["resume"]])
def test_unknown_container(runtime, argv):
    cid = runtime.new_id("nope")
    argv = [a.format(id=cid) for a in argv]
    r = runtime.run(*argv, *([cid] if cid not in argv else []))
    runtime.refused(r)
    assert "container does not exist" in r.err
    assert r.out == ""


def test_delete_force_unknown_succeeds(runtime):
    r = runtime.run("delete", "--force", runtime.new_id("nope"))
    assert (r.rc, r.out) == (0, "")


def test_start_twice_fails(runtime, bundle):
    cid = runtime.create(bundle(*LONG_RUNNING))
    runtime.start(cid)
    r = runtime.run("start", cid)
    runtime.refused(r)
    assert runtime.status(cid) == "running"


def test_start_stopped_fails(runtime, bundle):
    cid = runtime.create(bundle("true"))
    runtime.start(cid)
    runtime.wait_status(cid, "stopped")
    runtime.refused(runtime.run("start", cid))
    assert runtime.status(cid) == "stopped"


def test_delete_running_needs_force(runtime, bundle):
    cid = runtime.create(bundle(*LONG_RUNNING))
    pid = runtime.state(cid)["pid"]
    runtime.start(cid)
    r = runtime.delete(cid)
    runtime.refused(r)
    assert runtime.status(cid) == "running" and pid_alive(pid)
    runtime.delete(cid, force=True, check=True)
    assert runtime.status(cid) is None
    assert not pid_alive(pid)
    assert os.listdir(runtime.root) == []


def test_delete_created_without_force(runtime, bundle):
    """runc deletes a created (never started) container without --force; its init is killed."""
    cid = runtime.create(bundle(*LONG_RUNNING))
    pid = runtime.state(cid)["pid"]
    runtime.delete(cid, check=True)
    assert runtime.status(cid) is None
    assert not pid_alive(pid)


def test_kill_stopped_fails(runtime, bundle):
    cid = runtime.create(bundle("true"))
    runtime.start(cid)
    runtime.wait_status(cid, "stopped")
    r = runtime.kill(cid, "KILL")
    runtime.refused(r)
    assert "not running" in r.err
    runtime.delete(cid, check=True)


def test_create_id_in_use(runtime, bundle):
    b = bundle(*LONG_RUNNING)
    cid = runtime.create(b)
    st = runtime.state(cid)
    r = runtime.run("create", "--bundle", bundle(*LONG_RUNNING), cid)
    runtime.refused(r)
    assert "exists" in r.err
    assert runtime.state(cid) == st and pid_alive(st["pid"])
    runtime.start(cid)
    assert runtime.status(cid) == "running"


@pytest.mark.parametrize("bad", ["{prefix}-bad/id", "..", "{prefix}-bad id", ""])
def test_invalid_id_refused(runtime, bundle, bad):
    bad = bad.format(prefix=runtime.new_id())
    r = runtime.run("create", "--bundle", bundle(*LONG_RUNNING), bad)
    runtime.refused(r)
    assert os.listdir(runtime.root) == []


def test_create_start_with_bundle_from_cwd(runtime, bundle, tmp_path):
    """Without --bundle the bundle is the current directory."""
    b = bundle(*LONG_RUNNING)
    os.fspath(b)  # write config.json
    cid = runtime.new_id()
    cwd = os.getcwd()
    os.chdir(b.path)
    try:
        runtime.run("create", cid, check=True)
    finally:
        os.chdir(cwd)
    assert runtime.state(cid)["bundle"] == str(b.path)



def container_cgroups(pid):
    """{hierarchy: path} from /proc/PID/cgroup ('' is the cgroup2 hierarchy)."""
    with open(f"/proc/{pid}/cgroup") as f:
        return {h: p for _, h, p in (line.rstrip("\n").split(":", 2) for line in f)}


def test_cgroup_named_after_id_and_removed(runtime, bundle):
    """Without cgroupsPath the container gets a cgroup named after its id in every v1 hierarchy
    (nested under the caller's own where that is not the root), or on pure v2 in the unified one
    (under the parent of the caller's), removed by delete."""
    cid = runtime.create(bundle(*LONG_RUNNING))
    cgroups = container_cgroups(runtime.state(cid)["pid"])
    named = {h: p for h, p in cgroups.items() if h} or cgroups  # pure v2: the unified entry alone
    assert named and {h: p for h, p in named.items() if not p.endswith("/" + cid)} == {}
    runtime.delete(cid, force=True, check=True)
    assert cgroups_named(cid) == []


def test_cgroup_in_unified_hierarchy_too(runtime, bundle):
    """On a hybrid host runc places the container in the cgroup2 hierarchy as well."""
    if not os.path.exists("/sys/fs/cgroup/unified/cgroup.procs"):
        pytest.skip("not a hybrid cgroup host")
    cid = runtime.create(bundle(*LONG_RUNNING))
    assert container_cgroups(runtime.state(cid)["pid"])[""].endswith("/" + cid)
