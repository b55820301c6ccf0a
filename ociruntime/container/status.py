"""Container status, derived from the live process, and the allowed transitions in one place.

A container is ``stopped`` when its init is gone (or a zombie, or its pid now belongs to another
process: the start time in /proc/PID/stat is compared with the one recorded at create),
``created`` while ``exec.fifo`` exists, ``paused`` when its cgroup is frozen, else ``running``.
One whose create wrote only its record of what it made (statedir.py, made.json) is ``creating``
while that create still holds the container's lock, and ``stopped`` once it is gone: it can only
be deleted.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import read_file
from ociruntime.errors import StateError

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"


def proc_stat(pid):
    """(state letter, start time in clock ticks) of a process, or None if there is none."""
    try:
        data = read_file("/proc/%d/stat" % pid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def wait_gone(pid, timeout=2.0, reap=False):
    """Wait (at most ``timeout`` s) until ``pid`` is gone or a zombie; ``reap``: our child, reaped."""
    import time  # (an error path's: state, start and delete do not import it)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reap:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    return
            except ChildProcessError:
                reap = False  # not (or no longer) ours: watched through /proc
        st = proc_stat(pid)
        if st is None or st[0] in ("Z", "X") and not reap:
            return
        if st[0] not in ("Z", "X"):  # (a zombie of ours is reaped at once, on the next turn)
            time.sleep(0.002)


def init_alive(state):
    pid = state.get("pid") or 0
    if pid <= 0:
        return False
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return st[1] == state.get("start_time")


def waits_for_start(pid):
    """Whether the init is still this program, blocked in its open of exec.fifo (the kernel's
    wait for a fifo's other end): created, even when exec.fifo has gone from the state dir."""
    try:
        if read_file("/proc/%d/wchan" % pid) != b"wait_for_partner":
            return False
    except OSError:
        return False
    try:
        a, b = os.stat("/proc/%d/exe" % pid), os.stat("/proc/self/exe")
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def status_of(state, sd):
    if state.get("incomplete"):
        return CREATING if sd.held_elsewhere() else STOPPED
    if not init_alive(state):
        return STOPPED
    if sd.has_fifo() or waits_for_start(state["pid"]):
        return CREATED
    if state.get("cgroup"):
        from ociruntime.cgroupdirs import frozen  # (not the whole cgroups package)
        if frozen(state["cgroup"]["paths"]):
            return PAUSED
    return RUNNING


def check_start(cid, status):
    if status == CREATED:
        return
    if status == CREATING:
        raise StateError("cannot start a container that is still being created")
    if status == STOPPED:
        raise StateError("cannot start a container that has stopped")
    if status == PAUSED:
        raise StateError("cannot start a paused container")
    raise StateError("cannot start an already running container")


def check_kill(cid, status):
    if status == STOPPED:
        raise StateError("container not running")


def check_delete(cid, status, force):
    if status in (STOPPED, CREATED) or force:
        return
    raise StateError("cannot delete container %s that is not stopped: %s" % (cid, status))
