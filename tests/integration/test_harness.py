"""The test harness itself: the teardown finds and removes every kind of leak it looks for.
Needs root but no runtime binary."""

import os
import subprocess

import conftest
import helpers


def test_cleanup_finds_and_removes_leaks(tmp_path, session_token):
    root = tmp_path / "root"
    root.mkdir()
    rootfs = tmp_path / "rootfs"
    conftest._build_rootfs(rootfs)
    rt = helpers.Runtime("/bin/false", root, session_token, "harness")
    rt.dirs += [str(tmp_path)]
    name = helpers.ID_PREFIX + session_token + "-harness"

    (root / name).mkdir()                                    # a state dir
    (rootfs / "etc" / "written").write_text("x")             # a write into the shared rootfs
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    helpers.mount("tmpfs", str(mnt), "tmpfs", 0, "size=1m")  # a mount
    cgroup = os.path.join(helpers.CGROUP_ROOT, "pids", name)
    os.mkdir(cgroup)                                         # a cgroup ...
    sleeper = subprocess.Popen(["sleep", "100"])             # ... with a live process in it
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(sleeper.pid))
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)   # a network namespace

    problems = "\n".join(conftest._cleanup([rt], rootfs, grace=0.1))
    for what in (f"state dir {root}/{name}", "shared read-only rootfs", f"mount on {mnt}",
                 f"cgroup {cgroup}", f"process {sleeper.pid}", f"network namespace {name}"):
        assert what in problems
    assert sleeper.poll() is not None
    assert os.listdir(root) == []
    assert not os.path.exists(cgroup)
    assert helpers.mounts_under([str(tmp_path)]) == []
    assert helpers.netns_named(name) == []
    assert not (rootfs / "etc" / "written").exists()
    assert conftest._cleanup([rt], rootfs) == []


def test_bundle_uses_shared_rootfs_only_when_nothing_writes(bundle):
    b = bundle("true")
    assert b.rootfs == b.shared_rootfs
    b.config["mounts"].append({"destination": "/dev/x", "type": "tmpfs", "source": "tmpfs"})
    assert b.rootfs == b.shared_rootfs           # under the /dev tmpfs
    b.config["mounts"].append({"destination": "/new", "type": "tmpfs", "source": "tmpfs"})
    assert b.rootfs == b.path / "rootfs"
    c = bundle("true")
    c.config["process"]["cwd"] = "/nowhere"
    assert c.rootfs == c.path / "rootfs"
    d = bundle("true")
    d.config["root"]["readonly"] = False
    os.fspath(d)
    assert (d.path / "rootfs" / "bin" / "busybox").exists()
    e = bundle("true")
    os.fspath(e)
    conf = (e.path / "config.json").read_text()
    assert f'"path": "{e.shared_rootfs}"' in conf and not (e.path / "rootfs").exists()


def test_default_spec_is_runc_spec(tmp_path):
    """The bundle config is `runc spec` with terminal false (checked against runc when it is here)."""
    import json
    import shutil
    if not shutil.which("runc"):
        import pytest
        pytest.skip("runc is not installed")
    subprocess.run(["runc", "spec"], cwd=tmp_path, check=True, timeout=10)
    spec = json.loads((tmp_path / "config.json").read_text())
    spec["process"]["terminal"] = False
    assert spec == helpers.default_spec()
