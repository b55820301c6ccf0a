"""ociruntime.container.status.wait_gone: bounded, and a child of ours is reaped (its zombie left
behind would keep a pid namespace's init from going: the init waits for its tasks' zombies)."""
import os
import signal
import time

import pytest

from ociruntime.container.status import wait_gone


def _child(code):
    pid = os.fork()
    if pid == 0:
        code()
        os._exit(0)
    return pid


@pytest.mark.parametrize("delay", [0, 0.05])
def test_a_child_of_ours_is_reaped(delay):
    pid = _child(lambda: time.sleep(delay))
    time.sleep(delay / 2)
    wait_gone(pid, reap=True)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_a_child_that_dies_between_the_wait_and_the_look_is_reaped(monkeypatch):
    """The race: waitpid says "not yet", then /proc shows a zombie.  It used to return there,
    leaving the zombie (which a full-suite run met as an init that never went)."""
    from ociruntime.container import status
    pid = _child(lambda: None)
    while open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.001)
    real, calls = status.os.waitpid, []

    def waitpid(p, flags):
        calls.append(p)
        return (0, 0) if len(calls) == 1 else real(p, flags)
    monkeypatch.setattr(status.os, "waitpid", waitpid)
    wait_gone(pid, reap=True)
    monkeypatch.undo()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_bounded():
    pid = _child(lambda: time.sleep(30))
    try:
        t0 = time.monotonic()
        wait_gone(pid, timeout=0.2, reap=True)
        assert 0.2 <= time.monotonic() - t0 < 2
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
