"""Bring the loopback device up in a new network namespace (one ioctl; pyroute2 costs 150 ms to
import and is kept for the network work that needs netlink)."""
import fcntl
import sys

import _socket

from ociruntime.errors import InitError

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up():
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        # struct ifreq: the name (16 bytes), the flags (a native short), padding to 40 bytes;
        # built by hand: `struct` costs ~0.3 ms to import
        name = b"lo".ljust(16, b"\0")
        req = name + bytes(24)
        flags = int.from_bytes(fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req)[16:18], sys.byteorder)
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, name + (flags | IFF_UP).to_bytes(2, sys.byteorder) + bytes(22))
    except OSError as e:
        raise InitError("bring up lo", e.errno, "") from None
    finally:
        s.close()
