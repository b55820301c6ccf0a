"""Lifecycle hooks: run each with the state JSON on stdin, its args/env, and its timeout."""
import os
import signal
import time

from ociruntime.errors import HookError


def run_hooks(hooks, name, state_json):
    for i, h in enumerate(hooks or ()):
        run_one(h, "%s[%d]" % (name, i), state_json)


def run_one(hook, label, state_json):
    path = hook["path"]
    args = hook.get("args") or [path]
    env = hook.get("env") or []
    timeout = hook.get("timeout")
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError as e:
        raise HookError("%s %s: fork: %s" % (label, path, e.strerror)) from None
    if pid == 0:
        try:
            os.dup2(r, 0)
            os.closerange(3, 65536)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execve(path, args, dict(e.split("=", 1) for e in env if "=" in e))
        except OSError as e:
            os.write(2, ("ociruntime: hook %s %s: %s\n" % (label, path, e.strerror)).encode())
        os._exit(127)
    os.close(r)
    try:
        os.write(w, state_json.encode() if isinstance(state_json, str) else state_json)
    except OSError:
        pass
    os.close(w)
    status = _wait(pid, timeout)
    if status is None:
        raise HookError("%s %s: timed out after %ds, killed" % (label, path, timeout))
    if status != 0:
        if os.WIFEXITED(status):
            raise HookError("%s %s: exit status %d" % (label, path, os.WEXITSTATUS(status)))
        raise HookError("%s %s: killed by signal %d" % (label, path, os.WTERMSIG(status)))


def _wait(pid, timeout):
    if not timeout:
        return os.waitpid(pid, 0)[1]
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
