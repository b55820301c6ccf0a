"""The state directory of one container: ``<root>/<id>/``.

Holds ``state.json`` (written atomically: temp file + rename), the ``exec.fifo`` that keeps a
created container waiting for ``start``, and is itself the lock: every command that changes a
container takes ``flock`` on the directory, so two commands on one container serialize.
"""
import fcntl
import os

from ociruntime import jsonio
from ociruntime.errors import StateError

STATE_FILE = "state.json"
FIFO = "exec.fifo"

_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid):
    """runc's rule: [\\w+-\\.]+, and not "." or ".." (a path component)."""
    if not cid or cid in (".", "..") or not all(c in _ID_OK for c in cid) or len(cid) > 1024:
        raise StateError("invalid container ID format: %s" % cid if cid else "invalid container ID format")


class StateDir:
    def __init__(self, root, cid, fd):
        self.root, self.id, self.fd = root, cid, fd
        self.path = os.path.join(root, cid)

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def create(cls, root, cid):
        """Make the directory for a new container and lock it; refuses an id in use."""
        check_id(cid)
        os.makedirs(root, mode=0o711, exist_ok=True)
        path = os.path.join(root, cid)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise StateError("container with given ID already exists: %s" % cid) from None
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return cls(root, cid, fd)

    @classmethod
    def open(cls, root, cid, lock=True):
        """Open (and by default lock) an existing container's directory."""
        check_id(cid)
        path = os.path.join(root, cid)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise StateError("container does not exist") from None
        if lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
        self = cls(root, cid, fd)
        if not os.path.exists(os.path.join(path, STATE_FILE)):
            # a create that is still running (holds the lock), or one that died half-way
            self.close()
            raise StateError("container does not exist")
        return self

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- contents --------------------------------------------------------------------------
    def load(self):
        try:
            with open(os.path.join(self.path, STATE_FILE), "rb") as f:
                return jsonio.loads(f.read())
        except FileNotFoundError:
            raise StateError("container does not exist") from None

    def save(self, state):
        tmp = os.path.join(self.path, ".state.json.tmp")
        data = jsonio.dumps(state).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.path, STATE_FILE))

    def fifo_path(self):
        return os.path.join(self.path, FIFO)

    def has_fifo(self):
        return os.path.exists(self.fifo_path())

    def remove(self):
        """Remove the directory and everything in it (it is ours alone)."""
        for name in os.listdir(self.path):
            try:
                os.unlink(os.path.join(self.path, name))
            except IsADirectoryError:
                import shutil
                shutil.rmtree(os.path.join(self.path, name), ignore_errors=True)
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            pass
        self.close()


def list_ids(root):
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.isfile(os.path.join(root, n, STATE_FILE)))
