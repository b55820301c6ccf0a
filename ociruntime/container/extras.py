"""The features beyond runc that a bundle asks for with annotations: container networking
(``org.ociruntime.net.*``, ociruntime/network/) and a copy-on-write rootfs
(``org.ociruntime.overlay*``, rootfs/overlay.py).

A bundle without those annotations never imports this module (create.py looks for the prefixes
first; delete for the record).  With them, create calls, in order: ``Extras.plan`` (the
annotations checked, before anything exists), ``before_fork`` (the overlay's directories: the
init mounts them), ``after_init`` (the network, once the init's namespace exists) and, when it
fails, ``undo``; delete calls ``remove``.

The record ``extras.json`` in the state dir says what each feature may have made, written before
it is made, so that ``remove`` can take it away whenever the runtime stopped (a failed create,
delete, and `delete --force` after a `kill -9` of the runtime).
"""

from ociruntime import join, kill_point, read_file, write_atomic
from ociruntime.errors import OCIError

RECORD = "extras.json"  # (delete.py looks for this name before importing this module)
def feature_annotations():
    """The annotations the features understand, with what they take (for `features`)."""
    from ociruntime.network import ANNOTATIONS as net
    from ociruntime.rootfs.overlay import ANNOTATIONS as overlay
    return dict(net, **overlay)


class Record(dict):
    """One feature's part of extras.json; ``save`` writes the whole file again (atomically)."""

    def __init__(self, path, name, doc):
        super().__init__(doc.setdefault(name, {}))
        self.path, self.name, self.doc = path, name, doc

    def save(self):
        from ociruntime import jsonio
        self.doc[self.name] = dict(self)
        try:
            write_atomic(self.path, jsonio.dumps(self.doc).encode())
        except OSError as e:
            raise OCIError("write %s: %s" % (self.path, e.strerror)) from None


def load_record(sd_path):
    from ociruntime import jsonio
    try:
        return jsonio.loads(read_file(join(sd_path, RECORD)))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise OCIError("%s: %s" % (join(sd_path, RECORD), getattr(e, "strerror", None) or e)) from None


class Extras:
    def __init__(self, net, overlay):
        self.net, self.overlay = net, overlay
        self.doc = {}
        self.mount = None  # what the init mounts (before_fork)

    @classmethod
    def plan(cls, cfg, nsmap, bundle, rootfs):
        """What the config's annotations ask for; ConfigError when they are wrong."""
        ann = cfg.get("annotations") or {}
        net = overlay = None
        if any(k.startswith("org.ociruntime.net.") for k in ann):
            from ociruntime import network
            net = network.parse(ann, nsmap)
        if any(k.startswith("org.ociruntime.overlay") for k in ann):
            from ociruntime.rootfs import overlay as ovl
            overlay = ovl.parse(ann, nsmap, bundle, rootfs)
        return cls(net, overlay)

    def _record(self, sd, name):
        return Record(join(sd.path, RECORD), name, self.doc)

    def before_fork(self, sd, bundle, rootfs, owner, userns):
        """The overlay's directories; returns what the init mounts (None: no overlay)."""
        if self.overlay is None:
            return None
        from ociruntime.rootfs import overlay as ovl
        self.mount = ovl.prepare(self.overlay, sd, bundle, rootfs, self._record(sd, "overlay"), owner, userns)
        return self.mount

    def _close(self):
        """The parent's copy of the overlay's mount fd (the init attaches its own)."""
        if self.mount:
            from ociruntime.rootfs.overlay import close_fd
            close_fd(self.mount)

    def after_init(self, sd, init_pid, state, log):
        """The network, now that the init's namespace exists; what it made is added to the
        state's annotations (the address; where the overlay's upper is)."""
        self._close()
        extra = {}
        if self.overlay is not None:
            from ociruntime.rootfs.overlay import RESULT
            extra[RESULT] = join(self.doc["overlay"]["base"], "upper")
        if self.net is not None:
            from ociruntime import network
            rec = self._record(sd, "network")
            rec.update(network.record_for(self.net, sd.root, sd.id))
            rec.save()
            kill_point("net:recorded")
            extra.update(network.setup(self.net, rec, sd.root, sd.id, init_pid, log, sd.fd))
        state["annotations"] = dict(state.get("annotations") or {}, **extra)

    def undo(self, sd, log):
        """A failed create: remove what was made, as delete would; returns the errors (what is
        left, which the record keeps for `delete --force`)."""
        self._close()
        if self.doc.get("overlay"):
            self.doc["overlay"]["failed"] = True
        return _remove(self.doc, sd, log)


def remove(sd, log, created=True):
    """delete: remove what the record says the features made; returns the errors (strings).  A
    record that cannot be read says nothing: the container is deleted all the same (a warning
    says what may be left).  ``created``: false for a create that was killed before it saved the
    container's state: there never was a container, so what it made goes as for a create that
    failed (undo), the upper directory it made to be kept too."""
    try:
        doc = load_record(sd.path)
    except OCIError as e:
        log.warning("%s: what the container's networking or overlay made (if anything) is left" % e)
        return []
    if not created and doc.get("overlay"):
        doc["overlay"]["failed"] = True
    return _remove(doc, sd, log)


def _remove(doc, sd, log):
    errors = []
    if doc.get("network"):
        from ociruntime import network
        errors += network.teardown(doc["network"], sd.root, sd.id, log, sd.fd)
    if doc.get("overlay"):
        from ociruntime.rootfs import overlay
        errors += overlay.teardown(doc["overlay"], log)
    return errors
