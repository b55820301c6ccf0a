"""config.json validation: the runtime-spec v1.3.0 schema in spec/ and ociruntime.validate.

Runs without root and without conftest fixtures (only pytest's own tmp_path / monkeypatch).
"""
import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import default_spec
from ociruntime import validate
from ociruntime.errors import ConfigError
from ociruntime.validate import validate_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(REPO, "spec")
GENERATED = os.path.join(REPO, "ociruntime", "_validator_gen.py")

# What `runc spec` (runc 1.1.5, spec 1.0.2-dev) prints: the tests' bundle config (which test_harness
# checks against runc's own output where runc is installed) with its terminal on.
RUNC_SPEC = default_spec()
RUNC_SPEC["process"]["terminal"] = True

# A fuller config touching most Linux sections (modelled on the spec's own example).
FULL_LINUX = {
    "ociVersion": "1.3.0",
    "process": {
        "terminal": True, "consoleSize": {"height": 24, "width": 80},
        "user": {"uid": 1, "gid": 1, "umask": 18, "additionalGids": [5, 6]},
        "args": ["sh"], "env": ["TERM=xterm"], "cwd": "/",
        "capabilities": {"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                         "inheritable": [], "effective": ["CAP_KILL"], "ambient": []},
        "rlimits": [{"type": "RLIMIT_CORE", "hard": 1024, "soft": 1024}],
        "apparmorProfile": "acme_secure_profile",
        "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
        "oomScoreAdj": -1000, "noNewPrivileges": True,
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "scheduler": {"policy": "SCHED_OTHER", "nice": -5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
        "execCPUAffinity": {"initial": "0-3, 7", "final": "1"},
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "slartibartfast", "domainname": "foobarbaz.test",
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/data", "source": "/srv/data", "options": ["rbind", "idmap"],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}],
    "hooks": {
        "prestart": [{"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "a"],
                      "env": ["k=v"]}],
        "createRuntime": [{"path": "/usr/bin/setup-network"}],
        "createContainer": [{"path": "/usr/bin/mount-hook"}],
        "startContainer": [{"path": "/usr/bin/refresh-ldcache"}],
        "poststart": [{"path": "/usr/bin/notify-start", "timeout": 5}],
        "poststop": [{"path": "/usr/sbin/cleanup.sh", "args": ["cleanup.sh", "-f"]}],
    },
    "annotations": {"com.example.key1": "value1", "org.opencontainers.image.os": "linux"},
    "linux": {
        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                     "fileMode": 438, "uid": 0, "gid": 0}],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "cgroupsPath": "/myRuntime/myContainer",
        "resources": {
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
            "pids": {"limit": 32771},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 9223372036854772000}],
            "memory": {"limit": 536870912, "reservation": 536870912, "swap": 536870912,
                       "kernel": -1, "kernelTCP": -1, "swappiness": 0,
                       "disableOOMKiller": False, "useHierarchy": False,
                       "checkBeforeUpdate": False},
            "cpu": {"shares": 1024, "quota": 1000000, "burst": 1000000, "period": 500000,
                    "realtimeRuntime": 950000, "realtimePeriod": 1000000, "cpus": "2-3",
                    "mems": "0-7", "idle": 0},
            "devices": [{"allow": False, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
            "blockIO": {"weight": 10, "leafWeight": 10,
                        "weightDevice": [{"major": 8, "minor": 0, "weight": 500,
                                          "leafWeight": 300}],
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
            "unified": {"memory.high": "max"},
        },
        "rootfsPropagation": "slave",
        "seccomp": {
            "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["getcwd", "chmod"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 1,
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}],
        },
        "timeOffsets": {"monotonic": {"secs": 172800, "nanosecs": 0}},
        "namespaces": [{"type": t} for t in
                       ("pid", "network", "ipc", "uts", "mount", "user", "cgroup", "time")],
        "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
        "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811",
        "intelRdt": {"closID": "guaranteed_group", "schemata": ["L3:0=ff"],
                     "memBwSchema": "MB:0=20", "enableMonitoring": True},
        "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0-3",
                         "flags": ["MPOL_F_STATIC_NODES"]},
        "personality": {"domain": "LINUX32", "flags": []},
        "netDevices": {"eth0": {"name": "container_eth0"}, "ens4": {}},
    },
}

VALID = {
    "runc-spec": RUNC_SPEC,
    "full-linux": FULL_LINUX,
    # upstream schema/test/config/good/*
    "minimal": {"ociVersion": "1.0.0", "root": {"path": "rootfs"}},
    "minimal-for-start": {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
                          "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}}},
    "linux-netdevice": {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
                        "linux": {"netDevices": {"eth0": {"name": "container_eth0"},
                                                 "ens4": {}, "ens5": {}}}},
    "linux-rdma": {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
                   "linux": {"resources": {"rdma": {"mlx5_1": {"hcaHandles": 3,
                                                               "hcaObjects": 10000},
                                                    "mlx4_0": {"hcaObjects": 1000}}}}},
    "freebsd-minimal": {"ociVersion": "1.3.0", "root": {"path": "rootfs"}, "freebsd": {}},
    "zos-minimal": {"ociVersion": "1.0.0", "root": {"path": "rootfs"}, "zos": {}},
    # the schema only requires ociVersion; everything else is optional
    "only-ociVersion": {"ociVersion": "1.3.0"},
    # unknown properties are allowed everywhere (no additionalProperties: false upstream)
    "extensions": {"ociVersion": "1.3.0", "x-vendor": {"a": 1},
                   "process": {"cwd": "/", "args": ["sh"], "future": True}},
    # no args at all is fine (the spec needs them only at start); only an EMPTY list is refused
    "process-without-args": {"ociVersion": "1.3.0", "process": {"cwd": "/"}},
    # Python's re (jsonschema's engine) lets '$' match before a final newline
    "pattern-dollar-newline": {"ociVersion": "1.3.0", "process": {
        "cwd": "/", "args": ["sh"], "rlimits": [{"type": "RLIMIT_NOFILE\n", "hard": 1,
                                                 "soft": 1}]}},
    # an empty annotation key is not matched by the ".{1,}" pattern: anything goes
    "annotation-empty-key": {"ociVersion": "1.3.0", "annotations": {"": 5}},
}


def _with(**changes):
    """RUNC_SPEC changed by {dotted.path: value} (value DROP removes the key)."""
    def apply(doc):
        for path, value in changes.items():
            parts = path.split("__")
            node = doc
            for part in parts[:-1]:
                node = node[int(part)] if isinstance(node, list) else node[part]
            last = int(parts[-1]) if isinstance(node, list) else parts[-1]
            if value is DROP:
                del node[last]
            else:
                node[last] = value
        return doc
    return apply


DROP = object()

# (name, mutation of RUNC_SPEC, exact message)
INVALID = [
    ("empty-args", _with(process__args=[]),
     "config.json: process.args: [] should be non-empty"),
    ("no-ociVersion", _with(ociVersion=DROP),
     "config.json: 'ociVersion' is a required property"),
    ("ociVersion-number", _with(ociVersion=1.0),
     "config.json: ociVersion: 1.0 is not of type 'string'"),
    ("mount-without-destination", _with(mounts__1__destination=DROP),
     "config.json: mounts[1]: 'destination' is a required property"),
    ("mount-destination-int", _with(mounts__0__destination=5),
     "config.json: mounts[0].destination: 5 is not of type 'string'"),
    ("mounts-object", _with(mounts={}),
     "config.json: mounts: {} is not of type 'array'"),
    ("bad-namespace-type", _with(linux__namespaces__0__type="foo"),
     "config.json: linux.namespaces[0].type: 'foo' is not one of "
     "['mount', 'pid', 'network', 'uts', 'ipc', 'user', 'cgroup', 'time']"),
    ("namespace-without-type", _with(linux__namespaces__2={"path": "/proc/1/ns/ipc"}),
     "config.json: linux.namespaces[2]: 'type' is a required property"),
    ("uid-string", _with(process__user__uid="0"),
     "config.json: process.user.uid: '0' is not of type 'integer'"),
    ("uid-negative", _with(process__user__uid=-1),
     "config.json: process.user.uid: -1 is less than the minimum of 0"),
    ("uid-float", _with(process__user__uid=0.0),
     "config.json: process.user.uid: 0.0 is not of type 'integer'"),
    ("uid-bool", _with(process__user__uid=True),
     "config.json: process.user.uid: True is not of type 'integer'"),
    ("gid-too-big", _with(process__user__gid=2 ** 32),
     "config.json: process.user.gid: 4294967296 is greater than the maximum of 4294967295"),
    ("additionalGids-negative", _with(process__user__additionalGids=[1, -5]),
     "config.json: process.user.additionalGids[1]: -5 is less than the minimum of 0"),
    ("root-without-path", _with(root__path=DROP),
     "config.json: root: 'path' is a required property"),
    ("process-without-cwd", _with(process__cwd=DROP),
     "config.json: process: 'cwd' is a required property"),
    ("args-string", _with(process__args="sh"),
     "config.json: process.args: 'sh' is not of type 'array'"),
    ("args-null-item", _with(process__args=["sh", None]),
     "config.json: process.args[1]: None is not of type 'string'"),
    ("env-int", _with(process__env=["A=b", 5]),
     "config.json: process.env[1]: 5 is not of type 'string'"),
    ("terminal-string", _with(process__terminal="yes"),
     "config.json: process.terminal: 'yes' is not of type 'boolean'"),
    ("capabilities-string", _with(process__capabilities__bounding="CAP_KILL"),
     "config.json: process.capabilities.bounding: 'CAP_KILL' is not of type 'array'"),
    ("rlimit-type-pattern", _with(process__rlimits__0__type="NOFILE"),
     "config.json: process.rlimits[0].type: 'NOFILE' does not match '^RLIMIT_[A-Z]+$'"),
    ("rlimit-without-soft", _with(process__rlimits__0__soft=DROP),
     "config.json: process.rlimits[0]: 'soft' is a required property"),
    ("consoleSize-without-width", _with(process__consoleSize={"height": 24}),
     "config.json: process.consoleSize: 'width' is a required property"),
    ("ioPriority-class", _with(process__ioPriority={"class": "IOPRIO_CLASS_FOO"}),
     "config.json: process.ioPriority.class: 'IOPRIO_CLASS_FOO' is not one of "
     "['IOPRIO_CLASS_RT', 'IOPRIO_CLASS_BE', 'IOPRIO_CLASS_IDLE']"),
    ("scheduler-nice-int32", _with(process__scheduler={"policy": "SCHED_OTHER", "nice": 2 ** 31}),
     "config.json: process.scheduler.nice: 2147483648 is greater than the maximum of 2147483647"),
    ("hook-without-path", _with(hooks={"prestart": [{"args": ["x"]}]}),
     "config.json: hooks.prestart[0]: 'path' is a required property"),
    ("hook-timeout-zero", _with(hooks={"poststop": [{"path": "/bin/true", "timeout": 0}]}),
     "config.json: hooks.poststop[0].timeout: 0 is less than the minimum of 1"),
    ("annotation-not-string", _with(annotations={"com.example.key": 1}),
     "config.json: annotations[\"com.example.key\"]: 1 is not of type 'string'"),
    ("sysctl-not-string", _with(linux__sysctl={"net.ipv4.ip_forward": 1}),
     "config.json: linux.sysctl[\"net.ipv4.ip_forward\"]: 1 is not of type 'string'"),
    ("uidMapping-without-size", _with(linux__uidMappings=[{"containerID": 0, "hostID": 1000}]),
     "config.json: linux.uidMappings[0]: 'size' is a required property"),
    ("seccomp-without-defaultAction", _with(linux__seccomp={"syscalls": []}),
     "config.json: linux.seccomp: 'defaultAction' is a required property"),
    ("seccomp-bad-action", _with(linux__seccomp={"defaultAction": "SCMP_ACT_BOGUS"}),
     "config.json: linux.seccomp.defaultAction: 'SCMP_ACT_BOGUS' is not one of "
     "['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', "
     "'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY']"),
    ("seccomp-empty-names", _with(linux__seccomp={
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}),
     "config.json: linux.seccomp.syscalls[0].names: [] should be non-empty"),
    ("pids-without-limit", _with(linux__resources__pids={}),
     "config.json: linux.resources.pids: 'limit' is a required property"),
    ("memory-limit-string", _with(linux__resources__memory={"limit": "1G"}),
     "config.json: linux.resources.memory.limit: '1G' is not of type 'integer'"),
    ("blkio-weight-uint16", _with(linux__resources__blockIO={"weight": 70000}),
     "config.json: linux.resources.blockIO.weight: 70000 is greater than the maximum of 65535"),
    ("weightDevice-without-major", _with(linux__resources__blockIO={
        "weightDevice": [{"minor": 0, "weight": 10}]}),
     "config.json: linux.resources.blockIO.weightDevice[0]: 'major' is a required property"),
    ("device-cgroup-without-allow", _with(linux__resources__devices=[{"access": "rwm"}]),
     "config.json: linux.resources.devices[0]: 'allow' is a required property"),
    ("device-type-pattern", _with(linux__devices=[{"path": "/dev/null", "type": "x"}]),
     "config.json: linux.devices[0].type: 'x' does not match '^[cbup]$'"),
    ("device-fileMode", _with(linux__devices=[{"path": "/dev/null", "type": "c",
                                               "fileMode": 512}]),
     "config.json: linux.devices[0].fileMode: 512 is greater than the maximum of 511"),
    ("rootfsPropagation", _with(linux__rootfsPropagation="bogus"),
     "config.json: linux.rootfsPropagation: 'bogus' is not one of "
     "['private', 'shared', 'slave', 'unbindable', 'rprivate', 'rshared', 'rslave', 'runbindable']"),
    ("rootfsPropagation-case", _with(linux__rootfsPropagation="RSHARED"),
     "config.json: linux.rootfsPropagation: 'RSHARED' is not one of "
     "['private', 'shared', 'slave', 'unbindable', 'rprivate', 'rshared', 'rslave', 'runbindable']"),
    # upstream schema/test/config/bad/*
    ("upstream-linux-hugepage", _with(linux__resources__hugepageLimits=[
        {"limit": 1234123, "pageSize": "64kB"}]),
     "config.json: linux.resources.hugepageLimits[0].pageSize: '64kB' does not match "
     "'^[1-9][0-9]*[KMG]B$'"),
    ("upstream-linux-netdevice", _with(linux__netDevices={"eth0": {"name": 23}}),
     "config.json: linux.netDevices.eth0.name: 23 is not of type 'string'"),
    ("upstream-linux-rdma", _with(linux__resources__rdma={"mlx5_1": {"hcaHandles": "x"}}),
     "config.json: linux.resources.rdma.mlx5_1.hcaHandles: 'x' is not of type 'integer'"),
    ("upstream-freebsd-vnet-disable", _with(freebsd={"jail": {"vnet": "disable"}}),
     "config.json: freebsd.jail.vnet: 'disable' is not one of ['new', 'inherit']"),
    ("windows-without-layerFolders", _with(windows={}),
     "config.json: windows: 'layerFolders' is a required property"),
    ("vm-without-kernel", _with(vm={}),
     "config.json: vm: 'kernel' is a required property"),
]


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_configs(name):
    validate_config(copy.deepcopy(VALID[name]))


@pytest.mark.parametrize("value", ["private", "rprivate", "shared", "rshared", "slave", "rslave",
                                   "unbindable", "runbindable"])
def test_every_rootfs_propagation_runc_accepts(value):
    """The schema's four and their recursive forms (spec/README.md: containerd's CRI writes rslave
    and rshared); the fast validator accepts them itself, without the reference's second look."""
    doc = copy.deepcopy(RUNC_SPEC)
    doc["linux"]["rootfsPropagation"] = value
    validate_config(doc)
    validate._load_fast()(doc)


@pytest.mark.parametrize("name,mutate,message", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_configs(name, mutate, message):
    doc = mutate(copy.deepcopy(RUNC_SPEC))
    with pytest.raises(ConfigError) as info:
        validate_config(doc)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("doc,message", [
    ([], "config.json: [] is not of type 'object'"),
    (None, "config.json: None is not of type 'object'"),
    ({}, "config.json: 'ociVersion' is a required property"),
])
def test_invalid_root(doc, message):
    with pytest.raises(ConfigError) as info:
        validate_config(doc)
    assert str(info.value) == message


def test_message_stays_on_one_line():
    doc = copy.deepcopy(RUNC_SPEC)
    doc["process"]["terminal"] = "multi\nline"
    with pytest.raises(ConfigError) as info:
        validate_config(doc)
    assert str(info.value) == r"config.json: process.terminal: 'multi\nline' is not of type 'boolean'"


def _runtime_spec(tool, tmp_path, *flags):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not on PATH")
    out = subprocess.run([tool, "spec", *flags], cwd=tmp_path, capture_output=True, text=True,
                         timeout=30)
    if out.returncode != 0:
        pytest.skip(f"{tool} spec {' '.join(flags)} failed: {out.stderr.strip()}")
    with open(tmp_path / "config.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("tool", ["runc", "crun"])
@pytest.mark.parametrize("flags", [(), ("--rootless",)], ids=["default", "rootless"])
def test_runtime_spec_output_validates(tool, flags, tmp_path):
    doc = _runtime_spec(tool, tmp_path, *flags)
    validate_config(doc)
    assert validate.explain(doc) is None


def test_fast_rejects_reference_accepts_means_accept(monkeypatch):
    def always_fails(doc):
        raise ValueError("generated validator disagrees")
    monkeypatch.setattr(validate, "_fast", always_fails)
    validate_config(copy.deepcopy(RUNC_SPEC))  # jsonschema has the last word: accepted
    with pytest.raises(ConfigError, match=r"^config\.json: process\.args: \[\] should be non-empty$"):
        validate_config(_with(process__args=[])(copy.deepcopy(RUNC_SPEC)))


def test_fast_and_reference_agree_on_the_tables():
    from ociruntime._validator_gen import validate as fast
    ref = validate.reference_validator()
    docs = [copy.deepcopy(d) for d in VALID.values()]
    docs += [mutate(copy.deepcopy(RUNC_SPEC)) for _, mutate, _ in INVALID]
    for doc in docs:
        try:
            fast(copy.deepcopy(doc))
            fast_ok = True
        except Exception:
            fast_ok = False
        assert fast_ok == ref.is_valid(doc), doc


def test_reference_validator_uses_draft4_and_local_files(monkeypatch):
    import urllib.request

    import jsonschema

    def no_network(*args, **kwargs):
        raise AssertionError("a $ref was fetched over the network")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(validate, "_reference", None)
    ref = validate.reference_validator()
    assert isinstance(ref, jsonschema.Draft4Validator)
    # touches refs into defs.json, defs-linux.json, config-linux.json
    assert ref.is_valid(copy.deepcopy(FULL_LINUX))
    assert not ref.is_valid({"ociVersion": "1", "freebsd": {"jail": {"vnet": "disable"}}})


def test_format_path():
    assert validate.format_path([]) == ""
    assert validate.format_path(["linux", "namespaces", 0, "type"]) == "linux.namespaces[0].type"
    assert validate.format_path(["mounts", 2, "destination"]) == "mounts[2].destination"
    assert validate.format_path([0]) == "[0]"
    assert validate.format_path(["annotations", "a.b"]) == 'annotations["a.b"]'
    assert validate.format_path(["linux", "netDevices", "eth-0_1"]) == "linux.netDevices.eth-0_1"
    assert validate.format_path(["x", ""]) == 'x[""]'


# ---------------------------------------------------------------------------------------------
# spec/ files and the generated module

SPEC_FILES = ["config-schema.json", "config-linux.json", "config-solaris.json",
              "config-windows.json", "config-vm.json", "config-zos.json", "config-freebsd.json",
              "defs.json", "defs-linux.json", "defs-windows.json", "defs-vm.json",
              "defs-zos.json", "defs-freebsd.json", "state-schema.json", "features-schema.json",
              "features-linux.json"]


def test_spec_files_present_and_refs_resolve_locally():
    names = sorted(n for n in os.listdir(SPEC) if n.endswith(".json"))
    assert names == sorted(SPEC_FILES)
    docs = {}
    for name in names:
        with open(os.path.join(SPEC, name), encoding="utf-8") as f:
            docs[name] = json.load(f)
    refs = []

    def walk(node, where):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append((where, node["$ref"]))
            for v in node.values():
                walk(v, where)
        elif isinstance(node, list):
            for v in node:
                walk(v, where)
    for name, doc in docs.items():
        walk(doc, name)
    assert refs
    for where, ref in refs:
        file_part, _, fragment = ref.partition("#")
        target = docs[file_part or where]
        for token in fragment.strip("/").split("/"):
            target = target[token]
        assert isinstance(target, dict), (where, ref)
    for name in ("config-schema.json", "state-schema.json", "features-schema.json"):
        assert docs[name]["$schema"] == "http://json-schema.org/draft-04/schema#"


@pytest.mark.parametrize("schema,good,bad,message", [
    ("state-schema.json",
     {"ociVersion": "1.3.0", "id": "c1", "status": "running", "pid": 42, "bundle": "/b"},
     {"ociVersion": "1.3.0", "id": "c1", "status": "paused", "bundle": "/b"},
     "'paused' is not one of ['creating', 'created', 'running', 'stopped']"),
    ("features-schema.json",
     {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0",
      "linux": {"namespaces": ["pid"], "capabilities": ["CAP_KILL"]}},
     {"ociVersionMin": "1.1.0"},
     "'ociVersionMax' is a required property"),
])
def test_state_and_features_schemas(schema, good, bad, message):
    import jsonschema
    import referencing
    from referencing.jsonschema import DRAFT4
    resources = []
    for name in SPEC_FILES:
        with open(os.path.join(SPEC, name), encoding="utf-8") as f:
            resources.append((name, DRAFT4.create_resource(json.load(f))))
    registry = referencing.Registry().with_resources(resources)
    root = registry.contents(schema)
    v = jsonschema.Draft4Validator(root, registry=registry)
    assert list(v.iter_errors(good)) == []
    assert jsonschema.exceptions.best_match(v.iter_errors(bad)).message == message


def _generator():
    """tools/gen_validator.py as a module (fastjsonschema is imported by its generate() only)."""
    spec = importlib.util.spec_from_file_location("gen_validator", os.path.join(REPO, "tools", "gen_validator.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen


def test_generated_module_matches_spec_files():
    from ociruntime import _validator_gen
    assert _validator_gen.SPEC_SHA256 == _generator().spec_digest(SPEC), \
        "spec/ changed: run python3 tools/gen_validator.py"


def test_generated_modules_are_what_the_generator_writes():
    """The core module and every part (none missing, none left over from an earlier split)."""
    pytest.importorskip("fastjsonschema")
    gen = _generator()
    files = gen.generate()
    assert len(files) > 2 and gen.stale_files(files, os.path.dirname(GENERATED)) == [], \
        "stale: run python3 tools/gen_validator.py"


def test_generated_parts_load_only_for_configs_that_have_them():
    """A runc spec config loads none of the moved members' modules; one with seccomp and a
    memory limit loads exactly those two, and an invalid value in a part is refused."""
    code = (
        "import sys, json\n"
        "from ociruntime._validator_gen import validate, JsonSchemaValueException\n"
        f"cfg = json.loads({json.dumps(json.dumps(RUNC_SPEC))})\n"
        "validate(cfg)\n"
        "parts = lambda: sorted(m.rpartition('.')[2] for m in sys.modules if m.startswith('ociruntime._validator_parts.'))\n"
        "assert parts() == [], parts()\n"
        "cfg['linux']['seccomp'] = {'defaultAction': 'SCMP_ACT_ALLOW'}\n"
        "cfg['linux']['resources']['memory'] = {'limit': 1 << 20}\n"
        "validate(cfg)\n"
        "assert parts() == ['linux_resources_memory', 'linux_seccomp'], parts()\n"
        "cfg['linux']['seccomp'] = {'defaultAction': 'SCMP_ACT_NOPE'}\n"
        "try:\n"
        "    validate(cfg)\n"
        "except JsonSchemaValueException:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('accepted an unknown seccomp action')\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr


def test_generated_module_needs_neither_fastjsonschema_nor_jsonschema():
    with open(GENERATED, encoding="utf-8") as f:
        source = f.read()
    assert "import fastjsonschema" not in source and "from fastjsonschema" not in source
    code = (
        "import sys, json\n"
        "from ociruntime.validate import validate_config\n"
        f"validate_config(json.loads({json.dumps(json.dumps(RUNC_SPEC))}))\n"
        "bad = [m for m in ('fastjsonschema', 'jsonschema', 'referencing', 'decimal')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
        "assert 'ociruntime._validator_gen' in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
