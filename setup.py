"""Install-time steps; everything else is in pyproject.toml.

* the shim (cext/shim.c, bound with cffi by cext/build_shim.py: ociruntime._shim);
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

from setuptools import setup

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


# Imported by every interpreter's start-up (the codec registry, the utf-8 codec of the file system
# and stdio): frozen too, compiled from this installation's standard library, the one the embedded
# interpreter runs with (launcher.c runs it only there).  A frozen standard-library package gets
# its __path__ in the standard library (FrozenImporter), where the other codecs are found.
FROZEN_STDLIB = (("encodings", True), ("encodings.aliases", False), ("encodings.utf_8", False))


def frozen_stdlib():
    """(name, is package, marshalled code) of FROZEN_STDLIB; none where one is missing."""
    import marshal
    stdlib = sysconfig.get_path("stdlib", vars={"installed_base": sys.base_prefix, "base": sys.base_prefix})
    out = []
    for name, is_pkg in FROZEN_STDLIB:
        path = os.path.join(stdlib, *name.split(".")) + ("/__init__.py" if is_pkg else ".py")
        try:
            with open(path, "rb") as f:
                out.append((name, is_pkg, marshal.dumps(compile(f.read(), path, "exec", dont_inherit=True))))
        except (OSError, SyntaxError):
            return []
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


def fingerprint():
    """What the program recognises this installation's standard library by (launcher.c,
    same_installation): os.py's size and modification time, an FNV-1a hash of the sorted names in
    lib-dynload.  None where there is no os.py."""
    stdlib = sysconfig.get_path("stdlib", vars={"installed_base": sys.base_prefix, "base": sys.base_prefix})
    dynload = os.path.join(sysconfig.get_path("platstdlib", vars={"installed_platbase": sys.base_exec_prefix,
                                                                  "platbase": sys.base_exec_prefix}),
                           "lib-dynload")
    dynloads = [p for p in sys.path if p.endswith("/lib-dynload") and os.path.isdir(p)]
    if dynloads:
        dynload = dynloads[0]
    try:
        st = os.stat(os.path.join(stdlib, "os.py"))
    except OSError:
        return None
    h = 1469598103934665603
    try:
        names = sorted(os.fsencode(n) for n in os.listdir(dynload))
    except OSError:
        names = []
    for name in names:
        for byte in name + b"\n":
            h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return st.st_size, st.st_mtime_ns, h


def launcher_cfg(source, embedded):
    """launcher_cfg.h: this Python's version; for the embedded interpreter, the fingerprint of its
    installation and the frozen modules (or, for an editable install, the source tree)."""
    out = ["#define OCI_VERSION \"%d.%d\"\n" % sys.version_info[:2]]
    if source is not None:
        out.append("#define OCI_SOURCE %s\n" % c_string(os.fsencode(source)))
    if not embedded:
        return "".join(out)
    size, mtime_ns, dynload = fingerprint()
    out.append("#define OCI_FP_SIZE %dULL\n#define OCI_FP_MTIME_NS %dULL\n#define OCI_FP_DYNLOAD %dULL\n"
               % (size, mtime_ns, dynload))
    if source is not None:
        return "".join(out)
    mods = frozen_stdlib() + frozen_modules(PACKAGE)
    for i, (_, _, code) in enumerate(mods):
        out.append("static const unsigned char OCI_M%d[%d] =\n%s;\n" % (i, len(code), c_string(code)))
    out.append("static const struct _frozen OCI_FROZEN[] = {\n%s    {0, 0, 0, 0}\n};\n" % "".join(
        '    {.name = "%s", .code = OCI_M%d, .size = (int)sizeof OCI_M%d, .is_package = %d},\n'
        % (name, i, i, is_pkg) for i, (name, is_pkg, _) in enumerate(mods)))
    return "".join(out)


def static_libpython():
    """This installation's static libpython, or None."""
    cv = sysconfig.get_config_var
    static = os.path.join(cv("LIBPL") or "", cv("LIBRARY") or "")
    return static if static.endswith(".a") and os.path.isfile(static) else None


def link_variants():
    """How the embedded program may link this installation's static libpython, in order: the
    library into a non-PIE program (fewer pages relocated at start-up; also what a library not
    built position-independent, as Debian's libpython3.X.a, needs), its position-independent copy
    where it has one (Debian ships libpython3.X-pic.a beside it), then the library into the
    compiler's default (PIE) program."""
    static = static_libpython()
    pic = static[:-2] + "-pic.a"
    out = [(pic, [])] if os.path.isfile(pic) else []
    return [(static, ["-no-pie"])] + out + [(static, [])]


def compile_command(cc, tmp, exe, embedded, link=None):
    """The compiler command that builds the program; with ``embedded``, this installation's static
    libpython linked in as ``link`` (one of link_variants; only public C API: the standard
    embedding link)."""
    cv = sysconfig.get_config_var
    cmd = cc + ["-O2", "-s", "-I", tmp, "-o", exe, os.path.join(HERE, "cext", "launcher.c")]
    if not embedded:
        return cmd
    library, flags = link
    libs = shlex.split(cv("MODLIBS") or "") + shlex.split(cv("LIBS") or "") + \
        shlex.split(cv("SYSLIBS") or "") + shlex.split(cv("LINKFORSHARED") or "")
    # no run path: the program must not depend on where the building interpreter lives
    libs = [a for a in libs if not a.startswith(("-Wl,-rpath", "-Wl,-R", "-Wl,--enable-new-dtags"))]
    if not any("export-dynamic" in a for a in libs):  # extension modules resolve the C API from it
        libs.append("-Wl,--export-dynamic")
    return cmd[:1] + flags + ["-DOCI_EMBEDDED", "-I", cv("INCLUDEPY")] + cmd[1:] + [library] + libs


def build_launcher(out, source, announce):
    """Build the program at ``out``: with the interpreter embedded where this installation has a
    static libpython, else the plain program; False (the reason announced) where neither builds
    and runs."""
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    if not cc or not shutil.which(cc[0]):
        cc = ["cc"]
    if not shutil.which(cc[0]):
        announce("ociruntime: no C compiler: the `ociruntime` command is the script", 3)
        return False
    variants = [(True, link) for link in link_variants()] if static_libpython() and fingerprint() else []
    variants.append((False, None))
    problems = []
    for embedded, link in variants:
        with tempfile.TemporaryDirectory() as tmp:
            exe = os.path.join(tmp, "bin", "ociruntime")
            os.mkdir(os.path.dirname(exe))
            with open(os.path.join(tmp, "launcher_cfg.h"), "w", encoding="ascii") as f:
                f.write(launcher_cfg(source, embedded))
            r = subprocess.run(compile_command(cc, tmp, exe, embedded, link), capture_output=True, text=True)
            if r.returncode != 0:
                problems.append("building it %s failed: %s" % (
                    "with %s%s" % (os.path.basename(link[0]), " ".join([""] + link[1]))
                    if embedded else "without the interpreter", r.stderr.strip()[-1000:]))
                continue
            problem = probe(exe, tmp, source, embedded)
            if problem:
                problems.append("the built program does not run: %s" % problem)
                continue
            shutil.copyfile(exe, out)
            os.chmod(out, 0o755)
        if problems:
            announce("ociruntime: the program is built %s, after: %s" % (
                "with the interpreter" if embedded else "without the interpreter (it runs the installation's "
                "python)", "; ".join(problems)), 3 if not embedded else 2)
        return True
    announce("ociruntime: the `ociruntime` command is the script: %s" % "; ".join(problems), 3)
    return False


def probe(exe, tmp, source, embedded):
    """Run the built program as it will run, in a venv of this interpreter's installation (its
    bin/ beside a pyvenv.cfg, this installation's site-packages included): what goes wrong, or
    None.  The embedded program's venv has no interpreter of its own to run: it must run itself."""
    home = os.path.dirname(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    with open(os.path.join(tmp, "pyvenv.cfg"), "w", encoding="utf-8") as f:
        f.write("home = %s\ninclude-system-site-packages = true\n" % home)
    if not embedded:
        os.symlink(os.path.realpath(sys.executable), os.path.join(tmp, "bin", "python%d.%d" % sys.version_info[:2]))
    # the package where the plain program looks for it (the venv's site-packages): this tree's
    site = os.path.join(tmp, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
    os.makedirs(site)
    os.symlink(PACKAGE if source is None else os.path.join(source, "ociruntime"), os.path.join(site, "ociruntime"))
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
        if argv[1] == "--version" and source is None and embedded != ("(built into the program)" in r.stdout):
            return "it ran %s" % r.stdout.strip().splitlines()[-1]
    if not os.path.isfile(os.path.join(bundle, "config.json")):
        return "spec wrote no config.json"
    return None


# the shim: cext/build_shim.py (cffi, API mode, out of line), built into ociruntime._shim
setup(cffi_modules=["cext/build_shim.py:ffibuilder"], scripts=["tools/ociruntime"],
      cmdclass={"build_scripts": build_scripts})
