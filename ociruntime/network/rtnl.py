"""The few rtnetlink requests container networking needs, encoded by hand (struct + _socket).

Links (a bridge; a veth pair whose peer is made directly in another network namespace; up;
delete; look up by name), IPv4 addresses (add, delete, list) and a default route.  Each request
asks for an acknowledgement and a refusal is an ``OSError(errno, strerror, what)``, so callers
name the step the way the rest of the runtime does.

pyroute2 speaks the same protocol with every message type the kernel has; importing any part of
it costs more than a whole container's create (docs/NOTES.md, "Networking", has the
measurements), for the ten messages below.  The tests check the result with pyroute2 and ip(8).
"""
import _socket
import posix as os  # os's C half (ociruntime/__init__.py says why)
import struct

NETLINK_ROUTE = 0
AF_INET = 2

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE = 24
NLMSG_ERROR, NLMSG_DONE = 2, 3

NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP, NLM_F_EXCL, NLM_F_CREATE = 0x300, 0x200, 0x400

IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 4, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_OIF, RTA_GATEWAY = 4, 5
NLA_F_NESTED = 0x8000

IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

ENODEV, EEXIST, EADDRNOTAVAIL = 19, 17, 99

_HDR = struct.Struct("=IHHII")          # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")      # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")       # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")    # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
_ATTR = struct.Struct("=HH")


def attr(kind, data):
    """One rtattr: its header, ``data`` (bytes, str, int as u32, or a list of attrs: nested),
    padded to 4 bytes."""
    if isinstance(data, str):
        data = data.encode() + b"\0"
    elif isinstance(data, int):
        data = struct.pack("=I", data)
    elif isinstance(data, list):
        data, kind = b"".join(data), kind | NLA_F_NESTED
    n = _ATTR.size + len(data)
    return _ATTR.pack(n, kind) + data + b"\0" * (-n & 3)


def parse_attrs(data, offset=0):
    """{type: payload bytes} of the attributes in ``data`` from ``offset`` (nested flag dropped)."""
    out = {}
    while offset + _ATTR.size <= len(data):
        n, kind = _ATTR.unpack_from(data, offset)
        if n < _ATTR.size:
            break
        out[kind & ~NLA_F_NESTED] = data[offset + _ATTR.size:offset + n]
        offset += (n + 3) & ~3
    return out


def ipv4(text):
    """The 4 bytes of a dotted IPv4 address."""
    return _socket.inet_aton(text)


class Netlink:
    """An rtnetlink socket of the network namespace this thread is in when it is made (the socket
    stays in that namespace whatever the thread joins later)."""

    def __init__(self):
        self.sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- transport ---------------------------------------------------------------------------
    def request(self, kind, flags, body, what):
        """Send one request; return the payloads of the replies (a dump's, or the one message a
        GET answers), after the kernel's acknowledgement.  Refusal: OSError naming ``what``."""
        self.seq += 1
        seq = self.seq
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, flags | NLM_F_REQUEST, seq, 0) + body)
        replies = []
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + _HDR.size <= len(data):
                n, mtype, mflags, mseq, _ = _HDR.unpack_from(data, off)
                payload = data[off + _HDR.size:off + n]
                off += (n + 3) & ~3
                if mseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", payload)[0]
                    if err:
                        raise OSError(err, os.strerror(err), what)
                    return replies
                if mtype == NLMSG_DONE:
                    return replies
                replies.append((mtype, payload))
                if not mflags & NLM_F_MULTI and not flags & NLM_F_ACK:
                    return replies

    # -- links -------------------------------------------------------------------------------
    def link(self, name):
        """(index, kind, mtu) of the link called ``name`` here, None when there is none (kind:
        IFLA_INFO_KIND, "" for a device without one)."""
        body = _IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, name)
        try:
            replies = self.request(RTM_GETLINK, 0, body, "look up link %s" % name)
        except OSError as e:
            if e.errno == ENODEV:
                return None
            raise
        for mtype, payload in replies:
            if mtype == RTM_NEWLINK:
                index = _IFINFO.unpack_from(payload)[2]
                attrs = parse_attrs(payload, _IFINFO.size)
                info = parse_attrs(attrs.get(IFLA_LINKINFO, b""))
                kind = info.get(IFLA_INFO_KIND, b"").rstrip(b"\0").decode()
                mtu = struct.unpack("=I", attrs[IFLA_MTU])[0] if IFLA_MTU in attrs else 0
                return index, kind, mtu
        return None

    def add_bridge(self, name):
        body = _IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, name) + \
            attr(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, "bridge")])
        self.request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body, "create bridge %s" % name)

    def add_veth(self, name, peer, peer_netns_fd, master, mtu):
        """A veth pair: ``name`` here, enslaved to the link ``master`` (an index); its peer made
        directly in the namespace of ``peer_netns_fd`` as ``peer`` (no name of the container's
        appears here, so two containers' eth0 never meet)."""
        peer_msg = _IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, peer) + attr(IFLA_NET_NS_FD, peer_netns_fd)
        if mtu:
            peer_msg += attr(IFLA_MTU, mtu)
        body = _IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, name) + attr(IFLA_MASTER, master)
        if mtu:
            body += attr(IFLA_MTU, mtu)
        body += attr(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, "veth"),
                                     attr(IFLA_INFO_DATA, [attr(VETH_INFO_PEER, peer_msg)])])
        self.request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body, "create veth pair %s" % name)

    def set_up(self, index, name):
        body = _IFINFO.pack(0, 0, index, IFF_UP, IFF_UP)
        self.request(RTM_NEWLINK, NLM_F_ACK, body, "set link %s up" % name)

    def delete_link(self, name):
        """Remove the link ``name``; False when there was none."""
        body = _IFINFO.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, name)
        try:
            self.request(RTM_DELLINK, NLM_F_ACK, body, "delete link %s" % name)
        except OSError as e:
            if e.errno == ENODEV:
                return False
            raise
        return True

    # -- addresses and routes ------------------------------------------------------------------
    def addresses(self, index):
        """[(address, prefixlen)] of the IPv4 addresses on the link ``index``."""
        body = _IFADDR.pack(AF_INET, 0, 0, 0, 0)
        out = []
        for mtype, payload in self.request(RTM_GETADDR, NLM_F_DUMP, body, "list addresses"):
            if mtype != RTM_NEWADDR:
                continue
            family, plen, _, _, idx = _IFADDR.unpack_from(payload)
            if family != AF_INET or idx != index:
                continue
            attrs = parse_attrs(payload, _IFADDR.size)
            local = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            if local:
                out.append((_socket.inet_ntoa(local), plen))
        return out

    def _addr_body(self, index, address, plen, broadcast=None):
        body = _IFADDR.pack(AF_INET, plen, 0, RT_SCOPE_UNIVERSE, index) + \
            attr(IFA_LOCAL, ipv4(address)) + attr(IFA_ADDRESS, ipv4(address))
        if broadcast:
            body += attr(IFA_BROADCAST, ipv4(broadcast))
        return body

    def add_address(self, index, address, plen, broadcast, name):
        self.request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                     self._addr_body(index, address, plen, broadcast), "add address %s/%d to %s" % (address, plen, name))

    def delete_address(self, index, address, plen, name):
        """Remove an address; False when it was not there."""
        try:
            self.request(RTM_DELADDR, NLM_F_ACK, self._addr_body(index, address, plen),
                         "delete address %s/%d from %s" % (address, plen, name))
        except OSError as e:
            if e.errno in (EADDRNOTAVAIL, ENODEV):
                return False
            raise
        return True

    def add_default_route(self, gateway, index, name):
        body = _RTMSG.pack(AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) + \
            attr(RTA_GATEWAY, ipv4(gateway)) + attr(RTA_OIF, index)
        self.request(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body,
                     "add default route via %s dev %s" % (gateway, name))
