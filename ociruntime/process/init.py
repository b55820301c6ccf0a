"""The child side of create: namespaces, then the container's init (ordered setup steps).

Runs in the forked runtime process (no new interpreter).  Stage 1 joins and creates the
namespaces (a user namespace first, with the parent writing its id maps); a new pid (or time)
namespace takes one more fork so the init is PID 1.  The init then waits for its cgroup, builds the
rootfs, reports "ready", blocks on exec.fifo until ``start``, and hands over to the C shim for the
final exec.  Every failure is reported to the parent as a typed error message; nothing here
returns: the process ends with os._exit.
"""
import posix as os  # not os: ~1.6 ms (see ociruntime/__init__.py)
import sys

from ociruntime import _sys as S
from ociruntime import namespaces, procfs
from ociruntime.process.channel import run_child
from ociruntime.errors import InitError
from ociruntime.errors import init_step as _step, init_write as _write


class Plan:
    """Everything the child needs, prepared by the parent before fork."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def child_main(plan, ch):
    for fd in plan.close_fds:  # the state dir lock belongs to the create command alone
        os.close(fd)

    def body():
        # before anything of the container's: nothing inside may open this process's exe (the
        # host's interpreter), fds, memory, cwd or root through /proc/PID (CVE-2019-5736); the
        # kernel makes the process dumpable again at the final execve
        S.prctl(S.PR_SET_DUMPABLE, 0)
        _close_inherited(plan, ch)
        procfs.open_root()  # the runtime's /proc, before anything of the container's
        if plan.in_userns:
            # the bind mounts' sources, as the runtime's user: inside the user namespace a
            # source under a directory only the host's root may enter could not be opened
            from ociruntime.rootfs.mounts import open_sources
            plan.mount_trees = open_sources(plan.config, plan.bundle)
        stage1(plan, ch)
    run_child(ch, body, "init", "container init")


def stage1(plan, ch):
    namespaces.join(plan.joins)
    if any(t == "user" for t, _, _ in plan.joins):
        _become_root()  # the joined namespace's root, as runc's nsexec does; the host's root is unmapped
    if plan.new_userns:
        rootless = os.geteuid() != 0
        _step("unshare user namespace", S.unshare, S.CLONE_NEWUSER)
        if rootless:
            # a parent without CAP_DAC_OVERRIDE (and newuidmap, which checks the owner) can only
            # open /proc/PID/uid_map of a dumpable process; nothing of the container's exists yet
            # in this new user namespace
            S.prctl(S.PR_SET_DUMPABLE, 1)
        ch.send("map_ids")
        ch.expect("ids_mapped")
        S.prctl(S.PR_SET_DUMPABLE, 0)
        _become_root()
    flags = plan.new_flags & ~(S.CLONE_NEWUSER | S.CLONE_NEWCGROUP)
    if flags:
        _step("unshare namespaces", S.unshare, flags)
    if plan.time_offsets:
        procfs.write("self/timens_offsets", plan.time_offsets, "set time offsets")
    if plan.fork_init:
        pid = os.fork()
        if pid:
            ch.send("init_pid", pid)
            return
    else:  # the process the parent forked (its own pid may be 1, in its new pid namespace)
        ch.send("init_pid", 0)
    init(plan, ch)


def _become_root():
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError as e:
        raise InitError("become root in the user namespace", e.errno) from None


def init(plan, ch):
    cfg = plan.config
    linux = cfg.get("linux", {})
    process = cfg.get("process") or {}  # none: set up, then wait (start refuses to release it)
    # the v1 hierarchies (made and limited before the fork); the parent places us in the others
    for key in plan.self_cgroups:
        mp, path = plan.cgroup_paths[key][:2]
        _write(mp + path + "/tasks", "0", "join cgroup")
    cgroupns = plan.new_flags & S.CLONE_NEWCGROUP
    if cgroupns:  # its root is the cgroup we are in
        ch.expect("cgroup_joined")
    plan.setgroups_ok = _setgroups_allowed(process)
    if cgroupns:
        _step("unshare cgroup namespace", S.unshare, S.CLONE_NEWCGROUP)
    os.setsid()
    if not plan.no_new_keyring:
        join_keyring(plan.cid)

    # imported by the parent before fork (create.preload): nothing may come from the container
    # (only what this config uses: create.preload imports the same under the same conditions)
    from ociruntime import rootfs
    from ociruntime.process.spec import final_args, umask_of
    from ociruntime.security import procattrs
    hooks = cfg.get("hooks") or {}
    if hooks:
        from ociruntime.hooks import run_hooks
    if process.get("rlimits"):
        from ociruntime.security import rlimits
    listener = None
    if plan.seccomp_sock:
        from ociruntime import jsonio
        from ociruntime.security import seccomp
    if plan.new_flags & S.CLONE_NEWNET:  # (one create's thread made has its loopback up already)
        from ociruntime.netdev import loopback_up
        loopback_up()
    rootfs.prepare_root(plan.rootfs, linux.get("rootfsPropagation"))
    mounter = None  # rootless without cgroups: the host's, read-only
    if plan.cgroup_paths and plan.cgroup_mount:
        from ociruntime.cgroups.mount import make_mounter
        mounter = make_mounter(plan.cgroup_paths, bool(plan.new_flags & S.CLONE_NEWCGROUP))
    rootfs.apply_mounts(plan.rootfs, cfg, plan.bundle, mounter, plan.in_userns, plan.mount_trees)
    _make_cwd(plan.rootfs, process.get("cwd") or "/")

    if not cgroupns:  # the rootfs was set up while the parent's first cgroup.procs write stalled
        ch.expect("cgroup_joined")
    ch.send("runtime_hooks")
    state_json, start_json = ch.expect("hooks_done")
    if hooks.get("createContainer"):
        # in the rootfs, as runc's (hooks written for it use paths relative to the rootfs)
        run_hooks(hooks["createContainer"], "createContainer", state_json, plan.rootfs)

    if plan.no_pivot:
        rootfs.move_root(plan.rootfs)
    else:
        rootfs.pivot(plan.rootfs)
    _seal_imports()
    if process.get("terminal"):
        from ociruntime.tty import setup_console
        setup_console(plan.console_sock, process.get("consoleSize"),
                      uid=(process.get("user") or {}).get("uid", 0))
        plan.console_sock.close()
    # before the read-only and masked paths (/proc/sys is one), as runc
    for key, value in (linux.get("sysctl") or {}).items():
        procfs.write("sys/" + key.replace(".", "/"), value, "set sysctl %s" % key)
    rootfs.finish(cfg)

    if "hostname" in cfg and cfg["hostname"] is not None and plan.has_uts:
        _step("set hostname", S.sethostname, cfg["hostname"])
    if cfg.get("domainname") and plan.has_uts:
        _step("set domainname", S.setdomainname, cfg["domainname"])
    if process.get("rlimits"):
        rlimits.apply(rlimits.parse(process["rlimits"]))
    procattrs.apply(process, linux)  # oomScoreAdj, scheduler, ioPriority, personality, LSM labels
    procfs.close()  # the host's procfs: gone before anything of the container's runs

    if plan.seccomp_sock:
        listener = (plan.seccomp_sock.fileno(), seccomp.listener_message(
            plan.seccomp, jsonio.loads(state_json), "creating"))
    args = None
    if "process" in cfg:
        args = final_args(process, set_groups=plan.setgroups_ok, seccomp=plan.seccomp, listener=listener)
        args["cwd"] = _enter_cwd(args.get("cwd"))
    # "ready" is sent by the wait itself, after the page drop (plan.shed: the file mappings create
    # found, start_shed_scan): create (and whoever reads the init's memory when it returns) sees
    # the init as it waits; then block here until `start` opens the fifo for reading.  `run`
    # starts it at once: no drop (the pages would be faulted back before the exec)
    if plan.shed:
        S.malloc_trim()  # free heap given back first
    S.wait_fifo(plan.state_fd, "exec.fifo", plan.shed, ch.detach(), ch.message("ready"))
    if hooks.get("startContainer"):
        _start_hooks(plan.state_fd, hooks["startContainer"], start_json)
    os.close(plan.state_fd)
    if args is None:
        os.write(2, b"ociruntime: the container has no process to run\n")
        os._exit(127)
    os.umask(umask_of(process))
    r, w = os.pipe2(os.O_CLOEXEC)  # the shim's "step:errno" of a failed last step (else stderr)
    args["errfd"] = w
    _close_all_but(3 + plan.preserve_fds, _fds_of(args) | {r})
    try:
        S.exec_final(first_cloexec_fd=3 + plan.preserve_fds, **args)
    except OSError as e:
        os.close(w)
        step = os.read(r, 128).decode(errors="replace").strip().rpartition(":")[0]
        what = "exec %s" % args["path"] if step in ("exec", "") else step
        os.write(2, ("ociruntime: %s: %s\n" % (what, e.strerror)).encode(errors="replace"))
    sys.stdout.flush()
    os._exit(127)


def _start_hooks(state_fd, hooks, state_json):
    """startContainer hooks, after start released the init; their outcome goes to `start` through
    start.fifo ("ok" or the error), which reports a failure and destroys the container."""
    from ociruntime.errors import HookError
    from ociruntime.hooks import run_hooks
    err = None
    try:
        run_hooks(hooks, "startContainer", state_json)
    except HookError as e:
        err = str(e)
    fd = os.open("start.fifo", os.O_WRONLY | os.O_CLOEXEC, dir_fd=state_fd)
    try:
        os.write(fd, b"ok" if err is None else ("error:" + err).encode(errors="replace")[:60000])
    finally:
        os.close(fd)
    if err is not None:
        os._exit(1)


def _setgroups_allowed(process):
    """False in a user namespace whose gid_map was written without CAP_SETGID (rootless, single
    mapping): the kernel then requires setgroups "deny", and the process keeps no extra groups."""
    try:
        if procfs.read("self/setgroups").strip() != b"deny":
            return True
    except OSError:
        return True
    if (process.get("user") or {}).get("additionalGids"):
        raise InitError("set additional gids", 1, "", "setgroups is denied in this user namespace "
                        "(gidMappings written without newgidmap): process.user.additionalGids "
                        "cannot be applied")
    return False


def _close_inherited(plan, ch):
    """Close what the runtime's caller left open beyond stdio and --preserve-fds: those fds are
    not the runtime's (it opens everything close-on-exec) and must not be reachable, even through
    /proc/self/fd, while the init works inside the container (CVE-2024-21626)."""
    keep = {ch.fileno(), plan.state_fd}
    keep.update(fd for _, fd, _ in plan.joins)
    if plan.console_sock is not None:
        keep.add(plan.console_sock.fileno())
    for fd in _open_fds(3 + plan.preserve_fds):
        if fd in keep:
            continue
        try:
            if os.get_inheritable(fd):  # no FD_CLOEXEC (F_GETFD without fcntl, a library to load)
                os.close(fd)
        except OSError:
            pass


def _open_fds(first):
    return [fd for fd in map(int, os.listdir("/proc/self/fd")) if fd >= first]


def _fds_of(args):
    """fds exec_final still needs (the error pipe, a seccomp listener socket)."""
    keep = set()
    if args.get("errfd", -1) >= 0:
        keep.add(args["errfd"])
    sc = args.get("seccomp")
    if sc is not None and len(sc) > 3 and sc[3] is not None:
        keep.add(sc[3] if isinstance(sc[3], int) else sc[3].fileno())
    return keep


def _close_all_but(first, keep):
    """Close every fd from ``first`` on except ``keep``, so no path the exec resolves (cwd,
    args[0]) can go through /proc/self/fd/N to a file of the host."""
    for fd in _open_fds(first):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _enter_cwd(cwd):
    """chdir to process.cwd now, as root, and refuse a cwd outside the container's root (as runc's
    verifyCwd).  Returns the cwd the shim must still enter (after setuid), or None."""
    if not cwd:
        return None
    try:
        os.chdir(cwd)
    except PermissionError:
        return cwd  # only the container's user may enter it: the shim does, after setuid
    except OSError as e:
        raise InitError("chdir to cwd (%r) set in config.json failed" % cwd, e.errno, cwd) from None
    try:
        here = os.getcwd()
    except FileNotFoundError:
        here = ""
    if not here.startswith("/"):
        raise InitError("current working directory is outside of container mount namespace root -- "
                        "possible container breakout detected", 0, cwd, "refused")
    return None


def join_keyring(cid):
    """A session keyring of the container's own, so keys of the host's session don't leak in."""
    try:
        S.join_session_keyring("_ses." + cid)
    except OSError as e:
        if e.errno not in (38, 1):  # ENOSYS, EPERM (keyrings unavailable): carry on, as runc
            raise InitError("join session keyring", e.errno) from None


def _seal_imports():
    """After pivot_root the container's files are at /: no Python may be loaded from them.  Only
    the interpreter's built-in and frozen modules are left to import: the path finder goes."""
    bootstrap = sys.modules["_frozen_importlib"]
    sys.path[:] = []
    sys.path_importer_cache.clear()
    sys.meta_path[:] = [f for f in sys.meta_path
                        if f is bootstrap.BuiltinImporter or f is bootstrap.FrozenImporter]


def _make_cwd(rootfs, cwd):
    from ociruntime.rootfs import paths
    try:
        rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.close(paths.mkdir_all(rootfd, cwd))
        finally:
            os.close(rootfd)
    except OSError as e:
        raise InitError("create cwd", e.errno, cwd) from None
