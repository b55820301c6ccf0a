"""CVE-2019-5736, attacked as an attacker would: an image holding a script whose interpreter is
`#!/proc/self/exe` makes the kernel run whatever /proc/self/exe is at the moment of the execve.
The runtime's init and exec processes are forks of the runtime, so without a defence that is the
host's runtime program (or its interpreter), started inside the container and dumpable: a
process of the container opens it through /proc/PID/exe and, once it has exited, reopens that
handle for writing through /proc/self/fd/N.

A static attacker (cve_2019_5736.c) opens every /proc/*/exe it can and keeps retrying to reopen
each for writing (it never writes: the test must not damage the host even where the defence is
missing); meanwhile the script runs as the container's process, as a startContainer hook and by
many concurrent `exec`s.  Nothing it got may be writable (a memfd sealed against writes is not),
and the host's runtime program, interpreter and libpython hash the same before and after.
"""

import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers import RUNTIME_TIMEOUT, wait_exit

HERE = Path(__file__).resolve().parent
EVIL = "#!/proc/self/exe\n"


@pytest.fixture(scope="session")
def attacker(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.fail("gcc is needed to build the attacker (tests/setup.sh installs it)")
    out = tmp_path_factory.mktemp("cve") / "cve_2019_5736"
    subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(HERE / "cve_2019_5736.c")], check=True,
                   timeout=120)
    return out


def _host_files(runtime_bin):
    """The runtime's program and what runs it: the script's interpreter (its real file) and the
    interpreter's libpython, or the binary and its libpython."""
    files = {os.path.realpath(runtime_bin)}
    with open(runtime_bin, "rb") as f:
        head = f.read(256)
    if head.startswith(b"#!"):
        files.add(os.path.realpath(head[2:].split(b"\n")[0].split()[0].decode()))
    for exe in list(files):
        r = subprocess.run(["ldd", exe], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            if "libpython" in line and "=>" in line:
                files.add(os.path.realpath(line.split("=>")[1].split("(")[0].strip()))
    return sorted(files)


def _digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    st = os.stat(path)
    return h.hexdigest(), st.st_size, st.st_mtime_ns


@pytest.fixture
def host_files(runtime):
    """The host's runtime files, checked unchanged after the test (the attack's target)."""
    files = _host_files(runtime.bin)
    before = {f: _digest(f) for f in files}
    yield files
    assert {f: _digest(f) for f in files} == before, "a host file of the runtime was modified"


def _libraries(files):
    """The shared libraries and the ELF interpreter the files need (ldd), by path."""
    libs = set()
    for exe in files:
        r = subprocess.run(["ldd", exe], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            parts = line.split()
            path = parts[2] if len(parts) > 2 and parts[1] == "=>" else parts[0] if parts else ""
            if path.startswith("/"):
                libs.add(path)
    return sorted(libs)


def _rootfs_with(b, attacker, host_files):
    """The image: busybox, the attacker, /evil, and the C library (as in any glibc-based image: a
    dynamically linked host program started in the container finds its loader and libraries)."""
    b.config["root"]["readonly"] = False
    rootfs = b.copy_rootfs()
    shutil.copy2(attacker, rootfs / "attack")
    (rootfs / "evil").write_text(EVIL)
    os.chmod(rootfs / "evil", 0o755)
    for lib in _libraries(host_files):
        if lib in host_files:
            continue
        dest = rootfs / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), dest)
    return rootfs


def _handles(report):
    lines = report.splitlines()
    assert lines and lines[-1] == "done", report
    out = []
    for line in lines[:-1]:
        _, pid, target, devino, write = line.split(" ", 4)
        out.append((int(pid), target, devino, write))
    return out


def _assert_nothing_writable(runtime, handles, host_files):
    writable = [h for h in handles if h[3] == "WRITABLE"]
    assert not writable, f"the attacker got a write handle on: {writable}"
    if runtime.name == "ociruntime":
        # and it never even held one of the host's runtime files: the container never ran one
        # (runc 1.1 runs its own binary from a detached read-only bind mount: the same inode,
        # which the attacker may hold but not open for writing)
        ids = set()
        for f in host_files:
            st = os.stat(f)
            ids.add("%d:%d" % (st.st_dev, st.st_ino))
        reached = [h for h in handles if h[2] in ids]
        assert not reached, f"the container ran the host's runtime: {reached}"


@pytest.mark.parametrize("how", ["process", "startContainer hook"])
def test_script_run_as_the_container_process(runtime, bundle, attacker, host_files, how):
    """The victim's process (or its startContainer hook, which runs in the container) is the
    script.  The victim is created in the attacker's pid namespace (whose PID 1 outlives it), so
    the attacker watches its init while it is `created` (the runtime's code: a target too) and
    through the start."""
    # (a sleep for the attacker to show it does open what it may: the busybox of the image)
    ab = bundle("sh", "-c", "sleep 30 & /attack 5 > /tmp/report; kill $!")
    arootfs = _rootfs_with(ab, attacker, host_files)
    acid = runtime.create(ab)
    runtime.start(acid)
    apid = runtime.state(acid)["pid"]

    vb = bundle("/evil")
    _rootfs_with(vb, attacker, host_files)
    if how != "process":
        vb.config["process"]["args"] = ["true"]
        vb.config["hooks"] = {"startContainer": [{"path": "/evil"}]}
    for ns in vb.config["linux"]["namespaces"]:
        if ns["type"] == "pid":
            ns["path"] = f"/proc/{apid}/ns/pid"
    victim = runtime.create(vb)
    vpid = runtime.state(victim)["pid"]
    time.sleep(1.5)        # the attacker works on the created init first
    runtime.run("start", victim)
    wait_exit(vpid, 10)    # reaped (we are its subreaper): the attacker's namespace can then end
    deadline = time.monotonic() + 15
    while runtime.status(acid) != "stopped" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runtime.status(acid) == "stopped"
    handles = _handles((arootfs / "tmp" / "report").read_text())
    assert handles, "the attacker opened no /proc/PID/exe at all (not even its own shell's)"
    _assert_nothing_writable(runtime, handles, host_files)


def test_concurrent_execs_of_the_script(runtime, bundle, attacker, host_files):
    """The container's PID 1 attacks while `exec /evil` runs 24 times, 6 at a time."""
    b = bundle("sh", "-c", "sleep 30 & /attack 7 > /tmp/report; kill $!")
    rootfs = _rootfs_with(b, attacker, host_files)
    cid = runtime.create(b)
    runtime.start(cid)
    errors = []

    def execs():
        for _ in range(4):
            r = runtime.run("exec", cid, "/evil", timeout=RUNTIME_TIMEOUT)
            errors.append(r.rc)
    threads = [threading.Thread(target=execs) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(errors) == 24      # each ran (and failed: the script's interpreter is no program)
    deadline = time.monotonic() + 15
    while runtime.status(cid) != "stopped" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runtime.status(cid) == "stopped"
    handles = _handles((rootfs / "tmp" / "report").read_text())
    assert handles
    _assert_nothing_writable(runtime, handles, host_files)
