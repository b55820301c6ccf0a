"""The Python API (ociruntime.Container) against real containers, in this test's own process: what
the process inside sees, what each method returns, what is left on the host, and errors raised as
the package's types with the command line's words (the command line is a client of the same
methods: the same situation through the binary prints "ociruntime: " + str(error)).

The API forks this process (pytest's), so its containers' inits are this process's children: the
fixture's cleanup (conftest.py) fails a test that leaves one running, or a state dir, a cgroup or
a mount.  The API is ociruntime's own: the tests are skipped for another runtime under test."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from helpers import LONG_RUNNING, assert_no_traceback, children, pid_alive

import ociruntime
from ociruntime import Bundle, Container
from ociruntime.errors import CgroupError, ConfigError, InitError, OCIError, StateError, UsageError, WaitTimeout

pytestmark = pytest.mark.ociruntime_only


@pytest.fixture
def api(runtime, shared_rootfs, tmp_path):
    """make(*args) -> (Container, Bundle): a new id in the session's state root (the fixture
    deletes it with the binary afterwards), and a bundle on the shared busybox rootfs (read-only:
    conftest checks it is unchanged)."""
    count = [0]

    def make(*args, tag=""):
        count[0] += 1
        bundle = Bundle(tmp_path / ("api-bundle%d" % count[0]), rootfs=shared_rootfs, args=args or LONG_RUNNING)
        return Container(runtime.new_id(tag), root=runtime.root), bundle
    return make


def started(c, b, **kw):
    c.create(b, **kw)
    c.start()
    return c


def out(c, *args, **kw):
    """stdout of ``args`` exec'd in the container (which must exit 0)."""
    r = c.exec(list(args), capture_output=True, **kw)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r.stdout.decode()


def state_dir(c):
    return os.path.join(c.root, c.id)


# ---------------------------------------------------------------------------------------------------
# run


def test_run_returns_status_and_output(api):
    c, b = api("sh", "-c", "echo to-out; echo to-err >&2; echo $$ $(hostname); exit 3")
    b.hostname = "apihost"
    r = c.run(b, capture_output=True)
    assert (r.returncode, r.stderr) == (3, b"to-err\n")
    assert r.stdout == b"to-out\n1 apihost\n"          # PID 1 of its own pid namespace, its hostname
    assert not os.path.exists(state_dir(c))           # deleted after the exit
    assert [p for p, st in children() if st not in "ZX"] == []


def test_run_input_signal_status_and_keep(api):
    c, b = api("sh", "-c", "read line; echo got:$line")
    assert c.run(b, input=b"hello\n", capture_output=True).stdout == b"got:hello\n"
    c2, b2 = api("sh", "-c", "kill -KILL $$")
    b2.share_namespace("pid")                         # (PID 1 of a pid namespace cannot kill itself)
    r = c2.run(b2, keep=True)
    assert r.returncode == 128 + signal.SIGKILL and r.stdout is None
    assert c2.state().status == "stopped"             # kept: deleted by the caller
    assert c2.wait() == 128 + signal.SIGKILL
    c2.delete()
    assert not os.path.exists(state_dir(c2))


def test_run_into_files(api, tmp_path):
    c, b = api("sh", "-c", "cat; echo err >&2")
    (tmp_path / "in").write_bytes(b"from a file\n")
    with open(tmp_path / "in", "rb") as fin, open(tmp_path / "out", "wb") as fout, \
            open(tmp_path / "err", "wb") as ferr:
        assert c.run(b, stdin=fin, stdout=fout, stderr=ferr.fileno()).returncode == 0
    assert (tmp_path / "out").read_bytes() == b"from a file\n"
    assert (tmp_path / "err").read_bytes() == b"err\n"


# ---------------------------------------------------------------------------------------------------
# create, start, state, exec, pause, resume, kill, wait, delete


def test_lifecycle(api):
    c, b = api()
    assert c.create(b) is c
    st = c.state()
    assert (st.id, st.status, st.bundle) == (c.id, "created", b.path)
    assert st.pid > 0 and pid_alive(st.pid) and st.as_dict()["pid"] == st.pid
    assert st.pid in [p for p, _ in children()]       # this process's child
    c.start()
    assert c.status == "running" and c.pid == st.pid
    assert out(c, "cat", "/proc/1/cmdline").split("\0")[:2] == ["sh", "-c"]
    c.pause()
    assert c.status == "paused"
    with pytest.raises(StateError) as e:
        c.exec(["true"])
    assert str(e.value) == "cannot exec in a paused container (use --ignore-paused to override)"
    c.resume()
    assert c.status == "running"
    assert [s.id for s in Container.list(c.root) if s.id == c.id] == [c.id]
    c.kill()                                          # SIGTERM: the trap exits 42
    assert c.wait(timeout=10) == 42
    assert c.status == "stopped" and c.pid == 0
    c.delete()
    assert not os.path.exists(state_dir(c)) and not pid_alive(st.pid)
    assert c.wait() == 42                             # remembered after delete
    assert st.pid not in [p for p, _ in children()]   # reaped


def test_context_manager_deletes_and_reaps(api, runtime):
    c, b = api()
    with started(c, b) as same:
        assert same is c
        pid = c.pid
    assert not os.path.exists(state_dir(c)) and not pid_alive(pid)
    assert pid not in [p for p, _ in children()]
    assert runtime.status(c.id) is None               # the command line sees it gone too


def test_exec_process_changes(api):
    c, b = api()
    b.process(env={"FROM_CONFIG": "c"})
    started(c, b)
    seen = out(c, "sh", "-c", "id -u; id -g; id -G; pwd; echo $FROM_CONFIG $EXTRA",
               env={"EXTRA": "e"}, uid=65534, gid=65534, additional_gids=[5], cwd="/tmp")
    assert seen.split("\n")[:5] == ["65534", "65534", "65534 5", "/tmp", "c e"]
    r = c.exec(["sh", "-c", "cat; exit 7"], input=b"in\n", capture_output=True)
    assert (r.returncode, r.stdout, r.args) == (7, b"in\n", ["sh", "-c", "cat; exit 7"])
    p = c.exec(process={"args": ["sh", "-c", "echo $WHO"], "cwd": "/", "env": ["WHO=dict"]},
               capture_output=True)
    assert p.stdout == b"dict\n"


def test_exec_detached_is_waited_for(api):
    c = started(*api())
    p = c.exec(["sh", "-c", "sleep 0.2; exit 5"], detach=True)
    assert p.pid in [pid for pid, _ in children()]   # adopted: this process is a subreaper
    assert p.wait(timeout=10) == 5 and p.returncode == 5
    assert p.pid not in [pid for pid, _ in children()]
    q = c.exec(["sleep", "100"], detach=True)
    with pytest.raises(WaitTimeout):
        q.wait(timeout=0.1)
    q.kill(signal.SIGKILL)
    assert q.wait(timeout=10) == 128 + signal.SIGKILL
    with pytest.raises(UsageError):
        c.exec(["true"], detach=True, capture_output=True)
    with pytest.raises(UsageError) as e:
        c.exec(["true"], stdout=9999)
    assert str(e.value) == "stdio: fd 9999: Bad file descriptor"


def test_update_stats_events(api):
    c, b = api()
    b.resources(pids=50)
    started(c, b)
    assert c.stats()["pids"]["limit"] == 50
    c.update(pids={"limit": 64})
    assert c.stats()["pids"]["limit"] == 64
    seen = out(c, "sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
    assert seen == "64\n"                             # what the process's own cgroup says
    events = c.events(interval=0.1)
    first = next(events)
    assert (first.type, first.id) == ("stats", c.id) and first.data["pids"]["current"] >= 2
    assert first.as_dict()["data"] is first.data
    c.kill("KILL")
    assert all(e.type == "stats" for e in events)     # the iterator ends once the container stops
    assert c.wait(timeout=10) == 128 + signal.SIGKILL


def test_events_report_oom(api):
    if not os.path.isdir("/sys/fs/cgroup/memory") and not os.path.exists("/sys/fs/cgroup/memory.max"):
        pytest.skip("no memory controller on this host")
    c, b = api("sh", "-c", "sleep 0.3; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1000")
    b.resources(memory=24 << 20, memory_swap=24 << 20)
    started(c, b)
    deadline = time.monotonic() + 10
    for event in c.events(interval=0.2):
        if event.type == "oom":
            assert (event.id, event.data) == (c.id, None)
            break
        assert time.monotonic() < deadline, "no oom event"
    c.kill("KILL")
    c.wait(timeout=10)


def test_wait_for_a_container_made_by_another_process(api, runtime, bundle):
    b = bundle(*LONG_RUNNING)
    cid = runtime.create(b)
    runtime.start(cid)
    c = Container(cid, root=runtime.root)
    with pytest.raises(WaitTimeout) as e:
        c.wait(timeout=0.2)
    assert isinstance(e.value, TimeoutError) and c.status == "running"
    c.kill(signal.SIGTERM)
    assert c.wait(timeout=10) is None                 # stopped; its status was its creator's
    assert c.status == "stopped"
    c.delete()
    assert runtime.status(cid) is None


class Interrupted(Exception):
    pass


def interrupt_after(seconds):
    """An exception raised from a signal handler ``seconds`` from now, as a KeyboardInterrupt
    would be (pytest takes a real one as the end of the session)."""
    def handler(signum, frame):
        raise Interrupted()
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return old


def test_an_interrupted_wait_kills_what_it_waited_for(api):
    c, b = api("sleep", "100")
    old = interrupt_after(0.5)
    try:
        with pytest.raises(Interrupted):
            c.run(b)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not os.path.exists(state_dir(c))           # killed, reaped and deleted
    assert [p for p, st in children() if st not in "ZX"] == []
    c2 = started(*api())
    old = interrupt_after(0.5)
    try:
        with pytest.raises(Interrupted):
            c2.exec(["sleep", "100"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert out(c2, "ps", "-o", "args").split("\n")[1:-1] == ["sh -c trap 'exit 42' TERM; sleep 1000 & wait",
                                                            "sleep 1000", "ps -o args"]
    assert c2.pid in c2.pids() and len(c2.pids()) == 2  # the init and its sleep: the exec'd one is gone
    c2.kill()
    assert c2.wait(timeout=10) == 42


def test_an_interrupted_wait_on_a_paused_container_ends(api, runtime):
    """An init in a frozen cgroup dies only once thawed: the interrupted wait does not wait for it
    (bounded), and the delete that follows thaws, kills and removes the container."""
    c, b = api("sleep", "100")
    # (a process, not a thread: create refuses to fork a multi-threaded runtime)
    pauser = subprocess.Popen(["sh", "-c", 'sleep 0.5; exec "$@"', "sh", runtime.bin, "--root", runtime.root,
                               "pause", c.id])
    old = interrupt_after(1.5)
    t0 = time.monotonic()
    try:
        with pytest.raises(Interrupted):
            c.run(b)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        assert pauser.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 10
    assert not os.path.exists(state_dir(c))           # thawed, killed, reaped and deleted
    assert [p for p, st in children() if st not in "ZX"] == []


# ---------------------------------------------------------------------------------------------------
# errors: the package's types, the command line's words


def _cli_line(runtime, *argv):
    r = runtime.run(*argv)
    assert r.rc != 0
    assert_no_traceback(r.err)
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ociruntime: "), r.err
    return lines[0][len("ociruntime: "):]


def test_errors_are_the_cli_lines(api, runtime, tmp_path):
    c, b = api()
    gone = Container(runtime.new_id("gone"), root=runtime.root)
    for call, argv, kind in ((gone.start, ("start", gone.id), StateError),
                             (gone.state, ("state", gone.id), StateError),
                             (gone.delete, ("delete", gone.id), StateError),
                             (lambda: gone.kill("KILL"), ("kill", gone.id, "KILL"), StateError)):
        with pytest.raises(kind) as e:
            call()
        assert str(e.value) == _cli_line(runtime, *argv) == "container does not exist"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError) as e:
        gone.create(empty)
    assert str(e.value) == _cli_line(runtime, "create", "--bundle", empty, runtime.new_id())
    assert not os.path.exists(state_dir(gone))
    started(c, b)
    for call, argv, kind in ((c.start, ("start", c.id), StateError),
                             (c.delete, ("delete", c.id), StateError),
                             (c.resume, ("resume", c.id), StateError),
                             (lambda: c.kill("NOSUCH"), ("kill", c.id, "NOSUCH"), OCIError),
                             (lambda: c.create(b), ("create", "--bundle", b.path, c.id), StateError)):
        with pytest.raises(kind) as e:
            call()
        assert str(e.value) == _cli_line(runtime, *argv)
    with pytest.raises(InitError) as e:
        c.exec(["/nonexistent"])
    assert _cli_line(runtime, "exec", c.id, "/nonexistent") == \
        "exec failed: unable to start container process: " + str(e.value)
    with pytest.raises(ConfigError) as e:
        c.exec(["true"], cwd="relative")
    assert _cli_line(runtime, "exec", "--cwd", "relative", c.id, "true") == "exec failed: " + str(e.value)
    assert c.status == "running"                      # the refusals changed nothing
    c.kill("KILL")
    c.wait(timeout=10)
    with pytest.raises(StateError) as e:
        c.exec(["true"])
    assert _cli_line(runtime, "exec", c.id, "true") == "exec failed: " + str(e.value)
    with pytest.raises(StateError) as e:
        c.kill()
    assert str(e.value) == _cli_line(runtime, "kill", c.id) == "container not running"


def test_global_options(api, runtime, tmp_path):
    log = tmp_path / "api.log"
    c, b = api()
    c = Container(c.id, root=runtime.root, log=log, log_format="json", debug=True)
    started(c, b)
    assert '"level":"debug"' in log.read_text() and c.id in log.read_text()
    c.delete(force=True)
    with pytest.raises(UsageError) as e:
        Container("x", log_format="xml")
    assert str(e.value) == "invalid log-format: xml"
    with pytest.raises(UsageError) as e:
        Container("x", log=tmp_path / "no" / "such.log")
    assert str(e.value).startswith("open log file %s: " % (tmp_path / "no" / "such.log"))
    c2, b2 = api()
    c2 = Container(c2.id, root=runtime.root, systemd_cgroup=True)
    with pytest.raises(ConfigError) as e:
        c2.create(b2)
    assert str(e.value) == _cli_line(runtime, "--systemd-cgroup", "create", "--bundle", b2.path, runtime.new_id())
    assert not os.path.exists(state_dir(c2))


def test_a_threaded_caller_is_refused_and_nothing_is_left(api):
    c, b = api()
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        with pytest.raises(InitError) as e:
            c.create(b)
    finally:
        stop.set()
        t.join()
    assert "must be single-threaded" in str(e.value)
    assert not os.path.exists(state_dir(c))


# ---------------------------------------------------------------------------------------------------
# import ociruntime stays cheap


def test_import_loads_the_api_when_named():
    code = ("import sys, ociruntime; before = sorted(m for m in sys.modules if m.startswith('ociruntime')); "
            "ociruntime.Container; ociruntime.Bundle; "
            "print(before, 'ociruntime.api' in sys.modules, 'ociruntime.bundle' in sys.modules, "
            "'Container' in dir(ociruntime))")
    r = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "['ociruntime'] True True True"
    with pytest.raises(AttributeError):
        ociruntime.NoSuchName  # noqa: B018


@pytest.mark.parametrize("where", ["before the fork", "after the fork"])
def test_a_failed_create_leaves_no_fd_in_the_caller(api, runtime, bundle, where):
    """The caller of the API lives on after a failed create: the fds create held for the child
    (its channel, the namespaces it joins, exec.fifo) are closed whichever step failed."""
    other = runtime.create(bundle(*LONG_RUNNING))  # a network namespace to join
    netns = f"/proc/{runtime.state(other)['pid']}/ns/net"
    c, b = api()
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "network"]
    b.config["linux"]["namespaces"].append({"type": "network", "path": netns})
    if where == "before the fork":
        b.config["linux"]["resources"] = {"memory": {"limit": 4096, "swap": 2048}}  # swap below the limit
    else:
        b.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}
    before = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(OCIError) as e:
        c.create(b)
    if where == "before the fork":
        assert isinstance(e.value, CgroupError) and ("memsw" in str(e.value) or "swap" in str(e.value)), e.value
    else:
        assert "error running createRuntime hook" in str(e.value), e.value
    assert sorted(os.listdir("/proc/self/fd")) == before
    assert not os.path.exists(state_dir(c))
    runtime.delete(other, force=True, check=True)
