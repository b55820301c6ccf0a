"""Helpers for the integration tests: drive a runtime binary, build bundles, receive a console, find leaks.

Everything here works the same for runc and for ociruntime: the tests select the binary, this module
only knows the runc command line.  Run as a script it prints the bundle config the tests start from:

    python3 tests/helpers.py spec [ARG...]      # `runc spec` with terminal false, args overridable
"""

import copy
import ctypes
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
# seconds for one runtime invocation; a hang fails the test instead of blocking (the test VM, where
# processes run ~30x slower, sets a longer one: tests/vm/inside.sh)
RUNTIME_TIMEOUT = float(os.environ.get("OCI_TEST_RUNTIME_TIMEOUT") or 20)
ID_PREFIX = "oci-test-"       # the machine's leak checker looks for this prefix
LONG_RUNNING = ["sh", "-c", "trap 'exit 42' TERM; sleep 1000 & wait"]
"""Args of a container that runs until signalled: TERM makes it exit 42.  PID 1 of a pid namespace
ignores signals it has no handler for (even TERM from the host), hence the trap."""
TERM_REPORTER = ["sh", "-c", "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done"]
"""Args of a process that says "ready", then "got-term" and exits 42 on TERM (assert_forwards_term)."""


def default_spec(args=("sh",)):
    """The config `runc spec` prints (runc 1.1), except terminal false; a fresh dict each call.
    It is `ociruntime spec`'s with runc's spec version and hostname (test_harness checks it against
    runc's own output when runc is here)."""
    from ociruntime.specgen import default_spec as ociruntime_spec
    spec = ociruntime_spec()
    spec["ociVersion"] = "1.0.2-dev"
    spec["hostname"] = "runc"
    spec["process"]["terminal"] = False
    spec["process"]["args"] = list(args)
    return spec


# ---------------------------------------------------------------------------------------------------
# The runtime under test


class Result(NamedTuple):
    rc: int
    out: str
    err: str


class RuntimeFailed(AssertionError):
    pass


def runtime_name(binary):
    base = os.path.basename(binary)
    for known in ("runc", "crun"):
        if base.startswith(known):
            return known
    return "ociruntime"


class Runtime:
    """One test's view of the runtime binary: `<bin> --root <session root> ARGV...`.

    Remembers every container id the test used (those from `new_id()` and the last argument of
    create/run) so the fixture can `delete --force` them and check what is left.
    """

    def __init__(self, binary, root, token, test_name="", label=""):
        self.bin, self.root, self.token, self.label = str(binary), str(root), token, label
        self.name = runtime_name(self.bin)
        self.ids = []
        self.dirs = []            # directories the test's bundles live in (checked for mounts)
        self.public_dirs = []     # of those, the ones outside pytest's tmp_path (removed at teardown)
        self.peers = []           # other runtimes the same test used (the `runc` fixture), cleaned up together
        self.global_args = []     # options before the command, on every call (--systemd-cgroup)
        self._tag = re.sub(r"[^A-Za-z0-9]+", "-", test_name.replace("test_", "", 1)).strip("-")[:24].strip("-")
        self._n = 0

    # -- raw invocation
    def run(self, *argv, input=None, check=False, timeout=RUNTIME_TIMEOUT, stdout=None, stderr=None,
            env=None):
        """Run the binary; returns Result(rc, out, err).  stdout/stderr go to files, not pipes: a
        detached container inherits them and would otherwise keep a pipe open forever."""
        args = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in argv]
        self._track(args)
        cmd = [self.bin, "--root", self.root, *self.global_args, *args]
        with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
            try:
                p = subprocess.run(cmd, input=input.encode() if isinstance(input, str) else input,
                                   stdin=None if input is not None else subprocess.DEVNULL,
                                   stdout=stdout or fo, stderr=stderr or fe, timeout=timeout, env=env)
            except subprocess.TimeoutExpired:
                raise RuntimeFailed(f"timed out after {timeout}s: {' '.join(cmd)}") from None
            fo.seek(0)
            fe.seek(0)
            res = Result(p.returncode, fo.read().decode(errors="replace"), fe.read().decode(errors="replace"))
        if check and res.rc != 0:
            raise RuntimeFailed(f"{' '.join(cmd)}\n exit {res.rc}\n stdout: {res.out!r}\n stderr: {res.err!r}")
        return res

    def _track(self, args):
        for cmd in ("create", "run"):
            if (cmd in args and args[-1].startswith(ID_PREFIX) and re.fullmatch(r"[\w+.-]+", args[-1])
                    and args[-1] not in self.ids):
                self.ids.append(args[-1])

    def new_id(self, tag=""):
        """A fresh container id: oci-test-<session token>[-label]-<test>[-tag]-<n>, remembered for cleanup
        (the label keeps two runtimes used by one test from naming the same cgroup)."""
        self._n += 1
        cid = "-".join(x for x in (ID_PREFIX + self.token, self.label, self._tag, tag, str(self._n)) if x)
        self.ids.append(cid)
        return cid

    # -- conveniences (all check the exit status)
    def create(self, bundle, cid=None, *extra, **kw):
        cid = cid or self.new_id()
        self.run("create", "--bundle", bundle, *extra, cid, check=True, **kw)
        return cid

    def start(self, cid):
        return self.run("start", cid, check=True)

    def state(self, cid):
        return json.loads(self.run("state", cid, check=True).out)

    def status(self, cid):
        """The container's status, or None when the runtime says it does not exist."""
        r = self.run("state", cid)
        return json.loads(r.out)["status"] if r.rc == 0 else None

    def wait_status(self, cid, want, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            got = self.status(cid)
            if got == want or time.monotonic() > deadline:
                assert got == want, f"{cid}: status {got!r} after {timeout}s, expected {want!r}"
                return
            time.sleep(0.02)

    def kill(self, cid, *sig, **kw):
        return self.run("kill", cid, *sig, **kw)

    def delete(self, cid, force=False, **kw):
        return self.run("delete", *(["--force"] if force else []), cid, **kw)

    def refused(self, res, *words, ours=()):
        """Assert that ``res`` (a Result) is a refusal: a non-zero exit, no Python traceback
        anywhere, and the runtime's error on one line holding each of ``words`` (and, for
        ociruntime, of ``ours``: its own wording).  ociruntime prints that line alone, starting
        "ociruntime: "; runc prints it as `level=error msg=...` (warnings may come before it), its
        quotes escaped (`\\"`): ``words`` are looked for with that escaping undone.
        Returns the line (as printed)."""
        assert res.rc != 0, f"not refused: exit 0\n stdout: {res.out!r}\n stderr: {res.err!r}"
        assert_no_traceback(res.err)
        lines = res.err.splitlines()
        if self.name == "ociruntime":
            assert len(lines) == 1 and lines[0].startswith("ociruntime: "), f"not one line: {res.err!r}"
            line = lines[0]
            words = words + tuple(ours)
        else:
            errors = [ln for ln in lines
                      if "level=error" in ln or '"level":"error"' in ln or ln.startswith("ERRO")]
            if not errors:  # (with --log, runc prints the bare message)
                errors = [ln for ln in lines if "level=warning" not in ln and not ln.startswith("WARN")]
            assert len(errors) == 1, f"not one error line: {res.err!r}"
            line = errors[0]
        text = line if self.name == "ociruntime" else line.replace('\\"', '"')
        for w in words:
            assert w in text, f"{w!r} not in {line!r}"
        return line

    def run_container(self, bundle, *extra, **kw):
        """`run` in the foreground: returns the container's exit status and output."""
        return self.run("run", "--bundle", bundle, *extra, self.new_id(), **kw)

    def output(self, bundle, script=None):
        """Run the bundle (or `sh -c SCRIPT` in it) and return its stdout; the container must exit 0."""
        if script is not None:
            bundle.config["process"]["args"] = ["sh", "-c", script]
        r = self.run_container(bundle)
        assert r.rc == 0, f"container exited {r.rc}\n stdout: {r.out!r}\n stderr: {r.err!r}"
        return r.out


TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+File \"[^\"]+\", line \d+", re.M)


def assert_no_traceback(text):
    """No Python traceback in the runtime's output (a crash is never a refusal)."""
    m = TRACEBACK.search(text)
    assert m is None, f"a Python traceback, not a refusal:\n{text}"


def assert_forwards_term(runtime, *argv):
    """`<runtime> ARGV` runs TERM_REPORTER in the foreground: once it is ready, TERM sent to the
    runtime reaches the process (which reports it and exits 42, the runtime's status)."""
    p = subprocess.Popen([runtime.bin, "--root", runtime.root, *map(os.fspath, argv)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(signal.SIGTERM)
        assert p.wait(RUNTIME_TIMEOUT) == 42
        assert p.stdout.read() == b"got-term\n"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()


def runtime_without_syscalls(runtime, workdir, syscalls):
    """A Runtime (a peer of ``runtime``, cleaned up with it) running the same binary with the
    x86_64 ``syscalls`` (numbers) failing with ENOSYS, as on a kernel without them, or with the
    errno given as "NR=ERRNO" (a profile that forbids one): the program
    tests/integration/without_syscalls.c, built here with gcc, loads that seccomp filter first."""
    workdir = Path(workdir)
    prog = workdir / "without_syscalls"
    if not prog.exists():
        subprocess.run(["gcc", "-O1", "-o", str(prog), str(HERE / "integration" / "without_syscalls.c")],
                       check=True, timeout=120)
    nrs = ",".join(str(n) for n in syscalls)
    tag = re.sub(r"\W", "-", nrs)
    script = workdir / f"{runtime.name}-without-{tag}"
    script.write_text(f"#!/bin/sh\nexec {prog} {nrs} {runtime.bin} \"$@\"\n")
    script.chmod(0o755)
    rt = Runtime(script, runtime.root, runtime.token, "without", label="no" + tag.replace("-", ""))
    runtime.peers.append(rt)
    return rt


# ---------------------------------------------------------------------------------------------------
# Bundles


def _link_busybox(src, dst):
    """copytree's copy function: the applets are hard links of busybox; keep them so (cheap)."""
    if os.stat(src).st_nlink > 1:
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


class Bundle:
    """A bundle directory whose config.json is written each time the bundle is passed to the
    runtime (`os.fspath(bundle)`), so a test edits `bundle.config` freely before that.

    While `root.path` is left at "rootfs" the bundle uses the session's shared busybox rootfs by
    absolute path when nothing can write to it (readonly root, cwd and every mount destination
    already there or under an earlier mount); otherwise it gets its own copy at `<bundle>/rootfs`.
    """

    def __init__(self, path, shared_rootfs, args=("sh",)):
        self.path = Path(path)
        self.path.mkdir(parents=True)
        self.shared_rootfs = Path(shared_rootfs)
        self.config = default_spec(args)
        self.force_copy = False

    def __fspath__(self):
        return str(self.write())

    def __str__(self):
        return str(self.path)

    @property
    def args(self):
        return self.config["process"]["args"]

    @args.setter
    def args(self, value):
        self.config["process"]["args"] = list(value)

    @property
    def own_rootfs(self):
        return self.path / "rootfs"

    @property
    def rootfs(self):
        """The rootfs directory the written config points at."""
        root = self.config.get("root", {}).get("path", "rootfs")
        if root == "rootfs" and not self._needs_copy():
            return self.shared_rootfs
        return self.path / root if not os.path.isabs(root) else Path(root)

    def _needs_copy(self):
        c = self.config
        if self.force_copy or self.own_rootfs.exists():
            return True
        if not c.get("root", {}).get("readonly"):
            return True
        covered = []

        def untouched(dest):
            dest = os.path.normpath("/" + dest)
            return (any(dest == m or dest.startswith(m.rstrip("/") + "/") for m in covered)
                    or os.path.lexists(str(self.shared_rootfs) + dest))
        for m in c.get("mounts", []):
            if not untouched(m["destination"]):
                return True
            covered.append(os.path.normpath("/" + m["destination"]))
        proc = c.get("process") or {}
        if not untouched(proc.get("cwd", "/")):
            return True
        return not all(untouched(d["path"]) for d in c.get("linux", {}).get("devices", []))

    def copy_rootfs(self):
        """Give the bundle its own rootfs (a copy; busybox and its applets are hard-linked)."""
        if not self.own_rootfs.exists():
            shutil.copytree(self.shared_rootfs, self.own_rootfs, symlinks=True, copy_function=_link_busybox)
        self.force_copy = True
        return self.own_rootfs

    def write(self):
        conf = self.config
        if conf.get("root", {}).get("path") == "rootfs":
            if self._needs_copy():
                self.copy_rootfs()
            else:
                conf = copy.deepcopy(conf)
                conf["root"]["path"] = str(self.shared_rootfs)
        (self.path / "config.json").write_text(json.dumps(conf, indent=1))
        return self.path


# ---------------------------------------------------------------------------------------------------
# Console socket receiver (what conmon / the containerd shim do with --console-socket)


class ConsoleSocket:
    """Listens on a unix socket, accepts one connection, takes the pty master sent with SCM_RIGHTS and
    keeps reading it in a thread.  `output(...)` waits for text; `close()` releases everything."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.sock.settimeout(RUNTIME_TIMEOUT)
        self.master = None
        self.name = None          # what the runtime sent along with the fd
        self.error = None
        self.data = b""
        self.eof = threading.Event()
        self._got_master = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def __fspath__(self):
        return self.path

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
                self.name = msg.decode(errors="replace")
                if not fds:
                    raise RuntimeError(f"console socket: no fd received (message {msg!r})")
                for extra in fds[1:]:
                    os.close(extra)
                self.master = fds[0]
            self._got_master.set()
            while True:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:           # EIO: every slave fd closed
                    break
                if not chunk:
                    break
                with self._lock:
                    self.data += chunk
        except Exception as e:  # noqa: BLE001 - reported to the test by wait_master/output
            self.error = e
        finally:
            self._got_master.set()
            self.eof.set()

    def wait_master(self, timeout=RUNTIME_TIMEOUT):
        self._got_master.wait(timeout)
        if self.master is None:
            raise AssertionError(f"no pty master received on {self.path}: {self.error!r}")
        return self.master

    def write(self, data):
        os.write(self.wait_master(), data.encode() if isinstance(data, str) else data)

    def output(self, until=None, timeout=RUNTIME_TIMEOUT):
        """Text read so far: wait for EOF, or only until `until` appears."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                text = self.data.decode(errors="replace")
            if (until is not None and until in text) or self.eof.is_set():
                break
            time.sleep(0.01)
        with self._lock:
            return self.data.decode(errors="replace")

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)     # wakes an accept() still waiting
        except OSError:
            pass
        self.sock.close()
        if self.master is not None:
            try:
                os.close(self.master)
            except OSError:
                pass
            self.master = None
        self._thread.join(2)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


# ---------------------------------------------------------------------------------------------------
# Processes


PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def make_subreaper():
    """Orphaned descendants (container inits that outlive `create`) get reparented to us."""
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "prctl(PR_SET_CHILD_SUBREAPER): " + os.strerror(e))


def proc_status(pid):
    """{'State': 'S', 'PPid': '1', ...} of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except (FileNotFoundError, ProcessLookupError):
        return None


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children(ppid=None):
    """[(pid, state letter)] of the live and zombie children of ppid (default: this process)."""
    ppid = str(ppid or os.getpid())
    out = []
    for pid in all_pids():
        st = proc_status(pid)
        if st and st.get("PPid") == ppid:
            out.append((pid, st.get("State", "?")[:1]))
    return out


def wait_exit(pid, timeout=5.0):
    """Reap a child (the test process is a subreaper) and return its wait status, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"pid {pid} did not exit within {timeout}s")
        time.sleep(0.01)


def reap_zombies():
    """Reap the test's exited children (container processes reparented to it, the subreaper)."""
    for pid, state in children():
        if state in "ZX":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def pid_alive(pid):
    st = proc_status(pid)
    return st is not None and not st.get("State", "").startswith(("Z", "X"))


def processes_rooted_under(prefixes):
    """Pids whose root directory (a container's rootfs) lies under one of the prefixes."""
    found = []
    for pid in all_pids():
        try:
            root = os.readlink(f"/proc/{pid}/root")
        except OSError:
            continue
        if any(root == p or root.startswith(p.rstrip("/") + "/") for p in prefixes):
            found.append(pid)
    return found


def kill_pid(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------------------------------------
# Mounts, cgroups, network namespaces


def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text):
    """[{'id','parent','root','mountpoint','options':set,'optional':[...],'fstype','source','super':set}]"""
    mounts = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        fstype, source, sup = (right.split(" ") + ["", "", ""])[:3]
        mounts.append({
            "id": f[0], "parent": f[1], "root": _unescape(f[3]), "mountpoint": _unescape(f[4]),
            "options": set(f[5].split(",")), "optional": f[6:], "fstype": fstype,
            "source": _unescape(source), "super": set(sup.split(",")),
        })
    return mounts


def mounts_under(prefixes):
    with open("/proc/self/mountinfo") as f:
        mps = [m["mountpoint"] for m in parse_mountinfo(f.read())]
    return [mp for mp in mps if any(mp == p or mp.startswith(p.rstrip("/") + "/") for p in prefixes)]


MNT_DETACH = 2


def umount(path, flags=MNT_DETACH):
    if _libc.umount2(os.fsencode(path), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def mount(source, target, fstype=None, flags=0, data=None):
    if _libc.mount(os.fsencode(source), os.fsencode(target), fstype and fstype.encode(),
                   ctypes.c_ulong(flags), data and data.encode()) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), target)


MS_BIND, MS_SHARED = 0x1000, 1 << 20
CGROUP_ROOT = "/sys/fs/cgroup"


def cgroups_named(prefix):
    """Cgroup directories (any hierarchy, any depth) whose name starts with prefix, deepest first."""
    found = []
    for top, dirs, _files in os.walk(CGROUP_ROOT):
        for d in dirs:
            if d.startswith(prefix):
                found.append(os.path.join(top, d))
    # include everything below a match, deepest first, so rmdir can proceed
    allpaths = set()
    for p in found:
        for top, dirs, _ in os.walk(p):
            allpaths.add(top)
    return sorted(allpaths, key=lambda p: p.count("/"), reverse=True)


def remove_cgroup(path):
    """Kill (by pid) whatever is in a leaked cgroup and rmdir it; returns an error text or ''."""
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            for pid in f.read().split():
                kill_pid(int(pid))
    except OSError:
        pass
    for _ in range(100):
        try:
            os.rmdir(path)
            return ""
        except FileNotFoundError:
            return ""
        except OSError as e:
            err = e
            time.sleep(0.02)
    return f"rmdir {path}: {err}"


class HostCgroups:
    """Cgroups a test makes itself, as another tool would (plain mkdir): ``make(hierarchy, rel)``
    makes /sys/fs/cgroup/<hierarchy>/<rel> and its missing parents (rel must start with the test's
    ID_PREFIX + token name); ``remove()`` takes back exactly what it made: thawed, emptied (by
    pid) and removed deepest first; returns the errors."""

    def __init__(self):
        self.made = []

    def make(self, hierarchy, rel, **files):
        assert rel.lstrip("/").startswith(ID_PREFIX), rel
        cur = os.path.join(CGROUP_ROOT, hierarchy)
        for part in rel.strip("/").split("/"):
            cur = os.path.join(cur, part)
            if not os.path.isdir(cur):
                os.mkdir(cur)
                self.made.append(cur)
        for name, value in files.items():
            write_file(os.path.join(cur, name.replace("_", ".", 1)), value)
        return cur

    def remove(self):
        errors = []
        for path in reversed(self.made):
            for name, thawed in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
                if os.path.exists(os.path.join(path, name)):
                    try:
                        write_file(os.path.join(path, name), thawed)
                    except OSError:
                        pass
        for path in sorted(self.made, key=lambda p: p.count("/"), reverse=True):
            err = remove_cgroup(path)
            if err:
                errors.append(err)
        self.made = []
        return errors


def write_file(path, value):
    with open(path, "w") as f:
        f.write(value)


def assert_cgroups_gone(runtime, cid):
    """After delete --force of a container without a pid namespace (its processes outlive the
    init): none of its cgroups is left."""
    left = cgroups_named(cid)
    if left and runtime.name == "runc":  # (its rmdir comes before the killed tasks have left)
        import pytest
        assert all(remove_cgroup(d) == "" for d in left)
        pytest.xfail("runc 1.1.5 removes a killed container's cgroup once, without waiting for its "
                     "tasks to leave it (docs/NOTES.md)")
    assert left == []


def cgroup_procs(path):
    """Pids in a cgroup directory and the ones below it."""
    pids = []
    for top, _dirs, _files in os.walk(path):
        try:
            with open(os.path.join(top, "cgroup.procs")) as f:
                pids += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            pass
    return pids


def assert_one_line_error(r, *words):
    """A refusal: non-zero exit, one line on stderr (runc's logrus line or ociruntime's), no
    traceback, and each of ``words`` in it."""
    assert r.rc != 0, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.err, r.err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


NETNS_DIR = "/run/netns"


def netns_named(prefix):
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def runtime_link_name(root, cid):
    """The host end of the veth ociruntime makes for container ``cid`` of the state root ``root``
    (ociruntime/network/__init__.py, tag_of and record_for): no other work names a link so."""
    return "oci" + hashlib.blake2s(("%s\0%s" % (root, cid)).encode(), digest_size=6).hexdigest()


def runtime_links_on_host(root, ids, names=()):
    """Links in this process's network namespace (the host's) that ociruntime would have made for
    the containers ``ids`` of ``root``, or named ``names`` (bridges a test asked for)."""
    wanted = {runtime_link_name(root, cid) for cid in ids} | set(names)
    return sorted(n for _, n in socket.if_nameindex() if n in wanted)


def run_cmd(*argv, check=True, timeout=20, **kw):
    return subprocess.run(argv, check=check, timeout=timeout, capture_output=True, text=True, **kw)


NET = "org.ociruntime.net."  # ociruntime's networking annotations (README, Networking)


class Net:
    """The test's network namespace (the fixture `net`, tests/conftest.py), the runtime run inside
    it (``rt``) and what to look at there and on the host."""

    def __init__(self, name, rt, root):
        self.name, self.rt, self.root = name, rt, root
        a, b = random.randrange(200, 255), random.randrange(0, 254, 2)
        self.prefix = "10.%d.%d" % (a, b)            # the containers' subnet: PREFIX.0/24
        self.subnet = self.prefix + ".0/24"
        self.other = "10.%d.%d" % (a, b + 1)         # a second test subnet ("outside")
        self.own_links = {"lo"}                      # links the test made itself
        self.extra_ns = []
        self.bridges = set()                         # bridge names the test's bundles gave

    def in_ns(self, *argv, ns=None, **kw):
        return run_cmd("nsenter", "--net=/run/netns/" + (ns or self.name), "--", *argv, **kw)

    def links(self):
        """{name: (kind, master name)} of the links in the namespace."""
        from pyroute2 import NetNS
        with NetNS(self.name) as ns:
            raw = [(m["index"], m.get_attr("IFLA_IFNAME"), m.get_attr("IFLA_LINKINFO"), m.get_attr("IFLA_MASTER"))
                   for m in ns.get_links()]
        names = {i: n for i, n, _, _ in raw}
        return {n: (info.get_attr("IFLA_INFO_KIND") if info else None, names.get(master))
                for _, n, info, master in raw}

    def addresses(self, ifname):
        out = self.in_ns("ip", "-j", "-4", "addr", "show", "dev", ifname).stdout
        return sorted("%s/%d" % (a["local"], a["prefixlen"]) for i in json.loads(out) for a in i["addr_info"])

    def nft_tables(self):
        return [ln for ln in self.in_ns("nft", "list", "tables").stdout.splitlines() if "ociruntime-" in ln]

    def nft_rules(self):
        """Lines of the ruleset about the containers' subnet (iptables-nft's rules are there too)."""
        return [ln.strip() for ln in self.in_ns("nft", "list", "ruleset").stdout.splitlines()
                if self.prefix + "." in ln or "OCI-" in ln]

    def ipt_nat(self):
        return [ln for ln in self.in_ns("iptables-save", "-t", "nat").stdout.splitlines() if "OCI-" in ln]

    @property
    def bridge(self):
        """The bridge the test's bundles use unless they name another."""
        return "br" + self.name[-6:]

    def bundle(self, make, *args, **annotations):
        b = make(*args)
        b.config["annotations"] = {NET + k: v for k, v in dict({"bridge": self.bridge, "subnet": self.subnet},
                                                               **annotations).items()}
        self.bridges.add(b.config["annotations"][NET + "bridge"])
        return b

    def address(self, cid):
        return self.rt.state(cid)["annotations"][NET + "address"]

    def registry(self):
        """The state root's network registry (leases, bridges), {} when there is none."""
        try:
            with open(os.path.join(self.root, "@network.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def leftovers(self):
        """What the runtime left in the namespace and the state root, and links of the names it
        gives (or the test's bridges) in the host's namespace (where it must never make any)."""
        problems = ["link %s (%s)" % (n, k) for n, (k, _) in self.links().items() if n not in self.own_links]
        problems += ["nft " + t for t in self.nft_tables() + self.nft_rules()]
        problems += ["iptables " + r for r in self.ipt_nat()]
        if os.path.exists(os.path.join(self.root, "@network.json")):
            with open(os.path.join(self.root, "@network.json")) as f:
                problems.append("registry " + f.read())
        problems += ["state dir " + c for c in self.rt.ids if os.path.exists(os.path.join(self.root, c))]
        problems += ["host link " + n for n in runtime_links_on_host(self.root, self.rt.ids, self.bridges)]
        return problems

    def add_ns(self, tag):
        name = self.name + tag
        run_cmd("ip", "netns", "add", name)
        self.extra_ns.append(name)
        self.in_ns("ip", "link", "set", "lo", "up", ns=name)
        return name


# ---------------------------------------------------------------------------------------------------
# kill -9 of the runtime at a step (OCIRUNTIME_TEST_KILL_AT: ociruntime/__init__.py, kill_point)


def killed_at(runtime, step, *argv):
    """Run ``argv`` with the runtime killing itself (SIGKILL) at ``step``; fails unless it died there."""
    env = dict(os.environ, OCIRUNTIME_TEST_KILL_AT=step)
    r = runtime.run(*argv, env=env, timeout=30)
    assert r.rc == -signal.SIGKILL, f"{' '.join(map(str, argv))} was not killed at {step}: exit {r.rc}: {r.err}"
    return r


def assert_state_and_list_survive(runtime, cid):
    r = runtime.run("list")
    assert r.rc == 0 and "Traceback" not in r.err, r.err
    r = runtime.run("state", cid)
    assert "Traceback" not in r.err and (r.rc == 0 or len(r.err.strip().splitlines()) == 1), r.err
    return r


def assert_nothing_left(runtime, cid, before_mounts=()):
    """No state dir, no cgroup of the container, no mount on the host side under the test's
    directories or the state root, no process of the container (the test's children, those
    rooted in its rootfs, those in its cgroups)."""
    assert not os.path.lexists(os.path.join(runtime.root, cid)), os.listdir(os.path.join(runtime.root, cid))
    assert cgroups_named(cid) == []
    assert sorted(set(mounts_under(runtime.dirs + [runtime.root])) - set(before_mounts)) == []
    deadline = time.monotonic() + 5
    while True:
        reap_zombies()  # (a pid namespace's init waits until the zombies of its tasks are reaped)
        live = [p for p, st in children() if st not in "ZX"] + \
            [p for p in processes_rooted_under(runtime.dirs) if pid_alive(p)]
        if not live or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert live == [], [(p, (proc_status(p) or {}).get("Name")) for p in live]


# ---------------------------------------------------------------------------------------------------
# Small parsers


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_rfc3339(text):
    """A datetime from an RFC3339 timestamp (nanosecond fractions allowed), or AssertionError."""
    m = _RFC3339.match(text)
    assert m, f"not RFC3339: {text!r}"
    frac, zone = (m.group(1) or ".0")[:7], m.group(2)
    return datetime.fromisoformat(text[:19] + frac + ("+00:00" if zone == "Z" else zone))


def snapshot_tree(root):
    """{relative path: (mode, size or link target)} of a directory tree, to detect writes."""
    snap = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(top, name)
            st = os.lstat(p)
            extra = os.readlink(p) if os.path.islink(p) else (st.st_size if not os.path.isdir(p) else 0)
            snap[os.path.relpath(p, root)] = (st.st_mode, extra)
    return snap


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "spec":
        sys.exit("usage: helpers.py spec [ARG...]")
    print(json.dumps(default_spec(sys.argv[2:] or ("sh",)), indent="\t"))


# ---------------------------------------------------------------------------------------------------
# cgroup files as the tests read them


def read_value(path):
    """A control file's content, stripped."""
    with open(path) as f:
        return f.read().strip()


def read_kv(path):
    """A flat keyed file (memory.events, cpu.stat, ...) as {key: int}."""
    return {k: int(v) for k, v in (line.split() for line in read_value(path).splitlines())}


def cgroup2_of(pid):
    """The cgroup2 path of ``pid`` (its /proc/PID/cgroup "0::" line)."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].rstrip("\n")
    raise AssertionError(f"process {pid} has no cgroup v2 entry")


def disk_of(path):
    """(major, minor) of the whole block disk the filesystem of ``path`` is on (io.max and
    blkio.throttle.* take disks, not partitions), or None for a filesystem on no block device
    (tmpfs, 9p, overlay)."""
    st = os.stat(path)
    entry = f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    if not os.path.exists(entry):
        return None
    real = os.path.realpath(entry)
    if os.path.exists(os.path.join(real, "partition")):
        real = os.path.dirname(real)
    major, minor = read_value(os.path.join(real, "dev")).split(":")
    return int(major), int(minor)


def resources(b):
    """The bundle's linux.resources, made if absent."""
    return b.config["linux"].setdefault("resources", {})


# a container process that counts in /tmp/count (a writable rootfs: counter_bundle) while it runs
COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/count; sleep 0.01; done"


def counter_bundle(bundle, script=COUNTER):
    b = bundle("sh", "-c", script)
    b.config["root"]["readonly"] = False
    b.copy_rootfs()
    return b


def read_count(b, timeout=5.0):
    """The counter's last value, once it has one."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = (b.own_rootfs / "tmp" / "count").read_text().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the container's counter never appeared")
        time.sleep(0.02)
