"""The systemd driver's D-Bus client (ociruntime/cgroups/dbus.py) against a fake systemd on a unix
socket (no systemd here): authentication, method calls and their replies matched by serial, a
job waited for through JobRemoved (sent before and after the reply), D-Bus errors as one-line
CgroupErrors, a stale unit reset and started again, StopUnit of a unit that is gone."""

import os
import socket
import threading

import pytest

jeepney = pytest.importorskip("jeepney")
from jeepney import HeaderFields, Parser  # noqa: E402
from jeepney.wrappers import new_error, new_method_return, new_signal  # noqa: E402

from ociruntime.cgroups import dbus  # noqa: E402
from ociruntime.errors import CgroupError  # noqa: E402


class FakeSystemd(threading.Thread):
    def __init__(self, path, handler):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(path)
        self.srv.listen(1)
        self.handler, self.calls, self.authed = handler, [], False

    def run(self):
        conn, _ = self.srv.accept()
        buf = b""
        while b"BEGIN\r\n" not in buf:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            if b"AUTH EXTERNAL" in buf and not self.authed:
                conn.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
                self.authed = True
        parser = Parser()
        parser.add_data(buf.split(b"BEGIN\r\n", 1)[1])  # a message may follow BEGIN at once
        serial = [1000]
        while True:
            msg = parser.get_next_message()
            if msg is None:
                data = conn.recv(65536)
                if not data:
                    return
                parser.add_data(data)
                continue
            member = msg.header.fields[HeaderFields.member]
            self.calls.append((member, msg.body))
            for out in self.handler(msg, member):
                serial[0] += 1
                conn.sendall(out.serialise(serial=serial[0]))


def job_removed(job, unit, result):
    from jeepney import DBusAddress
    sig = new_signal(DBusAddress("/org/freedesktop/systemd1", interface="org.freedesktop.systemd1.Manager"),
                     "JobRemoved", "uoss", (1, job, unit, result))
    return sig


@pytest.fixture
def fake(tmp_path, monkeypatch):
    path = str(tmp_path / "private")

    def start(handler):
        srv = FakeSystemd(path, handler)
        srv.start()
        monkeypatch.setattr(dbus, "_addresses", lambda user: [(path, False)])
        return srv
    return start


def test_start_set_stop(fake):
    unit_state = {"exists": True}

    def handler(msg, member):
        if member == "StartTransientUnit":
            if unit_state["exists"]:
                unit_state["exists"] = False
                yield new_error(msg, "org.freedesktop.systemd1.UnitExists", "s", ("Unit x.scope already exists.",))
                return
            job = "/org/freedesktop/systemd1/job/7"
            yield job_removed("/org/freedesktop/systemd1/job/6", "other.scope", "done")  # someone else's
            yield new_method_return(msg, "o", (job,))
            yield job_removed(job, "x.scope", "done")
        elif member == "StopUnit":
            yield new_error(msg, "org.freedesktop.systemd1.NoSuchUnit", "s", ("Unit x.scope not loaded.",))
        else:
            yield new_method_return(msg)
    srv = fake(handler)
    sd = dbus.Systemd()
    sd.start_transient("x.scope", [("Delegate", ("b", True)), ("PIDs", ("au", [os.getpid()])),
                                   ("MemoryMax", ("t", 1 << 26))])
    sd.set_properties("x.scope", [("TasksMax", ("t", 9))])
    sd.stop("x.scope")  # gone already: fine
    sd.close()
    members = [m for m, _ in srv.calls]
    # (a direct connection to systemd is subscribed to its signals without asking)
    assert members == ["StartTransientUnit", "ResetFailedUnit", "StartTransientUnit",
                       "SetUnitProperties", "StopUnit"]
    name, mode, props, aux = srv.calls[2][1]
    assert (name, mode, aux) == ("x.scope", "replace", [])
    assert dict(props)["MemoryMax"] == ("t", 1 << 26) and dict(props)["PIDs"] == ("au", [os.getpid()])


def test_failed_job_and_error_are_one_line(fake):
    def handler(msg, member):
        if member == "StartTransientUnit":
            job = "/org/freedesktop/systemd1/job/9"
            yield job_removed(job, "y.scope", "failed")      # before the reply
            yield new_method_return(msg, "o", (job,))
        elif member == "SetUnitProperties":
            yield new_error(msg, "org.freedesktop.DBus.Error.InvalidArgs", "s", ("Unknown property Foo",))
        else:
            yield new_method_return(msg)
    fake(handler)
    sd = dbus.Systemd()
    with pytest.raises(CgroupError) as e:
        sd.start_transient("y.scope", [])
    assert str(e.value) == "systemd: start unit y.scope: the job's result is 'failed'"
    with pytest.raises(CgroupError) as e:
        sd.set_properties("y.scope", [("Foo", ("s", "x"))])
    assert str(e.value) == "systemd: set properties of y.scope: Unknown property Foo"
    sd.close()


def test_no_manager_is_one_error(monkeypatch, tmp_path):
    monkeypatch.setattr(dbus, "_addresses", lambda user: [(str(tmp_path / "none"), False)])
    with pytest.raises(CgroupError) as e:
        dbus.Systemd()
    assert str(e.value).startswith("systemd cgroup driver: cannot connect to the systemd manager over D-Bus (")
    assert "No such file or directory" in str(e.value) and "\n" not in str(e.value)
