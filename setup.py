"""Install-time steps; everything else is in pyproject.toml.

* the shim (cext/shim.c and its binding: ociruntime._shim);
* the `ociruntime` command: cext/launcher.c, CPython embedded through its public C API with this
  installation's static libpython, and the package's modules compiled and frozen into it (so a
  command reads no bytecode file and nothing is ever written into the installation); where that
  cannot be built (no static libpython, no compiler, or the built program does not start), the
  script tools/ociruntime, which pip points at the installing interpreter.  An editable install's
  program imports the package from the source tree instead (not frozen: edits take effect).
"""
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from setuptools import Extension, setup

from distutils.command.build_scripts import build_scripts as _build_scripts  # setuptools' copy

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.join(HERE, "ociruntime")


class build_scripts(_build_scripts):
    def run(self):
        self.mkpath(self.build_dir)
        editable = "editable_wheel" in self.distribution.command_obj
        for script in self.scripts or ():
            out = os.path.join(self.build_dir, os.path.basename(script))
            if os.environ.get("OCIRUNTIME_LAUNCHER", "1") != "0" and \
                    build_launcher(out, HERE if editable else None, self.announce):
                continue
            shutil.copyfile(script, out)  # a `#!python` script: pip writes the interpreter's path
            os.chmod(out, 0o755)


def frozen_modules(package_dir):
    """(dotted name, is package, marshalled code) of every module of the package, compiled by the
    interpreter that builds (the program's own)."""
    import marshal
    out = []
    top = os.path.dirname(package_dir)
    for root, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, top)
            parts = rel[:-3].split(os.sep)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts.pop()
            with open(path, "rb") as f:
                code = compile(f.read(), rel, "exec", dont_inherit=True)
            out.append((".".join(parts), is_pkg, marshal.dumps(code)))
    return out


def c_string(data):
    """A C string literal of the bytes ``data`` (octal escapes), in lines."""
    parts, line = [], []
    for i, b in enumerate(data):
        c = chr(b)
        line.append(c if 32 <= b < 127 and c not in '"\\?' else "\\%03o" % b)
        if len(line) >= 100:
            parts.append('"%s"' % "".join(line))
            line = []
    parts.append('"%s"' % "".join(line))
    return "\n".join(parts)


def launcher_cfg(source):
    """launcher_cfg.h: the frozen modules, or for an editable install the source tree."""
    if source is not None:
        return "#define OCI_SOURCE %s\n" % c_string(os.fsencode(source))
    mods = frozen_modules(PACKAGE)
    out = []
    for i, (_, _, code) in enumerate(mods):
        out.append("static const unsigned char OCI_M%d[%d] =\n%s;\n" % (i, len(code), c_string(code)))
    out.append("static const struct _frozen OCI_FROZEN[] = {\n%s    {0, 0, 0, 0}\n};\n" % "".join(
        '    {.name = "%s", .code = OCI_M%d, .size = (int)sizeof OCI_M%d, .is_package = %d},\n'
        % (name, i, i, is_pkg) for i, (name, is_pkg, _) in enumerate(mods)))
    return "".join(out)


# where the dynamic loader finds a library without a run path
SYSTEM_LIBDIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64")


def libpython():
    """The linker arguments of this installation's libpython: its static library, else its
    shared one where the loader finds it without a run path (a distribution's /usr/lib*); None
    otherwise (a shared libpython elsewhere would tie the program to this installation's path)."""
    cv = sysconfig.get_config_var
    static = os.path.join(cv("LIBPL") or "", cv("LIBRARY") or "")
    if static.endswith(".a") and os.path.isfile(static):
        return [static]
    libdir, shared = cv("LIBDIR") or "", cv("LDLIBRARY") or ""
    multiarch = cv("MULTIARCH") or ""
    system = SYSTEM_LIBDIRS + tuple(d + "/" + multiarch for d in SYSTEM_LIBDIRS if multiarch)
    if shared.endswith(".so") and os.path.realpath(libdir) in system and \
            os.path.exists(os.path.join(libdir, shared)):
        return ["-L" + libdir, "-l" + shared[3:-3]]
    return None


def link_command(cc, tmp, exe):
    """The compiler command that builds the program with this installation's libpython, or None
    where it cannot be linked (libpython()).  Only public C API, the standard embedding link."""
    cv = sysconfig.get_config_var
    lib = libpython()
    if lib is None:
        return None
    libs = shlex.split(cv("MODLIBS") or "") + shlex.split(cv("LIBS") or "") + \
        shlex.split(cv("SYSLIBS") or "") + shlex.split(cv("LINKFORSHARED") or "")
    # no run path: the program must not depend on where the building interpreter lives
    libs = [a for a in libs if not a.startswith(("-Wl,-rpath", "-Wl,-R", "-Wl,--enable-new-dtags"))]
    if not any("export-dynamic" in a for a in libs):  # extension modules resolve the C API from it
        libs.append("-Wl,--export-dynamic")
    return cc + ["-O2", "-s", "-I", tmp, "-I", cv("INCLUDEPY"), "-o", exe,
                 os.path.join(HERE, "cext", "launcher.c")] + lib + libs


def build_launcher(out, source, announce):
    """Build the program at ``out``; False (with the reason announced) where it cannot be."""
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    if not cc or not shutil.which(cc[0]):
        cc = ["cc"]
    if not shutil.which(cc[0]):
        announce("ociruntime: no C compiler: the `ociruntime` command is the script", 3)
        return False
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "bin", "ociruntime")
        os.mkdir(os.path.dirname(exe))
        cmd = link_command(cc, tmp, exe)
        if cmd is None:
            announce("ociruntime: this Python's libpython cannot be linked in (no static library, and no shared "
                     "one in a system library directory): the `ociruntime` command is the script", 3)
            return False
        with open(os.path.join(tmp, "launcher_cfg.h"), "w", encoding="ascii") as f:
            f.write(launcher_cfg(source))
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            announce("ociruntime: building the program failed, the command is the script: %s"
                     % r.stderr.strip()[-2000:], 3)
            return False
        problem = probe(exe, tmp)
        if problem:
            announce("ociruntime: the built program does not run (%s): the command is the script" % problem, 3)
            return False
        shutil.copyfile(exe, out)
        os.chmod(out, 0o755)
    return True


def probe(exe, tmp):
    """Run the built program as it will run, in a venv of this interpreter's installation (its
    bin/ beside a pyvenv.cfg): what goes wrong, or None."""
    home = os.path.dirname(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    with open(os.path.join(tmp, "pyvenv.cfg"), "w", encoding="utf-8") as f:
        f.write("home = %s\ninclude-system-site-packages = false\n" % home)
    bundle = os.path.join(tmp, "bundle")
    os.mkdir(bundle)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for argv in ([exe, "--version"], [exe, "spec", "--bundle", bundle]):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        except (OSError, subprocess.TimeoutExpired) as e:
            return str(e)
        if r.returncode != 0:
            return "%s: exit %d: %s" % (" ".join(argv[1:]), r.returncode, (r.stderr or r.stdout).strip()[-500:])
    if not os.path.isfile(os.path.join(bundle, "config.json")):
        return "spec wrote no config.json"
    return None


# Build dependency: seccomp.h (Debian: libseccomp-dev), for its types and constants; libseccomp.so.2
# is not linked: the shim dlopens it on first use (oci_scmp_open), so it is needed at run time only
# by containers with seccomp.
SHIM = Extension("ociruntime._shim", sources=["cext/shim.c", "cext/shimmodule.c"], include_dirs=["cext"],
                 define_macros=[("Py_LIMITED_API", "0x030B0000")], py_limited_api=True,
                 extra_compile_args=["-O2", "-Wall"])

setup(ext_modules=[SHIM], scripts=["tools/ociruntime"], cmdclass={"build_scripts": build_scripts})
