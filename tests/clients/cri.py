"""A Kubernetes node's runtime path without Kubernetes: containerd 1.6's CRI plugin driven over its gRPC
socket, as kubelet drives it, with the runtime under test as a RuntimeClass handler.

- `compile_api(dest)`: cri_api.proto (the CRI v1 messages the tests use) compiled with grpcio-tools
  into a temporary directory and imported from there;
- `Cri`: the RuntimeService and ImageService calls, each with a deadline;
- `containerd_config`, `cni_config`: a private containerd (own root, state, sockets) whose CRI plugin
  has an `ociruntime` handler (containerd-shim-runc-v2 with BinaryName = the runtime under test) and
  a CNI bridge of its own on a test subnet (Debian's containernetworking-plugins, no masquerade:
  traffic stays on this machine);
- `build_pause`: a pause image (a static /pause that sleeps, reaps and exits on TERM/INT, as
  Kubernetes' own) built with gcc, since no registry is reachable;
- `container_processes`, `cmdline`: the host's processes in a container; `control_file`,
  `memory_limit`, `cpu_usage_ns`, `cpu_quota`, `INSIDE_MEMORY_LIMIT`: a container's cgroup as the
  kernel holds it, found from /proc/PID/cgroup, on any layout (a controller's v1 hierarchy where the
  host has one: v1 or hybrid; the unified hierarchy on pure v2).
"""

import importlib
import json
import os
import subprocess
import sys
import time

import helpers

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = "cri_api.proto"
CALL_TIMEOUT = 60           # seconds for one CRI call (no pull: images are imported beforehand)
HANDLER = "ociruntime"      # the RuntimeClass handler's name (RuntimeClass.handler in Kubernetes)
CNI_BIN = "/usr/lib/cni"    # Debian's containernetworking-plugins

PAUSE_C = r"""
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void down(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    struct sigaction d = {.sa_handler = down}, r = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
    sigaction(SIGINT, &d, 0);
    sigaction(SIGTERM, &d, 0);
    sigaction(SIGCHLD, &r, 0);
    for (;;)
        pause();
}
"""


def compile_api(dest):
    """(messages module, grpc stubs module) of cri_api.proto, generated into dest."""
    from grpc_tools import protoc
    rc = protoc.main(["protoc", f"-I{HERE}", f"--python_out={dest}", f"--grpc_python_out={dest}",
                      os.path.join(HERE, PROTO)])
    if rc != 0:
        raise AssertionError(f"grpc_tools.protoc {PROTO}: exit {rc}")
    sys.path.insert(0, str(dest))
    try:
        pb = importlib.import_module("cri_api_pb2")
        stubs = importlib.import_module("cri_api_pb2_grpc")
    finally:
        sys.path.remove(str(dest))
    return pb, stubs


class Cri:
    """kubelet's side of the CRI: `cri.RunPodSandbox(config=..., runtime_handler=...)` builds the
    request from keyword arguments and returns the response (`deadline=` is the call's, in seconds;
    `timeout=` is a field of some requests)."""

    def __init__(self, sock, pb, stubs):
        import grpc
        self.pb = pb
        self.channel = grpc.insecure_channel("unix://" + sock)
        self.runtime = stubs.RuntimeServiceStub(self.channel)
        self.images = stubs.ImageServiceStub(self.channel)

    def __getattr__(self, method):
        stub = self.images if method in ("ImageStatus",) else self.runtime
        call = getattr(stub, method)
        request = getattr(self.pb, method + "Request")

        def invoke(deadline=CALL_TIMEOUT, **fields):
            return call(request(**fields), timeout=deadline)
        return invoke

    def close(self):
        self.channel.close()

    def container(self, cid):
        return self.ContainerStatus(container_id=cid).status

    def wait_state(self, cid, state, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            st = self.container(cid)
            if st.state == state:
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"container {cid}: state {st.state} after {timeout}s, want {state}\n{st}")
            time.sleep(0.05)

    def exec_sync(self, cid, *cmd, timeout=20):
        r = self.ExecSync(container_id=cid, cmd=list(cmd), timeout=timeout, deadline=timeout + CALL_TIMEOUT)
        return r.exit_code, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def containerd_config(w, sock, wrapper, sandbox_image, cni_conf_dir):
    """config.toml of a private containerd with the CRI plugin and the `ociruntime` handler.

    restrict_oom_score_adj: this machine's root lacks CAP_SYS_RESOURCE, so the sandbox's -998 (below
    containerd's own score) cannot be set; the plugin clamps it instead."""
    return f"""version = 2
root = "{w}/root"
state = "{w}/state"
disabled_plugins = ["io.containerd.internal.v1.restart"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{w}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "{HANDLER}"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{HANDLER}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{HANDLER}.options]
        BinaryName = "{wrapper}"
        Root = "{w}/runtime-root"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{cni_conf_dir}"
    max_conf_num = 1
"""


def cni_config(name, bridge, subnet, ipam_dir):
    """A conflist: a bridge of our own with the gateway on it, host-local addresses kept in our own
    directory, no masquerade and no port mapping (no iptables rule is added)."""
    return json.dumps({
        "cniVersion": "1.0.0", "name": name,
        "plugins": [{"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
                     "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                              "dataDir": ipam_dir}}],
    }, indent=1)


def build_pause(workdir):
    """A rootfs tarball holding only a static /pause (what the sandbox container runs)."""
    src, root = os.path.join(workdir, "pause.c"), os.path.join(workdir, "pause-rootfs")
    os.makedirs(root)
    with open(src, "w") as f:
        f.write(PAUSE_C)
    subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(root, "pause"), src], check=True, timeout=120,
                   capture_output=True)
    tar = os.path.join(workdir, "pause.tar")
    subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True, timeout=60)
    return tar


def log_lines(path):
    """[(stream, text)] of a CRI container log (`TIME STREAM F|P TEXT` lines, P a partial line)."""
    out, partial = [], {}
    with open(path) as f:
        for line in f.read().splitlines():
            _time, stream, tag, text = (line.split(" ", 3) + [""])[:4]
            partial[stream] = partial.get(stream, "") + text
            if tag == "F":
                out.append((stream, partial.pop(stream)))
    return out


# ---------------------------------------------------------------------------------------------------
# A container's processes and cgroup, as the kernel holds them


def container_processes(init):
    """{pid: cmdline} of the host's processes in the pid namespace and cgroups of the container whose
    init is `init` (the init included)."""
    def ns_and_cgroup(pid):
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                return os.readlink(f"/proc/{pid}/ns/pid"), f.read()
        except OSError:
            return None
    own = ns_and_cgroup(init)
    assert own, f"the container's init {init} is gone"
    return {p: cmdline(p) for p in helpers.all_pids() if ns_and_cgroup(p) == own}


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _cgroup_mounts():
    with open("/proc/self/mountinfo") as f:
        return [m for m in helpers.parse_mountinfo(f.read())
                if m["fstype"] in ("cgroup", "cgroup2") and m["mountpoint"].startswith(helpers.CGROUP_ROOT)]


def _v1_hierarchy(controller, pid="self"):
    """(mount, path of pid's cgroup) of controller's v1 hierarchy, or None (pure v2)."""
    with open(f"/proc/{pid}/cgroup") as f:
        entries = [line.rstrip("\n").split(":", 2) for line in f]
    for _hid, controllers, path in entries:
        if controller in controllers.split(","):
            for m in _cgroup_mounts():
                if m["fstype"] == "cgroup" and controller in m["super"]:
                    return m, path
    return None


def control_file(pid, controller, v1_name, v2_name):
    """The host path of a control file of the cgroup pid is in: v1_name in controller's v1 hierarchy
    where the host has one, else v2_name in the unified hierarchy."""
    v1 = _v1_hierarchy(controller, pid)
    if v1:
        mount, path = v1
        base = mount["mountpoint"]
        name = v1_name
    else:
        mount = next(m for m in _cgroup_mounts() if m["fstype"] == "cgroup2")
        base, path, name = mount["mountpoint"], helpers.cgroup2_of(pid), v2_name
    return os.path.join(base, os.path.relpath(path, mount["root"]), name)


def memory_limit(pid):
    """The memory limit in bytes of pid's cgroup (None: no limit)."""
    text = helpers.read_value(control_file(pid, "memory", "memory.limit_in_bytes", "memory.max"))
    return None if text == "max" or int(text) >= 1 << 62 else int(text)


def cpu_usage_ns(pid):
    """The CPU time used by pid's cgroup, in nanoseconds (v2 counts microseconds)."""
    path = control_file(pid, "cpuacct", "cpuacct.usage", "cpu.stat")
    return int(helpers.read_value(path)) if path.endswith("usage") else helpers.read_kv(path)["usage_usec"] * 1000


def cpu_quota(pid):
    """(quota, period) in microseconds of pid's cgroup (quota -1: none)."""
    path = control_file(pid, "cpu", "cpu.cfs_quota_us", "cpu.max")
    if path.endswith("cpu.max"):
        quota, period = helpers.read_value(path).split()
        return (-1 if quota == "max" else int(quota)), int(period)
    return int(helpers.read_value(path)), int(helpers.read_value(os.path.join(os.path.dirname(path),
                                                                                 "cpu.cfs_period_us")))


# the memory limit as a container sees it: containerd mounts one directory per v1 hierarchy at
# /sys/fs/cgroup, or, on pure v2, the container's own cgroup (it has a cgroup namespace there)
INSIDE_MEMORY_LIMIT = ("/sys/fs/cgroup/memory/memory.limit_in_bytes" if _v1_hierarchy("memory")
                       else "/sys/fs/cgroup/memory.max")
