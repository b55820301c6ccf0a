"""The start of every `ociruntime` command.

The program (cext/launcher.c) runs the package's modules from its own frozen copy of their
bytecode, in an interpreter started as `python -I -S` starts one: no `site`, so no site-packages
on sys.path.  ``main`` puts there the site-packages directories of the installation the program
belongs to (for the parts of the package that are files: the shim's compiled module, the
schema files; and for its dependencies), then runs the command line.  The script installed where
the program could not be built (tools/ociruntime) and `python -m ociruntime` run ``main`` too,
from an interpreter that has its site-packages already.

The cyclic garbage collector is off for the command's life (the commands are short and make no
cycles worth collecting; the forked init inherits it off); the commands that stay around (the
foreground waits of run and exec, events) turn it back on.
"""
import sys

from ociruntime import isdir, isfile


def _venv_includes_system_site(venv):
    """pyvenv.cfg's include-system-site-packages = true."""
    try:
        with open(venv + "/pyvenv.cfg", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip().lower() == "include-system-site-packages":
            return value.strip().lower() == "true"
    return False


def site_dirs(program):
    """The site-packages directories `site` would add for the installation holding ``program``
    (the venv or installation whose bin/ it is in, and the base installation when a venv includes
    it), in its order; only those that exist."""
    version = "python%d.%d" % sys.version_info[:2]
    bindir = program.rpartition("/")[0]
    prefix = bindir.rpartition("/")[0] or "/"
    prefixes = [prefix]
    if isfile(prefix + "/pyvenv.cfg"):
        if _venv_includes_system_site(prefix):
            prefixes.append(sys.base_prefix)
    elif prefix != sys.base_prefix:
        prefixes.append(sys.base_prefix)  # /usr/local/bin's program with /usr's Python
    out = []
    for p in prefixes:
        p = p.rstrip("/")
        for d in (p + "/" + sys.platlibdir + "/" + version + "/site-packages",
                  p + "/lib/" + version + "/site-packages",
                  p + "/local/lib/" + version + "/dist-packages",
                  p + "/lib/python3/dist-packages"):
            if d not in out and isdir(d):
                out.append(d)
    return out


def _find_package(dirs):
    """The installed package directory (site-packages/ociruntime) among ``dirs``."""
    for d in dirs:
        if isfile(d + "/ociruntime/__init__.py"):
            return d + "/ociruntime"
    return None


def setup_paths():
    """In the program (started without `site`): the installation's site-packages on sys.path and,
    where the package's modules are frozen into the program, its files (the shim's compiled
    module, spec/) found where it is installed."""
    import ociruntime
    dirs = site_dirs(sys.executable)
    sys.path.extend(d for d in dirs if d not in sys.path)
    if getattr(ociruntime.__spec__, "origin", None) == "frozen":
        # FrozenImporter gives a frozen package a __path__ under the standard library
        where = _find_package(dirs)
        ociruntime.__path__[:] = [where] if where else []


gc_off = False  # main turned the collector off (ociruntime.long_wait turns it back on)


def main():
    global gc_off
    import gc
    gc.disable()
    gc_off = True
    if "site" not in sys.modules:
        setup_paths()
    from ociruntime.cli import finish, main as cli_main
    finish(cli_main(sys.argv[1:]))
