"""The state directory of one container: ``<root>/<id>/``.

Holds ``state.json`` (written atomically: temp file + rename), the ``exec.fifo`` that keeps a
created container waiting for ``start``, and is itself the lock: every command that changes a
container takes ``flock`` on the directory, so two commands on one container serialize.

Beside state.json, ``.state.marshal`` holds its text and what reading that text gives, as marshal
data: start, kill and delete then load the state without the JSON decoder (_json is a library to
load).  It is used only while the text it holds is state.json's
(compared byte for byte), so a state.json written by anything else is read as JSON.

``made.json`` is what create made, written before it makes it (the cgroup directories it is
about to make, and whether the container's cgroup was there before): a create killed before it
wrote state.json leaves a container that `state` and `list` show as stopped (as "creating" while
its create still holds the lock) and that `delete` removes, processes and cgroups with it.
When state.json is damaged, `delete --force` takes what it needs from the marshal copy or, failing
that, from made.json.  Files are removed records last, so that a delete killed half-way leaves
either a record or an empty directory (which `delete --force` removes).
"""
import marshal
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import LOCK_EX, LOCK_NB, LOCK_UN, exists, flock, isdir, isfile, join, kill_point, read_file, write_atomic
from ociruntime.errors import OCIError, StateError

STATE_FILE = "state.json"
CACHE_FILE = ".state.marshal"
RECORD_FILE = "made.json"
FIFO = "exec.fifo"
# what the rest of the runtime reads from a state without checking
_REQUIRED = (("id", str), ("pid", int), ("bundle", str), ("rootfs", str), ("created", str))

_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid):
    """runc's rule: [\\w+-\\.]+, and not "." or ".." (a path component)."""
    if not cid or cid in (".", "..") or not all(c in _ID_OK for c in cid) or len(cid) > 1024:
        raise StateError("invalid container ID format: %s" % cid if cid else "invalid container ID format")


def write_pid_file(path, pid):
    """Decimal, no newline, atomically (temp file + rename): the containerd shim reads it."""
    if not path.startswith("/"):
        path = join(os.getcwd(), path)
    try:
        write_atomic(path, str(pid).encode(), 0o644)
    except OSError as e:
        raise OCIError("write pid file %s: %s" % (path, e.strerror)) from None


def _makedirs(root):
    """os.makedirs(root, 0o711, exist_ok=True); os imported only when there is something to make."""
    if isdir(root):
        return
    import os as _os
    _os.makedirs(root, mode=0o711, exist_ok=True)


def _is(value, kind):
    """A state field's type check (a bool is not the int it subclasses)."""
    return isinstance(value, kind) and not isinstance(value, bool)


class StateDir:
    def __init__(self, root, cid, fd, locked=False):
        self.root, self.id, self.fd, self.locked = root, cid, fd, locked
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
        return cls(root, cid, fd, True)

    @classmethod
    def open(cls, root, cid, lock=True, need_record=True):
        """Open (and by default lock) an existing container's directory (``need_record``: one
        with a state.json or made.json, else it is no container)."""
        check_id(cid)
        path = join(root, cid)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise StateError("container does not exist") from None
        if lock:
            flock(fd)
        self = cls(root, cid, fd, lock)
        if need_record and not exists(join(path, STATE_FILE)) and not exists(join(path, RECORD_FILE)):
            # a create that has not yet made anything (it holds the lock), or what a command
            # killed at its first or last step left: an empty directory (delete --force removes it)
            self.close()
            raise StateError("container does not exist")
        return self

    def held_elsewhere(self):
        """Whether another command holds this container's lock (a create still at work)."""
        if self.locked:
            return False
        try:
            flock(self.fd, LOCK_EX | LOCK_NB)
        except BlockingIOError:
            return True
        flock(self.fd, LOCK_UN)
        return False

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- contents --------------------------------------------------------------------------
    def load(self):
        """The container's state; a create that did not write state.json gives made.json's record
        (``incomplete``: no process known, only what it made); StateError when neither exists or
        the one there is damaged (the message names the file)."""
        path = join(self.path, STATE_FILE)
        try:
            data = read_file(path)
        except FileNotFoundError:
            return self.load_record()
        except OSError as e:
            raise StateError("container %s: read %s: %s" % (self.id, path, e.strerror)) from None
        try:
            text, state = marshal.loads(read_file(join(self.path, CACHE_FILE)))
            if text == data:
                return state
        except (OSError, ValueError, EOFError, TypeError):
            pass
        return self._decode(path, data)

    def load_record(self):
        """made.json's record as a state whose create did not finish."""
        path = join(self.path, RECORD_FILE)
        try:
            data = read_file(path)
        except FileNotFoundError:
            raise StateError("container does not exist") from None
        except OSError as e:
            raise StateError("container %s: read %s: %s" % (self.id, path, e.strerror)) from None
        state = self._decode(path, data)
        state["incomplete"] = True
        return state

    def _decode(self, path, data):
        from ociruntime import jsonio
        try:
            state = jsonio.loads(data)
        except ValueError as e:
            why = "empty" if not data.strip() else "not JSON: %s" % e
            raise StateError(damaged(self.id, path, why)) from None
        if not isinstance(state, dict):
            raise StateError(damaged(self.id, path, "not a JSON object"))
        for key, kind in _REQUIRED:
            if not _is(state.get(key), kind):
                raise StateError(damaged(self.id, path, "no %s" % key))
        return state

    def load_any(self):
        """For `delete --force`: (state or None, what was wrong or None).  A damaged state.json
        gives way to its marshal copy's last state, then to made.json's record."""
        try:
            return self.load(), None
        except StateError as e:
            problem = str(e)
        try:
            _, state = marshal.loads(read_file(join(self.path, CACHE_FILE)))
            if isinstance(state, dict) and all(_is(state.get(k), t) for k, t in _REQUIRED):
                return state, problem
        except (OSError, ValueError, EOFError, TypeError):
            pass
        try:
            return self.load_record(), problem
        except StateError:
            return None, problem

    def save(self, state):
        from ociruntime import jsonio
        data = jsonio.dumps(state).encode()
        self._write_or_fail(STATE_FILE, data)
        try:  # a copy: if it cannot be written, the old one no longer matches and load reads JSON
            self._write(CACHE_FILE, marshal.dumps((data, jsonio.loads(data))))
        except OSError:
            pass

    def save_record(self, record, first=False):
        """Write made.json (see the module's docstring).  The ``first`` one straight into a new
        file (no temp file and rename): nothing is made before it is written whole."""
        from ociruntime import jsonio
        data = jsonio.dumps(record).encode()
        if not first:
            return self._write_or_fail(RECORD_FILE, data)
        path = join(self.path, RECORD_FILE)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                if os.write(fd, data) != len(data):
                    raise OSError(28, "No space left on device")  # (a short write to a regular file)
            finally:
                os.close(fd)
        except OSError as e:
            raise StateError("container %s: write %s: %s" % (self.id, path, e.strerror)) from None

    def _write_or_fail(self, name, data):
        try:
            self._write(name, data)
        except OSError as e:
            raise StateError("container %s: write %s: %s" % (self.id, join(self.path, name), e.strerror)) from None

    def _write(self, name, data):
        """Replace the file ``name`` with ``data`` at once (write_atomic)."""
        write_atomic(join(self.path, name), data)

    def fifo_path(self):
        return join(self.path, FIFO)

    def has_fifo(self):
        return exists(self.fifo_path())

    def remove(self):
        """Remove the directory and everything in it (it is ours alone): the records last, so that
        until the directory goes a command killed meanwhile leaves one (or nothing at all)."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            names = []
        last = [n for n in (RECORD_FILE, STATE_FILE) if n in names]
        for name in [n for n in names if n not in last] + [None] + last:
            if name is None:
                kill_point("delete:files-removed")
                continue
            try:
                os.unlink(join(self.path, name))
            except IsADirectoryError:
                import shutil
                shutil.rmtree(join(self.path, name), ignore_errors=True)
            except FileNotFoundError:
                pass
        kill_point("delete:records-removed")
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            pass
        self.close()


def damaged(cid, path, why):
    return "container %s: %s is damaged (%s); `delete --force %s` removes the container" % (cid, path, why, cid)


def list_ids(root):
    """The ids of the containers in ``root`` (a state.json or made.json in their directory)."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if isfile(join(root, n, STATE_FILE)) or isfile(join(root, n, RECORD_FILE)))
