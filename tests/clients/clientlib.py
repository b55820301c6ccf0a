"""Helpers for the client tests (podman, containerd): run a client, on a pty when asked, log the runtime's
argv, build the busybox image both clients import, find what a test left (hoststate.py guards the host).

Nothing here knows which runtime is under test: the wrapper keeps the runtime's base name (podman keys
behaviour on it) and execs it with the argv the client passed.
"""

import hashlib
import io
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import tarfile
import time
from typing import NamedTuple

import helpers

CLIENT_TIMEOUT = 90       # seconds for one client command (pulls nothing; a hang fails the test)


class Out(NamedTuple):
    rc: int
    out: str
    err: str

    def __str__(self):
        return f"exit {self.rc}\n stdout: {self.out!r}\n stderr: {self.err!r}"


def run(argv, input=None, env=None, timeout=CLIENT_TIMEOUT, check=False):
    """Run a client command with files (not pipes) for stdout/stderr: a detached container or a
    daemonized monitor inherits them and would keep a pipe open.  stdin is /dev/null unless input."""
    import tempfile
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                             stdout=fo, stderr=fe, env=env, start_new_session=True)
        try:
            p.communicate(input.encode() if isinstance(input, str) else input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(p)
            raise AssertionError(f"timed out after {timeout}s: {' '.join(argv)}") from None
        fo.seek(0)
        fe.seek(0)
        res = Out(p.returncode, fo.read().decode(errors="replace"), fe.read().decode(errors="replace"))
    if check and res.rc != 0:
        raise AssertionError(f"{' '.join(argv)}\n{res}")
    return res


def _kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def run_tty(argv, input=None, env=None, timeout=CLIENT_TIMEOUT, until=None):
    """Run a client with a new pty as its controlling terminal and stdin/stdout/stderr (what `script`
    does; `podman run -it`, `ctr run -t` need a terminal).  Returns Out(rc, output without CRs, '').
    `input` is written once `until` (if given) has appeared in the output."""
    master, slave = pty.openpty()
    # setsid -c: new session, stdin becomes the controlling terminal
    p = subprocess.Popen(["setsid", "-c", *argv], stdin=slave, stdout=slave, stderr=slave, env=env,
                         close_fds=True)
    os.close(slave)
    data = bytearray()
    deadline = time.monotonic() + timeout
    sent = input is None
    try:
        while True:
            if not sent and (until is None or until.encode() in data):
                os.write(master, input.encode() if isinstance(input, str) else input)
                sent = True
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s: {' '.join(argv)}; output {bytes(data)!r}")
            r, _, _ = select.select([master], [], [], min(left, 0.2))
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:          # EIO: the last slave fd is closed
                    chunk = b""
                if not chunk:
                    break
                data += chunk
            elif p.poll() is not None and not _readable(master):
                break
        rc = p.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return Out(rc, data.decode(errors="replace").replace("\r", ""), "")


def _readable(fd):
    return bool(select.select([fd], [], [], 0.05)[0])


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout}s")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------------
# The runtime as the clients see it


def default_root(runtime_bin):
    """The state root a runtime uses without --root (podman/conmon pass none)."""
    name = helpers.runtime_name(runtime_bin)
    return {"runc": "/run/runc", "crun": "/run/crun"}.get(name, "/run/ociruntime")


def make_wrapper(directory, runtime_bin, logfile):
    """A shell wrapper with the runtime's base name that appends its argv (one line) to logfile and
    execs the runtime; returns its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, os.path.basename(runtime_bin))
    with open(path, "w") as f:
        # one write per invocation (O_APPEND): conmon and podman call the runtime concurrently
        f.write("#!/bin/sh\n"
                "l=$(printf '%s\\t' \"$@\")\n"
                f"printf '%s\\n' \"$l\" >> {logfile}\n"
                f"exec {runtime_bin} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


class ArgvLog:
    """The wrapper's log: one line per runtime invocation, arguments separated by tabs."""

    def __init__(self, path):
        self.path = path
        self.offset = 0

    def mark(self):
        """Later calls see only the invocations made after this."""
        self.offset = os.path.getsize(self.path) if os.path.exists(self.path) else 0

    def calls(self):
        if not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        return [line.rstrip("\t").split("\t") for line in text.splitlines() if line.strip()]

    def command(self, argv):
        """(global flags, command, command args) of one logged argv."""
        i = 0
        while i < len(argv) and argv[i].startswith("-"):
            i += 1 if "=" in argv[i] or argv[i] in ("--debug", "--systemd-cgroup") else 2
        return argv[:i], (argv[i] if i < len(argv) else ""), argv[i + 1:]

    def created_ids(self):
        return [a[-1] for g, c, a in map(self.command, self.calls()) if c in ("create", "run") and a]


# ---------------------------------------------------------------------------------------------------
# The image: the tests' busybox rootfs as a tarball and as an OCI image-layout archive


def build_rootfs_tar(workdir):
    rootfs = os.path.join(workdir, "rootfs")
    subprocess.run(["bash", str(helpers.HERE / "mkrootfs.sh"), rootfs], check=True, timeout=120)
    tar = os.path.join(workdir, "rootfs.tar")
    subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True, timeout=120)
    shutil.rmtree(rootfs)
    return tar


def oci_archive(rootfs_tar, out, ref, entrypoint=None, cmd=("/bin/sh",)):
    """Wrap a rootfs tarball into an OCI image-layout archive `ctr images import` takes."""
    with open(rootfs_tar, "rb") as f:
        layer = f.read()
    ldig = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": list(cmd),
                   **({"Entrypoint": list(entrypoint)} if entrypoint else {})},
        "rootfs": {"type": "layers", "diff_ids": [ldig]},
    }).encode()
    cdig = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ldig, "size": len(layer)}],
    }).encode()
    mdig = "sha256:" + hashlib.sha256(manifest).hexdigest()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdig, "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": ref},
        "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    with tarfile.open(out, "w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = int(time.time())
            t.addfile(ti, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for d, b in ((ldig, layer), (cdig, config), (mdig, manifest)):
            add("blobs/sha256/" + d.split(":")[1], b)
    return out


# ---------------------------------------------------------------------------------------------------
# Processes, mounts and cgroups the clients leave


def processes_mentioning(text, exclude=()):
    """Live pids whose command line mentions text (conmon, shims, daemons started for W)."""
    found = []
    needle = text.encode()
    for pid in helpers.all_pids():
        if pid in exclude or pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if needle in cmd and helpers.pid_alive(pid):
            found.append(pid)
    return found


def describe(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:160]
    except OSError:
        return "?"


def reap_zombies(exclude=()):
    for pid, state in helpers.children():
        if state == "Z" and pid not in exclude:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def leaked_processes(workdir, exclude=(), rootfs_prefixes=(), grace=5.0):
    """Processes started for this test that are still alive after `grace` seconds: children of the
    test process (monitors and containers are reparented to it), and anything whose command line
    mentions workdir or whose root lies under it.  Reaps zombies on the way."""
    deadline = time.monotonic() + grace
    while True:
        reap_zombies(exclude)
        live = [p for p, st in helpers.children() if st not in "ZX" and p not in exclude]
        live += [p for p in processes_mentioning(workdir, exclude) if p not in live]
        live += [p for p in helpers.processes_rooted_under([workdir, *rootfs_prefixes])
                 if p not in live and p not in exclude and helpers.pid_alive(p)]
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.05)


def kill_processes(pids):
    for pid in pids:
        helpers.kill_pid(pid)
    time.sleep(0.1)
    reap_zombies()


def cgroup_dirs(relpath):
    """The directories of a cgroup (path from each hierarchy's root) in every hierarchy that has it."""
    if os.path.exists(os.path.join(helpers.CGROUP_ROOT, "cgroup.controllers")):    # pure v2: one hierarchy
        d = os.path.join(helpers.CGROUP_ROOT, relpath.strip("/"))
        return [d] if os.path.isdir(d) else []
    out = []
    for h in sorted(os.listdir(helpers.CGROUP_ROOT)):
        d = os.path.join(helpers.CGROUP_ROOT, h, relpath.strip("/"))
        if os.path.isdir(d) and os.path.ismount(os.path.join(helpers.CGROUP_ROOT, h)):
            out.append(d)
    return out


def cgroup_tree(relpath):
    """Every directory at or under relpath in every hierarchy, deepest first."""
    found = []
    for top in cgroup_dirs(relpath):
        for d, _dirs, _files in os.walk(top):
            found.append(d)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def cgroup_procs(d):
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def remove_cgroup_tree(relpath):
    """rmdir a cgroup and everything below it in every hierarchy; returns the errors."""
    errors = []
    for d in cgroup_tree(relpath):
        err = helpers.remove_cgroup(d)
        if err:
            errors.append(err)
    return errors


def umount_under(prefix):
    """Unmount everything under prefix, deepest first; returns the mountpoints."""
    mps = sorted(helpers.mounts_under([prefix]), key=len, reverse=True)
    for mp in mps:
        try:
            helpers.umount(mp)
        except OSError:
            pass
    return mps


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None
