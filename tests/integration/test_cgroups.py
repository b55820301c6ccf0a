"""Cgroup v1 resources enforced for real (this host's controllers), and the commands built on the
cgroups: pause/resume, update, ps, events, kill --all, delete --force.

What the process inside sees is read through the container's own `cgroup` mount (/sys/fs/cgroup/<ctrl>
is its cgroup) or from its behaviour; what the host has is read from the host's cgroup files.
"""

import json
import os
import subprocess
import time

import pytest

from helpers import LONG_RUNNING, cgroups_named, counter_bundle, pid_alive, read_count, resources, wait_exit
from helpers import assert_cgroups_gone, read_value as read

MiB = 1 << 20


def v1_mounts():
    """{controller: mountpoint} of the host's v1 hierarchies."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fs = right.split()
            if fs and fs[0] == "cgroup":
                for opt in fs[2].split(","):
                    out.setdefault(opt, left.split()[4])
    return out


def host_dir(pid, ctrl):
    """The host directory of process pid's cgroup in the v1 hierarchy of ctrl."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if ctrl in ctrls.split(","):
                return v1_mounts()[ctrl] + path
    raise AssertionError(f"process {pid} has no {ctrl} cgroup")


def need(ctrl):
    if ctrl not in v1_mounts():
        pytest.skip(f"the host does not mount the cgroup v1 {ctrl} controller")


def need_v1():
    if not v1_mounts():
        pytest.skip("cgroup v1 only: the host has no v1 hierarchy (pure v2: test_cgroups_v2_host.py)")


# ---------------------------------------------------------------------------------------------------
# Limits enforced


def test_memory_limit_oom_kills_at_limit(runtime, bundle):
    need("memory")
    b = bundle()
    resources(b)["memory"] = {"limit": 32 * MiB, "swap": 32 * MiB}
    out = runtime.output(b, "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?; "
                            "cd /sys/fs/cgroup/memory; cat memory.limit_in_bytes memory.max_usage_in_bytes; "
                            "grep oom_kill memory.oom_control")
    lines = out.split("\n")
    assert lines[0] == "dd=137", out                  # SIGKILLed by the OOM killer
    assert int(lines[1]) == 32 * MiB
    assert 30 * MiB < int(lines[2]) <= 32 * MiB, out  # it reached the limit and never went past it
    assert "oom_kill 1" in out


def test_pids_limit_stops_the_next_fork(runtime, bundle):
    need("pids")
    b = bundle()
    resources(b)["pids"] = {"limit": 5}
    # sh + 3 sleeps + cat is 5; after cat, one more sleep fits and the one after cannot fork
    b.config["process"]["args"] = [
        "sh", "-c", "exec 2>&1; sleep 30 & sleep 30 & sleep 30 & cat /sys/fs/cgroup/pids/pids.current "
        "/sys/fs/cgroup/pids/pids.max; sleep 30 & echo fourth; sleep 30 & echo fifth"]
    r = runtime.run_container(b)
    assert r.out.split("\n")[:3] == ["5", "5", "fourth"], r.out
    assert "can't fork" in r.out and "fifth" not in r.out


def test_cpu_quota_caps_usage(runtime, bundle):
    need("cpu")
    need("cpuacct")
    b = bundle()
    resources(b)["cpu"] = {"quota": 20000, "period": 100000}
    out = runtime.output(b, "while :; do :; done & sleep 2; kill $!; cd /sys/fs/cgroup; "
                            "cat cpu/cpu.cfs_quota_us cpuacct/cpuacct.usage; grep nr_throttled cpu/cpu.stat")
    quota, usage, throttled = out.split("\n")[:3]
    assert quota == "20000"
    # a busy loop for 2 s at 20% of one CPU: about 0.4 s, far from the 2 s it would use uncapped
    assert 0.1e9 < int(usage) < 0.7e9, out
    assert int(throttled.split()[1]) > 5


def test_cpuset_pins(runtime, bundle):
    need("cpuset")
    if os.cpu_count() < 2:
        pytest.skip("needs two CPUs")
    b = bundle()
    resources(b)["cpu"] = {"cpus": "1", "mems": "0"}
    out = runtime.output(b, "grep Cpus_allowed_list /proc/self/status; cat /sys/fs/cgroup/cpuset/cpuset.cpus")
    assert out.split() == ["Cpus_allowed_list:", "1", "1"]


def test_cpu_shares_and_memory_files(runtime, bundle):
    need("cpu")
    need("memory")
    b = bundle()
    resources(b)["cpu"] = {"shares": 512}
    resources(b)["memory"] = {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 128 * MiB,
                              "swappiness": 10}
    out = runtime.output(b, "cd /sys/fs/cgroup; cat cpu/cpu.shares memory/memory.limit_in_bytes "
                            "memory/memory.soft_limit_in_bytes memory/memory.memsw.limit_in_bytes "
                            "memory/memory.swappiness")
    assert out.split() == ["512", str(64 * MiB), str(32 * MiB), str(128 * MiB), "10"]


def test_device_rules(runtime, bundle):
    """/dev/null is among the default allowed devices; a node made for the test is refused unless a
    rule allows it (an allowed node of a major with no driver then fails with ENXIO, not EPERM)."""
    need("devices")
    b = bundle("true")
    b.config["linux"]["devices"] = [{"path": "/dev/oci-a", "type": "c", "major": 240, "minor": 0},
                                    {"path": "/dev/oci-b", "type": "c", "major": 240, "minor": 1}]
    resources(b)["devices"] = [{"allow": False, "access": "rwm"},
                               {"allow": True, "type": "c", "major": 240, "minor": 1, "access": "rw"}]
    b.config["process"]["args"] = ["sh", "-c", "cat /dev/oci-a; cat /dev/oci-b; echo x > /dev/null && echo null=ok"]
    r = runtime.run_container(b)
    assert "null=ok" in r.out
    err = r.err.splitlines()
    assert any("oci-a" in e and "Operation not permitted" in e for e in err), r.err
    assert any("oci-b" in e and "No such device" in e for e in err), r.err


def test_unavailable_controller_fails_create_and_leaves_nothing(runtime, bundle):
    """hugetlb is not a v1 hierarchy on a hybrid host: asking for a limit fails create, and no cgroup
    or state is left."""
    need_v1()
    if "hugetlb" in v1_mounts():
        pytest.skip("the host mounts hugetlb on cgroup v1")
    b = bundle(*LONG_RUNNING)
    resources(b)["hugepageLimits"] = [{"pageSize": "2MB", "limit": 2 * MiB}]
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", b, cid)
    runtime.refused(r, ours=("hugetlb",))
    assert runtime.status(cid) is None
    assert cgroups_named(cid) == []


@pytest.mark.ociruntime_only
@pytest.mark.parametrize("res,words", [
    ({"unified": {"memory.max": "1000000"}}, "cannot use unified on cgroup v1"),
    ({"memory": {"limit": 1 << 20, "swappiness": 200}}, "swappiness"),
    ({"cpu": {"shares": 1 << 40}}, "cpu-shares"),
    ({"cpu": {"cpus": "99"}}, "cpuset.cpus"),
])
def test_impossible_resource_fails_create(runtime, bundle, res, words):
    need_v1()
    b = bundle(*LONG_RUNNING)
    resources(b).update(res)
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", b, cid)
    runtime.refused(r, words)
    assert runtime.status(cid) is None and cgroups_named(cid) == []


def test_relative_and_absolute_cgroups_path(runtime, bundle):
    need("pids")
    b = bundle(*LONG_RUNNING)
    base = f"oci-test-{runtime.token}-nest"
    b.config["linux"]["cgroupsPath"] = base + "/inner"
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    with open("/proc/self/cgroup") as f:
        own = {c: p for _, c, p in (ln.rstrip("\n").split(":", 2) for ln in f)}
    with open(f"/proc/{pid}/cgroup") as f:
        theirs = {c: p for _, c, p in (ln.rstrip("\n").split(":", 2) for ln in f)}
    for ctrl, path in theirs.items():
        assert path == os.path.join(own[ctrl], base, "inner"), (ctrl, path)
    runtime.delete(cid, force=True, check=True)
    assert not any(p.endswith("/inner") for p in cgroups_named(base))
    if runtime.name == "runc":              # runc leaves the parents it made; ociruntime removes them
        for p in cgroups_named(base):
            os.rmdir(p)
    assert cgroups_named(base) == []

    b.config["linux"]["cgroupsPath"] = f"/oci-test-{runtime.token}-abs/c"
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    assert os.path.isdir(v1_mounts()["pids"] + f"/oci-test-{runtime.token}-abs/c")
    assert host_dir(pid, "pids") == v1_mounts()["pids"] + f"/oci-test-{runtime.token}-abs/c"
    runtime.delete(cid, force=True, check=True)
    if runtime.name == "runc":
        for p in cgroups_named(f"oci-test-{runtime.token}-abs"):
            os.rmdir(p)
    assert cgroups_named(f"oci-test-{runtime.token}-abs") == []


@pytest.mark.needs_runc
def test_files_match_runc(runtime, runc, bundle):
    """The same resources under runc and under the runtime give the same cgroup files."""
    need_v1()
    res = {"memory": {"limit": 64 * MiB, "reservation": 16 * MiB, "swap": 96 * MiB, "swappiness": 20},
           "cpu": {"shares": 256, "quota": 25000, "period": 50000, "cpus": "0", "mems": "0"},
           "pids": {"limit": 33},
           "blockIO": {"throttleReadBpsDevice": [{"major": 7, "minor": 0, "rate": 1 << 20}],
                       "throttleWriteIOPSDevice": [{"major": 7, "minor": 0, "rate": 100}]}}
    files = {"memory": ["memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes",
                        "memory.swappiness", "memory.oom_control"],
             "cpu": ["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"],
             "cpuset": ["cpuset.cpus", "cpuset.mems"], "pids": ["pids.max"],
             "blkio": ["blkio.throttle.read_bps_device", "blkio.throttle.write_iops_device"]}
    seen = []
    for rt in (runc, runtime):
        b = bundle(*LONG_RUNNING)
        resources(b).update(res)
        cid = rt.create(b)
        pid = rt.state(cid)["pid"]
        seen.append({f: read(os.path.join(host_dir(pid, ctrl), f)) for ctrl, names in files.items()
                     for f in names})
        rt.delete(cid, force=True, check=True)
    assert seen[0] == seen[1]


# ---------------------------------------------------------------------------------------------------
# pause / resume, update, ps, events, kill --all, delete --force


# rename, so that a freeze between truncating and writing never leaves an empty file
def test_pause_resume_observed_from_outside(runtime, bundle):
    b = counter_bundle(bundle)
    cid = runtime.create(b)
    runtime.start(cid)
    first = read_count(b)
    time.sleep(0.2)
    assert read_count(b) > first                     # running: it makes progress
    runtime.run("pause", cid, check=True)
    assert runtime.status(cid) == "paused"
    listed = json.loads(runtime.run("list", "--format", "json", check=True).out)
    assert [c["status"] for c in listed if c["id"] == cid] == ["paused"]
    frozen = read_count(b)
    time.sleep(0.4)
    assert read_count(b) == frozen                   # paused: no progress at all
    r = runtime.run("pause", cid)
    runtime.refused(r)                               # already paused
    runtime.run("resume", cid, check=True)
    assert runtime.status(cid) == "running"
    time.sleep(0.2)
    assert read_count(b) > frozen
    r = runtime.run("resume", cid)
    runtime.refused(r, "not paused")


LIMITS = ("while :; do cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
          "/sys/fs/cgroup/cpu/cpu.cfs_quota_us > /tmp/l.new; mv /tmp/l.new /tmp/limits; sleep 0.05; done")


def read_limits(b, want=None, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = (b.own_rootfs / "tmp" / "limits").read_text().split()
        except FileNotFoundError:
            got = None
        if got and (want is None or got == want or time.monotonic() > deadline):
            return got
        if time.monotonic() > deadline:
            raise AssertionError("no limits file from the container")
        time.sleep(0.05)


def test_update_observed_inside(runtime, bundle):
    need("memory")
    need("pids")
    b = counter_bundle(bundle, LIMITS)
    resources(b)["memory"] = {"limit": 64 * MiB}
    resources(b)["pids"] = {"limit": 20}
    cid = runtime.create(b)
    runtime.start(cid)
    assert read_limits(b) == [str(64 * MiB), "20", "-1"]
    runtime.run("update", "--memory", "100m", "--pids-limit", "30", "--cpu-quota", "50000", cid, check=True)
    assert read_limits(b, [str(100 * MiB), "30", "50000"]) == [str(100 * MiB), "30", "50000"]
    # from a file, and from stdin
    res = b.path / "res.json"
    res.write_text(json.dumps({"memory": {"limit": 80 * MiB}, "pids": {"limit": 25}}))
    runtime.run("update", "--resources", res, cid, check=True)
    assert read_limits(b, [str(80 * MiB), "25", "50000"]) == [str(80 * MiB), "25", "50000"]
    runtime.run("update", "-r", "-", cid, input=json.dumps({"cpu": {"quota": 40000}}), check=True)
    assert read_limits(b, [str(80 * MiB), "25", "40000"]) == [str(80 * MiB), "25", "40000"]


def test_failed_update_keeps_old_limits(runtime, bundle):
    need("memory")
    need("cpuset")
    b = counter_bundle(bundle, LIMITS)
    resources(b)["memory"] = {"limit": 64 * MiB}
    resources(b)["cpu"] = {"quota": 30000, "period": 100000}
    cid = runtime.create(b)
    runtime.start(cid)
    before = read_limits(b)
    # memory below what the container uses: the kernel refuses it
    r = runtime.run("update", "--memory", "4k", cid)
    runtime.refused(r)
    # a quota that is written, then a cpuset that is refused: the quota goes back
    r = runtime.run("update", "--cpu-quota", "70000", "--cpuset-cpus", "99", cid)
    runtime.refused(r)
    time.sleep(0.3)
    assert read_limits(b) == before
    pid = runtime.state(cid)["pid"]
    assert read(os.path.join(host_dir(pid, "cpu"), "cpu.cfs_quota_us")) == "30000"
    # and the next update still starts from the recorded values
    runtime.run("update", "--pids-limit", "9", cid, check=True)
    assert read(os.path.join(host_dir(pid, "cpu"), "cpu.cfs_quota_us")) == "30000"
    assert read(os.path.join(host_dir(pid, "memory"), "memory.limit_in_bytes")) == str(64 * MiB)


def test_update_stopped_container_refused(runtime, bundle):
    cid = runtime.create(bundle("true"))
    runtime.start(cid)
    runtime.wait_status(cid, "stopped")
    r = runtime.run("update", "--memory", "100m", cid)
    runtime.refused(r, "not running")
    assert runtime.run("ps", "--format", "json", cid, check=True).out.strip() == "null"


@pytest.mark.ociruntime_only
def test_update_bad_resources_json(runtime, bundle):
    cid = runtime.create(bundle(*LONG_RUNNING))
    for text in ("{", '{"memory": {"limit": "lots"}}', '[1]'):
        r = runtime.run("update", "-r", "-", cid, input=text)
        runtime.refused(r)
    r = runtime.run("update", "--memory", "1x", cid)
    runtime.refused(r, "invalid value for --memory")


def test_ps(runtime, bundle):
    b = bundle("sh", "-c", "sleep 1000 & sleep 1000 & wait")
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "pid"]
    cid = runtime.create(b)
    runtime.start(cid)
    init = runtime.state(cid)["pid"]
    deadline = time.monotonic() + 3
    while True:
        pids = json.loads(runtime.run("ps", "--format", "json", cid, check=True).out)
        if len(pids) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert isinstance(pids, list) and init in pids and len(pids) == 3
    table = runtime.run("ps", cid, check=True).out.splitlines()
    assert "PID" in table[0].split()
    col = table[0].split().index("PID")
    assert sorted(int(line.split()[col]) for line in table[1:]) == sorted(pids)
    # kill --all reaches every process, not just the init
    runtime.run("kill", "--all", cid, "KILL", check=True)
    for p in pids:
        if p == init:
            wait_exit(p)
    deadline = time.monotonic() + 3
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(pid_alive(p) for p in pids)
    runtime.delete(cid, check=True)
    assert cgroups_named(cid) == []


def test_delete_force_kills_everything_inside(runtime, bundle):
    """Without a pid namespace the init's death does not take its children along: delete --force
    must kill what is in the cgroup before it can remove it."""
    b = bundle("sh", "-c", "sleep 1000 & sleep 1000 & wait")
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "pid"]
    cid = runtime.create(b)
    runtime.start(cid)
    time.sleep(0.2)
    pids = json.loads(runtime.run("ps", "--format", "json", cid, check=True).out)
    assert len(pids) == 3
    runtime.delete(cid, force=True, check=True)
    deadline = time.monotonic() + 3
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(pid_alive(p) for p in pids)
    assert_cgroups_gone(runtime, cid)


def test_events_stats_match_cgroup_files(runtime, bundle):
    need("memory")
    need("pids")
    b = bundle(*LONG_RUNNING)
    resources(b)["memory"] = {"limit": 48 * MiB}
    resources(b)["pids"] = {"limit": 17}
    cid = runtime.create(b)
    runtime.start(cid)
    pid = runtime.state(cid)["pid"]
    out = runtime.run("events", "--stats", cid, check=True).out
    assert out.count("\n") == 1
    ev = json.loads(out)
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    for key in ("cpu", "memory", "pids", "blkio", "hugetlb"):
        assert key in data
    mem = host_dir(pid, "memory")
    assert data["memory"]["usage"]["limit"] == 48 * MiB == int(read(mem + "/memory.limit_in_bytes"))
    assert 0 < data["memory"]["usage"]["usage"] <= 48 * MiB
    assert data["memory"]["raw"]["hierarchical_memory_limit"] == 48 * MiB
    pids = host_dir(pid, "pids")
    assert data["pids"] == {"current": int(read(pids + "/pids.current")), "limit": 17}
    total = data["cpu"]["usage"]["total"]
    assert 0 < total <= int(read(host_dir(pid, "cpuacct") + "/cpuacct.usage"))
    assert sum(data["cpu"]["usage"]["percpu"]) == pytest.approx(total, rel=0.05)


def test_events_reports_oom(runtime, bundle):
    need("memory")
    b = bundle("sh", "-c", "sleep 0.5; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1000")
    resources(b)["memory"] = {"limit": 24 * MiB, "swap": 24 * MiB}
    cid = runtime.create(b)
    with open(b.path / "events.out", "w") as out:
        events = subprocess.Popen([runtime.bin, "--root", runtime.root, "events", "--interval", "300ms", cid],
                                  stdout=out, stderr=subprocess.STDOUT)
        try:
            runtime.start(cid)
            deadline = time.monotonic() + 10
            while '"oom"' not in (b.path / "events.out").read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            runtime.kill(cid, "KILL", check=True)
            if runtime.name == "ociruntime":         # its stream ends when the container stops
                assert events.wait(timeout=10) == 0
            else:                                    # runc's when the cgroup goes away
                runtime.delete(cid, force=True, check=True)
                events.wait(timeout=10)
        finally:
            if events.poll() is None:
                events.kill()
                events.wait()
    lines = [json.loads(x) for x in (b.path / "events.out").read_text().splitlines()]
    assert {"type": "oom", "id": cid} in lines
    stats = [e for e in lines if e["type"] == "stats"]
    assert stats and all(e["id"] == cid and "memory" in e["data"] for e in stats)


def test_events_of_stopped_container_refused(runtime, bundle):
    cid = runtime.create(bundle("true"))
    runtime.start(cid)
    runtime.wait_status(cid, "stopped")
    r = runtime.run("events", "--stats", cid)
    runtime.refused(r, "is not running")


def test_delete_force_paused_container(runtime, bundle):
    b = bundle("sh", "-c", "sleep 1000 & wait")
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "pid"]
    cid = runtime.create(b)
    runtime.start(cid)
    time.sleep(0.1)
    pids = json.loads(runtime.run("ps", "--format", "json", cid, check=True).out)
    runtime.run("pause", cid, check=True)
    runtime.delete(cid, force=True, check=True)
    deadline = time.monotonic() + 3
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(pid_alive(p) for p in pids)
    assert_cgroups_gone(runtime, cid)
    assert runtime.status(cid) is None


def test_delete_removes_sub_cgroups(runtime, bundle):
    # cgroups made inside the container's (by a process inside, or for exec --cgroup) go with it,
    # deepest first; the container's own directories are removed only after them
    need("pids")
    need("memory")
    cid = runtime.create(bundle(*LONG_RUNNING))
    init = runtime.state(cid)["pid"]
    made, tops = [], [host_dir(init, "pids"), host_dir(init, "memory")]
    try:
        for top in tops:
            for sub in ("a", "a/b", "a/b/c", "d"):
                made.append(os.path.join(top, sub))
                os.mkdir(made[-1])
        assert runtime.delete(cid, force=True).rc == 0
        assert [d for d in made + tops if os.path.exists(d)] == []
        assert runtime.status(cid) is None
    finally:
        for d in reversed(made):  # what a failed delete left (the fixture removes the container's own)
            if os.path.isdir(d):
                os.rmdir(d)
