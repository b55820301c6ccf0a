"""The -ENOSYS stub prepended to a seccomp filter: syscalls newer than the profile get ENOSYS.

A default-deny profile (docker's, Kubernetes' RuntimeDefault: SCMP_ACT_ERRNO with EPERM) would
answer EPERM to a syscall it has never heard of, and libcs only fall back to the older call on
ENOSYS (clone3 -> clone, faccessat2 -> faccessat, fchmodat2 -> fchmodat).  As runc does, every
syscall numbered above the largest one the profile names gets ENOSYS, per architecture; the
numbers up to it keep the profile's answers.  Rules (runc's, libcontainer/seccomp/patchbpf):

- no stub when the default action lets syscalls through (ALLOW, LOG, TRACE: a tracer handles
  unknown syscalls itself), nor when the default already answers ENOSYS;
- the bound of an architecture is the largest number libseccomp gives, on that architecture, to
  any name of any rule, whatever its action (a rule with the default action counts, although it is
  not added to the filter); names it does not know, or that are pseudo-syscalls there, do not count;
- the architectures are the profile's and, always, the native one (libseccomp's filter always
  holds it; runc 1.1.15/1.2 do the same, runc 1.1.5 made no stub for a profile without any);
- x86_64 and x32 share AUDIT_ARCH_X86_64 and differ by the x32 bit (1 << 30) of the number:
  each mode gets its own bound, and the numbers of a mode the profile does not list go to the
  filter (which refuses the architecture);
- s390 and s390x: syscall 0 is the multiplexer a number unknown to the kernel ends up as, so it
  gets ENOSYS too.

The stub only jumps forwards into the filter libseccomp exported, which starts right after it and
uses relative jumps only, so the program is the stub's bytes followed by libseccomp's.
"""
import struct
from errno import ENOSYS

RET_ERRNO = 0x00050000
X32_BIT = 0x40000000
ARCH_X86_64 = 0xC000003E       # AUDIT_ARCH_X86_64, also the kernel's arch for x32 tasks
SCMP_ARCH_X32 = 0x4000003E     # libseccomp's own token for x32 (not an AUDIT_ARCH value)
ARCH_S390, ARCH_S390X = 0x00000016, 0x80000016

# classic BPF opcodes (linux/filter.h)
LD_W_ABS, JA, JEQ, JGT, JSET, RET = 0x20, 0x05, 0x15, 0x25, 0x45, 0x06
OFF_NR, OFF_ARCH = 0, 4        # struct seccomp_data

ALLOWING = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")


def wanted(seccomp):
    """Whether the profile's default action calls for the stub."""
    action = seccomp.get("defaultAction")
    if action in ALLOWING:
        return False
    return not (action == "SCMP_ACT_ERRNO" and seccomp.get("defaultErrnoRet") == ENOSYS)


def bounds(lib, seccomp, arch_tokens):
    """{libseccomp arch token: largest syscall number the profile names there}, for the given
    tokens (the profile's and the native one), leaving out architectures where it names none."""
    names = {n for sc in seccomp.get("syscalls") or () for n in sc.get("names") or ()}
    encoded = [n.encode() for n in sorted(names)]
    out = {}
    for token in arch_tokens:
        if token in out:
            continue
        top = max((lib.oci_scmp_syscall_resolve_arch(token, n) for n in encoded), default=-1)
        if top > 0:
            out[token] = top
    return out


def _section(audit_arch, modes):
    """The checks for one kernel architecture: [(code, jt, jf, k)], jumps resolved inside the
    section except the one into the filter (k None: filled by stub()).  ``modes`` maps "x86_64",
    "x32" or None (any other architecture) to its bound."""
    # labels: the section ends with "filter" (ja into the filter) then "enosys" (ret ENOSYS)
    body = [("ld", OFF_NR)]
    if audit_arch in (ARCH_S390, ARCH_S390X):
        body.append((JEQ, 0, "enosys", "next"))
    if audit_arch == ARCH_X86_64:
        a64, a32 = modes.get("x86_64"), modes.get("x32")
        if a64 is not None and a32 is not None:
            body += [(JSET, X32_BIT, "x32", "next"),
                     (JGT, a64, "enosys", "filter"),
                     "x32", (JGT, a32, "enosys", "filter")]
        elif a64 is not None:
            body += [(JSET, X32_BIT, "filter", "next"), (JGT, a64, "enosys", "filter")]
        else:
            body += [(JSET, X32_BIT, "next", "filter"), (JGT, a32, "enosys", "filter")]
    else:
        body.append((JGT, modes[None], "enosys", "filter"))
    body += ["filter", ("ja",), "enosys", ("ret",)]

    labels, insns = {}, []
    for item in body:
        if isinstance(item, str):
            labels[item] = len(insns)
        else:
            insns.append(item)
    out = []
    for i, ins in enumerate(insns):
        if ins[0] == "ld":
            out.append((LD_W_ABS, 0, 0, ins[1]))
        elif ins[0] == "ja":
            out.append((JA, 0, 0, None))
        elif ins[0] == "ret":
            out.append((RET, 0, 0, RET_ERRNO | ENOSYS))
        else:
            code, k, jt, jf = ins
            out.append((code, 0 if jt == "next" else labels[jt] - i - 1,
                        0 if jf == "next" else labels[jf] - i - 1, k))
    return out


def stub(arch_bounds):
    """The stub's BPF bytes (native endian struct sock_filter) for {arch token: bound}; b"" when
    there is nothing to check."""
    kernel = {}                                   # AUDIT_ARCH -> {mode: bound}, in the tokens' order
    for token, top in arch_bounds.items():
        if token == SCMP_ARCH_X32:
            kernel.setdefault(ARCH_X86_64, {})["x32"] = top
        elif token == ARCH_X86_64:
            kernel.setdefault(ARCH_X86_64, {})["x86_64"] = top
        else:
            kernel.setdefault(token, {})[None] = top
    if not kernel:
        return b""
    prog = [(LD_W_ABS, 0, 0, OFF_ARCH)]
    for audit_arch, modes in kernel.items():
        section = _section(audit_arch, modes)
        # another architecture skips the section; the accumulator still holds the arch then
        prog.append((JEQ, 0, len(section), audit_arch))
        prog += section
    end = len(prog)
    return b"".join(struct.pack("=HBBI", code, jt, jf, end - i - 1 if k is None else k)
                    for i, (code, jt, jf, k) in enumerate(prog))
