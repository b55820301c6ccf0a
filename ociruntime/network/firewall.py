"""NAT for a container's address and its published ports, with nftables or iptables.

Each container's rules live in objects named after it (``tag``: a hash of the state root and the
id), so they are added in one atomic step and removed without knowing what they held:

- nftables: one table ``ip ociruntime-<tag>`` with three nat chains: prerouting and output DNAT
  the published ports addressed to a local address (loopback excepted: 127/8 cannot be routed to
  a bridge without route_localnet), postrouting masquerades what the container sends outside its
  subnet.  Removed by ``add table; delete table`` (one transaction, whether it exists or not).
- iptables (nat table, through iptables-restore --noflush): chains ``OCI-<tag>-D`` (the DNATs) and
  ``OCI-<tag>-S`` (the masquerade) and the jumps to them from PREROUTING, OUTPUT and POSTROUTING.
  Removed by deleting the jumps iptables-save lists for them, then the chains.

The programs run in the network namespace of the calling thread (the namespace whose netfilter
they change), with a fixed environment.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import isfile, kill_point
from ociruntime.errors import OCIError

KINDS = ("nft", "iptables")
_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin")
_ENV = {"PATH": ":".join(_DIRS), "LC_ALL": "C"}


def find(program):
    for d in _DIRS:
        if isfile(d + "/" + program) and os.access(d + "/" + program, os.X_OK):
            return d + "/" + program
    return None


def available():
    """The firewall programs this host has, in the order they are preferred."""
    return [k for k in KINDS if find("nft" if k == "nft" else "iptables-restore")]


def default_kind():
    have = available()
    return have[0] if have else None


def run(argv, data=b"", hold=-1):
    """Run ``argv`` with ``data`` on its stdin; returns (exit status, stdout and stderr).
    ``hold``: the container's state dir, locked: the program gets a copy of the fd, so that the
    lock is held until it exits even if this process is killed meanwhile (a `delete --force` then
    waits for the rules it is adding before it removes them)."""
    path = find(argv[0])
    if path is None:
        raise OCIError("network: %s: not found (install nftables or iptables)" % argv[0])
    rin, win = os.pipe()
    rout, wout = os.pipe()
    actions = [(os.POSIX_SPAWN_DUP2, rin, 0), (os.POSIX_SPAWN_DUP2, wout, 1), (os.POSIX_SPAWN_DUP2, wout, 2)]
    if hold >= 0:  # (onto another number: a dup2 onto itself would keep its close-on-exec flag)
        actions.append((os.POSIX_SPAWN_DUP2, hold, 4 if hold == 3 else 3))
    try:
        pid = os.posix_spawn(path, argv, _ENV, file_actions=actions)
    except OSError as e:
        for fd in (rin, win, rout, wout):
            os.close(fd)
        raise OCIError("network: run %s: %s" % (path, e.strerror)) from None
    os.close(rin)
    os.close(wout)
    try:
        os.write(win, data)  # (a few hundred bytes: within the pipe's buffer)
    except BrokenPipeError:
        pass
    os.close(win)
    kill_point("net:firewall-spawned")
    chunks = []
    while True:
        chunk = os.read(rout, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rout)
    _, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    return code, b"".join(chunks).decode(errors="replace")


def _check(argv, data, what, hold=-1):
    code, out = run(argv, data, hold)
    if code:
        text = " ".join(out.split())[:400] or "exit status %d" % code
        raise OCIError("network: %s (%s): %s" % (what, " ".join(argv), text))
    return out


# -- nftables ----------------------------------------------------------------------------------
def _nft_table(tag):
    return "ociruntime-" + tag


def _nft_rules(tag, address, subnet, nat, ports):
    dnat = ["%s dport %d dnat to %s:%d" % (proto, host, address, cport) for host, cport, proto in ports]
    lines = ["table ip %s {" % _nft_table(tag)]
    if dnat:
        lines += ["  chain prerouting {", "    type nat hook prerouting priority -100; policy accept;"]
        lines += ["    fib daddr type local %s" % d for d in dnat]
        lines += ["  }", "  chain output {", "    type nat hook output priority -100; policy accept;"]
        lines += ["    ip daddr != 127.0.0.0/8 fib daddr type local %s" % d for d in dnat]
        lines += ["  }"]
    if nat:
        lines += ["  chain postrouting {", "    type nat hook postrouting priority 100; policy accept;",
                  "    ip saddr %s ip daddr != %s masquerade" % (address, subnet), "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- iptables ----------------------------------------------------------------------------------
def _ipt_chains(tag):
    return "OCI-%s-D" % tag, "OCI-%s-S" % tag


def _ipt_rules(tag, address, subnet, nat, ports):
    d, s = _ipt_chains(tag)
    lines = ["*nat"]
    if ports:
        lines.append(":%s - [0:0]" % d)
    if nat:
        lines.append(":%s - [0:0]" % s)
    for host, cport, proto in ports:
        lines.append("-A %s -p %s --dport %d -j DNAT --to-destination %s:%d" % (d, proto, host, address, cport))
    if ports:
        lines.append("-A PREROUTING -m addrtype --dst-type LOCAL -j %s" % d)
        lines.append("-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j %s" % d)
    if nat:
        lines.append("-A %s -s %s/32 ! -d %s -j MASQUERADE" % (s, address, subnet))
        lines.append("-A POSTROUTING -j %s" % s)
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _ipt_removal(tag, saved):
    """The iptables-restore script that removes what ``saved`` (iptables-save -t nat) holds of
    ``tag``'s: the jumps to its chains, then the chains; None when there is nothing."""
    chains = _ipt_chains(tag)
    present = [c for c in chains if (":%s " % c) in saved]
    jumps = [line for line in saved.splitlines()
             if line.startswith("-A ") and line.split()[1] not in chains and line.split()[-1] in chains]
    if not present and not jumps:
        return None
    lines = ["*nat"]
    lines += ["-D" + j[2:] for j in jumps]
    lines += [":%s - [0:0]" % c for c in present]  # (flushes it, under --noflush)
    lines += ["-X %s" % c for c in present]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# -- the two operations ------------------------------------------------------------------------
def add(kind, tag, address, subnet, nat, ports, hold=-1):
    """Add the container's rules (``ports``: [(host port, container port, "tcp"|"udp")]; ``hold``:
    run's)."""
    if not nat and not ports:
        return
    if kind == "nft":
        _check(["nft", "-f", "-"], _nft_rules(tag, address, subnet, nat, ports).encode(), "add nftables rules",
               hold)
    else:
        _check(["iptables-restore", "--noflush", "-w"], _ipt_rules(tag, address, subnet, nat, ports).encode(),
               "add iptables rules", hold)


def remove(kind, tag, hold=-1):
    """Remove whatever of the container's rules exists (nothing: no error; ``hold``: run's)."""
    if kind == "nft":
        table = _nft_table(tag)
        _check(["nft", "-f", "-"], ("add table ip %s\ndelete table ip %s\n" % (table, table)).encode(),
               "remove nftables table %s" % table, hold)
        return
    saved = _check(["iptables-save", "-t", "nat"], b"", "list iptables rules", hold)
    script = _ipt_removal(tag, saved)
    if script:
        _check(["iptables-restore", "--noflush", "-w"], script.encode(), "remove iptables rules", hold)
