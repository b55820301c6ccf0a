"""Kubernetes' runtime path: containerd 1.6's CRI plugin, driven over its gRPC socket as kubelet drives
it, runs a pod whose RuntimeClass handler (`ociruntime`) is the runtime under test (tests/clients/cri.py).

One private containerd per module (its own root, state, sockets and config; the CRI plugin's CNI is a
bridge of its own on a test subnet), the pause and busybox images built here and imported, one pod
sandbox; each test runs containers in it through the CRI and asserts on what the processes inside
see, on what the CRI reports and on what is left.  The working directory is made a shared mount, as
/run is on a systemd host, so that containerd's snapshot (the rootfs) is a mount point in a shared
peer group there too.  After the module, the pod is stopped and removed and the host must be as
before (tests/clients/hoststate.py).
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import helpers
from . import cri as C
from . import cri_stream
from .clientlib import (ArgvLog, cgroup_procs, cgroup_tree, describe, kill_processes, leaked_processes,
                        make_wrapper, oci_archive, remove_cgroup_tree, run, umount_under, wait_for)
from .conftest import _finish_host, _fresh_dir, random_octet
from .hoststate import HostState, SharedBaseline

MiB = 1 << 20


def _require():
    """What the module needs: the packages tests/clients/setup-cri.sh installs (missing ones fail
    the module), and kernel features (missing ones skip it)."""
    missing = [b for b in ("containerd", "ctr", "containerd-shim-runc-v2", "gcc") if not shutil.which(b)]
    missing += [p for p in ("bridge", "host-local", "loopback") if not os.path.exists(f"{C.CNI_BIN}/{p}")]
    for mod in ("grpc", "grpc_tools"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(f"python module {mod}")
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (tests/clients/setup-cri.sh installs them)",
                    pytrace=False)
    if shutil.which("modprobe"):
        subprocess.run(["modprobe", "-q", "overlay"], capture_output=True, timeout=30)
    with open("/proc/filesystems") as f:
        if "\toverlay\n" not in f.read():
            pytest.skip("the kernel has no overlay filesystem (containerd's overlayfs snapshotter needs it)")


class Node:
    """The module's containerd and pod, and what the tests need to look at."""

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.names = 0

    def container(self, name, *command, mounts=(), memory=0, cpu_quota=0, caps=(), wait_running=True):
        """Create and start a busybox container in the pod; returns its id.  cpu_quota: microseconds
        of CPU time per 100 ms period."""
        self.names += 1
        pb = self.pb
        linux = pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(memory_limit_in_bytes=memory, cpu_quota=cpu_quota,
                                                 cpu_period=100000 if cpu_quota else 0),
            security_context=pb.LinuxContainerSecurityContext(
                namespace_options=pb.NamespaceOption(pid=pb.CONTAINER),
                capabilities=pb.Capability(add_capabilities=list(caps))))
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=f"{name}-{self.names}"), image=pb.ImageSpec(image=self.image),
            command=list(command), log_path=f"{name}-{self.names}.log", linux=linux,
            mounts=[pb.Mount(container_path=c, host_path=h, propagation=p) for c, h, p in mounts])
        cid = self.cri.CreateContainer(pod_sandbox_id=self.pod, config=config,
                                       sandbox_config=self.pod_config).container_id
        self.cri.StartContainer(container_id=cid)
        if wait_running:
            # RUNNING once the runtime's `start` returned: the init may not have exec'd the command yet
            self.cri.wait_state(cid, pb.CONTAINER_RUNNING)
            pid = self.pid(cid)
            wait_for(lambda: C.cmdline(pid).startswith(command[0].encode() + b"\0"), 10, f"{name} runs {command[0]}")
        return cid

    def remove(self, cid):
        """StopContainer + RemoveContainer, then nothing of the container may be left."""
        self.cri.StopContainer(container_id=cid, timeout=0)
        self.cri.RemoveContainer(container_id=cid)
        problems = []
        if os.path.exists(os.path.join(self.runtime_root, "k8s.io", cid)):
            problems.append(f"runtime state {self.runtime_root}/k8s.io/{cid}")
        problems += [f"cgroup {d}" for d in cgroup_tree(f"{self.cgroup_parent}/{cid}")]
        problems += [f"process {p} ({describe(p)})" for p in helpers.processes_rooted_under([self.task_dir(cid)])]
        assert not problems, f"left after RemoveContainer {cid}: {problems}"

    def task_dir(self, cid):
        return os.path.join(self.workdir, "state", "io.containerd.runtime.v2.task", "k8s.io", cid)

    def created_by_runtime(self, cid):
        return cid in self.log.created_ids()

    def pid(self, cid):
        info = self.cri.ContainerStatus(container_id=cid, verbose=True).info
        return json.loads(info["info"])["pid"]

    def rootfs_mounts_on_host(self):
        """Mounts in the caller's namespace below a container's rootfs (the container's own /proc,
        /dev, /sys, ... must never appear here)."""
        tasks = os.path.join(self.workdir, "state", "io.containerd.runtime.v2.task") + "/"
        return [mp for mp in helpers.mounts_under([tasks]) if re.search(r"/rootfs/.", mp)]


@pytest.fixture(scope="module")
def node(runtime_bin, session_token, rootfs_tar, tmp_path_factory):
    _require()
    prefix = f"{helpers.ID_PREFIX}{session_token}"
    bridge = f"ocicri{session_token}"
    subnet = f"10.{random_octet(200, 250)}.{random_octet(0, 255)}.0/24"
    cgroup_parent = f"/{prefix}-cri/pod"
    shared = SharedBaseline("containerd-cri")
    guard = HostState(watch_links=[rf"^{bridge}$"],
                      watch_cgroups=[r"^[^/]+$", r"/(k8s\.io|kubepods)", "/" + re.escape(prefix)],
                      shared=shared.join())
    netns_before = set(_netns())
    w = _fresh_dir(f"/tmp/{prefix}-cri")
    for d in ("root", "state", "opt", "runtime-root", "cni/net.d", "cni/ipam", "logs", "vol-h2c", "vol-bidi"):
        os.makedirs(os.path.join(w, d))
    # shared, as /run on a systemd host: the snapshots mounted under it are in shared peer groups
    helpers.mount(w, w, None, helpers.MS_BIND)
    helpers.mount("none", w, None, helpers.MS_SHARED)
    sock = os.path.join(w, "containerd.sock")
    argv_log = ArgvLog(os.path.join(w, "runtime-argv.log"))
    wrapper = make_wrapper(os.path.join(w, "wrap"), runtime_bin, argv_log.path)
    pause_image = f"registry.test/{prefix}pause:1"
    image = f"registry.test/{prefix}busybox:1"
    with open(os.path.join(w, "cni/net.d/10-oci-test.conflist"), "w") as f:
        f.write(C.cni_config(f"{prefix}-cri", bridge, subnet, os.path.join(w, "cni/ipam")))
    with open(os.path.join(w, "config.toml"), "w") as f:
        f.write(C.containerd_config(w, sock, wrapper, pause_image, os.path.join(w, "cni/net.d")))
    logf = open(os.path.join(w, "containerd.log"), "wb")
    daemon = subprocess.Popen(["containerd", "--config", os.path.join(w, "config.toml")], stdin=subprocess.DEVNULL,
                              stdout=logf, stderr=logf, start_new_session=True)
    logf.close()
    ctr = ["ctr", "--address", sock, "--namespace", "k8s.io"]
    cri = pod = None
    n = Node(workdir=w, cgroup_parent=cgroup_parent, runtime_root=os.path.join(w, "runtime-root"), log=argv_log,
             image=image, subnet=subnet, bridge=bridge, daemon=daemon)
    try:
        wait_for(lambda: os.path.exists(sock) or daemon.poll() is not None, 20, "containerd socket")
        if daemon.poll() is not None:
            with open(os.path.join(w, "containerd.log")) as f:
                pytest.fail(f"containerd exited {daemon.returncode}:\n{f.read()[-3000:]}", pytrace=False)
        work = tmp_path_factory.mktemp("cri")
        run([*ctr, "images", "import", oci_archive(rootfs_tar, str(work / "busybox.tar"), image)], check=True)
        pause = oci_archive(C.build_pause(str(work)), str(work / "pause-oci.tar"), pause_image,
                            entrypoint=["/pause"], cmd=())
        run([*ctr, "images", "import", pause], check=True)
        n.pb, stubs = C.compile_api(work)
        cri = n.cri = C.Cri(sock, n.pb, stubs)
        wait_for(lambda: _ready(cri), 30, "CRI RuntimeReady and NetworkReady")
        assert cri.ImageStatus(image=n.pb.ImageSpec(image=image)).image.id, f"CRI does not see {image}"
        pb = n.pb
        n.pod_config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=f"{prefix}-pod", uid=session_token, namespace="oci-test"),
            hostname="cri-pod", log_directory=os.path.join(w, "logs"),
            linux=pb.LinuxPodSandboxConfig(cgroup_parent=cgroup_parent, security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD))))
        t0 = time.monotonic()
        pod = n.pod = cri.RunPodSandbox(config=n.pod_config, runtime_handler=C.HANDLER).pod_sandbox_id
        n.pod_seconds = time.monotonic() - t0
        yield n
    finally:
        problems = []
        if cri is not None:
            for c in _attempt(problems, "ListContainers", lambda: cri.ListContainers().containers) or ():
                problems.append(f"container {c.metadata.name} left by its test")
                _attempt(problems, "StopContainer", cri.StopContainer, container_id=c.id, timeout=0)
                _attempt(problems, "RemoveContainer", cri.RemoveContainer, container_id=c.id)
            if pod:
                _attempt(problems, "StopPodSandbox", cri.StopPodSandbox, pod_sandbox_id=pod)
                _attempt(problems, "RemovePodSandbox", cri.RemovePodSandbox, pod_sandbox_id=pod)
                left = _attempt(problems, "ListPodSandbox", lambda: [p.id for p in cri.ListPodSandbox().items])
                if left:
                    problems.append(f"pod sandboxes left after RemovePodSandbox: {left}")
                if os.path.exists(os.path.join(n.runtime_root, "k8s.io", pod)):
                    problems.append("the sandbox's runtime state left")
            cri.close()
        for ns in set(_netns()) - netns_before:
            problems.append(f"network namespace {ns} left")
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)
        leases = [f for f in _listdir(os.path.join(w, "cni/ipam", f"{prefix}-cri"))
                  if re.fullmatch(r"[0-9.]+", f)]
        problems += [f"IP {ip} still allocated" for ip in leases]
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            problems.append("containerd did not exit on SIGTERM")
            daemon.kill()
            daemon.wait()
        leaked = leaked_processes(w, grace=3)
        problems += [f"process {p} ({describe(p)}) still running" for p in leaked]
        kill_processes(leaked)
        attached = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        if attached:
            problems.append(f"links still on {bridge}: {attached}")
        for d in cgroup_tree(cgroup_parent):
            if cgroup_procs(d):
                problems.append(f"cgroup {d} with processes {cgroup_procs(d)}")
        umount_under(w)
        problems += remove_cgroup_tree(f"/{prefix}-cri")
        shutil.rmtree(w, ignore_errors=True)
        # the bridge stays (the bridge plugin never removes it), as CNI's cache of results does
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True, timeout=30)
        _finish_host(guard, shared, "containerd CRI", expected_paths=[r"^/var/lib/cni"],
                     expected_links=[re.escape(bridge)])
        if problems:
            pytest.fail("containerd CRI module cleanup:\n  " + "\n  ".join(problems), pytrace=False)


def _attempt(problems, what, fn, *args, **kw):
    """fn(...), or None with its exception noted: the module's cleanup goes on after a failed step."""
    try:
        return fn(*args, **kw)
    except Exception as e:  # noqa: BLE001 - reported by the caller
        problems.append(f"{what}: {e!r}")
        return None


def _ready(cri):
    conds = {c.type: c.status for c in cri.Status().status.conditions}
    return conds.get("RuntimeReady") and conds.get("NetworkReady")


def _netns():
    return [n for n in _listdir(helpers.NETNS_DIR) if n.startswith("cni-")]


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _mountinfo(pid):
    with open(f"/proc/{pid}/mountinfo") as f:
        return {m["mountpoint"]: m for m in helpers.parse_mountinfo(f.read())}


# ---------------------------------------------------------------------------------------------------


def test_pod_sandbox(node):
    pb, cri = node.pb, node.cri
    st = cri.PodSandboxStatus(pod_sandbox_id=node.pod, verbose=True)
    assert st.status.state == pb.SANDBOX_READY
    assert st.status.runtime_handler == C.HANDLER
    ip = st.status.network.ip
    assert ip.startswith(node.subnet.rsplit(".", 1)[0] + "."), (ip, node.subnet)
    assert node.created_by_runtime(node.pod), "the sandbox was not created by the handler's runtime"
    pid = json.loads(st.info["info"])["pid"]
    wait_for(lambda: C.cmdline(pid) == b"/pause\0", 10, "the sandbox runs /pause")
    with open(f"/proc/{pid}/cgroup") as f:
        assert f":{node.cgroup_parent}/{node.pod}\n" in f.read()
    print(f"\nRunPodSandbox: {node.pod_seconds:.2f}s")


def test_logs_and_exit_code(node):
    pb, cri = node.pb, node.cri
    cid = node.container("printer", "sh", "-c", "echo hello from $(hostname); echo to stderr >&2; exit 3",
                         wait_running=False)
    st = cri.wait_state(cid, pb.CONTAINER_EXITED)
    assert (st.exit_code, st.reason) == (3, "Error"), st
    assert node.created_by_runtime(cid)
    lines = C.log_lines(st.log_path)
    assert ("stdout", "hello from cri-pod") in lines and ("stderr", "to stderr") in lines, lines
    node.remove(cid)

    cid = node.container("done", "echo", "ok", wait_running=False)
    st = cri.wait_state(cid, pb.CONTAINER_EXITED)
    assert (st.exit_code, st.reason) == (0, "Completed"), st
    assert C.log_lines(st.log_path) == [("stdout", "ok")]
    node.remove(cid)


def test_exec_sync_and_update(node):
    pb, cri = node.pb, node.cri
    cid = node.container("execd", "sleep", "1000")
    rc, out, err = cri.exec_sync(cid, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline; echo; ip -o -4 addr show eth0")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[:2] == ["exec-ok", "sleep\x001000\x00"], out
    ip = cri.PodSandboxStatus(pod_sandbox_id=node.pod).status.network.ip
    assert f" inet {ip}/" in lines[2], out            # the pod's network namespace, joined
    assert cri.exec_sync(cid, "sh", "-c", "echo out; echo err >&2; exit 5") == (5, "out\n", "err\n")
    import grpc
    with pytest.raises(grpc.RpcError) as missing:
        cri.exec_sync(cid, "/nonexistent")
    assert re.search(r'OCI runtime exec failed: .*exec: "/nonexistent": .*no such file', missing.value.details()), \
        missing.value.details()
    assert [a for a in node.log.calls() if "exec" in a and cid in a], "ExecSync did not go through the runtime"
    # UpdateContainerResources: the runtime's `update`
    cri.UpdateContainerResources(container_id=cid, linux=pb.LinuxContainerResources(memory_limit_in_bytes=96 * MiB))
    pid = node.pid(cid)
    limit = C.control_file(pid, "memory", "memory.limit_in_bytes", "memory.max")
    assert limit.endswith(f"{node.cgroup_parent}/{cid}/{os.path.basename(limit)}"), limit   # the cgroupsPath asked
    assert C.memory_limit(pid) == 96 * MiB
    assert cri.exec_sync(cid, "cat", C.INSIDE_MEMORY_LIMIT)[1] == f"{96 * MiB}\n"
    node.remove(cid)


def test_memory_limit_and_oom(node):
    pb, cri = node.pb, node.cri
    cid = node.container("hog", "sh", "-c", f"cat {C.INSIDE_MEMORY_LIMIT}; "
                                            "exec dd if=/dev/zero of=/dev/null bs=64M count=1",
                         memory=32 * MiB, wait_running=False)
    st = cri.wait_state(cid, pb.CONTAINER_EXITED)
    assert st.exit_code == 137, st
    # the shim's TaskOOM event may reach the CRI plugin after the exit (the reason is "Error" until then)
    wait_for(lambda: cri.container(cid).reason == "OOMKilled", 10, "reason OOMKilled")
    assert C.log_lines(st.log_path)[0] == ("stdout", str(32 * MiB))
    node.remove(cid)


def test_host_to_container_volume(node):
    """mountPropagation: HostToContainer (containerd: rootfsPropagation rslave, the bind rslave): a
    mount made on the host after the start is seen inside."""
    pb, cri = node.pb, node.cri
    src = os.path.join(node.workdir, "vol-h2c")
    cid = node.container("h2c", "sleep", "1000", mounts=[("/mnt", src, pb.PROPAGATION_HOST_TO_CONTAINER)])
    assert node.rootfs_mounts_on_host() == []
    mi = _mountinfo(node.pid(cid))
    assert any(t.startswith("master:") for t in mi["/mnt"]["optional"]), mi["/mnt"]
    late = os.path.join(src, "late")
    os.mkdir(late)
    helpers.mount("tmpfs", late, "tmpfs", 0, "size=1m")
    try:
        with open(os.path.join(late, "flag"), "w") as f:
            f.write("from the host\n")
        assert cri.exec_sync(cid, "cat", "/mnt/late/flag") == (0, "from the host\n", "")
    finally:
        helpers.umount(late)
    node.remove(cid)
    assert node.rootfs_mounts_on_host() == []


def test_bidirectional_volume(node):
    """mountPropagation: Bidirectional (containerd: rootfsPropagation rshared, the bind rshared): a
    mount made inside is seen on the host, and none of the container's own mounts is."""
    pb, cri = node.pb, node.cri
    src = os.path.join(node.workdir, "vol-bidi")
    os.makedirs(os.path.join(src, "inside"), exist_ok=True)
    cid = node.container("bidi", "sleep", "1000", mounts=[("/mnt", src, pb.PROPAGATION_BIDIRECTIONAL)],
                         caps=["SYS_ADMIN"])
    try:
        # the premise: containerd's snapshot is a mount point in a shared peer group on the host
        rootfs = _mountinfo("self")[os.path.join(node.task_dir(cid), "rootfs")]
        assert any(t.startswith("shared:") for t in rootfs["optional"]), rootfs
        assert node.rootfs_mounts_on_host() == []
        mi = _mountinfo(node.pid(cid))
        assert any(t.startswith("shared:") for t in mi["/mnt"]["optional"]), mi["/mnt"]
        rc, out, err = cri.exec_sync(cid, "sh", "-c", "mount -t tmpfs -o size=1m inside /mnt/inside && "
                                                      "echo from the container > /mnt/inside/f")
        assert rc == 0, err
        inside = os.path.join(src, "inside")
        assert inside in helpers.mounts_under([src])
        with open(os.path.join(inside, "f")) as f:
            assert f.read() == "from the container\n"
        assert node.rootfs_mounts_on_host() == []
        node.remove(cid)
        assert node.rootfs_mounts_on_host() == []
    finally:
        umount_under(os.path.join(src, "inside"))


# what `kubectl exec -it POD -- sh` types to see its terminal: the window size (waiting for the size
# the client sent: containerd resizes once the process has started), whether the shell leads a session
# with a controlling terminal (/proc/PID/stat: pid, session, tty_nr)
TTY_FUNCS = ("size() { n=0; while [ \"$(stty size)\" != \"$1\" ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done; "
             "echo \"size=$(stty size)\"; }\n")


def _step(stream, command, n):
    """Type a command line and read the terminal's output until it has run (the marker <n> is printed
    after it; the echo of the typed line shows it as <$((n))>).  Returns the output since the line
    was typed."""
    start = len(stream.data[cri_stream.STDOUT])
    stream.send(f"{command}; echo \"<$(({n}))>\"\n")
    return stream.read_until(f"<{n}>")[start:].decode(errors="replace")


def test_exec_interactive_tty(node):
    """kubectl exec -it: the CRI Exec RPC's URL on containerd's stream server, opened as a websocket
    (v4.channel.k8s.io): a shell on a terminal of the window size the client sent and sends later,
    leading its session with the terminal as its controlling one (^C interrupts its foreground job),
    in the container's namespaces and cgroup; its exit code comes back, and nothing of it is left."""
    cri = node.cri
    cid = node.container("tty", "sleep", "1000")
    init = node.pid(cid)
    node.log.mark()
    url = cri.Exec(container_id=cid, cmd=["sh"], tty=True, stdin=True, stdout=True).url
    assert url.startswith("http://127.0.0.1:"), url          # the stream server's address in the config
    with cri_stream.open_websocket(url, tty=True) as s:
        s.resize(91, 37)
        s.send(TTY_FUNCS)
        out = _step(s, "size '37 91'; echo \"tty=$(tty) stat=$(cut -d' ' -f1,6,7 /proc/$$/stat)\"", 1)
        assert "size=37 91\r\n" in out, out
        m = re.search(r"tty=(\S+) stat=(\d+) (\d+) (\d+)\r\n", out)
        assert m and m[1].startswith("/dev/pts/"), out
        assert m[2] == m[3] and m[4] != "0", f"not a session leader with a controlling terminal: {out!r}"
        shells = {p for p, cmd in C.container_processes(init).items() if cmd == b"sh\0"}
        assert len(shells) == 1, C.container_processes(init)     # the exec'd shell: the container's pid ns and cgroup

        s.resize(120, 50)
        assert "size=50 120\r\n" in _step(s, "size '50 120'", 2)

        s.send("sleep 99\n")
        sleep = wait_for(lambda: [p for p, cmd in C.container_processes(init).items() if cmd == b"sleep\x0099\0"],
                         10, "the shell's foreground sleep")
        s.send("\x03")                                      # ^C: SIGINT to the terminal's foreground group
        assert "rc=130\r\n" in _step(s, "echo rc=$?", 3)
        assert not helpers.pid_alive(sleep[0])

        s.send("exit 7\n")
        r = s.wait()
    assert r.exit_code == 7 and r.status["reason"] == "NonZeroExitCode", r
    wait_for(lambda: list(C.container_processes(init)) == [init], 10, "only the init left in the container")
    execs = [a for a in node.log.calls() if "exec" in a and cid in a]
    assert execs and "--console-socket" in execs[0], execs     # the terminal came from the runtime's exec
    node.remove(cid)


def test_exec_stdin_piped(node):
    """`kubectl exec -i` with piped input, over SPDY as kubectl speaks it: no terminal, 1 MiB of
    stdin reaches the command intact and ends (the stdin stream's FIN is its EOF), stdout and stderr
    come back apart with the exit code, and nothing of the exec is left."""
    cri = node.cri
    cid = node.container("piped", "sleep", "1000")
    init = node.pid(cid)
    node.log.mark()
    # the open fds of ls (3: its directory) tell what the exec'd process got: nothing beyond 0-2
    script = ("for fd in 0 1 2; do [ -t $fd ] && echo fd $fd is a terminal; done; "
              "echo fds $(ls /proc/self/fd); md5sum; echo to stderr >&2; exit 3")
    url = cri.Exec(container_id=cid, cmd=["sh", "-c", script], stdin=True, stdout=True, stderr=True).url
    data = os.urandom(1 << 20)
    with cri_stream.open_spdy(url) as s:
        s.send(data)
        s.close_stdin()
        r = s.wait()
    assert (r.stdout.decode(), r.stderr, r.exit_code) == \
        (f"fds 0 1 2 3\n{hashlib.md5(data).hexdigest()}  -\n", b"to stderr\n", 3), r
    wait_for(lambda: list(C.container_processes(init)) == [init], 10, "only the init left in the container")
    execs = [a for a in node.log.calls() if "exec" in a and cid in a]
    assert execs and "--console-socket" not in execs[0], execs
    node.remove(cid)


def test_container_stats(node):
    """ContainerStats and ListContainerStats (kubelet's summary, `kubectl top`): the memory working
    set of a container holding 24 MiB, under the 64 MiB limit the kernel holds (available = limit -
    working set), its CPU time between two readings of the kernel's counter, and the CPU rate of a
    busy container within its quota of half a CPU."""
    pb, cri = node.pb, node.cri
    # dd keeps its 24 MiB buffer (filled from /dev/zero) while it waits to write to a pipe no one reads
    holder = node.container("holder", "sh", "-c", "dd if=/dev/zero bs=24M count=1 | sleep 1000", memory=64 * MiB)
    busy = node.container("busy", "sh", "-c", "while :; do :; done", cpu_quota=50000)
    hpid, bpid = node.pid(holder), node.pid(busy)
    assert C.memory_limit(hpid) == 64 * MiB
    assert cri.exec_sync(holder, "cat", C.INSIDE_MEMORY_LIMIT)[1] == f"{64 * MiB}\n"
    assert C.cpu_quota(bpid) == (50000, 100000)

    def holding():
        m = cri.ContainerStats(container_id=holder).stats.memory
        return m if m.working_set_bytes.value >= 24 * MiB else None
    mem = wait_for(holding, 20, "a working set of 24 MiB")
    assert mem.working_set_bytes.value <= mem.usage_bytes.value < 64 * MiB, mem
    assert mem.available_bytes.value + mem.working_set_bytes.value == C.memory_limit(hpid), mem
    assert mem.rss_bytes.value >= 24 * MiB, mem

    before = C.cpu_usage_ns(hpid)
    cpu = cri.ContainerStats(container_id=holder).stats.cpu
    after = C.cpu_usage_ns(hpid)
    assert 0 < before <= cpu.usage_core_nano_seconds.value <= after, (before, cpu, after)

    # the rate needs two samples (containerd keeps the last one per container)
    first = {st.attributes.id: st for st in cri.ListContainerStats(
        filter=pb.ContainerStatsFilter(pod_sandbox_id=node.pod)).stats}
    assert {holder, busy} <= set(first), first.keys()
    assert first[busy].attributes.metadata.name.startswith("busy-"), first[busy].attributes
    time.sleep(2)
    stats = cri.ContainerStats(container_id=busy).stats
    rate = stats.cpu.usage_nano_cores.value
    assert 0.1e9 < rate <= 0.5e9 * 1.1, f"{rate / 1e9:.2f} CPUs used by a loop limited to 0.5\n{stats.cpu}"
    assert stats.cpu.usage_core_nano_seconds.value > first[busy].cpu.usage_core_nano_seconds.value
    node.remove(busy)
    node.remove(holder)
