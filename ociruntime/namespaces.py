"""OCI namespace types -> clone flags, the order namespaces are joined and created, id maps."""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import _sys, fork
from ociruntime.errors import ConfigError, InitError, init_step

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


def fork_in_pidns(join, what, fork=fork):
    """fork() with the child in a pid namespace: a new one (``join`` None) or the one given by
    path (``join``: its entry (type, fd, path) of open_joins).  Entering a pid namespace (unshare
    or setns) changes only where the caller's next children go, so this process enters it for the
    fork and then goes back to its own (its active namespace: setns allows that) before anything
    else can fork.  ``what``: who the child is, for errors; ``fork``: the forking function
    (ociruntime.fork's signature; create's may place the child in its cgroup)."""
    path = join[2] if join else ""
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if join is None:
            init_step("unshare pid namespace", _sys.unshare, _sys.CLONE_NEWPID)
        else:
            init_step("join pid namespace", _sys.setns, join[1], _sys.CLONE_NEWPID, path=path)
        pid = -1
        try:
            pid = fork(what)
        except OSError as e:
            # a joined namespace whose init has exited takes no new process (ENOMEM)
            raise InitError("fork %s into its pid namespace" % what, e.errno, path,
                            "its init has exited" if join and e.errno == 12 else "") from None
        finally:
            if pid != 0:  # this process, also when the fork failed
                try:
                    _sys.setns(own, _sys.CLONE_NEWPID)
                except OSError as e:
                    if pid > 0:
                        os.kill(pid, 9)  # SIGKILL (no signal module here)
                        os.waitpid(pid, 0)
                    raise InitError("return to the runtime's pid namespace", e.errno) from None
        return pid
    finally:
        os.close(own)  # (the child's too: no fd of the host's namespaces goes in)


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
    """Written by the parent.  As root (CAP_SETUID/CAP_SETGID in the parent user namespace) the
    maps are written directly, any number of ranges.  Without privilege the kernel allows only
    one range mapping the caller's own id, and a gid_map only after setgroups is set to "deny";
    anything else goes through newuidmap/newgidmap (the uidmap package), which check
    /etc/subuid and /etc/subgid, as runc and podman do."""
    from ociruntime import procfs
    try:
        _write_idmaps(pid, uid_mappings, gid_mappings)
    finally:
        procfs.close()


def _write_idmaps(pid, uid_mappings, gid_mappings):
    if os.geteuid() == 0:
        for name, maps in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
            if maps:
                _write_map(pid, name, format_idmap(maps))
        return
    for name, maps, own, helper in (("uid_map", uid_mappings, os.geteuid(), "newuidmap"),
                                    ("gid_map", gid_mappings, os.getegid(), "newgidmap")):
        if not maps:
            continue
        if len(maps) == 1 and maps[0]["hostID"] == own and maps[0]["size"] == 1:
            if name == "gid_map":
                _write_map(pid, "setgroups", "deny")
            _write_map(pid, name, format_idmap(maps))
        else:
            _run_idmap_helper(helper, pid, maps)


def _write_map(pid, name, text):
    from ociruntime import procfs
    procfs.write("%d/%s" % (pid, name), text, "write %s" % name)


def _run_idmap_helper(helper, pid, maps):
    import os  # noqa: F811  (os.environ: str; shutil and subprocess import os anyway)
    import shutil
    import subprocess
    what = "uidMappings" if helper == "newuidmap" else "gidMappings"
    binary = shutil.which(helper, path=os.environ.get("PATH") or "/usr/bin:/bin") or shutil.which(
        helper, path="/usr/bin:/bin")
    if not binary:
        raise InitError("write %s" % what, 0, "", "more than the caller's own id needs %s (the uidmap "
                        "package) when ociruntime is not root" % helper)
    argv = [binary, str(pid)]
    for m in maps:
        argv += [str(m["containerID"]), str(m["hostID"]), str(m["size"])]
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InitError("write %s" % what, 0, "", "%s: %s" % (helper, e)) from None
    if r.returncode != 0:
        msg = " ".join(r.stdout.decode(errors="replace").split()) or "exit status %d" % r.returncode
        raise InitError("write %s" % what, 0, "", "%s: %s" % (helper, msg))
