"""The v2 translation of linux.resources, file by file, against a temporary directory laid out like a
cgroup2 tree (no root needed), plus the device-rule emulator and update's merge."""

import os
import struct

import pytest

from ociruntime.cgroups import Manager, blkio, cpu, ebpf, fs, memory, v2
from ociruntime.cgroups.devices import rules
from ociruntime.container.update import merge
from ociruntime.errors import CgroupError

MiB = 1 << 20
FILES = ["cgroup.procs", "cgroup.subtree_control", "cgroup.freeze", "cgroup.events", "cpu.weight", "cpu.max",
         "cpu.max.burst", "cpu.idle", "cpu.stat", "cpuset.cpus", "cpuset.mems", "memory.max", "memory.low",
         "memory.swap.max", "memory.current", "memory.stat", "memory.events", "io.weight", "io.max", "io.stat",
         "pids.max", "pids.current", "hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "rdma.max", "misc.max"]
CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc"


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A fake cgroup2 container directory; returns (dir, writes) where writes records every write."""
    d = tmp_path / "c"
    d.mkdir()
    for f in FILES:
        (d / f).write_text("")
    (d / "cgroup.controllers").write_text(CONTROLLERS + "\n")
    (d / "memory.current").write_text(str(10 * MiB))
    writes = []
    real = fs.write

    def record(cgdir, name, value):
        real(cgdir, name, value)
        writes.append((name, str(value)))
    monkeypatch.setattr(fs, "write", record)
    return str(d), writes


def test_full_translation(tree):
    d, writes = tree
    v2.apply(d, {
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB, "swappiness": 10,
                   "disableOOMKiller": True, "kernel": 1 * MiB},
        "cpu": {"shares": 1024, "quota": 20000, "period": 100000, "burst": 5000, "idle": 1,
                "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 42},
        "blockIO": {"weight": 500, "leafWeight": 300,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 600}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2000}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 30}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 40}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 8 * MiB}],
        "network": {"classID": 7, "priorities": [{"name": "eth0", "priority": 5}]},
        "rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 1000}},
        "unified": {"misc.max": "res_a 1", "memory.low": "1234"},
    }, skip_devices=True)
    assert writes == [
        ("pids.max", "42"),
        ("memory.swap.max", str(32 * MiB)),       # memory+swap minus memory
        ("memory.max", str(64 * MiB)),
        ("memory.low", str(32 * MiB)),
        ("io.weight", "4950"),                    # 1 + (500 - 10) * 9999 / 990; no BFQ: weightDevice ignored
        ("io.max", "8:0 rbps=1000"), ("io.max", "8:0 wbps=2000"),
        ("io.max", "8:16 riops=30"), ("io.max", "8:16 wiops=40"),
        ("cpu.weight", "39"),                     # 1 + (1024 - 2) * 9999 / 262142
        ("cpu.max", "20000 100000"), ("cpu.max.burst", "5000"), ("cpu.idle", "1"),
        ("cpuset.cpus", "0-1"), ("cpuset.mems", "0"),
        ("hugetlb.2MB.max", str(8 * MiB)), ("hugetlb.2MB.rsvd.max", str(8 * MiB)),
        ("rdma.max", "mlx5_0 hca_handle=3 hca_object=1000"),
        ("misc.max", "res_a 1"), ("memory.low", "1234"),   # unified last: it wins
    ]


@pytest.mark.parametrize("shares,weight", [(2, 1), (1024, 39), (262144, 10000), (0, 0)])
def test_shares_to_weight(shares, weight):
    assert cpu.shares_to_weight(shares) == weight


@pytest.mark.parametrize("w,iow", [(10, 1), (1000, 10000), (100, 910), (0, 0)])
def test_blkio_weight_to_io_weight(w, iow):
    assert blkio.weight_to_io_weight(w) == iow


@pytest.mark.parametrize("mem,expect", [
    ({"limit": -1}, [("memory.swap.max", "max"), ("memory.max", "max")]),
    ({"limit": 64 * MiB, "swap": 64 * MiB}, [("memory.swap.max", "0"), ("memory.max", str(64 * MiB))]),
    ({"limit": 64 * MiB, "swap": -1}, [("memory.swap.max", "max"), ("memory.max", str(64 * MiB))]),
    ({"limit": 64 * MiB}, [("memory.max", str(64 * MiB))]),
])
def test_memory_swap_conversion(tree, mem, expect):
    d, writes = tree
    memory.set_v2(d, mem)
    assert writes == expect


@pytest.mark.parametrize("cpu_res,value", [({"quota": 50000}, "50000"), ({"period": 20000}, "max 20000"),
                                           ({"quota": -1, "period": 100000}, "max 100000")])
def test_cpu_max(tree, cpu_res, value):
    d, writes = tree
    cpu.set_v2(d, cpu_res)
    assert writes == [("cpu.max", value)]


@pytest.mark.parametrize("res,words", [
    ({"memory": {"limit": 64 * MiB, "swap": 32 * MiB}}, "memory+swap limit should be >= memory limit"),
    ({"memory": {"swap": 32 * MiB}}, "unable to set swap limit without memory limit"),
    ({"memory": {"limit": 5 * MiB, "checkBeforeUpdate": True}}, "below current usage"),
    ({"cpu": {"realtimeRuntime": 1000}}, "not supported on cgroup v2"),
    ({"unified": {"../x": "1"}}, "no slashes"),
    ({"unified": {"nodot": "1"}}, "CONTROLLER.PARAMETER"),
    ({"unified": {"foo.max": "1"}}, "controller 'foo' not available"),
    ({"hugepageLimits": [{"pageSize": "1GB", "limit": 1 << 30}]}, "hugetlb.1GB.max does not exist"),
])
def test_refusals(tree, res, words):
    d, _ = tree
    with pytest.raises(CgroupError, match=words.replace("+", r"\+").replace(".", r"\.")):
        v2.apply(d, res, skip_devices=True)


def test_controller_not_delegated(tree):
    d, writes = tree
    with open(os.path.join(d, "cgroup.controllers"), "w") as f:
        f.write("memory\n")
    with pytest.raises(CgroupError, match="pids controller is not enabled"):
        v2.apply(d, {"pids": {"limit": 3}, "memory": {"limit": MiB}}, skip_devices=True)
    assert writes == []                             # checked before anything is written


def test_manager_on_fake_tree(tmp_path, tree):
    d, writes = tree
    m = Manager({"unified": (str(tmp_path), "/c", 2, "")})
    assert m.v2
    m.apply({"pids": {"limit": 5}}, skip_devices=True)
    assert writes == [("pids.max", "5")]
    (tmp_path / "c" / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    assert m.frozen()


# -- device rules

def test_emulator_whitelist_and_blacklist():
    r = rules({"devices": [{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]})
    default_allow, exc = ebpf.emulate(r)
    assert not default_allow
    assert exc[("c", 1, 3)] == 7                    # rw from the config, rwm from the defaults
    assert exc[("c", None, None)] == 1              # "c *:* m"
    default_allow, exc = ebpf.emulate([(True, "a", None, None, "rwm"), (False, "c", 1, 3, "w"),
                                       (True, "c", 1, 3, "w")])
    assert default_allow and exc == {}              # the allow took the deny back


def test_emulator_starts_from_deny_all():
    default_allow, exc = ebpf.emulate([(True, "c", 1, 3, "r")])
    assert not default_allow and exc == {("c", 1, 3): 2}


def run_program(insns, dev_type, access, major, minor):
    """A tiny interpreter for the instructions program() emits, to check the logic without the kernel."""
    ctx = [(access << 16) | dev_type, major, minor]
    reg = [0] * 11
    pc = 0
    n = len(insns) // 8
    while pc < n:
        op, regs, off, imm = struct.unpack_from("<BBhi", insns, pc * 8)
        dst, src = regs & 0xF, regs >> 4
        pc += 1
        if op == 0x61:
            reg[dst] = ctx[off // 4]
        elif op == 0x54:
            reg[dst] &= imm
        elif op == 0x74:
            reg[dst] >>= imm
        elif op == 0xbc:
            reg[dst] = reg[src]
        elif op == 0xb7:
            reg[dst] = imm
        elif op == 0x55:
            pc += off if reg[dst] != imm else 0
        elif op == 0x15:
            pc += off if reg[dst] == imm else 0
        elif op == 0x5d:
            pc += off if reg[dst] != reg[src] else 0
        elif op == 0x95:
            return reg[0]
        else:
            raise AssertionError("unknown opcode %#x" % op)
    raise AssertionError("fell off the end")


@pytest.mark.parametrize("dev,access,allowed", [
    ((2, 1, 3), 2 | 4, 1),        # /dev/null rw
    ((2, 1, 1), 2, 0),            # /dev/mem
    ((1, 7, 0), 2, 1),            # loop0 read (config rule)
    ((1, 7, 0), 2 | 4, 0),        # loop0 read+write: write not allowed
    ((1, 8, 0), 1, 1),            # mknod of any block device ("b *:* m")
    ((2, 136, 5), 2 | 4, 1),      # a pty
])
def test_program_whitelist(dev, access, allowed):
    prog = ebpf.program(rules({"devices": [{"allow": False, "access": "rwm"},
                                           {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"}]}))
    t, major, minor = dev
    assert run_program(prog, t, access, major, minor) == allowed


@pytest.mark.parametrize("dev,access,allowed", [
    ((2, 1, 11), 2, 1), ((2, 1, 11), 4, 0), ((2, 1, 11), 2 | 4, 0), ((1, 8, 0), 2 | 4, 1)])
def test_program_blacklist(dev, access, allowed):
    prog = ebpf.program([(True, "a", None, None, "rwm"), (False, "c", 1, 11, "w")])
    t, major, minor = dev
    assert run_program(prog, t, access, major, minor) == allowed


# -- update's merge

def test_update_merge_keeps_unset_values():
    old = {"memory": {"limit": 64, "swap": 128}, "cpu": {"quota": 1000, "period": 5000}, "pids": {"limit": 5},
           "devices": [{"allow": False, "access": "rwm"}]}
    new = merge(old, {"memory": {"limit": 100, "reservation": 0}, "cpu": {"quota": 2000},
                      "devices": [{"allow": True, "access": "rwm"}]})
    assert new["memory"] == {"limit": 100, "swap": 128}
    assert new["cpu"] == {"quota": 2000, "period": 5000}
    assert new["devices"] == [{"allow": False, "access": "rwm"}]     # update never changes devices
    assert merge(old, {"memory": {"limit": -1}})["memory"] == {"limit": -1, "swap": -1}


def test_cli_parsers():
    from ociruntime.cli.events import parse_duration
    from ociruntime.cli.update import ram_in_bytes
    assert ram_in_bytes("100m", "--memory") == 100 * MiB
    assert ram_in_bytes("1.5g", "--memory") == 1536 * MiB
    assert ram_in_bytes("4096", "--memory") == 4096
    assert ram_in_bytes("2KiB", "--memory") == 2048
    assert parse_duration("5s") == 5 and parse_duration("1m30s") == 90
    assert parse_duration("300ms") == pytest.approx(0.3)
