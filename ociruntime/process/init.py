"""The child side of create: namespaces, then the container's init (ordered setup steps).

Runs in the forked runtime process (no new interpreter).  Stage 1 joins and creates the
namespaces (a user namespace first, with the parent writing its id maps); a new pid (or time)
namespace takes one more fork so the init is PID 1.  The init then waits for its cgroup, builds the
rootfs, reports "ready", blocks on exec.fifo until ``start``, and hands over to the C shim for the
final exec.  Every failure is reported to the parent as a typed error message; nothing here
returns: the process ends with os._exit.
"""
import os
import sys

from ociruntime import _sys as S
from ociruntime import namespaces
from ociruntime.errors import InitError, OCIError


class Plan:
    """Everything the child needs, prepared by the parent before fork."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def child_main(plan, ch):
    code = 1
    for fd in plan.close_fds:  # the state dir lock belongs to the create command alone
        os.close(fd)
    try:
        stage1(plan, ch)
        code = 0
    except BaseException as e:  # every failure goes to the parent
        err = e if isinstance(e, (OCIError, OSError)) else InitError("init", 0, "", repr(e))
        try:
            ch.send_error(err)
        except OSError:
            # after "ready" nobody listens: the container's stderr is the only witness
            os.write(2, ("ociruntime: container init: %s\n" % err).encode(errors="replace"))
    finally:
        os._exit(code)


def stage1(plan, ch):
    namespaces.join(plan.joins)
    if plan.new_userns:
        _step("unshare user namespace", S.unshare, S.CLONE_NEWUSER)
        ch.send("map_ids")
        ch.expect("ids_mapped")
        _become_root()
    flags = plan.new_flags & ~(S.CLONE_NEWUSER | S.CLONE_NEWCGROUP)
    if flags:
        _step("unshare namespaces", S.unshare, flags)
    if plan.time_offsets:
        _write("/proc/self/timens_offsets", plan.time_offsets, "set time offsets")
    if plan.fork_init:
        pid = os.fork()
        if pid:
            ch.send("init_pid", pid)
            return
    else:
        ch.send("init_pid", os.getpid())
    init(plan, ch)


def _become_root():
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError as e:
        raise InitError("become root in the user namespace", e.errno) from None


def _step(what, fn, *args):
    try:
        return fn(*args)
    except OSError as e:
        raise InitError(what, e.errno, e.filename if isinstance(e.filename, str) else "") from None


def _write(path, data, what):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise InitError(what, e.errno, path) from None


def init(plan, ch):
    cfg = plan.config
    linux = cfg.get("linux", {})
    process = cfg["process"]
    ch.expect("cgroup_joined")
    if plan.new_flags & S.CLONE_NEWCGROUP:
        _step("unshare cgroup namespace", S.unshare, S.CLONE_NEWCGROUP)
    os.setsid()
    if not plan.no_new_keyring:
        # a session keyring of the container's own, so keys of the host's session don't leak in
        try:
            S.join_session_keyring("_ses." + plan.cid)
        except OSError as e:
            if e.errno not in (38, 1):  # ENOSYS, EPERM (keyrings unavailable): carry on, as runc
                raise InitError("join session keyring", e.errno) from None

    # imported by the parent before fork (create.preload): nothing may come from the container
    from ociruntime import rootfs
    from ociruntime.cgroups.mount import make_mounter
    from ociruntime.hooks import run_hooks
    from ociruntime.process.spec import final_args, umask_of
    from ociruntime.security import rlimits
    if plan.new_flags & S.CLONE_NEWNET:
        from ociruntime.netdev import loopback_up
        loopback_up()
    rootfs.prepare_root(plan.rootfs, linux.get("rootfsPropagation"))
    mounter = make_mounter(plan.cgroup_paths, bool(plan.new_flags & S.CLONE_NEWCGROUP))
    rootfs.apply_mounts(plan.rootfs, cfg, plan.bundle, mounter, plan.in_userns)
    _make_cwd(plan.rootfs, process.get("cwd") or "/")

    ch.send("runtime_hooks")
    (state_json,) = ch.expect("hooks_done")
    hooks = cfg.get("hooks") or {}
    if hooks.get("createContainer"):
        run_hooks(hooks["createContainer"], "createContainer", state_json)

    if plan.no_pivot:
        rootfs.move_root(plan.rootfs)
    else:
        rootfs.pivot(plan.rootfs)
    _seal_imports()
    if process.get("terminal"):
        from ociruntime.tty import setup_console
        setup_console(plan.console_sock, process.get("consoleSize"))
        plan.console_sock.close()
    rootfs.finish(cfg)

    if "hostname" in cfg and cfg["hostname"] is not None and plan.has_uts:
        _step("set hostname", S.sethostname, cfg["hostname"])
    if cfg.get("domainname") and plan.has_uts:
        _step("set domainname", S.setdomainname, cfg["domainname"])
    for key, value in (linux.get("sysctl") or {}).items():
        _write("/proc/sys/" + key.replace(".", "/"), value, "set sysctl %s" % key)
    if process.get("oomScoreAdj") is not None:
        _write("/proc/self/oom_score_adj", str(process["oomScoreAdj"]), "set oom_score_adj")
    rlimits.apply(rlimits.parse(process.get("rlimits")))

    args = final_args(process)
    ch.send("ready")
    ch.close()

    # block here until `start` opens the fifo for reading
    fifo = os.open("exec.fifo", os.O_WRONLY | os.O_CLOEXEC, dir_fd=plan.state_fd)
    os.write(fifo, b"0")
    os.close(fifo)
    os.close(plan.state_fd)
    if hooks.get("startContainer"):
        run_hooks(hooks["startContainer"], "startContainer", state_json)
    os.umask(umask_of(process))
    try:
        S.exec_final(first_cloexec_fd=3 + plan.preserve_fds, **args)
    except OSError as e:
        msg = "ociruntime: exec %s: %s\n" % (args["path"], e.strerror)
        os.write(2, msg.encode())
    sys.stdout.flush()
    os._exit(127)


def _seal_imports():
    """After pivot_root the container's files are at /: no Python may be loaded from them."""
    sys.path[:] = []
    sys.path_importer_cache.clear()
    sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "__name__", "") != "PathFinder"]


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
