"""Install-time steps; everything else is in pyproject.toml.

* the cffi shim (cext/);
* the `ociruntime` command (tools/ociruntime): written with this interpreter's absolute path and
  `-IS` on its first line (pip rewrites a `#!python` line but drops its options, and its console
  scripts import through site, which costs ~40 ms here), and, for an editable install, the source
  tree it imports from;
* bytecode of the package in the source tree (an editable install imports from there, and
  PYTHONDONTWRITEBYTECODE may be set where it runs; a normal install is compiled by pip).
"""
import compileall
import os
import sys

from setuptools import setup
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
            out = os.path.join(self.build_dir, os.path.basename(script))
            with open(out, "w", encoding="utf-8") as f:
                f.write("".join(lines))
            os.chmod(out, 0o755)
        compileall.compile_dir(os.path.join(HERE, "ociruntime"), quiet=1)


class build_py(_build_py):
    def run(self):
        super().run()
        compileall.compile_dir(os.path.join(HERE, "ociruntime"), quiet=1)


setup(cffi_modules=["cext/build.py:ffibuilder"], scripts=["tools/ociruntime"],
      cmdclass={"build_scripts": build_scripts, "build_py": build_py})
