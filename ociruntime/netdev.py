"""Bring the loopback device up in a new network namespace (SIOCGIFFLAGS + SIOCSIFFLAGS in the shim:
no _socket and fcntl to load; pyroute2 costs 150 ms to import and is kept for the network work that
needs netlink)."""
from ociruntime import _sys as S
from ociruntime.errors import InitError


def loopback_up():
    try:
        S.ifup("lo")
    except OSError as e:
        raise InitError("bring up lo", e.errno, "") from None
