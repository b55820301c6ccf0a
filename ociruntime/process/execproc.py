"""The child side of exec: enter a running container and become the exec'd process.

Runs in the forked runtime process (no new interpreter), like the init.  Stage 1 (the runtime's
child) makes itself non-dumpable, joins the container's v1 cgroups itself, then its namespaces
through /proc/<init>/ns/* (user first, mount last), and forks: the grandchild is in the container's
pid namespace.  Stage 1 reports the grandchild's pid and exits; the grandchild sets up the
process (session, keyring, terminal, rlimits, process attributes), waits until the parent has
placed it in the remaining cgroups, and hands over to the C shim for the final exec.

The exchange over the channel (-> child to parent, <- parent to child):

  kind             direction  payload                 meaning
  "exec_pid"       ->         (pid,)                  the grandchild (in the container's pid ns)
  "cgroup_joined"  <-         (listener message,)     placed in every cgroup; b"" without a seccomp agent
  "error"          ->         (step, errno, path, text)   a step failed; the child exits after sending

EOF after "cgroup_joined" without an error means the trampoline was executed (the channel is
close-on-exec); then EOF on the report pipe (``report_fd``, made by the parent) means the
trampoline's execve of the process succeeded, "step:errno" that it failed.  Nothing here returns: the process ends with os._exit.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import _sys as S, fork
from ociruntime import procfs
from ociruntime.process import take_stdio
from ociruntime.process.channel import run_child
from ociruntime.errors import InitError
from ociruntime.errors import init_step as _step, init_write


class ExecPlan:
    """Everything the child needs, prepared by the parent before fork."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def child_main(plan, ch):
    def body():
        # before anything of the container's: nothing inside may open this process's exe (the
        # host's interpreter), memory, fds or root through /proc/PID; execve makes it dumpable again
        S.prctl(S.PR_SET_DUMPABLE, 0)
        take_stdio(plan.stdio)
        procfs.open_root()  # the runtime's /proc, before joining the container (procfs.py)
        _stage1(plan, ch)
    run_child(ch, body, "exec", "exec")


def _stage1(plan, ch):
    if plan.affinity[0] is not None:
        _step("set initial CPU affinity", os.sched_setaffinity, 0, plan.affinity[0])
    for d in plan.self_cgroups:
        # a task moving itself skips the kernel's threadgroup lock (see create.py)
        init_write(d + "/tasks", "0", "join cgroup")
    from ociruntime.process.init import _seal_imports
    for t, fd in plan.joins:
        try:
            S.setns(fd, 0)
        except OSError as e:
            raise InitError("join %s namespace" % t, e.errno, "/proc/%d/ns/%s" % (plan.init_pid, t)) from None
        os.close(fd)
        if t == "user":
            try:
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
            except OSError as e:
                raise InitError("become root in the user namespace", e.errno) from None
    if plan.root_fd is not None:  # no mount namespace: the init's chroot (rootfs/hostns.py)
        os.fchdir(plan.root_fd)
        _step("chroot", os.chroot, ".")
        os.close(plan.root_fd)
        os.chdir("/")
    _seal_imports()  # the container's files are at / now
    pid = fork("fork the exec process")
    if pid:
        ch.send("exec_pid", pid)
        return
    _stage2(plan, ch)


def _stage2(plan, ch):
    """The grandchild: in every namespace of the container; becomes the process."""
    from ociruntime.process.init import _enter_cwd, _setgroups_allowed, join_keyring
    from ociruntime.process.spec import final_args, finalize, umask_of
    from ociruntime.security import procattrs
    process = plan.process
    # the final execve goes through the trampoline (CVE-2019-5736), made before seccomp, which
    # may refuse memfd_create
    tfd = _step("make the exec trampoline", S.trampoline)
    os.setsid()
    if not plan.no_new_keyring:
        join_keyring(plan.cid)
    if plan.console_sock is not None:
        from ociruntime.tty import setup_console
        setup_console(plan.console_sock, process.get("consoleSize"), bind_console=False,
                      uid=(process.get("user") or {}).get("uid", 0))
        plan.console_sock.close()
    if process.get("rlimits"):
        from ociruntime.security import rlimits
        rlimits.apply(rlimits.parse(process["rlimits"]))
    procattrs.apply(process, plan.linux)
    set_groups = _setgroups_allowed(process)
    procfs.close()  # the host's procfs: gone before anything of the container's runs
    (listener_msg,) = ch.expect("cgroup_joined")
    if plan.affinity[1] is not None:
        _step("set final CPU affinity", os.sched_setaffinity, 0, plan.affinity[1])
    listener = None
    if plan.seccomp_sock is not None:
        listener = (plan.seccomp_sock.fileno(), listener_msg)
    args = final_args(process, set_groups=set_groups, seccomp=plan.seccomp, listener=listener,
                      caps=plan.caps)
    cwd = _enter_cwd(args["cwd"])
    os.umask(umask_of(process))
    finalize(args, cwd, plan.seccomp_sock)
    # the channel is closed by the trampoline's execveat; a failure from then on (the
    # trampoline's own execve) reaches the parent on plan.report_fd
    try:
        S.exec_trampoline(tfd, args["path"], args["argv"], args["envp"], errfd=plan.report_fd,
                          first_cloexec_fd=3 + plan.preserve_fds)
    except OSError:
        pass  # reported on plan.report_fd by the shim
    os._exit(127)
