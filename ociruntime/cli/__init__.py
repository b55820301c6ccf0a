"""Command line: global flags, dispatch to one module per command, error reporting.

runc's parser is urfave/cli v1 over Go's flag package, and this one follows it: ``-flag`` and
``--flag`` are the same, ``--flag value`` or ``--flag=value``, a bool flag takes no separate value
(``--flag=false``), ``--`` ends the flags.  Flags given after the container id are moved before it
(urfave's reordering: a flag of the command, with the next argument as its value when it may have
one), except for exec and ps, whose trailing arguments belong to the process and to ps(1).
A usage error prints "Incorrect Usage" and the command's help on stdout, and the error on stderr,
and exits 1, as runc.

Command modules declare ``FLAGS`` (bare name -> (dest, kind), the long name first), ``ARGS``
((minimum, maximum or None) positional arguments), optionally ``REORDER = False``, and implement
``run(ctx, opts, args)``; they only parse and print: the work is in ``ociruntime.container``, whose
functions the Python API (ociruntime/api.py) calls too, so the two are one implementation.  Only
the module of the command being run is imported (start-up latency is a feature); the help texts
are in cli/help.py, imported for help and usage errors only.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)
import sys

from ociruntime import log as _log
from ociruntime.errors import OCIError, UsageError

VERSION = "0.1.0"
SPEC_VERSION = "1.3.0"

COMMANDS = ("create", "start", "run", "state", "kill", "delete", "list", "ps", "pause", "resume",
            "spec", "update", "events", "exec", "features")

GLOBAL_FLAGS = {
    "debug": ("debug", "bool"),
    "log": ("log", "str"),
    "log-format": ("log_format", "str"),
    "root": ("root", "str"),
    "criu": ("criu", "str"),
    "systemd-cgroup": ("systemd_cgroup", "bool"),
    "rootless": ("rootless", "str"),
    "help": ("help", "bool"), "h": ("help", "bool"),
    "version": ("version", "bool"), "v": ("version", "bool"),
}
# every command has it (urfave adds it)
HELP_FLAG = {"help": ("help", "bool"), "h": ("help", "bool")}

_BOOL = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
         "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


class FlagError(UsageError):
    """The command line does not parse: printed with "Incorrect Usage" and the help, unless
    ``plain`` and of the global flags (urfave's App.Run prints its check of a flag's two forms
    without it; a command's flags go through Command.Run, which prints it as any other)."""

    def __init__(self, msg, plain=False):
        super().__init__(msg)
        self.plain = plain


class Context:
    """What every command gets: the global options and the log (as an ociruntime.api.Container
    has them: the container/ functions take either)."""

    def __init__(self, g):
        self._root = g.get("root")
        self.log_path = g.get("log")
        self.log_format = g.get("log_format") or "text"
        self.debug = bool(g.get("debug"))
        self.systemd_cgroup = bool(g.get("systemd_cgroup"))
        self.log = _log.current

    @property
    def root(self):
        """--root, or the default (container/state.py)."""
        if not self._root:
            from ociruntime.container.state import default_root
            self._root = default_root()
        return self._root


def reorder(argv, table):
    """urfave/cli v1's reorderArgs: the command's flags (each with the next argument when that is
    not a flag: it may be the flag's value, even after a bool flag) moved before the other
    arguments; nothing after ``--`` moves."""
    flags, rest = [], []
    value_next = False
    for i, a in enumerate(argv):
        if value_next and not _is_flag(a, table):
            value_next = False
            flags.append(a)
        elif a == "--":
            rest = ["--"] + rest + argv[i + 1:]
            break
        elif _is_flag(a, table):
            flags.append(a)
            value_next = "=" not in a
        else:
            rest.append(a)
    return flags + rest


def _is_flag(a, table):
    if a in ("-", "--") or not a.startswith("-"):
        return False
    name = a[2:] if a.startswith("--") else a[1:]
    name = name.split("=", 1)[0]
    return name in table or name in HELP_FLAG


def parse_flags(argv, table, reorder_args=False):
    """Parse ``argv`` against ``table`` as Go's flag package does (after urfave's reordering when
    ``reorder_args``); returns (opts, positional).  Raises FlagError."""
    if reorder_args:
        argv = reorder(argv, table)
    opts, pos, used = {}, [], {}
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if len(a) < 2 or a[0] != "-":
            pos = argv[i - 1:]
            break
        name = a[1:]
        if name[0] == "-":
            name = name[1:]
            if not name:  # "--": the end of the flags
                pos = argv[i:]
                break
        if not name or name[0] in "-=":
            raise FlagError("bad flag syntax: %s" % a)
        name, eq, value = name.partition("=")
        spec = table.get(name) or HELP_FLAG.get(name)
        if spec is None:
            raise FlagError("flag provided but not defined: -%s" % name)
        dest, kind = spec
        used.setdefault(dest, []).append(name)
        if kind == "bool":
            if eq:
                if value not in _BOOL:
                    raise FlagError('invalid boolean value "%s" for -%s: parse error' % (value, name))
                opts[dest] = _BOOL[value]
            else:
                opts[dest] = True
            continue
        if not eq:
            if i >= len(argv):
                raise FlagError("flag needs an argument: -%s" % name)
            value = argv[i]
            i += 1
        if kind in ("int", "uint"):
            value = go_int(value, kind == "uint", name)
        if kind == "list":
            opts.setdefault(dest, []).append(value)
        else:
            opts[dest] = value
    for dest, names in used.items():
        if len(set(names)) > 1:  # urfave's normalizeFlags
            forms = [n for n, spec in dict(table, **HELP_FLAG).items() if spec[0] == dest and n in names]
            raise FlagError("Cannot use two forms of the same flag: %s %s" % (forms[1], forms[0]), plain=True)
    return opts, pos


def go_int(text, unsigned, name):
    """strconv.ParseInt/ParseUint(text, 0, 64), as Go's int and uint flags read their value:
    0x, 0o, 0b and a leading 0 (octal) prefixes, underscores between digits, no spaces."""
    s, sign = text, ""
    if s[:1] in ("+", "-") and not unsigned:
        sign, s = s[0], s[1:]
    if len(s) > 1 and s[0] == "0" and s[1] in "01234567_":
        s = "0o" + s[1:]
    try:
        if not s.isascii() or not s.replace("_", "").isalnum():
            raise ValueError(text)
        v = int(sign + s, 0)
    except ValueError:
        raise FlagError('invalid value "%s" for flag -%s: parse error' % (text, name)) from None
    if not (0 <= v < 2 ** 64 if unsigned else -2 ** 63 <= v < 2 ** 63):
        raise FlagError('invalid value "%s" for flag -%s: value out of range' % (text, name))
    return v


def check_args(cmd, args, limits):
    """runc's checkArgs: the number of positional arguments (the message names the command)."""
    low, high = limits
    if low == high and len(args) != low:
        return '"%s" requires exactly %d argument(s)' % (cmd, low)
    if len(args) < low:
        return '"%s" requires a minimum of %d argument(s)' % (cmd, low)
    if high is not None and len(args) > high:
        return '"%s" requires a maximum of %d argument(s)' % (cmd, high)
    return None


def usage_error(msg, head, cmd=None):
    """A usage error as runc reports it: ``head`` and the help (the command's, or the program's)
    on stdout, the error on stderr and in the log; exit status 1."""
    from ociruntime.cli import help as _help
    sys.stdout.write(head)
    sys.stdout.write(_help.command_help(cmd) if cmd else _help.app_help())
    _log.current.error(msg)
    return 1


def python_version():
    """The Python running the command, as `--version` says it (runc says which Go built it): the
    interpreter built into the program, with the package frozen in (cext/launcher.c), or the
    installation's own."""
    version = sys.version.split()[0]
    if getattr(sys.modules["ociruntime"].__spec__, "origin", None) == "frozen":
        return "%s (built into the program)" % version
    return "%s (%s)" % (version, sys.executable)


def main(argv):
    try:
        g, rest = parse_flags(argv, GLOBAL_FLAGS)
    except FlagError as e:
        return usage_error(str(e), "%s\n" % e if e.plain else "Incorrect Usage. %s\n\n" % e)
    if g.get("version"):
        sys.stdout.write("ociruntime version %s\nspec: %s\npython: %s\n" % (VERSION, SPEC_VERSION, python_version()))
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
        from ociruntime.cli import help as _help
        sys.stdout.write(_help.app_help())
        return 0
    cmd, args = rest[0], rest[1:]
    if cmd in ("help", "h"):
        from ociruntime.cli import help as _help
        return _help.show(args[0] if args else None)
    if cmd not in COMMANDS:
        _log.current.error("No help topic for '%s'" % cmd)
        return 3
    ctx = Context(g)
    mod = __import__("ociruntime.cli." + cmd, fromlist=["run"])
    try:
        opts, pos = parse_flags(args, mod.FLAGS, getattr(mod, "REORDER", True))
    except FlagError as e:
        return usage_error(str(e), "Incorrect Usage: %s\n\n" % e, cmd)
    if opts.get("help"):
        from ociruntime.cli import help as _help
        sys.stdout.write(_help.command_help(cmd))
        return 0
    err = check_args(cmd, pos, mod.ARGS)
    if err is not None:
        return usage_error(err, "Incorrect Usage.\n\n", cmd)
    if ctx.log.debug_on:
        ctx.log.debug("ociruntime %s: %s%s", VERSION, " ".join([cmd] + pos),
                      "".join(" (%s=%s)" % kv for kv in opts.items()))
    try:
        return mod.run(ctx, opts, pos) or 0
    except OCIError as e:
        ctx.log.error(str(e))
        return getattr(e, "exit_code", 1)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # unforeseen: still one line (with --debug the traceback is logged first)
        if ctx.debug:
            import traceback
            ctx.log.debug(traceback.format_exc().rstrip())
        ctx.log.error(describe(e))
        return 1


def describe(e):
    """The one line of an exception no command turned into an OCIError."""
    if isinstance(e, OSError) and e.strerror:
        return "%s: %s" % (e.filename, e.strerror) if e.filename else e.strerror
    return "%s: %s" % (e.__class__.__name__, e) if str(e) else e.__class__.__name__


def finish(code):
    """End the command with ``code`` without the interpreter's finalization (module teardown,
    garbage collection), which would be a noticeable part of a short command.  Nothing needs it: the files the commands write are closed
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
