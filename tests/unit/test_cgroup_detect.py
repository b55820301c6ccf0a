"""cgroups.detect on crafted mount tables: each hierarchy once, at its mount of the whole
hierarchy, whatever else mounts it (a container running in the runtime's mount namespace mounts
cgroup hierarchies under its rootfs; a container's own view is a bind of a subtree)."""
import pytest

from ociruntime import cgroups

HOST = """\
25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,cpu,cpuacct
28 25 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:7 - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,xattr,name=systemd
"""
# a container in the host's mount namespace: its rootfs's cgroup mounts (read-only binds of its
# own cgroups, and a whole hierarchy mounted again), later in the table
OTHERS = """\
301 30 8:1 /tmp/x/rootfs /tmp/x/rootfs rw - ext4 /dev/sda1 rw
302 301 0:24 /oci-test-a /tmp/x/rootfs/sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct
303 301 0:25 / /tmp/x/rootfs/sys/fs/cgroup/memory ro - cgroup cgroup rw,memory
304 301 0:23 /oci-test-a /tmp/x/rootfs/sys/fs/cgroup/unified ro - cgroup2 cgroup2 rw
"""


@pytest.fixture
def mountinfo(monkeypatch):
    def use(text):
        monkeypatch.setattr(cgroups, "read_text", lambda path: text)
    return use


def test_each_hierarchy_once_at_the_hosts_mountpoint(mountinfo):
    mountinfo(HOST + OTHERS)
    assert cgroups.detect() == [
        ("unified", "/sys/fs/cgroup/unified", 2, ""),
        ("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct", 1, "cpu,cpuacct"),
        ("memory", "/sys/fs/cgroup/memory", 1, "memory"),
        ("systemd", "/sys/fs/cgroup/systemd", 1, "name=systemd"),
    ]


def test_a_covered_hierarchy_is_not_there(mountinfo):
    """A tmpfs over the unified hierarchy (the benchmark hides it for crun) hides it."""
    mountinfo(HOST + "40 25 0:40 / /sys/fs/cgroup/unified rw - tmpfs none rw\n")
    assert [d[0] for d in cgroups.detect()] == ["cpu,cpuacct", "memory", "systemd"]


def test_only_a_subtree_mounted(mountinfo):
    """In a container whose cgroups are binds of subtrees, those are the hierarchies it has."""
    mountinfo("50 1 0:24 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n")
    assert cgroups.detect() == [("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct", 1, "cpu,cpuacct")]
