"""containerd 1.6 (Debian's, with containerd-shim-runc-v2) driving the runtime under test: `ctr run
--runc-binary` makes it the shim's BinaryName.  A private daemon per module (conftest.containerd_env).

Each test asserts on what the container sees and on what ctr reports; the fixture checks that nothing
is left.  The runtime's argv is logged by a wrapper (ctr.log) for the contract checks.
"""

import os
import re
import subprocess
import time

import pytest

import helpers
from .clientlib import read, wait_for

TRAP_TERM = "trap 'exit 42' TERM; while :; do sleep 0.1; done"


def runtime_calls(c, command):
    return [c.log.command(a) for a in c.log.calls() if c.log.command(a)[1] == command]


def start(c, *cmd, opts=()):
    cid, r = c.run_container(*opts, "--", *(cmd or ("sleep", "1000")), detach=True)
    assert r.rc == 0, f"ctr run -d: {r}"
    wait_for(lambda: c.task_status(cid) == "RUNNING", 10, f"{cid} running")
    return cid, c.tasks()[cid][0]


def stop_and_delete(c, cid):
    c("task", "kill", "-s", "SIGKILL", cid)
    wait_for(lambda: c.task_status(cid) == "STOPPED", 10, f"{cid} stopped")
    r = c("task", "delete", cid)
    assert r.rc == 0, r
    assert c("containers", "rm", cid).rc == 0


def test_run_rm(ctr):
    cid, r = ctr.run_container("--", "echo", "hi")
    assert (r.rc, r.out) == (0, "hi\n"), r
    assert ctr("containers", "ls", "-q").out.split() == []
    # the shim's contract: --root, --log log.json, --log-format json on every call; a pid file
    calls = runtime_calls(ctr, "create")
    assert len(calls) == 1
    flags, _, args = calls[0]
    assert "--root" in flags and "--log-format" in flags and flags[flags.index("--log-format") + 1] == "json"
    assert "--pid-file" in args and args[-1] == cid
    assert [c[1] for c in map(ctr.log.command, ctr.log.calls())][:2] == ["create", "start"]
    assert runtime_calls(ctr, "delete")


def test_run_detached_ps(ctr):
    cid, pid = start(ctr, "sh", "-c", "sleep 1000 & sleep 1000")
    assert helpers.pid_alive(pid)
    with open(f"/proc/{pid}/cgroup") as f:
        assert f":/{ctr.namespace}/{cid}" in f.read()
    r = ctr("task", "ps", cid)
    assert r.rc == 0, r
    pids = [int(line.split()[0]) for line in r.out.splitlines()[1:]]
    assert pid in pids and len(pids) == 2, r          # sh and its background sleep
    assert runtime_calls(ctr, "ps")[0][2][:2] == ["--format", "json"]
    stop_and_delete(ctr, cid)


def test_task_exec(ctr):
    cid, pid = start(ctr)
    r = ctr("task", "exec", "--fifo-dir", ctr.fifo_dir, "--exec-id", "e1", cid,
            "sh", "-c", "echo exec-ok; cat /proc/1/cmdline")
    assert r.rc == 0, r
    assert r.out.startswith("exec-ok\nsleep\x001000"), r
    r = ctr("task", "exec", "--fifo-dir", ctr.fifo_dir, "--exec-id", "e2", cid, "sh", "-c", "exit 5")
    assert r.rc == 5, r
    stop_and_delete(ctr, cid)


def test_task_exec_missing_command(ctr):
    cid, _ = start(ctr)
    r = ctr("task", "exec", "--fifo-dir", ctr.fifo_dir, "--exec-id", "m1", cid, "/nonexistent")
    assert r.rc != 0, r
    assert "OCI runtime exec failed" in r.err and re.search(r'exec: "/nonexistent": .*no such file', r.err), r
    assert ctr.task_status(cid) == "RUNNING"
    stop_and_delete(ctr, cid)


def test_task_exec_tty(ctr):
    cid, _ = start(ctr)
    r = ctr.tty("task", "exec", "--fifo-dir", ctr.fifo_dir, "-t", "--exec-id", "t1", cid, "tty")
    assert r.rc == 0, r
    assert re.search(r"^/dev/pts/\d+$", r.out, re.M), r
    stop_and_delete(ctr, cid)


def test_task_exec_detached(ctr):
    cid, pid = start(ctr)
    r = ctr("task", "exec", "--fifo-dir", ctr.fifo_dir, "-d", "--exec-id", "d1", cid,
            "sh", "-c", "echo done > /tmp/marker; sleep 1000")
    assert r.rc == 0, r
    wait_for(lambda: helpers.pid_alive(pid) and os.path.exists(f"/proc/{pid}/root/tmp/marker"), 10, "exec -d ran")
    ps = ctr("task", "ps", cid).out
    assert len(ps.splitlines()) == 3, ps                  # header, init, the exec'd shell
    stop_and_delete(ctr, cid)


def test_pause_resume(ctr):
    cid, pid = start(ctr, "sh", "-c", "while :; do date +%s%N > /tmp/tick; sleep 0.05; done")
    tick = f"/proc/{pid}/root/tmp/tick"
    wait_for(lambda: os.path.exists(tick), 5, "ticking")
    r = ctr("task", "pause", cid)
    assert r.rc == 0, r
    assert ctr.task_status(cid) == "PAUSED"
    with open(f"/sys/fs/cgroup/freezer/{ctr.namespace}/{cid}/freezer.state") as f:
        assert f.read().strip() == "FROZEN"
    frozen = read(tick)
    time.sleep(0.3)
    assert read(tick) == frozen
    r = ctr("task", "resume", cid)
    assert r.rc == 0, r
    assert ctr.task_status(cid) == "RUNNING"
    wait_for(lambda: read(tick) != frozen, 5, "running again after resume")
    stop_and_delete(ctr, cid)


def test_task_update(ctr, ctd_update):
    cid, pid = start(ctr)
    r = ctd_update(cid, {"memory": {"limit": 67108864}, "pids": {"limit": 20}})
    assert r.rc == 0, r
    with open(f"/sys/fs/cgroup/memory/{ctr.namespace}/{cid}/memory.limit_in_bytes") as f:
        assert f.read().strip() == "67108864"
    with open(f"/sys/fs/cgroup/pids/{ctr.namespace}/{cid}/pids.max") as f:
        assert f.read().strip() == "20"
    update = runtime_calls(ctr, "update")
    assert update and update[0][2][:2] == ["--resources", "-"], update
    stop_and_delete(ctr, cid)


def test_create_with_limits(ctr):
    cid, pid = start(ctr, opts=("--memory-limit", "67108864", "--cpus", "0.5"))
    with open(f"/sys/fs/cgroup/memory/{ctr.namespace}/{cid}/memory.limit_in_bytes") as f:
        assert f.read().strip() == "67108864"
    with open(f"/sys/fs/cgroup/cpu/{ctr.namespace}/{cid}/cpu.cfs_quota_us") as f:
        assert f.read().strip() == "50000"
    stop_and_delete(ctr, cid)


def test_kill(ctr):
    cid, pid = start(ctr, "sh", "-c", TRAP_TERM)
    r = ctr("task", "kill", cid)                          # SIGTERM
    assert r.rc == 0, r
    wait_for(lambda: ctr.task_status(cid) == "STOPPED", 10, "stopped by TERM")
    assert not helpers.pid_alive(pid)
    r = ctr("task", "delete", cid)
    assert r.rc == 0, r
    assert "exit code 42" in r.out + r.err, r            # ctr reports the deleted task's exit status
    assert runtime_calls(ctr, "kill")[0][2][-1] == "15"
    assert ctr("containers", "rm", cid).rc == 0


def test_kill_all(ctr):
    cid, pid = start(ctr, "sh", "-c", "sleep 1000 & sleep 1000 & wait")
    pids = [int(line.split()[0]) for line in ctr("task", "ps", cid).out.splitlines()[1:]]
    assert len(pids) == 3
    r = ctr("task", "kill", "--all", "-s", "SIGKILL", cid)
    assert r.rc == 0, r
    wait_for(lambda: ctr.task_status(cid) == "STOPPED", 10, "stopped")
    wait_for(lambda: not any(helpers.pid_alive(p) for p in pids), 5, "every process killed")
    kill = runtime_calls(ctr, "kill")
    assert "--all" in kill[0][2] and kill[0][2][-1] == "9", kill
    assert ctr("task", "delete", cid).rc == 0
    assert ctr("containers", "rm", cid).rc == 0


def test_delete_force_running(ctr):
    cid, pid = start(ctr)
    r = ctr("task", "delete", "--force", cid)
    assert r.rc == 0, r
    assert not helpers.pid_alive(pid)
    assert cid not in ctr.tasks()
    assert not os.path.exists(os.path.join(ctr.runtime_root, ctr.namespace, cid))
    assert ctr("containers", "rm", cid).rc == 0


def test_run_tty(ctr):
    cid = ctr.new_id()
    r = ctr.tty("run", "--rm", "-t", *ctr.run_args, ctr.image, cid, "sh", "-c", "tty; echo TERM=$TERM")
    assert r.rc == 0, r
    assert re.search(r"^/dev/pts/0$", r.out, re.M), r
    create = runtime_calls(ctr, "create")
    assert "--console-socket" in create[0][2]


def test_run_tty_input(ctr):
    cid = ctr.new_id()
    r = ctr.tty("run", "--rm", "-t", *ctr.run_args, ctr.image, cid, "sh", "-c", "echo ready; read x; echo got:$x",
                input="typed\n", until="ready")
    assert r.rc == 0, r
    assert "got:typed" in r.out


def test_run_rootfs_without_image(ctr, tmp_path):
    # ctr run --rootfs: a plain directory as the container's root, no snapshot
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    subprocess.run(["tar", "-C", str(rootfs), "-xf", ctr.rootfs_tar], check=True)
    cid = ctr.new_id()
    # no image config, so no PATH in the env: runc finds no bare command name (ociruntime falls back to a
    # default PATH), hence the absolute path
    r = ctr("run", "--rm", *ctr.run_args, "--rootfs", rootfs, cid, "/bin/cat", "/etc/passwd")
    assert r.rc == 0 and r.out.startswith("root:x:0:0:"), r


def test_exit_codes(ctr):
    for code in (0, 3, 130):
        cid, r = ctr.run_container("--", "sh", "-c", f"exit {code}")
        assert r.rc == code, r
    cid, pid = start(ctr)
    helpers.kill_pid(pid)
    wait_for(lambda: ctr.task_status(cid) == "STOPPED", 10, "stopped by SIGKILL")
    r = ctr("task", "delete", cid)
    assert r.rc == 0 and "exit code 137" in r.err, r
    assert ctr("containers", "rm", cid).rc == 0


def test_failed_create_reports_runtime_message(ctr):
    cid, r = ctr.run_container("--", "/nonexistent")
    assert r.rc != 0, r
    # containerd reports the last level=error line of the runtime's --log (log.json)
    assert "OCI runtime create failed" in r.err, r
    assert re.search(r'exec: "/nonexistent": .*no such file or directory', r.err), r
    ctr("containers", "rm", cid)


@pytest.mark.ociruntime_only
def test_failed_create_message_is_ours(ctr):
    cid, r = ctr.run_container("--", "/nonexistent")
    assert r.rc != 0, r
    assert ('OCI runtime create failed: exec: "/nonexistent": stat /nonexistent: no such file or directory'
            in r.err), r
    ctr("containers", "rm", cid)
