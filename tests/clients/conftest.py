"""Fixtures for the client tests: podman and containerd driving the runtime under test (`--runtime-bin`,
default the project's `ociruntime`; `--runtime-bin=/usr/sbin/runc` checks the tests themselves).

Everything is private to the module that uses it and removed after it:
- podman: a containers.conf/storage.conf under /tmp/oci-test-<token>-podman (storage, runroot, tmp,
  events, network configs, file locks), the runtime registered by its base name in [engine.runtimes] and
  runtime_supports_json (so podman passes --log-format=json), a private default bridge network with its
  own bridge name and subnet, and a cgroup parent named after each test.
- containerd: a daemon with its own root, state, socket and config, started by the fixture and killed by
  pid; its own namespace; ctr gets a private fifo dir and runtime root.
After each test: the containers are removed and nothing may be left (processes, mounts, runtime state,
cgroups, network namespaces); after each module the host must be as before: iptables rules and chains,
links, forwarding sysctls, cgroups, mounts, and the few hard-coded directories the clients create
(/run/containers, /var/lib/containers, /run/containerd, the runtime's default state root).
Whatever the clients are known to leave there (netavark's chains and sysctls, the shim's socket dir,
podman's blob-info cache, the conmon cgroup) is removed quietly; anything else fails the module.

The runtime is invoked through a wrapper with the same base name that logs each argv (ArgvLog), so the
tests check the clients' contract too (what they pass and parse: docs/NOTES.md, Clients).
"""

import glob
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time

import pytest

import helpers
from .clientlib import (ArgvLog, build_rootfs_tar, cgroup_procs, cgroup_tree, default_root, describe,
                        kill_processes, leaked_processes, make_wrapper, oci_archive, remove_cgroup_tree, run,
                        run_tty, umount_under, wait_for)
from .hoststate import HostState, SharedBaseline

HERE = os.path.dirname(os.path.abspath(__file__))


def _need(*binaries):
    missing = [b for b in binaries if not shutil.which(b)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tests/setup.sh installs the client packages with apt-get)")


def _tag(node_name):
    return re.sub(r"[^A-Za-z0-9]+", "-", node_name.replace("test_", "", 1)).strip("-")[:28].strip("-").lower()


def _fresh_dir(path):
    if os.path.exists(path):
        umount_under(path)
        shutil.rmtree(path)
    os.makedirs(path, mode=0o711)
    with open(os.path.join(path, "owner.pid"), "w") as f:
        f.write(str(os.getpid()))
    return path


@pytest.fixture(scope="session")
def rootfs_tar(tmp_path_factory):
    """The tests' busybox rootfs (tests/mkrootfs.sh) as a tarball, the image of both clients."""
    return build_rootfs_tar(str(tmp_path_factory.mktemp("client-image")))


def _other_sessions(own):
    """Work directories of other sessions' client tests running on the machine (they share iptables,
    sysctls and the hard-coded directories with us); a directory whose owner is gone does not count."""
    active = []
    for d in glob.glob(f"/tmp/{helpers.ID_PREFIX}*-podman") + glob.glob(f"/tmp/{helpers.ID_PREFIX}*-ctd"):
        try:
            with open(os.path.join(d, "owner.pid")) as f:
                owner = int(f.read())
        except (OSError, ValueError):
            continue
        if not d.startswith(own) and helpers.pid_alive(owner):
            active.append(d)
    return active


# what podman, netavark, conmon and the containerd shim leave outside their configured directories
# (whichever session's clients left it: the last session to finish restores the shared baseline)
SHARED_RULES = [r"NETAVARK", r"^nft table ip6? (nat|filter)$"]
SHARED_PATHS = [r"^/run/containers", r"^/var/lib/containers", r"^/run/containerd", r"^/run/(ociruntime|runc|crun)$"]


def _finish_host(guard, shared, what, expected_rules=(), expected_paths=(), **expected):
    with shared.leave() as last:
        done, unexpected = guard.restore(shared_busy=not last, expected_rules=[*SHARED_RULES, *expected_rules],
                                         expected_paths=[*SHARED_PATHS, *expected_paths], **expected)
    if done:
        print(f"\n{what}: removed what it is known to leave on the host:\n  " + "\n  ".join(done))
    if unexpected:
        pytest.fail(f"{what} left on the host (cleaned up now):\n  " + "\n  ".join(unexpected), pytrace=False)
    return done


# ---------------------------------------------------------------------------------------------------
# podman


class Podman:
    """`podman --runtime NAME ARGS` with the private configuration; per test, `run`/`create` get the
    test's cgroup parent."""

    def __init__(self, env, runtime_name, network, subnet, bridge, workdir, argv_log, image, runtime_root):
        self.env, self.runtime_name = env, runtime_name
        self.network, self.subnet, self.bridge = network, subnet, bridge
        self.workdir, self.log, self.image, self.runtime_root = workdir, argv_log, image, runtime_root
        self.cgroup_parent = None
        self.baseline_mounts = []

    def argv(self, args):
        args = [str(a) for a in args]
        if self.cgroup_parent and args and args[0] in ("run", "create"):
            args = [args[0], "--cgroup-parent", self.cgroup_parent, *args[1:]]
        return ["podman", "--runtime", self.runtime_name, *args]

    def __call__(self, *args, input=None, check=False, timeout=90):
        return run(self.argv(args), input=input, env=self.env, timeout=timeout, check=check)

    def tty(self, *args, input=None, until=None, timeout=90):
        return run_tty(self.argv(args), input=input, until=until, env=self.env, timeout=timeout)

    def inspect(self, name, fmt):
        r = self("inspect", "--format", fmt, name, check=True)
        return r.out.strip()

    def ids(self):
        return self("ps", "-aq", "--no-trunc", check=True).out.split()


def _podman_conf(w, runtime_name, wrapper, network, subnet):
    with open(os.path.join(w, "storage.conf"), "w") as f:
        f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{w}/root"\nrunroot = "{w}/runroot"\n')
    with open(os.path.join(w, "containers.conf"), "w") as f:
        f.write(f"""[containers]
# podman asks for nofile/nproc=1048576; raising a hard limit needs CAP_SYS_RESOURCE (absent here)
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{w}/events.log"
tmp_dir = "{w}/tmp"
volume_path = "{w}/volumes"
static_dir = "{w}/root/libpod"
image_copy_tmp_dir = "{w}/tmp"
lock_type = "file"
runtime_supports_json = ["{runtime_name}", "runc", "crun"]
[engine.runtimes]
{runtime_name} = ["{wrapper}"]
[network]
network_backend = "netavark"
network_config_dir = "{w}/networks"
default_network = "{network}"
default_subnet = "{subnet}"
""")


@pytest.fixture(scope="module")
def podman_env(runtime_bin, session_token, rootfs_tar):
    _need("podman", "conmon", "iptables")
    if not os.path.exists("/usr/lib/podman/netavark") and not shutil.which("netavark"):
        pytest.skip("netavark not installed (tests/setup.sh installs it)")
    prefix = helpers.ID_PREFIX + session_token
    network = prefix
    bridge = f"ocibr{session_token}"
    # top-level dirs conmon makes on the cgroup tmpfs, podman's default parents, our own parents
    shared = SharedBaseline("podman")
    guard = HostState(watch_links=[rf"^{bridge}$", r"^podman\d+$"],
                      watch_cgroups=[r"^[^/]+$", r"/(libpod_parent|machine\.slice|conmon)$", r"/libpod",
                                     "/" + re.escape(prefix)], shared=shared.join())
    w = _fresh_dir(f"/tmp/{prefix}-podman")
    name = os.path.basename(runtime_bin)
    argv_log = ArgvLog(os.path.join(w, "runtime-argv.log"))
    wrapper = make_wrapper(os.path.join(w, "wrap"), runtime_bin, argv_log.path)
    subnet = f"10.{random_octet(200, 250)}.{random_octet(0, 255)}.0/24"
    _podman_conf(w, name, wrapper, network, subnet)
    env = dict(os.environ, CONTAINERS_CONF=f"{w}/containers.conf", CONTAINERS_STORAGE_CONF=f"{w}/storage.conf")
    image = f"localhost/{helpers.ID_PREFIX}busybox:latest"
    pm = Podman(env, name, network, subnet, bridge, w, argv_log, image, default_root(runtime_bin))
    try:
        pm("import", "-q", rootfs_tar, image, check=True)
        _podman_network(w, network, bridge, subnet)
        r = pm("network", "inspect", "--format", "{{.NetworkInterface}}", network, check=True)
        assert r.out.strip() == bridge, r
        pm.baseline_mounts = helpers.mounts_under([w])
        yield pm
    finally:
        problems = []
        r = pm("rm", "-a", "-f", "-t", "0")
        if r.rc != 0:
            problems.append(f"podman rm -a -f: {r}")
        pm("network", "rm", "-f", network)
        pm("system", "reset", "-f")
        leaked = leaked_processes(w, grace=3)
        problems += [f"process {p} ({describe(p)}) still running" for p in leaked]
        kill_processes(leaked)
        umount_under(w)
        shutil.rmtree(w, ignore_errors=True)
        _finish_host(
            guard, shared, "podman",
            expected_rules=[re.escape(subnet)], expected_links=[re.escape(bridge)],
            expected_paths=["^" + re.escape(pm.runtime_root) + "$"])
        if problems:
            pytest.fail("podman module cleanup:\n  " + "\n  ".join(problems), pytrace=False)


def _podman_network(w, name, bridge, subnet):
    """The default network, written as netavark's config (podman 4.3's `network create` cannot name the
    bridge): a bridge of our own name and subnet, no DNS (no aardvark-dns daemon)."""
    import json
    os.makedirs(os.path.join(w, "networks"), exist_ok=True)
    gateway = subnet.rsplit(".", 1)[0] + ".1"
    conf = {"name": name, "id": secrets.token_hex(32), "driver": "bridge", "network_interface": bridge,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "subnets": [{"subnet": subnet, "gateway": gateway}], "ipv6_enabled": False, "internal": False,
            "dns_enabled": False, "ipam_options": {"driver": "host-local"}}
    with open(os.path.join(w, "networks", name + ".json"), "w") as f:
        json.dump(conf, f, indent=1)


def random_octet(lo, hi):
    return lo + secrets.randbelow(hi - lo + 1)


@pytest.fixture
def podman(request, podman_env, session_token):
    pm = podman_env
    tag = _tag(request.node.name)
    pm.cgroup_parent = f"/{helpers.ID_PREFIX}{session_token}-pm-{tag}"
    pm.log.mark()
    netns_before = set(_podman_netns())
    yield pm
    problems = []
    r = pm("rm", "-a", "-f", "-t", "0")
    if r.rc != 0:
        problems.append(f"podman rm -a -f -t 0: {r}")
    left = pm.ids()
    if left:
        problems.append(f"containers left after podman rm -a -f: {left}")
    leaked = leaked_processes(pm.workdir)
    problems += [f"process {p} ({describe(p)}) still running" for p in leaked]
    kill_processes(leaked)
    for cid in set(pm.log.created_ids()):
        if os.path.exists(os.path.join(pm.runtime_root, cid)):
            problems.append(f"runtime state {pm.runtime_root}/{cid} left")
            subprocess.run([request.getfixturevalue("runtime_bin"), "delete", "--force", cid],
                           capture_output=True, timeout=30)
    for mp in helpers.mounts_under([pm.workdir]):
        if mp not in pm.baseline_mounts:
            problems.append(f"mount on {mp}")
    # the container's cgroup is the runtime's to remove (delete); podman itself leaves <parent>/conmon
    for d in cgroup_tree(pm.cgroup_parent):
        if cgroup_procs(d):
            problems.append(f"cgroup {d} still has processes {cgroup_procs(d)}")
        elif "/libpod-" in d:
            problems.append(f"cgroup {d} left by the runtime")
    problems += remove_cgroup_tree(pm.cgroup_parent)
    others = _other_sessions(pm.workdir)
    for ns in set(_podman_netns()) - netns_before:
        # other sessions' podman make netns-<uuid> too: ours has an address in our subnet, or, when no
        # other session runs clients, any new one is ours
        addrs = subprocess.run(["ip", "-n", ns, "-o", "-4", "addr"], capture_output=True, text=True,
                               timeout=30).stdout
        if f" {pm.subnet.rsplit('.', 1)[0]}." in addrs or not others:
            problems.append(f"network namespace {ns}")
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)
    pm.cgroup_parent = None
    if problems:
        pytest.fail("left behind by the test (cleaned up now):\n  " + "\n  ".join(problems), pytrace=False)


def _podman_netns():
    """The network namespaces podman makes (netns-<uuid>; other sessions name theirs differently)."""
    try:
        return [n for n in os.listdir(helpers.NETNS_DIR) if n.startswith("netns-")]
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------------------------------------------
# containerd


class Ctr:
    """`ctr --address SOCK --namespace NS ARGS`; `run_args` go to `ctr run` (the runtime under test
    as the shim's BinaryName, a private runtime root and fifo dir)."""

    def __init__(self, workdir, sock, namespace, wrapper, argv_log, image, daemon_pid):
        self.workdir, self.sock, self.namespace = workdir, sock, namespace
        self.wrapper, self.log, self.image, self.daemon_pid = wrapper, argv_log, image, daemon_pid
        self.runtime_root = os.path.join(workdir, "runc-root")
        self.fifo_dir = os.path.join(workdir, "fifo")
        self.ids = []
        self.tag = ""

    @property
    def run_args(self):
        return ["--fifo-dir", self.fifo_dir, "--runc-binary", self.wrapper, "--runc-root", self.runtime_root]

    def argv(self, args):
        return ["ctr", "--address", self.sock, "--namespace", self.namespace, *[str(a) for a in args]]

    def __call__(self, *args, input=None, check=False, timeout=90):
        return run(self.argv(args), input=input, timeout=timeout, check=check)

    def tty(self, *args, input=None, until=None, timeout=90):
        return run_tty(self.argv(args), input=input, until=until, timeout=timeout)

    def new_id(self):
        cid = f"{self.tag}-{len(self.ids) + 1}"
        self.ids.append(cid)
        return cid

    def run_container(self, *opts_and_cmd, cid=None, detach=False, rm=True, **kw):
        """`ctr run [--rm|-d] RUNTIME-ARGS [OPTS] IMAGE ID CMD...`: opts_and_cmd = (*opts, '--', *cmd)."""
        i = list(opts_and_cmd).index("--") if "--" in opts_and_cmd else 0
        opts, cmd = list(opts_and_cmd[:i]), list(opts_and_cmd[i + 1 if "--" in opts_and_cmd else 0:])
        cid = cid or self.new_id()
        flags = (["-d"] if detach else []) + (["--rm"] if rm and not detach else [])
        return cid, self("run", *flags, *self.run_args, *opts, self.image, cid, *cmd, **kw)

    def tasks(self):
        """{id: (pid, status)} from `ctr task ls`."""
        out = {}
        for line in self("task", "ls", check=True).out.splitlines()[1:]:
            f = line.split()
            if len(f) >= 3:
                out[f[0]] = (int(f[1]), f[2])
        return out

    def task_status(self, cid):
        return self.tasks().get(cid, (0, None))[1]

    def cgroup(self, cid):
        return f"/{self.namespace}/{cid}"


@pytest.fixture(scope="module")
def containerd_env(runtime_bin, session_token, rootfs_tar):
    _need("containerd", "ctr", "containerd-shim-runc-v2")
    namespace = f"{helpers.ID_PREFIX}{session_token}-ctd"
    shared = SharedBaseline("containerd")
    guard = HostState(watch_cgroups=[r"^[^/]+$", r"/(default|containerd)$", "/" + re.escape(namespace)],
                      shared=shared.join())
    w = _fresh_dir(f"/tmp/{helpers.ID_PREFIX}{session_token}-ctd")
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
    daemon = subprocess.Popen(["containerd", "--config", os.path.join(w, "config.toml")], stdin=subprocess.DEVNULL,
                              stdout=logf, stderr=logf, start_new_session=True)
    logf.close()
    argv_log = ArgvLog(os.path.join(w, "runtime-argv.log"))
    wrapper = make_wrapper(os.path.join(w, "wrap"), runtime_bin, argv_log.path)
    image = f"docker.io/library/{helpers.ID_PREFIX}busybox:local"
    c = Ctr(w, sock, namespace, wrapper, argv_log, image, daemon.pid)
    c.rootfs_tar = rootfs_tar
    try:
        wait_for(lambda: os.path.exists(sock) or daemon.poll() is not None, 20, "containerd socket")
        if daemon.poll() is not None:
            with open(os.path.join(w, "containerd.log")) as f:
                pytest.fail(f"containerd exited {daemon.returncode}:\n{f.read()[-3000:]}", pytrace=False)
        wait_for(lambda: c("version").rc == 0, 20, "containerd answers")
        archive = oci_archive(rootfs_tar, os.path.join(w, "busybox-oci.tar"), image)
        c("images", "import", archive, check=True)
        yield c
    finally:
        problems = []
        try:
            for cid in c.tasks():
                c("task", "kill", "-s", "SIGKILL", cid)
                c("task", "delete", "--force", cid)
            for cid in c("containers", "ls", "-q").out.split():
                c("containers", "rm", cid)
        except AssertionError as e:
            problems.append(str(e))
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            problems.append("containerd did not exit on SIGTERM")
            daemon.kill()
            daemon.wait()
        leaked = leaked_processes(w, grace=3)
        problems += [f"process {p} ({describe(p)}) still running" for p in leaked]
        kill_processes(leaked)
        mps = umount_under(w)
        problems += [f"mount on {mp}" for mp in mps]
        problems += remove_cgroup_tree(f"/{namespace}")
        shutil.rmtree(w, ignore_errors=True)
        _finish_host(guard, shared, "containerd", expected_paths=["^" + re.escape(default_root(runtime_bin)) + "$"])
        if problems:
            pytest.fail("containerd module cleanup:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def ctr(request, containerd_env):
    c = containerd_env
    c.tag = _tag(request.node.name)
    c.ids = []
    c.log.mark()
    yield c
    problems = []
    tasks = c.tasks()
    for cid in tasks:
        c("task", "kill", "-s", "SIGKILL", cid)
    for cid in tasks:
        try:
            wait_for(lambda: c.task_status(cid) in (None, "STOPPED"), 10, f"task {cid} stops")
        except AssertionError as e:
            problems.append(str(e))
        r = c("task", "delete", "--force", cid)
        if r.rc != 0:
            problems.append(f"ctr task delete --force {cid}: {r}")
    for cid in c("containers", "ls", "-q").out.split():
        c("containers", "rm", cid)
    leaked = leaked_processes(c.workdir, exclude=(c.daemon_pid,))
    problems += [f"process {p} ({describe(p)}) still running" for p in leaked]
    kill_processes(leaked)
    for mp in sorted(helpers.mounts_under([c.workdir]), key=len, reverse=True):
        problems.append(f"mount on {mp}")
        try:
            helpers.umount(mp)
        except OSError:
            pass
    for cid in c.ids:
        for root, _dirs, _files in os.walk(c.runtime_root):
            if os.path.basename(root) == cid:
                problems.append(f"runtime state {root} left")
        for d in cgroup_tree(c.cgroup(cid)):
            problems.append(f"cgroup {d} left" + (f" with processes {cgroup_procs(d)}" if cgroup_procs(d) else ""))
    # the namespace's parent cgroup is left by design (runc removes only the container's own)
    problems += remove_cgroup_tree(f"/{c.namespace}")
    if problems:
        pytest.fail("left behind by the test (cleaned up now):\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def grpc_python():
    """An interpreter that has grpcio (this one, or Debian's python3 with python3-grpcio)."""
    for py in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(py) and subprocess.run([py, "-c", "import grpc"], capture_output=True).returncode == 0:
            return py
    pytest.skip("no python with grpcio (tests/setup.sh installs python3-grpcio)")


@pytest.fixture
def ctd_update(ctr, grpc_python):
    """ctd_update(cid, resources_dict): containerd's Tasks/Update (what CRI's UpdateContainerResources does)."""
    import json

    def update(cid, resources):
        return run([grpc_python, os.path.join(HERE, "ctd_update.py"), ctr.sock, ctr.namespace, cid,
                    json.dumps(resources)], timeout=30)
    return update
