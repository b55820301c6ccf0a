"""The runtime's log: runc's `--log FILE --log-format text|json` lines, and the one-line error on stderr.

Clients parse this (see ../shared/clients/README.md): containerd reports the last ``level=error``
line of ``--log`` as its error; podman reads the file as one JSON object, so nothing but the error is
written at the default level.  Debug lines are written only with ``--debug``.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


class Log:
    def __init__(self, path=None, fmt="text", debug=False):
        self.path, self.fmt, self.debug_on = path, fmt, debug
        self._fd = None
        if debug:
            import time  # noqa: F401 (now: the init writes its lines where nothing can be imported)

    def open(self):
        """runc creates the log file at start, whatever happens later."""
        if self.path is not None and self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _write(self, level, msg, stderr=False):
        """One line as runc's logrus writes it (text or JSON), to --log or else to stderr; the
        error's own line on stderr is error()'s."""
        if level == "error" and self.path is None and self.fmt != "json":
            return
        if not stderr:
            self.open()
        import time  # (when a line is written: start and delete write none, and do not import it)
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        frac = "%09d" % (time.time_ns() % 1_000_000_000)
        stamp = "%s.%sZ" % (now, frac) if self.debug_on else now + "Z"
        if self.fmt == "json":
            line = '{"level":"%s","msg":%s,"time":"%s"}\n' % (level, _json_str(msg), stamp)
        else:
            line = 'time="%s" level=%s msg=%s\n' % (stamp, level, _json_str(msg))
        try:
            os.write(self._fd if self._fd is not None and not stderr else 2, line.encode(errors="replace"))
        except OSError:
            pass  # a log that cannot be written (a full disk, a closed stderr) fails nothing

    def debug(self, fmt, *args):
        """A debug line with --debug: ``fmt % args``, formatted only then (the callers pass the
        arguments, not the text, so that nothing is done without --debug)."""
        if self.debug_on:
            self._write("debug", fmt % args if args else fmt)

    def warning(self, msg, stderr=False):
        """A warning line in the log; with ``stderr``, the same line on stderr as well where the
        log is a file."""
        self._write("warning", msg)
        if stderr and self.path is not None:
            self._write("warning", msg, stderr=True)

    def error(self, msg):
        """Log the error and print the one-line message on stderr."""
        self._write("error", msg)
        if self.path is None and self.fmt == "json":
            return  # the JSON line went to stderr
        text = "ociruntime: " + msg
        try:
            os.write(2, (text + "\n").encode(errors="replace"))
        except OSError:
            pass


def _json_str(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif o < 0x20:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, "\\u%04x" % o))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


current = Log()
