"""The only importer of the compiled shim (cext/shim.c, bound with cffi: cext/build_shim.py).

Each wrapper raises ``OSError(errno, strerror, path)`` on failure, so callers handle kernel errors
the way they handle ``os`` errors.  Constants the ``os`` module lacks live here too.  Buffers go to
C as cffi objects (``ffi.new``, ``ffi.from_buffer``) that keep their memory alive for the call; no
address crosses into Python.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import fsdecode as _fsdecode, fsencode as _fsencode, single_threaded
from ociruntime._shim import ffi, lib

# clone/unshare flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# mount flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

# openat2 resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# mount_setattr
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# prctl
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38


def _check(ret, path=None):
    if ret < 0:
        err = -ret
        if path is None:
            raise OSError(err, os.strerror(err))
        raise OSError(err, os.strerror(err), _fsdecode(path))
    return ret


def _b(s):
    if s is None:
        return ffi.NULL
    return s if isinstance(s, bytes) else _fsencode(s)


def unshare(flags):
    single_threaded("unshare")
    _check(lib.oci_unshare(flags))


def setns(fd, nstype=0, path=None):
    single_threaded("setns")
    _check(lib.oci_setns(fd, nstype), path)


def mount(source, target, fstype, flags=0, data=None):
    _check(lib.oci_mount(_b(source), _b(target), _b(fstype), flags, _b(data)), target)


def umount2(target, flags=0):
    _check(lib.oci_umount2(_b(target), flags), target)


def pivot_root(new_root, put_old):
    _check(lib.oci_pivot_root(_b(new_root), _b(put_old)), new_root)


def sethostname(name):
    name = name.encode()
    _check(lib.oci_sethostname(name, len(name)))


def setdomainname(name):
    name = name.encode()
    _check(lib.oci_setdomainname(name, len(name)))


def prctl(option, a2=0, a3=0, a4=0, a5=0):
    return _check(lib.oci_prctl(option, a2, a3, a4, a5))


def openat2(dirfd, path, flags, mode=0, resolve=0):
    return _check(lib.oci_openat2(dirfd, _b(path), flags, mode, resolve), path)


def mount_setattr(dirfd, path, flags=0, attr_set=0, attr_clr=0, propagation=0):
    _check(lib.oci_mount_setattr(dirfd, _b(path), flags, attr_set, attr_clr, propagation), path)


def personality(persona):
    return _check(lib.oci_personality(persona))


def join_session_keyring(name):
    return _check(lib.oci_join_session_keyring(_b(name)))


# ---- the final steps of a container process (process/init.py, process/execproc.py)

def _step_error(ret, x):
    err = -ret
    e = OSError(err, os.strerror(err))
    e.filename = ffi.string(x.step).decode() if x.step != ffi.NULL else "exec"
    return e


def finalize(user=None, caps=None, last_cap=40, no_new_privs=False, seccomp=None, cwd=None):
    """The credentials, capabilities, no_new_privs and seccomp of the process, in runc's order
    (cext/shim.c, oci_finalize); then chdir to ``cwd`` (None: stay).

    ``user`` is ``(uid, gid, groups or None)``; ``groups`` None means setgroups is not allowed.
    ``caps`` is ``(bounding, effective, permitted, inheritable, ambient)`` bit masks.
    ``seccomp`` is ``(filter_bytes, flags, early)`` or ``(filter_bytes, flags, early, listener_sock,
    listener_msg)``: with a listener socket (SCMP_ACT_NOTIFY) the flags must hold NEW_LISTENER and
    the shim sends the listener fd with ``listener_msg`` right after loading (security/seccomp.py).
    Raises OSError whose filename is the failed step."""
    x = ffi.new("struct oci_final *")
    keep = []  # what x points into, alive for the call
    if user is not None:
        uid, gid, groups = user
        x.set_user, x.uid, x.gid = 1, uid, gid
        if groups is not None:
            arr = ffi.new("unsigned int[]", list(groups) or [0])
            keep.append(arr)
            x.set_groups, x.ngroups, x.groups = 1, len(groups), arr
    if caps is not None:
        x.set_caps, x.last_cap = 1, last_cap
        x.bounding, x.effective, x.permitted, x.inheritable, x.ambient = caps
    x.no_new_privs = 1 if no_new_privs else 0
    x.seccomp_listener_sock = -1
    if seccomp is not None:
        data, flags, early = seccomp[:3]
        buf = ffi.from_buffer(data)
        keep.append(buf)
        x.seccomp_filter, x.seccomp_len, x.seccomp_flags = buf, len(data) // 8, flags
        x.seccomp_early = 1 if early else 0
        if len(seccomp) > 3 and seccomp[3] is not None:
            sock, msg = seccomp[3], bytes(seccomp[4])
            msgbuf = ffi.new("char[]", msg)
            keep.append(msgbuf)
            x.seccomp_listener_sock = sock if isinstance(sock, int) else sock.fileno()
            x.seccomp_listener_msg, x.seccomp_listener_len = msgbuf, len(msg)
    if cwd:
        c = ffi.new("char[]", _b(cwd))
        keep.append(c)
        x.cwd = c
    ret = lib.oci_finalize(x)
    if ret < 0:
        raise _step_error(ret, x)


def trampoline():
    """A sealed memfd (close-on-exec) holding the trampoline that exec_trampoline runs."""
    return _check(lib.oci_trampoline())


def exec_trampoline(tfd, path, argv, envp, errfd=-1, first_cloexec_fd=3):
    """execve ``path`` (``argv``, ``envp``) through the trampoline in ``tfd`` (cext/trampoline.c):
    every fd from ``first_cloexec_fd`` on is made close-on-exec, ``errfd`` (-1: none) gets
    "step:errno" if the exec fails, in the shim or in the trampoline, and is closed by a successful
    one.  Returns only on failure, raising OSError whose filename is the failed step."""
    args = [b"oci-trampoline:%d" % errfd, _b(path)] + [_b(a) for a in argv]
    cargs = [ffi.new("char[]", a) for a in args]
    cenv = [ffi.new("char[]", _b(e)) for e in envp]
    x = ffi.new("struct oci_exec *")
    av = ffi.new("char *[]", cargs + [ffi.NULL])
    ev = ffi.new("char *[]", cenv + [ffi.NULL])
    x.trampoline_fd, x.argv, x.envp, x.errfd, x.first_cloexec_fd = tfd, av, ev, errfd, first_cloexec_fd
    ret = lib.oci_exec(x)
    raise _step_error(ret, x)


def wait(ready_fd, ready, fifo_fd, maps_fd=-1, pagemap_fd=-1):
    """The init's wait for start (cext/shim.c, oci_wait): with ``maps_fd`` and ``pagemap_fd`` the
    drop of its read-only file pages first; ``ready`` sent on ``ready_fd`` (closed); then block
    reopening the O_PATH ``fifo_fd`` of exec.fifo for writing until start reads it.  Returns the
    fifo's write fd."""
    return _check(lib.oci_wait(maps_fd, pagemap_fd, ready_fd, ready, len(ready), fifo_fd), "exec.fifo")


# ---- libseccomp (security/seccomp.py builds filters with these) and process attributes

def scmp_open():
    """Load libseccomp (once); OSError when it is missing.  Its version (major, minor, micro)."""
    _check(lib.oci_scmp_open())
    v = ffi.new("unsigned int[3]")
    _check(lib.oci_scmp_version(v, v + 1, v + 2))
    return v[0], v[1], v[2]


def scmp_rule_add(ctx, action, nr, conds):
    """seccomp_rule_add_array with ``conds`` [(arg, op, a, b)]; libseccomp's result."""
    args = ffi.new("struct oci_scmp_arg[]", [{"arg": c[0], "op": c[1], "a": c[2], "b": c[3]} for c in conds] or 1)
    return lib.oci_scmp_rule_add(ctx, action, nr, len(conds), args)


def seccomp_flags_ok(flags):
    return lib.oci_seccomp_flags_ok(flags) == 0


def sched_setattr(pid, policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
    _check(lib.oci_sched_setattr(pid, policy, flags, nice, priority, runtime, deadline, period))


def ioprio_set(which, who, ioprio):
    _check(lib.oci_ioprio_set(which, who, ioprio))


def bpf(cmd, attr):
    """bpf(2) with ``attr`` (a bytearray holding a union bpf_attr without pointers, updated in place
    with what the kernel writes back); returns the syscall's result."""
    return _check(lib.oci_bpf(cmd, ffi.from_buffer(attr), len(attr)))


def bpf_prog_load(prog_type, insns, license, name, log=None, log_level=0):
    """BPF_PROG_LOAD of ``insns`` (bytes); ``log`` a bytearray for the verifier's log.  The fd."""
    logbuf = ffi.from_buffer(log) if log else ffi.NULL
    return _check(lib.oci_bpf_prog_load(prog_type, ffi.from_buffer(insns), len(insns) // 8, license, log_level,
                                        logbuf, len(log) if log else 0, name))


def bpf_prog_query(target_fd, attach_type, max_ids=64):
    """BPF_PROG_QUERY: the ids of the programs attached to ``target_fd``."""
    ids = ffi.new("uint32_t[]", max_ids)
    count = ffi.new("unsigned int *", max_ids)
    _check(lib.oci_bpf_prog_query(target_fd, attach_type, ids, count))
    return list(ids[0:count[0]])


# ---- the new mount API: a mount made or cloned detached, given its attributes, then attached
# onto an fd (no path looked up again between the steps); fstatfs

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_EMPTY_PATH = 0x40
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOUNT_ATTR_IDMAP = 0x100000
PROC_SUPER_MAGIC = 0x9FA0
DEVPTS_SUPER_MAGIC = 0x1CD1
ST_RDONLY = 1


def open_tree(dirfd, path, flags):
    """An fd of the mount at ``path`` (under ``dirfd``), with OPEN_TREE_CLONE a detached copy."""
    return _check(lib.oci_open_tree(dirfd, _b(path), flags), path or None)


def move_mount(from_dirfd, from_path, to_dirfd, to_path, flags):
    _check(lib.oci_move_mount(from_dirfd, _b(from_path), to_dirfd, _b(to_path), flags), to_path or None)


def fsopen(fsname, flags=FSOPEN_CLOEXEC):
    return _check(lib.oci_fsopen(_b(fsname), flags), fsname)


def fsconfig(fd, cmd, key=None, value=None, aux=0):
    _check(lib.oci_fsconfig(fd, cmd, _b(key), _b(value), aux), key)


def fsmount(fd, flags=FSMOUNT_CLOEXEC, attr_flags=0):
    return _check(lib.oci_fsmount(fd, flags, attr_flags))


def fstatfs_type(fd):
    """The magic number (statfs f_type) of the filesystem ``fd`` is on."""
    return _check(lib.oci_fstatfs_type(fd))


def fork_into_cgroup(cgroup_fd, what="fork"):
    """fork() with the child born in the cgroup2 cgroup whose directory ``cgroup_fd`` is open
    (clone3 with CLONE_INTO_CGROUP: no write to cgroup.procs, none of the kernel's global lock it
    takes), refused unless this process is single-threaded, as ociruntime.fork.  The child's pid,
    0 in the child.  OSError when the kernel or a seccomp profile refuses clone3 or its flag
    (ENOSYS, E2BIG, EINVAL, EPERM: nothing was forked; the caller forks and writes cgroup.procs)."""
    single_threaded(what)
    return _check(lib.oci_fork_into_cgroup(cgroup_fd))
