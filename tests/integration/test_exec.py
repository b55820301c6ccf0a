"""exec: a new process in a running container, as clients run it (runc's flags, --process FILE,
--detach with a pid file, a console socket); what the process sees and what is left on the host."""

import json
import os
import signal
import subprocess
import time

import pytest

from helpers import (LONG_RUNNING, TERM_REPORTER, ConsoleSocket, RUNTIME_TIMEOUT, assert_forwards_term, pid_alive,
                     proc_status, wait_exit)

NS_KINDS = ("mnt", "uts", "ipc", "net", "pid", "cgroup", "user")


def running(runtime, b):
    """Create and start ``b``; returns (id, init pid)."""
    cid = runtime.create(b)
    runtime.start(cid)
    return cid, runtime.state(cid)["pid"]


def kill_all(runtime, cid, init, *pids):
    """SIGKILL the container and reap what exec started: detached exec'd processes are our
    children (we are a subreaper, as the shim and conmon are), and the container's PID 1 cannot
    finish exiting until every process of its pid namespace is reaped."""
    runtime.kill(cid, "KILL", check=True)
    for pid in pids:
        wait_exit(pid)
    wait_exit(init)


def exec_out(runtime, cid, *argv, flags=(), rc=0):
    r = runtime.run("exec", *flags, cid, *argv)
    assert r.rc == rc, f"exec exited {r.rc}\n stdout: {r.out!r}\n stderr: {r.err!r}"
    return r.out


def status_fields(text, *names):
    fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
    return [fields[n].strip() for n in names]


def cgroup_lines(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return sorted(f.read().split())


def test_exec_joins_every_namespace_and_cgroup(runtime, bundle):
    b = bundle(*LONG_RUNNING)
    b.config["linux"]["namespaces"].append({"type": "cgroup"})
    cid, init = running(runtime, b)
    out = exec_out(runtime, cid, "sh", "-c", "for k in " + " ".join(NS_KINDS) + "; do readlink /proc/self/ns/$k;"
                   " done; echo $$; hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /proc/self/cgroup")
    lines = out.splitlines()
    for kind, link in zip(NS_KINDS, lines):
        assert link == os.readlink(f"/proc/{init}/ns/{kind}"), kind
    assert int(lines[len(NS_KINDS)]) > 1                      # a pid of the container's pid namespace
    assert lines[len(NS_KINDS) + 1] == "runc"
    assert "sleep 1000 & wait" in lines[len(NS_KINDS) + 2]    # PID 1 there is the container's init
    # through the container's cgroup namespace, whose root is the container's cgroup: in it
    cgroups = lines[len(NS_KINDS) + 3:]
    assert len(cgroups) == len(cgroup_lines(init)) and all(c.endswith(":/") for c in cgroups), cgroups


def test_exec_cgroup_seen_from_host(runtime, bundle, tmp_path):
    cid, init = running(runtime, bundle(*LONG_RUNNING))
    pidfile = tmp_path / "exec.pid"
    runtime.run("exec", "-d", "--pid-file", pidfile, cid, "sleep", "100", check=True)
    pid = int(pidfile.read_text())
    assert cgroup_lines(pid) == cgroup_lines(init)
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")
    assert proc_status(pid)["NSpid"].split()[0] == str(pid)    # host pid first, then the container's
    kill_all(runtime, cid, init, pid)


def test_exec_gets_the_containers_process_spec(runtime, bundle):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    out = exec_out(runtime, cid, "sh", "-c", "cat /proc/self/status; echo ==; ulimit -n; pwd; env")
    status, rest = out.split("==\n")
    uid, gid, groups, eff, prm, bnd, nnp = status_fields(status, "Uid", "Gid", "Groups", "CapEff", "CapPrm",
                                                         "CapBnd", "NoNewPrivs")
    assert uid.split() == ["0"] * 4 and gid.split() == ["0"] * 4 and groups == ""
    # CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE: the config's, not the runtime's
    assert eff == prm == bnd == "0000000020000420"
    assert nnp == "1"
    lines = rest.splitlines()
    assert lines[0] == "1024"                 # the config's RLIMIT_NOFILE
    assert lines[1] == "/"
    env = set(lines[2:])
    assert {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm",
            "HOME=/root"} <= env


def test_exec_flags_override_the_process(runtime, bundle):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    out = exec_out(runtime, cid, "sh", "-c", "id; pwd; echo $FOO $TERM; grep NoNewPrivs /proc/self/status",
                   flags=("-u", "1000:1001", "-g", "10", "-g", "20", "--cwd", "/tmp",
                          "-e", "FOO=bar", "-e", "TERM=dumb", "--no-new-privs=false"))
    lines = out.splitlines()
    assert lines[0] == "uid=1000 gid=1001 groups=10,20"
    assert lines[1] == "/tmp"
    assert lines[2] == "bar dumb"             # -e replaces the container's TERM
    assert lines[3].split() == ["NoNewPrivs:", "0"]


def test_exec_cap_adds_capability(runtime, bundle):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    out = exec_out(runtime, cid, "grep", "Cap", "/proc/self/status",
                   flags=("--cap", "CAP_SYS_ADMIN", "--cap", "CAP_CHOWN"))
    eff, bnd = status_fields(out, "CapEff", "CapBnd")
    want = 0x20000420 | (1 << 21) | (1 << 0)
    assert int(eff, 16) == want and int(bnd, 16) == want


def test_exec_exit_status(runtime, bundle):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    assert runtime.run("exec", cid, "sh", "-c", "echo out; echo err >&2; exit 7").rc == 7
    r = runtime.run("exec", cid, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (r.out, r.err) == ("out\n", "err\n")
    # killed by a signal: 128 + n, as runc
    assert runtime.run("exec", cid, "sh", "-c", "kill -KILL $$").rc == 128 + 9
    assert runtime.run("exec", cid, "sh", "-c", "kill -TERM $$").rc == 128 + 15


def test_exec_forwards_signals(runtime, bundle):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    assert_forwards_term(runtime, "exec", cid, *TERM_REPORTER)


def test_exec_detach_writes_pid_file(runtime, bundle, tmp_path):
    cid, init = running(runtime, bundle(*LONG_RUNNING))
    pidfile = tmp_path / "exec.pid"
    t0 = time.monotonic()
    r = runtime.run("exec", "--detach", "--pid-file", pidfile, cid, "sleep", "100")
    assert r.rc == 0 and r.out == "" and r.err == ""
    assert time.monotonic() - t0 < 10                # it did not wait for the process
    text = pidfile.read_text()
    assert text.isdigit(), repr(text)                 # decimal, no newline (the containerd shim's rule)
    pid = int(text)
    assert pid_alive(pid)
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x00100\x00"          # already exec'd when the command returned
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []   # no temporary file left
    kill_all(runtime, cid, init, pid)                  # it dies with its container
    runtime.delete(cid, check=True)


@pytest.mark.parametrize("detach", [False, True])
def test_exec_missing_binary(runtime, bundle, tmp_path, detach):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    pidfile = tmp_path / "exec.pid"
    r = runtime.run("exec", *(["-d"] if detach else []), "--pid-file", pidfile, cid, "nosuch-binary")
    assert r.rc == 255
    runtime.refused(r, 'exec failed: unable to start container process: exec: "nosuch-binary": '
                       'executable file not found in $PATH')
    assert not pidfile.exists()
    assert runtime.status(cid) == "running"


@pytest.mark.ociruntime_only
def test_exec_error_message_format(runtime, bundle, tmp_path):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    log = tmp_path / "log.json"
    r = runtime.run("--log", log, "--log-format", "json", "exec", "-d", cid, "nosuch-binary")
    msg = 'exec failed: unable to start container process: exec: "nosuch-binary": executable file not found in $PATH'
    assert r.rc == 255
    assert r.err == "ociruntime: " + msg + "\n"
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and entry["msg"] == msg and entry["time"]


def test_exec_not_executable(runtime, bundle):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    r = runtime.run("exec", cid, "/etc/passwd")
    assert r.rc == 255
    runtime.refused(r, 'exec failed: unable to start container process: exec: "/etc/passwd": permission denied')
    assert runtime.status(cid) == "running"


def test_exec_process_file(runtime, bundle, tmp_path):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    proc = {"terminal": False, "user": {"uid": 65534, "gid": 65534, "additionalGids": [5]},
            "args": ["sh", "-c", "id; pwd; echo $ONLY; grep -E 'CapBnd|NoNewPrivs' /proc/self/status; ulimit -n"],
            "env": ["PATH=/bin", "ONLY=this"], "cwd": "/tmp", "noNewPrivileges": False,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}],
            "capabilities": {"bounding": ["CAP_KILL"]}}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(proc))
    # the process file replaces the container's process; other process flags are ignored (runc)
    lines = exec_out(runtime, cid, flags=("--process", path, "--cwd", "/")).splitlines()
    assert lines[0] == "uid=65534(nobody) gid=65534(nobody) groups=5"
    assert lines[1] == "/tmp"
    assert lines[2] == "this"
    assert lines[3].split() == ["CapBnd:", "0000000000000020"]
    assert lines[4].split() == ["NoNewPrivs:", "0"]
    assert lines[5] == "256"


def test_exec_process_file_defaults_from_container(runtime, bundle, tmp_path):
    """A process file without capabilities or rlimits gets the container's, not the runtime's."""
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    path = tmp_path / "process.json"
    # (no env: runc then gives no PATH either, hence the path)
    path.write_text(json.dumps({"args": ["/bin/sh", "-c", "grep CapBnd /proc/self/status; ulimit -n"], "cwd": "/"}))
    lines = exec_out(runtime, cid, flags=("-p", path)).splitlines()
    assert lines[0].split() == ["CapBnd:", "0000000020000420"]
    if runtime.name == "ociruntime":  # runc 1.1.5 leaves the runtime's own rlimits
        assert lines[1] == "1024"


def test_exec_in_created_container(runtime, bundle):
    cid = runtime.create(bundle(*LONG_RUNNING))
    assert exec_out(runtime, cid, "echo", "hello") == "hello\n"
    assert runtime.status(cid) == "created"


def test_exec_stopped_container_refused(runtime, bundle):
    cid, init = running(runtime, bundle(*LONG_RUNNING))
    runtime.kill(cid, "KILL", check=True)
    wait_exit(init)
    r = runtime.run("exec", cid, "true")
    assert r.rc == 255
    runtime.refused(r, "exec failed: cannot exec in a stopped container")
    assert runtime.status(cid) == "stopped"


def test_exec_unknown_container(runtime):
    cid = runtime.new_id()
    r = runtime.run("exec", cid, "true")
    assert r.rc == 255
    runtime.refused(r, "exec failed: container does not exist")
    assert not os.path.exists(os.path.join(runtime.root, cid))


def test_exec_paused_container_refused(runtime, bundle):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    runtime.run("pause", cid, check=True)
    r = runtime.run("exec", cid, "true")
    assert r.rc == 255
    runtime.refused(r, "exec failed: cannot exec in a paused container (use --ignore-paused to override)")
    assert runtime.status(cid) == "paused"
    runtime.run("resume", cid, check=True)


@pytest.mark.ociruntime_only
def test_exec_ignore_paused(runtime, bundle, tmp_path):
    """The process joins the frozen cgroup and runs once resumed (runc 1.1.5 hangs here instead)."""
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    runtime.run("pause", cid, check=True)
    pidfile = tmp_path / "exec.pid"
    runtime.run("exec", "-d", "--ignore-paused", "--pid-file", pidfile, cid, "sh", "-c", "exit 5", check=True)
    pid = int(pidfile.read_text())
    time.sleep(0.3)
    assert pid_alive(pid), "the process ran in a paused container"
    assert runtime.status(cid) == "paused"
    runtime.run("resume", cid, check=True)
    status = wait_exit(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 5


@pytest.fixture
def console(runtime, tmp_path_factory):
    cs = ConsoleSocket(tmp_path_factory.getbasetemp() / f"cx-{runtime.token}-{os.getpid()}-{id(runtime)}.sock")
    yield cs
    cs.close()


@pytest.mark.ociruntime_only  # runc 1.1.5 takes a console socket only with --detach
def test_exec_tty_with_console_socket(runtime, bundle, console):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    r = runtime.run("exec", "-t", "--console-socket", console, cid, "sh", "-c",
                    "tty; readlink /proc/self/fd/0; readlink /proc/self/fd/2")
    assert r.rc == 0, r.err
    out = console.output().replace("\r\n", "\n").splitlines()
    assert out[0].startswith("/dev/pts/") and out[1] == out[2] == out[0]


def test_exec_tty_detached(runtime, bundle, console, tmp_path):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    pidfile = tmp_path / "exec.pid"
    runtime.run("exec", "-d", "-t", "--console-socket", console, "--pid-file", pidfile, cid,
                "sh", "-c", "read line; echo got:$line", check=True)
    console.write("hello\n")
    assert "got:hello" in console.output(until="got:hello")
    wait_exit(int(pidfile.read_text()))


def test_exec_preserve_fds(runtime, bundle, tmp_path):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    data = tmp_path / "data"
    data.write_text("through fd 3\n")

    def run(*extra):
        # the caller leaves fd 3 open (not close-on-exec), as conmon does with --preserve-fds
        return subprocess.run(["sh", "-c", 'exec "$@" 3<"$0"', data, runtime.bin, "--root", runtime.root, "exec",
                               *extra, cid, "sh", "-c", "for fd in 3 4 5 6 7 8 9 10 11 12; do "
                               "[ -e /proc/$$/fd/$fd ] && echo -n \"$fd \"; done; cat <&3"],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=RUNTIME_TIMEOUT)
    kept = run("--preserve-fds", "1")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.decode() == "3 through fd 3\n"
    # not preserved: an fd the caller left open does not reach the process
    leaked = run()
    assert leaked.returncode != 0
    assert leaked.stdout.decode() == ""


def test_exec_in_user_namespace(runtime, bundle):
    b = bundle(*LONG_RUNNING, public=True)
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cid, init = running(runtime, b)
    lines = exec_out(runtime, cid, "sh", "-c", "readlink /proc/self/ns/user; cat /proc/self/uid_map; id -u",
                     flags=("-u", "1000:1000")).splitlines()
    assert lines[0] == os.readlink(f"/proc/{init}/ns/user")
    assert lines[1].split() == ["0", "100000", "65536"]
    assert lines[2] == "1000"


def test_exec_sub_cgroup(runtime, bundle, tmp_path):
    cid, init = running(runtime, bundle(*LONG_RUNNING))
    own = dict(line.split(":", 2)[1:] for line in open(f"/proc/{init}/cgroup").read().split())
    if "pids" in own:
        ctrl, d = "pids", f"/sys/fs/cgroup/pids{own['pids']}"
    else:
        ctrl, d = "", f"/sys/fs/cgroup{own['']}"
    sub = os.path.join(d, "sub")
    os.mkdir(sub)
    try:
        pidfile = tmp_path / "exec.pid"
        spec = f"{ctrl}:sub" if ctrl else "sub"
        runtime.run("exec", "-d", "--cgroup", spec, "--pid-file", pidfile, cid, "sleep", "100", check=True)
        pid = int(pidfile.read_text())
        with open(os.path.join(sub, "cgroup.procs")) as f:
            assert f.read().split() == [str(pid)]
        os.kill(pid, signal.SIGKILL)
        wait_exit(pid)
        r = runtime.run("exec", "--cgroup", f"{ctrl}:nosuch" if ctrl else "nosuch", cid, "true")
        assert r.rc == 255
        # (runc: "error adding pid N to cgroups: failed to write N: openat2 DIR/nosuch/cgroup.procs")
        runtime.refused(r, "exec failed: unable to start container process: ", f"{d}/nosuch/",
                        ours=("join cgroup: ", "No such file or directory"))
        assert not os.path.exists(os.path.join(d, "nosuch"))
        assert runtime.status(cid) == "running"
    finally:
        os.rmdir(sub)


def test_exec_unknown_capability_is_a_warning(runtime, bundle):
    """As at create (and as runc): an unknown --cap is a warning; the process runs without it."""
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    r = runtime.run("exec", "--cap", "CAP_NOSUCH", cid, "true")
    assert r.rc == 0, r.err
    assert "ignoring unknown or unavailable capabilities: [CAP_NOSUCH]" in r.err
    assert runtime.status(cid) == "running"


@pytest.mark.parametrize("argv,message", [
    ((), "process args cannot be empty"),
    (("-u", "abc", "true"), 'parsing abc as int for uid failed'),
    (("--cwd", "rel", "true"), "Cwd must be an absolute path"),
    (("-t", "-d", "true"), "cannot allocate tty if"),
    (("--console-socket", "/nonexistent.sock", "true"), "cannot use console socket if"),
    (("--cgroup", "a", "--cgroup", "b", "true"), "invalid --cgroup argument"),
])
def test_exec_bad_input(runtime, bundle, argv, message):
    cid, _ = running(runtime, bundle(*LONG_RUNNING))
    r = runtime.run("exec", *argv[:-1], cid, *argv[-1:]) if argv else runtime.run("exec", cid)
    line = runtime.refused(r, message)
    if runtime.name == "ociruntime":
        assert line.startswith("ociruntime: exec failed: ")
    assert runtime.status(cid) == "running"


def test_exec_env_overrides_and_empty_home(runtime, bundle):
    """-e K=V replaces the container's K in place (one entry, the last value); HOME= is the home
    of the process's user, as runc."""
    b = bundle(*LONG_RUNNING)
    b.config["process"]["env"] = ["A=1", "PATH=/bin:/usr/bin", "B=2"]
    cid, init = running(runtime, b)
    out = exec_out(runtime, cid, "env", flags=("-e", "A=9", "-e", "HOME=", "-u", "65534"))
    assert out.splitlines() == ["A=9", "PATH=/bin:/usr/bin", "B=2", "HOME=/nonexistent"]
    kill_all(runtime, cid, init)


def test_exec_format_error_is_one_line(runtime, bundle):
    b = bundle(*LONG_RUNNING)
    bad = b.copy_rootfs() / "bin" / "bad"
    bad.write_bytes(b"\x7fELF not really")
    bad.chmod(0o755)
    cid, init = running(runtime, b)
    r = runtime.run("exec", cid, "/bin/bad")
    assert r.rc != 0
    (line,) = r.err.splitlines()
    assert "/bin/bad" in line and "exec format error" in line.lower()
    assert runtime.status(cid) == "running"
    kill_all(runtime, cid, init)


@pytest.mark.needs_runc
def test_exec_matches_runc(runtime, runc, bundle):
    """Same process as runc's exec gives: ids, caps, limits, env, cwd, exit status."""
    script = "id; cat /proc/self/status | grep -E '^(Cap|NoNewPrivs|Groups)'; ulimit -n; env | sort; pwd; exit 3"
    outs = []
    for rt in (runtime, runc):
        cid = rt.create(bundle(*LONG_RUNNING), None)
        rt.start(cid)
        r = rt.run("exec", "-u", "1000:1000", "-g", "7", "--cap", "CAP_NET_RAW", "-e", "A=b", "--cwd", "/tmp",
                   cid, "sh", "-c", script)
        outs.append((r.rc, r.out))
    assert outs[0] == outs[1]
