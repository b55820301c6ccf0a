"""A container without a mount namespace: its mounts live in the runtime's (the host's) one.

The spec: a namespace type the config does not list is the runtime's.  As runc, the rootfs is then
bound onto itself in the host's mount namespace, the config's mounts are made under that bind and
the init chroots into it (pivot_root would move the host's root).  Unlike runc 1.1.5, which makes
the caller's / rslave and the rootfs's parent mount private (changing the host's propagation for
good) and leaves every mount behind after delete:

- nothing of the host's changes: create binds the rootfs onto itself and makes that bind (and only
  it, with what it copied of the rootfs's own submounts) private, so the container's mounts under
  it propagate nowhere; the bind itself, made under the host's mount, reaches that mount's peers
  as any mount would, and so does its unmount;
- create records the bind's mount id, and delete (or a failed create) detaches it with everything
  under it, checking by id that what it detaches is the container's.  Two such containers on one
  rootfs directory stack their binds: the first deleted then detaches both (the processes of the
  other keep their root; its own delete finds nothing left).

The config fields that need a mount namespace of the container's own are refused before anything
exists (container/create.py, check_config).
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import _sys as S, read_text
from ociruntime.errors import ConfigError, OCIError, init_step
from ociruntime.rootfs import _unescape

MOUNTINFO = "/proc/self/mountinfo"


def mount_table():
    """[(mount id, parent id, mount point)] of this process's mount namespace, in its order."""
    out = []
    for line in read_text(MOUNTINFO).splitlines():
        fields = line.split(" ", 5)
        out.append((int(fields[0]), int(fields[1]), _unescape(fields[4])))
    return out


def top_mount(path, table=None):
    """The id of the mount on top at ``path`` (a mount point), or None."""
    at = [(mid, parent) for mid, parent, mp in (table or mount_table()) if mp == path]
    under = {parent for _, parent in at}
    tops = [mid for mid, _ in at if mid not in under]
    return tops[-1] if tops else None


def bind_root(rootfs):
    """Bind the rootfs onto itself, privately; returns {"path", "id"} of the bind (what delete
    needs).  ``rootfs`` is resolved first: mountinfo shows real paths."""
    import os.path
    path = os.path.realpath(rootfs)
    if path == "/":
        raise ConfigError("config.json: root.path: the host's / cannot be the root of a container without a "
                          "mount namespace (its mounts would cover the host's)")
    try:
        S.mount(path, path, None, S.MS_BIND | S.MS_REC)
    except OSError as e:
        raise OCIError("bind the rootfs %s onto itself in the host's mount namespace: %s" % (path, e.strerror)) \
            from None
    record = {"path": path, "id": top_mount(path)}
    try:
        S.mount(None, path, None, S.MS_PRIVATE | S.MS_REC)
    except OSError as e:
        release(record)
        raise OCIError("make the rootfs bind %s private: %s" % (path, e.strerror)) from None
    return record


def release(record):
    """Detach the container's bind of its rootfs, and everything mounted under or onto it, from
    the host's mount namespace (the id tells it is still the container's: ids are reused)."""
    path, mid = record.get("path"), record.get("id")
    if not path or mid is None:
        return
    for _ in range(64):
        table = mount_table()
        where = {m: (p, mp) for m, p, mp in table}
        if where.get(mid, (0, None))[1] != path:
            return                                 # gone (or never made)
        top, seen = top_mount(path, table), set()
        chain = top
        while chain is not None and chain != mid and chain not in seen:
            seen.add(chain)
            chain = where.get(chain, (None,))[0]
        if chain != mid:
            raise OCIError("unmount the rootfs bind %s: mount %s is on top of it" % (path, top))
        try:
            S.umount2(path, S.MNT_DETACH)
        except OSError as e:
            raise OCIError("unmount the rootfs bind %s: %s" % (path, e.strerror)) from None
    raise OCIError("unmount the rootfs bind %s: still mounted" % path)


def chroot(rootfs):
    """The init's root without a mount namespace: chroot into the bound rootfs (what runc does;
    pivot_root would replace the host's root)."""
    os.chdir(rootfs)
    init_step("chroot", os.chroot, ".", path=rootfs)
    os.chdir("/")
