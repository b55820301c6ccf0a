"""create: validate the bundle, make the state dir and cgroup, fork the init, drive it to "ready".

Any failure undoes everything done so far (init killed, cgroup removed, state dir removed), so a
failed create leaves the machine as if it never ran.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)
import _signal as signal  # signal's C half (ociruntime/__init__.py says why)

from ociruntime import dirname, isdir, kill_point
from ociruntime import _sys as S
from ociruntime import config as _config
from ociruntime import namespaces
# imported here, not in _drive: after the fork every page the parent writes is copied, beside the
# child
from ociruntime.container.state import make_record, make_state, state_json
from ociruntime.container.statedir import StateDir, write_pid_file
from ociruntime.container.status import proc_stat, wait_gone
from ociruntime.errors import ConfigError, OCIError
from ociruntime.process import channel
from ociruntime.process.init import Plan, child_main, parent_places


def check_config(cfg, nsmap, warn=None):
    """What can be refused from the config alone (``nsmap``: its namespaces), before anything
    exists.  Returns the process's capability masks (process/spec.py check); what it leaves out
    goes to ``warn``."""
    from ociruntime.process.spec import check
    if "mount" not in nsmap:
        _check_host_mounts(cfg, nsmap)
    if cfg.get("hostname") and "uts" not in nsmap:
        raise ConfigError("unable to set hostname without a private UTS namespace")
    if cfg.get("domainname") and "uts" not in nsmap:
        raise ConfigError("unable to set domainname without a private UTS namespace")
    linux = cfg.get("linux", {})
    if (linux.get("uidMappings") or linux.get("gidMappings")) and "user" not in nsmap:
        raise ConfigError("config.json: linux.uidMappings: id mappings need a user namespace")
    if "user" in nsmap and not nsmap["user"] and not (linux.get("uidMappings") and linux.get("gidMappings")):
        raise ConfigError("config.json: linux.uidMappings: a new user namespace needs uidMappings and gidMappings")
    process = cfg.get("process")
    caps = None
    if process is not None:  # (optional at create: start refuses a container without one)
        cwd = process.get("cwd") or "/"
        if not cwd.startswith("/"):
            raise ConfigError("config.json: process.cwd: %r is not an absolute path" % cwd)
        caps = check(process, warn)
        if "user" in nsmap and not nsmap["user"]:
            from ociruntime.process.spec import check_mapped
            check_mapped(process.get("user") or {}, linux)
    devices = (linux.get("resources") or {}).get("devices") or ()
    for i, rule in enumerate(devices):
        access = rule.get("access")
        if access and set(access) - set("rwm"):
            raise ConfigError('config.json: linux.resources.devices[%d].access: "%s" is not a combination '
                              'of r (read), w (write) and m (mknod)' % (i, access))
    from ociruntime.security import procattrs
    procattrs.check(cfg, nsmap)  # scheduler, ioPriority, personality, sysctl namespaces, LSM labels
    return caps


def _check_host_mounts(cfg, nsmap):
    """Without a mount namespace the container's mounts are made in the runtime's (rootfs/hostns.py):
    refuse what needs one of the container's own."""
    linux = cfg.get("linux") or {}
    why = "needs a mount namespace (linux.namespaces has no \"mount\": the container uses the host's)"
    for field in ("maskedPaths", "readonlyPaths", "rootfsPropagation"):
        if linux.get(field):
            raise ConfigError("config.json: linux.%s: %s" % (field, why))
    if "user" in nsmap:
        raise ConfigError("config.json: linux.namespaces: a user namespace %s" % why)


def check_systemd():
    """--systemd-cgroup needs systemd as PID 1 (its D-Bus API creates the scope) on pure v2."""
    from ociruntime.cgroups.systemd import available
    why = available()
    if why:
        raise ConfigError(why)


def cgroup_mount(cfg):
    """Whether the config mounts a cgroup filesystem (which needs cgroups.mount)."""
    return any(m.get("type") in ("cgroup", "cgroup2") for m in cfg.get("mounts") or ())


def preload(cfg, nsmap):
    """Import now what the init will need: in a user namespace the child may no longer be able to
    read the interpreter's library directory, and after pivot_root nothing may be imported."""
    # only what this config needs (init.init imports the same under the same conditions)
    if cgroup_mount(cfg):
        import ociruntime.cgroups.mount  # noqa: F401
    if cfg.get("hooks"):
        import ociruntime.hooks  # noqa: F401
    import ociruntime.process.spec  # noqa: F401
    import ociruntime.rootfs  # noqa: F401
    if "mount" not in nsmap:
        import ociruntime.rootfs.hostns  # noqa: F401
    process = cfg.get("process") or {}
    if process.get("rlimits"):
        import ociruntime.security.rlimits  # noqa: F401
    import ociruntime.security.procattrs  # noqa: F401
    import ociruntime.security.lsm  # noqa: F401
    import ociruntime.jsonio  # noqa: F401
    if (cfg.get("linux") or {}).get("seccomp"):
        import ociruntime.security.seccomp  # noqa: F401
    if process.get("terminal"):
        import ociruntime.tty  # noqa: F401
    if "network" in nsmap:
        import ociruntime.netdev  # noqa: F401


def plan_extras(cfg, nsmap, bundle, rootfs):
    """The features beyond runc the annotations ask for (networking, a copy-on-write rootfs:
    container/extras.py), checked now; None for a bundle that asks for none (nothing imported)."""
    annotations = cfg.get("annotations")
    if not annotations or not any(k.startswith(("org.ociruntime.net.", "org.ociruntime.overlay"))
                                  for k in annotations):
        return None
    from ociruntime.container.extras import Extras
    return Extras.plan(cfg, nsmap, bundle, rootfs)


def create(ctx, cid, bundle, pid_file=None, console_socket=None, no_pivot=False, preserve_fds=0,
           no_new_keyring=False, starts_now=False, stdio=None):
    """Returns the state dict of the created container (status created).  ``starts_now``: `run`,
    which starts it at once (the init then keeps its pages: process/init.py).  ``stdio``: fds
    (or None) the process gets as its stdin, stdout and stderr instead of this process's
    (ociruntime.api's stdin=, stdout=, stderr=)."""
    if ctx.systemd_cgroup:
        check_systemd()
    cfg, bundle, rootfs = _config.load_bundle(bundle)
    log = ctx.log
    log.debug("create %s: bundle %s, rootfs %s: config.json is valid", cid, bundle, rootfs)
    nsmap = _config.namespaces(cfg)
    caps = check_config(cfg, nsmap, lambda msg: ctx.log.warning(msg, stderr=True))
    extras = plan_extras(cfg, nsmap, bundle, rootfs)
    preload(cfg, nsmap)
    filt = None
    if (cfg.get("linux") or {}).get("seccomp"):
        from ociruntime.security import seccomp
        filt = seccomp.compile(cfg["linux"]["seccomp"], cfg.get("annotations"))
    terminal = bool((cfg.get("process") or {}).get("terminal"))
    if callable(console_socket):  # run in the foreground: makes a tty.Relay, if there is a terminal
        console_socket = console_socket() if terminal else None
    if terminal and not console_socket:
        raise ConfigError("cannot allocate tty if ociruntime will detach without setting console socket")
    if console_socket and not terminal:
        raise ConfigError("cannot use console socket if ociruntime will not detach or allocate tty")
    sd = StateDir.create(ctx.root, cid)
    log.debug("state directory %s made", sd.path)
    undo = Undo(sd)
    undo.extras = extras
    try:
        state = _create(ctx, sd, undo, cfg, bundle, rootfs, nsmap, pid_file, console_socket, no_pivot,
                        preserve_fds, no_new_keyring, filt, starts_now, caps, stdio)
    except BaseException:
        undo.run()
        raise
    sd.close()
    return state


class Undo:
    """What a failed create must take back, in reverse order."""

    def __init__(self, sd):
        self.sd, self.pids, self.cgroup = sd, [], None
        self.poststop = None  # (hooks, state JSON, bundle) once the container exists
        self.host_root = None  # no mount namespace: the rootfs bind in the host's (rootfs/hostns.py)
        self.extras = None  # the annotations' features (container/extras.py)
        # what this process holds open for the child (namespace fds, console, the seccomp
        # agent's socket, exec.fifo, the channel): closed when done with, or by a failure (a
        # program using the API lives on after a failed create)
        self.closers = []

    def hold_fd(self, fd):
        self.closers.append(lambda: os.close(fd))
        return fd

    def close(self):
        closers, self.closers = self.closers, []
        for close in closers:
            try:
                close()
            except OSError:
                pass

    def run(self):
        self.close()
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        for pid in self.pids:
            wait_gone(pid, reap=True)  # (bounded: a task in a frozen v1 cgroup does not die)
        left = []
        if self.extras is not None:  # (what it cannot remove keeps the record, as a cgroup does)
            from ociruntime import log
            left += self.extras.undo(self.sd, log.current)
        if self.cgroup is not None:
            try:
                self.cgroup.destroy()
            except OCIError as e:
                left.append(str(e))
        if self.host_root is not None:
            from ociruntime.rootfs import hostns
            try:
                hostns.release(self.host_root)
            except OCIError as e:
                left.append(str(e))
        if not left:
            self.sd.remove()
        else:  # the record stays, for `delete --force` to finish
            from ociruntime import log
            log.current.warning("container %s: %s: `delete --force %s` removes what is left"
                                % (self.sd.id, "; ".join(left), self.sd.id))
            self.sd.close()
        if self.poststop:
            # the spec's lifecycle goes on with the destroy step and its poststop hooks (as runc)
            from ociruntime import log
            from ociruntime.hooks import run_hooks_warn
            run_hooks_warn(*self.poststop, log.current.warning)


def _host_root_ids(linux):
    """The host ids of the container's root (for files its init must open)."""
    def host(maps):
        for m in maps or ():
            if m["containerID"] <= 0 < m["containerID"] + m["size"]:
                return m["hostID"] - m["containerID"]
        return 0
    return host(linux.get("uidMappings")), host(linux.get("gidMappings"))


def _rootless_cgroups(cg, linux):
    """Rootless (as runc): use only the hierarchies where the caller may create the container's
    cgroup (delegated to it); without one, the container shares the caller's cgroups, and
    resource limits, which need one, are refused."""
    for key in list(cg.paths):
        d = cg.dir(key)
        while not isdir(d) and d != "/":
            d = dirname(d)
        if not os.access(d, os.W_OK | os.X_OK):
            del cg.paths[key]
    limits = [k for k, v in (linux.get("resources") or {}).items() if v and k != "devices"]
    if limits and not cg.paths:
        raise ConfigError("config.json: linux.resources: %s: rootless: no writable cgroup for the limits "
                          "(delegate a cgroup to the user)" % ", ".join(sorted(limits)))


def _create(ctx, sd, undo, cfg, bundle, rootfs, nsmap, pid_file, console_socket, no_pivot, preserve_fds,
            no_new_keyring, seccomp_filter=None, starts_now=False, caps=None, stdio=None):
    linux = cfg.get("linux", {})
    os.mkfifo(sd.fifo_path(), 0o622)
    os.chmod(sd.fifo_path(), 0o622)  # mkfifo honours the umask
    root_uid, root_gid = _host_root_ids(linux)
    if (root_uid or root_gid) and os.geteuid() == 0:
        os.chown(sd.fifo_path(), root_uid, root_gid)
    if ctx.systemd_cgroup:
        from ociruntime.cgroups.systemd import SystemdManager
        cg = SystemdManager.for_config(cfg, sd.id, rootless=os.geteuid() != 0)
    else:
        from ociruntime.cgroups import Manager
        cg = Manager.for_config(cfg, sd.id)
        if os.geteuid() != 0:
            _rootless_cgroups(cg, linux)
    planned = cg.plan()
    # what is about to be made, recorded first: a create killed from here on leaves a container
    # that `delete` removes, cgroups and processes with it (statedir.py, made.json)
    sd.save_record(make_record(sd.id, bundle, rootfs, cfg, cg, planned), first=True)
    kill_point("create:recorded")
    undo.cgroup = cg
    joins = namespaces.open_joins(nsmap)
    for _, fd, _ in joins:
        undo.hold_fd(fd)
    console = None
    if console_socket:
        from ociruntime.tty import connect_console
        console = connect_console(console_socket)
        undo.closers.append(console.close)
    seccomp_sock = None
    if seccomp_filter is not None and seccomp_filter.listener_path:
        from ociruntime.security.seccomp import connect
        seccomp_sock = connect(seccomp_filter)  # the agent's socket, reached from the host's mounts
        undo.closers.append(seccomp_sock.close)
    # the init's only handle on the state dir: the fifo itself, O_PATH, reopened for writing
    # through /proc/self/fd when it waits (as runc): no fd of the directory enters the container
    fifo_fd = undo.hold_fd(os.open(sd.fifo_path(), os.O_PATH | os.O_CLOEXEC))
    new_flags = namespaces.new_flags(nsmap)
    # without a user (or time) namespace, this process enters the container's pid namespace for
    # the fork alone (namespaces.fork_in_pidns): the child is then the init itself, PID 1, with no
    # second fork of the interpreter.  A pid namespace must belong to the container's user
    # namespace (proc is mounted from it), so with one the child creates it and forks.
    pidns_here = "pid" in nsmap and "user" not in nsmap and not new_flags & S.CLONE_NEWTIME
    pid_join, child_joins, close_fds = None, joins, (sd.fd,)
    if pidns_here:
        new_flags &= ~S.CLONE_NEWPID
        pid_join = next((j for j in joins if j[0] == "pid"), None)
        child_joins = [j for j in joins if j[0] != "pid"]
        if pid_join is not None:
            close_fds += (pid_join[1],)
    offsets = linux.get("timeOffsets") or {}
    overlay = None
    if undo.extras is not None:  # the copy-on-write rootfs's directories, which the init mounts
        overlay = undo.extras.before_fork(sd, bundle, rootfs, _host_root_ids(linux), "user" in nsmap)
    plan = Plan(
        config=cfg, bundle=bundle, rootfs=rootfs, joins=child_joins,
        new_userns=bool(new_flags & S.CLONE_NEWUSER), in_userns="user" in nsmap,
        new_flags=new_flags, has_uts="uts" in nsmap,
        fork_init=not pidns_here and ("pid" in nsmap or bool(new_flags & S.CLONE_NEWTIME)),
        time_offsets="".join("%s %d %d\n" % (clk, o.get("secs", 0), o.get("nanosecs", 0))
                             for clk, o in offsets.items()),
        cgroup_paths=cg.paths, cgroup_mount=cgroup_mount(cfg), cgroup_late=bool(ctx.systemd_cgroup),
        fifo_fd=fifo_fd, console_sock=console, no_pivot=no_pivot, host_mounts="mount" not in nsmap,
        preserve_fds=preserve_fds, close_fds=close_fds, cid=sd.id, no_new_keyring=no_new_keyring,
        seccomp=seccomp_filter, seccomp_sock=seccomp_sock,
        # v1 hierarchies the init joins itself (writing "0" to tasks): a task moving itself skips
        # the kernel's global threadgroup lock, whose first taking waits out an RCU grace period;
        # in a user namespace it may not write the host's cgroup files
        self_cgroups=() if "user" in nsmap else tuple(k for k, v in cg.paths.items() if v[2] == 1),
        # the waiting init drops its read-only file pages (process/init.py); `run` starts it at
        # once, and the pages would be faulted back before the exec
        drop_pages=not starts_now, caps=caps, stdio=stdio,
        mount_trees=None,  # the bind sources the child clones before a user namespace (init.py)
        overlay=overlay,
    )
    # the cgroups are made and limited before the fork, so the child finds them ready (a child
    # forked while this process works runs later, so making them meanwhile saved nothing:
    # docs/NOTES.md, Speed).  The slow step, the first attach, is avoided in the cgroup2
    # hierarchy (the init is born there: BirthFork) and made by the init itself in v1 ones;
    # what the parent must still write overlaps the init's rootfs work (_drive, cg.add).
    if not cg.create(planned):  # one was made by someone else meanwhile: not ours
        sd.save_record(make_record(sd.id, bundle, rootfs, cfg, cg, cg.created))
    kill_point("create:cgroups")
    cg.check_thawed()
    cg.apply(linux.get("resources"))
    kill_point("create:resources")
    if ctx.log.debug_on:
        ctx.log.debug("cgroups made and limited: %s", " ".join(sorted({v[0] + v[1] for v in cg.paths.values()})))
    if plan.host_mounts:
        from ociruntime.rootfs import hostns
        undo.host_root = hostns.bind_root(rootfs)
        # recorded at once (its mount id is known only now): a create killed from here on leaves
        # the bind to `delete`, which detaches it by that id
        sd.save_record(dict(make_record(sd.id, bundle, rootfs, cfg, cg, cg.created), host_root=undo.host_root))
        kill_point("create:host-root")
        ctx.log.debug("no mount namespace: rootfs bound onto itself in the host's (mount id %s)", undo.host_root["id"])
    # the init is born in its cgroup2 cgroup where the kernel allows it (an init its first process
    # forks, in a user namespace, inherits it); the parent places it in the others (_drive)
    from ociruntime.cgroups import BirthFork
    birth = cg.birth_dir()
    fork_init = BirthFork(birth and birth[1], ctx.log)
    parent_ch, child_ch = channel.pair()
    undo.closers += [parent_ch.close, child_ch.close]
    pid = namespaces.fork_in_pidns(pid_join, "the container init", fork_init) if pidns_here else \
        fork_init("fork the container init")
    plan.born_in = birth[0] if fork_init.born else None
    if pid == 0:
        parent_ch.close()
        child_main(plan, child_ch)
    undo.pids.append(pid)
    kill_point("create:forked")
    undo.closers.remove(parent_ch.close)
    undo.close()  # what was the child's: its channel end, namespaces, console, agent socket, fifo
    undo.closers.append(parent_ch.close)
    ctx.log.debug("forked the container's first process (pid %d%s): namespaces %s", pid,
                  ", born in its cgroup2 cgroup" if plan.born_in else "", ",".join(nsmap) or "none")
    return _drive(ctx, sd, undo, cfg, bundle, rootfs, cg, pid, plan, parent_ch, pid_file)


def _died(pid):
    def describe():
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return "container init exited unexpectedly"
        if done and os.WIFSIGNALED(status):
            return "container init was killed by signal %d" % os.WTERMSIG(status)
        if done:
            return "container init exited unexpectedly with status %d" % os.WEXITSTATUS(status)
        return "container init closed its channel unexpectedly"
    return describe


def _drive(ctx, sd, undo, cfg, bundle, rootfs, cg, pid, plan, ch, pid_file):
    linux = cfg.get("linux", {})
    died = _died(pid)
    log = ctx.log
    if plan.new_userns:
        ch.expect("map_ids", died)
        log.debug("child %d made its user namespace: writing its uid and gid maps", pid)
        namespaces.write_idmaps(pid, linux.get("uidMappings"), linux.get("gidMappings"))
        ch.send("ids_mapped")
    (init_pid,) = ch.expect("init_pid", died)
    if not init_pid:  # the child is the init
        init_pid = pid
    elif init_pid != pid:
        undo.pids.insert(0, init_pid)
        os.waitpid(pid, 0)  # the stage that forked the init is done
        undo.pids.remove(pid)
        died = lambda: "container init exited unexpectedly"  # noqa: E731 (not our child: no status)
    kill_point("create:init-pid")
    placed = parent_places(plan)
    log.debug("container init pid %d: %s", init_pid, "placing it in its cgroups" if placed else
              "nothing for the parent to place (cgroup2: born there; v1: joined by the init)")
    if placed:
        cg.add(init_pid, skip=plan.self_cgroups + ((plan.born_in,) if plan.born_in else ()))
    kill_point("create:joined")
    if placed:
        try:
            ch.send("cgroup_joined")
        except BrokenPipeError:
            pass  # the init already failed (it builds the rootfs meanwhile): its error is read next
    st = proc_stat(init_pid)
    state = make_state(sd.id, init_pid, st[1] if st else 0, bundle, rootfs, cfg, cg)
    if undo.host_root is not None:
        state["host_root"] = undo.host_root  # delete detaches it
    if undo.extras is not None:  # the network: the init's namespace exists now
        try:
            undo.extras.after_init(sd, init_pid, state, log)
        except OCIError:
            ch.expect("runtime_hooks", died)  # (the init's own error, if it failed first, is the one to tell)
            raise
    ch.expect("runtime_hooks", died)
    log.debug("init %d has mounted the rootfs", init_pid)
    hooks = cfg.get("hooks") or {}
    sj = state_json(state, "creating")
    if hooks.get("poststop"):
        undo.poststop = (hooks["poststop"], "poststop", state_json(state, "stopped"), bundle)
    if hooks.get("prestart") or hooks.get("createRuntime"):
        from ociruntime.hooks import run_hooks
        log.debug("running the prestart and createRuntime hooks")
        run_hooks(hooks.get("prestart"), "prestart", sj, bundle)
        run_hooks(hooks.get("createRuntime"), "createRuntime", sj, bundle)
        kill_point("create:hooks")
    ch.send("hooks_done", sj, state_json(state, "created") if hooks.get("startContainer") else "")
    # saved before "ready" (while the init finishes): an init that is ready waits for start on
    # exec.fifo, so it must not exist without a state.json naming it (a failure undoes both)
    sd.save(state)
    kill_point("create:saved")
    ch.expect("ready", died)
    kill_point("create:ready")
    undo.close()  # the channel
    log.debug("init %d is ready (pivoted, process prepared): it waits for start", init_pid)
    if pid_file:
        write_pid_file(pid_file, init_pid)
        kill_point("create:pid-file")
    log.debug("create %s: done, state saved", sd.id)
    return state
