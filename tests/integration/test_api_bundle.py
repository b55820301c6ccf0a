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
