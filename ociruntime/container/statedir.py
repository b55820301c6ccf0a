"""The state directory of one container: ``<root>/<id>/``.

Holds ``state.json`` (written atomically: temp file + rename), the ``exec.fifo`` that keeps a
created container waiting for ``start``, and is itself the lock: every command that changes a
container takes ``flock`` on the directory, so two commands on one container serialize.

Beside state.json, ``.state.marshal`` holds its text and what reading that text gives, as marshal
data: start, kill and delete then load the state without the JSON decoder (_json is a library to
load, ~0.15 ms with jsonio's set-up).  It is used only while the text it holds is state.json's
(compared byte for byte), so a state.json written by anything else is read as JSON.
"""
import marshal
import posix as os  # not os: ~1.5 ms (see ociruntime/__init__.py)

from ociruntime import exists, flock, isdir, isfile, join, read_file
from ociruntime.errors import OCIError, StateError

STATE_FILE = "state.json"
CACHE_FILE = ".state.marshal"
FIFO = "exec.fifo"

_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid):
    """runc's rule: [\\w+-\\.]+, and not "." or ".." (a path component)."""
    if not cid or cid in (".", "..") or not all(c in _ID_OK for c in cid) or len(cid) > 1024:
        raise StateError("invalid container ID format: %s" % cid if cid else "invalid container ID format")


def write_pid_file(path, pid):
    """Decimal, no newline, atomically (temp file + rename): the containerd shim reads it."""
    if not path.startswith("/"):
        path = join(os.getcwd(), path)
    head, _, name = path.rpartition("/")
    tmp = "%s/.%s.tmp" % (head, name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as e:
        raise OCIError("write pid file %s: %s" % (path, e.strerror)) from None


def _makedirs(root):
    """os.makedirs(root, 0o711, exist_ok=True); os imported only when there is something to make."""
    if isdir(root):
        return
    import os as _os
    _os.makedirs(root, mode=0o711, exist_ok=True)


class StateDir:
    def __init__(self, root, cid, fd):
        self.root, self.id, self.fd = root, cid, fd
        self.path = join(root, cid)

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def create(cls, root, cid):
        """Make the directory for a new container and lock it; refuses an id in use."""
        check_id(cid)
        path = join(root, cid)
        try:
            _makedirs(root)
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise StateError("container with given ID already exists: %s" % cid) from None
        except OSError as e:
            # e.g. a user without --root or $XDG_RUNTIME_DIR: /run/ociruntime is root's
            raise StateError("state directory %s: %s" % (e.filename or path, e.strerror)) from None
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        flock(fd)
        return cls(root, cid, fd)

    @classmethod
    def open(cls, root, cid, lock=True):
        """Open (and by default lock) an existing container's directory."""
        check_id(cid)
        path = join(root, cid)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise StateError("container does not exist") from None
        if lock:
            flock(fd)
        self = cls(root, cid, fd)
        if not exists(join(path, STATE_FILE)):
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
            data = read_file(join(self.path, STATE_FILE))
        except FileNotFoundError:
            raise StateError("container does not exist") from None
        try:
            text, state = marshal.loads(read_file(join(self.path, CACHE_FILE)))
            if text == data:
                return state
        except (OSError, ValueError, EOFError, TypeError):
            pass
        from ociruntime import jsonio
        return jsonio.loads(data)

    def save(self, state):
        from ociruntime import jsonio
        data = jsonio.dumps(state).encode()
        self._write(STATE_FILE, data)
        try:  # a copy: if it cannot be written, the old one no longer matches and load reads JSON
            self._write(CACHE_FILE, marshal.dumps((data, jsonio.loads(data))))
        except OSError:
            pass

    def _write(self, name, data):
        """Replace the file ``name`` with ``data`` at once (a temp file renamed over it; the temp
        file removed again if that fails)."""
        tmp = join(self.path, ".%s.tmp" % name.lstrip("."))
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.rename(tmp, join(self.path, name))
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def fifo_path(self):
        return join(self.path, FIFO)

    def has_fifo(self):
        return exists(self.fifo_path())

    def remove(self):
        """Remove the directory and everything in it (it is ours alone)."""
        for name in os.listdir(self.path):
            try:
                os.unlink(join(self.path, name))
            except IsADirectoryError:
                import shutil
                shutil.rmtree(join(self.path, name), ignore_errors=True)
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
    return sorted(n for n in names if isfile(join(root, n, STATE_FILE)))
