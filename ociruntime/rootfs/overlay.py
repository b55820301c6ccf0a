"""A copy-on-write rootfs, asked for per bundle by the ``org.ociruntime.overlay*`` annotations.

The container's root is an overlay of read-only lower directories (the bundle's root.path by
default) and an upper and work directory of the runtime's: under the state dir (removed on
delete), on a tmpfs (gone with the container), or in a directory the user names (kept, and reused
by the next container given it).  The init mounts it on root.path in its own mount namespace,
after / became a slave (so the mount never appears on the host), and pivots into it as into any
rootfs; the lower directories are only read.

The parent side (``parse``, ``prepare``, ``teardown``) runs in create and delete; ``mount`` runs
in the init.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import isdir, join, kill_point, normpath
from ociruntime.errors import ConfigError, InitError, OCIError

ENOSYS = 38  # (errno-base.h; the same on every Linux architecture)

PREFIX = "org.ociruntime.overlay"
ANNOTATIONS = {
    PREFIX: "true: the rootfs is an overlay with root.path as its only lower directory",
    PREFIX + ".lower": "DIR[:DIR...]: the overlay's lower directories, uppermost first (relative to the "
                       "bundle); root.path is then only where it is mounted",
    PREFIX + ".upper": "where the upper and work directories go: the state dir (default, removed on delete), "
                       "tmpfs[:size=N] (a tmpfs of the container's), or a DIR of yours (DIR/upper is kept, "
                       "and reused by the next container given DIR)",
    PREFIX + ".keep": "true: keep the upper directory on delete (in <bundle>/overlay-<id>/upper unless "
                      ".upper names a DIR)",
}
# set by the runtime in the container's state (not read from the config)
RESULT = PREFIX + ".upperdir"


def _err(key, value, why):
    return ConfigError('annotation %s: "%s": %s' % (key, value, why))


def parse(annotations, nsmap, bundle, rootfs):
    """{"lowers", "upper", "keep"} the annotations ask for, None when they do not, ConfigError
    naming the annotation when they are wrong (before anything exists).  ``nsmap``: the config's
    namespaces (the overlay is mounted in a mount namespace of the container's own)."""
    ann = {k: v for k, v in annotations.items() if k == PREFIX or k.startswith(PREFIX + ".")}
    for key in ann:
        if key not in ANNOTATIONS:
            raise ConfigError("annotation %s: unknown (known: %s)" % (key, ", ".join(sorted(ANNOTATIONS))))
    for key in (PREFIX, PREFIX + ".keep"):
        if key in ann and ann[key] not in ("true", "false"):
            raise _err(key, ann[key], "must be true or false")
    if ann.get(PREFIX) == "false" or (PREFIX not in ann and PREFIX + ".lower" not in ann):
        if len(ann) > (PREFIX in ann):
            raise ConfigError("annotation %s.upper, %s.keep: need %s: \"true\" or %s.lower"
                              % (PREFIX, PREFIX, PREFIX, PREFIX))
        return None
    if PREFIX + ".lower" in ann:
        text = ann[PREFIX + ".lower"]
        lowers = [normpath(join(bundle, p)) for p in text.split(":")]
        if not text or "" in text.split(":"):
            raise _err(PREFIX + ".lower", text, "an empty directory name")
    else:
        text, lowers = rootfs, [rootfs]
    for d in lowers:
        if any(c in d for c in ",:\\"):
            raise _err(PREFIX + ".lower", text, "%s: a lower directory's path may not hold , : or \\" % d)
        if not isdir(d):
            raise _err(PREFIX + ".lower", text, "%s: not a directory" % d)
    ns = nsmap.get("mount", False)
    if ns is False or ns:
        raise ConfigError("annotation %s: the container needs a mount namespace of its own (linux.namespaces: "
                          '{"type": "mount"} without a path): the overlay is mounted there' % PREFIX)
    upper = ann.get(PREFIX + ".upper", "state")
    keep = ann.get(PREFIX + ".keep") == "true"
    if upper == "tmpfs" or upper.startswith("tmpfs:"):
        opts = upper[6:]
        if keep:
            raise _err(PREFIX + ".keep", "true", "a tmpfs upper goes with the container: name a DIR in %s.upper"
                       % PREFIX)
        if any(o.partition("=")[0] not in ("size", "nr_inodes", "mode", "huge") for o in filter(None, opts.split(","))):
            raise _err(PREFIX + ".upper", upper, "tmpfs options are size, nr_inodes, mode and huge")
        upper = ("tmpfs", opts)
    elif upper != "state":
        upper = normpath(join(bundle, upper))
        if any(c in upper for c in ",:\\"):
            raise _err(PREFIX + ".upper", ann[PREFIX + ".upper"], "the path may not hold , : or \\")
    return {"lowers": lowers, "upper": upper, "keep": keep}


def prepare(spec, sd, bundle, rootfs, record, owner, userns):
    """Make the upper and work directories (each recorded in ``record``, saved by the caller's
    ``save``, before it is made) and return what the init needs to mount the overlay.
    ``owner``: the host (uid, gid) of the container's root, who must own them; ``userns``: the
    init mounts it in a user namespace of the container's."""
    upper = spec["upper"]
    tmpfs = None
    if upper == "state" and spec["keep"]:
        upper = join(bundle, "overlay-" + sd.id)
    if upper == "state" or isinstance(upper, tuple):
        base = join(sd.path, "overlay")
        if isinstance(upper, tuple):
            tmpfs = ",".join(filter(None, ["mode=755", upper[1]]))
        kept = False
    else:
        base, kept = upper, True
    record.update(base=base, made=[], kept=kept, tmpfs=tmpfs is not None)
    mode = os.stat(spec["lowers"][0]).st_mode & 0o7777
    for d in (base,) if tmpfs is not None else (base, join(base, "upper"), join(base, "work")):
        if isdir(d):
            continue
        record["made"].append(d)
        record.save()
        kill_point("overlay:recorded")
        # the upper's mode is the container's / (the overlay's root is the upper directory)
        dmode = 0o711 if d == base else mode if d.endswith("/upper") else 0o700
        try:
            os.mkdir(d, dmode)
        except OSError as e:
            # not made: if it exists now it is someone else's, which the undo must leave alone
            record["made"].remove(d)
            record.save()
            raise OCIError("overlay: make %s: %s" % (d, e.strerror)) from None
        kill_point("overlay:dir-made")
        try:
            os.chmod(d, dmode)
            if d != base and owner != (0, 0):
                os.chown(d, *owner)
        except OSError as e:
            raise OCIError("overlay: make %s: %s" % (d, e.strerror)) from None
    record.save()
    kill_point("overlay:dirs")
    ov = {"target": rootfs, "lowers": spec["lowers"], "base": base, "tmpfs": tmpfs, "userxattr": userns,
          "mode": mode, "fd": -1}
    ov["fd"] = _detached(ov, owner)
    kill_point("overlay:mounted")
    return ov


def _detached(ov, owner):
    """The overlay (and its tmpfs), made here as a detached mount (the new mount API): an fd the
    init attaches onto the rootfs in its own mount namespace.  Made by the runtime, it reaches
    the directories whoever may search them (the container's root in a user namespace may not),
    and a create that fails leaves nothing mounted anywhere.  -1 on a kernel without the API:
    the init then mounts it by path."""
    from ociruntime import _sys as S
    fd = tfd = -1
    what = "make the overlay"
    try:
        try:
            fd = S.fsopen("tmpfs" if ov["tmpfs"] is not None else "overlay")
        except OSError as e:
            if e.errno == ENOSYS:
                return -1
            raise
        base = ov["base"]
        if ov["tmpfs"] is not None:
            what = "make the overlay's tmpfs (%s)" % ov["tmpfs"]
            for opt in ov["tmpfs"].split(","):
                key, _, value = opt.partition("=")
                S.fsconfig(fd, S.FSCONFIG_SET_STRING, key, value)
            S.fsconfig(fd, S.FSCONFIG_CMD_CREATE)
            tfd = S.fsmount(fd, S.FSMOUNT_CLOEXEC, S.MOUNT_ATTR_NOSUID | S.MOUNT_ATTR_NODEV)
            os.close(fd)
            fd = -1
            base = "/proc/self/fd/%d" % tfd
            for name, mode in (("upper", ov["mode"]), ("work", 0o700)):
                os.mkdir(join(base, name), mode)
                os.chmod(join(base, name), mode)
                if owner != (0, 0):
                    os.chown(join(base, name), *owner)
            fd = S.fsopen("overlay")
        what = "make the overlay (lowerdir=%s)" % ":".join(ov["lowers"])
        for key, value in (("lowerdir", ":".join(ov["lowers"])), ("upperdir", join(base, "upper")),
                           ("workdir", join(base, "work"))):
            S.fsconfig(fd, S.FSCONFIG_SET_STRING, key, value)
        S.fsconfig(fd, S.FSCONFIG_CMD_CREATE)
        return S.fsmount(fd)
    except OSError as e:
        raise OCIError("overlay: %s: %s" % (what, e.strerror)) from None
    finally:
        for f in (fd, tfd):
            if f >= 0:
                os.close(f)


def close_fd(ov):
    fd, ov["fd"] = ov["fd"], -1
    if fd >= 0:
        os.close(fd)


def mount(ov):
    """In the init, after / is a slave: the overlay attached onto the rootfs (or, without the new
    mount API, mounted there by path, and its tmpfs first)."""
    from ociruntime import _sys as S
    if ov["fd"] >= 0:
        try:
            S.move_mount(ov["fd"], "", S.AT_FDCWD, ov["target"], S.MOVE_MOUNT_F_EMPTY_PATH)
        except OSError as e:
            raise InitError("attach the overlay rootfs", e.errno, ov["target"]) from None
        finally:
            close_fd(ov)  # nothing of the host's stays open in the init
        return
    if ov["tmpfs"] is not None:
        try:
            S.mount("tmpfs", ov["base"], "tmpfs", S.MS_NOSUID | S.MS_NODEV, ov["tmpfs"])
            for name, mode in (("upper", ov["mode"]), ("work", 0o700)):
                os.mkdir(join(ov["base"], name), mode)
                os.chmod(join(ov["base"], name), mode)
        except OSError as e:
            raise InitError("make the overlay's tmpfs", e.errno, ov["base"]) from None
    data = "lowerdir=%s,upperdir=%s,workdir=%s" % (":".join(ov["lowers"]), join(ov["base"], "upper"),
                                                   join(ov["base"], "work"))
    if ov["userxattr"]:
        data += ",userxattr"  # (trusted.* xattrs are the host root's)
    try:
        S.mount("overlay", ov["target"], "overlay", 0, data)
    except OSError as e:
        raise InitError("mount the overlay rootfs (%s)" % data, e.errno, ov["target"]) from None


def teardown(record, log):
    """Remove the work directory, and the upper unless it is kept; returns the errors."""
    base = record.get("base")
    if not base:
        return []
    made = record.get("made") or ()
    if record.get("kept"):
        # a directory of the user's: only what the runtime made in it goes (the work directory,
        # and, for a create that failed, all it made)
        doomed = list(reversed(made)) if record.get("failed") else [d for d in made if d == join(base, "work")]
    else:
        doomed = [base]
    errors = []
    for d in doomed:
        try:
            _rmtree(d)
        except OSError as e:
            errors.append("overlay: remove %s: %s" % (d, e.strerror))
    if record.get("kept") and not record.get("failed"):
        log.debug("overlay: the upper directory is kept: %s", join(base, "upper"))
    return errors


def _rmtree(path):
    """Remove ``path`` and what it holds without following a link the container left in it."""
    import shutil
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if st.st_mode & 0o170000 != 0o040000:
        os.unlink(path)
        return
    shutil.rmtree(path)
