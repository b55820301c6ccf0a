"""kill -9 of the runtime at each step of what the annotations' features make (container/extras.py):
the networking's setup in create and its teardown in delete (org.ociruntime.net.*), and the
copy-on-write rootfs's setup (org.ociruntime.overlay*).  As in test_leaks_kill9.py the runtime
SIGKILLs itself at the named step (ociruntime/__init__.py, kill_point); then `state` and `list` do
not crash, `delete --force` succeeds, and nothing is left: no state dir, cgroup, mount or process
on the host, no link, address, rule, lease or bridge user in the test's network namespace (the
fixture `net`), no link of the runtime's names in the host's, no directory the runtime made for
the overlay (what the user's own directory held stays).  A later container with the same network
or overlay then gets what a first one would (the first free address, a clean upper).
ociruntime's own features: runc has none of them.
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time

import pytest

from helpers import (LONG_RUNNING, MS_BIND, MS_SHARED, RUNTIME_TIMEOUT, _link_busybox, assert_nothing_left,
                     assert_state_and_list_survive, killed_at, mount, mounts_under, proc_status, runtime_link_name,
                     runtime_without_syscalls, umount)

pytestmark = pytest.mark.ociruntime_only

NET_SETUP = ["net:recorded", "net:bridge-recorded", "net:bridge", "net:gateway-recorded", "net:gateway", "net:lease",
             "net:veth"]
NET_STEPS = (
    [("create", s, "plain") for s in NET_SETUP]
    # (killed while nft or iptables-restore runs: the program finishes, holding the container's lock)
    + [(c, s, v) for c, s in (("create", "net:firewall-spawned"), ("create", "net:firewall"),
                              ("delete", "net:firewall-spawned")) for v in ("nft", "iptables")]
    # a bridge that was there before: the gateway address the runtime added goes, the bridge stays
    + [("create", s, "own-bridge") for s in NET_SETUP[1:] if s != "net:bridge"]
    # a bridge another container uses: the killed one's lease and place go, the bridge stays
    + [("create", s, "shared-bridge") for s in ("net:bridge-recorded", "net:lease", "net:veth")]
    + [("delete", s, v) for s in ("net:firewall-removed", "net:veth-removed", "net:bridge-removed", "net:released")
       for v in ("nft", "iptables")]
    + [("delete", s, "own-bridge") for s in ("net:veth-removed", "net:bridge-removed", "net:released")]
    + [("delete", s, "shared-bridge") for s in ("net:veth-removed", "net:released")]
)


# what each step has made (create) or taken away (delete), on top of what the previous ones did
CREATE_MAKES = {"net:recorded": set(), "net:bridge-recorded": {"user"}, "net:bridge": {"bridge"},
                "net:gateway-recorded": set(), "net:gateway": {"gateway"}, "net:lease": {"lease"},
                "net:veth": {"veth"}, "net:firewall-spawned": set(), "net:firewall": {"rules"}}
DELETE_TAKES = {"net:firewall-spawned": set(), "net:firewall-removed": {"rules"}, "net:veth-removed": {"veth"},
                "net:bridge-removed": {"bridge", "gateway"}, "net:released": {"user", "lease"}}


def _expected(cmd, step, variant):
    """What is there when the runtime is killed at ``step``: the steps are where they say."""
    there = {"own-bridge": {"bridge"}, "shared-bridge": {"bridge", "gateway"}}.get(variant, set())
    if cmd == "create":
        made = set()
        for s, m in CREATE_MAKES.items():
            made |= m
            if s == step:
                return made | there
    full = {"user", "bridge", "gateway", "lease", "veth"} | ({"rules"} if variant in ("nft", "iptables") else set())
    for s, t in DELETE_TAKES.items():
        full -= t
        if s == step:
            return full | there


def _there(net, cid):
    reg, links = net.registry(), net.links()
    return {what for what, yes in (
        ("user", any(cid in e["users"] for e in reg.get("bridges", {}).values())),
        ("lease", any(cid in held.values() for held in reg.get("leases", {}).values())),
        ("bridge", net.bridge in links),
        ("gateway", net.bridge in links and net.addresses(net.bridge) != []),
        ("veth", runtime_link_name(net.root, cid) in links),
        ("rules", bool(net.nft_tables() or net.ipt_nat()))) if yes}


def _net_bundle(net, bundle, variant):
    kw = {}
    if variant in ("nft", "iptables"):
        kw = dict(ports="%d:80" % random.randrange(20000, 30000), nat="true", firewall=variant)
    return net.bundle(bundle, *LONG_RUNNING, **kw)


def _rules(net):
    return net.nft_tables() + net.nft_rules() + net.ipt_nat()


@pytest.mark.parametrize("cmd,step,variant", NET_STEPS, ids=["-".join(s) for s in NET_STEPS])
def test_network_killed_at_each_step(runtime, net, bundle, cmd, step, variant):
    rt, br, gateway = net.rt, net.bridge, net.prefix + ".1/24"
    other = None
    if variant == "own-bridge":
        net.in_ns("ip", "link", "add", br, "type", "bridge")
        net.own_links.add(br)
    if variant == "shared-bridge":
        other = rt.create(_net_bundle(net, bundle, variant))
        assert net.address(other) == net.prefix + ".2/24"
    b = _net_bundle(net, bundle, variant)
    if cmd == "create":
        cid = rt.new_id()
        killed_at(rt, step, "create", "--bundle", b, cid)
    else:
        cid = rt.create(b)
        killed_at(rt, step, "delete", "--force", cid)
    want, got = _expected(cmd, step, variant), _there(net, cid)
    if "veth" in want:  # (it may be gone with the container's namespace: its init ends with create)
        got.add("veth")
    if step == "net:firewall-spawned":  # (the program may still be at work)
        got.discard("rules")
        want.discard("rules")
    assert got == want
    assert_state_and_list_survive(rt, cid)
    r = rt.run("delete", "--force", cid)
    assert r.rc == 0 and r.err == "", r.err

    # in the test's namespace: only what the other container holds, and the bridge that was there
    veths = lambda: sorted(n for n, (k, m) in net.links().items() if k == "veth")  # noqa: E731
    if other is not None:
        reg = net.registry()
        assert reg["leases"] == {net.subnet: {net.prefix + ".2": other}}
        assert [e["users"] for e in reg["bridges"].values()] == [[other]]
        assert net.addresses(br) == [gateway] and len(veths()) == 1
        assert rt.delete(other, force=True).rc == 0
    assert_nothing_left(runtime, cid)  # (the other container's init is one of the test's children)
    if variant == "own-bridge":
        assert net.links()[br] == ("bridge", None) and net.addresses(br) == []
    assert net.leftovers() == []

    # a later container on the same network gets the first free address, the gateway, its rules
    again = rt.create(_net_bundle(net, bundle, variant))
    assert net.address(again) == net.prefix + ".2/24"
    assert net.addresses(br) == [gateway] and len(veths()) == 1
    out = rt.run("exec", again, "sh", "-c", "ip -4 addr show eth0; ip route", check=True).out
    assert "inet %s.2/24 " % net.prefix in out and "default via %s.1 dev eth0" % net.prefix in out
    if variant == "nft":
        assert len(net.nft_tables()) == 1
    if variant == "iptables":
        assert {re.search(r"OCI-(\w+)-", ln).group(1) for ln in net.ipt_nat()} == \
            {runtime_link_name(rt.root, again)[3:]}
    assert rt.delete(again, force=True).rc == 0
    assert net.leftovers() == []
    assert _rules(net) == []


# -- the copy-on-write rootfs ------------------------------------------------------------------
O = "org.ociruntime.overlay"
OVERLAY_SETUP = ["overlay:recorded", "overlay:dir-made", "overlay:dirs", "overlay:mounted"]
AFTER_FORK = ["create:forked", "create:hooks", "create:saved"]  # (the init attaches the overlay meanwhile)
OVERLAY_STEPS = (
    [(s, v) for s in OVERLAY_SETUP + AFTER_FORK for v in ("state", "tmpfs", "keep", "dir", "dir-reused")]
    # the bundle on a shared mount and the container's root shared: no mount may show on the host
    + [(s, "shared-mounts") for s in ("overlay:mounted",) + tuple(AFTER_FORK)]
    # a kernel without the new mount API: the init mounts the overlay (and its tmpfs) by path
    + [(s, v) for s in ("overlay:mounted", "create:hooks") for v in ("by-path", "by-path-tmpfs")]
)


def _ov_bundle(runtime, bundle, tmp_path, shared_rootfs, variant, args=LONG_RUNNING):
    b = bundle(*args)
    lower = tmp_path / "lower"
    if not lower.exists():
        shutil.copytree(shared_rootfs, lower, symlinks=True, copy_function=_link_busybox)
        (lower / "greeting").write_text("from the lower\n")
    b.config["root"] = {"path": str(lower), "readonly": False}
    ann = {O: "true"}
    if variant in ("tmpfs", "by-path-tmpfs"):
        ann[O + ".upper"] = "tmpfs:size=1m"
    if variant == "keep":
        ann[O + ".keep"] = "true"
    if variant in ("dir", "dir-reused"):
        ann[O + ".upper"] = str(tmp_path / "layer")
    b.config["annotations"] = ann
    b.config["hooks"] = {"prestart": [{"path": "/bin/true"}]}
    if variant == "shared-mounts":
        b.path.mkdir(parents=True, exist_ok=True)
        mount(str(b.path), str(b.path), None, MS_BIND)
        mount("none", str(b.path), None, MS_SHARED)
        b.config["linux"]["rootfsPropagation"] = "shared"
        b.config["root"]["path"] = "rootfs"  # (under the shared mount: the overlay is mounted there)
        b.config["annotations"][O + ".lower"] = str(lower)
        (b.path / "rootfs").mkdir()
    return b


def _tree(path):
    return sorted(os.path.relpath(os.path.join(top, n), path) for top, dirs, files in os.walk(path)
                  for n in dirs + files)


@pytest.mark.parametrize("step,variant", OVERLAY_STEPS, ids=["-".join(s) for s in OVERLAY_STEPS])
def test_overlay_killed_at_each_step(runtime, bundle, tmp_path, shared_rootfs, step, variant):
    rt = runtime_without_syscalls(runtime, tmp_path, [430]) if variant.startswith("by-path") else runtime
    layer = tmp_path / "layer"
    if variant == "dir-reused":
        (layer / "upper").mkdir(parents=True)
        (layer / "upper" / "old").write_text("kept\n")
    try:
        b = _ov_bundle(runtime, bundle, tmp_path, shared_rootfs, variant)
        lower_before = _tree(tmp_path / "lower")
        ours = [str(b.path)] if variant == "shared-mounts" else []  # (the test's own shared bind)
        cid = rt.new_id()
        killed_at(rt, step, "create", "--bundle", b, cid)
        # the step is where it says: the directories recorded (extras.json) are made, but the last
        # at overlay:recorded; one at overlay:dir-made; all of them from overlay:dirs on
        with open(os.path.join(runtime.root, cid, "extras.json")) as f:
            made = json.load(f)["overlay"]["made"]
        assert [os.path.isdir(d) for d in made] == [
            d != made[-1] or step != "overlay:recorded" for d in made]
        assert len(made) == (1 if step in ("overlay:recorded", "overlay:dir-made") or variant == "dir-reused" or
                             "tmpfs" in variant else 3), made
        assert_state_and_list_survive(rt, cid)
        r = rt.run("delete", "--force", cid)
        assert r.rc == 0 and r.err == "", r.err
        assert_nothing_left(runtime, cid, ours)
        assert mounts_under([str(tmp_path / "lower")]) == []
        assert _tree(tmp_path / "lower") == lower_before
        # what the runtime made for the upper is gone; a directory of the user's keeps what it held
        # (a create killed before it saved the container's state made no container: nothing is
        # kept for it, as for a create that failed)
        created = step == "create:saved"
        kept = b.path / ("overlay-" + cid)
        if variant == "keep":
            assert (_tree(kept) if kept.exists() else None) == (["upper"] if created else None)
        if variant == "dir":
            assert (_tree(layer) if layer.exists() else None) == (["upper"] if created else None)
        if variant == "dir-reused":
            assert _tree(layer) == ["upper", "upper/old"] and (layer / "upper" / "old").read_text() == "kept\n"
        assert [n for n in os.listdir(b.path) if n.startswith("overlay-")] == ([kept.name] if created and
                                                                                variant == "keep" else [])

        # a later container with the same overlay: the lower's content, a fresh upper (or the user's)
        b.args = ["sh", "-c", "cat /greeting /old 2>/dev/null; ls /new 2>/dev/null; echo x > /new"]
        r = rt.run_container(b)
        assert r.rc == 0, r
        assert r.out == "from the lower\n" + ("kept\n" if variant == "dir-reused" else ""), r.out
        assert mounts_under([str(tmp_path / "lower")]) == []
        assert _tree(tmp_path / "lower") == lower_before
    finally:
        for mp in sorted(mounts_under([str(tmp_path)]), key=len, reverse=True):
            umount(mp)


def test_every_kill_point_is_hit_by_a_test():
    """Each kill_point step in the runtime's sources is one this file or test_leaks_kill9.py kills
    at (a new step without a test would be a kill -9 nobody tried)."""
    import test_leaks_kill9
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "ociruntime")
    steps = set()
    for top, _, files in os.walk(src):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(top, name)) as f:
                    for call in re.findall(r"kill_point\(([^)]*)\)", f.read()):
                        steps.update(re.findall(r'"([a-z-]+:[a-z-]+)"', call))
    tested = {s for _, s, _ in test_leaks_kill9.STEPS + NET_STEPS} | {s for s, _ in OVERLAY_STEPS}
    assert len(steps) > 30
    assert sorted(steps - tested) == []


def test_an_upper_directory_made_meanwhile_by_another_is_left_alone(runtime, bundle, tmp_path, shared_rootfs):
    """The overlay's directories are recorded before they are made; one that another made between
    the check and the mkdir (the runtime is stopped there: OCIRUNTIME_TEST_STOP_AT) is not the
    runtime's: create fails naming it, and its undo leaves it as it is."""
    layer = tmp_path / "layer"
    b = _ov_bundle(runtime, bundle, tmp_path, shared_rootfs, "dir")
    cid = runtime.new_id()
    env = dict(os.environ, OCIRUNTIME_TEST_STOP_AT="overlay:recorded")
    p = subprocess.Popen([runtime.bin, "--root", runtime.root, "create", "--bundle", os.fspath(b), cid], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + RUNTIME_TIMEOUT
        while (proc_status(p.pid) or {}).get("State", "")[:1] != "T":
            assert time.monotonic() < deadline and p.poll() is None, "create did not stop at overlay:recorded"
            time.sleep(0.01)
        layer.mkdir()
        (layer / "mine").write_text("theirs\n")
        os.kill(p.pid, signal.SIGCONT)
        err = p.communicate(timeout=RUNTIME_TIMEOUT)[1]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1 and err == "ociruntime: overlay: make %s: File exists\n" % layer, err
    assert _tree(layer) == ["mine"] and (layer / "mine").read_text() == "theirs\n"
    assert_nothing_left(runtime, cid)
