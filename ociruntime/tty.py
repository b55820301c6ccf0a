"""terminal: true -- the pty is made inside the container (its own devpts), the master goes to the
caller over --console-socket with SCM_RIGHTS, the slave becomes stdio, the controlling terminal and
/dev/console."""
import fcntl
import os
import struct
import termios

import _socket

from ociruntime import _sys as S
from ociruntime.errors import InitError


def setup_console(console_sock, size):
    """In the init, after pivot_root; returns the slave fd (already made stdin/stdout/stderr)."""
    try:
        master, slave = os.openpty()
    except OSError as e:
        raise InitError("open pty", e.errno, "/dev/ptmx") from None
    name = os.ttyname(slave)
    if size:
        fcntl.ioctl(slave, termios.TIOCSWINSZ,
                    struct.pack("HHHH", size.get("height", 0), size.get("width", 0), 0, 0))
    try:
        _bind_console(name)
        send_fd(console_sock, name, master)
    except OSError as e:
        raise InitError("send pty master to console socket", e.errno) from None
    os.close(master)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    try:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    except OSError as e:
        raise InitError("set controlling terminal", e.errno) from None
    if slave > 2:
        os.close(slave)


def _bind_console(name):
    try:
        fd = os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)
    except OSError:
        pass
    S.mount(name, "/dev/console", None, S.MS_BIND)


def send_fd(sock, name, fd):
    anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))]
    sock.sendmsg([name.encode()], anc)


def connect_console(path):
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        from ociruntime.errors import OCIError
        raise OCIError("connect to console socket %s: %s" % (path, e.strerror)) from None
    return s
