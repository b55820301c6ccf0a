"""Bring the loopback device up in a new network namespace (one ioctl; pyroute2 costs 150 ms to
import and is kept for the network work that needs netlink)."""
import fcntl
import struct

import _socket

from ociruntime.errors import InitError

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up():
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        req = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))
    except OSError as e:
        raise InitError("bring up lo", e.errno, "") from None
    finally:
        s.close()
