"""ociruntime.procfs, the runtime's hardened writes into /proc (sysctl, oom_score_adj, the LSM's
attr files, the id maps), each case in a forked child: the /proc it opens must be a procfs; a file
is opened only beneath it, through no symlink, across no mount, and must be on procfs; whatever
fails that is refused with the step, the /proc path and the error, and the file the write would
have reached is unchanged.  A genuine proc file is written, through the fd held even once /proc is
covered, and "self" is the process's number in that procfs (the host's, in a new pid namespace).

The fake procs are a plain directory and a tmpfs; the mounts (a tmpfs over /proc, a file or a
tmpfs or another proc file bound over a proc file) are made in a private mount namespace of the
child, with a UTS namespace of its own where the file is kernel.hostname, so nothing reaches the
host's mounts or its hostname even if a check failed."""
import errno
import json
import os
import socket

import pytest

from ociruntime import _sys as S
from ociruntime import namespaces, procfs

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces and mounts of its own)")
XDEV = os.strerror(errno.EXDEV)     # "Invalid cross-device link"
LOOP = os.strerror(errno.ELOOP)     # "Too many levels of symbolic links"


def _child(fn, look=None):
    """``fn()`` in a forked child (procfs's state its own); returns what it returned, or the
    refusal it raised: {"InitError": message} or {"OSError": [errno, strerror, filename]}.
    ``look(pid, result)`` runs in the parent while the child still lives."""
    r, w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            os.close(hold_w)
            procfs.close()
            from ociruntime.errors import InitError
            try:
                res = {"ok": fn()}
            except InitError as e:
                res = {"InitError": str(e)}
            except OSError as e:
                res = {"OSError": [e.errno, e.strerror, e.filename]}
            os.write(w, json.dumps(res).encode() + b"\n")
            os.read(hold_r, 1)                  # until the parent has looked
        except BaseException as e:  # noqa: BLE001 - reported to the test
            os.write(2, ("child: %r\n" % (e,)).encode())
            code = 99
        finally:
            os._exit(code)
    os.close(w)
    os.close(hold_r)
    try:
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
        assert data, "the child reported nothing"
        res = json.loads(data)
        if look:
            look(pid, res)
    finally:
        os.close(hold_w)
        os.close(r)
        status = os.waitpid(pid, 0)[1]
    assert os.waitstatus_to_exitcode(status) == 0, "the child failed"
    return res


def _private_mounts(*more):
    """This process in a mount namespace (and ``more`` namespaces) of its own, nothing shared."""
    flags = S.CLONE_NEWNS
    for f in more:
        flags |= f
    S.unshare(flags)
    S.mount(None, "/", None, S.MS_REC | S.MS_PRIVATE)


def _read(path):
    with open(path) as f:
        return f.read()


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _next_fd():
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    return fd


def _no_tmpfs_on_proc():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if left.split()[4] == "/proc":
                assert right.split()[0] == "proc", line


# -- open_root: the /proc it opens must be a procfs -------------------------------------------------

@needs_root
@pytest.mark.parametrize("kind", ["tmpfs", "directory"])
def test_open_root_refuses_a_proc_that_is_not_procfs(tmp_path, kind):
    """A /proc that is a tmpfs or a plain directory (bound there) is refused, naming its type;
    nothing is kept open."""
    d = tmp_path / "notproc"
    d.mkdir()

    def fn():
        _private_mounts()
        if kind == "tmpfs":
            S.mount("tmpfs", "/proc", "tmpfs", 0, "size=64k")
        else:
            S.mount(str(d), "/proc", None, S.MS_BIND)
        fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY)
        kind_there = S.fstatfs_type(fd)
        os.close(fd)
        before = _next_fd()
        try:
            procfs.open_root()
        finally:
            assert procfs._root == -1 and _next_fd() == before, "an fd was kept"
        raise AssertionError("not refused: %#x" % kind_there)

    res = _child(fn)
    msg = res.get("InitError", "")
    assert msg.startswith("open procfs: /proc: not a procfs (filesystem type 0x"), res
    assert msg.endswith("): refused"), res
    if kind == "tmpfs":
        assert "(filesystem type 0x1021994)" in msg   # TMPFS_MAGIC
    _no_tmpfs_on_proc()                                  # the child's mounts stayed its own


def test_open_root_once_and_close():
    """One fd per process tree, an O_PATH of the procfs; close() closes it and the next
    open_root opens it again."""
    def fn():
        fd = procfs.open_root()
        assert procfs.open_root() == fd
        assert S.fstatfs_type(fd) == S.PROC_SUPER_MAGIC
        import fcntl
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_PATH
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        procfs.close()
        try:
            os.fstat(fd)
            closed = False
        except OSError as e:
            closed = e.errno == errno.EBADF
        again = procfs.open_root()
        return [closed, procfs._root == again, S.fstatfs_type(again) == S.PROC_SUPER_MAGIC]

    assert _child(fn) == {"ok": [True, True, True]}


# -- a fake proc: a plain directory or a tmpfs --------------------------------------------------------

def _fake_proc(base, kind):
    """A fake proc at base/proc: sys/kernel/shmmni and 4242/oom_score_adj, self -> 4242; its
    fd becomes procfs's root (as if open_root had opened it)."""
    root = base / "proc"
    root.mkdir(exist_ok=True)
    if kind == "tmpfs":
        _private_mounts()
        S.mount("tmpfs", str(root), "tmpfs", 0, "size=64k")
    (root / "sys" / "kernel").mkdir(parents=True)
    (root / "4242").mkdir()
    _write(root / "sys" / "kernel" / "shmmni", "untouched\n")
    _write(root / "4242" / "oom_score_adj", "untouched\n")
    os.symlink("4242", root / "self")
    procfs._root = os.open(str(root), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return root


FAKE = [pytest.param("directory", id="directory"),
        pytest.param("tmpfs", id="tmpfs", marks=needs_root)]


@pytest.mark.parametrize("kind", FAKE)
def test_a_file_of_a_fake_proc_is_refused(tmp_path, kind):
    """Beneath a root that is not a procfs, a file is found but is not on procfs: each write is
    refused (EXDEV) with the step and the /proc path, and the file is unchanged; read fails the
    same way, exists says no."""
    def fn():
        root = _fake_proc(tmp_path, kind)
        out = {}
        for rel, what in (("sys/kernel/shmmni", "set sysctl kernel.shmmni"),
                          ("self/oom_score_adj", "set oom_score_adj")):
            try:
                procfs.write(rel, "99", what)
                out[rel] = "written"
            except Exception as e:  # noqa: BLE001 - the test looks at it
                out[rel] = "%s: %s" % (type(e).__name__, e)
        try:
            procfs.read("sys/kernel/shmmni")
            out["read"] = "read"
        except OSError as e:
            out["read"] = [e.errno, e.strerror, e.filename]
        out["exists"] = procfs.exists("sys/kernel/shmmni")
        out["files"] = [_read(root / "sys" / "kernel" / "shmmni"), _read(root / "4242" / "oom_score_adj")]
        return out

    out = _child(fn)["ok"]
    assert out["sys/kernel/shmmni"] == "InitError: set sysctl kernel.shmmni: /proc/sys/kernel/shmmni: " + XDEV
    assert out["self/oom_score_adj"] == "InitError: set oom_score_adj: /proc/self/oom_score_adj: " + XDEV
    assert out["read"] == [errno.EXDEV, "not on procfs", "/proc/sys/kernel/shmmni"]
    assert out["exists"] is False
    assert out["files"] == ["untouched\n", "untouched\n"]


@pytest.mark.parametrize("kind", FAKE)
@pytest.mark.parametrize("link,rel,err", [
    ("abs-to-proc", "sys/kernel/shmmni", LOOP),    # sys/kernel/shmmni -> /proc/PID/oom_score_adj
    ("rel-escape", "sys/kernel/shmmni", LOOP),     # sys/kernel/shmmni -> ../../../outside/target
    ("dir-link", "sys/kernel/shmmni", LOOP),       # sys -> ../outside (a directory on the way)
    ("self-abs", "self/oom_score_adj", XDEV),      # self -> /.../outside: an absolute path
    ("self-dotdot", "self/oom_score_adj", XDEV),   # self -> ../outside: above the root
])
def test_a_symlink_out_of_the_proc_is_not_followed(tmp_path, kind, link, rel, err):
    """A symlink in the proc (the image's /dev/console -> /proc/sys/kernel/shmmni of
    CVE-2025-52565), a directory link on the way, or a "self" naming a path outside: refused,
    and neither the file it points at (a genuine proc file of the child's, or one outside) nor
    the file it replaced is written."""
    outside = tmp_path / "outside"
    outside.mkdir()
    _write(outside / "target", "untouched\n")
    _write(outside / "oom_score_adj", "untouched\n")
    (outside / "kernel").mkdir()
    _write(outside / "kernel" / "shmmni", "untouched\n")

    def fn():
        own = _read("/proc/self/oom_score_adj")
        root = _fake_proc(tmp_path, kind)
        shmmni = root / "sys" / "kernel" / "shmmni"
        if link == "abs-to-proc":
            shmmni.unlink()
            os.symlink("/proc/%d/oom_score_adj" % os.getpid(), shmmni)
        elif link == "rel-escape":
            shmmni.unlink()
            os.symlink("../../../outside/target", shmmni)
        elif link == "dir-link":
            os.rename(root / "sys", root / "sys.real")
            os.symlink("../outside", root / "sys")
        elif link == "self-abs":
            (root / "self").unlink()
            os.symlink(str(outside), root / "self")
        else:
            (root / "self").unlink()
            os.symlink("../outside", root / "self")
        value = "777" if own.strip() != "777" else "778"
        try:
            procfs.write(rel, value, "set it")
            got = "written"
        except Exception as e:  # noqa: BLE001 - the test looks at it
            got = "%s: %s" % (type(e).__name__, e)
        return [got, _read("/proc/self/oom_score_adj") == own]

    got, own_unchanged = _child(fn)["ok"]
    assert got == "InitError: set it: /proc/%s: %s" % (rel, err)
    assert own_unchanged, "the child's own oom_score_adj was written through the link"
    for f in ("target", "oom_score_adj", "kernel/shmmni"):
        assert _read(outside / f) == "untouched\n", f


def test_a_path_climbing_out_of_the_root_is_refused():
    """A path with ".." above the root is refused even where it would stay on the same procfs
    mount and reach a proc file (the root here is the genuine /proc/sys, so only the
    RESOLVE_BENEATH of the open stands between it and the process's oom_score_adj)."""
    def fn():
        own = _read("/proc/self/oom_score_adj")
        procfs._root = os.open("/proc/sys", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        rel = "../%d/oom_score_adj" % os.getpid()
        try:
            procfs.write(rel, "777" if own.strip() != "777" else "778", "set it")
            got = "written"
        except Exception as e:  # noqa: BLE001 - the test looks at it
            got = "%s: %s" % (type(e).__name__, e)
        return [got, rel, _read("/proc/self/oom_score_adj") == own]

    got, rel, own_unchanged = _child(fn)["ok"]
    assert got == "InitError: set it: /proc/%s: %s" % (rel, XDEV)
    assert own_unchanged


# -- the genuine procfs, with mounts over and under it ------------------------------------------------

@needs_root
@pytest.mark.parametrize("over", ["file", "tmpfs-dir", "proc-file"])
def test_a_mount_over_a_proc_file_is_refused(tmp_path, over):
    """After open_root, a regular file bound over /proc/sys/kernel/hostname, a tmpfs over
    /proc/sys/kernel (with its own hostname file), or another proc file (domainname) bound over
    it: the write crosses a mount and is refused with the path; what is mounted there is
    unchanged, and so is the hostname."""
    decoy = tmp_path / "decoy"
    _write(decoy, "untouched\n")

    def fn():
        _private_mounts(S.CLONE_NEWUTS)
        procfs.open_root()
        target = "/proc/sys/kernel/hostname"
        if over == "file":
            S.mount(str(decoy), target, None, S.MS_BIND)
        elif over == "tmpfs-dir":
            S.mount("tmpfs", "/proc/sys/kernel", "tmpfs", 0, "size=64k")
            _write(target, "untouched\n")
        else:
            S.mount("/proc/sys/kernel/domainname", target, None, S.MS_BIND)
        before = _read(target)
        try:
            procfs.write("sys/kernel/hostname", "procfs-escape", "set sysctl kernel.hostname")
            got = "written"
        except Exception as e:  # noqa: BLE001 - the test looks at it
            got = "%s: %s" % (type(e).__name__, e)
        return [got, before, _read(target), socket.gethostname()]

    host = socket.gethostname()
    got, before, after, name = _child(fn)["ok"]
    assert got == "InitError: set sysctl kernel.hostname: /proc/sys/kernel/hostname: " + XDEV
    assert after == before
    assert name == host                     # the child's UTS namespace kept the host's name
    assert _read(decoy) == "untouched\n"
    assert socket.gethostname() == host
    _no_tmpfs_on_proc()


@needs_root
def test_a_bind_over_a_pid_file_is_refused(tmp_path):
    """A file bound over the process's own /proc/PID/oom_score_adj: "self/..." is refused
    there too; the decoy and the genuine value (read from the host) are unchanged."""
    decoy = tmp_path / "decoy"
    _write(decoy, "untouched\n")

    def fn():
        own = _read("/proc/self/oom_score_adj")
        _private_mounts()
        procfs.open_root()
        S.mount(str(decoy), "/proc/%d/oom_score_adj" % os.getpid(), None, S.MS_BIND)
        try:
            procfs.write("self/oom_score_adj", "777" if own.strip() != "777" else "778", "set oom_score_adj")
            got = "written"
        except Exception as e:  # noqa: BLE001 - the test looks at it
            got = "%s: %s" % (type(e).__name__, e)
        return [got, own]

    seen = []
    res = _child(fn, look=lambda pid, res: seen.append(_read("/proc/%d/oom_score_adj" % pid)))
    got, own = res["ok"]
    assert got == "InitError: set oom_score_adj: /proc/self/oom_score_adj: " + XDEV
    assert seen == [own]
    assert _read(decoy) == "untouched\n"


def test_a_genuine_proc_file_is_written():
    """"self/..." is this process's file: the value lands where the host reads it; a value the
    kernel refuses and a file that does not exist are refused with the step and the path; read
    and exists see genuine files (and not the "self" link itself)."""
    def fn():
        own = _read("/proc/self/oom_score_adj").strip()
        want = "500" if own != "500" else "501"
        procfs.write("self/oom_score_adj", want, "set oom_score_adj")
        out = {"want": want, "read": procfs.read("self/oom_score_adj").decode()}
        for rel, data, what in (("self/oom_score_adj", "abc", "set oom_score_adj"),
                                ("sys/kernel/nosuch", "1", "set sysctl kernel.nosuch")):
            try:
                procfs.write(rel, data, what)
                out[rel] = "written"
            except Exception as e:  # noqa: BLE001 - the test looks at it
                out[rel] = "%s: %s" % (type(e).__name__, e)
        out["exists"] = [procfs.exists(p) for p in ("self/oom_score_adj", "sys/kernel/hostname", "nosuch", "self")]
        out["setgroups"] = procfs.read("self/setgroups").decode()
        return out

    seen = []
    out = _child(fn, look=lambda pid, res: seen.append(_read("/proc/%d/oom_score_adj" % pid).strip()))["ok"]
    assert seen == [out["want"]] and out["read"] == out["want"] + "\n"
    assert out["self/oom_score_adj"] == "InitError: set oom_score_adj: /proc/self/oom_score_adj: " + os.strerror(
        errno.EINVAL)
    assert out["sys/kernel/nosuch"] == "InitError: set sysctl kernel.nosuch: /proc/sys/kernel/nosuch: " + os.strerror(
        errno.ENOENT)
    assert out["exists"] == [True, True, False, False]
    assert out["setgroups"] == "allow\n"


@needs_root
def test_a_sysctl_is_written_in_the_processs_namespace():
    """A namespaced sysctl (kernel.hostname) written through the procfs: the child's UTS
    namespace has it, the host keeps its name."""
    def fn():
        S.unshare(S.CLONE_NEWUTS)
        procfs.write("sys/kernel/hostname", "procfs-test", "set sysctl kernel.hostname")
        return [socket.gethostname(), procfs.read("sys/kernel/hostname").decode()]

    host = socket.gethostname()
    assert _child(fn) == {"ok": ["procfs-test", "procfs-test\n"]}
    assert socket.gethostname() == host


@needs_root
def test_the_held_fd_writes_once_proc_is_covered(tmp_path):
    """open_root before the container's mounts: a tmpfs (or a new procfs) put over /proc
    afterwards changes nothing; the write reaches the process's genuine file."""
    def fn():
        own = _read("/proc/self/oom_score_adj").strip()
        want = "600" if own != "600" else "601"
        _private_mounts()
        procfs.open_root()
        S.mount("tmpfs", "/proc", "tmpfs", 0, "size=64k")
        assert not os.path.exists("/proc/self")
        procfs.write("self/oom_score_adj", want, "set oom_score_adj")
        return want

    seen = []
    want = _child(fn, look=lambda pid, res: seen.append(_read("/proc/%d/oom_score_adj" % pid).strip()))["ok"]
    assert seen == [want]
    _no_tmpfs_on_proc()


@needs_root
def test_self_is_the_hosts_number_in_a_new_pid_namespace():
    """The root opened before a new pid namespace: "self" there is the process's host pid (its
    getpid() says 1), so self/... is its own file, not the host's PID 1's."""
    def fn():
        procfs.open_root()
        S.unshare(S.CLONE_NEWPID)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                seen = [os.getpid(), procfs.read("self/stat").split()[0].decode(), procfs._pid()]
                os.write(w, json.dumps(seen).encode())
            finally:
                os._exit(0)
        os.close(w)
        seen = json.loads(os.read(r, 4096))
        os.close(r)
        os.waitpid(pid, 0)
        return [pid] + seen

    pid, getpid, stat_pid, self_link = _child(fn)["ok"]
    assert getpid == 1
    assert stat_pid == self_link == str(pid)


# -- a caller: the id maps, written by the runtime's own process --------------------------------------

@needs_root
def test_id_maps_written_once_then_refused():
    """namespaces.write_idmaps (the parent's write of a child's maps) reaches /proc/PID/uid_map
    and gid_map, and closes the procfs after; a second write is the kernel's refusal, with the
    step and the path."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    target = os.fork()
    if target == 0:
        try:
            os.close(ready_r)
            os.close(go_w)
            S.unshare(S.CLONE_NEWUSER)
            os.write(ready_w, b"x")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    try:
        assert os.read(ready_r, 1) == b"x"
        maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]

        def fn():
            namespaces.write_idmaps(target, maps, maps)
            assert procfs._root == -1, "the procfs was left open"
            try:
                namespaces.write_idmaps(target, maps, maps)
            finally:
                assert procfs._root == -1, "the procfs was left open"
            return "written twice"

        res = _child(fn)
        assert res == {"InitError": "write uid_map: /proc/%d/uid_map: %s" % (target, os.strerror(errno.EPERM))}
        for name in ("uid_map", "gid_map"):
            assert _read("/proc/%d/%s" % (target, name)).split() == ["0", "100000", "65536"]
    finally:
        os.close(go_w)
        os.close(ready_r)
        os.waitpid(target, 0)
