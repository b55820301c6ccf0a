"""Cgroups: find the host's layout (pure v1, hybrid, pure v2), place the container in its cgroup.

The manager keeps, per hierarchy, the container's directory and the directories it created, so
that ``destroy`` removes exactly those and never touches a cgroup the runtime did not make.
Resource controllers (limits, freeze, stats) are added per hierarchy in v1.py / v2.py.
"""
import errno
import os
import time

from ociruntime.errors import CgroupError


def _unescape(s):
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def detect():
    """[(key, mountpoint, version, controllers-option)] for every cgroup mount of this namespace."""
    out, seen = [], set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fs = right.split()
            if not fs or fs[0] not in ("cgroup", "cgroup2"):
                continue
            mp = _unescape(left.split()[4])
            if mp in seen:
                continue
            seen.add(mp)
            if fs[0] == "cgroup2":
                out.append(("unified", mp, 2, ""))
            else:
                opts = [o for o in fs[2].split(",") if o not in ("rw", "ro") and "=" not in o or o.startswith("name=")]
                out.append((os.path.basename(mp), mp, 1, ",".join(opts)))
    return out


def own_cgroups():
    """{controllers-option or "" (v2): path} from /proc/self/cgroup."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            own[ctrls] = path
    return own


def _own_path(own, version, opts):
    if version == 2:
        return own.get("", "/")
    want = set(opts.split(","))
    for ctrls, path in own.items():
        if ctrls and set(ctrls.split(",")) == want:
            return path
    return "/"


def container_paths(cgroups_path, cid):
    """{key: (mountpoint, path inside the hierarchy, version, opts)} for the container.

    Absolute cgroupsPath is taken from each hierarchy's root; a relative one (and the default,
    the container id) nests under the runtime's own cgroup in that hierarchy, as runc does.
    """
    rel = cgroups_path if cgroups_path else cid
    own = None
    out = {}
    for key, mp, version, opts in detect():
        if rel.startswith("/"):
            p = os.path.normpath(rel)
        else:
            if own is None:
                own = own_cgroups()
            p = os.path.normpath(os.path.join(_own_path(own, version, opts), rel))
        if p == "/" or ".." in p.split("/"):
            raise CgroupError("cgroupsPath %r: must name a cgroup below the root" % cgroups_path)
        out[key] = (mp, p, version, opts)
    return out


class Manager:
    def __init__(self, paths, created=()):
        self.paths = paths          # key -> (mountpoint, cgroup path, version, opts)
        self.created = list(created)  # directories made by create(), parents first

    @classmethod
    def for_config(cls, config, cid):
        return cls(container_paths(config.get("linux", {}).get("cgroupsPath") or "", cid))

    @classmethod
    def from_state(cls, st):
        return cls({k: tuple(v) for k, v in st["paths"].items()}, st.get("created", ()))

    def to_state(self):
        return {"paths": {k: list(v) for k, v in self.paths.items()}, "created": self.created}

    def dir(self, key):
        mp, p, _, _ = self.paths[key]
        return mp + p

    def create(self):
        for key, (mp, p, version, _) in self.paths.items():
            cur = mp
            for part in p.strip("/").split("/"):
                parent, cur = cur, os.path.join(cur, part)
                try:
                    os.mkdir(cur, 0o755)
                except FileExistsError:
                    continue
                except OSError as e:
                    raise CgroupError("create cgroup %s: %s" % (cur, e.strerror)) from None
                self.created.append(cur)
                if key == "cpuset":
                    _inherit_cpuset(parent, cur)

    def add(self, pid):
        for key in self.paths:
            path = os.path.join(self.dir(key), "cgroup.procs")
            try:
                with open(path, "w") as f:
                    f.write(str(pid))
            except OSError as e:
                raise CgroupError("join cgroup %s: %s" % (path, e.strerror)) from None

    def procs(self):
        for key in ("pids", "freezer", "memory", "unified", "systemd") + tuple(self.paths):
            if key in self.paths:
                try:
                    with open(os.path.join(self.dir(key), "cgroup.procs")) as f:
                        return [int(x) for x in f.read().split()]
                except FileNotFoundError:
                    return []
        return []

    def destroy(self):
        """Remove the directories create() made, deepest first; retries while the kernel still
        lists exiting tasks."""
        failed = []
        for d in sorted(self.created, key=lambda p: -p.count("/")):
            for delay in (0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4):
                if delay:
                    time.sleep(delay)
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        failed.append("%s: %s" % (d, e.strerror))
                        break
            else:
                failed.append("%s: busy" % d)
        if failed:
            raise CgroupError("remove cgroup " + "; ".join(failed))


def _inherit_cpuset(parent, child):
    for name in ("cpuset.cpus", "cpuset.mems"):
        try:
            with open(os.path.join(parent, name)) as f:
                val = f.read().strip()
            with open(os.path.join(child, name), "w") as f:
                f.write(val)
        except OSError:
            pass


def frozen(st):
    paths = st.get("paths", {})
    if "freezer" in paths:
        mp, p, _, _ = paths["freezer"]
        try:
            with open(mp + p + "/freezer.state") as f:
                return f.read().strip() == "FROZEN"
        except OSError:
            return False
    if "unified" in paths and len(paths) == 1:
        mp, p, _, _ = paths["unified"]
        try:
            with open(mp + p + "/cgroup.freeze") as f:
                return f.read().strip() == "1"
        except OSError:
            return False
    return False


def freeze(st, on):
    """Freeze (or thaw) the container's cgroup and wait until the kernel says it is done."""
    paths = st.get("paths", {})
    if "freezer" in paths:
        mp, p, _, _ = paths["freezer"]
        path, want, value = mp + p + "/freezer.state", "FROZEN" if on else "THAWED", "FROZEN" if on else "THAWED"
    elif "unified" in paths:
        mp, p, _, _ = paths["unified"]
        path, want, value = mp + p + "/cgroup.freeze", "1" if on else "0", "1" if on else "0"
    else:
        raise CgroupError("the container has no freezer cgroup")
    try:
        with open(path, "w") as f:
            f.write(value)
        for delay in (0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0):
            time.sleep(delay)
            with open(path) as f:
                if f.read().strip() == want:
                    return
    except OSError as e:
        raise CgroupError("%s cgroup %s: %s" % ("freeze" if on else "thaw", path, e.strerror)) from None
    raise CgroupError("%s cgroup %s: timed out" % ("freeze" if on else "thaw", path))
