"""Command line: global flags, dispatch to one module per command, error reporting.

runc's parser (urfave/cli) accepts ``-flag`` and ``--flag``, ``--flag value`` and ``--flag=value``,
and stops at the first positional argument; so does this one.  Command modules declare ``FLAGS``
(option name -> (dest, kind)) and ``USAGE``, and implement ``run(ctx, opts, args)``; they only parse
and print: the work is in ``ociruntime.container``.  Only the module of the command being run is
imported (start-up latency is a feature).
"""
import posix as os  # not os: ~1.5 ms (see ociruntime/__init__.py)
import sys

from ociruntime import log as _log
from ociruntime.errors import OCIError, UsageError

VERSION = "0.1.0"
SPEC_VERSION = "1.3.0"

COMMANDS = ("create", "start", "run", "state", "kill", "delete", "list", "ps", "pause", "resume",
            "spec", "update", "events", "exec", "features")

GLOBAL_FLAGS = {
    "--root": ("root", "str"),
    "--log": ("log", "str"),
    "--log-format": ("log_format", "str"),
    "--debug": ("debug", "bool"),
    "--systemd-cgroup": ("systemd_cgroup", "bool"),
    "--criu": ("criu", "str"),
    "--rootless": ("rootless", "str"),
    "--help": ("help", "bool"),
    "-h": ("help", "bool"),
    "--version": ("version", "bool"),
    "-v": ("version", "bool"),
}

USAGE = """usage: ociruntime [global options] command [command options] [arguments...]

An OCI runtime-spec compatible container runtime (runc's command line).

commands:
  create    create a container          start     start a created container
  run       create and start            state     output the state of a container
  kill      send a signal               delete    delete a container
  list      list containers             ps        processes of a container
  exec      run a process in a container
  pause / resume, update, events, spec, features

global options:
  --root DIR          state directory (default /run/ociruntime; $XDG_RUNTIME_DIR/ociruntime when rootless)
  --log FILE          log file (default: stderr)
  --log-format FMT    text or json
  --debug             debug logging
  --systemd-cgroup    use the systemd cgroup driver (slice:prefix:name cgroupsPath)
  -v, --version       print the version
"""


class Context:
    """What every command gets: the global options and the log."""

    def __init__(self, g):
        self.root = g.get("root") or default_root()
        self.log_path = g.get("log")
        self.log_format = g.get("log_format") or "text"
        self.debug = bool(g.get("debug"))
        self.systemd_cgroup = bool(g.get("systemd_cgroup"))
        self.log = _log.current


def default_root():
    if os.geteuid() != 0:
        import os as _os
        xdg = _os.environ.get("XDG_RUNTIME_DIR")
        if xdg:
            return _os.path.join(xdg, "ociruntime")
    return "/run/ociruntime"


def parse_flags(argv, table, stop_at_positional=True):
    """Parse ``argv`` against ``table``; returns (opts, positional)."""
    opts, pos = {}, []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            pos.extend(argv[i:])
            break
        if len(a) < 2 or a[0] != "-" or (pos and stop_at_positional):
            pos.append(a)
            if stop_at_positional:
                pos.extend(argv[i:])
                break
            continue
        name, eq, value = a.partition("=")
        spec = table.get(name)
        if spec is None and not name.startswith("--"):
            spec = table.get("-" + name)
            name = "-" + name if spec else name
        if spec is None:
            raise UsageError("flag provided but not defined: %s" % a.split("=")[0])
        dest, kind = spec
        if kind == "bool":
            if eq:
                if value.lower() not in ("true", "false", "1", "0", "t", "f"):
                    raise UsageError("invalid boolean value %r for flag %s" % (value, name))
                opts[dest] = value.lower() in ("true", "1", "t")
            else:
                opts[dest] = True
            continue
        if not eq:
            if i >= len(argv):
                raise UsageError("flag needs an argument: %s" % name)
            value = argv[i]
            i += 1
        if kind == "int":
            try:
                value = int(value, 0)
            except ValueError:
                raise UsageError("invalid value %r for flag %s" % (value, name)) from None
        if kind == "list":
            opts.setdefault(dest, []).append(value)
        else:
            opts[dest] = value
    return opts, pos


def main(argv):
    try:
        g, rest = parse_flags(argv, GLOBAL_FLAGS)
    except UsageError as e:
        _log.current.error(str(e))
        return 1
    if g.get("version"):
        sys.stdout.write("ociruntime version %s\nspec: %s\n" % (VERSION, SPEC_VERSION))
        return 0
    if g.get("log_format") not in (None, "text", "json"):
        _log.current.error('invalid log-format: %s' % g["log_format"])
        return 1
    _log.current = _log.Log(g.get("log"), g.get("log_format") or "text", bool(g.get("debug")))
    try:
        _log.current.open()
    except OSError as e:
        _log.current = _log.Log()
        _log.current.error("open log file %s: %s" % (g.get("log"), e.strerror))
        return 1
    if not rest or g.get("help"):
        sys.stdout.write(USAGE)
        return 0 if g.get("help") or not rest else 1
    cmd, args = rest[0], rest[1:]
    if cmd not in COMMANDS:
        _log.current.error("No help topic for '%s'" % cmd)
        return 1
    ctx = Context(g)
    mod = __import__("ociruntime.cli." + cmd, fromlist=["run"])
    try:
        opts, pos = parse_flags(args, dict(mod.FLAGS, **{"--help": ("help", "bool"), "-h": ("help", "bool")}))
        if opts.get("help"):
            sys.stdout.write(mod.USAGE)
            return 0
        return mod.run(ctx, opts, pos) or 0
    except OCIError as e:
        ctx.log.error(str(e))
        return getattr(e, "exit_code", 1)
    except KeyboardInterrupt:
        return 130


def finish(code):
    """End the command with ``code`` without the interpreter's finalization (module teardown,
    garbage collection: ~2 ms a command).  Nothing needs it: the files the commands write are closed
    (``with``), the log is unbuffered (os.write), there are no threads or atexit handlers, and the
    children are on their own.  What Python buffered on stdout/stderr is flushed first; a failed
    flush (EPIPE) takes the normal way out, which reports it as before."""
    try:
        for f in (sys.stdout, sys.stderr):
            if f is not None:
                f.flush()
    except BaseException:
        sys.exit(code)
    if code is None or code.__class__ is not int:
        sys.exit(code)
    os._exit(code)


def write_ascii(text):
    """Write ASCII ``text`` (JSON as jsonio writes it) to stdout, unbuffered.  A reader gone ends
    the command by SIGPIPE, as it ends runc (Python ignores the signal)."""
    if sys.stdout is not None:
        sys.stdout.flush()  # what the stream already holds goes first
    data = memoryview(text.encode("ascii"))
    try:
        while data:
            data = data[os.write(1, data):]
    except BrokenPipeError:
        import _signal
        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
        os.kill(os.getpid(), _signal.SIGPIPE)
        raise


def need_id(args, usage, extra_ok=False):
    """The container id argument, checked as runc checks it."""
    if not args:
        raise UsageError('"%s" requires a minimum of 1 argument' % usage.split()[1])
    if len(args) > 1 and not extra_ok:
        raise UsageError('"%s" requires exactly 1 argument' % usage.split()[1])
    return args[0]
