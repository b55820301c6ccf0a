"""delete: remove a stopped (or created) container; --force kills a running one first."""
import posix as os  # not os: ~1.5 ms (see ociruntime/__init__.py)
import _signal as signal  # the C module: signal.py imports enum (~5 ms)

from ociruntime import exists, join
from ociruntime.container import state as _state
from ociruntime.container import status as _status
from ociruntime.errors import OCIError, StateError


def delete(ctx, cid, force=False):
    try:
        sd, state, st = _state.load(ctx.root, cid, lock=True)
    except StateError:
        if force:
            return  # `delete --force` of a gone container succeeds (containerd relies on it)
        raise
    try:
        _status.check_delete(cid, st, force)
        ctx.log.debug("delete %s: status %s", cid, st)
        if st != _status.STOPPED:
            ctx.log.debug("killing the container's processes (SIGKILL) and waiting for the init %d", state["pid"])
            kill_and_wait(state)
        destroy(ctx, sd, state)
        ctx.log.debug("delete %s: done", cid)
    finally:
        sd.close()


def kill_and_wait(state, timeout=10.0):
    """SIGKILL the init and everything in the container's cgroup, wait until the init is gone."""
    try:
        pidfd = os.pidfd_open(state["pid"])
    except OSError:
        pidfd = -1
    try:
        if pidfd >= 0 and _status.init_alive(state):
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if state.get("cgroup"):
            from ociruntime.cgroups import Manager
            Manager.from_state(state["cgroup"]).kill_all(signal.SIGKILL)
        if pidfd >= 0:
            from ociruntime import poll
            poll((pidfd,), int(timeout * 1000))
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def destroy(ctx, sd, state):
    """Remove what create made: cgroups, then the state dir; then poststop hooks (warnings only)."""
    errors = []
    if state.get("cgroup"):
        ctx.log.debug("removing the container's cgroups")
        try:
            if state["cgroup"].get("systemd"):  # the scope is stopped (and its cgroup removed)
                from ociruntime.cgroups import Manager
                Manager.from_state(state["cgroup"]).destroy()
            else:
                # Manager.destroy without the cgroups package (cgroupdirs: ~0.2 ms of this command)
                from ociruntime.cgroupdirs import remove_all
                remove_all(state["cgroup"].get("created", ()))
        except OCIError as e:
            errors.append(str(e))
    if state.get("host_root"):
        # no mount namespace: the rootfs bind and the mounts under it, in the host's (rootfs/hostns.py)
        from ociruntime.rootfs import hostns
        ctx.log.debug("detaching the rootfs bind from the host's mount namespace")
        try:
            hostns.release(state["host_root"])
        except OCIError as e:
            errors.append(str(e))
    if exists(join(sd.path, "extras.json")):  # what the annotations' features made (container/extras.py)
        from ociruntime.container import extras
        errors += extras.remove(sd, ctx.log)
    hooks = (state.get("config") or {}).get("hooks") or {}
    sd.remove()
    ctx.log.debug("state directory %s removed", sd.path)
    if hooks.get("poststop"):
        from ociruntime.hooks import run_hooks_warn
        ctx.log.debug("running the poststop hooks")
        run_hooks_warn(hooks["poststop"], "poststop", _state.state_json(state, _status.STOPPED), state.get("bundle"),
                       ctx.log.warning)
    if errors:
        raise OCIError("; ".join(errors))
