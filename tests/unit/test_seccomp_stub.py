"""security/enosys.py: the -ENOSYS stub, run by a classic-BPF interpreter on seccomp_data the
machine could not produce (x32, aarch64, s390x, i386), on the programs compile() builds and on
the stub alone; and the compiled-filter cache, which must not answer with a program built before
the stub."""

import errno
import os
import struct

import pytest

from ociruntime.security import enosys, seccomp

X86_64, I386, AARCH64, S390X = 0xC000003E, 0x40000003, 0xC00000B7, 0x80000016
X32 = 0x40000000
ALLOW, KILL_THREAD = 0x7FFF0000, 0x00000000
EPERM_RET, ENOSYS_RET = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
SENTINEL = 0x7FFC0000          # SECCOMP_RET_LOG: "the stub fell through to what follows it"


def run_bpf(prog, nr, arch, args=(0,) * 6, ip=0):
    """Interpret a seccomp cBPF program (the opcodes libseccomp and the stub use) on one call."""
    data = struct.pack("=IIQ6Q", nr & 0xFFFFFFFF, arch, ip, *args)
    insns = list(struct.iter_unpack("=HBBI", prog))
    a = x = 0
    mem = [0] * 16
    pc = 0
    for _ in range(100000):
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if code == 0x20:                                  # ld [k]
            a = struct.unpack_from("=I", data, k)[0]
        elif code == 0x00:                                # ld #k
            a = k
        elif code == 0x60:                                # ld M[k]
            a = mem[k]
        elif code == 0x61:                                # ldx M[k]
            x = mem[k]
        elif code == 0x02:                                # st M[k]
            mem[k] = a
        elif code == 0x03:                                # stx M[k]
            mem[k] = x
        elif code == 0x54:                                # and #k
            a &= k
        elif code == 0x05:                                # ja k
            pc += k
        elif cls == 0x05:
            op, src = code & 0xF0, x if code & 0x08 else k
            taken = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
            pc += jt if taken else jf
        elif code == 0x06:                                # ret k
            return k
        elif code == 0x16:                                # ret a
            return a
        else:
            raise AssertionError("opcode 0x%x not interpreted" % code)
    raise AssertionError("no return")


def profile(names, default="SCMP_ACT_ERRNO", arches=None, **kw):
    p = dict({"defaultAction": default, "syscalls": [{"names": list(names), "action": "SCMP_ACT_ALLOW"}]}, **kw)
    if arches:
        p["architectures"] = arches
    return p


DOCKER = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="the native architecture is x86_64's here")


@pytest.mark.parametrize("arches", [None, ["SCMP_ARCH_X86_64"], DOCKER])
def test_native_x86_64(arches):
    """getrandom is the largest (318): 319 and 1000 get ENOSYS, 200 the default, 318 is allowed."""
    bpf = seccomp.compile(profile(["read", "write", "getrandom"], arches=arches), cache=False).bpf
    assert run_bpf(bpf, 318, X86_64) == ALLOW
    assert run_bpf(bpf, 200, X86_64) == EPERM_RET
    assert run_bpf(bpf, 319, X86_64) == ENOSYS_RET
    assert run_bpf(bpf, 1000, X86_64) == ENOSYS_RET
    assert run_bpf(bpf, -1, X86_64) != ALLOW            # the x32 bit: to the filter


def test_x32_and_i386_have_their_own_bounds():
    bpf = seccomp.compile(profile(["read", "write", "getrandom"], arches=DOCKER), cache=False).bpf
    # x32: the same names with the x32 bit; x86_64's bound does not apply to them
    assert run_bpf(bpf, X32 | 318, X86_64) == ALLOW
    assert run_bpf(bpf, X32 | 200, X86_64) == EPERM_RET
    assert run_bpf(bpf, X32 | 319, X86_64) == ENOSYS_RET
    # i386: getrandom is 355 there
    assert run_bpf(bpf, 355, I386) == ALLOW
    assert run_bpf(bpf, 340, I386) == EPERM_RET
    assert run_bpf(bpf, 356, I386) == ENOSYS_RET
    # an architecture the profile does not list: the filter's bad-arch action, not ENOSYS
    assert run_bpf(bpf, 1000, AARCH64) == KILL_THREAD


def test_x32_numbers_without_x32_in_the_profile_go_to_the_filter():
    bpf = seccomp.compile(profile(["read", "write", "getrandom"], arches=["SCMP_ARCH_X86_64"]), cache=False).bpf
    assert run_bpf(bpf, X32 | 1000, X86_64) not in (ENOSYS_RET, ALLOW)


def test_aarch64_listed():
    """aarch64's getrandom is 278: numbers are that architecture's, not the native one's."""
    bpf = seccomp.compile(profile(["read", "getrandom"], arches=["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]),
                          cache=False).bpf
    assert run_bpf(bpf, 278, AARCH64) == ALLOW
    assert run_bpf(bpf, 300, AARCH64) == ENOSYS_RET
    assert run_bpf(bpf, 300, X86_64) == EPERM_RET


@pytest.mark.parametrize("modes,calls", [
    ({enosys.SCMP_ARCH_X32: X32 | 100}, [(X32 | 100, SENTINEL), (X32 | 101, ENOSYS_RET), (5000, SENTINEL)]),
    ({X86_64: 100}, [(100, SENTINEL), (101, ENOSYS_RET), (X32 | 5000, SENTINEL)]),
    ({X86_64: 100, enosys.SCMP_ARCH_X32: X32 | 50},
     [(101, ENOSYS_RET), (100, SENTINEL), (X32 | 50, SENTINEL), (X32 | 51, ENOSYS_RET)]),
])
def test_stub_alone_x86_64_modes(modes, calls):
    prog = enosys.stub(modes) + struct.pack("=HBBI", 0x06, 0, 0, SENTINEL)
    for nr, want in calls:
        assert run_bpf(prog, nr, X86_64) == want, hex(nr)
    assert run_bpf(prog, 5000, I386) == SENTINEL


def test_stub_alone_s390x_multiplexer():
    """On s390x a number the kernel does not know reaches the filter as 0: ENOSYS too."""
    prog = enosys.stub({S390X: 400}) + struct.pack("=HBBI", 0x06, 0, 0, SENTINEL)
    assert run_bpf(prog, 0, S390X) == ENOSYS_RET
    assert run_bpf(prog, 1, S390X) == SENTINEL
    assert run_bpf(prog, 401, S390X) == ENOSYS_RET
    assert enosys.stub({}) == b""


@pytest.mark.parametrize("default,errno_ret,at_1000", [
    ("SCMP_ACT_ERRNO", None, ENOSYS_RET), ("SCMP_ACT_ERRNO", errno.EACCES, ENOSYS_RET),
    ("SCMP_ACT_KILL", None, ENOSYS_RET), ("SCMP_ACT_KILL_PROCESS", None, ENOSYS_RET),
    ("SCMP_ACT_TRAP", None, ENOSYS_RET),
    # no stub: the default answers
    ("SCMP_ACT_ERRNO", errno.ENOSYS, None), ("SCMP_ACT_ALLOW", None, ALLOW), ("SCMP_ACT_LOG", None, 0x7FFC0000),
    ("SCMP_ACT_TRACE", None, 0x7FF00000 | errno.EPERM),
])
def test_default_actions(monkeypatch, default, errno_ret, at_1000):
    p = profile(["getppid"], default=default)
    if default in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"):
        p["syscalls"][0]["action"] = "SCMP_ACT_ERRNO"
    if errno_ret is not None:
        p["defaultErrnoRet"] = errno_ret
    bpf = seccomp.compile(p, cache=False).bpf
    assert run_bpf(bpf, 1000, X86_64) == (at_1000 or ENOSYS_RET)
    monkeypatch.setattr(enosys, "wanted", lambda _: False)
    assert (seccomp.compile(p, cache=False).bpf == bpf) == (at_1000 != ENOSYS_RET)


def test_every_name_counts_whatever_its_action():
    """A rule with the default action is not given to libseccomp but its syscall still bounds the
    stub; a name libseccomp does not know counts for nothing."""
    p = profile(["read"])
    p["syscalls"] += [{"names": ["getrandom"], "action": "SCMP_ACT_ERRNO"},
                      {"names": ["oci_test_no_such_syscall"], "action": "SCMP_ACT_ALLOW"}]
    bpf = seccomp.compile(p, cache=False).bpf
    assert run_bpf(bpf, 318, X86_64) == EPERM_RET
    assert run_bpf(bpf, 319, X86_64) == ENOSYS_RET


def test_cache_key_changes_with_the_stub(tmp_path, monkeypatch):
    """An entry a build without the stub cached (key format 1) is not served: compile() builds
    the stubbed program, caches it under the new key, and serves that one next time."""
    import marshal
    from hashlib import sha256

    from ociruntime import jsonio
    if os.geteuid() != 0:
        pytest.skip("the cache is root's only")
    monkeypatch.setattr(seccomp, "CACHE_DIR", str(tmp_path))
    p = profile(["read", "write", "getrandom"], arches=DOCKER)
    stale = seccomp.compile(p, cache=False)
    old_key = sha256(jsonio.dumps([1, False, p]).encode()).hexdigest()
    stubless = stale.bpf[len(enosys.stub({X86_64: 318, I386: 355, enosys.SCMP_ARCH_X32: X32 | 318})):]
    (tmp_path / old_key).write_bytes(marshal.dumps((stubless, 0, "", "")))
    first = seccomp.compile(p)
    assert run_bpf(first.bpf, 1000, X86_64) == ENOSYS_RET
    assert len(os.listdir(tmp_path)) == 2
    assert seccomp.compile(p) == first
