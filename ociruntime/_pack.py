"""The package's bytecode in one file: a command's imports from one open file.

Importing a module of this package the usual way costs ~70 us on the machines we measure
(importlib's path finder and source loader, in Python: stats, opening and validating its .pyc),
against ~15 us to unmarshal and run it; `run` imports ~45 of them.  This finder serves them from
``__pycache__/pack.<cache tag>.<command>.bin`` instead: the .pyc images (header and code) of the
modules the command has imported before (one pack per command), behind an index read when the
command starts; each image is read (pread) when its module is imported, so a command reads what
it imports, however much other runs of it (other configs, error paths) put in its pack.  Each is
used only while its source file matches the header's mtime and size, the check importlib itself
makes of a .pyc (a stat each); anything else (no entry, a changed source, a hash-based .pyc, an
unreadable image) goes the usual way, and the command that saw it writes the pack anew when it
is done (``update``, from cli.finish), from the .pyc files Python checked or wrote meanwhile.
So the pack is a cache of __pycache__ with its guarantees: where __pycache__ cannot be written
(or bytecode writing is off), there is no pack and nothing changes.

Extension modules the command loaded (the shim in the package, _json, fcntl, select in
lib-dynload) are in the pack by path, used while the file's mtime and size are those recorded:
the path finder would list every directory of sys.path it passes to find them
(the stdlib's ~200 names, site-packages' ~250: 0.2-0.3 ms each, ~0.4 ms of `state`, up to 1 ms of
`run`).  Pure-Python modules outside the package are not kept (an error path may import a large
library once; the pack would carry it from then on), nor are built-in and frozen ones (no search).

The modules the pack serves are also loaded without importlib's machinery around the finder and
loader (``_find_and_load``: its locks and spec handling, ~15 us a module), in importlib's order.

None of this needs importlib's path finder and its module (_frozen_importlib_external), which the
`ociruntime` program installs only when an import needs them (cext/lazy.py, ~1 ms): extension
modules are loaded by _imp as its ExtensionFileLoader loads them, the pack's header is this
interpreter's version rather than the .pyc magic, and the specs carry their ``cached`` path.
"""
import _imp
import _thread
import marshal
import posix
import sys


_PKG_DIR = __file__.rpartition("/")[0]  # .../ociruntime
_ROOT = _PKG_DIR.rpartition("/")[0]  # where "ociruntime/..." paths start
# one pack per command (a command reads only what it imports; `run`'s validator alone is ~340 kB)
COMMANDS = frozenset(("create", "start", "run", "state", "kill", "delete", "list", "ps", "pause",
                      "resume", "spec", "update", "events", "exec", "features"))  # cli.COMMANDS
PACK = None  # set by install
_ModuleSpec = type(sys.__spec__)
MODULE, PACKAGE, EXTENSION = 0, 1, 2  # an entry's kind (the first two were False/True)
# what a pack starts with: packs are made anew by any other interpreter (its .pyc magic included)
_HEADER = ("ociruntime pack %s %x %s\n"
           % (sys.implementation.cache_tag, sys.hexversion, sys.version)).encode()
_finder = None
_bootstrap = sys.modules["_frozen_importlib"]
_importlib_find_and_load = _bootstrap._find_and_load
_Module = type(sys)
_CACHE_TAG = sys.implementation.cache_tag


class ExtensionLoader:
    """importlib's ExtensionFileLoader (in _frozen_importlib_external) for an extension module the
    pack has by path: the same _imp calls."""

    def __init__(self, name, path):
        self.name, self.path = name, path

    def create_module(self, spec):
        return _imp.create_dynamic(spec)

    def exec_module(self, module):
        _imp.exec_dynamic(module)

    def is_package(self, fullname):
        return False

    def get_code(self, fullname):
        return None

    def get_source(self, fullname):
        return None

    def get_filename(self, fullname):
        return self.path


class ExtensionSpec(_ModuleSpec):
    """importlib's spec of an extension module, whose ``cached`` (made from the origin when first
    read, by _frozen_importlib_external) is None for an extension module's file."""

    @property
    def cached(self):
        return self._cached

    @cached.setter
    def cached(self, value):
        self._cached = value


class Finder:
    """A meta path finder and loader for this package's modules, from the pack."""

    ociruntime_pack = True  # process/init.py takes it off sys.meta_path with the path finder

    def __init__(self, entries, fd=-1, base=0):
        # name -> (path under _ROOT, kind, where): ``where`` is (offset, length, .pyc header's
        # mtime and size) of its .pyc image in the pack open at ``fd`` (offsets from ``base``), or
        # the image itself (new, in update); or for an extension module (its absolute path,
        # EXTENSION, (st_mtime_ns, st_size))
        self.entries = entries
        self.fd, self.base = fd, base
        self.used = {}  # name -> entry, of what was served from the pack
        self.missed = False

    def image(self, where):
        """An entry's .pyc image (header and code)."""
        if where.__class__ is bytes:
            return where
        off, length, _ = where
        data = posix.pread(self.fd, length, self.base + off)
        if len(data) != length:
            raise EOFError("the pack is shorter than its index")
        return data

    def code(self, where):
        """An entry's code, None if its image cannot be read."""
        try:
            return marshal.loads(memoryview(self.image(where))[16:])
        except (OSError, ValueError, EOFError, TypeError):
            return None

    def find_spec(self, name, path=None, target=None):
        entry = self.entries.get(name)
        if entry is None:
            if name.startswith("ociruntime.") or not (_imp.is_builtin(name) or _imp.is_frozen(name)):
                self.missed = True  # (a module that does not exist too: update finds nothing new)
            return None
        rel, kind, pyc = entry
        if kind == EXTENSION:
            if _stat_of(rel) != pyc:
                self.missed = True
                return None
            spec = ExtensionSpec(name, ExtensionLoader(name, rel), origin=rel)
            spec.has_location = True
            self.used[name] = entry
            return spec
        origin = _ROOT + "/" + rel
        code = self.code(pyc) if _of_source(_stamp(pyc), origin) else None
        if code is None:
            self.missed = True  # the source changed since: the usual way, and a new pack after
            return None
        is_pkg = kind == PACKAGE
        spec = _ModuleSpec(name, self, origin=origin, loader_state=code, is_package=is_pkg)
        spec.has_location = True  # __file__ is the source, as for a module loaded from it
        if sys.pycache_prefix is None and not sys.flags.optimize:  # importlib's cache_from_source, cheaper
            head, _, base = origin.rpartition("/")
            spec.cached = "%s/__pycache__/%s.%s.pyc" % (head, base[:-3], _CACHE_TAG)
        if is_pkg:  # its submodules not in the pack are looked for the usual way
            spec.submodule_search_locations = [origin.rpartition("/")[0]]
        self.used[name] = entry
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        spec = module.__spec__
        code, spec.loader_state = spec.loader_state, None  # (kept, it would hold the module's code)
        if code is None:  # the spec ran once already
            code = self.code(self.entries[spec.name][2])
            if code is None:
                raise ImportError("the pack's image of %s cannot be read" % spec.name, name=spec.name)
        exec(code, module.__dict__)

    def release(self):
        """Close the pack: nothing more is served from it (the container init's seal)."""
        if self.fd >= 0:
            posix.close(self.fd)
            self.fd = -1


def install(argv=()):
    """Put the pack's finder first on sys.meta_path (once); without a pack, note that one is due.
    ``argv`` (the command line's arguments) picks the pack: that of its first command name."""
    global _finder, PACK
    if _finder is not None:
        return
    key = next((a for a in argv if a in COMMANDS), "other")
    PACK = "%s/__pycache__/pack.%s.%s.bin" % (_PKG_DIR, sys.implementation.cache_tag, key)
    entries, fd, base = {}, -1, 0
    try:
        fd = posix.open(PACK, posix.O_RDONLY | posix.O_CLOEXEC)
        entries, base = _parse(fd)
    except (OSError, ValueError, EOFError, TypeError, IndexError):
        entries = {}
    if not entries and fd >= 0:
        posix.close(fd)
        fd = -1
    _finder = Finder(entries, fd, base)
    if not entries:
        _finder.missed = True
    sys.meta_path.insert(0, _finder)
    if _bootstrap._find_and_load is _importlib_find_and_load:
        _bootstrap._find_and_load = _find_and_load


def _find_and_load(name, import_):
    """importlib's _find_and_load (what an import statement calls for a module not yet in
    sys.modules), for this package's modules in the pack: the same steps in the same order (the
    parent package first, the module in sys.modules while its body runs and out of it again if
    that fails, then set on its parent), without importlib's per-module lock, meta path walk and
    spec attribute machinery (~0.5 ms of `run`'s imports).  Anything else goes to importlib: a
    module the pack does not have (or has stale), an import while another thread runs (the locks
    are then needed), and any import once the finder is not the first on sys.meta_path (another
    finder would be asked first; the init takes it off, _seal_imports)."""
    f = _finder
    entry = f.entries.get(name)
    if entry is None or name in sys.modules or \
            not sys.meta_path or sys.meta_path[0] is not f or _thread._count():
        return _importlib_find_and_load(name, import_)
    parent, _, child = name.rpartition(".")
    if parent and parent not in sys.modules:
        import_(parent)
        if name in sys.modules:  # the parent imported it
            return sys.modules[name]
    spec = f.find_spec(name)
    if spec is None:  # its source changed: importlib finds it the usual way
        return _importlib_find_and_load(name, import_)
    if entry[1] == EXTENSION:
        module = spec.loader.create_module(spec)
        _bootstrap._init_module_attrs(spec, module)
    else:
        module = _module_of(spec)
    spec._initializing = True
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        spec._initializing = False
    module = sys.modules[name]  # (as importlib: a module may have replaced itself)
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def _module_of(spec):
    """A new module for ``spec``, with the attributes importlib's module_from_spec gives it."""
    module = _Module(spec.name)
    module.__loader__ = spec.loader
    module.__spec__ = spec
    module.__file__ = spec.origin
    if spec._cached is None:  # find_spec sets it, but not with a pycache prefix or -O
        _external()  # (ModuleSpec makes it with importlib's module)
    module.__cached__ = spec.cached
    if spec.submodule_search_locations is not None:
        module.__package__ = spec.name
        module.__path__ = spec.submodule_search_locations
    else:
        module.__package__ = spec.name.rpartition(".")[0]
    return module


def _parse(fd):
    """The pack open at ``fd``: its entries and where its images start.  The pack is _HEADER, the
    index's length (4 bytes), the index (marshal: name -> (path, kind, offset, length, the .pyc
    header's mtime and size) of a module's .pyc image, or (path, EXTENSION, st_mtime_ns, st_size,
    None)), then the .pyc images."""
    h = len(_HEADER)
    head = posix.read(fd, 8192)  # the index of ~80 modules (a 64 kB read cost ~0.07 ms more)
    if head[:h] != _HEADER:
        return {}, 0
    base = h + 4 + int.from_bytes(head[h:h + 4], "little")
    if len(head) < base:
        head += posix.pread(fd, base - len(head), len(head))
        if len(head) < base:
            raise EOFError("the pack is shorter than its index")
    return {name: (rel, kind, (a, b) if kind == EXTENSION else (a, b, c))
            for name, (rel, kind, a, b, c) in marshal.loads(memoryview(head)[h + 4:base]).items()}, base


def _dump(entries):
    """The pack of ``entries``, whose modules' images are bytes."""
    index, parts, off = {}, [], 0
    for name, (rel, kind, pyc) in entries.items():
        if kind == EXTENSION:
            index[name] = (rel, kind) + tuple(pyc) + (None,)
            continue
        index[name] = (rel, int(kind), off, len(pyc), pyc[8:16])
        parts.append(pyc)
        off += len(pyc)
    head = marshal.dumps(index)
    return b"".join([_HEADER, len(head).to_bytes(4, "little"), head] + parts)


def update():
    """Write the pack anew if this command imported a module of the package the usual way: the
    entries it served, and the .pyc files of the modules loaded from source, as Python checked
    them.  Best effort: any failure leaves the old pack (or none), which is only slower."""
    f = _finder
    if f is None or not f.missed or sys.dont_write_bytecode:
        return
    entries = dict(f.used)
    # whatever was loaded the usual way came through the path finder, so its module is there
    external = sys.modules.get("_frozen_importlib_external")
    for name, mod in list(sys.modules.items()):
        if name in entries or name == __name__:
            continue
        spec = getattr(mod, "__spec__", None)
        origin, cached = getattr(spec, "origin", None), getattr(spec, "cached", None)
        loader = getattr(spec, "loader", None)
        if (isinstance(loader, ExtensionLoader) or
                external is not None and isinstance(loader, external.ExtensionFileLoader)) and \
                isinstance(origin, str) and origin.startswith("/"):
            st = _stat_of(origin)
            if st is not None:
                entries[name] = (origin, EXTENSION, st)
            continue
        if not name.startswith("ociruntime.") or external is None:
            continue
        if not origin or not cached or not origin.startswith(_ROOT + "/ociruntime/") or \
                not origin.endswith(".py"):
            continue
        try:
            with open(cached, "rb") as fh:
                pyc = fh.read()
        except OSError:
            continue
        # a timestamp .pyc (flags 0) of this very source: what importlib would accept
        if len(pyc) < 16 or pyc[:4] != external.MAGIC_NUMBER or pyc[4:8] != b"\0\0\0\0" or \
                not _of_source(pyc[8:16], origin):
            continue
        entries[name] = (origin[len(_ROOT) + 1:],
                         PACKAGE if spec.submodule_search_locations is not None else MODULE, pyc)
    for name, entry in f.entries.items():  # what other commands use, while still current
        if name not in entries and (_stat_of(entry[0]) == entry[2] if entry[1] == EXTENSION
                                    else _of_source(_stamp(entry[2]), _ROOT + "/" + entry[0])):
            entries[name] = entry
    if entries.keys() == f.entries.keys() and all(entries[n][2] is f.entries[n][2] for n in entries):
        return  # the misses were of modules that do not exist: nothing new
    for name, (rel, kind, where) in list(entries.items()):  # the images kept from the old pack
        if kind != EXTENSION and where.__class__ is not bytes:
            try:
                entries[name] = (rel, kind, f.image(where))
            except (OSError, EOFError):
                del entries[name]
    tmp = "%s.%d.tmp" % (PACK, posix.getpid())
    try:
        fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_CLOEXEC, 0o644)
        try:
            view = memoryview(_dump(entries))
            while view:
                view = view[posix.write(fd, view):]
        finally:
            posix.close(fd)
        posix.rename(tmp, PACK)
    except OSError:
        try:
            posix.unlink(tmp)
        except OSError:
            pass


def _stat_of(path):
    """(st_mtime_ns, st_size) of an extension module's file, None if it is gone."""
    try:
        st = posix.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _stamp(where):
    """A module entry's .pyc header mtime and size (8 bytes)."""
    return where[8:16] if where.__class__ is bytes else where[2]


def _of_source(stamp, path):
    """Whether a .pyc whose header has ``stamp`` (its mtime and size, 8 bytes) is of the source at
    ``path`` as it is now (importlib's check of a timestamp .pyc)."""
    try:
        st = posix.stat(path)
    except OSError:
        return False
    return int.from_bytes(stamp[:4], "little") == int(st.st_mtime) & 0xFFFFFFFF and \
        int.from_bytes(stamp[4:8], "little") == st.st_size & 0xFFFFFFFF


def release():
    """Close the pack (the container init's seal: nothing is imported from the host after it)."""
    if _finder is not None:
        _finder.release()


def _external():
    """importlib's _frozen_importlib_external, installed (where the launcher deferred it, importing
    it installs it: cext/lazy.py)."""
    import _frozen_importlib_external
    return _frozen_importlib_external
