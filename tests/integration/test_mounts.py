"""The container's filesystem: standard mounts, read-only root and paths, masked paths, devices,
bind mounts with options and propagation, tmpfs options, --no-pivot."""

import fnmatch
import os
import time

import pytest

from helpers import MS_BIND, MS_SHARED, mount, parse_mountinfo, umount, wait_exit

MOUNTINFO = "cat /proc/self/mountinfo"


def mountinfo(runtime, b):
    return {m["mountpoint"]: m for m in parse_mountinfo(runtime.output(b, MOUNTINFO))}


def test_standard_mounts(runtime, bundle):
    b = bundle()
    mi = mountinfo(runtime, b)
    assert "ro" in mi["/"]["options"]
    assert mi["/proc"]["fstype"] == "proc"
    dev = mi["/dev"]
    assert dev["fstype"] == "tmpfs" and "nosuid" in dev["options"]
    assert {"mode=755", "size=65536k"} <= dev["super"]
    pts = mi["/dev/pts"]
    assert pts["fstype"] == "devpts" and {"nosuid", "noexec"} <= pts["options"]
    assert {"gid=5", "mode=620", "ptmxmode=666"} <= pts["super"]
    shm = mi["/dev/shm"]
    assert shm["fstype"] == "tmpfs" and {"nosuid", "nodev", "noexec"} <= shm["options"]
    assert "size=65536k" in shm["super"]
    mq = mi["/dev/mqueue"]
    assert mq["fstype"] == "mqueue" and {"nosuid", "nodev", "noexec"} <= mq["options"]
    sysfs = mi["/sys"]
    assert sysfs["fstype"] == "sysfs" and {"ro", "nosuid", "nodev", "noexec"} <= sysfs["options"]
    assert "/sys/fs/cgroup" in mi


def test_no_host_mounts_visible(runtime, bundle):
    """Only the config's mounts (and what the runtime derives from them) exist: the old root is gone."""
    b = bundle()
    allowed = ["/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
               "/sys/fs/cgroup/*", "/sys/firmware"]
    allowed += b.config["linux"]["maskedPaths"] + b.config["linux"]["readonlyPaths"]
    for mp in mountinfo(runtime, b):
        assert any(fnmatch.fnmatch(mp, pat) for pat in allowed), f"unexpected mount {mp}"


def test_root_is_pivoted(runtime, bundle):
    b = bundle()
    out = runtime.output(b, "ls /; readlink /proc/1/root; grep -c . /proc/self/mountinfo")
    assert set(out.split()[:-2]) == set(os.listdir(b.rootfs))
    assert out.split()[-2] == "/"


def test_readonly_root(runtime, bundle):
    b = bundle("sh", "-c", "touch /x; echo rc=$?; touch /dev/shm/x && echo tmpfs-ok")
    r = runtime.run_container(b)
    assert r.out == "rc=1\ntmpfs-ok\n"
    assert "Read-only file system" in r.err
    assert not (b.rootfs / "x").exists()


def test_writable_root(runtime, bundle):
    b = bundle("sh", "-c", "echo data > /x && cat /x")
    b.config["root"]["readonly"] = False
    assert runtime.output(b) == "data\n"
    assert (b.path / "rootfs" / "x").read_text() == "data\n"
    assert "ro" not in mountinfo(runtime, b)["/"]["options"]


def test_readonly_paths(runtime, bundle):
    b = bundle()
    mi = mountinfo(runtime, b)
    for p in ("/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger"):
        if os.path.exists(p):
            assert "ro" in mi[p]["options"], p
    r = runtime.run_container(bundle("sh", "-c", "echo x > /proc/sys/kernel/hostname"))
    assert r.rc != 0 and "Read-only file system" in r.err
    assert runtime.output(bundle("cat", "/proc/sys/kernel/ostype")) == "Linux\n"


def test_masked_paths(runtime, bundle):
    b = bundle()
    b.config["linux"]["maskedPaths"] += ["/proc/version", "/proc/tty", "/oci-test-does-not-exist"]
    b.args = ["sh", "-c", "wc -c < /proc/version; ls -A /proc/tty | wc -l; ls -A /sys/firmware | wc -l;"
              "for f in /proc/kcore /proc/keys /proc/timer_list; do [ -e $f ] && wc -c < $f; done; true"]
    out = runtime.output(b).split()
    assert all(n == "0" for n in out), out
    assert len(out) >= 3
    # not masked: readable as usual
    assert runtime.output(bundle("cat", "/proc/version")).startswith("Linux version")


def test_default_devices(runtime, bundle):
    b = bundle("sh", "-c", "for d in null zero full random urandom tty; do "
                           "stat -c '%n %F %t %T %a %u %g' /dev/$d; done; "
                           "for l in ptmx fd stdin stdout stderr; do echo /dev/$l $(readlink /dev/$l); done")
    lines = runtime.output(b).splitlines()
    assert lines[:6] == [
        "/dev/null character special file 1 3 666 0 0",
        "/dev/zero character special file 1 5 666 0 0",
        "/dev/full character special file 1 7 666 0 0",
        "/dev/random character special file 1 8 666 0 0",
        "/dev/urandom character special file 1 9 666 0 0",
        "/dev/tty character special file 5 0 666 0 0",
    ]
    assert lines[6:] == ["/dev/ptmx pts/ptmx", "/dev/fd /proc/self/fd", "/dev/stdin /proc/self/fd/0",
                         "/dev/stdout /proc/self/fd/1", "/dev/stderr /proc/self/fd/2"]


def test_default_devices_usable(runtime, bundle):
    b = bundle("sh", "-c", "echo x > /dev/null && head -c 5 /dev/zero | wc -c && head -c 7 /dev/urandom | "
                           "wc -c; echo x > /dev/full; echo full=$?")
    r = runtime.run_container(b)
    assert r.out.split() == ["5", "7", "full=1"]
    assert "No space left on device" in r.err


def test_linux_device_entry(runtime, bundle):
    b = bundle("sh", "-c", "stat -c '%F %t %T %a %u %g' /dev/oci-null; echo hi > /dev/oci-null && echo ok")
    b.config["linux"]["devices"] = [
        {"path": "/dev/oci-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 7, "gid": 8}]
    assert runtime.output(b) == "character special file 1 3 666 7 8\nok\n"


def test_linux_device_denied_by_cgroup(runtime, bundle):
    """A device node is there but the (default deny-all) device cgroup refuses to open it."""
    b = bundle("sh", "-c", "head -c 1 /dev/oci-mem")
    b.config["linux"]["devices"] = [{"path": "/dev/oci-mem", "type": "c", "major": 1, "minor": 1}]
    r = runtime.run_container(b)
    assert r.rc != 0 and "Operation not permitted" in r.err


@pytest.fixture
def hostdir(tmp_path):
    d = tmp_path / "hostdir"
    d.mkdir()
    (d / "file").write_text("from host\n")
    return d


def test_bind_mount_read_write(runtime, bundle, hostdir):
    b = bundle("sh", "-c", "cat /data/file; echo new > /data/new")
    b.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(hostdir),
                               "options": ["rbind", "rw"]})
    assert runtime.output(b) == "from host\n"
    assert (hostdir / "new").read_text() == "new\n"
    assert (b.path / "rootfs" / "data").is_dir()      # the mount point was created in the rootfs


def test_bind_mount_read_only(runtime, bundle, hostdir):
    b = bundle("sh", "-c", "cat /mnt/file; echo x > /mnt/new; echo rc=$?; grep ' /mnt ' /proc/self/mountinfo")
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(hostdir),
                               "options": ["bind", "ro", "nosuid", "nodev"]})
    r = runtime.run_container(b)
    lines = r.out.splitlines()
    assert lines[:2] == ["from host", "rc=1"]
    assert {"ro", "nosuid", "nodev"} <= parse_mountinfo(lines[2])[0]["options"]
    assert not (hostdir / "new").exists()


def test_bind_mount_file(runtime, bundle, hostdir):
    b = bundle("cat", "/etc/oci-test-file")
    b.config["mounts"].append({"destination": "/etc/oci-test-file", "type": "bind",
                               "source": str(hostdir / "file"), "options": ["bind", "ro"]})
    assert runtime.output(b) == "from host\n"


@pytest.fixture
def submount(hostdir):
    """hostdir/sub is a tmpfs mount on the host holding `inner`."""
    sub = hostdir / "sub"
    sub.mkdir()
    mount("tmpfs", str(sub), "tmpfs", 0, "size=1m")
    try:
        (sub / "inner").write_text("in submount\n")
        yield sub
    finally:
        umount(str(sub))


@pytest.mark.parametrize("option,seen", [("rbind", "in submount"), ("bind", "none")])
def test_bind_recursive(runtime, bundle, hostdir, submount, option, seen):
    b = bundle("sh", "-c", "cat /mnt/sub/inner 2>/dev/null || echo none")
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(hostdir),
                               "options": [option]})
    assert runtime.output(b) == seen + "\n"


@pytest.fixture
def shared_hostdir(hostdir):
    """hostdir as a shared mount (the host's / is private here, so make one)."""
    mount(str(hostdir), str(hostdir), None, MS_BIND)
    try:
        mount("none", str(hostdir), None, MS_SHARED)
        yield hostdir
    finally:
        umount(str(hostdir))


@pytest.mark.parametrize("propagation,tag", [("rslave", "master:"), ("rprivate", None), ("rshared", "shared:"),
                                             ("slave", "master:"), ("private", None)])
def test_bind_propagation_flags(runtime, bundle, shared_hostdir, propagation, tag):
    b = bundle("grep", " /mnt ", "/proc/self/mountinfo")
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(shared_hostdir),
                               "options": ["rbind", propagation]})
    (m,) = parse_mountinfo(runtime.output(b))
    tags = " ".join(m["optional"])
    if tag:
        assert tag in tags
    else:
        assert tags == ""


def test_bind_rslave_sees_later_host_mounts(runtime, bundle, shared_hostdir, tmp_path):
    b = bundle("sh", "-c", "i=0; while [ ! -e /mnt/late/flag ] && [ $i -lt 250 ]; do sleep 0.02; i=$((i+1)); "
                           "done; cat /mnt/late/flag 2>/dev/null || echo not seen")
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(shared_hostdir),
                               "options": ["rbind", "rslave"]})
    late = shared_hostdir / "late"
    late.mkdir()
    out = tmp_path / "out"
    with open(out, "w") as f:
        cid = runtime.create(b, None, stdout=f)
    pid = runtime.state(cid)["pid"]
    runtime.start(cid)
    time.sleep(0.05)
    mount("tmpfs", str(late), "tmpfs", 0, "size=1m")
    try:
        (late / "flag").write_text("seen\n")
        wait_exit(pid, 10)
    finally:
        umount(str(late))
    assert out.read_text() == "seen\n"


# runc 1.1.5 leaves the root private for the shared kinds and fails the unbindable ones: what the spec
# says of them is ociruntime's behaviour only (under --runtime-bin=runc they are skipped)
_OWN = pytest.mark.ociruntime_only


@pytest.mark.needs_runc
@pytest.mark.parametrize("propagation,kinds", [
    (None, []), ("slave", []), ("private", []), ("rslave", []), ("rprivate", []),
    pytest.param("shared", ["shared"], marks=_OWN), pytest.param("rshared", ["shared"], marks=_OWN),
    pytest.param("unbindable", ["unbindable"], marks=_OWN), pytest.param("runbindable", ["unbindable"], marks=_OWN)])
def test_rootfs_propagation(runtime, runc, bundle, propagation, kinds):
    """The container's root mount has rootfsPropagation's kind (the host's mounts are private
    here: a slave of one is private).  With "shared" pivot_root needs the rootfs's parent mount
    made private before the rootfs is bound (the host's "/" is shared then); runc 1.1.5 runs that
    config but leaves the root private, and fails "unbindable" (the rootfs's own bind is refused):
    the spec's rootfsPropagation is the root's, so those (and their recursive forms) are not compared
    with runc.  test_rootfs_propagation.py has the rootfs as a mount point of a shared peer group."""
    def root_kinds(rt):
        b = bundle("awk", "$5 == \"/\"", "/proc/self/mountinfo")
        if propagation:
            b.config["linux"]["rootfsPropagation"] = propagation
        (m,) = parse_mountinfo(rt.output(b))
        return sorted(tag.split(":")[0] for tag in m["optional"])
    assert root_kinds(runtime) == kinds
    if propagation not in ("shared", "unbindable", "rshared", "runbindable"):
        assert root_kinds(runc) == kinds


def test_tmpfs_with_options(runtime, bundle):
    b = bundle("sh", "-c", "stat -c %a /scratch; grep ' /scratch ' /proc/self/mountinfo; touch /scratch/f")
    b.config["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "nodev", "noexec", "mode=700", "size=1m"]})
    out = runtime.output(b).splitlines()
    assert out[0] == "700"
    (m,) = parse_mountinfo(out[1])
    assert m["fstype"] == "tmpfs"
    assert {"nosuid", "nodev", "noexec"} <= m["options"]
    assert {"size=1024k", "mode=700"} <= m["super"]


def test_tmpfs_read_only(runtime, bundle):
    b = bundle("sh", "-c", "touch /dev/shm/ok && touch /scratch/f")
    b.config["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                               "options": ["ro"]})
    r = runtime.run_container(b)
    assert r.rc != 0 and "Read-only file system" in r.err


def test_mount_destination_created_in_tmpfs(runtime, bundle):
    """Nested destinations inside an earlier tmpfs need no change to the read-only rootfs."""
    b = bundle("sh", "-c", "grep -c ' /dev/oci-test/deep ' /proc/self/mountinfo")
    b.config["mounts"].append({"destination": "/dev/oci-test/deep", "type": "tmpfs", "source": "tmpfs"})
    assert b.rootfs == b.shared_rootfs
    assert runtime.output(b) == "1\n"


def test_no_pivot(runtime, bundle):
    b = bundle("sh", "-c", "ls /; touch /x; echo rc=$?; cat /proc/self/mountinfo")
    r = runtime.run("run", "--no-pivot", "--bundle", b, runtime.new_id())
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    rc_at = lines.index("rc=1")
    assert set(" ".join(lines[:rc_at]).split()) == set(os.listdir(b.rootfs))
    mi = {m["mountpoint"]: m for m in parse_mountinfo("\n".join(lines[rc_at + 1:]))}
    assert mi["/proc"]["fstype"] == "proc"
    assert "ro" in mi["/"]["options"]


NESTED_PROC = ("unshare -Umpf --mount-proc=/dev/shm sh -c 'echo MOUNTED; ls /dev/shm/sys/kernel | wc -l'; "
               "echo status=$?")


@pytest.mark.parametrize("userns", [False, True])
def test_no_pivot_hides_host_proc(runtime, bundle, userns):
    """--no-pivot keeps the old root under the container's: the host's procfs and sysfs there are
    detached (or covered) before the move, so a user namespace made inside the container cannot
    mount a fresh procfs (the kernel refuses one while no fully visible procfs is in the mount
    namespace, and the container's own is masked), as with pivot_root, and as runc."""
    b = bundle("sh", "-c", NESTED_PROC, public=userns)
    if userns:
        from test_namespaces import USERNS_MAP
        b.config["linux"]["namespaces"].append({"type": "user"})
        b.config["linux"]["uidMappings"] = list(USERNS_MAP)
        b.config["linux"]["gidMappings"] = list(USERNS_MAP)
    for extra in ((), ("--no-pivot",)):
        r = runtime.run("run", *extra, "--bundle", b, runtime.new_id())
        assert r.rc == 0, r.err
        assert r.out == "status=1\n", (extra, r.out)
        assert "can't mount proc on /dev/shm" in r.err and "Operation not permitted" in r.err, r.err
    with open("/proc/self/mountinfo") as f:   # the host's own proc and sys are still there
        mps = {m["mountpoint"]: m["fstype"] for m in parse_mountinfo(f.read())}
    assert mps["/proc"] == "proc" and mps["/sys"] == "sysfs"


@pytest.mark.parametrize("link", ["/run/oci-missing/hosts", "../run/oci-missing/hosts"])
def test_bind_onto_dangling_symlink(runtime, bundle, hostdir, link):
    """An image's /etc/hosts that is a dangling symlink (engines always bind /etc/hosts and
    /etc/resolv.conf): what it points at is made inside the rootfs and the file is bound there,
    as runc does."""
    b = bundle("sh", "-c", "cat /etc/hosts; readlink /etc/hosts; cat /run/oci-missing/hosts")
    b.config["mounts"].append({"destination": "/etc/hosts", "type": "bind", "source": str(hostdir / "file"),
                               "options": ["bind", "ro"]})
    rootfs = b.copy_rootfs()
    os.symlink(link, rootfs / "etc" / "hosts")
    assert runtime.output(b) == f"from host\n{link}\nfrom host\n"
    assert (rootfs / "run" / "oci-missing" / "hosts").is_file()
    assert os.readlink(rootfs / "etc" / "hosts") == link


def test_readonly_dev(runtime, bundle):
    """/dev mounted with "ro": it is filled first (pts, shm, mqueue, the default devices and
    links), then made read-only (its own mount: what is mounted below stays writable), as runc."""
    b = bundle("sh", "-c", "touch /dev/x 2>/dev/null && echo dev-rw; touch /dev/shm/x && echo shm-rw; "
                           "echo hi > /dev/null && readlink /dev/ptmx && readlink /dev/fd; "
                           "awk '$5 ~ /^\\/dev/ {for (i = 7; i < NF; i++) if ($i == \"-\") "
                           "print $5, $(i + 1), substr($6, 1, 2)}' /proc/self/mountinfo")
    dev = next(m for m in b.config["mounts"] if m["destination"] == "/dev")
    dev["options"].append("ro")
    lines = runtime.output(b).splitlines()
    assert lines[:3] == ["shm-rw", "pts/ptmx", "/proc/self/fd"], lines
    assert sorted(lines[3:]) == \
        sorted(["/dev tmpfs ro", "/dev/mqueue mqueue rw", "/dev/pts devpts rw", "/dev/shm tmpfs rw"]), lines


def test_tmpfs_takes_mode_of_covered_directory(runtime, bundle):
    """A tmpfs without mode= over an existing directory has that directory's mode (runc); over a
    directory made for it, tmpfs's own default (1777); with mode=, that mode."""
    b = bundle("stat", "-c", "%n %a", "/mnt", "/root", "/home", "/oci-new", "/var")
    b.config["root"]["readonly"] = False
    rootfs = b.copy_rootfs()
    os.chmod(rootfs / "home", 0o711)
    os.chmod(rootfs / "var", 0o1755)
    b.config["mounts"] += [{"destination": d, "type": "tmpfs", "source": "tmpfs", "options": o}
                           for d, o in (("/mnt", []), ("/root", ["nosuid", "size=1m"]), ("/home", ["nodev"]),
                                        ("/oci-new", []), ("/var", ["noexec"]))]
    assert runtime.output(b).splitlines() == ["/mnt 755", "/root 700", "/home 711", "/oci-new 1777",
                                              "/var 1755"]
    if runtime.name == "ociruntime":   # (runc 1.1.5 sets the covered directory's mode over mode= too)
        b.config["mounts"][-1]["options"].append("mode=750")
        b.args = ["stat", "-c", "%a", "/var"]
        assert runtime.output(b) == "750\n"


# the new mount API's syscalls (x86_64): open_tree, move_mount, mount_setattr
OLD_KERNELS = {"no-mount-setattr": (442,), "no-open-tree": (428, 429, 442)}


@pytest.mark.parametrize("api", sorted(OLD_KERNELS))
def test_binds_without_new_mount_api(runtime, bundle, hostdir, tmp_path, api):
    """Binds as on a kernel without mount_setattr (before 5.12) or without open_tree (or under a
    profile hiding them): the same flags on the same mounts; a recursive attribute (rro), which
    needs mount_setattr, is refused with the step's words rather than dropped."""
    if os.uname().machine != "x86_64":
        pytest.skip("the syscall numbers hidden are x86_64's")
    from helpers import runtime_without_syscalls
    rt = runtime_without_syscalls(runtime, tmp_path, OLD_KERNELS[api])
    b = bundle("sh", "-c", "cat /mnt/file /etc/oci-test-file; touch /mnt/x 2>/dev/null || echo ro; "
                           "grep -E ' /(mnt|data|etc/oci-test-file) ' /proc/self/mountinfo | cut -d' ' -f5,6")
    b.config["mounts"] += [
        {"destination": "/mnt", "type": "bind", "source": str(hostdir), "options": ["bind", "ro", "nosuid"]},
        {"destination": "/data", "type": "bind", "source": str(hostdir), "options": ["rbind", "nodev"]},
        {"destination": "/etc/oci-test-file", "type": "bind", "source": str(hostdir / "file"),
         "options": ["bind", "ro"]},
    ]
    lines = rt.output(b).splitlines()
    assert lines[:3] == ["from host", "from host", "ro"], lines
    assert sorted(lines[3:]) == ["/data rw,nodev,relatime", "/etc/oci-test-file ro,relatime",
                                 "/mnt ro,nosuid,relatime"], lines
    b.config["mounts"][-2]["options"].append("rro")
    r = rt.run_container(b)
    if rt.name == "ociruntime":
        rt.refused(r, "mount %s to /data" % hostdir, "Function not implemented")
