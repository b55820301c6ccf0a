"""sys.stdin, sys.stdout and sys.stderr of the `ociruntime` program (cext/launcher.c), made when
first used.  Python makes all three at start-up: the io stack of each, and for their text layer
the codec registry (the encodings package, its aliases and the utf-8 codec), ~1 ms of a command
that, like start or delete, may print nothing.  Here each is a stand-in until something uses it,
then the very stream Python would have made (create_stdio in Python/pylifecycle.c: the same fd,
buffering, name, encoding, errors, newline, line buffering and mode), which it forwards to and
puts in its place in sys.  A stand-in stays alive (STANDINS): C code that borrowed it from sys
(print, the interpreter's own flush at exit) may still call it.  An fd that is not open gives
None, as in Python.  The launcher bakes this module's bytecode in and calls ``install``."""
import _io
import posix
import sys

STANDINS = []


class Stream:
    __slots__ = ("_args", "_stream")

    def __init__(self, *args):
        self._args = args  # fd, name, mode, encoding, errors, buffered
        self._stream = None

    def _get(self):
        s = self._stream
        if s is None:
            fd, name, mode, encoding, errors, buffered = self._args
            unbuffered = not buffered and mode == "w"  # stdin is always buffered
            buf = _io.open(fd, mode + "b", 0 if unbuffered else -1, None, None, None, False)
            raw = buf if unbuffered else buf.raw
            raw.name = name
            tty = raw.isatty()
            import codecs  # the name Python normalizes the configured encoding to
            s = _io.TextIOWrapper(buf, codecs.lookup(encoding).name, errors, "\n",
                                  bool(buffered and (tty or fd == 2)), not buffered)
            s.mode = mode
            self._stream = s
            attr = name[1:-1]
            for a in (attr, "__%s__" % attr):
                if getattr(sys, a, None) is self:
                    setattr(sys, a, s)
        return s

    def write(self, text):
        return self._get().write(text)

    def flush(self):  # nothing was written if nothing was made
        if self._stream is not None:
            self._stream.flush()

    @property
    def closed(self):
        return self._stream is not None and self._stream.closed

    def __getattr__(self, attr):
        return getattr(self._get(), attr)


def install(encoding, errors, buffered):
    """The three stand-ins in sys (``encoding``, ``errors``, ``buffered``: the interpreter's
    configured stdio_encoding, stdio_errors and buffered_stdio; stderr's errors are always
    backslashreplace)."""
    for fd, attr, mode, err in ((0, "stdin", "r", errors), (1, "stdout", "w", errors),
                                (2, "stderr", "w", "backslashreplace")):
        try:
            posix.get_inheritable(fd)  # fcntl(F_GETFD): Python's check that the fd is open
        except OSError:
            s = None
        else:
            s = Stream(fd, "<%s>" % attr, mode, encoding, err, buffered)
            STANDINS.append(s)
        setattr(sys, attr, s)
        setattr(sys, "__%s__" % attr, s)
