"""Container networking, asked for with the org.ociruntime.net.* annotations (issue 24, point 1).

Every test runs the runtime inside a network namespace it makes (`nsenter --net`, the fixture
`net`: tests/conftest.py, helpers.Net), so the bridges, veths and NAT rules are made there and never in the host's namespace;
container addresses come from a 10.2xx.y.0/24 chosen per test, and nothing else but loopback is
ever contacted.  What the kernel holds is read with pyroute2, nft and iptables-save inside that
namespace; the fixture fails the test if anything is left there after the containers are deleted.
ociruntime's own feature: runc has none of it.
"""
import concurrent.futures
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from helpers import LONG_RUNNING, RUNTIME_TIMEOUT

pytestmark = pytest.mark.ociruntime_only

P = "org.ociruntime.net."


def server(port, reply):
    """A container process answering each TCP connection on ``port`` with ``reply`` and the line
    it received."""
    return ["nc", "-ll", "-p", str(port), "-e", "sh", "-c", 'read line; echo "%s $line"' % reply]


def client(address, port, line):
    """A container process that sends ``line`` to address:port (retrying while nothing listens)
    and prints the answer."""
    return ["sh", "-c", "for i in $(seq 50); do echo %s | nc -w 3 %s %d && exit 0; sleep 0.1; done; exit 1"
            % (line, address, port)]


def test_two_containers_on_one_bridge_exchange_tcp(net, bundle):
    rt = net.rt
    a = rt.create(net.bundle(bundle, *server(5000, "A-got")))
    rt.start(a)
    addr_a = net.address(a)
    assert addr_a == net.prefix + ".2/24"
    br = "br" + net.name[-6:]
    # the bridge was made, with the gateway's address; A's host end is on it
    links = net.links()
    assert links[br][0] == "bridge"
    assert net.addresses(br) == [net.prefix + ".1/24"]
    assert [n for n, (k, m) in links.items() if k == "veth" and m == br]
    # inside: eth0 with the address, the default route through the bridge's address
    out = rt.run("exec", a, "sh", "-c", "ip -4 addr show eth0; ip route", check=True).out
    assert "inet %s " % addr_a in out
    assert "default via %s.1 dev eth0" % net.prefix in out

    b = net.bundle(bundle, *client(addr_a.split("/")[0], 5000, "hello-from-B"))
    r = rt.run_container(b)
    assert r.rc == 0, r.err
    assert r.out.strip() == "A-got hello-from-B"
    assert len([n for n, (k, m) in net.links().items() if k == "veth"]) == 1  # B's went with it

    assert rt.delete(a, force=True).rc == 0
    assert net.leftovers() == []


def test_address_leases_are_unique_and_freed(net, bundle):
    rt = net.rt
    ids = [rt.create(net.bundle(bundle, *LONG_RUNNING)) for _ in range(3)]
    got = [net.address(c) for c in ids]
    assert got == [net.prefix + ".%d/24" % i for i in (2, 3, 4)]
    assert rt.delete(ids[1], force=True).rc == 0
    # the freed address is leased again; a fixed one is leased as asked, and refused while taken
    again = rt.create(net.bundle(bundle, *LONG_RUNNING))
    assert net.address(again) == net.prefix + ".3/24"
    fixed = rt.create(net.bundle(bundle, *LONG_RUNNING, address=net.prefix + ".77"))
    assert net.address(fixed) == net.prefix + ".77/24"
    r = rt.run("create", "--bundle", net.bundle(bundle, *LONG_RUNNING, address=net.prefix + ".77"), rt.new_id())
    rt.refused(r, "address %s.77 is taken (leased to container %s)" % (net.prefix, fixed))
    with open(os.path.join(net.root, "@network.json")) as f:
        leases = json.load(f)["leases"][net.subnet]
    assert sorted(leases.values()) == sorted([ids[0], ids[2], again, fixed])
    for c in (ids[0], ids[2], again, fixed):
        assert rt.delete(c, force=True).rc == 0
    assert net.leftovers() == []


def test_parallel_creates_never_share_an_address(net, bundle):
    rt = net.rt
    bundles = [net.bundle(bundle, *LONG_RUNNING) for _ in range(6)]
    ids = [rt.new_id() for _ in bundles]
    with concurrent.futures.ThreadPoolExecutor(len(ids)) as pool:
        results = list(pool.map(lambda bc: rt.run("create", "--bundle", bc[0], bc[1]), zip(bundles, ids)))
    for r in results:
        assert r.rc == 0, r.err
    addresses = [net.address(c) for c in ids]
    assert len(set(addresses)) == len(ids)
    assert sorted(addresses) == sorted(net.prefix + ".%d/24" % i for i in range(2, 8))
    br = "br" + net.name[-6:]
    assert sorted(m for n, (k, m) in net.links().items() if k == "veth") == [br] * len(ids)
    with concurrent.futures.ThreadPoolExecutor(len(ids)) as pool:
        results = list(pool.map(lambda c: rt.delete(c, force=True), ids))
    assert [r.rc for r in results] == [0] * len(ids), [r.err for r in results]
    assert net.leftovers() == []  # the bridge went with the last of them


@pytest.mark.parametrize("firewall", ["nft", "iptables"])
def test_published_port_and_nat(net, bundle, firewall):
    rt = net.rt
    port = random.randrange(20000, 30000)
    cid = rt.create(net.bundle(bundle, *server(80, "served"), ports="%d:80/tcp" % port, nat="true",
                               firewall=firewall))
    rt.start(cid)
    gateway = net.prefix + ".1"
    # a process of the test's namespace reaches the published port at the namespace's address
    code = ("import socket,sys,time\nfor i in range(50):\n  try:\n    s=socket.create_connection((%r,%d),3); break\n"
            "  except OSError: time.sleep(0.1)\ns.sendall(b'hi\\n'); print(s.makefile().readline().strip())"
            % (gateway, port))
    assert net.in_ns(sys.executable, "-c", code).stdout.strip() == "served hi"
    if firewall == "nft":
        assert len(net.nft_tables()) == 1 and not net.ipt_nat()
    else:
        assert net.ipt_nat()

    # NAT: a namespace "outside", reached through the test's namespace, sees its address, not the
    # container's (it has no route back to the container's subnet)
    out = net.add_ns("o")
    net.in_ns("ip", "link", "add", "tnout", "type", "veth", "peer", "name", "out0", "netns", "/run/netns/" + out)
    net.own_links.add("tnout")
    net.in_ns("ip", "addr", "add", net.other + ".1/24", "dev", "tnout")
    net.in_ns("ip", "link", "set", "tnout", "up")
    net.in_ns("ip", "addr", "add", net.other + ".2/24", "dev", "out0", ns=out)
    net.in_ns("ip", "link", "set", "out0", "up", ns=out)
    listener = subprocess.Popen(
        ["nsenter", "--net=/run/netns/" + out, "--", sys.executable, "-c",
         "import socket\ns=socket.socket(); s.bind((%r, 7000)); s.listen(); print('up', flush=True)\n"
         "c, peer = s.accept(); c.sendall(b'outside\\n'); print(peer[0], flush=True)" % (net.other + ".2")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "up"
        r = rt.run("exec", cid, "sh", "-c", "nc -w 3 %s.2 7000 </dev/null" % net.other)
        assert r.rc == 0 and r.out.strip() == "outside", r
        assert listener.stdout.readline().strip() == net.other + ".1"
    finally:
        listener.kill()
        listener.wait()
    assert net.in_ns("sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"

    assert rt.delete(cid, force=True).rc == 0
    assert net.leftovers() == []


def test_pre_existing_bridge_is_kept(net, bundle):
    rt = net.rt
    br = "br" + net.name[-6:]
    net.in_ns("ip", "link", "add", br, "type", "bridge")
    net.own_links.add(br)
    # without an address in the subnet: the runtime adds the gateway's, and removes it again
    cid = rt.create(net.bundle(bundle, *LONG_RUNNING))
    assert net.addresses(br) == [net.prefix + ".1/24"]
    assert rt.delete(cid, force=True).rc == 0
    assert net.links()[br][0] == "bridge" and net.addresses(br) == []
    assert net.leftovers() == []
    # with one: it is the gateway, and stays
    net.in_ns("ip", "addr", "add", net.prefix + ".9/24", "dev", br)
    cid = rt.create(net.bundle(bundle, *LONG_RUNNING))
    out = rt.run("exec", cid, "ip", "route", check=True).out
    assert "default via %s.9 dev eth0" % net.prefix in out
    assert net.address(cid) == net.prefix + ".1/24"  # (.9 is the bridge's: .1 is free)
    assert rt.delete(cid, force=True).rc == 0
    assert net.addresses(br) == [net.prefix + ".9/24"]
    assert net.leftovers() == []


BAD = [
    ({"subnet": None}, "annotation org.ociruntime.net.subnet: required with org.ociruntime.net.bridge"),
    ({"subnet": "10.250.1.0/33"}, "not an IPv4 subnet"),
    ({"subnet": "10.250.1.7/24"}, "host bits set (the subnet is 10.250.1.0/24)"),
    ({"subnet": "fd00::/64"}, "IPv6 is not supported"),
    ({"bridge": "a-name-far-too-long"}, "not an interface name"),
    ({"ports": "80"}, "each entry is HOSTPORT:CONTAINERPORT"),
    ({"ports": "8080:80/sctp"}, "each entry is HOSTPORT:CONTAINERPORT"),
    ({"ports": "70000:80"}, "ports are 1-65535"),
    ({"nat": "yes"}, "must be true or false"),
    ({"firewall": "pf", "nat": "true"}, "must be nft or iptables"),
    ({"address": "10.9.9.9"}, "not a host address of"),
    ({"colour": "blue"}, "annotation org.ociruntime.net.colour: unknown"),
]


@pytest.mark.parametrize("change,words", BAD, ids=[w.split(":")[0][:30] + str(i) for i, (_, w) in enumerate(BAD)])
def test_bad_annotations_are_refused_before_anything_exists(net, bundle, change, words):
    b = net.bundle(bundle, *LONG_RUNNING)
    for k, v in change.items():
        if v is None:
            del b.config["annotations"][P + k]
        else:
            b.config["annotations"][P + k] = v.replace("10.250.1", net.prefix)
    r = net.rt.run("create", "--bundle", b, net.rt.new_id())
    net.rt.refused(r, words.replace("10.250.1", net.prefix))
    assert net.leftovers() == []


def test_the_container_needs_a_network_namespace_of_its_own(net, bundle):
    b = net.bundle(bundle, *LONG_RUNNING)
    nss = b.config["linux"]["namespaces"]
    b.config["linux"]["namespaces"] = [n for n in nss if n["type"] != "network"]
    words = 'the container needs a network namespace of its own (linux.namespaces: {"type": "network"} without a path)'
    net.rt.refused(net.rt.run("create", "--bundle", b, net.rt.new_id()), words)
    b.config["linux"]["namespaces"] = [dict(n, path="/run/netns/" + net.name) if n["type"] == "network" else n
                                       for n in nss]
    net.rt.refused(net.rt.run("create", "--bundle", b, net.rt.new_id()), words)
    assert net.leftovers() == []


def test_failures_half_way_leave_nothing(net, bundle):
    rt = net.rt
    # a /30 has room for the gateway and one container
    small = net.prefix + ".0/30"
    first = rt.create(net.bundle(bundle, *LONG_RUNNING, subnet=small))
    before = net.links()
    r = rt.run("create", "--bundle", net.bundle(bundle, *LONG_RUNNING, subnet=small), rt.new_id())
    rt.refused(r, "no free address in %s (1 leased to containers, the rest the bridge's)" % small)
    assert net.links() == before
    assert not os.path.exists(os.path.join(net.root, rt.ids[-1]))
    with open(os.path.join(net.root, "@network.json")) as f:
        reg = json.load(f)
    assert reg["leases"] == {small: {net.prefix + ".2": first}}
    assert [e["users"] for e in reg["bridges"].values()] == [[first]]
    # the same subnet on a second bridge: that bridge is made, then no address is left
    other = "bx" + net.name[-6:]
    r = rt.run("create", "--bundle", net.bundle(bundle, *LONG_RUNNING, subnet=small, bridge=other), rt.new_id())
    rt.refused(r, "no free address in %s" % small)
    assert other not in net.links()
    assert rt.delete(first, force=True).rc == 0
    assert net.leftovers() == []

    # a link of the bridge's name that is not a bridge: refused once the container's init exists
    br = "br" + net.name[-6:]
    net.in_ns("ip", "link", "add", br, "type", "veth", "peer", "name", br + "p")
    net.own_links.update((br, br + "p"))
    r = rt.run("create", "--bundle", net.bundle(bundle, *LONG_RUNNING), rt.new_id())
    rt.refused(r, "annotation org.ociruntime.net.bridge: %s exists and is not a bridge (veth)" % br)
    assert net.links()[br] == ("veth", None)
    assert net.leftovers() == []
    net.in_ns("ip", "link", "delete", br)

    # a failure after everything was made (a createRuntime hook runs after the network is set up)
    b = net.bundle(bundle, *LONG_RUNNING, ports="8080:80", nat="true")
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}
    r = rt.run("create", "--bundle", b, rt.new_id())
    rt.refused(r, "createRuntime")
    assert net.leftovers() == []


def test_delete_force_after_kill9_of_the_runtime(net, bundle):
    rt = net.rt
    cid = rt.new_id()
    b = net.bundle(bundle, *LONG_RUNNING, ports="%d:80" % random.randrange(20000, 30000), nat="true")
    p = subprocess.Popen([rt.bin, "--root", rt.root, "run", "--bundle", os.fspath(b), cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + RUNTIME_TIMEOUT
        while rt.status(cid) != "running":
            assert time.monotonic() < deadline and p.poll() is None, "the container did not start"
            time.sleep(0.05)
        assert net.nft_tables() and any(k == "veth" for k, _ in net.links().values())
        os.kill(p.pid, signal.SIGKILL)  # (nsenter exec'd the runtime: this is its pid)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rt.status(cid) == "running"
    assert rt.delete(cid, force=True).rc == 0
    assert net.leftovers() == []


def test_delete_from_another_namespace_removes_it_where_it_was_made(net, bundle, runtime):
    """`delete` run in the host's namespace finds the test's namespace (by the record's
    identity) and removes the links and rules there: nothing is done in the host's."""
    rt = net.rt
    cid = rt.create(net.bundle(bundle, *LONG_RUNNING, nat="true"))
    host_links = set(os.listdir("/sys/class/net"))
    r = runtime.run("--debug", "delete", "--force", cid)
    assert r.rc == 0, r.err
    assert "removing it in the namespace it was made in" in r.err
    assert set(os.listdir("/sys/class/net")) == host_links
    assert net.leftovers() == []


def test_a_plain_container_has_only_loopback(net, bundle):
    rt = net.rt
    out = rt.output(bundle("true"), "ip -o link | cut -d: -f2")
    assert out.split() == ["lo"]
    assert net.leftovers() == []


def test_a_container_with_a_user_namespace(net, bundle):
    """The container's network namespace belongs to its user namespace: the runtime (root) still
    makes eth0 there; the container's root reaches a listener on the bridge's address."""
    rt = net.rt
    gateway = net.prefix + ".1"
    b = net.bundle(lambda *a: bundle(*a, public=True), *client(gateway, 6000, "from-userns"))
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    listener = subprocess.Popen(
        ["nsenter", "--net=/run/netns/" + net.name, "--", sys.executable, "-c",
         "import socket,time\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         "for i in range(100):\n  try: s.bind((%r, 6000)); break\n  except OSError: time.sleep(0.05)\n"
         "s.listen(); c, peer = s.accept(); line = c.makefile().readline().strip()\n"
         "c.sendall(b'ok ' + line.encode() + b'\\n'); print(peer[0], flush=True)" % gateway],
        stdout=subprocess.PIPE, text=True)
    try:
        r = rt.run_container(b)
        assert r.rc == 0 and r.out.strip() == "ok from-userns", r
        assert listener.stdout.readline().strip() == net.prefix + ".2"
    finally:
        listener.kill()
        listener.wait()
    assert net.leftovers() == []
