"""rootfsPropagation when the rootfs is itself a mount point in a shared peer group, as containerd's
snapshot is (an overlay mounted at <bundle>/rootfs under /run, which is shared on systemd hosts).

This host's / is private, so each test makes the shape itself: the bundle directory bound onto
itself and made shared, the rootfs bound under it (a mount point of its own peer group, with a
member in the caller's namespace), and a volume: a tmpfs under the bundle (shared too) bound into
the container with the same propagation, as containerd's CRI does (rslave for HostToContainer,
rshared for Bidirectional).  For every value runc accepts, the container must start (pivot_root
refuses a new root whose parent mount is shared), none of its mounts may appear in the caller's
namespace, and the volume's propagation is checked from both sides: a mount made on the host
after the start is seen inside for the slave and shared kinds, one made inside is seen on the host
for the shared kinds only.
"""

import os

import pytest

from helpers import LONG_RUNNING, MS_BIND, MS_SHARED, mount, parse_mountinfo, umount

SEES_HOST = {"slave", "rslave", "shared", "rshared"}
SEEN_BY_HOST = {"shared", "rshared"}
ALL = ["private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"]


def host_mounts(prefix):
    with open("/proc/self/mountinfo") as f:
        return {m["mountpoint"]: m for m in parse_mountinfo(f.read())
                if m["mountpoint"] == prefix or m["mountpoint"].startswith(prefix + "/")}


@pytest.fixture
def snapshot_like(bundle):
    """A bundle whose directory is a shared mount, with its rootfs a mount point (a peer group of
    its own) and a shared tmpfs at <bundle>/vol; everything unmounted afterwards."""
    b = bundle(*LONG_RUNNING)
    b.copy_rootfs()
    os.mkdir(b.own_rootfs / "vol")
    top = str(b.path)
    made = []
    try:
        mount(top, top, None, MS_BIND)
        made.append(top)
        mount("none", top, None, MS_SHARED)
        mount(str(b.own_rootfs), str(b.own_rootfs), None, MS_BIND)
        made.append(str(b.own_rootfs))
        vol = b.path / "vol"
        vol.mkdir()
        mount("tmpfs", str(vol), "tmpfs", 0, "size=1m")
        made.append(str(vol))
        (vol / "hostmade").mkdir()
        (vol / "inside").mkdir()
        yield b
    finally:
        for mp in sorted(host_mounts(top), key=len, reverse=True):
            try:
                umount(mp)
            except OSError:
                pass


@pytest.mark.parametrize("propagation", ALL)
def test_rootfs_mount_point_of_a_shared_peer_group(runtime, snapshot_like, propagation):
    if propagation == "runbindable" and runtime.name == "runc":
        pytest.skip("runc 1.1.5 fails this config: / made runbindable makes the rootfs mount unbindable, it "
                    "makes that mount private only when it is shared, and the rootfs's own bind is refused "
                    "(EINVAL)")
    b = snapshot_like
    top, rootfs, vol = str(b.path), str(b.own_rootfs), b.path / "vol"
    before = host_mounts(top)
    assert [t for t in before[rootfs]["optional"] if t.startswith("shared:")], before[rootfs]
    assert [t for t in before[str(vol)]["optional"] if t.startswith("shared:")], before[str(vol)]
    b.config["root"] = {"path": rootfs, "readonly": False}
    b.config["linux"]["rootfsPropagation"] = propagation
    b.config["mounts"].append({"destination": "/vol", "type": "bind", "source": str(vol),
                               "options": ["rbind", propagation]})
    caps = b.config["process"]["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        caps[kind].append("CAP_SYS_ADMIN")            # the exec below mounts in the container

    def leaked(allowed=()):
        now = host_mounts(top)
        return sorted(mp for mp in now if mp not in before and mp not in allowed)

    cid = runtime.create(b)
    try:
        assert leaked() == [], "the container's mounts appeared in the caller's namespace"
        runtime.start(cid)
        assert runtime.status(cid) == "running"
        with open(f"/proc/{runtime.state(cid)['pid']}/mountinfo") as f:
            inside = {m["mountpoint"] for m in parse_mountinfo(f.read())}
        assert {"/", "/proc", "/dev", "/sys", "/vol"} <= inside

        # host -> container: a mount made under the volume's source after the start
        mount("tmpfs", str(vol / "hostmade"), "tmpfs", 0, "size=1m")
        (vol / "hostmade" / "f").write_text("from-host\n")
        r = runtime.run("exec", cid, "cat", "/vol/hostmade/f")
        if propagation in SEES_HOST:
            assert (r.rc, r.out) == (0, "from-host\n"), r
        else:
            assert r.rc != 0 and "No such file" in r.err, r

        # container -> host: a mount made inside under the volume
        r = runtime.run("exec", cid, "sh", "-c",
                        "mount -t tmpfs inside /vol/inside && echo from-container > /vol/inside/f")
        assert r.rc == 0, r
        seen = host_mounts(top).get(str(vol / "inside"))
        if propagation in SEEN_BY_HOST:
            assert seen is not None and seen["fstype"] == "tmpfs"
            assert (vol / "inside" / "f").read_text() == "from-container\n"
        else:
            assert seen is None
            assert not (vol / "inside" / "f").exists()
        ours = {str(vol / "hostmade"), str(vol / "inside")}
        assert leaked(ours) == [], "the container's mounts appeared in the caller's namespace"
    finally:
        r = runtime.delete(cid, force=True)
    assert r.rc == 0, r
    assert leaked({str(vol / "hostmade"), str(vol / "inside")}) == []
    assert host_mounts(rootfs).keys() == {rootfs}
