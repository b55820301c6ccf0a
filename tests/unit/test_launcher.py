"""cext/launcher.c: the `ociruntime` program's interpreter is the one `python -I -S` starts.

Each test builds the program as setup.py does, with a script of its own in place of the entry
script, and runs that script both ways: in the program and in `python -I -S`.  What the script
reports must be equal, with two exceptions by design (cext/lazy.py): the program makes sys.stdin,
stdout and stderr when first used, so the codec registry (the encodings package) is not imported
at start-up, and it installs importlib's path finder and zipimport's hook on the first import that
needs them; once used, each is what python has."""
import ast
import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# what the interpreter's start-up sets up; printed on fd 1 by posix.write (no stream is made)
REPORT = textwrap.dedent("""
    import posix, sys, _signal
    pre = {"encodings": "encodings" in sys.modules,
           "stdio": [type(s).__name__ for s in (sys.stdin, sys.stdout, sys.stderr)],
           "external": "_frozen_importlib_external" in sys.modules,
           "meta_path": [getattr(f, "__name__", type(f).__name__) for f in sys.meta_path],
           "path_hooks": len(sys.path_hooks), "io": "_io" in sys.modules}
    import builtins, _io, faulthandler, json, tracemalloc
    main = sys.modules["__main__"]
    def handler(n):
        h = _signal.getsignal(n)
        return {_signal.SIG_DFL: "default", _signal.SIG_IGN: "ignore"}.get(h, getattr(h, "__name__", repr(h)))
    def stream(attr):
        s = getattr(sys, attr)
        if s is None:
            return None
        got = [s.name, s.mode, s.encoding, s.errors, s.line_buffering, s.write_through,
               type(s.buffer).__name__, s.fileno(), s.closed]
        return [type(getattr(sys, attr)).__name__, getattr(sys, attr) is getattr(sys, "__%s__" % attr)] + got
    out = {
        "attrs": {a: getattr(sys, a) for a in (
            "prefix", "base_prefix", "exec_prefix", "base_exec_prefix", "platlibdir", "executable",
            "_base_executable", "_stdlib_dir", "pycache_prefix", "warnoptions", "_xoptions",
            "dont_write_bytecode", "orig_argv")},
        "argv": sys.argv[1:],
        "stdlib_on_path": [p for p in sys.path if p.startswith(sys._stdlib_dir)][-2:],
        "flags": list(sys.flags),
        "fs": [sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()],
        "meta_path": [getattr(f, "__name__", type(f).__name__) for f in sys.meta_path],
        "path_hooks": [getattr(h, "__name__", type(h).__name__) for h in sys.path_hooks],
        "open": builtins.open is _io.open,
        "main": [main.__loader__.__name__, main.__builtins__ is builtins, main.__annotations__],
        "signals": [handler(n) for n in (_signal.SIGINT, _signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGTERM)],
        "faulthandler": faulthandler.is_enabled(), "tracemalloc": tracemalloc.is_tracing(),
        "stdio": [stream("stdin"), stream("stdout"), stream("stderr")],
        "fsdecode": sorted(posix.listdir(sys.argv[1])),
        "fsencode": posix.stat(sys.argv[1] + "/caf\\u00e9").st_size,
    }
    out["stdio_after"] = [type(s).__name__ for s in (sys.stdin, sys.stdout, sys.stderr)]
    posix.write(1, json.dumps({"pre": pre, "out": out}).encode())
""")


def both(exe, script, *args, env=None, **kw):
    """(program's result, python -I -S's result) of ``script`` with ``args``."""
    env = dict(os.environ if env is None else env)
    runs = []
    for argv in ([exe], [sys.executable, "-I", "-S", "-c", script]):
        runs.append(subprocess.run(argv + list(args), capture_output=True, env=env, timeout=60, **kw))
    return runs


@pytest.mark.parametrize("lang", ["C.UTF-8", "C", None])
def test_the_program_starts_the_interpreter_python_starts(build, tmp_path, lang):
    exe = build(REPORT, "report")
    assert not build.notes, build.notes  # the stepwise phase, without the run path
    (tmp_path / "caf\xe9").write_text("")
    env = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_CTYPE")}
    if lang:
        env["LC_ALL"] = lang
    mine, python = both(exe, REPORT, str(tmp_path), env=env, stdin=subprocess.DEVNULL)
    assert mine.returncode == python.returncode == 0, (mine.stderr, python.stderr)
    m, p = json.loads(mine.stdout), json.loads(python.stdout)
    # orig_argv: the program's own argv[0]; python's is its command line
    assert m["out"]["attrs"].pop("orig_argv") == [exe, str(tmp_path)]
    p["out"]["attrs"].pop("orig_argv")
    assert m["out"] == p["out"]
    assert p["pre"] == {"encodings": True, "stdio": ["TextIOWrapper"] * 3, "external": True,
                        "meta_path": ["BuiltinImporter", "FrozenImporter", "PathFinder"], "path_hooks": 2,
                        "io": True}
    # by design: no codec registry, no streams, no path finder and no _io until used
    assert m["pre"] == {"encodings": False, "stdio": ["Stream"] * 3, "external": False,
                        "meta_path": ["BuiltinImporter", "FrozenImporter", "Deferred"], "path_hooks": 0,
                        "io": False}
    assert m["out"]["stdio_after"] == ["TextIOWrapper"] * 3


def test_closed_standard_fds_are_none_as_in_python(build, tmp_path):
    exe = build(REPORT, "report")
    (tmp_path / "caf\xe9").write_text("")
    code = "import os, subprocess, sys; os.close(0); os.close(2); sys.exit(subprocess.run(sys.argv[1:]).returncode)"
    outs = []
    for argv in ([exe], [sys.executable, "-I", "-S", "-c", REPORT]):
        r = subprocess.run([sys.executable, "-c", code] + argv + [str(tmp_path)], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        outs.append(json.loads(r.stdout))
    assert outs[0]["out"]["stdio"] == outs[1]["out"]["stdio"]
    assert outs[0]["out"]["stdio"][0] is None and outs[0]["out"]["stdio"][2] is None
    assert outs[0]["pre"]["stdio"] == ["NoneType", "Stream", "NoneType"]


OUTPUT = textwrap.dedent("""
    import sys
    print("to stdout", end="")
    sys.stderr.write("to stderr\\n")
    print(" and more")
    how = sys.argv[1]
    if how == "exit":
        sys.exit(3)
    if how == "raise":
        raise ValueError("boom")
    if how == "print-stream":
        print(type(sys.stdout).__name__, sys.stdout is sys.__stdout__, file=sys.stderr)
""")


@pytest.mark.parametrize("how", ["end", "exit", "raise", "print-stream"])
def test_what_is_printed_comes_out_when_the_program_ends(build, how):
    """Buffered output is flushed at the end however the script ends (normally, sys.exit, an
    uncaught exception with its traceback), as python does."""
    exe = build(OUTPUT, "output")
    mine, python = both(exe, OUTPUT, how, stdin=subprocess.DEVNULL)
    assert mine.returncode == python.returncode
    assert mine.stdout == python.stdout == b"to stdout and more\n"
    assert mine.stderr.replace(b"<ociruntime>", b"<string>") == python.stderr


# the import system once something needed the path finder (argv[1], run first); the same as python's
IMPORTS = textwrap.dedent("""
    import posix, sys
    exec(sys.argv[1])
    import _frozen_importlib as bootstrap, builtins, json, zipimport
    external = sys.modules["_frozen_importlib_external"]
    names = lambda seq: [getattr(f, "__name__", type(f).__name__) for f in seq]
    out = {"meta_path": names(sys.meta_path), "path_hooks": names(sys.path_hooks),
           "installed": [bootstrap._bootstrap_external is external, external._bootstrap is bootstrap,
                         sys.meta_path[-1] is external.PathFinder, sys.path_hooks[0] is zipimport.zipimporter,
                         zipimport._bootstrap_external is external],
           "importlib": __import__("importlib.machinery").machinery.PathFinder is external.PathFinder,
           "found": [__import__("colorsys").__file__, __import__("encodings.cp437").__path__],
           "latin-1": b"caf\\xe9".decode("latin-1"),
           "open": builtins.open is sys.modules["_io"].open}
    posix.write(1, json.dumps(out).encode())
""")


@pytest.mark.parametrize("first", [
    "import json",  # a module of the stdlib directory
    "import zipimport",  # frozen, and it imports the path finder's module
    "import _frozen_importlib_external",  # that module itself
    "import importlib.util",  # importlib's package: its __init__ from disk
    "import codecs; codecs.lookup('latin-1')",  # encodings (frozen in) finds latin_1 on disk
    "__import__('ociruntime')",  # from sys.path
    "open('/dev/null').close()",  # builtins.open before _io is imported
    "pass",
])
def test_the_path_finder_is_installed_by_the_first_import_that_needs_it(build, first):
    exe = build(IMPORTS, "imports")
    env = dict(os.environ, PYTHONPATH=REPO)  # ignored by both (isolated): ociruntime is not found
    mine, python = both(exe, IMPORTS, "try:\n %s\nexcept ImportError:\n pass" % first, env=env)
    assert mine.returncode == python.returncode == 0, (mine.stderr, python.stderr)
    m, p = json.loads(mine.stdout), json.loads(python.stdout)
    assert m == p
    assert p["meta_path"] == ["BuiltinImporter", "FrozenImporter", "PathFinder"]
    assert p["installed"] == [True] * 5


SEALED = textwrap.dedent("""
    import posix, sys
    from _frozen_importlib import BuiltinImporter, FrozenImporter
    sys.meta_path[:] = [f for f in sys.meta_path if f is BuiltinImporter or f is FrozenImporter]
    out = []
    for name in ("json", "zipimport", "json", "colorsys"):
        try:
            out.append(__import__(name).__name__)
        except ImportError:
            out.append(None)
    out.append([getattr(f, "__name__", type(f).__name__) for f in sys.meta_path])
    posix.write(1, repr(out).encode())
""")


def test_without_the_deferred_finder_the_path_finder_never_comes(build):
    """The container init's seal (process/init.py) keeps only the built-in and frozen importers:
    no later import installs the path finder (zipimport is frozen; what it imports is not
    installed)."""
    exe = build(SEALED, "sealed")
    mine, python = both(exe, SEALED)
    assert mine.stdout == python.stdout == b"[None, 'zipimport', None, None, ['BuiltinImporter', 'FrozenImporter']]"


# the deep-frozen modules' names, once each is loaded (its code asked for, as importlib does, or
# imported): interned, as python interns them at start-up
INTERNED = textwrap.dedent("""
    import _imp, posix, sys
    def codes(co):
        yield co
        for c in co.co_consts:
            if type(c) is type(co):
                yield from codes(c)
    def interned(s):  # whether s is the interned string of its value (sys.intern(s) would intern s)
        return sys.intern(s[:1] + s[1:]) is s
    out = {}
    for name in sys.argv[1].split(","):
        import_ = name in ("os", "codecs", "zipimport")  # loading: importlib asks for the code
        code = __import__(name) and _imp.get_frozen_object(name) if import_ else _imp.get_frozen_object(name)
        names = [s for co in codes(code) for s in co.co_names + co.co_varnames]
        consts = [c for co in codes(code) for c in co.co_consts
                  if type(c) is str and c.isidentifier() and c.isascii()]
        out[name] = [len(names), sum(map(interned, names)), len(consts), sum(map(interned, consts))]
    posix.write(1, repr(out).encode())
""")


def test_deep_frozen_modules_have_their_names_interned_once_loaded(build):
    """The program interns a deep-frozen module's strings when it is first loaded (launcher.c,
    lazy_deepfreeze), python all of them at start-up: once loaded, the same are interned."""
    exe = build(INTERNED, "interned")
    mods = ",".join(["_frozen_importlib", "_frozen_importlib_external", "zipimport", "abc", "codecs",
                     "io", "_collections_abc", "_sitebuiltins", "genericpath", "ntpath", "posixpath",
                     "os", "site", "stat", "importlib.util", "importlib.machinery", "runpy",
                     "__hello__", "__phello__.spam"])
    mine, python = both(exe, INTERNED, mods)
    assert mine.returncode == python.returncode == 0, (mine.stderr, python.stderr)
    assert mine.stdout == python.stdout
    for name, (n, n_interned, c, c_interned) in ast.literal_eval(python.stdout.decode()).items():
        assert n == n_interned and n > 0, name
        assert c == c_interned, name


# ociruntime.flock and .poll in the program (start, kill and delete use them): the built-in shim's
SYSCALLS = textwrap.dedent("""
    import _signal, errno, posix, sys, time
    sys.path.insert(0, sys.argv[2])
    import ociruntime
    from ociruntime import flock

    class L:
        flock = staticmethod(flock)

        @staticmethod
        def poll(fds, timeout):  # the revents of each of fds, 0 where none
            got = ociruntime.poll(fds, timeout)
            return tuple(got.get(fd, 0) for fd in fds)

    out = {}
    path = sys.argv[1]
    fd = posix.open(path, posix.O_RDWR | posix.O_CREAT, 0o600)
    L.flock(fd, 2)  # LOCK_EX
    def other_try():  # another open file description of the same file, LOCK_EX | LOCK_NB
        pid = posix.fork()
        if pid == 0:
            fd2 = posix.open(path, posix.O_RDONLY)
            try:
                L.flock(fd2, 2 | 4)
                posix._exit(0)
            except BlockingIOError:
                posix._exit(11)
        return posix.waitstatus_to_exitcode(posix.waitpid(pid, 0)[1])
    out["held"] = other_try()
    L.flock(fd, 8)  # LOCK_UN
    out["released"] = other_try()
    try:
        L.flock(-1, 2)
    except OSError as e:
        out["badfd"] = errno.errorcode[e.errno]
    r, w = posix.pipe()
    out["empty"] = L.poll((r,), 0)
    posix.write(w, b"x")
    out["readable"] = L.poll([r], -1)
    posix.close(w)
    out["hangup"] = L.poll((r,), 0)
    fired = []
    _signal.signal(_signal.SIGALRM, lambda *a: fired.append(1))
    _signal.setitimer(_signal.ITIMER_REAL, 0.05)
    r2, w2 = posix.pipe()
    t = time.monotonic()
    out["timeout"] = L.poll((r2,), 300)
    out["waited"] = time.monotonic() - t >= 0.29
    out["handler_ran"] = fired == [1]
    def stop(*a):
        raise KeyboardInterrupt
    _signal.signal(_signal.SIGALRM, stop)
    _signal.setitimer(_signal.ITIMER_REAL, 0.05)
    try:
        L.poll((r2,), -1)
    except KeyboardInterrupt:
        out["interrupted"] = True
    def holder(seconds):  # another process holding the lock for a while
        rr, ww = posix.pipe()
        pid = posix.fork()
        if pid == 0:
            L.flock(posix.open(path, posix.O_RDONLY), 2)
            posix.write(ww, b"1")
            time.sleep(seconds)
            posix._exit(0)
        posix.read(rr, 1)
        return pid
    fired.clear()
    _signal.signal(_signal.SIGALRM, lambda *a: fired.append(1))
    pid = holder(0.3)
    _signal.setitimer(_signal.ITIMER_REAL, 0.05)
    L.flock(fd, 2)  # waits out the holder; the handler runs meanwhile
    out["flock_waited"] = fired == [1]
    L.flock(fd, 8)
    posix.waitpid(pid, 0)
    pid = holder(5)
    _signal.signal(_signal.SIGALRM, stop)
    _signal.setitimer(_signal.ITIMER_REAL, 0.05)
    try:
        L.flock(fd, 2)
    except KeyboardInterrupt:
        out["flock_interrupted"] = True
    posix.kill(pid, 9)
    posix.waitpid(pid, 0)
    out["builtin"] = ociruntime._binding() is sys.modules["_ociruntime_shim"] and \
        not {"fcntl", "select", "ociruntime._shim"} & set(sys.modules)
    posix.write(1, repr(out).encode())
""")


def test_the_program_has_the_shims_flock_and_poll_built_in(build, tmp_path):
    """ociruntime.flock and .poll, on the built-in shim (no fcntl, no select, no shim library),
    as fcntl.flock and select.poll behave: the lock excludes another
    open file description until released, errors are OSErrors, poll reports readable and hung up
    fds and times out, and a signal runs its handler then the wait (poll's or flock's) goes on, or
    ends with the handler's exception."""
    import select
    exe = build(SYSCALLS, "syscalls")
    r = subprocess.run([exe, str(tmp_path / "lock"), str(REPO)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert ast.literal_eval(r.stdout.decode()) == {
        "held": 11, "released": 0, "badfd": "EBADF", "empty": (0,), "readable": (select.POLLIN,),
        "hangup": (select.POLLIN | select.POLLHUP,), "timeout": (0,), "waited": True, "handler_ran": True,
        "interrupted": True, "flock_waited": True, "flock_interrupted": True, "builtin": True}
