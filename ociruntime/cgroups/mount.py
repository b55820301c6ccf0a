"""The ``cgroup`` mount inside the container: its own cgroups shown as the root.

With a cgroup namespace each hierarchy is mounted fresh (the kernel shows the namespace root);
without one, the container's directory of each hierarchy is bind-mounted, as runc does.  On v1 a
tmpfs holds one directory per hierarchy.
"""
import os

from ociruntime import _sys as S
from ociruntime.errors import InitError
from ociruntime.rootfs import paths


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
                    _mount_one(mp + p, paths.fdpath(fd), "cgroup2", "", flags, cgroupns)
                    return
                S.mount("tmpfs", paths.fdpath(fd), "tmpfs", S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC, "mode=755")
            finally:
                os.close(fd)
            top = paths.open_in_root(rootfd, m.dest)
            try:
                for key, (mp, p, version, opts) in sorted(cg_paths.items()):
                    os.mkdir(key, 0o755, dir_fd=top)
                    sub = paths.open_in_root(rootfd, m.dest.rstrip("/") + "/" + key)
                    try:
                        _mount_one(mp + p, paths.fdpath(sub), "cgroup2" if version == 2 else "cgroup",
                                   opts, flags, cgroupns)
                    finally:
                        os.close(sub)
                if flags & S.MS_RDONLY:
                    S.mount(None, paths.fdpath(top), None, S.MS_REMOUNT | S.MS_RDONLY | S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC, "mode=755")
            finally:
                os.close(top)
        except OSError as e:
            raise InitError(what, e.errno, "") from None
    return mounter


def _mount_one(host_dir, target, fstype, opts, flags, cgroupns):
    if cgroupns:
        try:
            S.mount("cgroup", target, fstype, flags, opts or None)
            return
        except PermissionError:
            pass  # v1 hierarchies cannot be mounted from a user namespace: bind instead
    S.mount(host_dir, target, None, S.MS_BIND | S.MS_REC)
    if flags:
        from ociruntime.rootfs.mounts import remount_bind
        remount_bind(target, flags)
