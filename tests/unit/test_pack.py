"""ociruntime._pack: the package's bytecode served from one file, and never stale.

Each step runs in a fresh interpreter on a copy of the package (the pack lives beside the sources
it caches), as the `ociruntime` command starts: install the finder, import, update at the end."""
import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import helpers
import ociruntime

PKG = os.path.dirname(os.path.abspath(ociruntime.__file__))
MODS = ["ociruntime.cli", "ociruntime.container.state", "ociruntime.container.statedir", "ociruntime.jsonio"]

STEP = textwrap.dedent("""
    import json, sys
    sys.path[:0] = [sys.argv[1]] + [p for p in sys.argv[3:]]
    from ociruntime import _pack
    _pack.install(["--root", "/x", "state"])
    mods = json.loads(sys.argv[2])
    for m in mods:
        __import__(m)
    out = {m: {"packed": type(sys.modules[m].__spec__.loader).__name__ == "Finder",
               "file": sys.modules[m].__file__,
               "path": getattr(sys.modules[m], "__path__", None)} for m in mods}
    out["marker"] = getattr(sys.modules.get("ociruntime.jsonio"), "PACK_TEST_MARKER", None)
    out["served"] = sorted(_pack._finder.used)
    _pack.update()
    print(json.dumps(out))
""")


@pytest.fixture
def tree(tmp_path):
    """A copy of the package without its bytecode (the first command compiles, as after install)."""
    shutil.copytree(PKG, tmp_path / "ociruntime", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for so in os.listdir(PKG):
        if so.endswith(".so"):
            shutil.copy(os.path.join(PKG, so), tmp_path / "ociruntime" / so)
    return tmp_path


def fresh_python(code, *args):
    """``code`` in a fresh `python -I -S`, with ``args`` and then the site-packages directories
    (as the command's own start-up adds them) as its arguments."""
    site = [p for p in sys.path if p.endswith("-packages")]
    return subprocess.run([sys.executable, "-I", "-S", "-c", code, *args] + site, capture_output=True,
                          text=True)


def step(tree, mods=MODS):
    r = fresh_python(STEP, str(tree), json.dumps(mods))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def pack_of(tree):
    return tree / "ociruntime" / "__pycache__" / ("pack.%s.state.bin" % sys.implementation.cache_tag)


def test_served_from_the_pack_after_the_first_command(tree):
    first = step(tree)
    assert not any(first[m]["packed"] for m in MODS)  # nothing to serve yet
    assert pack_of(tree).is_file()
    second = step(tree)
    for m in MODS:
        assert second[m]["packed"], m
        # __file__ and a package's __path__ are those of the sources, as without the pack
        assert second[m]["file"] == first[m]["file"]
        assert second[m]["file"].startswith(str(tree / "ociruntime") + "/")
        assert second[m]["path"] == first[m]["path"]
    assert second["ociruntime.cli"]["path"] == [str(tree / "ociruntime" / "cli")]


def test_a_changed_source_is_imported_from_itself_then_packed_anew(tree):
    step(tree)
    step(tree)
    before = pack_of(tree).stat().st_mtime_ns
    src = tree / "ociruntime" / "jsonio.py"
    with open(src, "a") as f:
        f.write("\nPACK_TEST_MARKER = 42\n")
    third = step(tree)
    assert third["marker"] == 42  # the new source, not the packed bytecode
    assert not third["ociruntime.jsonio"]["packed"]
    assert third["ociruntime.cli"]["packed"]  # the others are still current
    assert pack_of(tree).stat().st_mtime_ns != before
    fourth = step(tree)
    assert fourth["marker"] == 42 and fourth["ociruntime.jsonio"]["packed"]


def test_the_pack_keeps_what_other_commands_use(tree):
    step(tree, ["ociruntime.jsonio"])
    step(tree, ["ociruntime.container.statedir"])
    both = step(tree, ["ociruntime.jsonio", "ociruntime.container.statedir"])
    assert both["ociruntime.jsonio"]["packed"] and both["ociruntime.container.statedir"]["packed"]


def test_no_rewrite_when_nothing_is_new(tree):
    step(tree)
    before = pack_of(tree).stat().st_mtime_ns
    step(tree)
    step(tree, MODS[:2])
    assert pack_of(tree).stat().st_mtime_ns == before


def test_a_damaged_pack_is_ignored_and_replaced(tree):
    step(tree)
    pack_of(tree).write_bytes(b"garbage" * 10)
    again = step(tree)
    assert not any(again[m]["packed"] for m in MODS)
    assert step(tree)["ociruntime.cli"]["packed"]


def test_a_cut_pack_serves_what_it_still_has(tree):
    """Images are read when their module is imported: one the pack no longer holds whole is
    imported the usual way, and the pack is written anew."""
    step(tree)
    pack = pack_of(tree)
    data = pack.read_bytes()
    pack.write_bytes(data[:-100])
    again = step(tree)
    assert not all(again[m]["packed"] for m in MODS) and any(again[m]["packed"] for m in MODS)
    assert pack.stat().st_size == len(data)
    assert all(step(tree)[m]["packed"] for m in MODS)


def test_an_index_longer_than_the_first_read(tmp_path):
    """The index is read with the pack's first 8 kB; a longer one is read to its end."""
    from ociruntime import _pack
    entries = {"ociruntime.m%03d" % i: ("ociruntime/m%03d.py" % i, _pack.MODULE,
                                        b"magic\0\0\0" + i.to_bytes(8, "little") + b"x" * i) for i in range(300)}
    path = tmp_path / "pack"
    path.write_bytes(_pack._dump(entries))
    fd = os.open(path, os.O_RDONLY)
    try:
        got, base = _pack._parse(fd)
        assert base > len(_pack._HEADER) + 4 + 8192
        finder = _pack.Finder(got, fd, base)
        assert {name: finder.image(where) for name, (_, _, where) in got.items()} == \
            {name: pyc for name, (_, _, pyc) in entries.items()}
    finally:
        os.close(fd)


def test_init_seals_imports_without_the_pack(tree):
    # after pivot_root nothing may be looked up by path, the pack's stat of the sources included
    code = textwrap.dedent("""
        import sys
        sys.path[:0] = [sys.argv[1]] + sys.argv[2:]
        import posix
        from ociruntime import _pack
        _pack.install(["state"])
        def packs_open():
            links = []
            for fd in posix.listdir("/proc/self/fd"):
                try:
                    links.append(posix.readlink("/proc/self/fd/" + fd))
                except OSError:  # listdir's own
                    pass
            return [link for link in links if link.endswith(".state.bin")]
        assert packs_open()
        from ociruntime.process.init import _seal_imports
        _seal_imports()
        assert not any(getattr(f, "ociruntime_pack", False) for f in sys.meta_path), sys.meta_path
        assert not packs_open()  # the host's file is closed
        try:
            import ociruntime.cli.features
        except ImportError:
            print("sealed")
    """)
    step(tree, MODS + ["ociruntime.cli.features"])
    r = fresh_python(code, str(tree))
    assert r.stdout.strip() == "sealed", r.stderr


def test_one_pack_per_command():
    from ociruntime import _pack, cli
    assert _pack.COMMANDS == set(cli.COMMANDS)


def test_extension_modules_by_path_while_unchanged(tree):
    """Extension modules (the shim in the package, select in lib-dynload) are found through the
    pack, by path, without the path finder's listings; a changed file is loaded the usual way and
    recorded anew; pure-Python modules from outside the package are not kept."""
    mods = MODS + ["ociruntime._shim", "select", "colorsys"]
    first = step(tree, mods)
    assert not {"ociruntime._shim", "select"} & set(first["served"])
    second = step(tree, mods)
    assert {"ociruntime._shim", "select"} <= set(second["served"])
    assert second["select"]["file"] == first["select"]["file"] and second["select"]["file"].endswith(".so")
    assert second["ociruntime._shim"]["file"] == str(tree / "ociruntime" / "_shim.abi3.so")
    assert "colorsys" not in second["served"] and b"colorsys" not in pack_of(tree).read_bytes()
    shim = tree / "ociruntime" / "_shim.abi3.so"
    st = shim.stat()
    os.utime(shim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = step(tree, mods)
    assert "ociruntime._shim" not in third["served"] and "select" in third["served"]
    assert "ociruntime._shim" in step(tree, mods)["served"]


ATTRS = textwrap.dedent("""
    import json, sys, threading
    sys.path[:0] = [sys.argv[1]] + sys.argv[4:]
    from ociruntime import _pack
    if sys.argv[3] in ("pack", "thread"):
        _pack.install(["--root", "/x", "state"])
    calls = []
    importlib_find_and_load = _pack._importlib_find_and_load
    def spy(name, import_):
        calls.append(name)
        return importlib_find_and_load(name, import_)
    _pack._importlib_find_and_load = spy
    if sys.argv[3] == "thread":  # another thread: importlib's locks are needed
        ev = threading.Event()
        t = threading.Thread(target=ev.wait)
        t.start()
    out = {}
    for m in json.loads(sys.argv[2]):
        __import__(m)
        mod = sys.modules[m]
        parent, _, child = m.rpartition(".")
        out[m] = {"file": mod.__file__, "cached": mod.__cached__, "package": mod.__package__,
                  "path": getattr(mod, "__path__", None), "spec": [mod.__spec__.name, mod.__spec__.parent,
                  mod.__spec__.origin, mod.__spec__.cached, mod.__spec__.has_location],
                  "on_parent": getattr(sys.modules[parent], child) is mod,
                  "loader": type(mod.__loader__).__name__,
                  "initializing": getattr(mod.__spec__, "_initializing", False)}
    if sys.argv[3] == "thread":
        ev.set()
        t.join()
    out["importlib"] = sorted(set(calls))
    out["hooked"] = sys.modules["_frozen_importlib"]._find_and_load is _pack._find_and_load
    print(json.dumps(out))
""")


def attrs(tree, mods, how):
    r = fresh_python(ATTRS, str(tree), json.dumps(mods), how)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_modules_from_the_pack_are_set_up_as_importlib_sets_them_up(tree):
    """The pack's own _find_and_load (no importlib machinery per module) gives each module the
    attributes importlib gives it, in its parent package too, and is what loads them."""
    mods = MODS + ["ociruntime.container.start", "ociruntime.cli.state"]
    step(tree, mods)  # the pack now has them
    plain, packed = attrs(tree, mods, "plain"), attrs(tree, mods, "pack")
    for m in mods:
        want, got = dict(plain[m]), dict(packed[m])
        assert (want.pop("loader"), got.pop("loader")) == ("SourceFileLoader", "Finder"), m
        assert got == want, m
        assert not got["initializing"]
    # only what the pack does not have went through importlib (ociruntime itself, _pack's import)
    assert not set(packed["importlib"]) & set(mods), packed["importlib"]
    assert packed["hooked"] and not plain["hooked"]


def test_with_another_thread_running_imports_go_through_importlib(tree):
    step(tree)
    out = attrs(tree, MODS, "thread")
    assert set(MODS) <= set(out["importlib"])
    assert all(out[m]["loader"] == "Finder" for m in MODS)  # still served from the pack, by its finder


def test_a_module_whose_body_fails_is_not_left_behind(tree):
    """As with importlib: the error propagates, the module is neither in sys.modules nor on its
    parent, and the next import runs its body again."""
    src = tree / "ociruntime" / "container" / "packtest.py"
    src.write_text("import sys\nif getattr(sys, 'packtest_fail', False):\n"
                   "    raise RuntimeError('body failed')\nOK = 1\n")
    step(tree, MODS + ["ociruntime.container.packtest"])
    code = textwrap.dedent("""
        import sys
        sys.path[:0] = [sys.argv[1]] + sys.argv[2:]
        from ociruntime import _pack
        _pack.install(["--root", "/x", "state"])
        sys.packtest_fail = True
        try:
            import ociruntime.container.packtest
        except RuntimeError as e:
            assert str(e) == "body failed"
        else:
            raise AssertionError("no error")
        assert "ociruntime.container.packtest" not in sys.modules
        assert not hasattr(sys.modules["ociruntime.container"], "packtest")
        sys.packtest_fail = False
        import ociruntime.container.packtest as m
        assert m.OK == 1 and type(m.__loader__).__name__ == "Finder"
        assert sys.modules["ociruntime.container"].packtest is m
        print("ok")
    """)
    r = fresh_python(code, str(tree))
    assert r.stdout.strip() == "ok", r.stderr


# the program's own entry script (cext/launcher.c, tools/ociruntime) importing argv[1]'s modules
PROGRAM = textwrap.dedent("""
    import posix  # (json is not: it is found by the path finder)
    mods = ["ociruntime", "ociruntime._pack"] + sys.argv[1].split(",")
    for m in mods:
        __import__(m)
    external = "_frozen_importlib_external" in sys.modules
    def of(m):
        mod = sys.modules[m]
        parent, _, child = m.rpartition(".")
        return {"file": mod.__file__, "cached": getattr(mod, "__cached__", "(none)"), "package": mod.__package__,
                "path": getattr(mod, "__path__", None), "on_parent": not parent or getattr(sys.modules[parent], child) is mod,
                "spec": [mod.__spec__.name, mod.__spec__.parent, mod.__spec__.origin, mod.__spec__.cached,
                         mod.__spec__.has_location, mod.__spec__.submodule_search_locations],
                "loader": type(mod.__spec__.loader).__name__, "same_loader": mod.__loader__ is mod.__spec__.loader}
    out = {"external": external, "attrs": {m: of(m) for m in mods}, "served": sorted(_pack._finder.used)}
    _pack.update()
    posix.write(1, repr(out).encode())
""")


def test_the_program_imports_without_the_path_finder(tree, build):
    """In the `ociruntime` program the entry script loads ociruntime and _pack from their .pyc and
    the pack serves the rest, extension modules included, without importlib's path finder (which
    the program installs only when an import needs it, cext/lazy.py); each module is set up as
    importlib sets it up."""
    exe = build(helpers.entry_script(str(tree), PROGRAM), "program")
    mods = "ociruntime.cli,ociruntime.container.state,ociruntime._shim,_json,select"
    runs = []
    for _ in range(2):
        r = subprocess.run([exe, mods], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        runs.append(ast.literal_eval(r.stdout))
    first, second = runs  # the first compiles the tree and writes the pack the second uses
    assert first["external"] and not second["external"]
    assert set(mods.split(",")) <= set(second["served"])
    for m, got in second["attrs"].items():
        want = first["attrs"][m]
        assert (want.pop("loader"), got.pop("loader")) == {
            "ociruntime": ("SourceFileLoader", "_Loader"), "ociruntime._pack": ("SourceFileLoader", "_Loader"),
            "_json": ("ExtensionFileLoader", "ExtensionLoader"), "select": ("ExtensionFileLoader", "ExtensionLoader"),
            "ociruntime._shim": ("ExtensionFileLoader", "ExtensionLoader")}.get(m, ("SourceFileLoader", "Finder")), m
        assert got == want, m
    assert second["attrs"]["select"]["cached"] == "(none)" and second["attrs"]["select"]["spec"][3] is None
