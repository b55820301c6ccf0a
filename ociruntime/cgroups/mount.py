"""The ``cgroup`` mount inside the container: its own cgroups shown as the root.

With a cgroup namespace each hierarchy is mounted fresh (the kernel shows the namespace root);
without one, the container's directory of each hierarchy is bind-mounted, as runc does.  On v1 a
tmpfs holds one directory per hierarchy.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import _sys as S
from ociruntime.errors import InitError
from ociruntime.rootfs import paths
from ociruntime.rootfs.mounts import remount_bind


def make_mounter(cg_paths, cgroupns):
    def mounter(m, rootfd):
        flags = m.flags & ~(S.MS_BIND | S.MS_REC | S.MS_REMOUNT)
        what = "mount cgroup to %s" % m.dest
        try:
            fd = paths.make_target(rootfd, m.dest, True)
            try:
                v1 = [k for k, v in cg_paths.items() if v[2] == 1]
                if not v1:
                    mp, p, _, _ = cg_paths["unified"]
                    os.close(fd)
                    fd = -1
                    _mount_one(rootfd, m.dest, mp + p, "cgroup2", "", flags, cgroupns)
                    return
                # the tmpfs stays writable (as runc leaves it); the hierarchies get the options
                S.mount("tmpfs", paths.fdpath(fd), "tmpfs", flags & ~S.MS_RDONLY, "mode=755")
            finally:
                if fd >= 0:
                    os.close(fd)
            top = paths.open_in_root(rootfd, m.dest)
            try:
                for key, (mp, p, version, opts) in cg_paths.items():
                    if version == 2:
                        continue  # hybrid: like runc, the unified hierarchy is joined, not mounted
                    os.mkdir(key, 0o755, dir_fd=top)
                    sub = m.dest.rstrip("/") + "/" + key
                    _mount_one(rootfd, sub, mp + p, "cgroup2" if version == 2 else "cgroup",
                               opts, flags, cgroupns)
            finally:
                os.close(top)
        except OSError as e:
            raise InitError(what, e.errno, "") from None
    return mounter


def _mount_one(rootfd, dest, host_dir, fstype, opts, flags, cgroupns):
    fd = paths.make_target(rootfd, dest, True)
    try:
        if cgroupns:
            try:
                S.mount("cgroup", paths.fdpath(fd), fstype, flags, opts or None)
                return
            except PermissionError:
                pass  # v1 hierarchies cannot be mounted from a user namespace: bind instead
        S.mount(host_dir, paths.fdpath(fd), None, S.MS_BIND | S.MS_REC)
    finally:
        os.close(fd)
    if flags:
        fd = paths.open_in_root(rootfd, dest)  # now the bind mount's root
        try:
            remount_bind(paths.fdpath(fd), flags)
        finally:
            os.close(fd)
