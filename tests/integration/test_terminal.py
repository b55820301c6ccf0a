"""process.terminal with --console-socket: the pty master goes to the caller over SCM_RIGHTS; without
one (`run` in the foreground, `exec -t`) the runtime relays the pty itself, as runc does."""

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from helpers import LONG_RUNNING, ConsoleSocket, RUNTIME_TIMEOUT, wait_exit


@pytest.fixture
def console(runtime, tmp_path_factory):
    # short path: sun_path holds 108 bytes
    cs = ConsoleSocket(tmp_path_factory.getbasetemp() / f"cs-{runtime.token}-{os.getpid()}-{id(runtime)}.sock")
    yield cs
    cs.close()


def terminal_bundle(bundle, *args):
    b = bundle(*args)
    b.config["process"]["terminal"] = True
    return b


def relay_argv(runtime, bundle, cmd, *args):
    """(argv, container id) of `run` of a terminal bundle running ARGS (cmd "run"), or of
    `exec -t` of ARGS into a container started for it (cmd "exec")."""
    if cmd == "run":
        cid = runtime.new_id()
        return ["run", "--bundle", os.fspath(terminal_bundle(bundle, *args)), cid], cid
    cid = runtime.create(bundle(*LONG_RUNNING))
    runtime.start(cid)
    return ["exec", "-t", cid, *args], cid


def test_console_socket_receives_pty(runtime, bundle, console):
    b = terminal_bundle(bundle, "sh", "-c", "tty; for fd in 0 1 2; do readlink /proc/self/fd/$fd; done;"
                                            "stat -c '%F %t' /dev/console; echo $TERM")
    cid = runtime.create(b, None, "--console-socket", console)
    pid = runtime.state(cid)["pid"]
    console.wait_master()
    runtime.start(cid)
    wait_exit(pid)
    out = console.output().replace("\r\n", "\n")
    assert out == ("/dev/pts/0\n" + "/dev/pts/0\n" * 3 + "character special file 88\n" + "xterm\n")


def test_console_size(runtime, bundle, console):
    b = terminal_bundle(bundle, "stty", "size")
    b.config["process"]["consoleSize"] = {"height": 24, "width": 80}
    cid = runtime.create(b, None, "--console-socket", console)
    runtime.start(cid)
    assert console.output(until="\n").replace("\r\n", "\n") == "24 80\n"


def test_console_input(runtime, bundle, console):
    b = terminal_bundle(bundle, "sh", "-c", "read line; echo got:$line")
    cid = runtime.create(b, None, "--console-socket", console)
    pid = runtime.state(cid)["pid"]
    runtime.start(cid)
    console.write("hello\n")
    wait_exit(pid)
    assert "got:hello" in console.output()


def test_run_detached_with_console(runtime, bundle, console):
    b = terminal_bundle(bundle, "sh", "-c", "tty; read x")
    cid = runtime.new_id()
    runtime.run("run", "-d", "--console-socket", console, "--bundle", b, cid, check=True)
    assert runtime.status(cid) == "running"
    assert "/dev/pts/0" in console.output(until="/dev/pts/0\r\n", timeout=5)
    console.write("\n")
    runtime.wait_status(cid, "stopped")


def test_terminal_without_console_socket_refused(runtime, bundle):
    r = runtime.run("create", "--bundle", terminal_bundle(bundle, "true"), runtime.new_id())
    runtime.refused(r, "cannot allocate tty")
    assert os.listdir(runtime.root) == []


def test_console_socket_without_terminal_refused(runtime, bundle, console):
    r = runtime.run("create", "--console-socket", console, "--bundle", bundle("true"), runtime.new_id())
    runtime.refused(r, "cannot use console socket")
    assert os.listdir(runtime.root) == []


def test_console_socket_missing_refused(runtime, bundle, tmp_path):
    r = runtime.run("create", "--console-socket", tmp_path / "nobody-listens.sock",
                    "--bundle", terminal_bundle(bundle, "true"), runtime.new_id())
    runtime.refused(r, "nobody-listens.sock")
    assert os.listdir(runtime.root) == []


# ---------------------------------------------------------------------------------------------------
# No --console-socket: the runtime relays the pty (runc's behaviour, measured with runc 1.1.5)

ROWS, COLS = 33, 101


def in_pty(runtime, *args, stdin=None, pipe_out=False, send=(), timeout=RUNTIME_TIMEOUT):
    """Run the runtime as the session leader of a new pty of ROWS x COLS (its controlling terminal,
    and its stdio unless `stdin` (bytes, then EOF) or `pipe_out` (stdout and stderr) make them pipes).
    `send`: (text, action) pairs: once `text` shows on the pty (or the stdout pipe), `action` (bytes)
    is typed on the pty, or called with the runtime's pid.  Returns (exit status, what the pty showed,
    what came through the stdout pipe, the pty's termios flags afterwards), newlines as they were."""
    argv = [runtime.bin, "--root", runtime.root, *(os.fspath(a) if isinstance(a, os.PathLike) else str(a)
                                                  for a in args)]
    r_in, w_in = os.pipe() if stdin is not None else (None, None)
    r_out, w_out = os.pipe() if pipe_out else (None, None)
    pid, master = pty.fork()
    if pid == 0:
        try:
            fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
            if r_in is not None:
                os.dup2(r_in, 0)
            if w_out is not None:
                os.dup2(w_out, 1)
                os.dup2(w_out, 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    for fd in (r_in, w_out):
        if fd is not None:
            os.close(fd)
    if w_in is not None:
        os.write(w_in, stdin)
        os.close(w_in)
    data = {master: b"", r_out: b""}
    open_fds = [fd for fd in (master, r_out) if fd is not None]
    pending = list(send)
    status = None
    deadline = time.monotonic() + timeout
    try:
        while (open_fds or status is None) and time.monotonic() < deadline:
            ready, _, _ = select.select(open_fds, [], [], 0.1)
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the slave side is closed
                    chunk = b""
                if not chunk:
                    open_fds.remove(fd)
                data[fd] += chunk
            seen = (data[master] + data[r_out]).decode(errors="replace")
            while pending and pending[0][0] in seen:
                action = pending.pop(0)[1]
                if callable(action):
                    action(pid)
                else:
                    os.write(master, action)
            if status is None:
                wpid, st = os.waitpid(pid, os.WNOHANG)
                if wpid:
                    status = os.waitstatus_to_exitcode(st)
                    deadline = min(deadline, time.monotonic() + 1)  # then read what is left
        if status is None:
            os.kill(pid, signal.SIGKILL)
            wait_exit(pid)
            raise AssertionError(f"{argv} still running after {timeout}s; pty: {data[master]!r}, "
                                 f"pipe: {data[r_out]!r}")
        flags = termios.tcgetattr(master)
    finally:
        os.close(master)
        if r_out is not None:
            os.close(r_out)
    return status, data[master].decode(errors="replace"), data[r_out].decode(errors="replace"), flags


def cooked(flags):
    """The pty's line discipline is back in the mode it started in (the runtime restored it)."""
    return bool(flags[3] & termios.ICANON and flags[3] & termios.ECHO and flags[0] & termios.ICRNL)


SCRIPT = "tty; stty size; read line; echo got:$line; exit 3"


def test_run_relays_terminal(runtime, bundle):
    b = terminal_bundle(bundle, "sh", "-c", SCRIPT)
    status, out, _, flags = in_pty(runtime, "run", "--bundle", b, runtime.new_id(),
                                   send=[(f"{ROWS} {COLS}", b"hello\n")])
    assert status == 3, out
    lines = out.replace("\r\n", "\n").splitlines()
    # the pty is the container's own (/dev/pts/0 of its devpts), sized as the outer terminal; the
    # outer one is raw while the container runs, so what was typed is echoed once, by the inner pty
    assert lines == ["/dev/pts/0", f"{ROWS} {COLS}", "hello", "got:hello"], out
    assert cooked(flags)


def test_exec_relays_terminal(runtime, bundle):
    cid = runtime.create(bundle(*LONG_RUNNING))
    runtime.start(cid)
    status, out, _, flags = in_pty(runtime, "exec", "-t", cid, "sh", "-c", SCRIPT,
                                   send=[(f"{ROWS} {COLS}", b"hello\n")])
    assert status == 3, out
    lines = out.replace("\r\n", "\n").splitlines()
    assert lines[0].startswith("/dev/pts/") and lines[1:] == [f"{ROWS} {COLS}", "hello", "got:hello"], out
    assert cooked(flags)
    assert runtime.status(cid) == "running"


@pytest.mark.parametrize("cmd", ["run", "exec"])
def test_terminal_relay_with_piped_stdin(runtime, bundle, cmd):
    """stdin a pipe: its data reaches the pty; its EOF does not (runc does not close the pty): the
    second read waits for its timeout instead of seeing EOF at once."""
    script = "tty; read line; echo got:$line; read -t 2 more; echo more=$more; exit 4"
    args, _ = relay_argv(runtime, bundle, cmd, "sh", "-c", script)
    t0 = time.monotonic()
    status, out, _, flags = in_pty(runtime, *args, stdin=b"hello\n")
    assert status == 4, out
    assert time.monotonic() - t0 >= 1.8
    lines = out.replace("\r\n", "\n").splitlines()
    lines.remove("hello")  # the inner pty's echo of the input, whenever it arrived
    assert lines[0].startswith("/dev/pts/") and lines[1:] == ["got:hello", "more="], out
    assert cooked(flags)


@pytest.mark.parametrize("cmd", ["run", "exec"])
def test_terminal_relay_all_piped(runtime, bundle, cmd):
    """stdin, stdout and stderr pipes: the controlling terminal (/dev/tty) gives the size; the output
    comes through stdout, all of it even when the process exits at once (the pty is drained)."""
    script = "stty size; read line; echo got:$line; seq 1 20000; exit 5"
    args, _ = relay_argv(runtime, bundle, cmd, "sh", "-c", script)
    status, on_pty, out, flags = in_pty(runtime, *args, stdin=b"hello\n", pipe_out=True)
    assert status == 5, out[-500:]
    assert on_pty == ""
    lines = out.replace("\r\n", "\n").splitlines()
    lines.remove("hello")  # the inner pty's echo of the input, whenever it arrived
    assert lines == [f"{ROWS} {COLS}", "got:hello"] + [str(i) for i in range(1, 20001)]
    assert cooked(flags)


def test_run_terminal_relay_forwards_signals(runtime, bundle):
    b = terminal_bundle(bundle, "sh", "-c", "trap 'echo term; exit 42' TERM; echo ready; sleep 1000 & wait")
    status, out, _, flags = in_pty(runtime, "run", "--bundle", b, runtime.new_id(),
                                   send=[("ready", lambda pid: os.kill(pid, signal.SIGTERM))])
    assert status == 42, out
    assert "term" in out.splitlines()[-1] and cooked(flags)


@pytest.mark.parametrize("cmd", ["run", "exec"])
def test_terminal_relay_needs_a_terminal(runtime, bundle, cmd, tmp_path):
    """No tty on stdio and no controlling terminal: refused before anything is made (runc: "open
    /dev/tty: no such device or address"; exit 1 for run, 255 for exec)."""
    args, cid = relay_argv(runtime, bundle, cmd, "true")
    p = subprocess.run([runtime.bin, "--root", runtime.root, *args], stdin=subprocess.DEVNULL,
                       capture_output=True, start_new_session=True, timeout=RUNTIME_TIMEOUT)
    assert p.returncode == (1 if cmd == "run" else 255)
    assert b"open /dev/tty: no such device or address" in p.stderr
    assert sorted(os.listdir(runtime.root)) == ([] if cmd == "run" else [cid])


OWNER = "stat -c %u:%g $(tty); echo reopened > $(tty) && echo ok; exit 6"


@pytest.mark.parametrize("how", ["socket", "run", "exec"])
def test_console_belongs_to_process_user(runtime, bundle, console, how):
    """With user.uid 1000 the pty slave is the process's (its group stays tty, 5), so the process
    can reopen its own terminal: for create with a console socket, run and exec -t (runc)."""
    user = {"uid": 1000, "gid": 1000}
    if how == "socket":
        b = terminal_bundle(bundle, "sh", "-c", OWNER)
        b.config["process"]["user"] = user
        cid = runtime.create(b, None, "--console-socket", console)
        pid = runtime.state(cid)["pid"]
        runtime.start(cid)
        wait_exit(pid)
        out = console.output()
    elif how == "run":
        b = terminal_bundle(bundle, "sh", "-c", OWNER)
        b.config["process"]["user"] = user
        status, out, _, _ = in_pty(runtime, "run", "--bundle", b, runtime.new_id())
        assert status == 6, out
    else:
        cid = runtime.create(bundle(*LONG_RUNNING))
        runtime.start(cid)
        status, out, _, _ = in_pty(runtime, "exec", "-t", "--user", "1000:1000", cid, "sh", "-c", OWNER)
        assert status == 6, out
    assert out.replace("\r\n", "\n").splitlines() == ["1000:5", "reopened", "ok"], out


def test_console_on_readonly_dev(runtime, bundle, console):
    """A read-only /dev with a terminal: /dev/console is made while /dev is still writable, and the
    pty bound on it (runc)."""
    b = terminal_bundle(bundle, "sh", "-c", "stat -c '%F %t' /dev/console; touch /dev/x || echo ro")
    next(m for m in b.config["mounts"] if m["destination"] == "/dev")["options"].append("ro")
    cid = runtime.create(b, None, "--console-socket", console)
    pid = runtime.state(cid)["pid"]
    runtime.start(cid)
    wait_exit(pid)
    lines = console.output().replace("\r\n", "\n").splitlines()
    assert lines[0] == "character special file 88" and lines[-1] == "ro", lines
