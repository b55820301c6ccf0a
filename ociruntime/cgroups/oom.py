"""OOM notifications for ``events``: a pollable object that says how many OOM kills happened.

v1: an eventfd registered on memory.oom_control through cgroup.event_control (as runc); it also
fires when the cgroup is removed.  v2: memory.events, which the kernel marks changed (POLLPRI) on
every update; the ``oom_kill`` counter is compared.  ``fileno()`` is for poll(); ``events`` is
the poll mask to wait for.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)
import select

from ociruntime import exists
from ociruntime.errors import CgroupError


class OomWatch:
    def __init__(self, mgr):
        self.fd, self.closed_fds = -1, []
        if mgr.v2:
            self.path = mgr.dir("unified") + "/memory.events"
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            self.events = select.POLLPRI | select.POLLERR
            self.count = self._v2_count()
            return
        d = mgr.v1dir("memory")
        if d is None:
            raise CgroupError("events: the container has no memory cgroup")
        self.path = d
        self.fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        ofd = os.open(d + "/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        try:
            with open(d + "/cgroup.event_control", "w") as f:
                f.write("%d %d" % (self.fd, ofd))
        except OSError as e:
            os.close(self.fd)
            raise CgroupError("register OOM notification on %s: %s" % (d, e.strerror)) from None
        finally:
            os.close(ofd)
        self.events = select.POLLIN
        self.v1_kills = self._v1_kills()

    def _v2_count(self):
        os.lseek(self.fd, 0, 0)  # SEEK_SET
        for line in os.read(self.fd, 4096).decode().splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill":
                return int(v)
        return 0

    def _v1_kills(self):
        try:
            with open(self.path + "/memory.oom_control") as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if k == "oom_kill":
                        return int(v)
        except OSError:
            pass
        return 0

    def fileno(self):
        return self.fd

    def check(self):
        """How many OOM events since the last call (0 when the wake-up was something else)."""
        if self.fd < 0:
            return 0
        try:
            if self.path.endswith("memory.events"):
                now = self._v2_count()
                n, self.count = max(0, now - self.count), now
                return n
            try:
                os.read(self.fd, 8)
            except BlockingIOError:
                return 0
            if not exists(self.path + "/cgroup.event_control"):
                return 0  # the cgroup went away
            kills = self._v1_kills()
            n = max(1, kills - self.v1_kills)
            self.v1_kills = kills
            return n
        except OSError:
            return 0

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
