"""The cgroupfs driver on a pure cgroup v2 host (only the unified hierarchy; tests/vm/ci.sh runs these
in such a host): where the container's cgroup goes, the controllers enabled down the path, and every
resource enforced by the kernel (a process killed at memory.max, pids.max refusing a fork, cpu.max
capping a busy loop, a device denied by the eBPF program, a frozen cgroup), then update, events and
delete on the same files.  Each passes with runc too.

What the host has is read from the host's cgroup files (the container's cgroup is found from its
init's /proc/PID/cgroup); what the kernel enforces is seen from the process inside.
"""

import json
import os
import re
import subprocess
import time

import pytest

from helpers import COUNTER, LONG_RUNNING, cgroups_named, disk_of, pid_alive, read_count, resources
from helpers import cgroup2_of as cgroup_of, read_kv as kv, read_value as read

MiB = 1 << 20
ROOT = "/sys/fs/cgroup"


def pure_v2():
    with open("/proc/self/mountinfo") as f:
        kinds = [line.partition(" - ")[2].split()[0] for line in f if " - cgroup" in line]
    return kinds == ["cgroup2"]


pytestmark = pytest.mark.skipif(not pure_v2(), reason="needs a pure cgroup v2 host (only the unified "
                                "hierarchy mounted; this one has v1 hierarchies): tests/vm/ci.sh runs "
                                "these in one")


def host_dir(pid):
    return ROOT + cgroup_of(pid)


def remove_parents(runtime, prefix):
    """runc leaves the parents of a nested cgroupsPath it made; ociruntime removes them."""
    if runtime.name == "runc":
        for p in cgroups_named(prefix):
            os.rmdir(p)


# ---------------------------------------------------------------------------------------------------
# Where the cgroup is, and the controllers it gets


def test_relative_path_nests_under_the_parent_of_the_runtimes_cgroup(runtime, bundle):
    """The runtime's own cgroup holds processes (its caller's at least), so no controller can be
    enabled below it: relative and absent cgroupsPaths go under its parent, with the controllers
    enabled down the path, and the limits reach the container."""
    parent = os.path.dirname(cgroup_of(os.getpid()))
    b = bundle(*LONG_RUNNING)
    resources(b)["memory"] = {"limit": 64 * MiB}
    resources(b)["pids"] = {"limit": 50}
    base = f"oci-test-{runtime.token}-rel"
    b.config["linux"]["cgroupsPath"] = base + "/inner"
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    assert cgroup_of(pid) == os.path.join(parent, base, "inner")
    d = host_dir(pid)
    assert read(d + "/memory.max") == str(64 * MiB) and read(d + "/pids.max") == "50"
    for anc in (ROOT + parent, ROOT + os.path.join(parent, base)):
        assert {"memory", "pids"} <= set(read(anc + "/cgroup.subtree_control").split()), anc
    runtime.delete(cid, force=True, check=True)
    assert not os.path.exists(d)
    remove_parents(runtime, base)
    assert cgroups_named(base) == []

    del b.config["linux"]["cgroupsPath"]             # absent: the container's id
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    assert cgroup_of(pid) == os.path.join(parent, cid)
    assert read(host_dir(pid) + "/pids.max") == "50"
    runtime.delete(cid, force=True, check=True)
    assert cgroups_named(cid) == []


def test_absolute_path_from_the_root(runtime, bundle):
    b = bundle(*LONG_RUNNING)
    resources(b)["pids"] = {"limit": 20}
    top = f"oci-test-{runtime.token}-abs"
    b.config["linux"]["cgroupsPath"] = f"/{top}/a/c"
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    assert cgroup_of(pid) == f"/{top}/a/c"
    assert read(f"{ROOT}/{top}/a/c/pids.max") == "20"
    assert "pids" in read(f"{ROOT}/{top}/a/cgroup.subtree_control").split()
    runtime.delete(cid, force=True, check=True)
    remove_parents(runtime, top)
    assert cgroups_named(top) == []


# ---------------------------------------------------------------------------------------------------
# Limits enforced


def test_memory_max_oom_kills_at_the_limit(runtime, bundle):
    b = bundle("sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?; "
                           "sleep 1000")
    resources(b)["memory"] = {"limit": 32 * MiB, "swap": 32 * MiB}   # swap = limit: no swap at all
    cid = runtime.create(b)
    d = host_dir(runtime.state(cid)["pid"])
    assert read(d + "/memory.max") == str(32 * MiB) and read(d + "/memory.swap.max") == "0"
    runtime.start(cid)
    deadline = time.monotonic() + 60
    while kv(d + "/memory.events")["oom_kill"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    events = kv(d + "/memory.events")
    assert events["oom_kill"] == 1 and events["max"] > 0, events
    if os.path.exists(d + "/memory.peak"):           # (Linux 5.19)
        assert 30 * MiB < int(read(d + "/memory.peak")) <= 32 * MiB    # reached, never passed
    assert runtime.status(cid) == "running"          # dd died, the shell goes on
    runtime.delete(cid, force=True, check=True)


def test_memory_max_seen_inside_and_dd_killed(runtime, bundle):
    b = bundle()
    resources(b)["memory"] = {"limit": 32 * MiB, "swap": 32 * MiB}
    out = runtime.output(b, "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?")
    assert out.split("\n")[0] == "dd=137", out        # SIGKILLed by the OOM killer


def test_pids_max_refuses_the_next_fork(runtime, bundle):
    b = bundle()
    resources(b)["pids"] = {"limit": 5}
    # sh + 3 sleeps is 4; one more sleep fits and the one after cannot fork
    b.config["process"]["args"] = [
        "sh", "-c", "exec 2>&1; sleep 30 & sleep 30 & sleep 30 & echo started; sleep 30 & echo fourth; "
        "sleep 30 & echo fifth"]
    r = runtime.run_container(b)
    lines = r.out.split("\n")
    assert lines[:2] == ["started", "fourth"], r.out
    assert "can't fork" in r.out and "fifth" not in r.out


def test_pids_max_and_current_on_the_host(runtime, bundle):
    b = bundle("sh", "-c", "sleep 1000 & sleep 1000 & wait")
    resources(b)["pids"] = {"limit": 7}
    cid = runtime.create(b)
    runtime.start(cid)
    d = host_dir(runtime.state(cid)["pid"])
    deadline = time.monotonic() + 10
    while int(read(d + "/pids.current")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read(d + "/pids.max") == "7" and int(read(d + "/pids.current")) == 3
    runtime.delete(cid, force=True, check=True)


def test_cpu_max_caps_a_busy_loop(runtime, bundle):
    b = bundle("sh", "-c", "while :; do :; done")
    resources(b)["cpu"] = {"quota": 20000, "period": 100000}
    cid = runtime.create(b)
    d = host_dir(runtime.state(cid)["pid"])
    assert read(d + "/cpu.max") == "20000 100000"
    runtime.start(cid)
    time.sleep(0.5)
    before = kv(d + "/cpu.stat")
    t0 = time.monotonic()
    time.sleep(3)
    after = kv(d + "/cpu.stat")
    elapsed = time.monotonic() - t0
    used = (after["usage_usec"] - before["usage_usec"]) / 1e6
    # 20% of one CPU: a busy loop uncapped would use ~100% of the wall time
    assert 0.02 * elapsed < used < 0.35 * elapsed, (used, elapsed)
    assert after["nr_throttled"] > before["nr_throttled"]
    runtime.delete(cid, force=True, check=True)


def test_cpu_weight_and_cpuset(runtime, bundle):
    if os.cpu_count() < 2:
        pytest.skip("needs two CPUs")
    b = bundle()
    resources(b)["cpu"] = {"shares": 512, "cpus": "1", "mems": "0"}
    b.config["process"]["args"] = ["sh", "-c", "grep Cpus_allowed_list /proc/self/status; sleep 1000"]
    cid = runtime.create(b)
    d = host_dir(runtime.state(cid)["pid"])
    # runc's conversion of shares to weight: 1 + ((shares - 2) * 9999) / 262142
    assert read(d + "/cpu.weight") == str(1 + ((512 - 2) * 9999) // 262142)
    assert read(d + "/cpuset.cpus") == "1" and read(d + "/cpuset.mems") == "0"
    runtime.delete(cid, force=True, check=True)
    out = runtime.output(bundle_with(bundle, {"cpu": {"cpus": "1", "mems": "0"}}),
                         "grep Cpus_allowed_list /proc/self/status")
    assert out.split() == ["Cpus_allowed_list:", "1"]


def bundle_with(bundle, res):
    b = bundle()
    resources(b).update(res)
    return b


def test_device_denied_by_the_ebpf_program(runtime, bundle):
    """/dev/null is among the default allowed devices; a node made for the test is refused (EPERM)
    unless a rule allows it (an allowed node of a major with no driver fails with ENXIO)."""
    b = bundle("true")
    b.config["linux"]["devices"] = [{"path": "/dev/oci-a", "type": "c", "major": 240, "minor": 0},
                                    {"path": "/dev/oci-b", "type": "c", "major": 240, "minor": 1}]
    resources(b)["devices"] = [{"allow": False, "access": "rwm"},
                               {"allow": True, "type": "c", "major": 240, "minor": 1, "access": "rw"}]
    b.config["process"]["args"] = ["sh", "-c", "cat /dev/oci-a; cat /dev/oci-b; echo x > /dev/null && "
                                               "echo null=ok; mknod /tmp/n c 1 3 && echo mknod=ok"]
    r = runtime.run_container(b)
    assert "null=ok" in r.out
    err = r.err.splitlines()
    assert any("oci-a" in e and "Operation not permitted" in e for e in err), r.err
    assert any("oci-b" in e and "No such device" in e for e in err), r.err
    assert "mknod=ok" not in r.out                   # 'm' is not allowed for 1:3 either


def real_seconds(text):
    """The elapsed time busybox's `time` reports ("real\t0m 4.01s")."""
    m = re.search(r"real\s+(\d+)m ([0-9.]+)s", text)
    assert m, text
    return int(m.group(1)) * 60 + float(m.group(2))


def test_io_max_throttles_direct_writes(runtime, bundle, tmp_path):
    """blockIO's weight and a write limit on the disk the test's directory is on: io.weight (or
    io.bfq.weight) and io.max hold them, and a direct write from inside takes as long as the
    limit makes it, where the same write from the test is not held back."""
    disk = disk_of(tmp_path)
    if disk is None:
        pytest.skip("the tests' directory is on no block device (io.max limits disks)")
    major, minor = disk
    data = tmp_path / "io"
    data.mkdir()
    dd = "dd if=/dev/zero of={}/{} bs=64k count=16 oflag=direct"
    t0 = time.monotonic()
    host = subprocess.run(["sh", "-c", dd.format(data, "host")], capture_output=True, text=True, timeout=120)
    outside = time.monotonic() - t0
    assert host.returncode == 0, host
    b = bundle("sh", "-c", "time " + dd.format("/data", "c") + " 2>/data/out")
    b.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind"]})
    resources(b)["blockIO"] = {"weight": 500, "throttleWriteBpsDevice": [
        {"major": major, "minor": minor, "rate": 256 * 1024}]}
    cid = runtime.create(b)
    d = host_dir(runtime.state(cid)["pid"])
    assert f"{major}:{minor} rbps=max wbps=262144 riops=max wiops=max" in read(d + "/io.max").splitlines()
    if os.path.exists(d + "/io.bfq.weight"):
        assert read(d + "/io.bfq.weight").split()[-1] == "500"
    else:
        assert read(d + "/io.weight") == f"default {1 + (500 - 10) * 9999 // 990}"  # runc's conversion
    runtime.start(cid)
    runtime.wait_status(cid, "stopped", timeout=120)
    runtime.delete(cid, check=True)
    assert (data / "c").stat().st_size == 1 << 20
    # 1 MiB at 256 KiB/s: ~4 s (the kernel lets a first slice through at once)
    inside = real_seconds((data / "out").read_text())
    assert inside >= 2.5 and inside > outside + 1.5, (inside, outside)


def test_unified_keys_written_last(runtime, bundle):
    b = bundle(*LONG_RUNNING)
    resources(b)["memory"] = {"limit": 64 * MiB}
    resources(b)["unified"] = {"memory.high": str(48 * MiB), "pids.max": "42"}
    cid = runtime.create(b)
    d = host_dir(runtime.state(cid)["pid"])
    assert read(d + "/memory.high") == str(48 * MiB) and read(d + "/pids.max") == "42"
    assert read(d + "/memory.max") == str(64 * MiB)
    runtime.delete(cid, force=True, check=True)


# ---------------------------------------------------------------------------------------------------
# The commands on the cgroup: pause/resume (cgroup.freeze), update, events, kill --all, delete


def test_pause_freezes_the_cgroup(runtime, bundle):
    b = bundle("sh", "-c", COUNTER)
    b.config["root"]["readonly"] = False
    b.copy_rootfs()
    cid = runtime.create(b)
    runtime.start(cid)
    d = host_dir(runtime.state(cid)["pid"])
    first = read_count(b)
    time.sleep(0.5)
    assert read_count(b) > first
    runtime.run("pause", cid, check=True)
    assert "frozen 1" in read(d + "/cgroup.events").splitlines()
    assert runtime.status(cid) == "paused"
    frozen = read_count(b)
    time.sleep(1)
    assert read_count(b) == frozen                   # no progress at all
    runtime.run("resume", cid, check=True)
    assert "frozen 0" in read(d + "/cgroup.events").splitlines()
    time.sleep(0.5)
    assert read_count(b) > frozen
    runtime.delete(cid, force=True, check=True)


def test_update_changes_the_v2_files(runtime, bundle):
    b = bundle(*LONG_RUNNING)
    resources(b)["memory"] = {"limit": 64 * MiB}
    resources(b)["pids"] = {"limit": 20}
    cid = runtime.create(b)
    runtime.start(cid)
    d = host_dir(runtime.state(cid)["pid"])
    runtime.run("update", "--memory", "100m", "--pids-limit", "30", "--cpu-quota", "50000",
                "--cpu-period", "100000", cid, check=True)
    assert [read(d + f) for f in ("/memory.max", "/pids.max", "/cpu.max")] == \
        [str(100 * MiB), "30", "50000 100000"]
    runtime.run("update", "-r", "-", cid, input=json.dumps({"memory": {"limit": 80 * MiB}}), check=True)
    assert read(d + "/memory.max") == str(80 * MiB) and read(d + "/pids.max") == "30"
    runtime.delete(cid, force=True, check=True)


def test_events_stats_match_the_v2_files(runtime, bundle):
    b = bundle(*LONG_RUNNING)
    resources(b)["memory"] = {"limit": 48 * MiB}
    resources(b)["pids"] = {"limit": 17}
    cid = runtime.create(b)
    runtime.start(cid)
    d = host_dir(runtime.state(cid)["pid"])
    ev = json.loads(runtime.run("events", "--stats", cid, check=True).out)
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    assert data["memory"]["usage"]["limit"] == 48 * MiB
    assert 0 < data["memory"]["usage"]["usage"] <= 48 * MiB
    assert data["pids"] == {"current": int(read(d + "/pids.current")), "limit": 17}
    assert 0 < data["cpu"]["usage"]["total"] <= kv(d + "/cpu.stat")["usage_usec"] * 1000
    runtime.delete(cid, force=True, check=True)


def test_events_report_an_oom_kill(runtime, bundle):
    b = bundle("sh", "-c", "sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1000")
    resources(b)["memory"] = {"limit": 24 * MiB, "swap": 24 * MiB}
    cid = runtime.create(b)
    with open(b.path / "events.out", "w") as out:
        events = subprocess.Popen([runtime.bin, "--root", runtime.root, "events", "--interval", "1s", cid],
                                  stdout=out, stderr=subprocess.STDOUT)
        try:
            runtime.start(cid)
            deadline = time.monotonic() + 60
            while '"oom"' not in (b.path / "events.out").read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            runtime.delete(cid, force=True, check=True)
            events.wait(timeout=30)
        finally:
            if events.poll() is None:
                events.kill()
                events.wait()
    lines = [json.loads(x) for x in (b.path / "events.out").read_text().splitlines()]
    assert {"type": "oom", "id": cid} in lines


def test_kill_all_and_delete_with_processes_outside_a_pid_namespace(runtime, bundle):
    b = bundle("sh", "-c", "sleep 1000 & sleep 1000 & wait")
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "pid"]
    cid = runtime.create(b)
    runtime.start(cid)
    d = host_dir(runtime.state(cid)["pid"])
    deadline = time.monotonic() + 10
    while len(read(d + "/cgroup.procs").split()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [int(p) for p in read(d + "/cgroup.procs").split()]
    assert sorted(json.loads(runtime.run("ps", "--format", "json", cid, check=True).out)) == sorted(pids)
    runtime.run("kill", "--all", cid, "KILL", check=True)
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in pids)
    runtime.delete(cid, force=True, check=True)
    assert not os.path.exists(d)
