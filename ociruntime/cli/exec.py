"""ociruntime exec [options] ID [COMMAND [ARG...]] | exec --process FILE ID: runc's flags."""
from ociruntime.errors import OCIError, UsageError

FLAGS = {
    "console-socket": ("console_socket", "str"),
    "cwd": ("cwd", "str"),
    "env": ("env", "list"), "e": ("env", "list"),
    "tty": ("tty", "bool"), "t": ("tty", "bool"),
    "user": ("user", "str"), "u": ("user", "str"),
    "additional-gids": ("gids", "list"), "g": ("gids", "list"),
    "process": ("process", "str"), "p": ("process", "str"),
    "detach": ("detach", "bool"), "d": ("detach", "bool"),
    "pid-file": ("pid_file", "str"),
    "process-label": ("process_label", "str"),
    "apparmor": ("apparmor", "str"),
    "no-new-privs": ("no_new_privs", "bool"),
    "cap": ("cap", "list"), "c": ("cap", "list"),
    "preserve-fds": ("preserve_fds", "int"),  # (runc: an int, below 0 is 0)
    "cgroup": ("cgroup", "list"),
    "ignore-paused": ("ignore_paused", "bool"),
}
ARGS = (1, None)
REORDER = False  # what follows the id is the process's command line (runc: SkipArgReorder)


class ExecError(OCIError):
    exit_code = 255  # runc: every exec failure exits 255, the process's own status otherwise


def run(ctx, opts, args):
    try:
        return _run(ctx, opts, args)
    except OCIError as e:
        from ociruntime.errors import InitError
        msg = str(e)
        if isinstance(e, InitError):
            msg = "unable to start container process: " + msg
        raise ExecError("exec failed: " + msg) from None


def _run(ctx, opts, args):
    from ociruntime.container import exec as _exec
    cid = args[0]
    if opts.get("process"):
        process = load_process(opts["process"])
    else:
        if len(args) < 2:
            raise UsageError("process args cannot be empty")
        argv = args[1:]

        def process(base):  # the container's own process, with the flags' changes
            return _exec.override(base, argv, **process_options(opts))
    preserve = max(0, opts.get("preserve_fds", 0))
    status = _exec.exec_process(ctx, cid, process, detach=opts.get("detach", False),
                                pid_file=opts.get("pid_file"), console_socket=opts.get("console_socket"),
                                preserve_fds=preserve, cgroup=opts.get("cgroup"),
                                ignore_paused=opts.get("ignore_paused", False))
    return 0 if opts.get("detach") else status


def load_process(path):
    from ociruntime import jsonio
    try:
        with open(path, "rb") as f:
            doc = jsonio.loads(f.read())
    except OSError as e:
        raise OCIError("open %s: %s" % (path, e.strerror.lower())) from None
    except ValueError as e:
        raise OCIError("%s: invalid JSON: %s" % (path, e)) from None
    if not isinstance(doc, dict):
        raise OCIError("%s: a runtime-spec process must be a JSON object" % path)
    return doc


def process_options(opts):
    """container.exec.override's keywords from exec's flags (runc's getProcess reads them when
    the container has been found: parse errors come after that one)."""
    uid = gid = None
    if opts.get("user"):
        u = opts["user"].split(":", 1)
        if len(u) > 1:
            gid = _atoi(u[1], "gid")
        uid = _atoi(u[0], "uid")
    gids = []
    for g in opts.get("gids") or ():
        gid_ = _atoi(g, "additional-gids")
        if gid_ < 0:
            raise UsageError("additional-gids must be a positive number %d" % gid_)
        gids.append(gid_)
    return dict(cwd=opts.get("cwd"), env=opts.get("env") or (), tty=bool(opts.get("tty")), uid=uid, gid=gid,
                additional_gids=gids, caps=opts.get("cap") or (), no_new_privs=opts.get("no_new_privs"),
                apparmor=opts.get("apparmor"), process_label=opts.get("process_label"))


def _atoi(s, what):
    try:
        v = int(s, 10)
    except ValueError:
        raise UsageError('parsing %s as int for %s failed: strconv.Atoi: parsing "%s": invalid syntax'
                         % (s, what, s)) from None
    if what != "additional-gids" and not 0 <= v < 2 ** 32:
        raise UsageError('parsing %s as int for %s failed: value out of range' % (s, what))
    return v
