"""OCI namespace types -> clone flags, the order namespaces are joined and created, id maps."""
import os

from ociruntime import _sys
from ociruntime.errors import ConfigError, InitError

FLAGS = {
    "user": _sys.CLONE_NEWUSER,
    "pid": _sys.CLONE_NEWPID,
    "network": _sys.CLONE_NEWNET,
    "ipc": _sys.CLONE_NEWIPC,
    "uts": _sys.CLONE_NEWUTS,
    "mount": _sys.CLONE_NEWNS,
    "cgroup": _sys.CLONE_NEWCGROUP,
    "time": _sys.CLONE_NEWTIME,
}
PROC_NAME = {"user": "user", "pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts",
             "mount": "mnt", "cgroup": "cgroup", "time": "time"}
# user first: joining it gives the capabilities the others need; mount last: the paths of the
# others are resolved in the host's mount namespace.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def open_joins(nsmap):
    """Open every namespace given by path (in the host's mount namespace, before anything
    changes); returns [(type, fd, path)] in join order."""
    out = []
    for t in JOIN_ORDER:
        path = nsmap.get(t)
        if t in nsmap and path:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                for _, f, _ in out:
                    os.close(f)
                raise ConfigError("linux.namespaces: %s namespace path %s: %s" % (t, path, e.strerror)) from None
            out.append((t, fd, path))
    return out


def join(joins):
    for t, fd, path in joins:
        try:
            _sys.setns(fd, FLAGS[t])
        except OSError as e:
            raise InitError("join %s namespace" % t, e.errno, path) from None
        os.close(fd)


def new_flags(nsmap, exclude=()):
    """clone flags for the namespaces to create (given without a path)."""
    flags = 0
    for t, path in nsmap.items():
        if not path and t not in exclude:
            flags |= FLAGS[t]
    return flags


def format_idmap(mappings):
    return "".join("%d %d %d\n" % (m["containerID"], m["hostID"], m["size"]) for m in mappings)


def write_idmaps(pid, uid_mappings, gid_mappings):
    """Written by the parent, which is root in the parent user namespace."""
    for name, maps in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
        if not maps:
            continue
        path = "/proc/%d/%s" % (pid, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, format_idmap(maps).encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise InitError("write %s" % name, e.errno, path) from None
