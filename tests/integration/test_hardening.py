"""Hardening: each test builds a hostile rootfs, config or process, runs it, and checks that the
attack fails and the host is unchanged.

- CVE-2019-5736 family: the init runs the host's interpreter until its final execve; nothing in
  the container may open it (/proc/PID/exe), its fds, cwd, root, environ or memory.
- CVE-2024-21626 family: no fd of the host reaches the container; a cwd (or args[0]) through
  /proc/self/fd/N to a leaked fd is refused.
- CVE-2021-30465 family: mount destinations and device paths with symlinks out of the rootfs, also
  swapped while the container is being created, stay inside the rootfs.
- CVE-2019-16884 family: procfs only on a real /proc directory, nothing mounted over it; masked and
  read-only paths cannot be undone without CAP_SYS_ADMIN; /dev/null used for masking is checked.
- No Python is imported from the container's rootfs after pivot_root.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from helpers import LONG_RUNNING, ConsoleSocket, Result, parse_mountinfo


def _interpreter(runtime_bin):
    """The file the runtime's processes execute: the script's interpreter, or the binary."""
    with open(runtime_bin, "rb") as f:
        head = f.read(256)
    if head.startswith(b"#!"):
        return os.path.realpath(head[2:].split(b"\n")[0].split()[0].decode())
    return os.path.realpath(runtime_bin)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def host_binary(runtime):
    """The runtime's interpreter (or binary), checked unchanged after the test."""
    path = _interpreter(runtime.bin)
    before = (_sha256(path), os.stat(path).st_mtime_ns)
    yield path
    assert (_sha256(path), os.stat(path).st_mtime_ns) == before, f"{path} was modified"


# ---------------------------------------------------------------------------------------------------
# CVE-2019-5736: /proc/PID/exe, fd, cwd, root, environ, mem of a process still running runtime code

ATTACK_PID1 = r"""
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name=OPENED"; else echo "$name=refused"; fi; }
try exe-read  cat /proc/1/exe
try exe-write sh -c 'printf "#!/bin/sh\n" >> /proc/1/exe'
try exe-link  readlink /proc/1/exe
try fd-link   sh -c 'for f in /proc/1/fd/*; do readlink "$f" && exit 0; done; exit 1'
try fd-open   sh -c 'for f in /proc/1/fd/*; do cat "$f" && exit 0; done; exit 1'
try cwd       ls /proc/1/cwd/
try root      ls /proc/1/root/
try environ   cat /proc/1/environ
try mem       dd if=/proc/1/mem bs=1 count=1 skip=4096
try maps      cat /proc/1/maps
try map-files sh -c 'for f in /proc/1/map_files/*; do cat "$f" && exit 0; done; exit 1'
echo done
"""


def _attacker_in_pidns_of(bundle, pid, script, userns=False):
    b = bundle("sh", "-c", script, public=userns)
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "pid":
            ns["path"] = f"/proc/{pid}/ns/pid"
    return b


def _assert_all_refused(out):
    lines = out.splitlines()
    assert lines and lines[-1] == "done", out
    opened = [line for line in lines[:-1] if not line.endswith("=refused")]
    assert not opened, f"the attacker reached the runtime process: {opened}"


def test_created_init_unreachable_from_shared_pid_namespace(runtime, bundle, host_binary):
    """A created (not started) container's init waits on exec.fifo, still the runtime's code: a
    second container in its pid namespace, root with the default capabilities, cannot open its
    exe (the host's interpreter) for reading or writing, nor its fds, cwd, root, environ or memory."""
    victim = runtime.create(bundle(*LONG_RUNNING))
    pid = runtime.state(victim)["pid"]
    if runtime.name == "ociruntime":
        assert os.path.realpath(f"/proc/{pid}/exe") == host_binary   # the attack's premise
    out = runtime.output(_attacker_in_pidns_of(bundle, pid, ATTACK_PID1))
    _assert_all_refused(out)
    assert runtime.status(victim) == "created"
    runtime.start(victim)
    runtime.wait_status(victim, "running")


@pytest.mark.parametrize("mapping", ["subids", "identity"])
def test_created_init_unreachable_from_user_namespace(runtime, bundle, host_binary, mapping):
    """The same from a container joining the victim's user namespace, where the attacker has
    CAP_SYS_PTRACE (and CAP_SYS_ADMIN, CAP_DAC_OVERRIDE) over that namespace.  With the identity
    mapping the init's uid never changes, so the kernel does not make it non-dumpable by itself:
    only the runtime's PR_SET_DUMPABLE stands between the attacker and the host's interpreter."""
    from test_namespaces import USERNS_MAP
    maps = USERNS_MAP if mapping == "subids" else [{"containerID": 0, "hostID": 0, "size": 65536}]
    vb = bundle(*LONG_RUNNING, public=True)
    vb.config["linux"]["namespaces"].append({"type": "user"})
    vb.config["linux"]["uidMappings"] = list(maps)
    vb.config["linux"]["gidMappings"] = list(maps)
    victim = runtime.create(vb)
    pid = runtime.state(victim)["pid"]
    b = _attacker_in_pidns_of(bundle, pid, ATTACK_PID1, userns=True)
    b.config["linux"]["namespaces"].append({"type": "user", "path": f"/proc/{pid}/ns/user"})
    all_caps = ["CAP_SYS_PTRACE", "CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
                "CAP_KILL"]
    for k in ("bounding", "effective", "permitted"):
        b.config["process"]["capabilities"][k] = all_caps
    b.config["process"]["capabilities"]["ambient"] = []
    _assert_all_refused(runtime.output(b))


def test_exec_process_unreachable_while_runtime_code(runtime, bundle, host_binary):
    """`exec` joins a running container and is the runtime's code until its execve: a process of
    the container (in a user namespace mapping host root, with CAP_SYS_PTRACE there, so only
    non-dumpability protects the runtime) polls /proc for every new pid and tries to open its exe
    and fds; it must never reach anything but the exec'd program (or the sealed trampoline that
    executes it)."""
    watcher = r"""
    seen=" 1 $$ "
    end=$(( $(date +%s) + 6 ))
    while [ $(date +%s) -lt $end ]; do
      for d in /proc/[0-9]*; do
        p=${d#/proc/}
        case "$seen" in *" $p "*) continue;; esac
        l=$(readlink $d/exe 2>/dev/null)
        if [ -n "$l" ] || { ls $d/fd/ 2>/dev/null | grep -q . && readlink $d/fd/* >/dev/null 2>&1; }; then
          case "$l" in /bin/*|/sbin/*|/usr/*) seen="$seen$p "; echo "$p $l" >> /tmp/seen; continue;; esac
          # the sealed trampoline the final execve goes through (test_cve_2019_5736.py)
          case "$l" in "/memfd:ociruntime-trampoline (deleted)") continue;; esac
          echo "OPENED $p $l" >> /tmp/report
        fi
      done
    done
    """
    maps = [{"containerID": 0, "hostID": 0, "size": 65536}]
    b = bundle("sh", "-c", watcher, public=True)
    b.config["root"]["readonly"] = False
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = list(maps)
    b.config["linux"]["gidMappings"] = list(maps)
    caps = ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_KILL"]
    for k in ("bounding", "effective", "permitted"):
        b.config["process"]["capabilities"][k] = caps
    b.config["process"]["capabilities"]["ambient"] = []
    cid = runtime.create(b)
    runtime.start(cid)
    for _ in range(20):
        runtime.run("exec", cid, "sleep", "0.05", check=True)
    runtime.kill(cid, "KILL")
    runtime.wait_status(cid, "stopped")
    report = b.rootfs / "tmp" / "report"
    assert not report.exists(), report.read_text()
    assert (b.rootfs / "tmp" / "seen").read_text().count("/sleep") >= 3   # the watcher did see the execs


# ---------------------------------------------------------------------------------------------------
# CVE-2024-21626: leaked fds, cwd and args[0] through /proc/self/fd

def _run_with_fds(runtime, b, fds, *extra):
    """`run` with the given fds open (inheritable, same numbers) in the runtime's process."""
    cid = runtime.new_id()
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        p = subprocess.run([runtime.bin, "--root", runtime.root, "run", "--bundle", os.fspath(b), *extra, cid],
                           stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, pass_fds=fds, timeout=30)
        fo.seek(0)
        fe.seek(0)
        return p.returncode, fo.read().decode(errors="replace"), fe.read().decode(errors="replace")


@pytest.fixture
def host_fds(tmp_path):
    """Inheritable fds of the host at fixed numbers: an O_PATH and an O_RDONLY directory fd of a
    host directory holding HOSTMARKER, O_PATH and directory fds of the host's /, a file."""
    hostdir = tmp_path / "hostdir"
    hostdir.mkdir()
    (hostdir / "HOSTMARKER").write_text("host\n")
    (hostdir / "hostbin").write_text("#!/bin/sh\necho ESCAPED-EXEC\n")
    os.chmod(hostdir / "hostbin", 0o755)
    opened = {}
    specs = [(str(hostdir), os.O_PATH | os.O_DIRECTORY), (str(hostdir), os.O_RDONLY | os.O_DIRECTORY),
             ("/", os.O_PATH), ("/", os.O_RDONLY | os.O_DIRECTORY), ("/etc/hostname", os.O_RDONLY)]
    try:
        for path, flags in specs:
            fd = os.open(path, flags)
            os.set_inheritable(fd, True)
            opened[fd] = path
        yield hostdir, sorted(opened)
    finally:
        for num in opened:
            os.close(num)
    assert sorted(os.listdir(hostdir)) == ["HOSTMARKER", "hostbin"]


def _fd_listing(out):
    """{fd: target} from `ls -l /proc/self/fd` run by `exec ls`, without ls's own directory fd."""
    fds = {}
    for line in out.splitlines():
        if " -> " in line:
            left, target = line.split(" -> ", 1)
            fd = left.split()[-1]
            if not target.startswith("/proc/") or not target.endswith("/fd"):
                fds[int(fd)] = target
    return fds


def test_no_host_fd_reaches_the_container(runtime, bundle, host_fds):
    _, fds = host_fds
    b = bundle("sh", "-c", "exec ls -l /proc/self/fd/")
    rc, out, err = _run_with_fds(runtime, b, fds)
    assert rc == 0, err
    assert sorted(_fd_listing(out)) == [0, 1, 2], out


def test_preserve_fds_passes_only_those(runtime, bundle, host_fds):
    """--preserve-fds N: fds 3..N+2 reach the process as they are (what the caller asked for), the
    other leaked fds do not."""
    _, fds = host_fds
    rfd, wfd = os.pipe()
    saved = {}
    for num in (3, 4):          # pytest's own fds may be there: put them back afterwards
        try:
            saved[num] = os.dup(num)
        except OSError:
            pass
    try:
        os.dup2(rfd, 3, inheritable=True)
        os.dup2(wfd, 4, inheritable=True)
        b = bundle("sh", "-c", "exec ls -l /proc/self/fd/")
        rc, out, err = _run_with_fds(runtime, b, [3, 4] + fds, "--preserve-fds", "2")
    finally:
        for num in (3, 4):
            if num in saved:
                os.dup2(saved[num], num, inheritable=False)
                os.close(saved[num])
            else:
                os.close(num)
        os.close(rfd)
        os.close(wfd)
    assert rc == 0, err
    listing = _fd_listing(out)
    assert sorted(listing) == [0, 1, 2, 3, 4], out
    assert listing[3].startswith("pipe:") and listing[4].startswith("pipe:")


@pytest.mark.parametrize("fd", list(range(3, 16)) + ["leaked0", "leaked1", "leaked2", "leaked3"])
def test_cwd_through_leaked_fd_is_refused(runtime, bundle, host_fds, fd):
    """process.cwd = /proc/self/fd/N, for the leaked fds and the runtime's own (low numbers): the
    process never starts outside the rootfs."""
    if runtime.name == "runc":
        pytest.xfail("runc 1.1.5 predates the CVE-2024-21626 fix (runc 1.1.12)")
    hostdir, fds = host_fds
    if isinstance(fd, str):
        fd = fds[int(fd[-1])]
    b = bundle("sh", "-c", "test -e HOSTMARKER && echo ESCAPED; test -e etc/hostname && test -e root/.. "
                           "&& test -e proc/1 && echo ESCAPED-ROOT; pwd")
    b.config["process"]["cwd"] = f"/proc/self/fd/{fd}"
    rc, out, err = _run_with_fds(runtime, b, fds)
    assert "ESCAPED" not in out
    if rc == 0:
        assert out.strip().startswith("/") and not out.strip().startswith("/proc/self/fd"), out
    else:
        runtime.refused(Result(rc, out, err))
    assert os.listdir(runtime.root) == []


def test_cwd_symlink_to_proc_fd_is_refused(runtime, bundle, host_fds):
    """The image's own symlink to /proc/self/fd/N as the working directory (a WORKDIR that is a
    symlink): refused as well."""
    if runtime.name == "runc":
        pytest.xfail("runc 1.1.5 predates the CVE-2024-21626 fix (runc 1.1.12)")
    _, fds = host_fds
    for fd in fds[:2] + [3, 4, 5]:
        b = bundle("sh", "-c", "test -e HOSTMARKER && echo ESCAPED; pwd")
        b.config["root"]["readonly"] = False
        rootfs = b.copy_rootfs()
        os.symlink(f"/proc/self/fd/{fd}", rootfs / "work")
        b.config["process"]["cwd"] = "/work"
        rc, out, err = _run_with_fds(runtime, b, fds)
        assert "ESCAPED" not in out and rc != 0, (fd, out, err)
        runtime.refused(Result(rc, out, err))
        os.unlink(rootfs / "work")


def test_args0_through_leaked_fd_is_refused(runtime, bundle, host_fds):
    """args[0] = /proc/self/fd/N/hostbin (a leaked fd of a host directory): not executed."""
    if runtime.name == "runc":
        pytest.xfail("runc 1.1.5 predates the CVE-2024-21626 fix (runc 1.1.12)")
    _, fds = host_fds
    for fd in fds[:2]:
        b = bundle(f"/proc/self/fd/{fd}/hostbin")
        rc, out, err = _run_with_fds(runtime, b, fds)
        assert "ESCAPED" not in out and rc != 0, (fd, out, err)
        runtime.refused(Result(rc, out, err))


# ---------------------------------------------------------------------------------------------------
# CVE-2021-30465: mount destinations and device paths through symlinks, and swapped during create

@pytest.fixture
def outside(tmp_path):
    """A host directory the rootfs's symlinks point at; must stay empty and unmounted."""
    d = tmp_path / "outside"
    d.mkdir()
    yield d
    assert os.listdir(d) == [], f"written outside the rootfs: {os.listdir(d)}"
    with open("/proc/self/mountinfo") as f:
        assert str(d) not in f.read()


def test_mount_destination_symlinks_stay_in_rootfs(runtime, bundle, outside):
    b = bundle("sh", "-c", "grep -E ' (/mnt|" + str(outside) + ")' /proc/self/mountinfo | cut -d' ' -f5,9; "
               "ls " + str(outside))
    b.config["root"]["readonly"] = False
    rootfs = b.copy_rootfs()
    (rootfs / "mnt").mkdir(exist_ok=True)
    os.symlink(str(outside), rootfs / "mnt" / "abs")                       # absolute, to the host path
    os.symlink("../../../../../../../../../../" + str(outside), rootfs / "mnt" / "rel")   # ../ escape
    os.symlink("/proc/self/root" + str(outside), rootfs / "mnt" / "magic")  # a magic link
    b.config["mounts"] += [
        {"destination": "/mnt/abs", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/mnt/rel/sub", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/mnt/abs/file", "type": "bind", "source": "/etc/hostname", "options": ["bind"]},
    ]
    b.config["linux"]["devices"] = [{"path": "/mnt/rel/evil0", "type": "c", "major": 1, "minor": 3},
                                    {"path": "/dev/../mnt/abs/evil1", "type": "c", "major": 1, "minor": 3}]
    r = runtime.run_container(b)
    assert r.rc == 0, r.err
    # inside the container the mounts are at the host path's name, i.e. inside the rootfs
    for line in r.out.splitlines():
        if line.startswith("/"):
            mp = line.split()[0]
            assert mp.startswith(str(outside)) or mp.startswith("/mnt"), line
    assert (rootfs / str(outside).lstrip("/")).is_dir()     # what the symlinks point at, made in the rootfs
    assert [x for x in r.out.splitlines() if not x.startswith("/")] == ["evil0", "evil1", "file", "sub"], r.out
    b2 = bundle("true")
    b2.config["mounts"].append({"destination": "/mnt/magic/x", "type": "tmpfs", "source": "tmpfs"})
    b2.config["root"]["readonly"] = False
    r2 = b2.copy_rootfs()
    (r2 / "mnt").mkdir(exist_ok=True)
    os.symlink("/proc/self/root" + str(outside), r2 / "mnt" / "magic")
    res = runtime.run_container(b2)
    if res.rc != 0:
        runtime.refused(res)


def test_mount_destination_swapped_during_create(runtime, bundle, outside):
    """A host process (standing in for a container sharing the rootfs) flips a directory of the
    rootfs to a symlink pointing out of it and back, as fast as it can, while containers with
    mounts and devices below it are created: nothing lands outside."""
    b = bundle("true")
    b.config["root"]["readonly"] = False
    rootfs = b.copy_rootfs()
    base = rootfs / "mnt"
    base.mkdir(exist_ok=True)
    (base / "a").mkdir()
    b.config["mounts"] += [{"destination": f"/mnt/a/m{i}", "type": "tmpfs", "source": "tmpfs"} for i in range(6)]
    b.config["mounts"].append({"destination": "/mnt/a/host", "type": "bind", "source": "/etc",
                               "options": ["rbind", "ro"]})
    b.config["linux"]["devices"] = [{"path": "/mnt/a/dev0", "type": "c", "major": 1, "minor": 3}]
    stop = threading.Event()
    flips = [0]

    def racer():
        d, link, tmp = str(base / "a"), str(base / "a.link"), str(base / "a.dir")
        while not stop.is_set():
            try:
                os.symlink(str(outside), link)
                os.rename(d, tmp)
                os.rename(link, d)          # now a symlink out of the rootfs
                os.unlink(d)
                os.rename(tmp, d)           # and the directory again
                flips[0] += 1
            except OSError:
                pass

    t = threading.Thread(target=racer, daemon=True)
    t.start()
    results = []
    try:
        for _ in range(25):
            r = runtime.run_container(b)
            results.append(r.rc)
            if r.rc != 0:
                runtime.refused(r)
            assert os.listdir(outside) == []
    finally:
        stop.set()
        t.join(5)
    assert flips[0] > 25, "the racer did not run"


# ---------------------------------------------------------------------------------------------------
# CVE-2019-16884: procfs on a real directory only, nothing over or inside it

def test_proc_on_symlink_is_refused(runtime, bundle, tmp_path):
    b = bundle("true")
    b.config["root"]["readonly"] = False
    rootfs = b.copy_rootfs()
    (rootfs / "proc").rmdir()
    (rootfs / "fakeproc" / "self" / "attr").mkdir(parents=True)
    (rootfs / "fakeproc" / "self" / "attr" / "exec").write_text("")
    os.symlink("/fakeproc", rootfs / "proc")
    r = runtime.run_container(b)
    runtime.refused(r, "must be mounted on ordinary directory")
    assert os.listdir(runtime.root) == []


@pytest.mark.parametrize("dest", ["/proc", "/proc/self", "/proc/self/attr", "/proc/sys/kernel"])
def test_mount_over_or_inside_proc_is_refused(runtime, bundle, tmp_path, dest):
    fake = tmp_path / "fakeproc"
    fake.mkdir()
    b = bundle("true")
    b.config["mounts"].append({"destination": dest, "type": "bind", "source": str(fake), "options": ["bind"]})
    r = runtime.run_container(b)
    runtime.refused(r, "cannot be mounted because it is")
    assert os.listdir(runtime.root) == []


def test_lxcfs_style_proc_file_mount_allowed(runtime, bundle, tmp_path):
    fake = tmp_path / "uptime"
    fake.write_text("12345.67 1.00\n")
    b = bundle("cat", "/proc/uptime")
    b.config["mounts"].append({"destination": "/proc/uptime", "type": "bind", "source": str(fake),
                               "options": ["bind", "ro"]})
    assert runtime.output(b) == "12345.67 1.00\n"


# ---------------------------------------------------------------------------------------------------
# masked and read-only paths cannot be undone without CAP_SYS_ADMIN

UNDO_MASKS = r"""
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name=DONE"; else echo "$name=refused"; fi; }
try umount-kcore     umount /proc/kcore
try umount-l-kcore   umount -l /proc/kcore
try umount-acpi      umount /proc/acpi
try umount-sys       umount /proc/sys
try umount-l-sys     umount -l /proc/sys
try remount-rw-sys   mount -o remount,rw /proc/sys
try remount-rw-bind  mount -o remount,bind,rw /proc/sys
try bind-over-kcore  mount --bind /proc/meminfo /proc/kcore
try newproc          mount -t proc proc /tmp
try write-sys        sh -c 'echo "|/bin/evil" > /proc/sys/kernel/core_pattern'
try write-trigger    sh -c 'echo h > /proc/sysrq-trigger'
try acpi-write       touch /proc/acpi/x
echo kcore-bytes=$(cat /proc/kcore | wc -c)
echo acpi=$(ls -A /proc/acpi | wc -l)
grep -E ' /proc/(sys|kcore|acpi) ' /proc/self/mountinfo | cut -d' ' -f5,6
echo done
"""


def _check_masks(out):
    lines = out.splitlines()
    assert lines[-1] == "done", out
    done = [line for line in lines if line.endswith("=DONE")]
    assert not done, f"undone from inside: {done}"
    assert "kcore-bytes=0" in lines and "acpi=0" in lines
    mps = dict(line.split() for line in lines if line.startswith("/proc/"))
    assert mps["/proc/sys"].split(",")[0] == "ro" and mps["/proc/acpi"].split(",")[0] == "ro", mps


def test_masked_and_readonly_paths_cannot_be_undone(runtime, bundle):
    before = Path("/proc/sys/kernel/core_pattern").read_text()
    b = bundle("sh", "-c", UNDO_MASKS)
    b.config["root"]["readonly"] = False
    b.config["process"]["capabilities"] = {k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE",
                                               "CAP_DAC_OVERRIDE", "CAP_SYS_PTRACE"]
                                           for k in ("bounding", "effective", "permitted")}
    _check_masks(runtime.output(b))
    assert Path("/proc/sys/kernel/core_pattern").read_text() == before


def test_masked_paths_in_user_namespace_without_sys_admin(runtime, bundle):
    from test_namespaces import USERNS_MAP
    b = bundle("sh", "-c", UNDO_MASKS, public=True)
    b.config["root"]["readonly"] = False
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = list(USERNS_MAP)
    b.config["linux"]["gidMappings"] = list(USERNS_MAP)
    _check_masks(runtime.output(b))


def test_dev_null_symlink_cannot_redirect_masking(runtime, bundle, tmp_path):
    """With /dev bind-mounted from the bundle (not the runtime's tmpfs), a /dev/null that is a
    symlink to a procfs file must not be what masking binds over /proc/kcore (runc's
    CVE-2025-52565): the container is refused, or /proc/kcore reads as the real null device."""
    before = Path("/proc/sys/kernel/core_pattern").read_text()
    dev = tmp_path / "dev"
    dev.mkdir()
    os.symlink("/proc/sys/kernel/core_pattern", dev / "null")
    b = bundle("sh", "-c", "echo '|/bin/evil' > /proc/kcore; echo w=$?; cat /proc/kcore | wc -c")
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")]
    b.config["mounts"].insert(1, {"destination": "/dev", "type": "bind", "source": str(dev), "options": ["rbind"]})
    r = runtime.run_container(b)
    if r.rc == 0:
        assert r.out.splitlines()[-1] == "0", r.out
    else:
        runtime.refused(r, "null")
    assert Path("/proc/sys/kernel/core_pattern").read_text() == before
    assert os.readlink(dev / "null") == "/proc/sys/kernel/core_pattern"


# ---------------------------------------------------------------------------------------------------
# no Python imported from the container's rootfs

def _runtime_sys_path(runtime):
    """sys.path of the runtime's interpreter, and where the ociruntime package is."""
    interp = _interpreter(runtime.bin)
    if interp == os.path.realpath(runtime.bin):
        # the launcher program (cext/launcher.c) embeds the interpreter it was built with, which
        # is the one running these tests (tests/setup.sh installs the project with it)
        interp = sys.executable
    out = subprocess.run([interp, "-c", "import sys, json, os, importlib.util as u; s = u.find_spec('ociruntime');"
                          "print(json.dumps([sys.path, os.path.dirname(s.origin) if s else '']))"],
                         capture_output=True, check=True, timeout=30).stdout
    return json.loads(out)


def _plant_modules(rootfs, dirs, pkg_dir):
    """Malicious modules at every path the runtime's interpreter searches, named like the stdlib
    and ociruntime modules; each leaves a marker in the container's /tmp when imported."""
    import sys
    names = sorted(sys.stdlib_module_names) + ["sitecustomize", "usercustomize", "os", "sys", "json", "marshal", "signal", "errno", "stat",
             "fcntl", "socket", "select", "struct", "shutil", "subprocess", "traceback", "linecache",
             "encodings", "codecs", "io", "abc", "tty", "termios", "pty", "array", "re", "time", "pwd", "grp",
             "posixpath", "genericpath", "_sitebuiltins", "site", "warnings", "weakref", "copy", "string",
             "datetime", "calendar", "locale", "_strptime", "platform", "tempfile", "random", "hashlib",
             "ctypes", "cffi", "_cffi_backend", "fnmatch", "glob", "typing", "collections", "functools"]
    body = ("import builtins\ntry:\n    open('/tmp/PWNED-%s', 'w').write('imported')\nexcept Exception:\n"
            "    pass\n")
    planted = 0
    for d in dirs:
        if not d or not d.startswith("/"):
            continue
        target = rootfs / d.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        for n in names:
            (target / f"{n}.py").write_text(body % n)
            planted += 1
        (target / "evil.pth").write_text("import sitecustomize\n")
    if pkg_dir:
        target = rootfs / pkg_dir.lstrip("/")
        for sub in ("", "rootfs", "process", "security", "cgroups", "container", "cli"):
            (target / sub).mkdir(parents=True, exist_ok=True)
            (target / sub / "__init__.py").write_text(body % ("ociruntime." + sub))
        for mod in ("tty", "hooks", "netdev", "errors", "_sys", "log", "jsonio", "rootfs/mounts", "rootfs/paths",
                    "process/spec", "security/caps", "security/rlimits", "security/seccomp", "cgroups/mount"):
            (target / f"{mod}.py").write_text(body % ("ociruntime." + mod))
            planted += 1
    return planted


def test_nothing_imported_from_rootfs_after_pivot(runtime, bundle, tmp_path):
    if runtime.name != "ociruntime":
        pytest.skip("a Python runtime's own property (runc and crun are not Python)")
    sys_path, pkg_dir = _runtime_sys_path(runtime)
    b = bundle("true")
    b.config["root"]["readonly"] = False
    rootfs = b.copy_rootfs()
    assert _plant_modules(rootfs, sys_path, pkg_dir) > 50
    tmp = rootfs / "tmp"
    # several paths through the init after pivot_root: a plain run, a failing exec, rlimits, sysctl,
    # a user name to look up, a terminal, hooks run from the container's rootfs, and errors
    b.config["process"]["user"] = {"uid": 65534, "gid": 65534, "umask": 0o027}
    b.config["linux"]["sysctl"] = {"kernel.msgmax": "8192"}
    b.config["process"]["oomScoreAdj"] = 100
    assert runtime.run_container(b).rc == 0
    b.config["process"]["args"] = ["/does/not/exist"]
    runtime.refused(runtime.run_container(b), "/does/not/exist")
    b.config["process"]["args"] = ["true"]
    b.config["process"]["cwd"] = "/no/such/dir"
    runtime.run_container(b)
    b.config["process"]["cwd"] = "/"
    b.config["linux"]["sysctl"] = {"kernel.no_such_key": "1"}
    runtime.refused(runtime.run_container(b), "kernel.no_such_key")
    del b.config["linux"]["sysctl"]
    b.config["hooks"] = {"startContainer": [{"path": "/bin/true"}]}
    assert runtime.run_container(b).rc == 0
    del b.config["hooks"]
    b.config["process"]["terminal"] = True
    sock = ConsoleSocket(tmp_path / "console.sock")
    try:
        cid = runtime.create(b, None, "--console-socket", sock)
        runtime.start(cid)
        sock.output(timeout=10)
    finally:
        sock.close()
    markers = sorted(p.name for p in tmp.iterdir() if p.name.startswith("PWNED"))
    assert markers == [], f"imported from the container's rootfs: {markers}"


# ---------------------------------------------------------------------------------------------------
# The created container's init holds nothing of the host's state directory

def test_created_init_holds_no_state_dir_fd(runtime, bundle):
    """While the container is `created` its init waits on exec.fifo.  It holds that fifo only
    (O_PATH, as runc: reopened for writing through /proc/self/fd), never a directory of the host's
    state dir; a process exec'd into the created container cannot reach the state dir through
    /proc/1/fd either."""
    b = bundle(*LONG_RUNNING)
    cid = runtime.create(b)
    pid = runtime.state(cid)["pid"]
    statedir = os.path.join(runtime.root, cid)
    held = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            held[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            pass
    for fd, target in held.items():
        if fd > 2 and target.startswith("/"):
            assert not os.path.isdir(target), f"the init holds a directory: {fd} -> {target}"
            assert not target.startswith(statedir) or target == os.path.join(statedir, "exec.fifo"), (fd, target)
            assert not target.startswith(os.path.realpath(runtime.root) + "/") or target.endswith("/exec.fifo"), target
    assert os.path.join(statedir, "exec.fifo") in held.values()
    # (root with CAP_DAC_OVERRIDE may list the fd numbers; following one needs ptrace access)
    script = ("for f in /proc/1/fd/*; do readlink $f >/dev/null 2>&1 && echo LINK $f; ls $f/ 2>/dev/null && "
              "echo REACHED $f; ls $f/../ 2>/dev/null && echo REACHED-PARENT $f; done; echo done")
    r = runtime.run("exec", cid, "sh", "-c", script)
    assert r.out.splitlines()[-1:] == ["done"], r
    assert "REACHED" not in r.out, r.out
    if runtime.name == "ociruntime":   # non-dumpable: not even where its fds lead (runc's init shows it)
        assert "LINK" not in r.out, r.out
    assert runtime.status(cid) == "created"
    runtime.start(cid)
    runtime.wait_status(cid, "running")
