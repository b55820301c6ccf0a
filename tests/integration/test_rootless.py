"""Rootless: a real unprivileged user, created by the test, runs the runtime with a user namespace
and its own state root ($XDG_RUNTIME_DIR/ociruntime), from the config `spec --rootless` writes.

How the user runs ociruntime: the project's interpreter lives under /root (mode 0700 here), so the
user runs the checkout in place with the system interpreter (/usr/bin/python3, same minor version:
the shim is built on the stable ABI) through a small launcher script; the checkout must be
world-readable (it is: 0755/0644), which the fixture checks first.  With --runtime-bin=runc the user runs runc itself.

The user, its group and its /etc/subuid and /etc/subgid lines are added by the fixture and removed
exactly (the files are compared with their original contents) at teardown, failure or not.
"""

import importlib.util
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers import ID_PREFIX, assert_no_traceback, children, kill_pid, pid_alive

SUBID_FILES = ("/etc/subuid", "/etc/subgid")
SUBID_COUNT = 65536


class User:
    """The unprivileged user and how to run the runtime as it."""

    def __init__(self, name, uid, gid, subid, home, runtime_cmd, token):
        self.name, self.uid, self.gid, self.subid, self.home = name, uid, gid, subid, home
        self.runtime_cmd, self.token = runtime_cmd, token
        self.xdg = home / "xdg"
        self.env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home),
                    "USER": name, "LOGNAME": name, "XDG_RUNTIME_DIR": str(self.xdg)}
        self.ids = []

    def run(self, *argv, cwd=None, timeout=30, check=False):
        """Run a command as the user (its own uid, gid and only its own group)."""
        cmd = ["setpriv", "--reuid", str(self.uid), "--regid", str(self.gid), "--init-groups",
               "--reset-env", "--"] + ["env", "-i"] + [f"{k}={v}" for k, v in self.env.items()] + list(argv)
        # files, not pipes: a created container inherits them and would hold a pipe open
        with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
            p = subprocess.run(cmd, cwd=cwd or str(self.home), stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                               timeout=timeout)
            fo.seek(0)
            fe.seek(0)
            out, err = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError(f"{argv} as {self.name}: exit {p.returncode}\n out: {out!r}\n err: {err!r}")
        return p.returncode, out, err

    def rt(self, *argv, **kw):
        if argv and argv[0] in ("run", "create") and argv[-1] not in self.ids:
            self.ids.append(argv[-1])
        return self.run(*self.runtime_cmd, *argv, **kw)

    def new_id(self):
        cid = f"{ID_PREFIX}{self.token}-rootless-{len(self.ids) + 1}"
        self.ids.append(cid)
        return cid

    def bundle(self, shared_rootfs, name):
        """`spec --rootless` run by the user in a bundle of the user's own, with a copy of the
        busybox rootfs owned by the user."""
        b = self.home / name
        b.mkdir()
        subprocess.run(["cp", "-a", str(shared_rootfs), str(b / "rootfs")], check=True, timeout=60)
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(b)], check=True, timeout=60)
        self.rt("spec", "--rootless", cwd=str(b), check=True)
        return b


def _procs_of(uid):
    """Live processes of uid (exited containers reparented to the test, a subreaper, are reaped)."""
    for pid, state in children():
        if state == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}").st_uid == uid:
                    out.append(int(d))
            except FileNotFoundError:
                pass
    return out


def _free_subid_start(texts):
    used = []
    for text in texts:
        for line in text.splitlines():
            parts = line.split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                used.append((int(parts[1]), int(parts[1]) + int(parts[2])))
    start = 3_000_000 + secrets.randbelow(4000) * SUBID_COUNT
    while any(a < start + SUBID_COUNT and start < b for a, b in used):
        start += SUBID_COUNT
    return start


def _write_atomic(path, text):
    st = os.stat(path)
    tmp = path + ".oci-test-tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, st.st_mode & 0o7777)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.rename(tmp, path)


def _runtime_cmd(runtime_bin, home):
    from helpers import runtime_name
    if runtime_name(runtime_bin) != "ociruntime":
        return [runtime_bin]
    spec = importlib.util.find_spec("ociruntime")
    assert spec and spec.origin, "the ociruntime package is not importable by the test's interpreter"
    site = Path(spec.origin).resolve().parent.parent
    # a copy the user can read (the test's site-packages may be under a directory only root may
    # enter, such as /root), without what only the tests use
    top = home / "lib"
    skip = ("pip", "setuptools", "pkg_resources", "_distutils_hack", "_pytest", "pytest", "py", "hypothesis",
            "grpc", "grpc_tools", "google", "wheel", "__pycache__")
    for entry in site.iterdir():
        if entry.name.split(".")[0].split("-")[0] in skip or entry.name.endswith((".dist-info", ".pth")):
            continue
        if entry.is_dir():
            shutil.copytree(entry, top / entry.name, symlinks=True)
        else:
            top.mkdir(exist_ok=True)
            shutil.copy2(entry, top / entry.name)
    subprocess.run(["chmod", "-R", "a+rX", str(top)], check=True, timeout=60)
    launcher = home / "bin" / "ociruntime"
    launcher.parent.mkdir()
    launcher.write_text("#!/usr/bin/python3 -I\nimport sys\nsys.path.insert(0, %r)\n"
                        "from ociruntime.__main__ import main\nmain()\n" % str(top))
    launcher.chmod(0o755)
    launcher.parent.chmod(0o755)
    return [str(launcher)]


@pytest.fixture(scope="module")
def user(runtime_bin, tmp_path_factory):
    if not shutil.which("useradd") or not shutil.which("setpriv"):
        pytest.fail("useradd (passwd) and setpriv (util-linux) are needed", pytrace=False)
    token = secrets.token_hex(3)
    name = f"ocitest{token}"
    saved = {p: Path(p).read_text() if os.path.exists(p) else None for p in SUBID_FILES}
    home = Path(tempfile.mkdtemp(prefix=f"{ID_PREFIX}{token}-rootless-", dir="/tmp"))
    os.chmod(home, 0o755)
    created = False
    lines = {}
    try:
        subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell", "/bin/sh", "--home-dir",
                        str(home), "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name],
                       check=True, timeout=30, capture_output=True)
        created = True
        pw = pwd.getpwnam(name)
        # useradd must not have allocated ranges itself: the fixture owns exactly one line per file
        for p in SUBID_FILES:
            now = Path(p).read_text() if os.path.exists(p) else None
            assert now == saved[p], f"useradd changed {p}"
        start = _free_subid_start(t or "" for t in saved.values())
        for p in SUBID_FILES:
            if saved[p] is None:
                Path(p).write_text("")
                os.chmod(p, 0o644)
            lines[p] = f"{name}:{start}:{SUBID_COUNT}\n"
            text = Path(p).read_text()
            _write_atomic(p, text + ("" if not text or text.endswith("\n") else "\n") + lines[p])
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o700)
        u = User(name, pw.pw_uid, pw.pw_gid, start, home, _runtime_cmd(runtime_bin, home), token)
        # the user's private XDG_RUNTIME_DIR (what pam_systemd would make: 0700, owned by the user)
        u.xdg.mkdir(mode=0o700)
        os.chown(u.xdg, pw.pw_uid, pw.pw_gid)
        os.chmod(u.xdg, 0o700)
        rc, _, err = u.run("sh", "-c", 'test -r "$0" && test -x "$(dirname "$0")"', u.runtime_cmd[0])
        assert rc == 0, f"the runtime is not readable by an unprivileged user: {u.runtime_cmd[0]}"
        rc, out, err = u.run(*u.runtime_cmd, "--version")
        assert rc == 0, f"the unprivileged user cannot run the runtime: {err}"
        yield u
    finally:
        problems = []
        if created:
            uid = pwd.getpwnam(name).pw_uid
            for pid in _procs_of(uid):
                problems.append(f"process {pid} of {name}")
                kill_pid(pid)
            deadline = time.monotonic() + 5
            while any(pid_alive(p) for p in _procs_of(uid)) and time.monotonic() < deadline:
                time.sleep(0.02)
        for p, line in lines.items():
            text = Path(p).read_text()
            if line in text:
                _write_atomic(p, text.replace(line, "", 1))
        if created:
            r = subprocess.run(["userdel", name], timeout=30, capture_output=True)
            if r.returncode != 0:
                problems.append(f"userdel {name}: {r.stderr.decode().strip()}")
            subprocess.run(["groupdel", name], timeout=30, capture_output=True)  # if userdel left it
        for p in SUBID_FILES:
            now = Path(p).read_text() if os.path.exists(p) else None
            if saved[p] is None and now == "":
                os.unlink(p)
                now = None
            if now != saved[p]:
                problems.append(f"{p} not restored")
                if saved[p] is None:
                    os.unlink(p)
                else:
                    _write_atomic(p, saved[p])
        for m in _mounts_under(str(home)):
            problems.append(f"mount {m}")
        shutil.rmtree(home, ignore_errors=True)
        assert not problems, problems


def _mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


@pytest.fixture
def rootless(user, shared_rootfs):
    """Per test: the user, and at the end every container of the test deleted, nothing left."""
    n = len(user.ids)
    yield user
    problems = []
    for cid in user.ids[n:]:
        rc, _, err = user.rt("delete", "--force", cid)
        if rc != 0 and "does not exist" not in err:
            problems.append(f"delete --force {cid}: {err.strip()}")
    state_root = user.xdg / ("runc" if user.runtime_cmd[0].endswith("runc") else "ociruntime")
    left = os.listdir(state_root) if state_root.exists() else []
    for name in left:
        problems.append(f"state dir {state_root}/{name}")
        shutil.rmtree(state_root / name, ignore_errors=True)
    for pid in _procs_of(user.uid):
        problems.append(f"process {pid}")
        kill_pid(pid)
    for d in list(user.home.iterdir()):
        if d.name.startswith("bundle") and not _mounts_under(str(d)):
            shutil.rmtree(d, ignore_errors=True)
    assert not problems, problems


def _config(b):
    return json.loads((b / "config.json").read_text())


def _save(b, cfg):
    (b / "config.json").write_text(json.dumps(cfg, indent=1))


def _cgroups_named(part):
    found = []
    for top, dirs, _ in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(top, d) for d in dirs if part in d]
    return found


def test_spec_rootless_config_runs_as_the_user(rootless, shared_rootfs):
    u = rootless
    b = u.bundle(shared_rootfs, "bundle")
    cfg = _config(b)
    ns = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert "user" in ns and "network" not in ns
    assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": u.uid, "size": 1}]
    assert cfg["linux"]["gidMappings"] == [{"containerID": 0, "hostID": u.gid, "size": 1}]
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; "
                              "whoami; id -u; stat -c %u /bin/busybox; touch /tmp/x && echo writable-fs; "
                              "grep -c . /proc/self/mountinfo"]
    cfg["root"]["readonly"] = False
    _save(b, cfg)
    cid = u.new_id()
    rc, out, err = u.rt("run", "--bundle", str(b), cid)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["0", str(u.uid), "1"]
    assert lines[1].split() == ["0", str(u.gid), "1"]
    assert lines[2] == "deny"              # the kernel requires it for an unprivileged gid_map
    assert lines[3:6] == ["root", "0", "0"]  # the user's own files are root's inside
    assert lines[6] == "writable-fs"
    # the state root is $XDG_RUNTIME_DIR/<runtime>, owned by the user; nothing in root's
    root_dir = u.xdg / os.path.basename(u.runtime_cmd[0])
    assert root_dir.is_dir() and root_dir.stat().st_uid == u.uid
    assert not os.path.exists(f"/run/ociruntime/{cid}")
    # no cgroup was created for the container (none is delegated to the user)
    assert _cgroups_named(cid) == []


def test_rootless_lifecycle_and_host_view(rootless, shared_rootfs):
    """create/state/start/kill/delete as the user; on the host the container runs as the user."""
    u = rootless
    b = u.bundle(shared_rootfs, "bundle")
    cfg = _config(b)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "trap 'exit 42' TERM; sleep 1000 & wait"]
    _save(b, cfg)
    cid = u.new_id()
    u.rt("create", "--bundle", str(b), cid, check=True)
    rc, out, _ = u.rt("state", cid, check=True)
    st = json.loads(out)
    assert st["status"] == "created"
    pid = st["pid"]
    u.rt("start", cid, check=True)
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    assert status["Uid"].split() == [str(u.uid)] * 4
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    rc, out, _ = u.rt("list", "-q", check=True)
    assert cid in out.split()
    u.rt("kill", cid, "TERM", check=True)
    deadline = time.monotonic() + 10
    while json.loads(u.rt("state", cid, check=True)[1])["status"] != "stopped":
        assert time.monotonic() < deadline, "container did not stop"
        time.sleep(0.05)
    u.rt("delete", cid, check=True)
    assert u.rt("state", cid)[0] != 0


@pytest.mark.ociruntime_only
def test_rootless_multiple_ranges_via_newuidmap(rootless, shared_rootfs):
    """Several ranges (the user's own id + its subordinate ids): written by newuidmap/newgidmap,
    so setgroups stays allowed and a process can run as a subordinate uid with extra groups
    (runc 1.1 refuses any additionalGids when rootless, even with newgidmap)."""
    u = rootless
    b = u.bundle(shared_rootfs, "bundle")
    cfg = _config(b)
    maps = [{"containerID": 0, "hostID": u.uid, "size": 1},
            {"containerID": 1, "hostID": u.subid, "size": SUBID_COUNT}]
    gmaps = [{"containerID": 0, "hostID": u.gid, "size": 1},
             {"containerID": 1, "hostID": u.subid, "size": SUBID_COUNT}]
    cfg["linux"]["uidMappings"], cfg["linux"]["gidMappings"] = maps, gmaps
    cfg["process"]["terminal"] = False
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [1001, 1002]}
    cfg["process"]["args"] = ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; "
                              "id -u; id -G; sleep 1000"]
    _save(b, cfg)
    cid = u.new_id()
    u.rt("create", "--bundle", str(b), cid, check=True)
    pid = json.loads(u.rt("state", cid, check=True)[1])["pid"]
    u.rt("start", cid, check=True)
    with open(f"/proc/{pid}/uid_map") as f:
        uid_map = [line.split() for line in f]
    with open(f"/proc/{pid}/gid_map") as f:
        gid_map = [line.split() for line in f]
    assert uid_map == [["0", str(u.uid), "1"], ["1", str(u.subid), str(SUBID_COUNT)]]
    assert gid_map == [["0", str(u.gid), "1"], ["1", str(u.subid), str(SUBID_COUNT)]]
    with open(f"/proc/{pid}/setgroups") as f:
        assert f.read().strip() == "allow"
    deadline = time.monotonic() + 5
    while True:
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        if status["Uid"].split()[0] == str(u.subid + 999) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert status["Uid"].split() == [str(u.subid + 999)] * 4
    assert status["Gid"].split() == [str(u.subid + 999)] * 4
    assert sorted(status["Groups"].split()) == sorted([str(u.subid + 1000), str(u.subid + 1001)])
    u.rt("delete", "--force", cid, check=True)


def test_rootless_ranges_not_delegated_are_refused(rootless, shared_rootfs):
    """A range outside the user's /etc/subuid: newuidmap refuses, create fails cleanly."""
    u = rootless
    b = u.bundle(shared_rootfs, "bundle")
    cfg = _config(b)
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": u.uid, "size": 1},
                                   {"containerID": 1, "hostID": 1, "size": 1000}]   # host system ids
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["true"]
    _save(b, cfg)
    cid = u.new_id()
    rc, out, err = u.rt("create", "--bundle", str(b), cid)
    assert rc != 0
    assert_no_traceback(err)
    if "ociruntime" in u.runtime_cmd[0]:
        assert err.startswith("ociruntime: ") and err.count("\n") == 1 and "newuidmap" in err, err
    root_dir = u.xdg / os.path.basename(u.runtime_cmd[0])
    assert not (root_dir / cid).exists()
    assert _procs_of(u.uid) == []


def test_rootless_cannot_gain_host_privileges(rootless, shared_rootfs):
    """Root in the container is the user on the host: host root's files stay out of reach, and
    nothing the user cannot do on the host works inside (mknod, a write to a root-owned bind)."""
    u = rootless
    b = u.bundle(shared_rootfs, "bundle")
    data = u.home / "hostdata"
    data.mkdir()
    (data / "file").write_text("host\n")
    os.chmod(data / "file", 0o644)          # root-owned, in a directory the user can search
    cfg = _config(b)
    cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(data), "options": ["rbind"]})
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "echo x > /mnt/file; echo write=$?; mknod /tmp/sda b 8 0; "
                              "echo mknod=$?; cat /mnt/file"]
    cfg["root"]["readonly"] = False
    _save(b, cfg)
    rc, out, err = u.rt("run", "--bundle", str(b), u.new_id())
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] != "write=0" and lines[1] != "mknod=0" and lines[2] == "host"
    assert (data / "file").read_text() == "host\n"


@pytest.mark.ociruntime_only
def test_rootless_delegated_cgroup_is_used(rootless, shared_rootfs):
    """A cgroup delegated to the user (chowned, as systemd's Delegate= does): the container is
    placed in a cgroup below it and delete removes that cgroup; hierarchies not delegated are
    left out (runc 1.1 instead fails on the first one it cannot create)."""
    u = rootless
    hier = None
    for key in ("pids", "memory", "unified"):
        if os.path.isdir(f"/sys/fs/cgroup/{key}") and os.path.exists(f"/sys/fs/cgroup/{key}/cgroup.procs"):
            hier = key
            break
    assert hier, "no cgroup hierarchy to delegate"
    deleg = f"/sys/fs/cgroup/{hier}/{ID_PREFIX}{u.token}-deleg"
    os.mkdir(deleg)
    try:
        for f in ("", "cgroup.procs", "tasks", "cgroup.subtree_control"):
            p = os.path.join(deleg, f)
            if os.path.exists(p):
                os.chown(p, u.uid, u.gid)
        b = u.bundle(shared_rootfs, "bundle")
        cfg = _config(b)
        cfg["linux"]["cgroupsPath"] = f"/{ID_PREFIX}{u.token}-deleg/ctr"
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["cat", "/proc/self/cgroup"]
        _save(b, cfg)
        # the user must be able to move its process into the delegated cgroup: start it there
        cid = u.new_id()
        rc, out, err = u.rt("run", "--bundle", str(b), cid)
        assert rc == 0, err
        line = [x for x in out.splitlines() if (x.split(":")[1] == hier or (hier == "unified" and x.startswith("0::")))]
        assert line and line[0].endswith(f"{ID_PREFIX}{u.token}-deleg/ctr"), out
        assert not os.path.exists(os.path.join(deleg, "ctr"))
    finally:
        for top, dirs, _ in sorted(os.walk(deleg), key=lambda t: -t[0].count("/")):
            try:
                os.rmdir(top)
            except OSError:
                pass
    assert not os.path.exists(deleg)


def _systemd_v2():
    if not os.path.isdir("/run/systemd/system"):
        return False
    with open("/proc/self/mountinfo") as f:
        return [ln.partition(" - ")[2].split()[0] for ln in f if " - cgroup" in ln] == ["cgroup2"]


@pytest.mark.skipif(not _systemd_v2(), reason="needs systemd as PID 1 on a pure cgroup v2 host (tests/vm/ci.sh "
                    "runs it in one)")
def test_rootless_systemd_cgroup_memory_limit_enforced(rootless, shared_rootfs):
    """Rootless with systemd's delegation: the user has a user@UID.service (linger), its manager makes
    the container's scope (--systemd-cgroup, the default cgroupsPath: user.slice, runc-ID.scope) in
    the cgroup systemd delegated to it, and the memory limit is enforced there."""
    u = rootless
    run_dir = f"/run/user/{u.uid}"
    subprocess.run(["loginctl", "enable-linger", u.name], check=True, timeout=120)
    saved = dict(u.env)
    try:
        deadline = time.monotonic() + 180
        while not os.path.exists(run_dir + "/bus") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert os.path.exists(run_dir + "/bus"), "user@%d.service has no bus" % u.uid
        u.env.update(XDG_RUNTIME_DIR=run_dir, DBUS_SESSION_BUS_ADDRESS=f"unix:path={run_dir}/bus")
        b = u.bundle(shared_rootfs, "bundle")
        cfg = _config(b)
        cfg["process"]["terminal"] = False
        # the scope's memory.max: /sys/fs/cgroup is the container's own cgroup where the config
        # mounts one, else the host's hierarchy
        cfg["process"]["args"] = ["sh", "-c", "p=$(sed -n 's/^0:://p' /proc/self/cgroup); echo $p; "
                                  "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup$p/memory.max; "
                                  "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?"]
        cfg["linux"].setdefault("resources", {})["memory"] = {"limit": 32 << 20, "swap": 32 << 20}
        # the host's view of the cgroup path (runc's rootless spec has a cgroup namespace)
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
        _save(b, cfg)
        cid = u.new_id()
        rc, out, err = u.rt("--systemd-cgroup", "run", "--bundle", str(b), cid, timeout=300)
        assert rc == 0, err
        lines = out.splitlines()
        assert lines[0] == f"/user.slice/user-{u.uid}.slice/user@{u.uid}.service/user.slice/runc-{cid}.scope"
        assert lines[1:] == [str(32 << 20), "dd=137"], out      # killed at the limit
        rc, _, err = u.rt("--systemd-cgroup", "delete", "--force", cid, timeout=300)
        assert not os.path.exists("/sys/fs/cgroup" + lines[0])
    finally:
        u.env.clear()
        u.env.update(saved)
        subprocess.run(["loginctl", "disable-linger", u.name], timeout=120)
        subprocess.run(["systemctl", "stop", f"user@{u.uid}.service"], timeout=180)
        deadline = time.monotonic() + 60
        while _procs_of(u.uid) and time.monotonic() < deadline:
            time.sleep(0.5)
