"""linux.resources.devices: the config's rules followed by runc's default allowed devices.

v1 writes them, in order, to devices.deny / devices.allow of the container's own cgroup, after a
deny of everything when the list does not start with a type-"a" rule: like runc, the rules apply
to a deny-all start, not to what the new cgroup inherited.  v2 loads an eBPF program generated
from the same list (ebpf.py).
"""
import posix

from ociruntime import join
from ociruntime.errors import CgroupError

# runc's AllowedDevices, appended after the config's rules
DEFAULT_ALLOWED = (
    ("c", None, None, "m"), ("b", None, None, "m"),
    ("c", 1, 3, "rwm"), ("c", 1, 8, "rwm"), ("c", 1, 7, "rwm"), ("c", 5, 0, "rwm"),
    ("c", 1, 5, "rwm"), ("c", 1, 9, "rwm"), ("c", 5, 1, "rwm"), ("c", 136, None, "rwm"),
    ("c", 5, 2, "rwm"), ("c", 10, 200, "rwm"),
)


def rules(resources):
    out = []
    for r in (resources or {}).get("devices") or ():
        out.append((bool(r.get("allow")), r.get("type") or "a", r.get("major"), r.get("minor"),
                    r.get("access") or "rwm"))
    out += [(True, t, ma, mi, acc) for t, ma, mi, acc in DEFAULT_ALLOWED]
    return out


def _fmt(t, major, minor, access):
    if t == "a":
        return "a"
    return "%s %s:%s %s" % (t, "*" if major is None or major < 0 else major,
                            "*" if minor is None or minor < 0 else minor, access)


def apply_v1(cgdir, resources):
    """Each rule one write(2) to devices.deny or devices.allow, each file opened once (this is on
    create's critical path: the child waits for the cgroups before it forks the init)."""
    todo = rules(resources)
    if todo[0][1] != "a":
        todo.insert(0, (False, "a", None, None, "rwm"))
    fds = {}
    try:
        for allow, t, major, minor, access in todo:
            name = "devices.allow" if allow else "devices.deny"
            line = _fmt(t, major, minor, access)
            try:
                if name not in fds:
                    fds[name] = posix.open(join(cgdir, name), posix.O_WRONLY | posix.O_CLOEXEC)
                posix.write(fds[name], line.encode())
            except OSError as e:
                raise CgroupError("write %r to %s/%s: %s" % (line, cgdir, name, e.strerror)) from None
    finally:
        for fd in fds.values():
            posix.close(fd)
