"""The systemd cgroup driver (--systemd-cgroup) on a pure cgroup v2 host with systemd as PID 1
(tests/vm/ci.sh runs these in one): the transient scope and its slice, the resources as unit
properties and files, enforced by the kernel (an OOM kill at MemoryMax, TasksMax refusing a fork, a
device outside DeviceAllow denied), update through the unit, exec/pause/resume/ps/kill --all on the
scope, and the unit stopped by delete, also after the runtime was killed.  Each passes with runc too.
Where systemd is not PID 1, ociruntime refuses the flag in one line and leaves nothing.
"""

import json
import os
import signal
import subprocess
import time

import pytest

from helpers import LONG_RUNNING, disk_of, pid_alive, resources, wait_exit
from helpers import cgroup2_of as cgroup_of, read_kv as kv, read_value as read

MiB = 1 << 20
ROOT = "/sys/fs/cgroup"


def pure_v2():
    with open("/proc/self/mountinfo") as f:
        return [line.partition(" - ")[2].split()[0] for line in f if " - cgroup" in line] == ["cgroup2"]


SYSTEMD = os.path.isdir("/run/systemd/system") and pure_v2()
needs_systemd = pytest.mark.skipif(not SYSTEMD, reason="needs systemd as PID 1 on a pure cgroup v2 host "
                                   "(tests/vm/ci.sh runs these in one)")


def show(unit, *props):
    r = subprocess.run(["systemctl", "show", "--property=" + ",".join(props), unit], capture_output=True,
                       text=True, timeout=60)
    out = {}
    for line in r.stdout.splitlines():
        if "=" in line:     # a list property (DeviceAllow) comes as one line per entry
            k, v = line.split("=", 1)
            out[k] = out[k] + "\n" + v if k in out else v
    return out


def sd_create(runtime, b):
    return runtime.create(b)


def scope_path(runtime, b, name):
    prefix = "oci-test-" + runtime.token
    b.config["linux"]["cgroupsPath"] = f"system.slice:{prefix}:{name}"
    return f"{prefix}-{name}.scope"


@pytest.fixture
def sd(runtime):
    """Runs the runtime with --systemd-cgroup for every command of the test."""
    runtime.global_args = ["--systemd-cgroup"]
    return runtime


@pytest.mark.ociruntime_only
@pytest.mark.skipif(SYSTEMD, reason="systemd is PID 1 here: the refusal is for hosts without it")
def test_refused_without_systemd(runtime, bundle):
    b = bundle(*LONG_RUNNING)
    b.config["linux"]["cgroupsPath"] = "system.slice:oci:x"
    cid = runtime.new_id()
    r = runtime.run("--systemd-cgroup", "create", "--bundle", b, cid)
    runtime.refused(r, "systemd")
    assert runtime.status(cid) is None


@needs_systemd
def test_scope_in_its_slice_with_the_limits_enforced(sd, bundle):
    b = bundle("sh", "-c", "sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1000")
    unit = scope_path(sd, b, "mem")
    resources(b)["memory"] = {"limit": 32 * MiB, "swap": 32 * MiB}
    resources(b)["pids"] = {"limit": 20}
    cid = sd_create(sd, b)
    pid = sd.state(cid)["pid"]
    assert cgroup_of(pid) == f"/system.slice/{unit}"
    props = show(unit, "ActiveState", "Slice", "Delegate", "MemoryMax", "TasksMax", "ControlGroup")
    assert props == {"ActiveState": "active", "Slice": "system.slice", "Delegate": "yes",
                     "MemoryMax": str(32 * MiB), "TasksMax": "20", "ControlGroup": f"/system.slice/{unit}"}
    d = ROOT + f"/system.slice/{unit}"
    assert read(d + "/memory.max") == str(32 * MiB) and read(d + "/pids.max") == "20"
    assert read(d + "/memory.swap.max") == "0"
    sd.start(cid)
    deadline = time.monotonic() + 60
    while kv(d + "/memory.events")["oom_kill"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kv(d + "/memory.events")["oom_kill"] == 1           # dd killed at MemoryMax
    assert sd.status(cid) == "running"
    sd.delete(cid, force=True, check=True)
    assert not os.path.exists(d)
    assert show(unit, "ActiveState")["ActiveState"] == "inactive"


@needs_systemd
def test_tasks_max_refuses_the_next_fork(sd, bundle):
    b = bundle("sh", "-c", "exec 2>&1; sleep 30 & sleep 30 & sleep 30 & echo started; sleep 30 & echo fourth; "
                           "sleep 30 & echo fifth")
    scope_path(sd, b, "pids")
    resources(b)["pids"] = {"limit": 5}
    r = sd.run_container(b)
    lines = r.out.split("\n")
    assert lines[:2] == ["started", "fourth"], r.out
    assert "can't fork" in r.out and "fifth" not in r.out


@needs_systemd
def test_default_cgroups_path_is_runc_id_scope_in_system_slice(sd, bundle):
    b = bundle(*LONG_RUNNING)
    b.config["linux"].pop("cgroupsPath", None)
    cid = sd_create(sd, b)
    pid = sd.state(cid)["pid"]
    assert cgroup_of(pid) == f"/system.slice/runc-{cid}.scope"
    assert show(f"runc-{cid}.scope", "ActiveState")["ActiveState"] == "active"
    sd.delete(cid, force=True, check=True)
    assert show(f"runc-{cid}.scope", "ActiveState")["ActiveState"] == "inactive"


@needs_systemd
def test_nested_slice(sd, bundle):
    top = "ocitest" + sd.token
    b = bundle(*LONG_RUNNING)
    b.config["linux"]["cgroupsPath"] = f"{top}-inner.slice:oci-test-{sd.token}:nest"
    resources(b)["memory"] = {"limit": 64 * MiB}
    unit = f"oci-test-{sd.token}-nest.scope"
    try:
        cid = sd_create(sd, b)
        path = f"/{top}.slice/{top}-inner.slice/{unit}"
        assert cgroup_of(sd.state(cid)["pid"]) == path
        assert read(ROOT + path + "/memory.max") == str(64 * MiB)
        assert show(f"{top}-inner.slice", "Slice", "ActiveState") == {"Slice": f"{top}.slice",
                                                                       "ActiveState": "active"}
        sd.delete(cid, force=True, check=True)
        assert not os.path.exists(ROOT + path)
    finally:
        subprocess.run(["systemctl", "stop", f"{top}-inner.slice", f"{top}.slice"], timeout=60)
    assert not os.path.exists(ROOT + f"/{top}.slice")


@needs_systemd
def test_cpu_and_device_properties(sd, bundle):
    b = bundle("sh", "-c", "cat /dev/oci-a; cat /dev/oci-b; echo x > /dev/null && echo null=ok; sleep 1000")
    unit = scope_path(sd, b, "dev")
    b.config["linux"]["devices"] = [{"path": "/dev/oci-a", "type": "c", "major": 240, "minor": 0},
                                    {"path": "/dev/oci-b", "type": "c", "major": 240, "minor": 1}]
    resources(b)["devices"] = [{"allow": False, "access": "rwm"},
                               {"allow": True, "type": "c", "major": 240, "minor": 1, "access": "rw"}]
    resources(b)["cpu"] = {"quota": 20000, "period": 100000, "shares": 1024}
    cid = sd_create(sd, b)
    props = show(unit, "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec", "CPUWeight", "DevicePolicy", "DeviceAllow")
    assert props["CPUQuotaPerSecUSec"] == "200ms" and props["CPUQuotaPeriodUSec"] == "100ms"
    assert props["CPUWeight"] == "39"                 # runc's conversion of 1024 shares
    assert props["DevicePolicy"] == "strict"
    assert "/dev/char/1:3 rwm" in props["DeviceAllow"]
    if sd.name == "ociruntime":     # runc 1.1.5 (Debian 12's) leaves out nodes the host does not have
        assert "/dev/char/240:1 rw" in props["DeviceAllow"]
    d = ROOT + f"/system.slice/{unit}"
    assert read(d + "/cpu.max") == "20000 100000" and read(d + "/cpu.weight") == "39"
    sd.delete(cid, force=True, check=True)


@needs_systemd
def test_device_outside_device_allow_is_denied(sd, bundle):
    b = bundle("sh", "-c", "cat /dev/oci-a; cat /dev/oci-b; echo x > /dev/null && echo null=ok")
    scope_path(sd, b, "dev2")
    b.config["linux"]["devices"] = [{"path": "/dev/oci-a", "type": "c", "major": 240, "minor": 0},
                                    {"path": "/dev/oci-b", "type": "c", "major": 240, "minor": 1}]
    resources(b)["devices"] = [{"allow": False, "access": "rwm"},
                               {"allow": True, "type": "c", "major": 240, "minor": 1, "access": "rw"}]
    r = sd.run_container(b)
    assert "null=ok" in r.out
    err = r.err.splitlines()
    assert any("oci-a" in e and "Operation not permitted" in e for e in err), r.err
    assert any("oci-b" in e and "No such device" in e for e in err), r.err


@needs_systemd
def test_update_sets_unit_properties_and_files(sd, bundle):
    b = bundle(*LONG_RUNNING)
    unit = scope_path(sd, b, "upd")
    resources(b)["memory"] = {"limit": 64 * MiB}
    resources(b)["pids"] = {"limit": 20}
    cid = sd_create(sd, b)
    sd.start(cid)
    sd.run("update", "--memory", "100m", "--pids-limit", "30", "--cpu-quota", "50000",
           "--cpu-period", "100000", cid, check=True)
    assert show(unit, "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec") == {
        "MemoryMax": str(100 * MiB), "TasksMax": "30", "CPUQuotaPerSecUSec": "500ms"}
    d = ROOT + f"/system.slice/{unit}"
    assert [read(d + f) for f in ("/memory.max", "/pids.max", "/cpu.max")] == [str(100 * MiB), "30",
                                                                                "50000 100000"]
    sd.delete(cid, force=True, check=True)


@needs_systemd
def test_memory_cpuset_and_io_properties_and_files(sd, bundle, tmp_path):
    """The rest of the resources systemd has a property for: MemoryLow, MemorySwapMax,
    AllowedCPUs/AllowedMemoryNodes (the processes inside confined to them by the kernel), and the
    IO weight and limits (beyond runc 1.1, which writes only the files), each also in the scope's
    cgroup files."""
    disk = disk_of(tmp_path)
    b = bundle(*LONG_RUNNING)
    unit = scope_path(sd, b, "more")
    resources(b)["memory"] = {"limit": 64 * MiB, "reservation": 16 * MiB, "swap": 96 * MiB}
    resources(b)["cpu"] = {"cpus": "0", "mems": "0"}
    if disk:
        major, minor = disk
        resources(b)["blockIO"] = {"weight": 500,
                                   "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 4 * MiB}],
                                   "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 300}]}
    cid = sd_create(sd, b)
    sd.start(cid)
    d = ROOT + f"/system.slice/{unit}"
    assert show(unit, "MemoryLow", "MemorySwapMax", "AllowedCPUs", "AllowedMemoryNodes") == {
        "MemoryLow": str(16 * MiB), "MemorySwapMax": str(32 * MiB), "AllowedCPUs": "0", "AllowedMemoryNodes": "0"}
    assert [read(d + f) for f in ("/memory.low", "/memory.swap.max", "/cpuset.cpus", "/cpuset.mems")] == [
        str(16 * MiB), str(32 * MiB), "0", "0"]
    seen = sd.run("exec", cid, "grep", "-h", "-E", "^(Cpus|Mems)_allowed_list", "/proc/1/status",
                  "/proc/self/status", check=True).out.split()
    assert seen == ["Cpus_allowed_list:", "0", "Mems_allowed_list:", "0"] * 2, seen
    if disk:
        dev = f"{major}:{minor}"
        assert f"{dev} rbps={4 * MiB} wbps=max riops=max wiops=300" in read(d + "/io.max").splitlines()
        if sd.name == "ociruntime":
            io = show(unit, "IOWeight", "IOReadBandwidthMax", "IOWriteIOPSMax")
            assert io["IOWeight"] == str(1 + (500 - 10) * 9999 // 990)       # runc's conversion
            assert io["IOReadBandwidthMax"].split() == [f"/dev/block/{dev}", str(4 * MiB)]
            assert io["IOWriteIOPSMax"].split() == [f"/dev/block/{dev}", "300"]
    sd.delete(cid, force=True, check=True)
    assert not os.path.exists(d)


@needs_systemd
def test_events_stats_of_the_scope(sd, bundle):
    """`events --stats` with the systemd driver reads the scope's cgroup."""
    b = bundle(*LONG_RUNNING)
    unit = scope_path(sd, b, "ev")
    resources(b)["memory"] = {"limit": 48 * MiB}
    resources(b)["pids"] = {"limit": 17}
    cid = sd_create(sd, b)
    sd.start(cid)
    d = ROOT + f"/system.slice/{unit}"
    ev = json.loads(sd.run("events", "--stats", cid, check=True).out)
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    assert data["memory"]["usage"]["limit"] == 48 * MiB
    assert 0 < data["memory"]["usage"]["usage"] <= 48 * MiB
    assert data["pids"] == {"current": int(read(d + "/pids.current")), "limit": 17}
    sd.delete(cid, force=True, check=True)


@needs_systemd
def test_exec_pause_resume_ps_kill_all_on_the_scope(sd, bundle):
    b = bundle("sh", "-c", "sleep 1000 & sleep 1000 & wait")
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "pid"]
    unit = scope_path(sd, b, "ops")
    cid = sd_create(sd, b)
    sd.start(cid)
    d = ROOT + f"/system.slice/{unit}"
    r = sd.run("exec", cid, "cat", "/proc/self/cgroup", check=True)
    assert r.out.strip() == f"0::/system.slice/{unit}"
    deadline = time.monotonic() + 20
    while len(read(d + "/cgroup.procs").split()) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = sorted(int(p) for p in read(d + "/cgroup.procs").split())
    assert len(pids) == 3
    assert sorted(json.loads(sd.run("ps", "--format", "json", cid, check=True).out)) == pids
    sd.run("pause", cid, check=True)
    assert "frozen 1" in read(d + "/cgroup.events").splitlines() and sd.status(cid) == "paused"
    sd.run("resume", cid, check=True)
    assert "frozen 0" in read(d + "/cgroup.events").splitlines() and sd.status(cid) == "running"
    sd.run("kill", "--all", cid, "KILL", check=True)
    deadline = time.monotonic() + 20
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(pid_alive(p) for p in pids)
    sd.run("delete", cid, check=True)
    assert show(unit, "ActiveState")["ActiveState"] == "inactive" and not os.path.exists(d)


@needs_systemd
def test_delete_force_after_the_runtime_was_killed(sd, bundle):
    """`run` in the foreground, killed with SIGKILL: the container goes on in its scope; delete
    --force kills it and stops the unit."""
    b = bundle(*LONG_RUNNING)
    unit = scope_path(sd, b, "killed")
    cid = sd.new_id()
    sd.ids.append(cid)
    p = subprocess.Popen([sd.bin, "--root", sd.root, *sd.global_args, "run", "--bundle", b, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while sd.status(cid) != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sd.status(cid) == "running"
        init = sd.state(cid)["pid"]
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert pid_alive(init) and show(unit, "ActiveState")["ActiveState"] == "active"
    sd.run("delete", "--force", cid, check=True)
    wait_exit(init, 20)
    assert show(unit, "ActiveState")["ActiveState"] == "inactive"
    assert not os.path.exists(ROOT + f"/system.slice/{unit}") and sd.status(cid) is None
