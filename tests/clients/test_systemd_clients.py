"""podman and containerd with the systemd cgroup manager, on a pure cgroup v2 host with systemd as PID 1
(tests/vm/ci.sh runs these in one): what a typical podman or Kubernetes node does.

- podman, `cgroup_manager = "systemd"` and the runtime under test as its OCI runtime: run, exec into,
  limits (--memory, --pids-limit, --cpus) seen in the scope podman asked for and enforced (an OOM kill,
  a refused fork), rm.
- containerd through ctr, the runtime as the shim's binary with the systemd cgroup driver
  (`--runc-binary`, `--runc-systemd-cgroup`: BinaryName and SystemdCgroup = true of the runc.v2
  shim): run, exec, memory and cpu limits enforced in its scope, rm.

Each test's containers are removed and their scope must be gone.  Private configuration and storage
under /tmp/oci-test-<token>-sd*, removed after the module.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

import helpers
from .clientlib import oci_archive, run, wait_for

MiB = 1 << 20


def _systemd_v2():
    if not os.path.isdir("/run/systemd/system"):
        return False
    with open("/proc/self/mountinfo") as f:
        return [ln.partition(" - ")[2].split()[0] for ln in f if " - cgroup" in ln] == ["cgroup2"]


pytestmark = pytest.mark.skipif(not _systemd_v2(), reason="needs systemd as PID 1 on a pure cgroup v2 host "
                                "(tests/vm/ci.sh runs these in one)")


def show(unit, *props):
    r = subprocess.run(["systemctl", "show", "--property=" + ",".join(props), unit], capture_output=True,
                       text=True, timeout=60)
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def read(path):
    with open(path) as f:
        return f.read().strip()


def cgroup_of(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return next(ln[3:].strip() for ln in f if ln.startswith("0::"))


# ---------------------------------------------------------------------------------------------------
# podman


@pytest.fixture(scope="module")
def podman(runtime_bin, session_token, rootfs_tar):
    if not shutil.which("podman") or not shutil.which("conmon"):
        pytest.skip("podman/conmon not installed")
    w = f"/tmp/{helpers.ID_PREFIX}{session_token}-sdpodman"
    os.makedirs(w, mode=0o711)
    name = os.path.basename(runtime_bin)
    with open(os.path.join(w, "storage.conf"), "w") as f:
        f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{w}/root"\nrunroot = "{w}/runroot"\n')
    with open(os.path.join(w, "containers.conf"), "w") as f:
        f.write(f"""[containers]
log_driver = "k8s-file"
netns = "none"
[engine]
cgroup_manager = "systemd"
events_logger = "file"
events_logfile_path = "{w}/events.log"
tmp_dir = "{w}/tmp"
volume_path = "{w}/volumes"
static_dir = "{w}/root/libpod"
lock_type = "file"
runtime_supports_json = ["{name}", "runc", "crun"]
[engine.runtimes]
{name} = ["{runtime_bin}"]
""")
    env = dict(os.environ, CONTAINERS_CONF=f"{w}/containers.conf", CONTAINERS_STORAGE_CONF=f"{w}/storage.conf")
    image = f"localhost/{helpers.ID_PREFIX}busybox:latest"

    def pm(*args, check=False, timeout=300):
        return run(["podman", "--runtime", name, *[str(a) for a in args]], env=env, timeout=timeout, check=check)
    pm.image = image
    try:
        pm("import", "-q", rootfs_tar, image, check=True)
        yield pm
    finally:
        pm("rm", "-a", "-f", "-t", "0")
        pm("system", "reset", "-f")
        subprocess.run(["umount", "-R", w], capture_output=True)
        shutil.rmtree(w, ignore_errors=True)


def _gone(unit, cgroup):
    wait_for(lambda: show(unit, "ActiveState")["ActiveState"] == "inactive", 60, f"{unit} stopped")
    wait_for(lambda: not os.path.exists("/sys/fs/cgroup" + cgroup), 60, f"{cgroup} removed")


def test_podman_run_exec_limits_rm(podman):
    r = podman("run", "-d", "--memory", "64m", "--pids-limit", "10", "--cpus", "0.5", podman.image,
               "sleep", "1000", check=True)
    cid = r.out.strip()
    try:
        pid = int(podman("inspect", "--format", "{{.State.Pid}}", cid, check=True).out)
        unit = f"libpod-{cid}.scope"
        cg = cgroup_of(pid)
        assert cg == f"/machine.slice/{unit}"          # podman's cgroupsPath machine.slice:libpod:ID
        assert show(unit, "ActiveState", "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec") == {
            "ActiveState": "active", "MemoryMax": str(64 * MiB), "TasksMax": "10", "CPUQuotaPerSecUSec": "500ms"}
        d = "/sys/fs/cgroup" + cg
        assert [read(d + "/memory.max"), read(d + "/pids.max"), read(d + "/cpu.max")] == \
            [str(64 * MiB), "10", "50000 100000"]
        # exec runs in the container's scope (the container has its own cgroup namespace: "/")
        r = podman("exec", cid, "sh", "-c", "cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max", check=True)
        assert r.out.split() == ["0::/", str(64 * MiB)]
        podman("rm", "-f", "-t", "0", cid, check=True)
        _gone(unit, cg)
    finally:
        podman("rm", "-f", "-t", "0", cid)


def test_podman_limits_enforced(podman):
    r = podman("run", "--rm", "--memory", "32m", "--memory-swap", "32m", podman.image, "sh", "-c",
               "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?", check=True)
    assert r.out.strip() == "dd=137", r                # killed by the OOM killer at the limit
    r = podman("run", "--rm", "--pids-limit", "5", podman.image, "sh", "-c",
               "exec 2>&1; sleep 30 & sleep 30 & sleep 30 & echo started; sleep 30 & echo fourth; "
               "sleep 30 & echo fifth; kill %1 %2 %3 %4")
    assert r.out.split("\n")[:2] == ["started", "fourth"], r
    assert "can't fork" in r.out and "fifth" not in r.out
    assert podman("ps", "-aq").out.strip() == ""


# ---------------------------------------------------------------------------------------------------
# containerd


@pytest.fixture(scope="module")
def ctr(runtime_bin, session_token, rootfs_tar):
    for b in ("containerd", "ctr", "containerd-shim-runc-v2"):
        if not shutil.which(b):
            pytest.skip(f"{b} not installed")
    w = f"/tmp/{helpers.ID_PREFIX}{session_token}-sdctd"
    for d in ("root", "state", "fifo", "runc-root", "opt"):
        os.makedirs(os.path.join(w, d))
    sock = os.path.join(w, "containerd.sock")
    with open(os.path.join(w, "config.toml"), "w") as f:
        f.write(f"""version = 2
root = "{w}/root"
state = "{w}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.restart"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{w}/opt"
""")
    logf = open(os.path.join(w, "containerd.log"), "wb")
    daemon = subprocess.Popen(["containerd", "--config", os.path.join(w, "config.toml")],
                              stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
    logf.close()
    ns = f"{helpers.ID_PREFIX}{session_token}-sd"

    def c(*args, check=False, timeout=300):
        return run(["ctr", "--address", sock, "--namespace", ns, *[str(a) for a in args]], timeout=timeout,
                   check=check)
    c.image = f"docker.io/library/{helpers.ID_PREFIX}busybox:local"
    c.run_args = ["--fifo-dir", f"{w}/fifo", "--runc-binary", runtime_bin, "--runc-root", f"{w}/runc-root",
                  "--runc-systemd-cgroup"]
    try:
        wait_for(lambda: os.path.exists(sock) or daemon.poll() is not None, 120, "containerd socket")
        wait_for(lambda: c("version").rc == 0, 120, "containerd answers")
        c("images", "import", oci_archive(rootfs_tar, os.path.join(w, "busybox-oci.tar"), c.image), check=True)
        yield c
    finally:
        for line in c("task", "ls").out.splitlines()[1:]:
            c("task", "kill", "-s", "SIGKILL", line.split()[0])
            c("task", "delete", "--force", line.split()[0])
        for cid in c("containers", "ls", "-q").out.split():
            c("containers", "rm", cid)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        subprocess.run(["umount", "-R", w], capture_output=True)
        shutil.rmtree(w, ignore_errors=True)


def test_containerd_run_exec_limits_rm(ctr, session_token):
    cid = f"oci-test-{session_token}-sdctr"
    unit = f"ctr-{cid}.scope"
    cgpath = f"system.slice:ctr:{cid}"
    ctr("run", "-d", *ctr.run_args, "--cgroup", cgpath, "--memory-limit", str(48 * MiB), "--cpus", "0.25",
        ctr.image, cid, "sleep", "1000", check=True)
    try:
        wait_for(lambda: "RUNNING" in ctr("task", "ls").out, 120, "task running")
        pid = int(next(ln.split()[1] for ln in ctr("task", "ls").out.splitlines() if ln.startswith(cid)))
        cg = cgroup_of(pid)
        assert cg == f"/system.slice/{unit}"
        assert show(unit, "ActiveState", "MemoryMax", "CPUQuotaPerSecUSec") == {
            "ActiveState": "active", "MemoryMax": str(48 * MiB), "CPUQuotaPerSecUSec": "250ms"}
        d = "/sys/fs/cgroup" + cg
        assert read(d + "/memory.max") == str(48 * MiB) and read(d + "/cpu.max") == "25000 100000"
        r = ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c",
                "dd if=/dev/zero of=/dev/null bs=96M count=1 2>/dev/null; echo dd=$?", check=True)
        assert r.out.strip() == "dd=137", r            # the exec'd process is under the same MemoryMax
        assert int(read(d + "/memory.events").split("oom_kill ")[1].split()[0]) >= 1
        ctr("task", "kill", "-s", "SIGKILL", cid, check=True)
        wait_for(lambda: "STOPPED" in ctr("task", "ls").out, 120, "task stopped")
        ctr("task", "delete", cid, check=True)
        ctr("containers", "rm", cid, check=True)
        _gone(unit, cg)
    finally:
        ctr("task", "kill", "-s", "SIGKILL", cid)
        ctr("task", "delete", "--force", cid)
        ctr("containers", "rm", cid)
