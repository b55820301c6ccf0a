"""Lifecycle hooks: run each with the state JSON on stdin, its args/env, and its timeout.

Where each kind runs (the runtime-spec's rules; runc 1.1.5 does the same except where noted):

  kind             run by                      namespaces        state status  on failure
  prestart         create (parent)             the runtime's     creating      create fails, container destroyed
  createRuntime    create (parent)             the runtime's     creating      create fails, container destroyed
  createContainer  the init, before pivot_root the container's   creating      create fails, container destroyed
  startContainer   the init, after start       the container's   created       start fails, container destroyed
  poststart        start (after the release)   the runtime's     running       start fails, container stopped
  poststop         delete (after destroying)   the runtime's     stopped       a warning only

A hook runs in a process group of its own, with stdout and stderr captured (they go into the error
message, as runc's); a timeout kills the whole group, so nothing the hook started is left behind.
The hooks run by the runtime (not the init) have the bundle as working directory, as runc's;
createContainer hooks the rootfs (runc's init is in it when it runs them).  Those the init runs
(createContainer, startContainer) are executed through the trampoline (cext/trampoline.c), as the
container's process is: the host's runtime program is never what the kernel could run for them.
startContainer hooks run once the init has applied the process's credentials, capabilities,
no_new_privs and seccomp, with the process's environment unless the hook has its own (as runc).
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)
import select  # imported now: the init runs hooks after nothing can be imported any more
import _signal as signal  # signal's C half (ociruntime/__init__.py says why)

from ociruntime import fork
from ociruntime.errors import HookError


def run_hooks(hooks, name, state_json, cwd=None, env=None, trampoline=-1):
    """``env``: the environment of a hook without one (default: none); ``trampoline``: the init's
    trampoline fd (_sys.trampoline) to execute the hooks through, -1 for a plain execve."""
    for i, h in enumerate(hooks or ()):
        run_one(h, name, i, state_json, cwd, env, trampoline)


def run_hooks_warn(hooks, name, state_json, cwd, warn):
    """Hooks whose failure is only a warning (poststop): every one runs, each failure is passed
    to ``warn``."""
    for i, h in enumerate(hooks or ()):
        try:
            run_one(h, name, i, state_json, cwd)
        except HookError as e:
            warn("%s hook failed: %s" % (name, e))


def run_one(hook, name, index, state_json, cwd=None, env=None, trampoline=-1):
    path = hook["path"]
    label = "error running %s hook #%d (%s)" % (name, index, path)
    args = hook.get("args") or [path]
    env = hook.get("env") or env or []
    timeout = hook.get("timeout")
    data = state_json.encode() if isinstance(state_json, str) else state_json
    r, w = os.pipe2(os.O_CLOEXEC)
    out = os.memfd_create("hook-stdout", os.MFD_CLOEXEC)
    err = os.memfd_create("hook-stderr", os.MFD_CLOEXEC)
    try:
        try:
            pid = fork("run %s hook #%d" % (name, index))
        except OSError as e:
            raise HookError("%s: fork: %s" % (label, e.strerror)) from None
        if pid == 0:
            _child(r, out, err, path, args, env, cwd, label, trampoline)
        os.close(r)
        r = -1
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = -1
        try:
            _feed(w, data, pidfd)
            w = -1
            status = _wait(pid, pidfd, timeout)
        finally:
            if pidfd >= 0:
                os.close(pidfd)
        if status is None:
            raise HookError("%s: timed out after %gs, killed" % (label, timeout))
        if status != 0:
            text = _read(err)
            if trampoline >= 0 and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 127 and \
                    text.startswith("exec:") and text[5:].isdigit():  # the trampoline's report
                raise HookError("%s: %s" % (label, os.strerror(int(text[5:]))))
            if os.WIFEXITED(status):
                what = "exit status %d" % os.WEXITSTATUS(status)
            else:
                what = "killed by signal %d" % os.WTERMSIG(status)
            raise HookError("%s: %s, stdout: %s, stderr: %s" % (label, what, _read(out), text))
    finally:
        for fd in (r, w, out, err):
            if fd >= 0:
                os.close(fd)


def _child(r, out, err, path, args, env, cwd, label, trampoline=-1):
    try:
        os.setpgid(0, 0)  # a group of its own: a timeout kills everything it started
        os.dup2(r, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        first = 3
        if trampoline >= 0:
            os.dup2(trampoline, 3)
            first = 4
        os.closerange(first, 65536)
        for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        if cwd:
            try:
                os.chdir(cwd)
            except OSError:
                pass
        if trampoline >= 0:
            from ociruntime import _sys as S  # loaded: the init uses it
            S.exec_trampoline(3, path, args, env, errfd=-1, first_cloexec_fd=3)
        os.execve(path, args, dict(e.split("=", 1) for e in env if "=" in e))
    except OSError as e:
        os.write(2, ("%s: %s" % (label, e.strerror)).encode(errors="replace"))
    finally:
        os._exit(127)


def _feed(w, data, pidfd):
    """Write the state to the hook's stdin; a hook that exits (or closes stdin) early is fine."""
    os.set_blocking(w, False)
    p = select.poll()
    p.register(w, select.POLLOUT)
    if pidfd >= 0:
        p.register(pidfd, select.POLLIN)
    try:
        while data:
            events = dict(p.poll())
            if pidfd in events:
                break
            try:
                n = os.write(w, data)
            except BlockingIOError:
                continue
            except OSError:  # EPIPE: it does not read its stdin
                break
            data = data[n:]
    finally:
        os.close(w)


def _wait(pid, pidfd, timeout):
    """The hook's wait status, or None when it ran past ``timeout`` seconds (then its process
    group is killed and reaped)."""
    if timeout and pidfd >= 0:
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        if not p.poll(int(timeout * 1000)):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return None
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue


def _read(fd):
    os.lseek(fd, 0, 0)  # SEEK_SET
    data = b""
    while len(data) < 4096:
        chunk = os.read(fd, 4096 - len(data))
        if not chunk:
            break
        data += chunk
    # one line: the error is printed as one line on stderr
    return data.decode(errors="replace").rstrip("\n").replace("\n", "\\n")
