"""linux.seccomp -> a BPF program, built with libseccomp (what runc and crun use).

The parent compiles the filter before fork (``compile``), so a bad profile is refused before
anything exists and the init only carries bytes; the C shim loads them with seccomp(2) as the
last step before execve (before the credential change when noNewPrivileges is false: without
no_new_privs loading a filter needs CAP_SYS_ADMIN, as in runc).

Policy, compared with runc 1.1 and crun 1.8:
- syscall names libseccomp does not know are skipped (both do: profiles such as podman's list
  syscalls newer than the library); the annotation ``run.oci.seccomp_fail_unknown_syscall``
  (crun's) makes them an error instead;
- an unknown action, operator, architecture or flag is an error;
- ``errnoRet``/``defaultErrnoRet`` with an action that takes no errno is an error (the spec's MUST,
  crun; runc ignores it); SCMP_ACT_ERRNO and SCMP_ACT_TRACE default to EPERM;
- a rule whose action is the default action is skipped (libseccomp refuses it; runc skips it);
- several conditions on the same argument become one rule per condition (runc's behaviour;
  libseccomp cannot AND two conditions on one argument);
- syscalls numbered above the largest one the profile names get ENOSYS, per architecture, unless
  the default action lets syscalls through (runc's -ENOSYS stub: security/enosys.py);
- SCMP_ACT_NOTIFY: the filter is loaded with SECCOMP_FILTER_FLAG_NEW_LISTENER and the shim sends
  the listener fd, with the container process state, to ``listenerPath`` over SCM_RIGHTS.  The
  socket is connected by the parent at create (a missing agent fails create).  NOTIFY may not be
  the default action nor apply to sendmsg/send (they deliver the fd: runc refuses "write", the
  syscall its init delivers it with).
"""
import os

from ociruntime.errors import ConfigError

ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
}
WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
             "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
FLAG_TSYNC = 1
FLAG_LOG = 2
FLAG_SPEC_ALLOW = 4
FLAG_NEW_LISTENER = 8
FLAG_WAIT_KILLABLE_RECV = 32
FLAGS = {
    # TSYNC syncs the filter to the other threads: the process is single-threaded at execve, so it
    # is accepted and not passed (it also may not be combined with NEW_LISTENER)
    "SECCOMP_FILTER_FLAG_TSYNC": 0,
    "SECCOMP_FILTER_FLAG_LOG": FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": FLAG_WAIT_KILLABLE_RECV,
}
EPERM = 1
ELIBACC = 79
FAIL_UNKNOWN = "run.oci.seccomp_fail_unknown_syscall"
NOTIFY_REFUSED = ("sendmsg", "send")
OCI_VERSION = "1.0.2"


class Filter(tuple):
    """(bpf, flags, listener_path, metadata): the program, its seccomp(2) filter flags, the
    agent's socket ("" unless SCMP_ACT_NOTIFY is used) and the metadata sent to it."""
    __slots__ = ()

    def __new__(cls, bpf, flags, listener_path, metadata):
        return tuple.__new__(cls, (bpf, flags, listener_path, metadata))

    bpf = property(lambda self: self[0])
    flags = property(lambda self: self[1])
    listener_path = property(lambda self: self[2])
    metadata = property(lambda self: self[3])


def _err(where, msg):
    return ConfigError("config.json: linux.seccomp%s: %s" % (where, msg))


def _action(name, errno_ret, where):
    if name not in ACTIONS:
        raise _err(where, 'unknown action "%s"' % name)
    act = ACTIONS[name]
    if name in WITH_ERRNO:
        return act | ((EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if errno_ret is not None:
        raise _err(where, "errno return code %d given for %s, which returns no errno" % (errno_ret, name))
    return act


def _lib():
    from ociruntime import _sys
    try:
        _sys.scmp_open()
    except OSError as e:
        raise ConfigError("linux.seccomp: libseccomp (libseccomp.so.2) cannot be loaded: %s" % e.strerror) from None
    return _sys


CACHE_DIR = "/run/ociruntime-seccomp"
CACHE_MAX = 64
# part of the key: a change to what a profile compiles into (2: the -ENOSYS stub) must not be
# answered with a program an older build cached
CACHE_FORMAT = 2


def compile(seccomp, annotations=None, cache=True):  # noqa: A001 - the module's verb
    """Check linux.seccomp and build its BPF program; None when there is no seccomp section.

    libseccomp takes longer than the rest of create for podman's profile on three architectures,
    and clients pass the same profile every time: results are kept in CACHE_DIR (tmpfs, root only), keyed by a hash of
    the section.  Only a profile that compiled is cached, so a hit needs no checks."""
    if not seccomp:
        return None
    fail_unknown = (annotations or {}).get(FAIL_UNKNOWN, "") not in ("", "0", "false")
    key = None
    if cache and os.geteuid() == 0:
        from ociruntime import jsonio
        sha256 = _sha256()
        key = sha256(jsonio.dumps([CACHE_FORMAT, fail_unknown, seccomp]).encode()).hexdigest()
        hit = _cache_get(key)
        if hit is not None:
            return hit
    filt = _compile(seccomp, fail_unknown)
    if key is not None:
        _cache_put(key, filt)
    return filt


def _cache_get(key):
    import marshal
    try:
        with open(os.path.join(CACHE_DIR, key), "rb") as f:
            return Filter(*marshal.loads(f.read()))
    except (OSError, ValueError, EOFError, TypeError):
        return None


def _cache_put(key, filt):
    import marshal
    try:
        os.makedirs(CACHE_DIR, 0o700, exist_ok=True)
        names = os.listdir(CACHE_DIR)
        if len(names) >= CACHE_MAX:            # profiles rarely vary: start over rather than track use
            for n in names:
                os.unlink(os.path.join(CACHE_DIR, n))
        tmp = os.path.join(CACHE_DIR, ".%s.%d" % (key, os.getpid()))
        with open(tmp, "wb") as f:
            f.write(marshal.dumps(tuple(filt)))
        os.rename(tmp, os.path.join(CACHE_DIR, key))
    except OSError:
        pass                                    # a cache only


def _sha256():
    """hashlib's sha256 from its built-in module (3.11: _sha256, 3.12+: _sha2), without hashlib,
    which loads OpenSSL first."""
    try:
        from _sha256 import sha256
    except ImportError:
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256
    return sha256


def _compile(seccomp, fail_unknown):
    S = _lib()
    lib = S.lib
    default_name = seccomp.get("defaultAction")
    if default_name == "SCMP_ACT_NOTIFY":
        raise _err(".defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    default = _action(default_name, seccomp.get("defaultErrnoRet"), ".defaultAction")
    flags = 0
    for f in seccomp.get("flags") or ():
        if f not in FLAGS:
            raise _err(".flags", 'unknown flag "%s"' % f)
        flags |= FLAGS[f]
    rules, notify = _rules(S, seccomp.get("syscalls") or (), default, fail_unknown)
    listener = seccomp.get("listenerPath") or ""
    if notify:
        if not listener:
            raise _err(".listenerPath", "SCMP_ACT_NOTIFY needs a listenerPath")
        flags |= FLAG_NEW_LISTENER
    else:
        listener = ""
        flags &= ~FLAG_WAIT_KILLABLE_RECV      # only means something to a listener (EINVAL without)
    if flags and not S.seccomp_flags_ok(flags):
        raise _err(".flags", "the kernel does not support these flags: %s" % ", ".join(seccomp.get("flags") or ()))

    ctx = lib.oci_scmp_init(default)
    if not ctx:
        raise _err(".defaultAction", "libseccomp refused the default action")
    tokens = []
    try:
        for i, arch in enumerate(seccomp.get("architectures") or ()):
            token = lib.oci_scmp_arch_resolve(arch[len("SCMP_ARCH_"):].lower().encode()) \
                if arch.startswith("SCMP_ARCH_") else 0
            if not token:
                raise _err(".architectures[%d]" % i, 'unknown architecture "%s" (libseccomp %d.%d.%d)'
                           % ((arch,) + S.scmp_open()))
            tokens.append(token)
            ret = lib.oci_scmp_arch_add(ctx, token)
            if ret < 0 and ret != -17:         # EEXIST: the native one is there from the start
                raise _err(".architectures[%d]" % i, "%s: %s" % (arch, os.strerror(-ret)))
        for where, name, action, nr, conds in rules:
            ret = S.scmp_rule_add(ctx, action, nr, conds)
            if ret < 0:
                raise _err(where, "adding the rule for %s: %s" % (name, os.strerror(-ret)))
        fd = os.memfd_create("seccomp", os.MFD_CLOEXEC)
        try:
            ret = lib.oci_scmp_export_bpf(ctx, fd)
            if ret < 0:
                raise _err("", "exporting the filter: %s" % os.strerror(-ret))
            size = os.lseek(fd, 0, os.SEEK_CUR)
            bpf = os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.oci_scmp_release(ctx)
    from ociruntime.security import enosys     # a cache miss only
    if enosys.wanted(seccomp):
        bpf = enosys.stub(enosys.bounds(lib, seccomp, tokens + [lib.oci_scmp_arch_native()])) + bpf
    if len(bpf) // 8 > 0xFFFF:
        raise _err("", "the filter has %d instructions, more than seccomp(2) takes" % (len(bpf) // 8))
    return Filter(bpf, flags, listener, seccomp.get("listenerMetadata") or "")


def _rules(S, syscalls, default, fail_unknown):
    """[(where, name, action, syscall number, [(arg, op, a, b)])] and whether NOTIFY is used."""
    lib = S.lib
    out, notify, numbers = [], False, {}
    for i, sc in enumerate(syscalls):
        where = ".syscalls[%d]" % i
        action = _action(sc.get("action"), sc.get("errnoRet"), where + ".action")
        if sc.get("action") == "SCMP_ACT_NOTIFY":
            notify = True
            bad = [n for n in sc.get("names") or () if n in NOTIFY_REFUSED]
            if bad:
                raise _err(where, "SCMP_ACT_NOTIFY cannot be used for %s (it delivers the listener fd)" % bad[0])
        conds = []
        for j, a in enumerate(sc.get("args") or ()):
            op = OPERATORS.get(a.get("op"))
            if op is None:
                raise _err("%s.args[%d].op" % (where, j), 'unknown operator "%s"' % a.get("op"))
            if not 0 <= a["index"] <= 5:
                raise _err("%s.args[%d].index" % (where, j), "%d is not a syscall argument (0-5)" % a["index"])
            conds.append((a["index"], op, a["value"], a.get("valueTwo", 0)))
        if action == default:
            continue
        # one rule per condition when an argument is compared twice (runc does the same)
        indexes = [c[0] for c in conds]
        groups = [[c] for c in conds] if len(set(indexes)) < len(indexes) else [conds]
        for name in sc["names"]:
            nr = numbers.get(name)
            if nr is None:
                nr = numbers[name] = lib.oci_scmp_syscall_resolve(name.encode())
            if nr == -ELIBACC:
                raise _err(where, "libseccomp is not loaded")
            if nr == -1:               # __NR_SCMP_ERROR: not a syscall libseccomp knows
                if fail_unknown:
                    raise _err(where + ".names", 'unknown syscall "%s"' % name)
                continue
            for g in groups:
                out.append((where, name, action, nr, g))
    return out, notify


def connect(filt):
    """The agent's socket (SOCK_STREAM, as the spec requires), connected in the runtime's mount
    namespace; None when the filter has no listener."""
    import socket
    if not filt or not filt.listener_path:
        return None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(filt.listener_path)
    except OSError as e:
        s.close()
        raise ConfigError("linux.seccomp.listenerPath: connect %s: %s" % (filt.listener_path, e.strerror)) from None
    return s


def listener_message(filt, state, status):
    """The container process state (runtime-spec config-linux.md) sent to the agent: ``state`` is
    the container's state dict, its pid the process's pid as the runtime sees it."""
    from ociruntime import jsonio
    st = dict(state, status=status)
    msg = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": st.get("pid", 0), "state": st}
    if filt.metadata:
        msg["metadata"] = filt.metadata
    return jsonio.dumps(msg).encode()
