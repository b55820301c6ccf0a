"""The systemd cgroup driver's conversions, without systemd: cgroupsPath "slice:prefix:name", the
slice's cgroup path, and linux.resources as unit properties (runc's genV2ResourcesProperties)."""

import pytest

from ociruntime.cgroups import systemd
from ociruntime.errors import ConfigError

MiB = 1 << 20
MAX = (1 << 64) - 1


def test_parse_path_and_defaults():
    assert systemd.parse_path("machine.slice:libpod:abc", "id", False) == ("machine.slice", "libpod", "abc")
    assert systemd.parse_path("", "id", False) == ("system.slice", "runc", "id")
    assert systemd.parse_path("", "id", True) == ("user.slice", "runc", "id")
    assert systemd.parse_path(":p:n", "id", False) == ("system.slice", "p", "n")
    with pytest.raises(ConfigError, match='format "slice:prefix:name"'):
        systemd.parse_path("/a/b", "id", False)
    assert systemd.unit_name("libpod", "abc") == "libpod-abc.scope"
    assert systemd.unit_name("", "abc") == "abc.scope"


@pytest.mark.parametrize("name,path", [
    ("system.slice", "/system.slice"), ("-.slice", "/"), ("a-b.slice", "/a.slice/a-b.slice"),
    ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
])
def test_expand_slice(name, path):
    assert systemd.expand_slice(name) == path


@pytest.mark.parametrize("name", ["a", ".slice", "a/b.slice", "-a.slice", "a--b.slice", "a-.slice"])
def test_expand_slice_refuses(name):
    with pytest.raises(ConfigError, match="invalid slice name"):
        systemd.expand_slice(name)


def props(res, **kw):
    return dict(systemd.properties(res, **kw))


def test_memory_cpu_pids():
    p = props({"memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB},
               "cpu": {"shares": 1024, "quota": 25000, "period": 100000, "cpus": "0-2,5", "mems": "0"},
               "pids": {"limit": 10}}, skip_devices=True)
    assert p == {"MemoryMax": ("t", 64 * MiB), "MemoryLow": ("t", 32 * MiB), "MemorySwapMax": ("t", 32 * MiB),
                 "CPUWeight": ("t", 39), "CPUQuotaPeriodUSec": ("t", 100000),
                 "CPUQuotaPerSecUSec": ("t", 250000), "AllowedCPUs": ("ay", bytes([0b100111])),
                 "AllowedMemoryNodes": ("ay", b"\x01"), "TasksMax": ("t", 10)}


def test_quota_rounded_up_to_whole_percents_and_unlimited():
    assert props({"cpu": {"quota": 12345, "period": 100000}}, skip_devices=True)["CPUQuotaPerSecUSec"] == \
        ("t", 130000)
    assert props({"cpu": {"quota": -1, "period": 50000}}, skip_devices=True)["CPUQuotaPerSecUSec"] == ("t", MAX)
    assert props({"memory": {"limit": -1}, "pids": {"limit": -1}}, skip_devices=True) == {
        "MemoryMax": ("t", MAX), "MemorySwapMax": ("t", MAX), "TasksMax": ("t", MAX)}
    assert props({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}}, skip_devices=True)["MemorySwapMax"] == ("t", 0)


def test_devices():
    p = props({"devices": [{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 240, "minor": 1, "access": "rw"},
                           {"allow": True, "type": "b", "major": 8, "access": "r"}]})
    assert p["DevicePolicy"] == ("s", "strict")
    allow = p["DeviceAllow"][1]
    assert ("/dev/char/240:1", "rw") in allow and ("block-8", "r") in allow
    assert ("/dev/char/1:3", "rwm") in allow and ("char-*", "m") in allow     # runc's defaults
    assert props({"devices": [{"allow": True, "access": "rwm"}]})["DevicePolicy"] == ("s", "auto")


def test_io_and_unified():
    p = props({"blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
               "unified": {"memory.high": "1048576", "pids.max": "max", "cpu.max": "50000 100000",
                           "io.max": "8:0 rbps=1"}}, skip_devices=True)
    assert p["IOWeight"] == ("t", 1 + (500 - 10) * 9999 // 990)
    assert p["IOReadBandwidthMax"] == ("a(st)", [("/dev/block/8:0", 1000)])
    assert p["MemoryHigh"] == ("t", 1 << 20) and p["TasksMax"] == ("t", MAX)
    assert p["CPUQuotaPerSecUSec"] == ("t", 500000) and p["CPUQuotaPeriodUSec"] == ("t", 100000)
