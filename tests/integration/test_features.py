"""features: the runtime-spec features document lists only what works, in runc's shape."""

import json
import os

import pytest

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "spec")


@pytest.fixture
def features(runtime):
    r = runtime.run("features", check=True)
    assert r.err == ""
    return json.loads(r.out)


def test_features_valid_against_schema(features):
    import jsonschema.validators
    import referencing
    import referencing.jsonschema

    docs = {}
    for name in os.listdir(SPEC):
        if name.endswith(".json"):
            with open(os.path.join(SPEC, name)) as f:
                docs[name] = json.load(f)
    root = docs["features-schema.json"]
    spec = referencing.jsonschema.specification_with(root["$schema"])
    registry = referencing.Registry().with_resources((n, spec.create_resource(d)) for n, d in docs.items())
    cls = jsonschema.validators.validator_for(root)
    cls(root, registry=registry).validate(features)


def test_features_shape_like_runc(features):
    assert features["ociVersionMin"] == "1.0.0"
    assert features["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer",
                                 "poststart", "poststop"]
    linux = features["linux"]
    assert set(linux) >= {"namespaces", "capabilities", "cgroup", "seccomp", "apparmor", "selinux"}
    assert set(linux["namespaces"]) >= {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"}
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert len(linux["capabilities"]) == int(f.read()) + 1
    assert linux["capabilities"][0] == "CAP_CHOWN"


@pytest.mark.ociruntime_only
def test_features_list_only_what_works(features, runtime, bundle):
    linux = features["linux"]
    # nothing this host cannot do: no AppArmor/SELinux here, no systemd, no idmapped mounts
    assert linux["apparmor"] == {"enabled": os.path.isdir("/sys/kernel/security/apparmor")}
    assert linux["selinux"] == {"enabled": os.path.exists("/sys/fs/selinux/enforce")}
    with open("/proc/self/mountinfo") as f:
        pure_v2 = [ln.partition(" - ")[2].split()[0] for ln in f if " - cgroup" in ln] == ["cgroup2"]
    assert linux["cgroup"]["systemd"] is (os.path.isdir("/run/systemd/system") and pure_v2)
    assert linux["mountExtensions"]["idmap"]["enabled"] is False
    assert "tmpcopyup" not in features["mountOptions"]
    # every listed mount option is accepted on a real mount (one container, one tmpfs per option)
    b = bundle("true")
    b.copy_rootfs()
    for i, o in enumerate(o for o in features["mountOptions"] if o not in ("remount", "bind", "rbind")):
        b.config["mounts"].append({"destination": f"/mnt/o{i}", "type": "tmpfs", "source": "tmpfs",
                                   "options": [o]})
    r = runtime.run_container(b)
    assert r.rc == 0, r.err


@pytest.mark.ociruntime_only
def test_features_seccomp_tables_work(features, runtime, bundle):
    sc = features["linux"]["seccomp"]
    assert sc["enabled"] is True
    assert "SCMP_ARCH_X86_64" in sc["archs"]
    assert set(sc["actions"]) >= {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL"}
    # each listed operator is accepted in a profile that the container then runs with
    b = bundle("true")
    b.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 0xdead, "valueTwo": 0xdead if op == "SCMP_CMP_MASKED_EQ" else 0,
                                "op": op}]} for op in sc["operators"]]}
    r = runtime.run_container(b)
    assert r.rc == 0, r.err


def test_features_takes_no_argument(runtime):
    r = runtime.run("features", "extra")
    runtime.refused(r, "features")


@pytest.mark.ociruntime_only
def test_features_list_the_annotations_of_networking_and_the_overlay(features):
    """Each annotation the runtime understands is listed with what it takes (README: Networking,
    Copy-on-write rootfs)."""
    ann = features["annotations"]
    for key in ("bridge", "subnet", "gateway", "address", "nat", "ports", "firewall"):
        assert ann["org.ociruntime.net." + key]
    for key in ("", ".lower", ".upper", ".keep"):
        assert ann["org.ociruntime.overlay" + key]
    assert "org.ociruntime.net.enabled" not in ann
