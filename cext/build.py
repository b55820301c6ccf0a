"""cffi API-mode build of ociruntime._shim from cext/shim.cdef and cext/shim.c.

Build dependency: seccomp.h (Debian: libseccomp-dev).  libseccomp.so.2 is not linked: the shim
dlopens it on first use (oci_scmp_open), so it is needed at run time only by containers with seccomp."""
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))

ffibuilder = FFI()
with open(os.path.join(HERE, "shim.cdef")) as f:
    ffibuilder.cdef(f.read())
with open(os.path.join(HERE, "shim.c")) as f:
    ffibuilder.set_source("ociruntime._shim", "#include <stdint.h>\n" + f.read(),
                          include_dirs=[HERE], extra_compile_args=["-O2", "-Wall"])

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=os.path.join(HERE, "..", "build"), verbose=True)
