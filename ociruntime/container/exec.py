"""exec: run a new process in a running (or created) container.

The parent (this command) prepares everything before fork: the process spec (the container's own
``process`` with the command line's overrides, or a ``--process`` file), fds of the init's
namespaces, the seccomp filter, the console socket.  The child side is
``ociruntime.process.execproc`` (no re-exec of an interpreter).  Without ``--detach`` the command
forwards signals to the process (the API's Container.exec only when asked), waits for it and
returns its exit status (128+n when killed by signal n, as runc); with it, it writes the pid file
once the process has exec'd and returns its pid.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import join, kill_point, normpath
from ociruntime import _sys as S
from ociruntime.container import state as _state
from ociruntime.container import status as _status
from ociruntime.container.statedir import write_pid_file
from ociruntime.errors import ConfigError, InitError, OCIError, StateError
from ociruntime.process import channel

NS_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")
PROC_NAME = {"user": "user", "pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts",
             "mount": "mnt", "cgroup": "cgroup", "time": "time"}
# signals runc's exec does not forward: job control and the ones the tty and children need
NOT_FORWARDED = frozenset((9, 17, 19, 20, 21, 22, 23, 28))  # KILL CHLD STOP TSTP TTIN TTOU URG WINCH


def exec_process(ctx, cid, process, detach=False, pid_file=None, console_socket=None,
                 preserve_fds=0, cgroup=None, ignore_paused=False, stdio=None, forward=True):
    """Returns the exit status (without detach) or the process's pid (detach: it is this
    process's child, as a subreaper, for the caller to wait for).  ``process``: the runtime-spec
    process, or a function of the container's own that returns it (``override``).  ``stdio``: fds
    (or None) for the process's stdin, stdout and stderr instead of this process's.  ``forward``:
    the signals runc's exec forwards reach the process while this waits; without it a
    failure to wait (KeyboardInterrupt) kills the process."""
    sd, state, st = _state.load(ctx.root, cid, lock=True)
    relay = fwd = None
    try:
        if st == _status.STOPPED:
            raise StateError("cannot exec in a stopped container")
        paused = st == _status.PAUSED
        if paused and not ignore_paused:
            raise StateError("cannot exec in a paused container (use --ignore-paused to override)")
        cfg = state.get("config") or {}
        if callable(process):  # the command line's changes to the container's own process
            process = process(cfg.get("process") or {})
        proc = complete(process, cfg)
        caps = check(proc, cfg, lambda msg: ctx.log.warning(msg, stderr=True))
        ctx.log.debug("exec %s: process %s (status %s)", cid, proc["args"], st)
        if proc.get("terminal") and not console_socket:
            if detach:
                raise ConfigError("cannot allocate tty if ociruntime will detach without setting console socket")
            from ociruntime.tty import Relay  # no console socket: relay the pty ourselves, as runc
            relay = console_socket = Relay()
            proc["consoleSize"] = relay.size() or proc.get("consoleSize")  # set before the execve
        if console_socket and not proc.get("terminal"):
            raise ConfigError("cannot use console socket if ociruntime will not detach or allocate tty")
        S.prctl(S.PR_SET_CHILD_SUBREAPER, 1)  # the process is our grandchild: adopt it
        if forward and not detach:
            # from before the process can run: a signal that comes before its pid is known waits
            fwd = Forwarder()
        pid, ch = _spawn(ctx, sd, state, cfg, proc, console_socket, preserve_fds, cgroup, paused, caps, stdio)
        ctx.log.debug("exec %s: the process (pid %d) has exec'd", cid, pid)
    except BaseException:
        if fwd is not None:
            fwd.stop()
        if relay is not None:
            relay.close()
        raise
    finally:
        sd.close()
    try:
        if pid_file:
            try:
                write_pid_file(pid_file, pid)
            except OCIError:
                _kill(pid)
                raise
        if detach:
            return pid
        status = wait(pid, fwd, relay)
        ctx.log.debug("exec %s: the process (pid %d) exited with status %d", cid, pid, status)
        return status
    finally:
        if fwd is not None:
            fwd.stop()
        if relay is not None:
            relay.close()


def override(base, args, cwd=None, env=(), tty=False, uid=None, gid=None, additional_gids=(), caps=(),
             no_new_privs=None, apparmor=None, process_label=None):
    """runc's getProcess: the container's own process (``base``) running ``args`` instead, with
    the changes exec's flags make (``env`` entries, "K=V", and ``caps`` added; None leaves a
    field as it is)."""
    p = dict(base)
    p["args"] = list(args)
    if cwd:
        p["cwd"] = cwd
    if apparmor:
        p["apparmorProfile"] = apparmor
    if process_label:
        p["selinuxLabel"] = process_label
    if caps:
        c = p["capabilities"] = dict(p.get("capabilities") or {})
        for kind in ("bounding", "effective", "permitted", "ambient"):
            c[kind] = list(c.get(kind) or ()) + list(caps)
    p["env"] = list(p.get("env") or ()) + list(env or ())
    p["terminal"] = bool(tty)
    p.pop("consoleSize", None)
    if no_new_privs is not None:
        p["noNewPrivileges"] = bool(no_new_privs)
    user = p["user"] = dict(p.get("user") or {})
    if uid is not None:
        user["uid"] = uid
    if gid is not None:
        user["gid"] = gid
    if additional_gids:
        user["additionalGids"] = list(user.get("additionalGids") or ()) + list(additional_gids)
    return p


def complete(process, cfg):
    """The process to run: missing capabilities, rlimits and LSM labels come from the container's
    own process (runc does the same); the rest is as given."""
    base = cfg.get("process") or {}
    proc = dict(process)
    for key in ("capabilities", "rlimits", "apparmorProfile", "selinuxLabel"):
        if proc.get(key) is None and base.get(key) is not None:
            proc[key] = base[key]
    return proc


def check(proc, cfg, warn=None):
    """What runc's validateProcessSpec and create's checks refuse, before anything is done.
    Returns the capability masks (process/spec.py check), the names it leaves out to ``warn``."""
    args = proc.get("args")
    if not args or not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError("args must not be empty")
    cwd = proc.get("cwd")
    if cwd is None or cwd == "":
        raise ConfigError("Cwd property must not be empty")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise ConfigError("Cwd must be an absolute path")
    env = proc.get("env") or []
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise ConfigError("process.env: must be a list of strings")
    user = proc.get("user") or {}
    for k in ("uid", "gid"):
        if not isinstance(user.get(k, 0), int) or not 0 <= user.get(k, 0) < 2 ** 32:
            raise ConfigError("process.user.%s: must be a non-negative integer" % k)
    from ociruntime.process.spec import check as check_process, check_mapped
    caps = check_process(proc, warn)
    linux = cfg.get("linux") or {}
    if any(n.get("type") == "user" and not n.get("path") for n in linux.get("namespaces") or ()):
        check_mapped(user, linux)
    from ociruntime.security import procattrs
    procattrs.check({"process": proc, "linux": {}}, {})  # scheduler, ioPriority, affinity, LSM labels
    return caps


def _namespaces(cfg, init_pid):
    """fds of the init's namespaces to join, in join order; those the runtime already shares are
    left out (setns into one's own user namespace is EINVAL)."""
    types = {ns.get("type") for ns in (cfg.get("linux") or {}).get("namespaces") or ()}
    out = []
    try:
        for t in NS_ORDER:
            if t not in types:
                continue
            path = "/proc/%d/ns/%s" % (init_pid, PROC_NAME[t])
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise InitError("open %s namespace" % t, e.errno, path) from None
            a, b = os.fstat(fd), os.stat("/proc/self/ns/" + PROC_NAME[t])
            if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
                os.close(fd)
                continue
            out.append((t, fd))
    except BaseException:
        for _, fd in out:
            os.close(fd)
        raise
    return out


def _host_mounts_root(cfg, init_pid):
    """Without a mount namespace the init is chrooted into the rootfs (rootfs/hostns.py): an fd of
    its root, which the process enters too (runc 1.1.5 leaves it at the host's root)."""
    if any(ns.get("type") == "mount" for ns in (cfg.get("linux") or {}).get("namespaces") or ()):
        return None
    path = "/proc/%d/root" % init_pid
    try:
        return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise InitError("open the container's root", e.errno, path) from None


def sub_cgroups(specs, cg):
    """--cgroup [ctrl[,ctrl]:]path (runc's syntax) -> Manager.add's ``sub`` ({key or "": path})."""
    if not specs:
        return None
    sub = {}
    for spec in specs:
        parts = spec.split(":")
        if len(parts) > 2:
            raise ConfigError("invalid --cgroup argument: %s" % spec)
        if len(parts) == 1:
            if len(specs) != 1:
                raise ConfigError("invalid --cgroup argument: %s (missing <controller>: prefix)" % spec)
            sub[""] = spec
            continue
        ctrls, path = parts
        for ctrl in ctrls.split(","):
            keys = [k for k, v in cg.paths.items()
                    if k == ctrl or ctrl in v[3].split(",") or (ctrl == "systemd" and "name=systemd" in v[3])]
            if not keys:
                raise ConfigError("invalid --cgroup argument: %s: the container has no %s cgroup" % (spec, ctrl))
            for k in keys:
                if k in sub:
                    raise ConfigError("invalid --cgroup argument(s): controller %s specified multiple times" % ctrl)
                sub[k] = path
    for path in sub.values():
        rel = normpath(path.strip("/"))
        if rel == ".." or rel.startswith("../"):
            raise ConfigError("invalid --cgroup argument: %s: must be below the container's cgroup" % path)
    return sub


def _cgroup_dir(cg, key, sub):
    rel = (sub or {}).get(key, (sub or {}).get(""))
    d = cg.dir(key)
    return join(d, normpath(rel.strip("/"))) if rel else d


def preload(proc, terminal):
    """Import now what the child needs: after it joins the mount namespace nothing can be."""
    import ociruntime.process.execproc  # noqa: F401
    import ociruntime.process.init  # noqa: F401
    import ociruntime.process.spec  # noqa: F401
    import ociruntime.security.procattrs  # noqa: F401
    import ociruntime.security.lsm  # noqa: F401
    if proc.get("rlimits"):
        import ociruntime.security.rlimits  # noqa: F401
    if terminal:
        import ociruntime.tty  # noqa: F401


def _spawn(ctx, sd, state, cfg, proc, console_socket, preserve_fds, cgroup_specs, paused, caps=None, stdio=None):
    from ociruntime.process.execproc import ExecPlan, child_main
    linux = cfg.get("linux") or {}
    init_pid = state["pid"]
    cg = None
    if state.get("cgroup"):
        from ociruntime.cgroups import Manager
        cg = Manager.from_state(state["cgroup"])
    sub = sub_cgroups(cgroup_specs, cg) if cg is not None else None
    if cgroup_specs and cg is None:
        raise ConfigError("invalid --cgroup argument: the container has no cgroup")
    # a task moving itself into a v1 cgroup is fastest (see create.py), and the first process is
    # born in the cgroup2 one (cgroups.BirthFork; the process it forks inherits it); into a frozen
    # one either would freeze before it could exec: then the parent places it, at the end
    self_keys = () if paused or cg is None else tuple(k for k, v in cg.paths.items() if v[2] == 1)
    birth = None if paused or cg is None else cg.birth_dir()
    from ociruntime.security import procattrs
    affinity = procattrs.exec_cpu_affinity(proc)
    preload(proc, bool(console_socket))
    filt = None
    if linux.get("seccomp"):
        from ociruntime.security import seccomp
        filt = seccomp.compile(linux["seccomp"], cfg.get("annotations"))
    seccomp_sock = console = root_fd = None
    joins = []
    report_r, report_w = os.pipe2(os.O_CLOEXEC)  # the trampoline's report (process/execproc.py)
    try:
        if filt is not None and filt.listener_path:
            seccomp_sock = seccomp.connect(filt)
        if console_socket:
            from ociruntime.tty import connect_console
            console = connect_console(console_socket)
        joins = _namespaces(cfg, init_pid)
        root_fd = _host_mounts_root(cfg, init_pid)
        if not _status.init_alive(state):
            raise StateError("cannot exec in a stopped container")
        plan = ExecPlan(
            process=proc, linux=linux, cid=state["id"], init_pid=init_pid, joins=joins,
            self_cgroups=[_cgroup_dir(cg, k, sub) for k in self_keys], affinity=affinity,
            console_sock=console, seccomp=filt, seccomp_sock=seccomp_sock, preserve_fds=preserve_fds,
            no_new_keyring=bool(state.get("no_new_keyring")), caps=caps, report_fd=report_w,
            root_fd=root_fd, stdio=stdio,
        )
        parent_ch, child_ch = channel.pair()
        if ctx.log.debug_on:
            ctx.log.debug("joining the namespaces of the init %d: %s", init_pid,
                          ",".join(t for t, _ in joins) or "none")
        from ociruntime.cgroups import BirthFork
        fork_exec = BirthFork(birth and _cgroup_dir(cg, birth[0], sub), ctx.log)
        kill_point("exec:prepared")
        stage1 = fork_exec("exec")
        if fork_exec.born:
            self_keys += (birth[0],)  # (the parent's writes skip it)
        if stage1 == 0:
            parent_ch.close()
            os.close(sd.fd)  # the state dir's lock is this command's alone
            child_main(plan, child_ch)
        kill_point("exec:forked")
        child_ch.close()
        ctx.log.debug("forked the exec's first process (pid %d%s)", stage1,
                      ", born in its cgroup2 cgroup" if fork_exec.born else "")
    except BaseException:
        os.close(report_r)
        raise
    finally:
        os.close(report_w)
        for _, fd in joins:
            os.close(fd)
        if root_fd is not None:
            os.close(root_fd)
        if console is not None:
            console.close()
    try:
        pid = _drive(ctx, state, cg, sub, self_keys, filt, seccomp_sock, stage1, parent_ch,
                     None if isinstance(console_socket, str) else console_socket)
    except BaseException:
        os.close(report_r)
        raise
    finally:
        if seccomp_sock is not None:
            seccomp_sock.close()
    if paused:
        parent_ch.close()  # frozen until resume: its exec is not waited for (runc hangs here)
        os.close(report_r)
        return pid, None
    try:
        _expect_exec(parent_ch, report_r, proc["args"][0])
    except BaseException:
        _kill(pid)
        raise
    finally:
        parent_ch.close()
        os.close(report_r)
    kill_point("exec:started")
    return pid, None


def _drive(ctx, state, cg, sub, self_keys, filt, seccomp_sock, stage1, ch, relay=None):
    died = _died(stage1)
    try:
        (pid,) = ch.expect("exec_pid", died)
    except BaseException:
        _reap(stage1)
        raise
    _reap(stage1)
    ctx.log.debug("the process to exec has pid %d: placing it in the container's cgroups", pid)
    try:
        if relay is not None:
            relay.attach()  # the child sends the master before it waits for cgroup_joined
        if cg is not None:
            cg.add(pid, sub=sub, skip=self_keys)
        kill_point("exec:joined")
        msg = b""
        if seccomp_sock is not None:
            from ociruntime.security.seccomp import listener_message
            msg = listener_message(filt, _state.public(state, _status.RUNNING), "running")
        try:
            ch.send("cgroup_joined", msg)
        except BrokenPipeError:
            pass  # the child failed meanwhile: its error is read next
    except BaseException:
        _kill(pid)
        raise
    return pid


def _expect_exec(ch, report, argv0):
    """EOF on the channel without an error: the trampoline was executed (the channel is
    close-on-exec); then EOF on ``report``: the process was (a failure: "step:errno")."""
    msg = ch.recv()
    if msg is not None:
        if msg[0] == "error":
            raise InitError(*msg[1:])
        raise InitError("protocol: expected exec, got %s" % msg[0])
    data = b""
    while True:
        chunk = os.read(report, 4096)
        if not chunk:
            break
        data += chunk
    if data:
        step, _, errno_text = data.decode(errors="replace").strip().rpartition(":")
        err = int(errno_text) if errno_text.isdigit() else 0
        raise InitError('exec: "%s"' % argv0 if step == "exec" else step, err)


def _died(pid):
    def describe():
        st = _reap(pid)
        if st is not None and os.WIFSIGNALED(st):
            return "exec: the runtime's child was killed by signal %d" % os.WTERMSIG(st)
        if st is not None:
            return "exec: the runtime's child exited unexpectedly with status %d" % os.WEXITSTATUS(st)
        return "exec: the runtime's child exited unexpectedly"
    return describe


def _reap(pid):
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


def _kill(pid, timeout=2.0):
    """SIGKILL and reap the process, waiting at most ``timeout`` s (one that joined a frozen v1
    cgroup, exec --ignore-paused, dies only once thawed: it is left to the thaw)."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        return
    _status.wait_gone(pid, timeout, reap=True)


class Forwarder:
    """Forwards the signals runc's exec forwards to the process.  They are blocked from before the
    process can run until it has exited, so none is lost or acts on this command meanwhile: the
    plain wait takes them with sigwaitinfo (SIGCHLD too); a tty relay, which polls its fds, gets
    them through handlers instead (``handle``), and those that come before the process's pid is
    known are kept and sent then (``target``).  The shim empties the signal mask before execve."""

    def __init__(self):
        import _signal
        self._signal = _signal
        self.owner = os.getpid()
        self.pid = None
        self.pending = []
        self.handled = []
        self.forwarded = [s for s in range(1, 32) if s not in NOT_FORWARDED]
        self.mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, self.forwarded + [_signal.SIGCHLD])

    def handle(self):
        """Forward through handlers from now on (the tty relay)."""
        for s in self.forwarded:
            try:
                self._signal.signal(s, self._forward)
                self.handled.append(s)
            except (OSError, ValueError):
                pass
        self._signal.pthread_sigmask(self._signal.SIG_UNBLOCK, self.forwarded)

    def wait(self, pid):
        """Forward what comes until ``pid`` exits; its wait status."""
        sig = self._signal
        wanted = self.forwarded + [sig.SIGCHLD]
        while True:
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid == pid:
                return st
            signum = sig.sigwaitinfo(wanted).si_signo
            if signum != sig.SIGCHLD:
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass

    def _forward(self, signum, frame):
        if os.getpid() != self.owner:  # a forked child of ours, not yet the process: as if unhandled
            self._signal.signal(signum, self._signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self.pid is None:
            self.pending.append(signum)
            return
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def target(self, pid):
        self.pid = pid
        pending, self.pending = self.pending, []
        for signum in pending:
            self._forward(signum, None)

    def stop(self):
        for s in self.handled:
            self._signal.signal(s, self._signal.SIG_DFL)
        self.handled = []
        self._signal.pthread_sigmask(self._signal.SIG_SETMASK, self.mask)


def wait(pid, fwd, relay=None):
    """Forward signals to the process (fwd, a Forwarder, or None) until it exits, relaying its tty
    meanwhile (tty.Relay); its exit status, 128+n for signal n.  Without a Forwarder, anything that
    ends the wait early (KeyboardInterrupt) kills the process first."""
    from ociruntime import long_wait
    long_wait()
    try:
        if fwd is None:
            try:
                if relay is not None:
                    relay.copy(pid)
                st = os.waitpid(pid, 0)[1]
            except ChildProcessError:
                raise
            except BaseException:
                _kill(pid)
                raise
        elif relay is None:
            st = fwd.wait(pid)
        else:
            fwd.handle()
            fwd.target(pid)
            relay.copy(pid)
            st = os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 255
    if os.WIFSIGNALED(st):
        return 128 + os.WTERMSIG(st)
    return os.WEXITSTATUS(st)
