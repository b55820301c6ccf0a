"""delete: remove a stopped (or created) container; --force kills a running one first.

`delete --force` removes whatever a command killed half-way left (statedir.py): a container known
only by its record of what create made, one whose state.json is damaged (its marshal copy or that
record say what to remove), or an empty state directory.  Processes left in the container's
cgroup when it does not have a pid namespace of its own (the host's, or one it joined) are killed
before the cgroup is removed, as runc's destroy does: its init's exit does not end them.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)
import _signal as signal  # signal's C half (ociruntime/__init__.py says why)

from ociruntime import exists, join, kill_point
from ociruntime.container import state as _state
from ociruntime.container import status as _status
from ociruntime.errors import OCIError, StateError


def delete(ctx, cid, force=False):
    try:
        sd, state, st = _state.load(ctx.root, cid, lock=True)
    except StateError:
        if force:
            # `delete --force` of a gone container succeeds (containerd relies on it)
            return remove_damaged(ctx, cid)
        raise
    try:
        _status.check_delete(cid, st, force)
        ctx.log.debug("delete %s: status %s", cid, st)
        if st != _status.STOPPED:
            ctx.log.debug("killing the container's processes (SIGKILL) and waiting for the init %d", state["pid"])
            kill_and_wait(state)
            kill_point("delete:killed")
        destroy(ctx, sd, state)
        ctx.log.debug("delete %s: done", cid)
    finally:
        sd.close()


def remove_damaged(ctx, cid):
    """What is left of a container whose state cannot be loaded: the processes and cgroups a
    fallback record names, then the directory.  Nothing there (no directory): nothing to do."""
    from ociruntime.container.statedir import StateDir
    try:
        sd = StateDir.open(ctx.root, cid, lock=True, need_record=False)
    except StateError:
        return
    try:
        state, problem = sd.load_any()
        if state is None:
            if problem != "container does not exist":  # (an empty directory says nothing)
                ctx.log.warning("%s; no copy says what it ran: its processes and cgroups (if any) are "
                                "left" % problem)
            if exists(join(sd.path, "extras.json")):  # its own record: networking, overlay
                from ociruntime.container import extras
                errors = extras.remove(sd, ctx.log)  # (an upper asked to be kept is kept)
                if errors:  # (the records stay for another `delete --force`)
                    raise OCIError("; ".join(errors))
            sd.remove()
            return
        if problem:
            ctx.log.warning("%s; removed as its last good record says" % problem)
        if _status.init_alive(state):
            kill_and_wait(state)
        # (a state.json that is there but damaged was written by a create that finished)
        destroy(ctx, sd, state, hooks=problem is None, created=problem is not None or not state.get("incomplete"))
    finally:
        sd.close()


def kill_and_wait(state, timeout=10.0):
    """SIGKILL the init and everything in the container's cgroup, wait (at most ``timeout`` s)
    until the init is gone, or no task is left in the cgroup: the init of a pid namespace stays
    until the zombies of its tasks are reaped, which is up to their parent (an exec's process is
    the exec's caller's), not to us."""
    try:
        pidfd = os.pidfd_open(state["pid"]) if state.get("pid") else -1
    except OSError:
        pidfd = -1
    try:
        if pidfd >= 0 and _status.init_alive(state):
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        cg = None
        if state.get("cgroup"):
            from ociruntime.cgroups import Manager
            cg = Manager.from_state(state["cgroup"])
            cg.kill_all(signal.SIGKILL)
        if pidfd >= 0:
            from ociruntime import poll
            waited, wait = 0, 5
            while not poll((pidfd,), wait) and (cg is None or cg.procs()) and waited < timeout * 1000:
                waited, wait = waited + wait, min(wait * 2, 100)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def shares_pid_ns(state):
    """Whether the container's processes can outlive its init: no pid namespace of its own (the
    host's, or a joined one), or not known (a create that did not finish, a damaged record)."""
    if state.get("incomplete") or not isinstance(state.get("config"), dict):
        return True
    for ns in (state["config"].get("linux") or {}).get("namespaces") or ():
        if ns.get("type") == "pid":
            return bool(ns.get("path"))
    return True


def destroy(ctx, sd, state, hooks=True, created=None):
    """Remove what create made: processes left in the cgroup (shares_pid_ns), cgroups, then the
    state dir; then poststop hooks (warnings only).  ``created``: the create finished (it saved
    state.json; by default: the state is not made.json's record), else what it made for the
    annotations' features goes as for a create that failed (extras.remove)."""
    errors = []
    if state.get("cgroup"):
        if shares_pid_ns(state):
            from ociruntime.cgroups import Manager
            cg = Manager.from_state(state["cgroup"])
            if cg.procs():
                try:
                    cg.kill_all(signal.SIGKILL)
                except OCIError as e:
                    errors.append(str(e))
        ctx.log.debug("removing the container's cgroups")
        try:
            if state["cgroup"].get("systemd"):  # the scope is stopped (and its cgroup removed)
                from ociruntime.cgroups import Manager
                Manager.from_state(state["cgroup"]).destroy()
            else:
                # Manager.destroy without importing the cgroups package (cgroupdirs)
                from ociruntime.cgroupdirs import remove_all
                remove_all(state["cgroup"].get("created", ()))
        except OCIError as e:
            errors.append(str(e))
        kill_point("delete:cgroups-removed")
    if state.get("host_root"):
        # no mount namespace: the rootfs bind and the mounts under it, in the host's (rootfs/hostns.py)
        from ociruntime.rootfs import hostns
        ctx.log.debug("detaching the rootfs bind from the host's mount namespace")
        try:
            hostns.release(state["host_root"])
        except OCIError as e:
            errors.append(str(e))
        kill_point("delete:host-root-released")
    if exists(join(sd.path, "extras.json")):  # what the annotations' features made (container/extras.py)
        from ociruntime.container import extras
        errors += extras.remove(sd, ctx.log, created=not state.get("incomplete") if created is None else created)
    if errors:
        # the records stay (with the state dir) for another `delete --force`
        raise OCIError("; ".join(errors))
    hooks = hooks and ((state.get("config") or {}).get("hooks") or {})
    sd.remove()
    ctx.log.debug("state directory %s removed", sd.path)
    if hooks and hooks.get("poststop"):
        from ociruntime.hooks import run_hooks_warn
        ctx.log.debug("running the poststop hooks")
        run_hooks_warn(hooks["poststop"], "poststop", _state.state_json(state, _status.STOPPED), state.get("bundle"),
                       ctx.log.warning)
