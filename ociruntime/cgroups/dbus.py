"""A connection to systemd's D-Bus API (org.freedesktop.systemd1), for the systemd cgroup driver.

The client is jeepney (pure Python, no event loop, no compiled part; the "deps:" commit that added
it has the measurement that chose it), imported only here, only with --systemd-cgroup.  jeepney
builds and parses the messages, over a blocking socket of this module's.  As root the manager is
reached on the system bus, else (no bus daemon) on its private socket /run/systemd/private, as
go-systemd (runc's) does; rootless, the user's manager on the user's bus
($DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus).  Jobs (a unit started or stopped) are
waited for through the manager's JobRemoved signal.
"""
import os
import socket
import time
from collections import deque

from jeepney import DBusAddress, HeaderFields, MessageType, Parser, new_method_call
from jeepney.auth import BEGIN, Authenticator
from jeepney.bus_messages import MatchRule, message_bus

from ociruntime.errors import CgroupError

MANAGER = DBusAddress("/org/freedesktop/systemd1", bus_name="org.freedesktop.systemd1",
                      interface="org.freedesktop.systemd1.Manager")
PROPS = DBusAddress(MANAGER.object_path, bus_name=MANAGER.bus_name, interface="org.freedesktop.DBus.Properties")
TIMEOUT = 60.0  # a job of systemd's (seconds): a slow machine (the tests' VM) can take several


class DBusError(CgroupError):
    """A D-Bus error reply; ``name`` is its error name (org.freedesktop.systemd1.NoSuchUnit...)."""

    def __init__(self, text, name=""):
        super().__init__(text)
        self.name = name


def _addresses(user):
    if user:
        env = os.environ.get("DBUS_SESSION_BUS_ADDRESS", "")
        paths = [p[len("unix:path="):].split(",")[0] for p in env.split(";") if p.startswith("unix:path=")]
        run = os.environ.get("XDG_RUNTIME_DIR") or "/run/user/%d" % os.geteuid()
        return [(p, True) for p in paths] + [(run + "/bus", True)]
    return [("/run/dbus/system_bus_socket", True), ("/run/systemd/private", False)]


def _connect(path):
    """A unix socket to ``path``, authenticated (SASL EXTERNAL: the caller's uid)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(TIMEOUT)
        sock.connect(path)
        auth = Authenticator()
        for data in auth:
            sock.sendall(data)
            reply = sock.recv(1024)
            if not reply:
                raise ConnectionError("closed during authentication")
            auth.feed(reply)
        sock.sendall(BEGIN)
    except BaseException:
        sock.close()
        raise
    return sock


class Systemd:
    """The manager (the system's, or with ``user`` the caller's own).  A blocking connection of
    its own over jeepney's messages: replies are matched by serial, and the signals that come
    meanwhile (JobRemoved) are kept for _wait_job."""

    def __init__(self, user=False):
        self.user = user
        errors = []
        for path, is_bus in _addresses(user):
            try:
                self.sock = _connect(path)
            except Exception as e:  # OSError, jeepney's AuthenticationError, a timeout
                errors.append("%s: %s" % (path, getattr(e, "strerror", None) or e))
                continue
            self.bus = is_bus
            break
        else:
            raise CgroupError("systemd cgroup driver: cannot connect to the %s manager over D-Bus (%s)"
                              % ("user's systemd" if user else "systemd", "; ".join(errors)))
        self.parser, self.serial, self.signals = Parser(), 0, deque()
        self._watching = False
        if self.bus:
            self._call(message_bus.Hello())

    def close(self):
        self.sock.close()

    def _receive(self, deadline):
        while True:
            msg = self.parser.get_next_message()
            if msg is not None:
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError from None
            if not data:
                raise ConnectionError("the connection was closed")
            self.parser.add_data(data)

    def _call(self, msg, timeout=TIMEOUT):
        what = msg.header.fields.get(HeaderFields.member)
        self.serial += 1
        deadline = time.monotonic() + timeout
        try:
            self.sock.sendall(msg.serialise(serial=self.serial))
            while True:
                reply = self._receive(deadline)
                if reply.header.message_type == MessageType.signal:
                    self.signals.append(reply)
                elif reply.header.fields.get(HeaderFields.reply_serial) == self.serial:
                    break
        except TimeoutError:
            raise CgroupError("systemd: %s: no reply in %d s" % (what, timeout)) from None
        except OSError as e:
            raise CgroupError("systemd: %s: %s" % (what, e.strerror or e)) from None
        if reply.header.message_type == MessageType.error:
            name = reply.header.fields.get(HeaderFields.error_name, "")
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else name
            raise DBusError(text, name)
        return reply.body

    def manager(self, method, signature=None, *args):
        return self._call(new_method_call(MANAGER, method, signature, args))

    def _watch_jobs(self):
        """Receive JobRemoved from here on: a bus delivers signals only to who asked (AddMatch) and
        systemd sends them only to subscribers; a direct connection (the private socket) is
        subscribed from the start."""
        if self._watching or not self.bus:
            return
        self._watching = True
        self._call(message_bus.AddMatch(MatchRule(type="signal", interface=MANAGER.interface,
                                                  member="JobRemoved", path=MANAGER.object_path)))
        try:
            self.manager("Subscribe")
        except DBusError as e:
            if not e.name.endswith("AlreadySubscribed"):
                raise

    def _wait_job(self, job, what):
        """The result of job ``job`` ("done", "failed", ...), from its JobRemoved signal."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            while self.signals:
                sig = self.signals.popleft()
                if sig.header.fields.get(HeaderFields.member) == "JobRemoved" and sig.body[1] == job:
                    return sig.body[3]
            try:
                msg = self._receive(deadline)
            except TimeoutError:
                raise CgroupError("systemd: %s: job %s did not finish in %d s" % (what, job, TIMEOUT)) from None
            except OSError as e:
                raise CgroupError("systemd: %s: %s" % (what, e.strerror or e)) from None
            if msg.header.message_type == MessageType.signal:
                self.signals.append(msg)

    def start_transient(self, unit, props):
        """StartTransientUnit(unit, "replace", props) and wait for its job; ``props`` [(name, (sig,
        value))].  A failed unit of the same name left by an earlier run is reset first, as runc."""
        self._watch_jobs()
        for attempt in (0, 1):
            try:
                (job,) = self.manager("StartTransientUnit", "ssa(sv)a(sa(sv))", unit, "replace", props, [])
                break
            except DBusError as e:
                if attempt or not e.name.endswith(".UnitExists"):
                    raise CgroupError("systemd: start unit %s: %s" % (unit, e)) from None
                try:
                    self.manager("ResetFailedUnit", "s", unit)
                except DBusError:
                    pass
        # the unit exists once the job is queued: one that fails or is not seen to start is
        # stopped here, as nothing records it for delete (the state dir goes with the failure)
        try:
            result = self._wait_job(job, "start unit " + unit)
        except CgroupError:
            self._stop_quietly(unit)
            raise
        if result != "done":
            self._stop_quietly(unit)
            raise CgroupError("systemd: start unit %s: the job's result is %r (journalctl -u %s says why)"
                              % (unit, result, unit))

    def _stop_quietly(self, unit):
        try:
            self.stop(unit)
        except CgroupError:
            pass

    def set_properties(self, unit, props):
        if props:
            try:
                self.manager("SetUnitProperties", "sba(sv)", unit, True, props)
            except DBusError as e:
                raise CgroupError("systemd: set properties of %s: %s" % (unit, e)) from None

    def stop(self, unit):
        """StopUnit and wait; a unit that is gone already (a scope stops when it empties) is fine."""
        self._watch_jobs()
        try:
            (job,) = self.manager("StopUnit", "ss", unit, "replace")
        except DBusError as e:
            if e.name.endswith(".NoSuchUnit"):
                return
            raise CgroupError("systemd: stop unit %s: %s" % (unit, e)) from None
        self._wait_job(job, "stop unit " + unit)

    def control_group(self):
        """The manager's own cgroup (the user's: /user.slice/user-UID.slice/user@UID.service)."""
        msg = new_method_call(PROPS, "Get", "ss", (MANAGER.interface, "ControlGroup"))
        (value,) = self._call(msg)
        return value[1]
