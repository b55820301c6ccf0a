"""What `delete`, `state` and `kill` need of the container's cgroups (removing its directories,
whether it is frozen), kept outside the cgroups package, whose import (the Manager and its layout
detection) they would otherwise pay for nine rmdirs or one read.  cgroups.Manager's
destroy and frozen call the same."""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import join, read_text
from ociruntime.errors import CgroupError

# errno.EBUSY, the same on every Linux architecture (errno-base.h), named here rather than imported
# from errno on every delete
EBUSY = 16


def walk(top):
    """os.walk(top)'s directories (top-down, not into symlinks; an unreadable top yields nothing)."""
    try:
        with os.scandir(top) as it:
            dirs = [e for e in it if e.is_dir()]
    except OSError:
        return
    yield top, [e.name for e in dirs]
    for e in dirs:
        if not e.is_symlink():
            yield from walk(join(top, e.name))


def remove_all(created):
    """Remove the directories ``created`` (those create() made, parents first, and any sub-cgroup
    made inside them), deepest first; retries while the kernel still lists exiting tasks."""
    failed = [err for err in map(_remove, sorted(created, key=lambda p: -p.count("/"))) if err]
    if failed:
        raise CgroupError("remove cgroup " + "; ".join(failed))


def _remove(d):
    """rmdir a cgroup: its sub-cgroups first when it has any (exec --cgroup, or made inside the
    container; only looked for when the rmdir says busy, as it does for them), retried while tasks
    are still exiting.  Returns the error text, or None."""
    for delay in (0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8):
        if delay:
            import time
            time.sleep(delay)
        try:
            os.rmdir(d)
            return None
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno != EBUSY:
                return "%s: %s" % (d, e.strerror)
        busy = []
        for sub in sorted((join(top, x) for top, dirs in walk(d) for x in dirs), key=lambda p: -p.count("/")):
            try:
                os.rmdir(sub)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno != EBUSY:
                    return "%s: %s" % (sub, e.strerror)
                busy.append(sub)  # tasks still exiting: tried again with d
    return "%s: busy" % ", ".join(busy or [d])


def frozen(paths):
    """Whether the cgroups ``paths`` ({key: (mountpoint, path, version, opts)}, Manager.paths or
    its record in state.json) are frozen: pure v2's cgroup.events, else the v1 freezer's state."""
    if paths and all(v[2] == 2 for v in paths.values()):
        mp, p = paths["unified"][:2]
        return "frozen 1" in _read(mp + p + "/cgroup.events").splitlines()
    for mp, p, version, opts in paths.values():
        if version == 1 and "freezer" in opts.split(","):
            return _read(mp + p + "/freezer.state").strip() == "FROZEN"
    return False


def _read(path):
    """The file's text, "" if it cannot be read (posix calls: open() in text mode builds an io
    stack and imports the codec registry)."""
    try:
        return read_text(path)
    except OSError:
        return ""
