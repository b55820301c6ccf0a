"""The only importer of the compiled shim (cext/).

Each wrapper raises ``OSError(errno, strerror, path)`` on failure, so callers handle kernel errors
the way they handle ``os`` errors.  Constants the ``os`` module lacks live here too.
"""
import posix as os  # not os: ~1.6 ms (see ociruntime/__init__.py)
import sys

from ociruntime import fsdecode as _fsdecode, fsencode as _fsencode

if "_ociruntime_shim" in sys.builtin_module_names:  # the program has it built in (cext/launcher.c)
    import _ociruntime_shim as lib
else:
    from ociruntime import _shim as lib  # cext/shimmodule.c

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
        return None
    return s if isinstance(s, bytes) else _fsencode(s)


def unshare(flags):
    _check(lib.oci_unshare(flags))


def setns(fd, nstype=0, path=None):
    _check(lib.oci_setns(fd, nstype), path)


def mount(source, target, fstype, flags=0, data=None):
    _check(lib.oci_mount(_b(source), _b(target), _b(fstype), flags, _b(data)), target)


def umount2(target, flags=0):
    _check(lib.oci_umount2(_b(target), flags), target)


def pivot_root(new_root, put_old):
    _check(lib.oci_pivot_root(_b(new_root), _b(put_old)), new_root)


def sethostname(name):
    _check(lib.oci_sethostname(name.encode()))


def setdomainname(name):
    _check(lib.oci_setdomainname(name.encode()))


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


def exec_final(path, argv, envp, *, cwd=None, errfd=-1, user=None, caps=None, last_cap=40,
               no_new_privs=False, seccomp=None, first_cloexec_fd=3):
    """Run the final steps (credentials, capabilities, no_new_privs, seccomp) and execve.

    ``user`` is ``(uid, gid, groups or None)``; ``groups`` None means setgroups is not allowed.
    ``caps`` is ``(bounding, effective, permitted, inheritable, ambient)`` bit masks.
    ``seccomp`` is ``(filter_bytes, flags, early)`` or ``(filter_bytes, flags, early, listener_sock,
    listener_msg)``: with a listener socket (SCMP_ACT_NOTIFY) the flags must hold NEW_LISTENER and
    the shim sends the listener fd with ``listener_msg`` right after loading (security/seccomp.py).
    Returns only on failure, raising OSError whose filename is the failed step.
    """
    if user is not None:
        uid, gid, groups = user
        user = (uid, gid, None if groups is None else tuple(groups))
    if seccomp is not None:
        data, flags, early = seccomp[:3]
        sock, msg = -1, b""
        if len(seccomp) > 3 and seccomp[3] is not None:
            sock, msg = seccomp[3], seccomp[4]
            sock = sock if isinstance(sock, int) else sock.fileno()
        seccomp = (data, flags, 1 if early else 0, sock, msg)
    ret = lib.oci_exec(_b(path), tuple(map(_b, argv)), tuple(map(_b, envp)), _b(cwd or None), errfd, user,
                       None if caps is None else tuple(caps), last_cap, 1 if no_new_privs else 0, seccomp,
                       first_cloexec_fd)
    raise OSError(-ret, os.strerror(-ret))


# ---- libseccomp (security/seccomp.py builds filters with these) and process attributes

def scmp_open():
    """Load libseccomp (once); OSError when it is missing."""
    _check(lib.oci_scmp_open())
    return lib.oci_scmp_version()


def seccomp_flags_ok(flags):
    return lib.oci_seccomp_flags_ok(flags) == 0


def sched_setattr(pid, policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
    _check(lib.oci_sched_setattr(pid, policy, flags, nice, priority, runtime, deadline, period))


def ioprio_set(which, who, ioprio):
    _check(lib.oci_ioprio_set(which, who, ioprio))


def bpf(cmd, attr):
    """bpf(2) with ``attr`` (a bytearray holding union bpf_attr, updated in place with what the
    kernel writes back); returns the syscall's result (an fd for loads)."""
    return _check(lib.oci_bpf(cmd, attr))


def address_of(buf):
    """The address of a bytes/bytearray buffer, for the pointer fields of bpf_attr (the caller keeps
    the buffer alive across the call)."""
    return lib.oci_address_of(buf)


def malloc_trim():
    return lib.oci_malloc_trim()


def wait_fifo(dirfd, name, ranges=(), ready_fd=-1, ready=b""):
    """Unmap the resident pages of ``ranges`` [(addr, length)], send ``ready`` on ``ready_fd`` and
    close it (if >= 0), then block opening ``name`` (under ``dirfd``) for writing and write one byte
    (see process/init.py)."""
    _check(lib.oci_wait_fifo(dirfd, _b(name), tuple(ranges), ready_fd, ready), name)


# ---- fds and limits (_socket and resource would be a library to load each; flock and poll are
# ociruntime.flock and .poll, which start, kill and delete use without this module)

RLIM_INFINITY = 2 ** 64 - 1


def seqpacket_pair():
    """Two connected AF_UNIX SOCK_SEQPACKET sockets (fds), close-on-exec."""
    ret, a, b = lib.oci_seqpacket_pair()
    _check(ret)
    return a, b


def rlimit_number(name):
    """The resource number of ``name`` ("RLIMIT_NOFILE"), None for an unknown name."""
    num = lib.oci_rlimit_number(_b(name))
    return None if num < 0 else num


def setrlimit(resource, soft, hard):
    """prlimit64 on this process; RLIM_INFINITY for no limit."""
    _check(lib.oci_setrlimit(resource, soft, hard))


def ifup(name):
    """Bring the network interface ``name`` (of this network namespace) up."""
    _check(lib.oci_ifup(_b(name)))


def netns_start():
    """Start making a network namespace, its loopback up, on a thread of the shim's (netns_wait
    collects it); the caller must not fork before netns_wait."""
    _check(lib.oci_netns_start())


def netns_wait():
    """An fd (close-on-exec) of the network namespace netns_start made; OSError if it could not be
    made."""
    return _check(lib.oci_netns_wait())


def shed_start():
    """Start finding, on a thread of the shim's, the file mappings a waiting init may drop
    (create.py start_shed_scan); shed_wait collects them.  The caller must not fork before."""
    _check(lib.oci_shed_start())


def shed_wait():
    """The (start, length) ranges shed_start found."""
    ret, ranges = lib.oci_shed_wait()
    _check(ret)
    return ranges


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
