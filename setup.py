"""Install-time steps; everything else is in pyproject.toml.

* the shim (cext/shim.c and its binding cext/shimmodule.c: ociruntime._shim, on the stable ABI);
* the `ociruntime` command (tools/ociruntime): written with this interpreter's absolute path and
  `-IS` on its first line (pip rewrites a `#!python` line but drops its options, and its console
  scripts import through site, which costs ~40 ms here), and, for an editable install, the source
  tree it imports from; then, where this installation has its static libpython, made a program
  (cext/launcher.c: the interpreter linked in, running that same script; ~1.5 ms less a command),
  the script staying as it is where that cannot be built;
* bytecode of the package in the source tree (an editable install imports from there, and
  PYTHONDONTWRITEBYTECODE may be set where it runs; a normal install is compiled by pip).
"""
import ast
import compileall
import importlib.util
import marshal
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_py import build_py as _build_py

from distutils.command.build_scripts import build_scripts as _build_scripts  # setuptools' copy

HERE = os.path.dirname(os.path.abspath(__file__))


class build_scripts(_build_scripts):
    def run(self):
        self.mkpath(self.build_dir)
        editable = "editable_wheel" in self.distribution.command_obj
        for script in self.scripts or ():
            with open(script, encoding="utf-8") as f:
                lines = f.read().splitlines(keepends=True)
            lines[0] = "#!%s -IS\n" % sys.executable
            if editable:
                lines = [("SOURCE = %r\n" % HERE) if ln == "SOURCE = None\n" else ln for ln in lines]
            # the .pyc magic of the interpreter that runs the script (it checks two .pyc files itself)
            lines = [("MAGIC = %r\n" % importlib.util.MAGIC_NUMBER) if ln == "MAGIC = None\n" else ln
                     for ln in lines]
            out = os.path.join(self.build_dir, os.path.basename(script))
            with open(out, "w", encoding="utf-8") as f:
                f.write("".join(lines))
            os.chmod(out, 0o755)
            if os.environ.get("OCIRUNTIME_LAUNCHER", "1") != "0":
                build_launcher("".join(lines[1:]), out, self.announce)
        compileall.compile_dir(os.path.join(HERE, "ociruntime"), quiet=1)


def c_string(text):
    """A C string literal of ``text`` (bytes of the file system encoding, octal-escaped)."""
    out = []
    for b in os.fsencode(text):
        c = chr(b)
        out.append(c if 32 <= b < 127 and c not in '"\\?' else "\\%03o" % b)
    return '"' + "".join(out) + '"'


def c_bytes(name, data):
    """A C array ``name`` of the bytes ``data``."""
    return "static const unsigned char %s[] = {%s};\n" % (name, ",".join(map(str, data)))


# Imported by every interpreter's start-up (the codec registry and the utf-8 codec of the file
# system and stdio), from disk: the stdlib directory listed, three .pyc files read.  The launcher
# has them frozen (their bytecode in the program, as the interpreter has importlib, os or codecs):
# ~1 ms a command.  A frozen package's __path__ is the stdlib's (sys._stdlib_dir), so the other
# codecs (encodings.latin_1, ...) are still found there when asked for.
FROZEN = (("encodings", True), ("encodings.aliases", False), ("encodings.utf_8", False))


def frozen_stdlib(stdlib):
    """(name, is package, marshalled code) of FROZEN, compiled from ``stdlib``'s sources (none if
    one is missing: they are then imported from disk as usual)."""
    out = []
    for name, pkg in FROZEN:
        path = os.path.join(stdlib, *name.split(".")) + ("/__init__.py" if pkg else ".py")
        try:
            with open(path, "rb") as f:
                out.append((name, pkg, marshal.dumps(compile(f.read(), path, "exec"))))
        except (OSError, SyntaxError):
            return []
    return out


# what the probe build runs: the stdlib found, an extension module from lib-dynload loaded (it
# resolves the C API from the program), the flags of `python -I -S`, and a codec that is not frozen
# found through the frozen encodings package (latin-1 has no alias: encodings.latin_1 from disk)
PROBE = ("import _json, codecs, sys\nprint('ok', sys.flags.isolated, sys.flags.no_site, _json.__name__, "
         "codecs.lookup('latin1').name, codecs.lookup('idna').name)\n"
         "print(repr([getattr(sys, a) for a in PATH_CONFIG]))\n")
# what the interpreter's path configuration (getpath) computes, as the probe finds it: baked into
# the program, which then does not compute it again (see launcher.c, main_phase)
PATH_CONFIG = ("_base_executable", "prefix", "base_prefix", "exec_prefix", "base_exec_prefix", "_stdlib_dir",
               "platlibdir")
PROBE = "PATH_CONFIG = %r\n" % (PATH_CONFIG,) + PROBE


def build_launcher(script, out, announce):
    """cext/launcher.c linked with this installation's static libpython, replacing the script at
    ``out`` (which stays as it is when there is no static library or no compiler)."""
    cv = sysconfig.get_config_var
    static = os.path.join(cv("LIBPL") or "", cv("LIBRARY") or "")
    cc = shlex.split(cv("CC") or "cc")
    if not cc or not shutil.which(cc[0]):
        cc = ["cc"]
    if not os.path.isfile(static) or not static.endswith(".a") or not shutil.which(cc[0]):
        announce("ociruntime launcher: no static libpython (%s) or no compiler: the script stays" % static, 2)
        return
    # the interpreter's own stdlib and extension directories (a venv's sysconfig "platstdlib" is
    # under the venv: not where lib-dynload is)
    base = {"base": sys.base_prefix, "installed_base": sys.base_prefix,
            "platbase": sys.base_exec_prefix, "installed_platbase": sys.base_exec_prefix}
    dynload = [p for p in sys.path if p.endswith("/lib-dynload") and os.path.isdir(p)]
    paths = [sysconfig.get_path("stdlib", vars=base),
             dynload[0] if dynload else os.path.join(sysconfig.get_path("platstdlib", vars=base), "lib-dynload")]
    libs = [static] + shlex.split(cv("MODLIBS") or "") + shlex.split(cv("LIBS") or "") + \
        shlex.split(cv("SYSLIBS") or "") + shlex.split(cv("LINKFORSHARED") or "")
    # the installation's run path (pyenv's lib/): libpython is linked in, so the program needs it
    # only for a library of its own there; without it the loader does not look there (and in five
    # hwcaps subdirectories) for libc and libm, ~20 failed system calls a start
    plain = [a for a in libs if not a.startswith(("-Wl,-rpath,", "-Wl,-R"))]

    frozen = frozen_stdlib(paths[0])
    with open(os.path.join(HERE, "cext", "lazy.py"), encoding="utf-8") as f:
        lazy = f.read()

    def link(tmp, main, exe, defines, libs, pies=(["-no-pie"], []), path_config=None):
        """Build with ``main`` as the script; returns the PIE option that linked, or the error.
        Without PIE first (launcher.c: a PIE's relocations would write to every page of the
        interpreter's static objects); the stepwise build has its own _Py_Deepfreeze_Init."""
        with open(os.path.join(tmp, "launcher_cfg.h"), "w") as f:
            f.write("\n".join([
                c_bytes("OCI_MAIN_CODE", marshal.dumps(compile(main, "<ociruntime>", "exec"))),
                c_bytes("OCI_LAZY_CODE", marshal.dumps(compile(lazy, "<ociruntime lazy>", "exec"))),
                "".join(c_bytes("OCI_FROZEN_%d" % i, code) for i, (_, _, code) in enumerate(frozen)),
                "static const struct _frozen OCI_FROZEN[] = {%s{0, 0, 0, 0, 0}};" % "".join(
                    "{%s, OCI_FROZEN_%d, (int)sizeof(OCI_FROZEN_%d), %d, 0}, " % (c_string(name), i, i, pkg)
                    for i, (name, pkg, _) in enumerate(frozen)),
                "#define OCI_PYTHON %s" % c_string(sys.executable),
                "#define OCI_PATH_CONFIG %s" % "".join(c_string(v) + ", " for v in path_config or ()),
                "static const char *const OCI_STDLIB_PATHS[] = {%s, 0};"
                % ", ".join(c_string(p) for p in paths), ""]))
        cext = os.path.join(HERE, "cext")
        base = cc + ["-O2", "-s"] + defines + ["-I", tmp, "-I", cv("INCLUDEPY"), "-I", cext, "-o", exe] + \
            [os.path.join(cext, f) for f in ("launcher.c", "shim.c", "shimmodule.c")]
        if "-DOCI_FULL_INIT" not in defines:
            base.append("-Wl,--allow-multiple-definition")
        err = ""
        for pie in pies:  # PIE only where -no-pie does not link
            r = subprocess.run(base + pie + libs, capture_output=True, text=True)
            if r.returncode == 0:
                return pie
            err = r.stderr
        return err.strip()[-500:] or "failed"

    with tempfile.TemporaryDirectory() as tmp:
        # a probe first: the package itself may not be importable yet (a wheel is installed after);
        # the interpreter's second phase taken step by step (see launcher.c), else all at once
        errors = []
        variants = [([], plain, "without the run path"), ([], libs, "with the run path"),
                    (["-DOCI_FULL_INIT"], libs, "with -DOCI_FULL_INIT")]
        for defines, use, how in variants if plain != libs else variants[1:]:
            probe = os.path.join(tmp, "probe")
            pie = link(tmp, PROBE, probe, defines, use)
            if isinstance(pie, str):
                errors.append("build failed: %s" % pie)
                continue
            r = subprocess.run([probe], capture_output=True, text=True)
            lines = r.stdout.splitlines()
            if r.returncode == 0 and lines[:1] and lines[0].split() == ["ok", "1", "1", "_json", "iso8859-1", "idna"]:
                break
            errors.append("the built interpreter does not start as it should: %s %s"
                          % (r.stdout.strip(), r.stderr.strip()[-500:]))
        else:
            announce("ociruntime launcher: the script stays: %s" % "; ".join(errors), 3)
            return
        for e in errors:
            announce("ociruntime launcher: %s; built %s" % (e, how), 2)
        exe = os.path.join(tmp, "ociruntime")
        try:
            found = ast.literal_eval(lines[1])
        except (IndexError, ValueError, SyntaxError):
            found = None
        ok = isinstance(found, list) and len(found) == len(PATH_CONFIG) and all(
            isinstance(v, str) and v and "\0" not in v for v in found) and all(v.startswith("/") for v in found[:6])
        err = link(tmp, script, exe, defines, use, (pie,), found if ok else None)
        if isinstance(err, str):
            announce("ociruntime launcher: build failed, the script stays: %s" % err, 3)
            return
        shutil.copyfile(exe, out + ".tmp")
        os.chmod(out + ".tmp", 0o755)
        os.replace(out + ".tmp", out)


class build_py(_build_py):
    def run(self):
        super().run()
        compileall.compile_dir(os.path.join(HERE, "ociruntime"), quiet=1)


# Build dependency: seccomp.h (Debian: libseccomp-dev), for its types and constants; libseccomp.so.2
# is not linked: the shim dlopens it on first use (oci_scmp_open), so it is needed at run time only
# by containers with seccomp.
SHIM = Extension("ociruntime._shim", sources=["cext/shim.c", "cext/shimmodule.c"], include_dirs=["cext"],
                 define_macros=[("Py_LIMITED_API", "0x030B0000")], py_limited_api=True,
                 extra_compile_args=["-O2", "-Wall"])

setup(ext_modules=[SHIM], scripts=["tools/ociruntime"],
      cmdclass={"build_scripts": build_scripts, "build_py": build_py})
