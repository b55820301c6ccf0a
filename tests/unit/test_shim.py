"""The shim (cext/shim.c through ociruntime/_sys.py), each guarantee checked in a forked child:
the init's wait drops exactly the read-only file mappings without a page of their own, checked in
the same moment; libseccomp's entry points refuse before the library is open; the trampoline is a
sealed memfd, runs the program (a `#!/proc/self/exe` script reaches only the trampoline, which
refuses) and reports a failed execve; every fd beyond the kept ones is closed without
close_range too; fork/unshare/setns refuse a process with a second thread; a failed final step
is named; a fork into a cgroup2 cgroup (clone3) gives a child born there, with Python's and
glibc's fork state as os.fork's, or an error and no child where clone3 is refused."""
import errno
import fcntl
import os
import subprocess
import sys
import threading
import time

import pytest

from ociruntime import _sys as S
from ociruntime.errors import InitError

F_GET_SEALS = 1034
ALL_SEALS = 0x1 | 0x2 | 0x4 | 0x8  # SEAL, SHRINK, GROW, WRITE


def _in_child(fn):
    """Run ``fn()`` in a forked child; its stdout (bytes) and exit status."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.dup2(w, 1)
            fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            os.write(2, ("child: %r\n" % (e,)).encode())
            code = 99
        finally:
            os._exit(code)
    os.close(w)
    out = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        out += chunk
    os.close(r)
    return out, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


# -- the init's wait ------------------------------------------------------------------------------

def _readonly_file_mappings(pid):
    """{(start, end, path): (Rss kB, page flags bytes)} of pid's r-xp/r--p file mappings."""
    out = {}
    fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    try:
        with open(f"/proc/{pid}/smaps", "rb") as f:
            key = None
            for line in f:
                parts = line.split(None, 5)
                if b"-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(b":"):
                    key = None
                    if len(parts) == 6 and parts[1] in (b"r-xp", b"r--p") and parts[5].startswith(b"/"):
                        lo, hi = (int(x, 16) for x in parts[0].split(b"-"))
                        key = (lo, hi, parts[5].strip().decode())
                        out[key] = [0, os.pread(fd, (hi - lo) >> 12 << 3, (lo >> 12) << 3)[7::8]]
                elif key is not None and parts[0] == b"Rss:":
                    out[key][0] = int(parts[1])
    finally:
        os.close(fd)
    return out


def _own(flags):
    """Page flags (pagemap's top bytes) with a page of the mapping's own: swapped, or present and
    not the file's (relocated, then made read-only: RELRO)."""
    return [i for i, b in enumerate(flags) if (b & 0x40) or (b & 0xA0) == 0x80]


# what the wait itself runs after the drop (its C code, libc's, the locale sscanf reads) faults
# back in; nothing else may be resident again
RUNS_IN_THE_WAIT = ("/libc.so", "/ld-linux", "/_shim.", "/locale/")


def test_the_wait_drops_exactly_the_mappings_without_pages_of_their_own(tmp_path):
    """Before the wait: the child's read-only file mappings, some with pages of their own.  While
    it waits: those keep every page of their own (a drop would have lost their relocations), the
    others hold no page but what the wait's own code faulted back."""
    if os.geteuid() != 0:
        pytest.skip("reading another process's pagemap flags needs root")
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo, 0o622)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            maps = os.open("/proc/self/maps", os.O_RDONLY | os.O_CLOEXEC)
            pagemap = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
            fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
            os.write(ready_w, b"before")
            os.read(go_r, 1)
            wfd = S.wait(ready_w, b"ready", fifo_fd, maps, pagemap)
            os._exit(0 if os.readlink("/proc/self/fd/%d" % wfd) == str(fifo) else 3)
        except BaseException:  # noqa: BLE001
            os._exit(99)
    os.close(ready_w)
    try:
        assert os.read(ready_r, 100) == b"before"
        before = _readonly_file_mappings(pid)
        os.write(go_w, b"g")
        assert os.read(ready_r, 100) == b"ready"   # sent after the drop: the child now blocks
        after = _readonly_file_mappings(pid)
    finally:
        os.close(ready_r)
        os.close(go_w)
        os.close(go_r)
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        status = os.waitpid(pid, 0)[1]
        released = os.read(rfd, 10)
        os.close(rfd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert released == b"0"
    kept = {m for m, (rss, flags) in before.items() if _own(flags)}
    assert kept                                    # libc's RELRO, at least
    for m in kept:
        assert set(_own(before[m][1])) <= set(_own(after[m][1])), m
    dropped = [m for m in before if m not in kept]
    resident = [(m[2], after[m][0]) for m in dropped if after[m][0] and not any(s in m[2] for s in RUNS_IN_THE_WAIT)]
    assert resident == []
    assert sum(before[m][0] for m in dropped) > 2 * sum(after[m][0] for m in dropped)


def test_the_wait_without_page_fds_drops_nothing(tmp_path):
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo, 0o622)
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            S.wait(ready_w, b"ready", os.open(fifo, os.O_PATH | os.O_CLOEXEC))
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(99)
    os.close(ready_w)
    assert os.read(ready_r, 100) == b"ready"
    with open(f"/proc/{pid}/smaps_rollup") as f:
        rss = int(next(line for line in f if line.startswith("Rss:")).split()[1])
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    os.close(rfd)
    assert rss > 4000          # the interpreter's pages are all still there


# -- libseccomp ------------------------------------------------------------------------------------

def test_libseccomp_entry_points_refuse_before_it_is_opened():
    code = r"""
from ociruntime._shim import ffi, lib
v = ffi.new("unsigned int[3]")
arg = ffi.new("struct oci_scmp_arg[1]")
print(lib.oci_scmp_version(v, v + 1, v + 2), lib.oci_scmp_init(0) == ffi.NULL,
      lib.oci_scmp_arch_add(ffi.NULL, 0), lib.oci_scmp_arch_resolve(b"x86_64"),
      lib.oci_scmp_syscall_resolve(b"read"), lib.oci_scmp_export_bpf(ffi.NULL, 1),
      lib.oci_scmp_rule_add(ffi.NULL, 0, 0, 0, arg))
lib.oci_scmp_release(ffi.NULL)
print(lib.oci_scmp_open(), lib.oci_scmp_syscall_resolve(b"read"), lib.oci_scmp_arch_resolve(b"x86_64") != 0)
ctx = lib.oci_scmp_init(0x7FFF0000)
print(ctx != ffi.NULL, lib.oci_scmp_arch_add(ctx, 0), lib.oci_scmp_rule_add(ctx, 0x00050001, 0, 0, arg) == 0)
lib.oci_scmp_release(ctx)
"""
    r = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    elibacc = str(-errno.ELIBACC)
    assert lines[0].split() == [elibacc, "True", elibacc, "0", elibacc, elibacc, elibacc]
    if os.uname().machine == "x86_64":
        assert lines[1].split() == ["0", "0", "True"]
    assert lines[2].split()[0] == "True" and lines[2].split()[2] == "True"


def test_libseccomp_per_architecture_numbers():
    """The -ENOSYS stub's inputs: a syscall's number on each architecture and the native one."""
    code = r"""
from ociruntime._shim import lib
print(lib.oci_scmp_syscall_resolve_arch(0, b"read"), lib.oci_scmp_arch_native())
lib.oci_scmp_open()
native = lib.oci_scmp_arch_native()
print(native == lib.oci_scmp_arch_resolve(b"x86_64"), native != 0)
print(*[lib.oci_scmp_syscall_resolve_arch(lib.oci_scmp_arch_resolve(a), b"getrandom") for a in (b"x86_64", b"x86", b"x32")],
      lib.oci_scmp_syscall_resolve_arch(native, b"oci_test_no_such_syscall"))
"""
    r = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == [str(-errno.ELIBACC), "0"]
    assert lines[1].split()[1] == "True"
    if os.uname().machine == "x86_64":
        # x32's numbers carry __X32_SYSCALL_BIT; -1 is libseccomp's "no such syscall"
        assert lines[1].split()[0] == "True"
        assert lines[2].split() == ["318", "355", str(0x40000000 + 318), "-1"]


# -- the trampoline and the final exec ---------------------------------------------------------------

def test_the_trampoline_is_a_sealed_read_only_memfd():
    fd = S.trampoline()
    try:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert fcntl.fcntl(fd, F_GET_SEALS) == ALL_SEALS
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:ociruntime-trampoline")
        st = os.fstat(fd)
        assert st.st_mode & 0o7777 == 0o555
        assert os.pread(fd, 4, 0) == b"\x7fELF" and 0 < st.st_size < 16384
        w = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)   # root may open it: no write lands
        try:
            with pytest.raises(PermissionError):
                os.write(w, b"x")
            with pytest.raises(PermissionError):
                os.ftruncate(w, 0)
        finally:
            os.close(w)
        with pytest.raises(PermissionError):
            fcntl.fcntl(fd, 1033, 0)                       # F_ADD_SEALS: sealed against new seals
    finally:
        os.close(fd)


def _exec(path, argv, errfd=-1, first=3, before=None):
    """A child execs ``path`` through the trampoline; (stdout, status, what errfd's reader got)."""
    rep_r, rep_w = os.pipe2(os.O_CLOEXEC)

    def child():
        tfd = S.trampoline()
        if before:
            before()
        S.exec_trampoline(tfd, path, argv, ["PATH=/bin:/usr/bin"], errfd=rep_w if errfd else -1,
                          first_cloexec_fd=first)
    out, status = _in_child(child)
    os.close(rep_w)
    report = os.read(rep_r, 100)
    os.close(rep_r)
    return out.decode(), status, report


def test_exec_runs_the_program_with_only_the_kept_fds():
    leaked = os.open("/", os.O_RDONLY)        # inheritable: only the shim closes it
    os.set_inheritable(leaked, True)
    try:
        out, status, report = _exec("/bin/sh", ["sh", "-c", "readlink /proc/$$/exe; ls /proc/$$/fd"])
    finally:
        os.close(leaked)
    exe, *fds = out.split()
    assert status == 0 and report == b""                  # EOF: the execve succeeded
    assert exe == os.path.realpath("/bin/sh")             # the program, not the trampoline
    assert sorted(map(int, fds)) == [0, 1, 2]


def test_exec_failure_is_reported_by_the_trampoline():
    out, status, report = _exec("/no/such/program", ["x"])
    assert status == 127 and report == b"exec:%d\n" % errno.ENOENT


def test_a_script_for_proc_self_exe_reaches_only_the_trampoline(tmp_path):
    script = tmp_path / "evil"
    script.write_text("#!/proc/self/exe\n")
    script.chmod(0o755)
    r, w = os.pipe()

    def child():
        os.dup2(w, 2)
        tfd = S.trampoline()
        S.exec_trampoline(tfd, str(script), [str(script)], [], errfd=-1)
    out, status = _in_child(child)
    os.close(w)
    err = os.read(r, 1000)
    os.close(r)
    assert status == 127                                  # the trampoline refused to go on
    assert b"ociruntime trampoline: not started by the runtime" in err


@pytest.mark.parametrize("denied", ["close_range", "close_range and execveat"])
def test_exec_without_close_range_or_execveat(denied):
    """A kernel before 5.11 (close_range's CLOEXEC) or a seccomp profile refusing close_range
    (ENOSYS) and execveat (EPERM): the fds are made close-on-exec one by one, the trampoline runs
    through /proc/self/fd/N."""
    from ociruntime.security import seccomp
    rules = [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}]
    if "execveat" in denied:
        rules.append({"names": ["execveat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM})
    filt = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}, cache=False)

    def before():
        os.set_inheritable(os.open("/", os.O_RDONLY), True)
        S.finalize(no_new_privs=True, seccomp=(filt.bpf, filt.flags, False))
    out, status, report = _exec("/bin/sh", ["sh", "-c", "readlink /proc/$$/exe; ls /proc/$$/fd"], before=before)
    exe, *fds = out.split()
    assert status == 0 and report == b""
    assert exe == os.path.realpath("/bin/sh")
    assert sorted(map(int, fds)) == [0, 1, 2]


def test_a_failed_final_step_is_named():
    def child():
        try:   # effective beyond permitted: capset refuses
            S.finalize(caps=(0, 1 << 5, 0, 0, 0), last_cap=40)
        except OSError as e:
            os.write(1, ("%s %d" % (e.filename, e.errno)).encode())
    out, status = _in_child(child)
    assert status == 0 and out == b"capset %d" % errno.EPERM


# -- single-threaded -------------------------------------------------------------------------------

def test_fork_unshare_setns_refuse_a_second_thread():
    import ociruntime
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        for what, call in (("fork", lambda: ociruntime.fork("fork the container init")),
                           ("fork into a cgroup", lambda: S.fork_into_cgroup(0, "fork the container init")),
                           ("unshare", lambda: S.unshare(0)),
                           ("setns", lambda: S.setns(0, 0))):
            with pytest.raises(InitError) as e:
                call()
            assert "the runtime has 2 threads: it must be single-threaded" in str(e.value), what
    finally:
        stop.set()
        t.join()
    # a joined thread's task may linger a moment after join returns
    deadline = time.monotonic() + 2
    while os.stat("/proc/self/task").st_nlink != 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    pid = ociruntime.fork("fork")
    if pid == 0:
        os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


# -- fork into a cgroup (clone3 CLONE_INTO_CGROUP) --------------------------------------------------

def _cgroup2_mount():
    from ociruntime.cgroups import detect
    for _, mp, version, _ in detect():
        if version == 2:
            return mp
    pytest.skip("no cgroup2 hierarchy mounted here")


@pytest.fixture
def cgroup2_dir():
    """A cgroup of the test's own on the cgroup2 hierarchy, removed after."""
    if os.geteuid() != 0:
        pytest.skip("needs root (a cgroup of its own)")
    d = os.path.join(_cgroup2_mount(), "oci-test-%s-shim" % os.urandom(3).hex())
    os.mkdir(d)
    yield d
    deadline = time.monotonic() + 5
    while True:
        try:
            os.rmdir(d)
            break
        except OSError:  # a reaped child's task may linger a moment
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _tid_word():
    """What glibc holds as this thread's id (the kernel's clear_child_tid address: PR_GET_TID_ADDRESS)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    p = ctypes.c_void_p()
    assert libc.prctl(40, ctypes.byref(p), 0, 0, 0) == 0
    return ctypes.c_int.from_address(p.value).value


def test_fork_into_cgroup_child_is_born_in_the_cgroup(cgroup2_dir):
    """The child is in the cgroup when it first runs Python (before anything could write
    cgroup.procs), Python's at-fork callbacks ran as for os.fork, glibc's idea of its thread id is
    its own, and it forks and imports as any forked child."""
    mp = _cgroup2_mount()
    calls = []  # (the callbacks stay registered: they record only for this test)
    record = lambda what: calls.append(what) if recording else None  # noqa: E731
    recording = True
    os.register_at_fork(before=lambda: record("before"), after_in_parent=lambda: record("parent"),
                        after_in_child=lambda: record("child"))
    fd = os.open(cgroup2_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    r, w = os.pipe()
    try:
        pid = S.fork_into_cgroup(fd)
        if pid == 0:
            try:
                with open("/proc/self/cgroup") as f:
                    v2 = [ln[3:] for ln in f.read().splitlines() if ln.startswith("0::")][0]
                child_calls = list(calls)
                inner = os.fork()
                if inner == 0:
                    os._exit(5)
                status = os.waitstatus_to_exitcode(os.waitpid(inner, 0)[1])
                import json  # noqa: F401  (the import lock works)
                os.write(w, repr((v2, os.getpid(), _tid_word(), child_calls, status)).encode())
            finally:
                os._exit(0)
        recording = False
        os.close(w)
        w = -1
        procs = open(os.path.join(cgroup2_dir, "cgroup.procs")).read().split()
        out = os.read(r, 4096).decode()
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    finally:
        os.close(fd)
        os.close(r)
        if w >= 0:
            os.close(w)
    import ast
    v2, child_pid, tid, child_calls, status = ast.literal_eval(out)
    assert v2 == cgroup2_dir[len(mp):]
    assert child_pid == pid == tid and str(pid) in procs
    assert child_calls == ["before", "child"] and status == 5
    assert calls == ["before", "parent"]
    assert _tid_word() == os.getpid()


def test_fork_into_cgroup_refused_forks_nothing(cgroup2_dir):
    """Where clone3 is refused (a seccomp profile hiding it: ENOSYS) or the fd is no cgroup2
    directory, the error comes back and no child exists."""
    from ociruntime.security import seccomp
    filt = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}]}, cache=False)

    def child():
        fd = os.open(cgroup2_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        results = []
        for what, target in (("/", os.open("/", os.O_RDONLY | os.O_DIRECTORY)), ("seccomp", fd)):
            if what == "seccomp":
                S.finalize(no_new_privs=True, seccomp=(filt.bpf, filt.flags, False))
            try:
                pid = S.fork_into_cgroup(target)
            except OSError as e:
                results.append(e.errno)
            else:
                if pid == 0:
                    os._exit(0)
                results.append("forked %d" % pid)
        try:
            os.waitpid(-1, os.WNOHANG)
            results.append("a child exists")
        except ChildProcessError:
            pass
        os.write(1, repr(results).encode())
    out, status = _in_child(child)
    assert status == 0
    assert out == repr([errno.EBADF, errno.ENOSYS]).encode()
    assert open(os.path.join(cgroup2_dir, "cgroup.procs")).read() == ""
