"""run: create + start, then (unless detached) wait for the init, forward signals to it (the
API's Container.run only when asked), delete the container and exit with its status."""
import posix as os  # os's C half (ociruntime/__init__.py says why)
import _signal as signal  # signal's C half (ociruntime/__init__.py says why)

from ociruntime import _sys as S
from ociruntime import kill_point
from ociruntime.container import create as _create
from ociruntime.container import delete as _delete
from ociruntime.container import start as _start
from ociruntime.container.statedir import StateDir
from ociruntime.errors import OCIError

FORWARD = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
           signal.SIGUSR2, signal.SIGWINCH)


def run(ctx, cid, bundle, detach=False, keep=False, forward=True, **create_kw):
    """The container's exit status; detached, the state dict of the started container (its init
    a child of this process, or adopted by it when it is not: a subreaper)."""
    if not detach:
        # the init is our grandchild when it is PID 1 of a new pid namespace: adopt it to wait
        S.prctl(S.PR_SET_CHILD_SUBREAPER, 1)
    relay = []
    if not detach and not create_kw.get("console_socket"):
        def make_relay():  # process.terminal: relay the pty ourselves, as runc (tty.Relay)
            from ociruntime.tty import Relay
            relay.append(Relay())
            return relay[0]
        create_kw["console_socket"] = make_relay
    try:
        state = _create.create(ctx, cid, bundle, starts_now=True, **create_kw)
    except BaseException:
        for r in relay:
            r.close()
        raise
    relay = relay[0] if relay else None
    if forward and not detach:
        # from before the process runs until it has exited: a signal for it is never lost, nor does
        # it end this command first (the init was forked with the caller's mask: only we block)
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARD + (signal.SIGCHLD,))
    try:
        if relay is not None:
            relay.attach()  # before start: the size and raw mode are set before the process runs
        _start.check_process(state)
        sd = StateDir.open(ctx.root, cid)
        try:
            report = _start.release(sd, state)
            _start.run_start_hooks(ctx, sd, state, report)
        finally:
            sd.close()
    except BaseException:
        if relay is not None:
            relay.close()
        _cleanup(ctx, cid)
        raise
    if detach:
        return state
    if not forward:
        return wait_plain(ctx, cid, state["pid"], keep, relay)
    return wait_and_delete(ctx, cid, state["pid"], keep, relay)


def wait_plain(ctx, cid, pid, keep, relay=None):
    """Wait for the init ``pid`` alone (a program that embeds the API has children of its own,
    whose statuses are not ours to reap), then delete the container unless ``keep``; anything
    that ends the wait early (KeyboardInterrupt) kills the container first."""
    from ociruntime import long_wait
    long_wait()
    try:
        try:
            if relay is not None:
                relay.copy(pid)
        finally:
            if relay is not None:
                relay.close()
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ChildProcessError:
        status = 255
    except BaseException:
        # bounded waits: an init in a frozen cgroup dies only once thawed, which delete does
        from ociruntime.container.status import wait_gone
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_gone(pid, reap=True)
        if not keep:
            _cleanup(ctx, cid)
            wait_gone(pid, reap=True)
        raise
    if not keep:
        _cleanup(ctx, cid)
    return 128 - status if status < 0 else status


def wait_and_delete(ctx, cid, pid, keep, relay=None):
    kill_point("run:waiting")
    from ociruntime import long_wait
    long_wait()

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    if relay is not None:  # it polls its fds: the signals come through handlers
        for s in FORWARD:
            signal.signal(s, forward)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARD)
        try:
            relay.copy(pid)
        except Exception as e:  # the container is still waited for and deleted
            ctx.log.warning("tty: %s" % e)
        finally:
            relay.close()
    status = None
    while status is None:
        try:  # reap what was reparented to us too (we are a subreaper)
            wpid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            status = 255
            break
        if wpid == pid:
            status = os.waitstatus_to_exitcode(st)
            if status < 0:
                status = 128 - status
        elif wpid == 0:
            if relay is not None:
                signal.sigwaitinfo((signal.SIGCHLD,))
                continue
            signum = signal.sigwaitinfo(FORWARD + (signal.SIGCHLD,)).si_signo
            if signum != signal.SIGCHLD:
                forward(signum, None)
    for s in FORWARD:
        signal.signal(s, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARD + (signal.SIGCHLD,))
    if not keep:
        _cleanup(ctx, cid)
    return status


def _cleanup(ctx, cid):
    try:
        _delete.delete(ctx, cid, force=True)
    except OCIError as e:
        ctx.log.warning("delete %s: %s" % (cid, e))
