"""The cgroup v2 manager on the host's real cgroup2 mount (on this hybrid host: /sys/fs/cgroup/unified,
which has no controllers delegated): create, procs, freeze, kill, the hugetlb refusal or limit, and the
eBPF device program, loaded, attached and tested by opening devices from a process inside.

These drive ociruntime's Manager directly (the runtime runs v2 only on a pure v2 host), as a pure-v2
layout of one hierarchy.  Every cgroup is named with the session prefix and removed by the fixture.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import ID_PREFIX, cgroups_named, remove_cgroup

from ociruntime.cgroups import Manager
from ociruntime.errors import CgroupError


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[:1] == ["cgroup2"]:
                return left.split()[4]
    return None


@pytest.fixture
def v2(session_token, request):
    mp = cgroup2_mount()
    if mp is None:
        pytest.skip("the host has no cgroup2 mount")
    made = []

    def make(path="c"):
        name = f"{ID_PREFIX}{session_token}-v2-{request.node.name[5:25]}-{len(made)}"
        m = Manager({"unified": (mp, "/" + name + "/" + path, 2, "")})
        m.create()
        made.append((m, name))
        return m
    yield make
    procs = []
    for m, name in made:
        for pid in m.procs():
            procs.append(pid)
            os.kill(pid, signal.SIGKILL)
        for pid in procs:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        m.destroy()
        left = cgroups_named(name)
        for p in left:
            remove_cgroup(p)
        assert left == [], "left behind"


def spawn_in(m, code):
    """A Python child that joins m's cgroup before running code (the test process stays outside)."""
    procs = m.dir("unified") + "/cgroup.procs"

    def join():
        with open(procs, "w") as f:
            f.write("0")
    return subprocess.Popen([sys.executable, "-c", code], preexec_fn=join, stdout=subprocess.PIPE, text=True)


def drain(fd):
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


COUNTER = "import time\ni=0\nwhile True:\n  i+=1\n  print(i, flush=True)\n  time.sleep(0.01)"


def test_create_procs_freeze_kill_destroy(v2):
    m = v2()
    assert m.v2 and os.path.isdir(m.dir("unified"))
    p = spawn_in(m, COUNTER)
    try:
        assert int(p.stdout.readline()) == 1
        assert m.procs() == [p.pid]
        m.freeze(True)
        assert m.frozen()
        fd = p.stdout.fileno()
        os.set_blocking(fd, False)
        time.sleep(0.1)
        drain(fd)                         # what was written before the freeze
        time.sleep(0.3)
        assert drain(fd) == b""           # frozen: no progress
        m.freeze(False)
        assert not m.frozen()
        time.sleep(0.2)
        assert drain(fd)                  # thawed: progress again
        m.kill_all(signal.SIGKILL)        # cgroup.kill
        assert p.wait(timeout=5) == -signal.SIGKILL
        deadline = time.monotonic() + 2
        while m.procs() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert m.procs() == []
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    m.destroy()
    assert not os.path.exists(m.dir("unified"))


def test_stats_shape(v2):
    m = v2()
    data = m.stats()
    for key in ("cpu", "memory", "pids", "blkio", "hugetlb"):
        assert key in data
    assert "usage" in data["cpu"] and "throttling" in data["cpu"]


def test_hugetlb(v2):
    m = v2()
    mp = cgroup2_mount()
    with open(mp + "/cgroup.subtree_control") as f:
        delegated = "hugetlb" in f.read().split()
    res = {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}
    if not delegated:
        # the root does not delegate hugetlb and ociruntime does not write to cgroups it did not create
        with pytest.raises(CgroupError, match="hugetlb controller is not enabled"):
            m.apply(res, skip_devices=True)
        return
    m.apply(res, skip_devices=True)
    with open(m.dir("unified") + "/hugetlb.2MB.max") as f:
        assert int(f.read()) == 4 << 20


def test_nested_created_parents_delegate(v2):
    """Parents the manager created pass their controllers down (the first one only has what the
    pre-existing root delegates)."""
    m = v2("a/b")
    parent = os.path.dirname(m.dir("unified"))
    with open(parent + "/cgroup.controllers") as f:
        have = f.read().split()
    with open(parent + "/cgroup.subtree_control") as f:
        assert sorted(f.read().split()) == sorted(have)   # (the kernel lists them in its own order)


OPENER = """import os
for path, flags in (('/dev/null', os.O_RDWR), ('/dev/loop0', os.O_RDONLY), ('/dev/loop0', os.O_RDWR),
                    ('/dev/kmsg', os.O_RDONLY), ('/dev/kmsg', os.O_WRONLY)):
    try:
        os.close(os.open(path, flags))
        print(path, flags, 'ok')
    except OSError as e:
        print(path, flags, e.errno)
"""


def opens(m):
    p = spawn_in(m, OPENER)
    out = p.communicate(timeout=10)[0]
    return {tuple(line.rsplit(" ", 2)[:2]): line.rsplit(" ", 1)[1] for line in out.splitlines()}


@pytest.mark.skipif(not os.path.exists("/dev/loop0") or not os.path.exists("/dev/kmsg"),
                    reason="needs /dev/loop0 and /dev/kmsg to test with")
def test_ebpf_device_program(v2):
    m = v2()
    rw, ro, wo = str(os.O_RDWR), str(os.O_RDONLY), str(os.O_WRONLY)
    # whitelist: deny all, then the defaults (/dev/null ...) and loop0 read-only
    m.apply({"devices": [{"allow": False, "access": "rwm"},
                         {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"}]})
    got = opens(m)
    assert got[("/dev/null", rw)] == "ok"
    assert got[("/dev/loop0", ro)] == "ok"
    assert got[("/dev/loop0", rw)] == "1"            # EPERM: write not allowed
    assert got[("/dev/kmsg", ro)] == "1" and got[("/dev/kmsg", wo)] == "1"
    # blacklist, replacing the program: allow all but writing /dev/kmsg
    m.apply({"devices": [{"allow": True, "access": "rwm"},
                         {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "w"}]})
    got = opens(m)
    assert got[("/dev/loop0", rw)] == "ok"
    assert got[("/dev/kmsg", ro)] == "ok"
    assert got[("/dev/kmsg", wo)] == "1"
    from ociruntime.cgroups import ebpf
    fd = os.open(m.dir("unified"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(ebpf.attached(fd)) == 1            # the update replaced the program
    finally:
        os.close(fd)
