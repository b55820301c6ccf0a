"""Container networking, asked for per bundle by the ``org.ociruntime.net.*`` annotations.

The container gets LXC's recipe: a veth pair whose host end is enslaved to a bridge (made when
missing) and whose other end is made directly in the container's network namespace as eth0, an
address leased from the subnet (leases.py), a default route through the bridge's address, and,
when asked, NAT and published ports (firewall.py).  Links and addresses are made with a few
rtnetlink requests of our own (rtnl.py).

Crash safety: before anything is made, the container's record (container/extras.py) names all
that may be made for it (the veth's name, the bridge, the firewall objects: all derived from the
state root and the id), and the root's registry records leases and bridge users before the
links exist.  ``teardown`` removes whatever of that exists, so it serves a failed create, delete,
and `delete --force` after the runtime was killed at any point.

Everything happens in the network namespace the runtime runs in (the host side).  The record
names that namespace, and teardown goes back into it (found under /run/netns or /proc/*/ns/net)
when `delete` is run from another one, so nothing is ever made or removed in the wrong one.
"""
import _socket
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import kill_point
from ociruntime.errors import ConfigError, OCIError

PREFIX = "org.ociruntime.net."
IFNAME = "eth0"

# the annotations (features lists them with these descriptions; README documents them)
ANNOTATIONS = {
    PREFIX + "bridge": "bridge NAME on the host side (made if missing); enables networking",
    PREFIX + "subnet": "IPv4 subnet ADDRESS/PREFIX the container's address is leased from (required)",
    PREFIX + "gateway": "the bridge's ADDRESS in the subnet (default: the one it has, else the first)",
    PREFIX + "address": "ADDRESS to lease instead of the first free one",
    PREFIX + "nat": "true: masquerade what the container sends outside the subnet",
    PREFIX + "ports": "HOSTPORT:CONTAINERPORT[/tcp|/udp][,...] published on the host's addresses",
    PREFIX + "firewall": "nft or iptables (default: nft where the host has it, else iptables)",
}
# set by the runtime in the container's state (not read from the config)
RESULT = PREFIX + "address"


class Plan:
    """The parsed annotations."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _err(key, value, why):
    return ConfigError('annotation %s: "%s": %s' % (key, value, why))


def _ip(key, text):
    try:
        packed = _socket.inet_aton(text)
    except (OSError, ValueError):
        raise _err(key, text, "not an IPv4 address") from None
    if _socket.inet_ntoa(packed) != text:
        raise _err(key, text, "not an IPv4 address (dotted quad)")
    return int.from_bytes(packed, "big")


def ntoa(n):
    return _socket.inet_ntoa(n.to_bytes(4, "big"))


def _bool(key, value):
    if value not in ("true", "false"):
        raise _err(key, value, "must be true or false")
    return value == "true"


def _ports(key, value):
    out, seen = [], set()
    for item in value.split(","):
        spec, _, proto = item.strip().partition("/")
        proto = proto or "tcp"
        host, colon, cport = spec.partition(":")
        if proto not in ("tcp", "udp") or not colon or not host.isdigit() or not cport.isdigit():
            raise _err(key, value, "each entry is HOSTPORT:CONTAINERPORT with /tcp or /udp (default tcp)")
        host, cport = int(host), int(cport)
        if not (0 < host < 65536 and 0 < cport < 65536):
            raise _err(key, value, "ports are 1-65535")
        if (host, proto) in seen:
            raise _err(key, value, "host port %d/%s is given twice" % (host, proto))
        seen.add((host, proto))
        out.append((host, cport, proto))
    return out


def valid_ifname(name):
    return 0 < len(name) < 16 and name not in (".", "..") and \
        all(33 <= ord(c) < 127 and c not in "/:" for c in name)


def parse(annotations, nsmap):
    """The Plan the annotations ask for, or ConfigError naming the annotation (before anything
    exists).  ``nsmap``: the config's namespaces."""
    ann = {k: v for k, v in annotations.items() if k.startswith(PREFIX)}
    for key in ann:
        if key not in ANNOTATIONS:
            raise ConfigError("annotation %s: unknown (known: %s)" % (key, ", ".join(sorted(ANNOTATIONS))))
    bridge = ann.get(PREFIX + "bridge")
    if bridge is None:
        raise ConfigError("annotation %sbridge: required with the other %s* annotations" % (PREFIX, PREFIX))
    if not valid_ifname(bridge):
        raise _err(PREFIX + "bridge", bridge, "not an interface name (1-15 characters, no /, : or spaces)")
    key = PREFIX + "subnet"
    if key not in ann:
        raise ConfigError("annotation %s: required with %sbridge" % (key, PREFIX))
    text = ann[key]
    addr, slash, plen = text.partition("/")
    if not slash or not plen.isdigit() or not 8 <= int(plen) <= 30:
        raise _err(key, text, "not an IPv4 subnet ADDRESS/PREFIX with a prefix of 8 to 30 (IPv6 is not supported)")
    plen = int(plen)
    mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
    net = _ip(key, addr)
    if net & ~mask:
        raise _err(key, text, "host bits set (the subnet is %s/%d)" % (ntoa(net & mask), plen))
    bcast = net | (~mask & 0xFFFFFFFF)

    def host_in_subnet(k):
        if k not in ann:
            return None
        n = _ip(k, ann[k])
        if n & mask != net or n in (net, bcast):
            raise _err(k, ann[k], "not a host address of %s" % text)
        return n
    gateway, address = host_in_subnet(PREFIX + "gateway"), host_in_subnet(PREFIX + "address")
    if address is not None and address == gateway:
        raise _err(PREFIX + "address", ann[PREFIX + "address"], "is the gateway's")
    nat = _bool(PREFIX + "nat", ann[PREFIX + "nat"]) if PREFIX + "nat" in ann else False
    ports = _ports(PREFIX + "ports", ann[PREFIX + "ports"]) if ann.get(PREFIX + "ports") else []
    firewall = None
    if nat or ports:
        from ociruntime.network import firewall as fw
        firewall = ann.get(PREFIX + "firewall")
        if firewall is not None and firewall not in fw.KINDS:
            raise _err(PREFIX + "firewall", firewall, "must be nft or iptables")
        if firewall is None:
            firewall = fw.default_kind()
        elif firewall not in fw.available():
            raise _err(PREFIX + "firewall", firewall, "not installed on this host")
        if firewall is None:
            raise ConfigError("annotation %s: NAT and published ports need nftables or iptables "
                              "(neither nft nor iptables-restore is installed)" % (PREFIX + ("nat" if nat else "ports")))
    ns = nsmap.get("network", False)
    if ns is False or ns:
        raise ConfigError("annotation %sbridge: the container needs a network namespace of its own "
                          '(linux.namespaces: {"type": "network"} without a path)' % PREFIX)
    if os.geteuid() != 0:
        raise ConfigError("annotation %sbridge: container networking needs root (the bridge, veth and "
                          "rules are made in the runtime's network namespace)" % PREFIX)
    return Plan(bridge=bridge, net=net, plen=plen, mask=mask, bcast=bcast, subnet="%s/%d" % (ntoa(net), plen),
                gateway=gateway, address=address, nat=nat, ports=ports, firewall=firewall)


# -- identities --------------------------------------------------------------------------------
def tag_of(root, cid):
    """12 hex digits naming the container's links and rules (the root too: two roots may hold
    the same id)."""
    try:
        from _blake2 import blake2s  # (hashlib itself loads OpenSSL first)
    except ImportError:
        from hashlib import blake2s
    return blake2s(("%s\0%s" % (root, cid)).encode(), digest_size=6).hexdigest()


SO_NETNS_COOKIE = 71


def netns_here():
    """[dev, ino, cookie] of this thread's network namespace: the inode names it while it lives,
    the cookie (never reused while the machine runs) tells it from a later one with that inode."""
    st = os.stat("/proc/thread-self/ns/net")
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        cookie = int.from_bytes(s.getsockopt(_socket.SOL_SOCKET, SO_NETNS_COOKIE, 8), "little")
    except OSError:
        cookie = 0
    finally:
        s.close()
    return [st.st_dev, st.st_ino, cookie]


class InNetns:
    """``with InNetns(fd):`` this thread in the network namespace of ``fd``, back in its own
    after (the return is checked: going on in the wrong namespace is not an option)."""

    def __init__(self, fd):
        self.fd, self.home = fd, -1

    def __enter__(self):
        from ociruntime import _sys as S
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            S.setns(self.fd, S.CLONE_NEWNET)
        except OSError as e:
            os.close(self.home)
            raise OCIError("network: enter the container's network namespace: %s" % e.strerror) from None
        return self

    def __exit__(self, *exc):
        from ociruntime import _sys as S
        try:
            S.setns(self.home, S.CLONE_NEWNET)
        except OSError as e:  # (cannot happen: the namespace is held by the fd)
            os.write(2, b"ociruntime: network: return to the runtime's network namespace: %s\n" % e.strerror.encode())
            os._exit(1)
        finally:
            os.close(self.home)


def find_netns(ident):
    """An fd of the network namespace ``ident`` (netns_here), found where namespaces are kept
    (/run/netns, then the processes'), or -1 when it is gone."""
    dev, ino, cookie = ident
    cands = []
    for d in ("/run/netns", "/var/run/netns"):
        try:
            cands += [d + "/" + n for n in os.listdir(d)]
        except OSError:
            pass
    try:
        cands += ["/proc/%s/ns/net" % p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        pass
    for path in cands:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) != (dev, ino):
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        with InNetns(fd):
            same = netns_here()[2] == cookie
        if same:
            return fd
        os.close(fd)
    return -1


# -- setup and teardown ------------------------------------------------------------------------
def record_for(plan, root, cid):
    """What the container's record says before anything is made (all of it derived from the
    root and the id, so it is complete before the first step)."""
    tag = tag_of(root, cid)
    return {"netns": netns_here(), "bridge": plan.bridge, "subnet": plan.subnet, "veth": "oci" + tag,
            "tag": tag, "firewall": plan.firewall}


def setup(plan, record, root, cid, init_pid, log, hold=-1):
    """Make the container's network (its record is saved already).  Returns the annotations
    that say what it got (the address).  ``hold``: the state dir's locked fd (firewall.run)."""
    from ociruntime.network import rtnl
    from ociruntime.network.leases import Registry
    key = "%d:%d:%d/%s" % (tuple(record["netns"]) + (plan.bridge,))
    try:
        nsfd = os.open("/proc/%d/ns/net" % init_pid, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise OCIError("network: open the container's network namespace (/proc/%d/ns/net): %s"
                       % (init_pid, e.strerror)) from None
    try:
        with rtnl.Netlink() as nl:
            with Registry(root) as reg:
                index, mtu, gateway = _bridge(nl, reg, key, plan, cid)
                reserved = {gateway} | {a for a, _ in _in_subnet(nl.addresses(index), plan)}
                if plan.address is not None:
                    cands = [ntoa(plan.address)]
                    owner = (reg.data["leases"].get(plan.subnet) or {}).get(cands[0])
                    if cands[0] in reserved or owner not in (None, cid):
                        raise OCIError("network: address %s is taken (%s)" % (
                            cands[0], "leased to container %s" % owner if owner else "the bridge's"))
                else:
                    cands = (ntoa(n) for n in range(plan.net + 1, plan.bcast) if ntoa(n) not in reserved)
                address = reg.lease(plan.subnet, cid, cands)
                if address is None:
                    raise OCIError("network: no free address in %s (%d leased to containers, the rest the "
                                   "bridge's)" % (plan.subnet, reg.leased(plan.subnet)))
                reg.save()
                kill_point("net:lease")
            log.debug("network: %s leased from %s, gateway %s on %s", address, plan.subnet, gateway, plan.bridge)
            nl.add_veth(record["veth"], IFNAME, nsfd, index, mtu)
            kill_point("net:veth")
            host_end = nl.link(record["veth"])
            nl.set_up(host_end[0], record["veth"])
        with InNetns(nsfd):
            inner = rtnl.Netlink()
        with inner:
            eth = inner.link(IFNAME)
            if eth is None:
                raise OCIError("network: %s did not appear in the container's network namespace" % IFNAME)
            inner.add_address(eth[0], address, plan.plen, ntoa(plan.bcast), IFNAME)
            inner.set_up(eth[0], IFNAME)
            inner.add_default_route(gateway, eth[0], IFNAME)
    except OSError as e:
        raise OCIError("network: %s: %s" % (e.filename or "netlink", e.strerror or e)) from None
    finally:
        os.close(nsfd)
    if plan.firewall:
        from ociruntime.network import firewall
        firewall.add(plan.firewall, record["tag"], address, plan.subnet, plan.nat, plan.ports, hold)
        kill_point("net:firewall")
        _forwarding_on()
    log.debug("network: %s (%s) is %s/%d on %s", IFNAME, record["veth"], address, plan.plen, plan.bridge)
    return {RESULT: "%s/%d" % (address, plan.plen)}


def _in_subnet(addresses, plan):
    return [(a, p) for a, p in addresses if int.from_bytes(_socket.inet_aton(a), "big") & plan.mask == plan.net]


def _bridge(nl, reg, key, plan, cid):
    """The bridge, made if missing (recorded first), up, with its gateway address (added, and
    recorded first, when it has none in the subnet); ``cid`` is one of its users.  Returns its
    (index, mtu, gateway address)."""
    entry = reg.bridge(key)
    link = nl.link(plan.bridge)
    if link is not None and link[1] != "bridge":
        raise OCIError("network: annotation %sbridge: %s exists and is not a bridge (%s)"
                       % (PREFIX, plan.bridge, link[1] or "a device of no kind"))
    if entry is None:
        entry = reg.add_bridge(key, made=link is None)
    elif link is None:
        entry["made"] = True  # (gone since: made again, so ours)
    if cid not in entry["users"]:
        entry["users"].append(cid)
    reg.save()
    kill_point("net:bridge-recorded")
    if link is None:
        nl.add_bridge(plan.bridge)
        kill_point("net:bridge")
        link = nl.link(plan.bridge)
    index, _, mtu = link
    nl.set_up(index, plan.bridge)
    have = _in_subnet(nl.addresses(index), plan)
    if plan.gateway is not None:
        gateway = ntoa(plan.gateway)
    elif have:
        gateway = have[0][0]
    else:
        gateway = ntoa(plan.net + 1)
    if gateway not in [a for a, _ in have]:
        entry["addresses"].append("%s/%d" % (gateway, plan.plen))
        reg.save()
        kill_point("net:gateway-recorded")
        nl.add_address(index, gateway, plan.plen, ntoa(plan.bcast), plan.bridge)
        kill_point("net:gateway")
    return index, mtu, gateway


def _forwarding_on():
    """NAT and ports from elsewhere need the namespace to forward (as Docker's and CNI's bridge
    set it; left on: other users of it may count on it)."""
    path = "/proc/sys/net/ipv4/ip_forward"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            if os.read(fd, 4).strip() != b"1":
                os.pwrite(fd, b"1", 0)
        finally:
            os.close(fd)
    except OSError as e:
        raise OCIError("network: enable forwarding (%s): %s" % (path, e.strerror)) from None


def teardown(record, root, cid, log, hold=-1):
    """Remove what the record says may have been made; returns the errors (strings).  Missing
    pieces are not errors: the runtime may have been killed before making them.  ``hold``: the
    state dir's locked fd (firewall.run)."""
    errors = []
    here, there = netns_here(), record["netns"]
    if here[:2] == there[:2] and (not here[2] or here[2] == there[2]):
        _teardown_here(record, root, cid, errors, log, hold)
        return errors
    nsfd = find_netns(there)
    try:
        if nsfd >= 0:
            log.debug("network: removing it in the namespace it was made in (net:[%d])", there[1])
            with InNetns(nsfd):
                _teardown_here(record, root, cid, errors, log, hold)
        else:
            log.debug("network: the namespace it was made in is gone, with its links and rules: "
                      "releasing its address")
            _release(record, root, cid, None, errors, log)
    finally:
        if nsfd >= 0:
            os.close(nsfd)
    return errors


def _teardown_here(record, root, cid, errors, log, hold):
    from ociruntime.network import rtnl
    if record.get("firewall"):
        from ociruntime.network import firewall
        try:
            firewall.remove(record["firewall"], record["tag"], hold)
        except OCIError as e:
            errors.append(str(e))
        kill_point("net:firewall-removed")
    try:
        nl = rtnl.Netlink()
    except OSError as e:
        errors.append("network: netlink socket: %s" % e.strerror)
        return
    with nl:
        log.debug("network: removing %s", record["veth"])
        try:
            if nl.delete_link(record["veth"]):
                log.debug("network: removed %s", record["veth"])
        except OSError as e:
            errors.append("network: %s: %s" % (e.filename or "netlink", e.strerror or e))
        kill_point("net:veth-removed")
        _release(record, root, cid, nl, errors, log)


def _release(record, root, cid, nl, errors, log):
    """Free the container's lease and its place on the bridge; remove what the runtime added to
    the bridge (the bridge itself, when it made it) once its last user is gone (``nl``: None when
    the bridge's namespace is gone, and the bridge with it)."""
    from ociruntime.network.leases import Registry
    key = "%d:%d:%d/%s" % (tuple(record["netns"]) + (record["bridge"],))
    try:
        with Registry(root) as reg:
            reg.release(cid)
            last = reg.drop_user(key, cid)
            if last is not None and nl is not None:
                if last["made"]:
                    nl.delete_link(record["bridge"])
                    log.debug("network: removed %s, made for the containers, now unused", record["bridge"])
                else:
                    link = nl.link(record["bridge"])
                    for a in last.get("addresses") or ():
                        address, _, plen = a.partition("/")
                        if link is not None:
                            nl.delete_address(link[0], address, int(plen), record["bridge"])
                kill_point("net:bridge-removed")
            if last is not None:
                del reg.data["bridges"][key]
            reg.save()
        kill_point("net:released")
    except OSError as e:
        errors.append("network: %s: %s" % (e.filename or "netlink", e.strerror or e))
    except OCIError as e:
        errors.append(str(e))
