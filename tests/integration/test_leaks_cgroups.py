"""Cgroups the runtime meets that it did not make, and processes its init leaves (issue 19):
a frozen cgroup is refused before any process joins it, within a bounded time and leaving
nothing; a cpuset parent made with a plain mkdir (empty cpus/mems) is filled, never one with
values; a cgroupsPath made beforehand is left in place, empty; a container without a pid namespace
of its own has what outlives its init killed by `delete`, as runc's destroy does.

The cgroups the tests make are named oci-test-<token>-..., made as another tool would (mkdir) and
removed by the test (fixture host_cgroups)."""

import json
import os
import time

import pytest

from helpers import LONG_RUNNING, CGROUP_ROOT, assert_cgroups_gone, assert_one_line_error, cgroup_procs, cgroups_named, pid_alive

FROZEN_MSG = "container's cgroup unexpectedly frozen"
PURE_V2 = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.procs"))  # /sys/fs/cgroup is cgroup2 itself
FREEZERS = {  # hierarchy, control file, its frozen value
    "v1": ("freezer", "freezer.state", "FROZEN"),
    "v2": ("" if PURE_V2 else "unified", "cgroup.freeze", "1"),
}


def _freezer(version):
    hierarchy, name, value = FREEZERS[version]
    if not os.path.exists(os.path.join(CGROUP_ROOT, hierarchy, "cgroup.procs")):
        pytest.skip("the host has no %s hierarchy at %s/%s" % (
            "v1 freezer" if version == "v1" else "cgroup2", CGROUP_ROOT, hierarchy))
    return hierarchy, name, value


def _hierarchies():
    """The hierarchies the runtime makes the container's cgroup in ("": the root of a pure v2
    host's one hierarchy)."""
    if PURE_V2:
        return [""]
    return sorted(h for h in os.listdir(CGROUP_ROOT) if os.path.exists(os.path.join(CGROUP_ROOT, h, "cgroup.procs")))


def _refused_frozen(runtime, b, cid, cmd, made):
    """`cmd` refuses within a bounded time with runc's words, and leaves nothing but the cgroups
    the test made (empty: nothing joined them)."""
    t0 = time.monotonic()
    r = runtime.run(cmd, "--bundle", b, cid, timeout=15)
    took = time.monotonic() - t0
    assert_one_line_error(r, FROZEN_MSG)
    assert took < 5, f"{cmd} took {took:.1f}s to refuse"
    assert os.listdir(runtime.root) == []
    runtime.refused(runtime.run("state", cid), "container does not exist")
    assert sorted(cgroups_named(cid)) == sorted(made)  # none of the runtime's
    for d in made:
        assert cgroup_procs(d) == []


@pytest.mark.parametrize("cmd", ["create", "run"])
def test_frozen_v1_cgroup_refused(runtime, bundle, host_cgroups, cmd):
    """runc 1.1 refuses a container cgroup whose v1 freezer is FROZEN; so does ociruntime."""
    hierarchy, name, value = _freezer("v1")
    cid = runtime.new_id()
    b = bundle(*LONG_RUNNING)
    b.config["linux"]["cgroupsPath"] = "/" + cid
    d = host_cgroups.make(hierarchy, cid, **{name.replace(".", "_"): value})
    _refused_frozen(runtime, b, cid, cmd, [d])


@pytest.mark.ociruntime_only  # runc 1.1.5 checks the leaf's v1 freezer only: it hangs in these
@pytest.mark.parametrize("cmd", ["create", "run"])
@pytest.mark.parametrize("where", ["cgroup", "parent"])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_frozen_cgroup_or_parent_refused(runtime, bundle, host_cgroups, version, where, cmd):
    """A frozen parent freezes the cgroup create makes below it (v1 and v2 alike), and on this
    hybrid host a frozen cgroup in the cgroup2 hierarchy freezes a process that joins it as the
    v1 freezer does: each is refused before the init joins, within a bounded time."""
    hierarchy, name, value = _freezer(version)
    cid = runtime.new_id()
    b = bundle(*LONG_RUNNING)
    rel = f"{cid}-grp/{cid}" if where == "parent" else cid
    b.config["linux"]["cgroupsPath"] = "/" + rel
    frozen = host_cgroups.make(hierarchy, rel.split("/")[0], **{name.replace(".", "_"): value})
    _refused_frozen(runtime, b, cid, cmd, [frozen])


@pytest.mark.parametrize("force", [True, False], ids=["force", "stopped"])
def test_delete_kills_what_outlives_an_init_in_the_hosts_pid_namespace(runtime, bundle, force):
    """Without a pid namespace of its own, what the init started outlives it in the container's
    cgroup: `delete` (of the stopped container, --force or not) kills it first, as runc's destroy,
    instead of failing with a busy cgroup."""
    b = bundle("sh", "-c", "sleep 1000 & sleep 1000 & exit 0")
    b.config["linux"]["namespaces"] = [ns for ns in b.config["linux"]["namespaces"] if ns["type"] != "pid"]
    cid = runtime.create(b)
    runtime.start(cid)
    runtime.wait_status(cid, "stopped")
    dirs = cgroups_named(cid)
    assert dirs, "the container has no cgroup"
    deadline = time.monotonic() + 5
    while len(left := {p for d in dirs for p in cgroup_procs(d)}) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(left) == 2, left  # the two sleeps, the init gone
    r = runtime.delete(cid, force=force)
    assert r.rc == 0, r.err
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in left) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(pid_alive(p) for p in left)
    assert_cgroups_gone(runtime, cid)
    assert os.listdir(runtime.root) == []


def _values(d):
    return tuple(open(os.path.join(d, f)).read().strip() for f in ("cpuset.cpus", "cpuset.mems"))


def _cpuset_top():
    top = os.path.join(CGROUP_ROOT, "cpuset")
    if not os.path.exists(os.path.join(top, "cpuset.cpus")):
        pytest.skip("the host mounts no v1 cpuset hierarchy")
    return top, _values(top)


@pytest.mark.parametrize("depth", [1, 2])
def test_cpuset_parents_made_by_mkdir_are_filled(runtime, bundle, host_cgroups, depth):
    """Parents made with a plain mkdir have empty cpuset.cpus/mems, and no task can join a cgroup
    below them (ENOSPC): create fills each empty one from the nearest populated ancestor (as runc);
    delete removes the container's cgroup only."""
    top, root_values = _cpuset_top()
    cid = runtime.new_id()
    parents = "/".join(f"{cid}-p{i}" for i in range(depth))
    for h in _hierarchies():  # (in each: runc would leave the parents it made)
        host_cgroups.make(h, parents)
    pdirs = [os.path.join(top, "/".join(parents.split("/")[:i + 1])) for i in range(depth)]
    assert all(_values(d) == ("", "") for d in pdirs)
    b = bundle(*LONG_RUNNING)
    b.config["linux"]["cgroupsPath"] = f"/{parents}/{cid}"
    runtime.create(b, cid)
    runtime.start(cid)
    assert runtime.state(cid)["status"] == "running"
    leaf = os.path.join(pdirs[-1], cid)
    assert [_values(d) for d in pdirs + [leaf]] == [root_values] * (depth + 1)
    assert cgroup_procs(leaf)
    assert runtime.delete(cid, force=True).rc == 0
    assert not os.path.exists(leaf)
    assert all(os.path.isdir(d) for d in pdirs)  # the test's, left to it


def test_cpuset_values_of_a_parent_are_kept(runtime, bundle, host_cgroups):
    """A parent whose cpuset.cpus/mems another tool set keeps them; the container's cgroup gets
    them (not the root's)."""
    top, (cpus, mems) = _cpuset_top()
    first_cpu = cpus.replace(",", "-").split("-")[0]
    cid = runtime.new_id()
    for h in _hierarchies():
        host_cgroups.make(h, f"{cid}-p")
    parent = host_cgroups.make("cpuset", f"{cid}-p", cpuset_cpus=first_cpu, cpuset_mems=mems)
    b = bundle("sh", "-c", "grep Cpus_allowed_list /proc/self/status")
    b.config["linux"]["cgroupsPath"] = f"/{cid}-p/{cid}"
    r = runtime.run("run", "--bundle", b, cid)
    assert r.rc == 0, r.err
    assert r.out.split() == ["Cpus_allowed_list:", first_cpu]
    assert _values(parent) == (first_cpu, mems)
    assert not os.path.exists(os.path.join(parent, cid))


@pytest.mark.ociruntime_only  # runc 1.1.5's destroy removes the container's cgroup, made by it or not
def test_a_cgroup_made_beforehand_is_left_empty(runtime, bundle, host_cgroups):
    """A cgroupsPath that existed before create (made by another tool, in every hierarchy; the
    cpuset one with a plain mkdir) is not the runtime's: delete leaves it where it was, with no
    process of the container in it; the record in state.json says it was there."""
    cid = runtime.new_id()
    dirs = [host_cgroups.make(h, cid) for h in _hierarchies()]
    b = bundle("sh", "-c", "sleep 1000 & exec sleep 1000")
    b.config["linux"]["cgroupsPath"] = "/" + cid
    runtime.create(b, cid)
    runtime.start(cid)
    with open(os.path.join(runtime.root, cid, "state.json")) as f:
        assert json.load(f)["cgroup"]["created"] == []
    deadline = time.monotonic() + 5
    while len({p for d in dirs for p in cgroup_procs(d)}) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)  # (the shell's fork of the first sleep)
    assert len({p for d in dirs for p in cgroup_procs(d)}) == 2
    assert runtime.delete(cid, force=True).rc == 0
    assert all(os.path.isdir(d) for d in dirs)
    deadline = time.monotonic() + 5
    while any(cgroup_procs(d) for d in dirs) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [d for d in dirs if cgroup_procs(d)] == []
    assert os.listdir(runtime.root) == []


def test_a_parent_made_beforehand_is_left(runtime, bundle, host_cgroups):
    """A parent of cgroupsPath made by another tool stays; the container's cgroup below it, which
    the runtime made, goes (runc alike)."""
    cid = runtime.new_id()
    parents = [host_cgroups.make(h, f"{cid}-p") for h in _hierarchies()]  # (cpuset's empty)
    b = bundle(*LONG_RUNNING)
    b.config["linux"]["cgroupsPath"] = f"/{cid}-p/{cid}"
    runtime.create(b, cid)
    assert all(os.path.isdir(os.path.join(p, cid)) for p in parents)
    assert runtime.delete(cid, force=True).rc == 0
    assert all(os.path.isdir(p) and not os.path.exists(os.path.join(p, cid)) for p in parents)


@pytest.mark.ociruntime_only  # runc 1.1.5 changes the host's mounts for good without a mount namespace
def test_cgroup_mounts_under_a_hosts_mount_namespace_container_are_not_hierarchies(runtime, bundle):
    """A container without a mount namespace has its cgroup mounts under its rootfs in the host's
    mount namespace while it runs: another container created meanwhile still gets its cgroups in
    the host's hierarchies (it got them under the first one's rootfs, and create failed with
    EROFS there)."""
    a = bundle(*LONG_RUNNING)
    linux = a.config["linux"]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "mount"]
    linux.pop("maskedPaths", None)
    linux.pop("readonlyPaths", None)
    first = runtime.create(a)
    with open("/proc/self/mountinfo") as f:
        under = [ln.split()[4] for ln in f if " - cgroup" in ln and ln.split()[4].startswith(str(a.rootfs) + "/")]
    assert under, "the first container's cgroup mounts are not in the host's mount namespace"
    second = runtime.create(bundle(*LONG_RUNNING))
    runtime.start(second)
    assert runtime.state(second)["status"] == "running"
    dirs = cgroups_named(second)
    assert dirs and all(d.startswith(CGROUP_ROOT + "/") and not d.startswith(str(a.rootfs)) for d in dirs)
    for cid in (second, first):
        assert runtime.delete(cid, force=True).rc == 0
