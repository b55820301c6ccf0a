"""The shim's cffi binding: API mode, out of line, compiled at install (setup.py's cffi_modules).

The cdef is cext/shim.h itself (its preprocessor lines dropped), so a function added to shim.c and
declared in shim.h is bound with no more code.  The generated module is ``ociruntime._shim``;
ociruntime/_sys.py is its only importer.

The trampoline (cext/trampoline.c) is compiled here first, static and without libc, and its bytes
become an array in the module's source (oci_trampoline_code), which the shim writes into a sealed
memfd for every final execve (cext/shim.c, oci_trampoline).
"""
import os
import shlex
import shutil
import subprocess
import sysconfig
import tempfile

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))

TRAMPOLINE_FLAGS = ["-Os", "-nostdlib", "-static", "-ffreestanding", "-fno-builtin", "-fno-stack-protector",
                    "-fno-asynchronous-unwind-tables", "-fno-pie", "-no-pie", "-Wl,--build-id=none",
                    "-Wl,-z,norelro", "-Wl,-z,noseparate-code", "-s"]


def cdef_of(header):
    """shim.h without its preprocessor lines (include guard, includes): what cffi parses."""
    with open(header, encoding="utf-8") as f:
        return "".join(line for line in f if not line.lstrip().startswith("#"))


def compiler():
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not cc or not shutil.which(cc[0]):
        cc = ["cc"]
    return cc


def trampoline_bytes():
    """cext/trampoline.c built as a static program; its file's bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "trampoline")
        r = subprocess.run(compiler() + TRAMPOLINE_FLAGS + ["-o", out, os.path.join(HERE, "trampoline.c")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("building cext/trampoline.c failed: %s" % r.stderr.strip()[-2000:])
        with open(out, "rb") as f:
            data = f.read()
    if not data.startswith(b"\x7fELF"):
        raise RuntimeError("cext/trampoline.c did not build into an ELF program")
    return data


def c_array(data):
    lines = []
    for i in range(0, len(data), 24):
        lines.append(",".join(str(b) for b in data[i:i + 24]))
    return ("const unsigned char oci_trampoline_code[] = {\n%s\n};\n"
            "const size_t oci_trampoline_size = sizeof oci_trampoline_code;\n" % ",\n".join(lines))


ffibuilder = FFI()
ffibuilder.cdef(cdef_of(os.path.join(HERE, "shim.h")))
# Build dependency: seccomp.h (Debian: libseccomp-dev), for its types and constants; libseccomp.so.2
# is not linked: the shim dlopens it on first use (oci_scmp_open), so it is needed at run time only
# by containers with seccomp.
ffibuilder.set_source(
    "ociruntime._shim",
    '#include <stddef.h>\n#include "shim.h"\n' + c_array(trampoline_bytes()),
    sources=[os.path.relpath(os.path.join(HERE, "shim.c"))],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=["-O2", "-Wall"],
    libraries=["dl"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
