"""The parent/child protocol of create: typed messages over a SOCK_SEQPACKET socketpair.

One message is one ``marshal``-encoded tuple ``(kind, *payload)`` (marshal is built in and costs no
import time).  The exchange, in order (-> child to parent, <- parent to child):

  kind            direction  payload              meaning
  "map_ids"       ->         ()                   child unshared a user namespace: write its id maps
  "ids_mapped"    <-         ()                   maps written; child may become root in it
  "init_pid"      ->         (pid,)               the container's init (PID 1 of a new pid ns) exists
                                                (0: the forked child itself is the init)
  "cgroup_joined" <-         ()                   init was placed in its cgroups; it may unshare cgroupns
  "runtime_hooks" ->         ()                   mounts done: run prestart + createRuntime hooks now
  "hooks_done"    <-         (state, start state) they succeeded (on failure the parent kills the child);
                                                the hooks' state JSON: "creating", and "created" for
                                                startContainer ("" without such hooks)
  "ready"         ->         ()                   all set up; init now waits on exec.fifo for start
  "error"         ->         (step, errno, path, text)   a step failed; the child exits after sending

Anything else, or EOF before "ready", is an error naming what was expected and what came.
"""
import marshal
import posix

from ociruntime.errors import InitError, OCIError


def pair():
    """Two connected ends (AF_UNIX SOCK_SEQPACKET, close-on-exec); socket.py itself is not needed
    (it imports enum), its C module is."""
    import _socket
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    return Channel(a.detach()), Channel(b.detach())


class Channel:
    """One end of the pair: a raw fd, read and written whole messages at a time (SOCK_SEQPACKET
    keeps their boundaries)."""

    def __init__(self, fd):
        self.fd = fd

    def __del__(self):  # as a socket object's: a channel dropped on an error path is closed
        if self.fd >= 0:
            posix.close(self.fd)

    def fileno(self):
        return self.fd

    def close(self):
        fd, self.fd = self.fd, -1
        if fd >= 0:
            posix.close(fd)

    def detach(self):
        """The socket's fd, which the caller now owns (the init's last message is sent in C)."""
        fd, self.fd = self.fd, -1
        return fd

    @staticmethod
    def message(kind, *payload):
        return marshal.dumps((kind,) + payload)

    def send(self, kind, *payload):
        """Raises BrokenPipeError when the peer is gone (SIGPIPE is ignored, as Python sets it)."""
        posix.write(self.fd, marshal.dumps((kind,) + payload))

    def recv(self):
        """The next message as a tuple, or None at EOF."""
        try:
            data = posix.read(self.fd, 65536)
        except ConnectionResetError:
            # the peer exited with a message of ours unread: the kernel reports that once, before
            # the messages the peer sent (its error) are read
            data = posix.read(self.fd, 65536)
        if not data:
            return None
        return marshal.loads(data)

    def send_error(self, err):
        """Child side: report an exception as a typed error message."""
        if isinstance(err, InitError):
            self.send("error", err.step, err.errno, err.path, err.text)
        elif isinstance(err, OSError):
            self.send("error", "init", err.errno or 0, err.filename or "", "")
        elif isinstance(err, OCIError):  # e.g. a createContainer hook's HookError: its own words
            self.send("error", str(err), 0, "", "")
        else:
            self.send("error", "init", 0, "", str(err) or type(err).__name__)

    def expect(self, kind, what_died=None):
        """Parent and child: the next message must be ``kind``; returns its payload.  An "error"
        message is raised as the child's InitError."""
        msg = self.recv()
        if msg is None:
            raise InitError(what_died() if what_died else "container init exited before %s" % kind)
        if msg[0] == "error":
            raise InitError(*msg[1:])
        if msg[0] != kind:
            raise InitError("protocol: expected %s, got %s" % (kind, msg[0]))
        return msg[1:]


def run_child(ch, body, step, witness):
    """The forked child's whole life: ``body()``; any failure goes to the parent as an "error"
    message (``step`` names it when it is no OSError/OCIError), or, when nobody listens any more
    (after "ready"), to stderr as "ociruntime: WITNESS: ..." (the container's stderr is the only
    witness).  Never returns: the process ends with _exit (0 once body returned)."""
    code = 1
    try:
        body()
        code = 0
    except BaseException as e:
        err = e if isinstance(e, (OCIError, OSError)) else InitError(step, 0, "", repr(e))
        try:
            ch.send_error(err)
        except OSError:
            posix.write(2, ("ociruntime: %s: %s\n" % (witness, err)).encode(errors="replace"))
    finally:
        posix._exit(code)
