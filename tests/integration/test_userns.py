"""User namespaces run by root: several uid/gid ranges, setgroups, a joined user namespace.
(Rootless, with newuidmap/newgidmap, is in test_rootless.py.)"""

import os

import pytest

from helpers import LONG_RUNNING, proc_status

RANGES = [{"containerID": 0, "hostID": 200000, "size": 1000},
          {"containerID": 1000, "hostID": 300000, "size": 1000},
          {"containerID": 5000, "hostID": 400000, "size": 10}]


def _userns_bundle(bundle, *args, maps=RANGES):
    b = bundle(*args, public=True)
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [dict(m) for m in maps]
    b.config["linux"]["gidMappings"] = [dict(m) for m in maps]
    return b


def test_several_ranges(runtime, bundle):
    b = _userns_bundle(bundle, "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups")
    lines = [line.split() for line in runtime.output(b).splitlines()]
    want = [[str(m["containerID"]), str(m["hostID"]), str(m["size"])] for m in RANGES]
    assert lines[:3] == want and lines[3:6] == want
    assert lines[6] == ["allow"]             # root wrote the maps: setgroups stays allowed


def test_process_in_second_range_with_groups(runtime, bundle):
    b = _userns_bundle(bundle, *LONG_RUNNING)
    b.config["process"]["user"] = {"uid": 1005, "gid": 5003, "additionalGids": [1001, 5]}
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    runtime.start(cid)
    runtime.wait_status(cid, "running")
    st = proc_status(pid)
    assert st["Uid"].split() == ["300005"] * 4
    assert st["Gid"].split() == ["400003"] * 4
    assert sorted(st["Groups"].split()) == ["200005", "300001"]


@pytest.mark.parametrize("user,kind", [({"uid": 3000, "gid": 0}, "uid"),   # between the ranges
                                       ({"uid": 0, "gid": 2500}, "gid")])
def test_unmapped_user_is_refused(runtime, bundle, user, kind):
    """A process id the container's user namespace does not map is refused (the kernel would
    refuse setresuid/setresgid at the last step): runc's words; ociruntime says it before anything
    is made, naming the field."""
    b = _userns_bundle(bundle, "true")
    b.config["process"]["user"] = user
    r = runtime.run_container(b)
    runtime.refused(r, f"cannot set {kind} to unmapped user in user namespace",
                    ours=[f"process.user.{kind} {user[kind]} is not in linux.{kind}Mappings"])
    assert os.listdir(runtime.root) == []


@pytest.mark.ociruntime_only  # (runc 1.1.5: "setgroups: invalid argument", at the last step)
def test_unmapped_additional_gid_is_refused(runtime, bundle):
    b = _userns_bundle(bundle, "true")
    b.config["process"]["user"] = {"uid": 0, "gid": 0, "additionalGids": [5, 7000]}
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", b, cid)
    runtime.refused(r, "cannot set gid to unmapped user in user namespace: process.user.additionalGids[1] 7000 "
                    "is not in linux.gidMappings")
    assert os.listdir(runtime.root) == [] and runtime.status(cid) is None


def test_exec_as_an_unmapped_user_is_refused(runtime, bundle):
    cid = runtime.create(_userns_bundle(bundle, *LONG_RUNNING))
    runtime.start(cid)
    r = runtime.run("exec", "--user", "3000:0", cid, "true")
    runtime.refused(r, "cannot set uid to unmapped user in user namespace")
    assert runtime.status(cid) == "running"
    assert [p for p in runtime.run("ps", cid, check=True).out.splitlines()[1:] if " true" in p] == []


@pytest.mark.ociruntime_only  # runc 1.1.5 wants uid mappings in the config for a joined namespace too
def test_join_user_namespace_by_path_becomes_its_root(runtime, bundle):
    """A second container joining the first one's user namespace runs as that namespace's root
    (host uid 200000), not as the host's unmapped root."""
    first = runtime.create(_userns_bundle(bundle, *LONG_RUNNING))
    pid = runtime.state(first)["pid"]
    b = bundle("sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user; touch /tmp/x && echo ok",
               public=True)
    b.config["root"]["readonly"] = False
    b.config["linux"]["namespaces"].append({"type": "user", "path": f"/proc/{pid}/ns/user"})
    out = runtime.output(b).split("\n")
    assert out[0] == "0"
    assert out[1].split() == ["0", "200000", "1000"]
    assert out[4] == os.readlink(f"/proc/{pid}/ns/user")
    assert out[5] == "ok"


def test_bind_source_only_host_root_may_reach(runtime, bundle, tmp_path):
    """A bind source under a directory only the host's root may enter (0700): the runtime opens
    it before the user namespace (as runc), so the container gets it, read-only as asked, and
    its own root (host uid 200000) can read what it may read there."""
    locked = tmp_path / "locked"
    (locked / "data").mkdir(parents=True)
    os.chmod(locked, 0o700)
    (locked / "data" / "file").write_text("behind 0700\n")
    os.chmod(locked / "data" / "file", 0o644)
    b = _userns_bundle(bundle, "sh", "-c", "cat /data/file /data1/file; touch /data/x 2>/dev/null || echo ro; "
                                           "grep -c ' /data ' /proc/self/mountinfo")
    b.config["mounts"] += [{"destination": "/data", "type": "bind", "source": str(locked / "data"),
                            "options": ["bind", "ro"]},
                           {"destination": "/data1", "type": "bind", "source": str(locked / "data"),
                            "options": ["rbind"]}]
    for d in ("data", "data1"):   # (the rootfs is the host root's: its root in the namespace cannot mkdir)
        (b.rootfs / d).mkdir()
    assert runtime.output(b) == "behind 0700\nbehind 0700\nro\n1\n"
    assert sorted(os.listdir(locked / "data")) == ["file"]


def test_bind_source_mounts_do_not_propagate_to_host(runtime, bundle, tmp_path):
    """A bind source that is a shared mount on the host (every mount is, on a systemd host): with
    a user namespace the container's copy is a slave, so a mount made in it inside the container
    never appears on the host (the source is opened before the user namespace, by the host's
    root; its clone must not stay in the host's peer group)."""
    from helpers import MS_BIND, MS_SHARED, mount, parse_mountinfo, umount
    src = tmp_path / "shared"
    src.mkdir()
    mount(str(src), str(src), None, MS_BIND)
    try:
        mount("none", str(src), None, MS_SHARED)
        b = _userns_bundle(bundle, "sh", "-c", "mkdir -p /vol/inner && mount -t tmpfs none /vol/inner && "
                                               "echo mounted; grep ' /vol ' /proc/self/mountinfo")
        b.config["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN"]
                                               for k in ("bounding", "effective", "permitted")}
        b.config["mounts"].append({"destination": "/vol", "type": "bind", "source": str(src),
                                   "options": ["rbind"]})
        (b.rootfs / "vol").mkdir()
        os.chmod(src, 0o777)
        out = runtime.output(b).splitlines()
        assert out[0] == "mounted"
        (vol,) = parse_mountinfo(out[1])
        assert not any(tag.startswith("shared:") for tag in vol["optional"]) or \
            any(tag.startswith("master:") for tag in vol["optional"]), vol
        with open("/proc/self/mountinfo") as f:
            assert str(src / "inner") not in f.read()
    finally:
        umount(str(src))
