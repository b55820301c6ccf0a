"""A config without a mount namespace: the container uses the runtime's (the spec: a namespace type
not listed is inherited), as runc does (issue 20).

The rootfs is bound onto itself in the host's mount namespace, the config's mounts are made under
that bind, the process is chrooted into it.  What each test checks beyond what it runs: the host's
own mounts are as they were (runc 1.1.5 makes the caller's / private) and nothing is left mounted
after delete (runc 1.1.5 leaves everything), including in a peer of a shared mount the rootfs
lies on.  Running runc here would change the machine's mounts for good, so only the refusals,
which runc makes before mounting anything, run against it."""

import os
import re
import subprocess

import pytest

from helpers import LONG_RUNNING, MS_BIND, MS_SHARED, mount, parse_mountinfo, umount

RUNC_CHANGES_THE_HOST = ("runc 1.1.5 makes the caller's / private and leaves the container's mounts behind in the "
                         "host's mount namespace: not run here")
TMPDIRS = ("/tmp/", "/var/tmp/", "/run/netns/")   # other sessions' test mounts come and go there


# what the process sees mounted with the default config (and its root): `runc spec`'s mounts
CONTAINER_MOUNTS = ["/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]


def host_ns(kind="mnt"):
    return os.readlink(f"/proc/self/ns/{kind}")


def host_table():
    """The host's mounts outside the temporary directories (which other test sessions use): what
    no container may change (propagation, options, what is mounted where)."""
    with open("/proc/self/mountinfo") as f:
        mounts = parse_mountinfo(f.read())
    return sorted((m["id"], m["parent"], m["mountpoint"], m["root"], m["fstype"], m["source"],
                   tuple(sorted(m["options"])), tuple(m["optional"]), tuple(sorted(m["super"])))
                  for m in mounts if not (m["mountpoint"] + "/").startswith(TMPDIRS))


def mounts_at_or_under(path):
    with open("/proc/self/mountinfo") as f:
        return [m for m in parse_mountinfo(f.read())
                if m["mountpoint"] == str(path) or m["mountpoint"].startswith(str(path) + "/")]


def refused(runtime, res, *words):
    """A refusal: non-zero exit, no traceback, ociruntime's error on one line holding ``words``
    (tests/helpers.py's Runtime.refused where the branch that adds it has landed)."""
    if hasattr(runtime, "refused"):
        return runtime.refused(res, ours=words)
    assert res.rc != 0, res
    assert "Traceback" not in res.err, res.err
    if runtime.name == "ociruntime":
        lines = res.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("ociruntime: "), res.err
        for w in words:
            assert w in lines[0], lines[0]
        return lines[0]
    return res.err


def no_mount_ns(b, *args):
    """Leave the mount namespace (and what needs one) out of the bundle's config."""
    if args:
        b.args = list(args)
    linux = b.config["linux"]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "mount"]
    linux.pop("maskedPaths", None)
    linux.pop("readonlyPaths", None)
    return b


@pytest.fixture
def host_unchanged(runtime):
    """The host's own mount table before the test; checked again by the test after its delete."""
    if runtime.name != "ociruntime":
        pytest.skip(RUNC_CHANGES_THE_HOST)
    before = host_table()

    def check():
        assert host_table() == before, "the host's mount table changed"
    return check


def test_process_sees_its_root_and_mounts(runtime, bundle, tmp_path, host_unchanged):
    """In the host's mount namespace, chrooted into the rootfs: the config's mounts (proc, dev,
    devpts, shm, mqueue, sysfs, cgroup, a bind) are there, the root is read-only (root.readonly);
    from the host the same mounts lie under the rootfs while it runs, and none after delete."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello").write_text("from the host\n")
    b = no_mount_ns(bundle())
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(data), "options": ["rbind", "ro"]})
    b.args = ["sh", "-c", "readlink /proc/self/ns/mnt; cat /mnt/hello; cut -d' ' -f5 /proc/self/mountinfo | sort; "
                          "touch /x 2>/dev/null || echo ro; test -c /dev/null && echo null; ls /bin/busybox"]
    out = runtime.output(b).splitlines()
    assert out[0] == host_ns()
    assert out[1] == "from the host"
    points = [p for p in out[2:-3] if not p.startswith("/sys/fs/cgroup/")]
    assert points == sorted(CONTAINER_MOUNTS + ["/mnt"])
    assert out[-3:] == ["ro", "null", "/bin/busybox"]
    assert mounts_at_or_under(b.rootfs) == []
    host_unchanged()


def test_no_pivot_chroots_too(runtime, bundle, host_unchanged):
    """--no-pivot moves the rootfs over / in a mount namespace of the container's own; in the
    host's that would replace the host's root: the process is chrooted as without it."""
    b = no_mount_ns(bundle("sh", "-c", "readlink /proc/self/ns/mnt; ls /bin/busybox; "
                                       "cut -d' ' -f5 /proc/self/mountinfo | grep -v '^/sys/fs/cgroup/' | sort"))
    r = runtime.run("run", "--no-pivot", "--bundle", b, runtime.new_id())
    assert r.rc == 0, r
    out = r.out.splitlines()
    assert out[:2] == [host_ns(), "/bin/busybox"]
    assert out[2:] == sorted(CONTAINER_MOUNTS)
    assert mounts_at_or_under(b.rootfs) == []
    host_unchanged()


def test_mounts_are_the_hosts_while_it_runs(runtime, bundle, host_unchanged):
    """While the container exists its mounts are in the host's table, under the rootfs (where
    runc puts them too), and its root is the rootfs; delete removes every one."""
    b = no_mount_ns(bundle(*LONG_RUNNING))
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    rootfs = os.path.realpath(b.rootfs)
    st, root = os.stat(rootfs), os.stat(f"/proc/{pid}/root")
    assert (st.st_dev, st.st_ino) == (root.st_dev, root.st_ino)
    assert os.readlink(f"/proc/{pid}/ns/mnt") == host_ns()
    points = {m["mountpoint"][len(rootfs):] or "/": m["fstype"] for m in mounts_at_or_under(rootfs)}
    assert {k: v for k, v in points.items() if not k.startswith("/sys/fs/cgroup/")} == {
        "/": points["/"], "/proc": "proc", "/dev": "tmpfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs",
        "/dev/mqueue": "mqueue", "/sys": "sysfs", "/sys/fs/cgroup": "tmpfs"}
    runtime.start(cid)
    runtime.kill(cid, "TERM", check=True)
    runtime.wait_status(cid, "stopped")
    assert len(mounts_at_or_under(rootfs)) == len(points)       # a stopped container keeps them
    runtime.delete(cid, check=True)
    assert mounts_at_or_under(rootfs) == []
    host_unchanged()


def test_exec_enters_the_containers_root(runtime, bundle, host_unchanged):
    """exec runs in the container's root too (runc 1.1.5's exec runs it at the host's root)."""
    b = no_mount_ns(bundle(*LONG_RUNNING))
    b.copy_rootfs()
    (b.own_rootfs / "marker").write_text("the rootfs\n")
    cid = runtime.create(b)
    runtime.start(cid)
    r = runtime.run("exec", cid, "sh", "-c", "cat /marker; readlink /proc/self/ns/mnt; cd /tmp && pwd", check=True)
    assert r.out.splitlines() == ["the rootfs", host_ns(), "/tmp"]
    runtime.delete(cid, force=True, check=True)
    assert mounts_at_or_under(b.rootfs) == []
    host_unchanged()


def test_every_namespace_inherited(runtime, bundle, host_unchanged):
    """No namespace at all (runtime-tools' linux_ns_itype): each of the process's is the runtime's."""
    b = no_mount_ns(bundle(*LONG_RUNNING))
    b.config["linux"]["namespaces"] = []
    b.config.pop("hostname", None)
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    for kind in ("mnt", "pid", "net", "ipc", "uts", "cgroup", "user"):
        assert os.readlink(f"/proc/{pid}/ns/{kind}") == host_ns(kind), kind
    runtime.delete(cid, force=True, check=True)
    assert mounts_at_or_under(b.rootfs) == []
    host_unchanged()


def test_a_failed_create_leaves_no_mount(runtime, bundle, tmp_path, host_unchanged):
    """A mount that fails half-way through the config's list: create fails and takes back the
    rootfs bind and every mount already made under it."""
    b = no_mount_ns(bundle("true"))
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(tmp_path / "missing"),
                               "options": ["rbind"]})
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", b, cid)
    refused(runtime, r, str(tmp_path / "missing"))
    assert mounts_at_or_under(b.rootfs) == []
    assert os.listdir(runtime.root) == []
    host_unchanged()


def test_rootfs_on_a_shared_mount(runtime, bundle, tmp_path, host_unchanged):
    """The rootfs lies on a shared mount that has a peer elsewhere: the peer gets the rootfs bind
    (a mount made in the host's namespace propagates as any), never the container's mounts under
    it, and loses the bind again at delete."""
    shared, peer = tmp_path / "shared", tmp_path / "peer"
    shared.mkdir()
    peer.mkdir()
    mount("tmpfs", str(shared), "tmpfs")
    try:
        mount("", str(shared), None, MS_SHARED)
        mount(str(shared), str(peer), None, MS_BIND)
        b = no_mount_ns(bundle(*LONG_RUNNING))
        b.config["root"]["path"] = str(shared / "rootfs")
        subprocess.run(["cp", "-a", str(b.shared_rootfs), str(shared / "rootfs")], check=True, timeout=60)
        cid = runtime.create(b)
        assert [m["mountpoint"] for m in mounts_at_or_under(peer)] == [str(peer), str(peer / "rootfs")]
        assert {m["mountpoint"] for m in mounts_at_or_under(shared / "rootfs")} >= {
            str(shared / "rootfs/proc"), str(shared / "rootfs/dev")}
        runtime.delete(cid, force=True, check=True)
        assert [m["mountpoint"] for m in mounts_at_or_under(peer)] == [str(peer)]
        assert [m["mountpoint"] for m in mounts_at_or_under(shared)] == [str(shared)]
    finally:
        for p in (peer, shared):
            while mounts_at_or_under(p):
                umount(str(p))
    host_unchanged()


# -- what needs a mount namespace of the container's own -------------------------------------------

NEEDS_ONE = {
    "maskedPaths": (lambda b: b.config["linux"].update(maskedPaths=["/proc/kcore"]), "linux.maskedPaths"),
    "readonlyPaths": (lambda b: b.config["linux"].update(readonlyPaths=["/proc/sys"]), "linux.readonlyPaths"),
}


@pytest.mark.parametrize("case", sorted(NEEDS_ONE))
def test_refused_without_a_mount_namespace(runtime, bundle, case):
    """runc refuses these too, before it mounts anything ("unable to restrict sys entries without
    a private MNT namespace")."""
    change, field = NEEDS_ONE[case]
    b = no_mount_ns(bundle("true"))
    change(b)
    before = host_table()
    cid = runtime.new_id()
    line = refused(runtime, runtime.run("create", "--bundle", b, cid), field, "needs a mount namespace")
    if runtime.name != "ociruntime":
        assert "MNT namespace" in line
    assert os.listdir(runtime.root) == [] and mounts_at_or_under(b.rootfs) == []
    assert host_table() == before


OURS_ONLY = {
    # runc applies rootfsPropagation to the host's / (it would change the machine)
    "rootfsPropagation": (lambda b: b.config["linux"].update(rootfsPropagation="rshared"),
                          "config.json: linux.rootfsPropagation: needs a mount namespace"),
    # the container's user namespace may not mount in the host's mount namespace
    "user": (lambda b: (b.config["linux"]["namespaces"].append({"type": "user"}),
                        b.config["linux"].update(uidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
                                                 gidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}])),
             "config.json: linux.namespaces: a user namespace needs a mount namespace"),
    "host-root": (lambda b: b.config["root"].update(path="/", readonly=True),
                  "config.json: root.path: the host's / cannot be the root of a container without a mount namespace"),
}


@pytest.mark.ociruntime_only
@pytest.mark.parametrize("case", sorted(OURS_ONLY))
def test_refused_ours(runtime, bundle, case):
    change, words = OURS_ONLY[case]
    b = no_mount_ns(bundle("true"))
    change(b)
    before = host_table()
    cid = runtime.new_id()
    line = refused(runtime, runtime.run("create", "--bundle", b, cid), words)
    assert re.match(r"ociruntime: [^\n]+$", line)
    assert os.listdir(runtime.root) == []
    assert host_table() == before
