"""What the `ociruntime` program (cext/launcher.c) sets up when first used instead of at start-up.
The launcher bakes this module's bytecode in and calls ``install``.

sys.stdin, sys.stdout and sys.stderr.  Python makes all three at start-up: the io stack of each,
and for their text layer the codec registry (the encodings package, its aliases and the utf-8
codec), ~1 ms of a command that, like start or delete, may print nothing.  Here each is a
stand-in until something uses it, then the very stream Python would have made (create_stdio in
Python/pylifecycle.c: the same fd, buffering, name, encoding, errors, newline, line buffering and
mode), which it forwards to and puts in its place in sys.  A stand-in stays alive (STANDINS): C
code that borrowed it from sys (print, the interpreter's own flush at exit) may still call it.
An fd that is not open gives None, as in Python.

importlib's path finder and zipimport.  Python installs them at start-up
(_install_external_importers: the frozen _frozen_importlib_external's body, its ~20 classes, then
zipimport's hook), ~1 ms of every command; a command whose modules all come from its pack (the
package's, built in, frozen, or extension modules by path: ociruntime/_pack.py) needs neither.
Here a finder at the end of sys.meta_path (Deferred) installs both, as Python would have, on the
first import that nothing before it finds, then hands that import to the path finder and leaves
sys.meta_path and sys.path_hooks as Python has them.  An import of _frozen_importlib_external or
zipimport before that (whose frozen copy would otherwise be a second, uninstalled module) installs
them first too (``_find_and_load``).  Taking Deferred off sys.meta_path (the container init's
seal, process/init.py) leaves them uninstalled for good.

The io module's C half, _io.  Python imports it at start-up for builtins.open and the streams
(its ~20 types, ~0.3 ms); here builtins.open is a stand-in (``open``) until _io is imported by
anything, which puts _io.open there as Python has it."""
import builtins
import posix
import sys

STANDINS = []
_bootstrap = sys.modules["_frozen_importlib"]
_importlib_find_and_load = _bootstrap._find_and_load
EXTERNAL = ("_frozen_importlib_external", "zipimport")  # what installing imports


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
            import _io
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
    backslashreplace), builtins.open's stand-in, and the path finder deferred."""
    _bootstrap._find_and_load = _find_and_load
    sys.meta_path.append(DEFERRED)
    builtins.open = open
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


class Deferred:
    """The last meta path finder until the first import it is asked for (see the module's doc)."""

    def __init__(self):
        self.installed = False

    def install(self):
        """init_importlib_external and _PyImportZip_Init of Python/pylifecycle.c, once."""
        if self.installed:
            return
        self.installed = True
        _bootstrap._install_external_importers()  # sys.meta_path gets the path finder after this
        try:
            import zipimport
        except ImportError:  # as Python: no zipimport hook then
            pass
        else:
            sys.path_hooks.insert(0, zipimport.zipimporter)
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass

    def find_spec(self, name, path=None, target=None):
        self.install()
        # importlib's loop over sys.meta_path goes on past the path finder, which took this place
        return sys.modules["_frozen_importlib_external"].PathFinder.find_spec(name, path, target)


DEFERRED = Deferred()


def _find_and_load(name, import_):
    """importlib's, but _frozen_importlib_external and zipimport install the path finder first
    while it is deferred (what they are then is what installing imported), and _io, once
    imported, gives builtins its open."""
    if name in EXTERNAL and name not in sys.modules and not DEFERRED.installed and DEFERRED in sys.meta_path:
        DEFERRED.install()
        if name in sys.modules:
            return sys.modules[name]
    module = _importlib_find_and_load(name, import_)
    if name == "_io" and builtins.open is open:
        builtins.open = module.open
    return module


def open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True, opener=None):
    """builtins.open until _io is imported: importing it puts _io.open in its place."""
    import _io
    return _io.open(file, mode, buffering, encoding, errors, newline, closefd, opener)
