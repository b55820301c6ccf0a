"""Namespaces: new ones (network with loopback up, ipc, uts), joined ones by path, the host's, and
user namespaces with id mappings."""

import os
import subprocess

import pytest

from helpers import LONG_RUNNING, cgroups_named, proc_status


def ns_links(runtime, b, *kinds):
    out = runtime.output(b, " ; ".join(f"readlink /proc/self/ns/{k}" for k in kinds))
    return dict(zip(kinds, out.split()))


def host_ns(kind):
    return os.readlink(f"/proc/self/ns/{kind}")


def test_new_namespaces(runtime, bundle):
    links = ns_links(runtime, bundle(), "pid", "net", "ipc", "uts", "mnt")
    for kind, link in links.items():
        assert link != host_ns(kind), kind


def test_namespace_left_out_is_the_hosts(runtime, bundle):
    b = bundle()
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"]
                                       if n["type"] not in ("network", "ipc")]
    links = ns_links(runtime, b, "net", "ipc", "uts")
    assert links["net"] == host_ns("net")
    assert links["ipc"] == host_ns("ipc")
    assert links["uts"] != host_ns("uts")


@pytest.mark.parametrize("userns", [False, True], ids=["made-by-create", "made-by-init"])
def test_loopback_up_in_new_netns(runtime, bundle, userns):
    """A new network namespace has its loopback up, whoever makes it: create's thread (which
    brings it up there) or, with a user namespace, which must own it, the init."""
    if userns:
        out = runtime.output(userns_bundle(bundle, "sh", "-c", "ip -o link; echo --; ip -o -4 addr"))
    else:
        out = runtime.output(bundle(), "ip -o link; echo --; ip -o -4 addr")
    links, addrs = out.split("--\n")
    links = links.splitlines()
    assert len(links) == 1, links
    assert links[0].split()[1] == "lo:" and ",UP," in links[0]
    assert "inet 127.0.0.1/8" in addrs
    if userns:
        return
    ping = bundle("ping", "-c", "1", "-W", "2", "127.0.0.1")
    for caps in ping.config["process"]["capabilities"].values():
        caps.append("CAP_NET_RAW")
    assert "1 packets received" in runtime.output(ping)


def test_each_container_its_own_new_netns(runtime, bundle):
    """create makes a new network namespace beside its other work (a thread of the shim's) and the
    init joins it: two containers side by side have their own, each with only its loopback, and
    the init is the only thread of its process."""
    b = bundle(*LONG_RUNNING)
    first, second = runtime.create(b), runtime.create(b)
    pids = [runtime.state(cid)["pid"] for cid in (first, second)]
    links = [os.readlink(f"/proc/{pid}/ns/net") for pid in pids]
    assert len({host_ns("net")} | set(links)) == 3
    for pid in pids:
        assert proc_status(pid)["Threads"] == "1"
        ip = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-o", "link"], capture_output=True,
                            text=True, timeout=10)
        assert [ln.split()[1] for ln in ip.stdout.splitlines()] == ["lo:"], ip.stdout + ip.stderr
        assert ",UP," in ip.stdout  # brought up by the thread that made it


@pytest.fixture
def netns(runtime):
    """A named network namespace (ip netns add), deleted afterwards."""
    name = runtime.new_id("netns")
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True, timeout=10)


def test_join_netns_by_path(runtime, bundle, netns):
    path = f"/run/netns/{netns}"
    b = bundle("sh", "-c", "readlink /proc/self/ns/net; ip -o link")
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = path
    out = runtime.output(b).splitlines()
    assert out[0] == f"net:[{os.stat(path).st_ino}]"
    # a joined namespace is used as it is: its loopback stays down
    assert len(out) == 2 and out[1].split()[1] == "lo:" and ",UP" not in out[1]


def test_join_netns_of_another_container(runtime, bundle):
    first = runtime.create(bundle(*LONG_RUNNING))
    pid = runtime.state(first)["pid"]
    b = bundle("readlink", "/proc/self/ns/net")
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = f"/proc/{pid}/ns/net"
    assert runtime.output(b).strip() == os.readlink(f"/proc/{pid}/ns/net")


def test_join_pidns_of_another_container(runtime, bundle, tmp_path):
    """A pid namespace given by path (a pod's shared one): the process is in it, is not its PID 1
    and sees the first container's init; the runtime itself, which enters the namespace for the
    fork alone, runs its createRuntime hook in the host's pid namespace as before."""
    first = runtime.create(bundle(*LONG_RUNNING))
    runtime.start(first)
    pid = runtime.state(first)["pid"]
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\nreadlink /proc/self/ns/pid > %s\n" % (tmp_path / "hook-pidns"))
    hook.chmod(0o755)
    b = bundle("sh", "-c", "readlink /proc/self/ns/pid; echo $$; cat /proc/1/cmdline | tr '\\0' ' '")
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "pid":
            ns["path"] = f"/proc/{pid}/ns/pid"
    b.config["hooks"] = {"createRuntime": [{"path": str(hook)}]}
    out = runtime.output(b).splitlines()
    assert out[0] == os.readlink(f"/proc/{pid}/ns/pid") != host_ns("pid")
    assert int(out[1]) > 1
    assert out[2].strip() == " ".join(LONG_RUNNING)  # PID 1 there: the first container's init
    assert (tmp_path / "hook-pidns").read_text().strip() == host_ns("pid")


@pytest.fixture
def dead_pidns(tmp_path):
    """A pid namespace kept by a bind mount after its only process exited (unshare --pid=FILE):
    no process can be forked into it any more."""
    path = tmp_path / "pidns"
    path.touch()
    subprocess.run(["unshare", f"--pid={path}", "--fork", "true"], check=True, timeout=10)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True, timeout=10)


@pytest.mark.ociruntime_only
def test_join_pidns_whose_init_exited_fails_cleanly(runtime, bundle, dead_pidns):
    b = bundle("true")
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "pid":
            ns["path"] = str(dead_pidns)
    cid = runtime.new_id()
    r = runtime.run("run", "--bundle", b, cid)
    runtime.refused(r)
    assert r.err == ("ociruntime: fork the container init into its pid namespace: "
                     f"{dead_pidns}: its init has exited\n")
    assert os.listdir(runtime.root) == [] and cgroups_named(cid) == []


def test_join_bad_namespace_path_fails(runtime, bundle, tmp_path):
    b = bundle("true")
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = str(tmp_path / "not-a-namespace")
    r = runtime.run_container(b)
    runtime.refused(r)
    assert os.listdir(runtime.root) == []


USERNS_MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def userns_bundle(bundle, *args):
    b = bundle(*args, public=True)
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = list(USERNS_MAP)
    b.config["linux"]["gidMappings"] = list(USERNS_MAP)
    return b


def test_user_namespace_maps(runtime, bundle):
    b = userns_bundle(bundle, "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g;"
                                          "stat -c %u:%g /bin/busybox; readlink /proc/self/ns/user")
    lines = runtime.output(b).splitlines()
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1].split() == ["0", "100000", "65536"]
    assert lines[2:4] == ["0", "0"]
    assert lines[4] == "65534:65534"          # host root's files are unmapped: overflow ids
    assert lines[5] != host_ns("user")


def test_user_namespace_host_ids(runtime, bundle):
    b = userns_bundle(bundle, *LONG_RUNNING)
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    runtime.start(cid)
    runtime.wait_status(cid, "running")
    st = proc_status(pid)
    assert st["Uid"].split() == ["101000"] * 4
    assert st["Gid"].split() == ["101000"] * 4


def test_user_namespace_is_not_root_on_host(runtime, bundle):
    """Root in the container cannot write to the host's root-owned files through a bind mount."""
    b = userns_bundle(bundle, "sh", "-c", "cat /mnt/file; echo x > /mnt/file; echo rc=$?")
    data = b.path.parent / "data"
    data.mkdir()
    (data / "file").write_text("host\n")
    os.chmod(data / "file", 0o644)
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(data),
                               "options": ["rbind"]})
    assert runtime.output(b) == "host\nrc=1\n"
    assert (data / "file").read_text() == "host\n"


def test_cgroup_namespace_shows_own_cgroup_as_root(runtime, bundle):
    b = bundle()
    b.config["linux"]["namespaces"].append({"type": "cgroup"})
    out = runtime.output(b, "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup")
    link, *lines = out.splitlines()
    assert link != host_ns("cgroup")
    # every hierarchy's path is the namespace root: the container's own cgroup
    assert lines and all(line.split(":", 2)[2] == "/" for line in lines), lines


def test_time_namespace_offsets(runtime, bundle):
    if runtime.name == "runc":
        pytest.skip("runc 1.1 has no time namespace support")
    b = bundle()
    b.config["linux"]["namespaces"].append({"type": "time"})
    b.config["linux"]["timeOffsets"] = {"boottime": {"secs": 1000 * 86400, "nanosecs": 0}}
    link, uptime = runtime.output(b, "readlink /proc/self/ns/time; cut -d. -f1 /proc/uptime").split()
    assert link != host_ns("time")
    assert int(uptime) >= 1000 * 86400
