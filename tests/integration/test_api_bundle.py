"""ociruntime.Bundle: a config built in code, as the process inside a real container sees it."""
import os

import pytest

from ociruntime import Bundle, Container

pytestmark = pytest.mark.ociruntime_only


@pytest.fixture
def make(runtime, shared_rootfs, tmp_path):
    def make(*args):
        bundle = Bundle(tmp_path / "bundle", rootfs=shared_rootfs, args=args)
        return bundle, Container(runtime.new_id(), root=runtime.root)
    return make


def run_out(c, b):
    r = c.run(b, capture_output=True)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r.stdout.decode().split("\n")


def test_process_and_mounts_seen_inside(make, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "file").write_text("from the host\n")
    b, c = make("sh", "-c", "id -u; id -g; id -G; pwd; umask; ulimit -n; hostname; echo $ONE $TWO; "
                            "cat /mnt/file; touch /mnt/new 2>/dev/null || echo read-only; "
                            "grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; "
                            "grep ' /tmp ' /proc/mounts | cut -d' ' -f3,4")
    b.hostname = "built"
    (b.process(cwd="/tmp", uid=65534, gid=65534, additional_gids=[5], umask=0o027, capabilities=[],
               rlimits={"RLIMIT_NOFILE": (256, 512)}, no_new_privileges=True, env={"ONE": "1"})
     .setenv("TWO", "2")
     .mount("/mnt", str(shared), options=["ro"])
     .tmpfs("/tmp", size=1 << 20, mode=0o755))
    lines = run_out(c, b)
    assert lines[:9] == ["65534", "65534", "65534 5", "/tmp", "0027", "256", "built", "1 2", "from the host"]
    assert lines[9] == "read-only" and not (shared / "new").exists()
    assert lines[10].split() == ["CapEff:", "0000000000000000"]
    assert lines[11].split() == ["NoNewPrivs:", "1"]
    fstype, opts = lines[12].split()
    assert fstype == "tmpfs" and "size=1024k" in opts and "mode=755" in opts


def test_resources_and_namespaces(make):
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("the host has no cgroup v1 memory hierarchy")
    b, c = make("sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
                            "readlink /proc/self/ns/net; readlink /proc/self/ns/uts")
    b.resources(memory=48 << 20, pids=20).share_namespace("network")
    limit, pids, net, uts = run_out(c, b)[:4]
    assert (int(limit), pids) == (48 << 20, "20")
    assert net == os.readlink("/proc/self/ns/net")       # the host's: no network namespace asked for
    assert uts != os.readlink("/proc/self/ns/uts")       # (the default's own)
    b.namespace("network")                                # a new one again
    assert {"type": "network"} in b.config["linux"]["namespaces"]


def test_annotations_load_and_feature_setters(make, runtime):
    b, c = make("sleep", "100")
    b.annotate("org.example.mode", "test").annotate("org.example.flag", True)
    b.network("oci-api0", "10.99.0.0/24", nat=True, ports=["8080:80/tcp", "53:53/udp"])
    b.overlay("/srv/lower1", "/srv/lower2", upper="tmpfs:size=1m")
    ann = b.annotations
    assert ann["org.example.flag"] == "true"
    assert {k: v for k, v in ann.items() if k.startswith("org.ociruntime.")} == {
        "org.ociruntime.net.bridge": "oci-api0", "org.ociruntime.net.subnet": "10.99.0.0/24",
        "org.ociruntime.net.nat": "true", "org.ociruntime.net.ports": "8080:80/tcp,53:53/udp",
        "org.ociruntime.overlay.lower": "/srv/lower1:/srv/lower2", "org.ociruntime.overlay.upper": "tmpfs:size=1m"}
    assert Bundle("x").overlay(keep=True).annotations == {"org.ociruntime.overlay": "true",
                                                          "org.ociruntime.overlay.keep": "true"}
    from ociruntime.network import ANNOTATIONS as NET
    from ociruntime.rootfs.overlay import ANNOTATIONS as OVERLAY
    every = Bundle("x").network("b", "s", gateway="g", address="a", nat=False, ports=[], firewall="f")
    assert set(every.annotations) == set(NET)             # the names the features read
    assert set(Bundle("x").overlay("l", upper="u", keep=True).overlay().annotations) == set(OVERLAY)
    for key in [k for k in ann if k.startswith("org.ociruntime.")]:
        del ann[key]                                      # (their features are not on this branch)
    b.write()
    assert Bundle.load(b.path).config == b.config
    with c.create(b):
        assert c.state().annotations == {"org.example.mode": "test", "org.example.flag": "true"}
        assert runtime.state(c.id)["annotations"] == c.state().annotations
    with pytest.raises(TypeError):
        b.args = "sleep 100"


def test_unwritable_bundle_is_a_config_error(make, tmp_path):
    from ociruntime.errors import ConfigError
    (tmp_path / "file").write_text("")
    b = Bundle(tmp_path / "file" / "bundle", args=["true"])
    _, c = make()
    with pytest.raises(ConfigError) as e:
        c.create(b)
    assert str(e.value) == "write %s: Not a directory" % (tmp_path / "file" / "bundle")


def test_overlay_through_the_bundle(make, runtime, shared_rootfs):
    """Bundle.overlay(): the process writes into its own upper; the lower (the shared rootfs,
    which conftest checks byte for byte) is unchanged, and nothing is left after run."""
    b, c = make("sh", "-c", "echo api > /etc/written; rm /bin/ls; cat /etc/written; test -e /bin/ls || echo gone")
    b.config["root"]["readonly"] = False
    b.overlay(upper="tmpfs:size=4m")
    assert run_out(c, b)[:2] == ["api", "gone"]
    assert not (shared_rootfs / "etc" / "written").exists() and (shared_rootfs / "bin" / "ls").exists()
    assert not os.path.exists(os.path.join(c.root, c.id))


def test_network_through_the_bundle(make, runtime, tmp_path):
    """Bundle.network(): the container gets eth0 with the first address of the subnet and a default
    route through the bridge.  The API runs in a network namespace the test makes (a Python child
    entered into it with nsenter), where the bridge is made and removed; runc has no such thing."""
    import json
    import secrets
    import subprocess
    import sys
    if not os.path.exists("/usr/bin/nsenter") and not os.path.exists("/bin/nsenter"):
        pytest.skip("nsenter (util-linux) is not installed")
    ns = "oci-test-%s-api%s" % (runtime.token, secrets.token_hex(2))
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=10)
        b, c = make("sh", "-c", "ip -4 -o addr show eth0; ip route")
        prefix = "10.%d.%d" % (200 + secrets.randbelow(50), secrets.randbelow(250))
        b.network("br-api" + ns[-4:], prefix + ".0/24")
        script = ("import json, sys; from ociruntime import Bundle, Container; "
                  "b = Bundle.load(sys.argv[1]); c = Container(sys.argv[2], root=sys.argv[3]); "
                  "r = c.run(b, capture_output=True); "
                  "print(json.dumps([r.returncode, r.stdout.decode(), r.stderr.decode()]))")
        b.write()
        p = subprocess.run(["nsenter", "--net=/run/netns/" + ns, "--", sys.executable, "-P", "-c", script,
                            str(b.path), c.id, c.root], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        rc, out, err = json.loads(p.stdout)
        assert rc == 0, err
        assert "inet %s.2/24" % prefix in out and "default via %s.1 dev eth0" % prefix in out
        links = subprocess.run(["ip", "-n", ns, "-o", "link"], capture_output=True, text=True).stdout
        assert [ln.split(":")[1].strip() for ln in links.splitlines()] == ["lo"]   # all went with the container
    finally:
        subprocess.run(["ip", "netns", "delete", ns], timeout=10)
