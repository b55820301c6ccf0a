"""The child side of create: namespaces, then the container's init (ordered setup steps).

Runs in the forked runtime process (no new interpreter).  Stage 1 joins and creates the
namespaces (a user namespace first, with the parent writing its id maps); a new pid (or time)
namespace takes one more fork so the init is PID 1.  The init then joins its cgroups (or is born in
them, or waits until the parent has placed it), builds the rootfs, reports "ready", blocks on exec.fifo until ``start``, and hands over to the C shim for the
final exec.  Every failure is reported to the parent as a typed error message; nothing here
returns: the process ends with os._exit.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)
import sys

from ociruntime import fork
from ociruntime import _sys as S
from ociruntime import namespaces, procfs
from ociruntime.process import take_stdio
from ociruntime.process.channel import run_child
from ociruntime.errors import InitError
from ociruntime.errors import init_step as _step, init_write as _write


class Plan:
    """Everything the child needs, prepared by the parent before fork."""

    born_in = None  # the hierarchy the first child was born in (create sets it in both processes)

    def __init__(self, **kw):
        self.__dict__.update(kw)


def parent_places(plan):
    """Whether the parent still places the init in a cgroup after the fork, and then sends
    "cgroup_joined": a hierarchy it neither joins itself (plan.self_cgroups) nor was born in
    (plan.born_in: clone3 into the cgroup2 one, inherited by an init its first child forks), or the
    systemd driver's scope, which exists only once started with the init's pid.  Parent and child
    decide it alike from the same plan."""
    if plan.cgroup_late:
        return True
    return any(k not in plan.self_cgroups and k != plan.born_in for k in plan.cgroup_paths)


def child_main(plan, ch):
    for fd in plan.close_fds:  # the state dir lock belongs to the create command alone
        os.close(fd)

    def body():
        # before anything of the container's: nothing inside may open this process's exe (the
        # host's interpreter), fds, memory, cwd or root through /proc/PID (CVE-2019-5736); the
        # kernel makes the process dumpable again at the final execve
        S.prctl(S.PR_SET_DUMPABLE, 0)
        take_stdio(plan.stdio)
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
        pid = fork("fork the container init")
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
    # the v1 hierarchies (made and limited before the fork); born in the cgroup2 one where the
    # kernel allows it; the parent places us in the others
    for key in plan.self_cgroups:
        mp, path = plan.cgroup_paths[key][:2]
        _write(mp + path + "/tasks", "0", "join cgroup")
    cgroupns = plan.new_flags & S.CLONE_NEWCGROUP
    placed = parent_places(plan)
    # a cgroup namespace's root is the cgroup we are in; the systemd driver's cgroup exists only
    # once the parent has started the scope with us in it (the cgroup mount binds it)
    joined_first = cgroupns or plan.cgroup_late
    if joined_first and placed:
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
    from ociruntime.process.spec import final_args, finalize, umask_of
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
    if plan.new_flags & S.CLONE_NEWNET:
        from ociruntime.netdev import loopback_up
        loopback_up()
    if not plan.host_mounts:  # (without a mount namespace, create bound the rootfs: rootfs/hostns.py)
        rootfs.prepare_root(plan.rootfs, linux.get("rootfsPropagation"))
    if plan.overlay is not None:  # the copy-on-write rootfs, now that / is a slave (imported by create)
        from ociruntime.rootfs.overlay import mount as mount_overlay
        mount_overlay(plan.overlay)
    mounter = None  # rootless without cgroups: the host's, read-only
    if plan.cgroup_paths and plan.cgroup_mount:
        from ociruntime.cgroups.mount import make_mounter
        mounter = make_mounter(plan.cgroup_paths, bool(plan.new_flags & S.CLONE_NEWCGROUP))
    rootfs.apply_mounts(plan.rootfs, cfg, plan.bundle, mounter, plan.in_userns, plan.mount_trees)
    _make_cwd(plan.rootfs, process.get("cwd") or "/")
    # every execve of the container's from here on goes through the trampoline (CVE-2019-5736):
    # made before seccomp, which may refuse memfd_create
    plan.trampoline = _step("make the exec trampoline", S.trampoline)

    if placed and not joined_first:  # the rootfs was set up while the parent's cgroup.procs write stalled
        ch.expect("cgroup_joined")
    ch.send("runtime_hooks")
    state_json, start_json = ch.expect("hooks_done")
    if hooks.get("createContainer"):
        # in the rootfs, as runc's (hooks written for it use paths relative to the rootfs)
        run_hooks(hooks["createContainer"], "createContainer", state_json, plan.rootfs,
                  trampoline=plan.trampoline)

    if plan.host_mounts:  # pivot_root or MS_MOVE would change the host's root
        from ociruntime.rootfs import hostns
        hostns.chroot(plan.rootfs)
    elif plan.no_pivot:
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
    maps = pagemap = -1
    if "process" in cfg:
        args = final_args(process, set_groups=plan.setgroups_ok, seccomp=plan.seccomp, listener=listener,
                          caps=plan.caps)
        cwd = _enter_cwd(args["cwd"])
        if plan.drop_pages:
            maps, pagemap = _page_maps()
        os.umask(umask_of(process))
        # the process's credentials, capabilities, no_new_privs and seccomp, before "ready" (runc's
        # order): create reports their failure, and startContainer hooks run with them
        finalize(args, cwd, plan.seccomp_sock or None)
    # "ready" is sent by the wait itself, after the page drop (cext/shim.c, oci_wait): create (and
    # whoever reads the init's memory when it returns) sees the init as it waits; then block until
    # `start` opens exec.fifo for reading.  The fifo's write end then carries the rest to start
    # (container/start.py): EOF once the process is exec'd, else what failed.
    report = S.wait(ch.detach(), ch.message("ready"), plan.fifo_fd, maps, pagemap)
    try:
        if args is None:  # (start refuses to release a container without a process)
            raise InitError("the container has no process to run")
        if hooks.get("startContainer"):
            # in the container, with the process's credentials, capabilities, no_new_privs and
            # seccomp (applied above), and its environment unless the hook has one
            run_hooks(hooks["startContainer"], "startContainer", start_json, env=args["envp"],
                      trampoline=plan.trampoline)
        # every fd beyond stdio, --preserve-fds and the report is closed by the trampoline's
        # execveat: nothing of the host's is open when it resolves the program's path
        S.exec_trampoline(plan.trampoline, args["path"], args["argv"], args["envp"], errfd=report,
                          first_cloexec_fd=3 + plan.preserve_fds)
    except OSError as e:
        if e.filename not in ("exec", "close_range"):  # not one the shim reported itself
            _report(report, "error:%s" % e)
    except BaseException as e:  # start prints it
        _report(report, "error:%s" % e)
    sys.stdout.flush()
    os._exit(127)


def _page_maps():
    """fds of /proc/self/maps and pagemap for the wait's page drop, opened while the init can: a
    non-dumpable process's pagemap belongs to root, which it may no longer be after the credentials
    change (nor is it in a user namespace: the drop is left out there)."""
    try:
        maps = os.open("/proc/self/maps", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1, -1
    try:
        return maps, os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        os.close(maps)
        return -1, -1


def _report(fd, text):
    try:
        os.write(fd, text.encode(errors="replace")[:60000])
    except OSError:
        pass


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
    keep = {ch.fileno(), plan.fifo_fd}
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
