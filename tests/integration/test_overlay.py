"""A copy-on-write rootfs, asked for with the org.ociruntime.overlay annotations (issue 24, point 2).

The lower directories are compared byte for byte (content, mode, owner, links) before and after;
the host's mount table must never show the overlay (it lives in the container's mount namespace);
delete removes the upper (or keeps it, where asked and said).  ociruntime's own feature.
"""
import hashlib
import os
import shutil
import signal
import subprocess
import time

import pytest

from helpers import RUNTIME_TIMEOUT, _link_busybox, mounts_under, runtime_without_syscalls

pytestmark = pytest.mark.ociruntime_only

O = "org.ociruntime.overlay"
WRITER = ["sh", "-c", "echo $0 > /data/greeting; echo $0 > /new; rm /bin/ls; exec sleep 1000"]


def digest(root):
    """{path: (mode, uid, gid, content hash or link target)} of everything under root."""
    out = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(top, name)
            st = os.lstat(p)
            if os.path.islink(p):
                what = os.readlink(p)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    what = hashlib.sha256(f.read()).hexdigest()
            else:
                what = None
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, what)
    return out


@pytest.fixture
def lower(tmp_path, shared_rootfs):
    path = tmp_path / "lower"
    shutil.copytree(shared_rootfs, path, symlinks=True, copy_function=_link_busybox)
    (path / "data").mkdir()
    (path / "data" / "greeting").write_text("from the lower\n")
    return path


def ov_bundle(bundle, root, *args, **annotations):
    b = bundle(*args)
    b.config["root"] = {"path": str(root), "readonly": False}
    b.config["annotations"] = {(O + "." + k if k else O): v for k, v in annotations.items()}
    return b


def test_two_containers_from_one_lower_see_only_their_own_writes(runtime, bundle, lower, state_root):
    before = digest(lower)
    a = runtime.create(ov_bundle(bundle, lower, *WRITER[:3], "A", **{"": "true"}))
    b = runtime.create(ov_bundle(bundle, lower, *WRITER[:3], "B", **{"": "true"}))
    for cid in (a, b):
        runtime.start(cid)
    for cid, who in ((a, "A"), (b, "B")):
        deadline = time.monotonic() + RUNTIME_TIMEOUT
        while True:
            r = runtime.run("exec", cid, "sh", "-c", "cat /data/greeting /new && { ls /bin/ls 2>&1; true; }")
            if r.rc != 0 and time.monotonic() < deadline:  # (the shell has not written yet)
                time.sleep(0.05)
                continue
            break
        assert r.out.splitlines()[:2] == [who, who], r
        assert "No such file" in r.out
        upper = runtime.state(cid)["annotations"][O + ".upperdir"]
        assert upper == os.path.join(state_root, cid, "overlay", "upper")
        with open(os.path.join(upper, "new")) as f:
            assert f.read() == who + "\n"
    # the lower is untouched, and the overlays are nowhere in the host's mount table
    assert digest(lower) == before
    assert mounts_under([str(lower)]) == []
    for cid in (a, b):
        assert runtime.delete(cid, force=True).rc == 0
        assert not os.path.exists(os.path.join(state_root, cid))
    assert digest(lower) == before


def test_the_bundles_rootfs_as_the_only_lower(runtime, bundle):
    b = bundle("sh", "-c", "echo x > /etc/passwd; echo y > /made-here; cat /etc/passwd /made-here")
    b.config["root"]["readonly"] = False
    b.config["annotations"] = {O: "true"}
    b.write()
    before = digest(b.rootfs)
    r = runtime.run_container(b)
    assert r.rc == 0 and r.out.split() == ["x", "y"], r
    assert digest(b.rootfs) == before


def test_keep_leaves_the_upper_and_says_where(runtime, bundle, lower, state_root):
    b = ov_bundle(bundle, lower, *WRITER[:3], "K", **{"": "true", "keep": "true"})
    cid = runtime.create(b)
    runtime.start(cid)
    upper = runtime.state(cid)["annotations"][O + ".upperdir"]
    assert upper == os.path.join(str(b), "overlay-" + cid, "upper")
    deadline = time.monotonic() + RUNTIME_TIMEOUT
    while not os.path.exists(os.path.join(upper, "new")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.delete(cid, force=True).rc == 0
    assert not os.path.exists(os.path.join(state_root, cid))
    assert sorted(os.listdir(os.path.dirname(upper))) == ["upper"]  # (the work directory went)
    with open(os.path.join(upper, "new")) as f:
        assert f.read() == "K\n"
    assert sorted(os.listdir(upper)) == ["bin", "data", "new"]


def test_an_upper_directory_of_yours_is_reused(runtime, bundle, lower, tmp_path):
    mine = tmp_path / "layer"
    b = ov_bundle(bundle, lower, "sh", "-c", "cat /kept 2>/dev/null; echo run >> /kept",
                  **{"": "true", "upper": str(mine)})
    assert runtime.output(b) == ""
    assert runtime.output(b) == "run\n"
    assert sorted(os.listdir(mine)) == ["upper"]
    assert (mine / "upper" / "kept").read_text() == "run\nrun\n"


def test_tmpfs_upper(runtime, bundle, lower, state_root):
    before = digest(lower)
    b = ov_bundle(bundle, lower, "sh", "-c", "echo t > /new; dd if=/dev/zero of=/big bs=1k count=2048 2>/dev/null "
                  "|| { rm -f /big; echo full > /full; }; exec sleep 1000", **{"": "true", "upper": "tmpfs:size=1m"})
    cid = runtime.create(b)
    runtime.start(cid)
    deadline = time.monotonic() + RUNTIME_TIMEOUT
    while runtime.run("exec", cid, "cat", "/full").out != "full\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.run("exec", cid, "cat", "/new", "/full").out == "t\nfull\n"  # (1m: the 2m file did not fit)
    # the upper is on the container's tmpfs: on the host, the state dir's directory stays empty
    assert os.listdir(os.path.join(str(state_root), cid, "overlay")) == []
    assert runtime.state(cid)["annotations"][O + ".upperdir"] == os.path.join(str(state_root), cid, "overlay",
                                                                             "upper")
    assert runtime.delete(cid, force=True).rc == 0
    assert not os.path.exists(os.path.join(str(state_root), cid))
    assert digest(lower) == before


def test_several_lowers_uppermost_first(runtime, bundle, lower, tmp_path):
    top = tmp_path / "top"
    (top / "data").mkdir(parents=True)
    (top / "data" / "greeting").write_text("from the top\n")
    target = tmp_path / "mountpoint"
    target.mkdir()
    b = ov_bundle(bundle, target, "sh", "-c", "cat /data/greeting; ls /bin/busybox",
                  lower="%s:%s" % (top, lower))
    assert runtime.output(b) == "from the top\n/bin/busybox\n"
    assert os.listdir(target) == []


def test_delete_force_after_kill9_of_the_runtime(runtime, bundle, lower, state_root):
    before = digest(lower)
    cid = runtime.new_id()
    b = ov_bundle(bundle, lower, *WRITER[:3], "R", **{"": "true"})
    p = subprocess.Popen([runtime.bin, "--root", runtime.root, "run", "--bundle", os.fspath(b), cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + RUNTIME_TIMEOUT
        upper = os.path.join(str(state_root), cid, "overlay", "upper")
        while not os.path.exists(os.path.join(upper, "new")):
            assert time.monotonic() < deadline and p.poll() is None, "the container did not write"
            time.sleep(0.05)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert runtime.status(cid) == "running"
    assert runtime.delete(cid, force=True).rc == 0
    assert not os.path.exists(os.path.join(str(state_root), cid))
    assert mounts_under([str(lower), str(state_root)]) == []
    assert digest(lower) == before


BAD = [
    ({"lower": "no-such-dir"}, "not a directory"),
    ({"lower": "a,b"}, "a lower directory's path may not hold , : or \\"),
    ({"": "true", "upper": "tmpfs", "keep": "true"}, "a tmpfs upper goes with the container"),
    ({"": "true", "upper": "tmpfs:uid=5"}, "tmpfs options are size, nr_inodes, mode and huge"),
    ({"": "maybe"}, "must be true or false"),
    ({"keep": "true"}, "need org.ociruntime.overlay: \"true\" or org.ociruntime.overlay.lower"),
    ({"": "true", "colour": "blue"}, "annotation org.ociruntime.overlay.colour: unknown"),
]


@pytest.mark.parametrize("annotations,words", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_annotations_are_refused(runtime, bundle, lower, state_root, annotations, words):
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", ov_bundle(bundle, lower, "true", **annotations), cid)
    runtime.refused(r, words)
    assert not os.path.exists(os.path.join(str(state_root), cid))


def test_the_container_needs_a_mount_namespace_of_its_own(runtime, bundle, lower, state_root):
    b = ov_bundle(bundle, lower, "true", **{"": "true"})
    for key in ("maskedPaths", "readonlyPaths"):  # (refused first without a mount namespace)
        del b.config["linux"][key]
    nss = b.config["linux"]["namespaces"]
    words = 'annotation org.ociruntime.overlay: the container needs a mount namespace of its own'
    for changed in ([n for n in nss if n["type"] != "mount"],
                    [dict(n, path="/proc/self/ns/mnt") if n["type"] == "mount" else n for n in nss]):
        b.config["linux"]["namespaces"] = changed
        cid = runtime.new_id()
        runtime.refused(runtime.run("create", "--bundle", b, cid), words)
        assert not os.path.exists(os.path.join(str(state_root), cid))
    assert mounts_under([str(lower)]) == []


@pytest.mark.parametrize("upper", ["state", "tmpfs", "keep"])
def test_in_a_user_namespace(runtime, bundle, shared_rootfs, state_root, upper):
    """The init mounts the overlay in the container's user namespace, given the directories open
    (the state root here is in a 0700 directory the mapped root cannot search): what it writes
    belongs to the container's root, mapped (100000 on the host)."""
    b = bundle("sh", "-c", "echo u > /new; rm /etc/group; exec sleep 1000", public=True)
    low = b.path.parent / "lower"  # (in the public directory: the mapped root must reach it)
    shutil.copytree(shared_rootfs, low, symlinks=True)
    subprocess.run(["chown", "-R", "100000:100000", str(low)], check=True)
    before = digest(low)
    b.config["root"] = {"path": str(low), "readonly": False}
    b.config["annotations"] = {O: "true"}
    if upper == "tmpfs":
        b.config["annotations"][O + ".upper"] = "tmpfs"
    if upper == "keep":
        b.config["annotations"][O + ".keep"] = "true"
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cid = runtime.create(b)
    runtime.start(cid)
    deadline = time.monotonic() + RUNTIME_TIMEOUT
    while runtime.run("exec", cid, "cat", "/new").out != "u\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    out = runtime.run("exec", cid, "sh", "-c", "ls -n /new; ls /etc", check=True).out.split()
    assert out[2:4] == ["0", "0"] and "group" not in out and "passwd" in out, out  # ls -n: owner, group
    path = runtime.state(cid)["annotations"][O + ".upperdir"]
    if upper != "tmpfs":
        st = os.stat(os.path.join(path, "new"))
        assert (st.st_uid, st.st_gid) == (100000, 100000)
    assert runtime.delete(cid, force=True).rc == 0
    assert os.path.exists(path) == (upper == "keep")
    assert digest(low) == before


@pytest.mark.parametrize("upper", ["state", "tmpfs:size=1m"])
def test_without_the_new_mount_api(runtime, bundle, lower, tmp_path, upper):
    """On a kernel without fsopen (ENOSYS, as before 5.2) the init mounts the overlay (and its
    tmpfs) by path in its own mount namespace: the same container, nothing on the host."""
    rt = runtime_without_syscalls(runtime, tmp_path, [430])  # fsopen on x86_64
    before = digest(lower)
    b = ov_bundle(bundle, lower, "sh", "-c", "echo w > /data/greeting; cat /data/greeting; grep ' / / ' "
                  "/proc/self/mountinfo", **{"": "true", "upper": upper})
    out = rt.output(b)
    assert out.startswith("w\n") and "lowerdir=%s," % lower in out, out
    assert digest(lower) == before
    assert mounts_under([str(lower), runtime.root]) == []


def test_a_failed_create_leaves_nothing(runtime, bundle, lower, tmp_path, state_root):
    """A create that fails once the overlay exists (its createRuntime hook fails) removes what it
    made for it, and only that: a directory of the user's keeps what it held."""
    fail = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}
    before = digest(lower)
    b = ov_bundle(bundle, lower, "true", **{"": "true", "keep": "true"})
    b.config["hooks"] = fail
    cid = runtime.new_id()
    runtime.refused(runtime.run("create", "--bundle", b, cid), "createRuntime")
    assert not os.path.exists(b.path / ("overlay-" + cid))
    assert not os.path.exists(os.path.join(str(state_root), cid))
    mine = tmp_path / "layer"
    (mine / "upper").mkdir(parents=True)
    (mine / "upper" / "old").write_text("kept\n")
    b = ov_bundle(bundle, lower, "true", **{"": "true", "upper": str(mine)})
    b.config["hooks"] = fail
    runtime.refused(runtime.run("create", "--bundle", b, runtime.new_id()), "createRuntime")
    assert sorted(os.listdir(mine)) == ["upper"] and os.listdir(mine / "upper") == ["old"]
    assert digest(lower) == before
    assert mounts_under([str(lower), str(tmp_path), str(state_root)]) == []
