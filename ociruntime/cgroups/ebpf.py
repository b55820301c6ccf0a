"""Device rules on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program built here, byte by byte, and
attached to the container's cgroup with bpf(2) (through the shim's ``oci_bpf*``).

The rules are first reduced the way the v1 kernel reduces devices.allow/deny writes (an emulator:
a default, allow or deny, reset by every type-"a" rule, plus exceptions to it), starting from
deny-all as runc does.  The program then checks each exception and falls back to the default:

  whitelist (default deny): allowed if an exception covers the type, major, minor and every bit
                            of the requested access;
  blacklist (default allow): denied if an exception matches the device and any requested bit
                            (the v1 kernel's partial match).

The ctx is struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}, with the device
type (1 block, 2 char) in the low 16 bits of access_type and the access (1 mknod, 2 read,
4 write) in the high ones.  The program returns 1 to allow, 0 to refuse (EPERM).
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)
import struct

from ociruntime import _sys as S
from ociruntime.cgroups.devices import rules as device_rules
from ociruntime.errors import CgroupError

BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH = 5, 8, 9
BPF_PROG_GET_FD_BY_ID, BPF_PROG_QUERY = 13, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

_TYPES = {"b": 1, "c": 2}
_ACCESS = {"m": 1, "r": 2, "w": 4}
RWM = 7


def _access(s):
    bits = 0
    for ch in s:
        bits |= _ACCESS.get(ch, 0)
    return bits


def emulate(rules):
    """(default_allow, {(type, major, minor): access bits}) after the rules, from deny-all."""
    default_allow, exc = False, {}
    for allow, t, major, minor, access in rules:
        if t == "a":
            default_allow, exc = allow, {}
            continue
        key = (t, None if major is None or major < 0 else major, None if minor is None or minor < 0 else minor)
        bits = _access(access)
        if allow == default_allow:
            left = exc.get(key, 0) & ~bits
            if left:
                exc[key] = left
            else:
                exc.pop(key, None)
        else:
            exc[key] = exc.get(key, 0) | bits
    return default_allow, exc


# -- instruction encoding: (opcode, dst, src, off, imm), 8 bytes each

def _ins(op, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", op, (src << 4) | dst, off, imm)


LDXW, AND32_K, RSH32_K, MOV32_X, MOV64_K, JNE_K, JEQ_K, EXIT = 0x61, 0x54, 0x74, 0xbc, 0xb7, 0x55, 0x15, 0x95


def program(rules):
    """The program's instructions (bytes) for the rule list (devices.rules() tuples)."""
    default_allow, exc = emulate(rules)
    out = [_ins(LDXW, 2, 1, 0), _ins(AND32_K, 2, imm=0xFFFF),   # R2 = type
           _ins(LDXW, 3, 1, 0), _ins(RSH32_K, 3, imm=16),       # R3 = requested access
           _ins(LDXW, 4, 1, 4),                                 # R4 = major
           _ins(LDXW, 5, 1, 8)]                                 # R5 = minor
    action = 0 if default_allow else 1
    for (t, major, minor), bits in sorted(exc.items(), key=lambda kv: (kv[0][0], kv[0][1] or -1, kv[0][2] or -1)):
        # each check jumps to the end of this block ("next"): tests are (op, reg, imm) or access
        tests = [("type", t)]
        if bits != RWM:
            tests.append(("access", bits))
        if major is not None:
            tests.append(("major", major))
        if minor is not None:
            tests.append(("minor", minor))
        size = sum(3 if k == "access" else 1 for k, _ in tests) + 2
        block, pos = [], 0
        for kind, val in tests:
            if kind == "access":
                block.append(_ins(MOV32_X, 1, 3))
                block.append(_ins(AND32_K, 1, imm=val))
                pos += 3
                if default_allow:   # blacklist: a match needs an overlap
                    block.append(_ins(JEQ_K, 1, off=size - pos, imm=0))
                else:               # whitelist: every requested bit must be allowed
                    block.append(struct.pack("<BBhi", 0x5d, (3 << 4) | 1, size - pos, 0))  # JNE R1, R3
            else:
                reg, imm = (2, _TYPES[val]) if kind == "type" else (4 if kind == "major" else 5, val)
                pos += 1
                block.append(_ins(JNE_K, reg, off=size - pos, imm=imm))
        block += [_ins(MOV64_K, 0, imm=action), _ins(EXIT)]
        out += block
    out += [_ins(MOV64_K, 0, imm=1 if default_allow else 0), _ins(EXIT)]
    return b"".join(out)


def load(insns, license=b"Apache"):
    """BPF_PROG_LOAD; returns the program fd.  On refusal the verifier's log is in the message."""
    ins = bytes(insns)
    for log_level in (0, 1):
        log = bytearray(65536) if log_level else None
        try:
            return S.bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, ins, bytes(license), b"oci_devices", log, log_level)
        except OSError as e:
            if log_level or e.errno not in (13, 22):   # retry once with the verifier's log
                detail = bytes(log or b"").split(b"\0", 1)[0].decode(errors="replace").strip().replace("\n", "; ")
                raise CgroupError("load device cgroup eBPF program: %s%s" % (
                    e.strerror, (": " + detail) if detail else "")) from None


def attached(dirfd):
    """Ids of the device programs attached to the cgroup."""
    return S.bpf_prog_query(dirfd, BPF_CGROUP_DEVICE)


def attach(cgdir, prog_fd):
    """Attach the program to cgdir and detach the ones that were there (an update replaces)."""
    try:
        dirfd = os.open(cgdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError("open cgroup %s: %s" % (cgdir, e.strerror)) from None
    try:
        old = attached(dirfd)
        S.bpf(BPF_PROG_ATTACH, bytearray(struct.pack("<IIIII", dirfd, prog_fd, BPF_CGROUP_DEVICE,
                                                     BPF_F_ALLOW_MULTI, 0)))
        for pid in old:
            ofd = S.bpf(BPF_PROG_GET_FD_BY_ID, bytearray(struct.pack("<III", pid, 0, 0)))
            try:
                S.bpf(BPF_PROG_DETACH, bytearray(struct.pack("<IIIII", dirfd, ofd, BPF_CGROUP_DEVICE, 0, 0)))
            finally:
                os.close(ofd)
    except OSError as e:
        raise CgroupError("attach device cgroup eBPF program to %s: %s" % (cgdir, e.strerror)) from None
    finally:
        os.close(dirfd)


def apply_v2(cgdir, resources):
    rules = device_rules(resources)
    try:
        fd = load(program(rules))
        try:
            attach(cgdir, fd)
        finally:
            os.close(fd)
    except CgroupError:
        default_allow, exc = emulate(rules)
        if default_allow and not exc:
            return  # allow-all needs no program (runc skips the error the same way)
        if os.geteuid() != 0:
            # rootless: loading a program needs privileges the user does not have, and the
            # devices a rootless container can reach are the user's anyway; as runc, ignored
            return
        raise
