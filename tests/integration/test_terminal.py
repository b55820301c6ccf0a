"""process.terminal with --console-socket: the pty master goes to the caller over SCM_RIGHTS."""

import os

import pytest

from helpers import ConsoleSocket, wait_exit


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
    assert r.rc != 0
    assert os.listdir(runtime.root) == []


def test_console_socket_without_terminal_refused(runtime, bundle, console):
    r = runtime.run("create", "--console-socket", console, "--bundle", bundle("true"), runtime.new_id())
    assert r.rc != 0
    assert os.listdir(runtime.root) == []


def test_console_socket_missing_refused(runtime, bundle, tmp_path):
    r = runtime.run("create", "--console-socket", tmp_path / "nobody-listens.sock",
                    "--bundle", terminal_bundle(bundle, "true"), runtime.new_id())
    assert r.rc != 0
    assert os.listdir(runtime.root) == []
