"""Bring the loopback device up in a new network namespace: SIOCGIFFLAGS + SIOCSIFFLAGS on an
AF_INET socket: two ioctls, where netlink (ociruntime/network/rtnl.py) would be a module more to
import on every create with a network namespace."""
import _socket  # imported with this module: the init may no longer read the library directory
import fcntl

from ociruntime.errors import InitError

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up():
    try:
        s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
        try:
            # struct ifreq: the name (16 bytes), then ifr_flags (a short) in a 24-byte union
            req = bytearray(b"lo".ljust(16, b"\0") + bytes(24))
            fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req)
            req[16] |= IFF_UP
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, req)
        finally:
            s.close()
    except OSError as e:
        raise InitError("bring up lo", e.errno, "") from None
