"""terminal: true -- the pty is made inside the container (its own devpts), the master goes to the
caller over --console-socket with SCM_RIGHTS, the slave becomes stdio, the controlling terminal and
/dev/console."""
import fcntl
import posix as os  # os's C half (ociruntime/__init__.py says why)
import struct
import termios

import _socket

from ociruntime import S_IFCHR, S_IFMT, S_IFREG
from ociruntime import _sys as S
from ociruntime.errors import InitError


# <asm-generic/ioctls.h>
TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430
TIOCGPTPEER = 0x5441
UNIX98_PTY_SLAVE_MAJOR = 136  # to 143


def setup_console(console_sock, size, bind_console=True, uid=None):
    """In the container (the init after pivot_root, or an exec'd process): a pty of its devpts; the
    master goes to the console socket, the slave becomes stdio and the controlling terminal (the
    process leads its own session) and, for the init, /dev/console.  The slave belongs to the
    process's user (``uid``; its group stays the devpts one, tty), as runc makes it, so that
    the process can reopen its own terminal."""
    master, slave, name = open_pty()
    if size:
        fcntl.ioctl(slave, termios.TIOCSWINSZ,
                    struct.pack("HHHH", size.get("height", 0), size.get("width", 0), 0, 0))
    if uid:
        try:
            os.fchown(slave, uid, -1)
        except OSError as e:
            # as runc: an id unmapped in the user namespace (EINVAL), an owner we may not change
            # (EPERM), a read-only /dev (EROFS) leave the pty as it is
            if e.errno not in (1, 22, 30):
                raise InitError("chown %s" % name, e.errno) from None
    if bind_console:
        bind_dev_console(slave, name)
    try:
        send_fd(console_sock, name, master)
    except OSError as e:
        raise InitError("send pty master to console socket", e.errno) from None
    os.close(master)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    try:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    except OSError as e:
        raise InitError("set controlling terminal", e.errno) from None
    if slave > 2:
        os.close(slave)


def open_pty():
    """(master, slave, slave's name): the master from /dev/ptmx, checked to be the pty
    multiplexer, the slave taken from the master itself (TIOCGPTPEER), never by its path, and
    checked to be a pty slave on devpts."""
    try:
        # not blocking: whatever the container put at /dev/ptmx (a fifo) cannot stop the init
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        raise InitError("open pty", e.errno, "/dev/ptmx") from None
    try:
        st = os.fstat(master)
        if st.st_mode & S_IFMT != S_IFCHR or st.st_rdev != os.makedev(5, 2):
            raise InitError("open pty", 0, "/dev/ptmx", "not the pty multiplexer (5:2): refused")
        os.set_blocking(master, True)
        try:
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
            num = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
            slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as e:
            raise InitError("open pty", e.errno, "/dev/ptmx") from None
        name = "/dev/pts/%d" % num
        try:
            st = os.fstat(slave)
            kind = S.fstatfs_type(slave)
        except OSError as e:
            os.close(slave)
            raise InitError("open pty", e.errno, name) from None
        if (st.st_mode & S_IFMT != S_IFCHR or not 136 <= os.major(st.st_rdev) <= 143
                or kind != S.DEVPTS_SUPER_MAGIC):
            os.close(slave)
            raise InitError("open pty", 0, name, "not a pty slave on devpts: refused")
    except BaseException:
        os.close(master)
        raise
    return master, slave, name


def bind_dev_console(slave, name):
    """Bind the pty slave onto /dev/console, which must be absent (made here, an empty file) or a
    regular file or character device: never through a symlink of the image's, which the mount
    would follow (/dev/console -> /proc/sys/..., CVE-2025-52565).  The bind is made from the slave's
    fd onto an O_PATH fd of that very file."""
    what = "bind %s to /dev/console" % name
    try:
        dev = os.open("/dev", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise InitError(what, e.errno, "/dev") from None
    try:
        try:
            fd = S.openat2(dev, "console", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, 0, _BENEATH)
        except FileNotFoundError:
            try:
                os.close(os.open("console", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o600, dir_fd=dev))
            except OSError as e:
                raise InitError(what, e.errno, "/dev/console") from None
            fd = S.openat2(dev, "console", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, 0, _BENEATH)
    except OSError as e:
        raise InitError(what, e.errno, "/dev/console") from None
    finally:
        os.close(dev)
    try:
        kind = os.fstat(fd).st_mode & S_IFMT
        if kind != S_IFREG and kind != S_IFCHR:
            raise InitError(what, 0, "/dev/console", "not a regular file or a character device (%s): refused"
                            % _KINDS.get(kind, "type %o" % kind))
        if S.fstatfs_type(fd) in (S.PROC_SUPER_MAGIC, SYSFS_MAGIC):
            raise InitError(what, 0, "/dev/console", "on procfs or sysfs: refused")
        _bind_fd(slave, fd)
    except OSError as e:
        raise InitError(what, e.errno, "/dev/console") from None
    finally:
        os.close(fd)


_BENEATH = S.RESOLVE_BENEATH | S.RESOLVE_NO_SYMLINKS | S.RESOLVE_NO_MAGICLINKS
SYSFS_MAGIC = 0x62656572
_KINDS = {0o120000: "a symbolic link", 0o040000: "a directory", 0o010000: "a fifo", 0o140000: "a socket",
          0o060000: "a block device"}


def _bind_fd(src, dst):
    """Bind the file of fd ``src`` onto the file of fd ``dst``: a clone of it, attached onto
    ``dst`` itself (move_mount), or through /proc/self/fd on kernels without the new mount API."""
    try:
        tree = S.open_tree(src, "", S.OPEN_TREE_CLONE | S.OPEN_TREE_CLOEXEC | S.AT_EMPTY_PATH)
    except OSError as e:
        if e.errno != 38:  # ENOSYS
            raise
        S.mount("/proc/self/fd/%d" % src, "/proc/self/fd/%d" % dst, None, S.MS_BIND)
        return
    try:
        S.move_mount(tree, "", dst, "", S.MOVE_MOUNT_F_EMPTY_PATH | S.MOVE_MOUNT_T_EMPTY_PATH)
    finally:
        os.close(tree)


def send_fd(sock, name, fd):
    anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))]
    sock.sendmsg([name.encode()], anc)


def connect_console(path):
    if isinstance(path, Relay):  # the runtime relays the tty itself: its end of a socketpair
        return path.child
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        from ociruntime.errors import OCIError
        raise OCIError("connect to console socket %s: %s" % (path, e.strerror)) from None
    return s


class Relay:
    """`run` (foreground) and `exec -t` without --console-socket: as runc, the runtime makes its own
    console socket, receives the pty master, puts the host's terminal (stderr, stdout or stdin,
    else /dev/tty) in raw mode, copies stdin -> master and master -> stdout until the process exits
    (EOF on stdin is not passed on: runc does not close the pty), then drains the master, and
    propagates the window size (at attach and on SIGWINCH).  One thread: poll(2) on the fds and a
    pidfd of the process.  Passed to create/exec as their console socket (connect_console)."""
    BUF = 1 << 16

    def __init__(self):
        self.host = self.master = self.saved = None
        self.own_host = False
        for fd in (2, 1, 0):
            if os.isatty(fd):
                self.host = fd
                break
        else:  # every stream redirected: the controlling terminal, if any (runc's initHostConsole)
            try:
                self.host = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            except OSError as e:
                from ociruntime.errors import OCIError
                raise OCIError("open /dev/tty: %s" % (e.strerror[:1].lower() + e.strerror[1:])) from None
            self.own_host = True
        self.parent, self.child = _socket.socketpair(_socket.AF_UNIX,
                                                     _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)

    def size(self):
        """The host terminal's size as a runtime-spec consoleSize (None if unknown)."""
        try:
            rows, cols = struct.unpack("HHHH", fcntl.ioctl(self.host, termios.TIOCGWINSZ, b"\0" * 8))[:2]
        except OSError:
            return None
        return {"height": rows, "width": cols} if rows or cols else None

    def resize(self, *_):
        try:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, fcntl.ioctl(self.host, termios.TIOCGWINSZ, b"\0" * 8))
        except (OSError, TypeError):
            pass

    def attach(self):
        """Receive the master (EOF if the process failed first: its error is reported elsewhere),
        set the window size, clear ONLCR on the pty (the host terminal translates) and make the
        host terminal raw as runc does (cfmakeraw, keeping OPOST)."""
        self.child.close()
        if self.master is not None:
            return
        try:
            _, anc, _, _ = self.parent.recvmsg(256, _socket.CMSG_SPACE(16))
        except OSError:
            return
        fds = []
        for level, kind, data in anc:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds += struct.unpack("%di" % (len(data) // 4), data[:len(data) - len(data) % 4])
        if not fds:
            return
        self.master = fds[0]
        for fd in fds[1:]:
            os.close(fd)
        os.set_blocking(self.master, False)
        self.resize()
        try:
            t = termios.tcgetattr(self.master)
            t[1] &= ~termios.ONLCR
            termios.tcsetattr(self.master, termios.TCSANOW, t)
        except termios.error:
            pass
        try:
            self.saved = termios.tcgetattr(self.host)
            t = termios.tcgetattr(self.host)
        except termios.error:
            return
        t[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                  | termios.IGNCR | termios.ICRNL | termios.IXON)
        t[1] |= termios.OPOST
        t[2] = (t[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        t[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        t[6][termios.VMIN], t[6][termios.VTIME] = 1, 0
        try:
            termios.tcsetattr(self.host, termios.TCSANOW, t)
        except termios.error:
            self.saved = None

    def copy(self, pid):
        """Relay until the process ``pid`` exits, then drain what it left in the pty."""
        import _signal
        import select
        if self.master is None:
            from ociruntime.errors import OCIError
            raise OCIError("no pty master received from the container")
        pidfd = os.pidfd_open(pid)
        old = _signal.signal(_signal.SIGWINCH, self.resize)
        to_master, to_out = bytearray(), bytearray()
        stdin_open = master_open = stdout_open = True
        IN, OUT, BAD = select.POLLIN, select.POLLOUT, select.POLLHUP | select.POLLERR | select.POLLNVAL
        try:
            while True:
                p = select.poll()
                p.register(pidfd, IN)
                if stdin_open and len(to_master) < self.BUF:
                    p.register(0, IN)
                mask = (IN if len(to_out) < self.BUF else 0) | (OUT if to_master else 0)
                if master_open and mask:
                    p.register(self.master, mask)
                if to_out and stdout_open:
                    p.register(1, OUT)
                exited = False
                for fd, ev in p.poll():
                    if fd == pidfd:
                        exited = True
                    elif fd == 0:
                        data = _read(0) if ev & (IN | select.POLLHUP) else b""
                        if data:
                            to_master += data
                        elif data is not None:
                            stdin_open = False  # EOF: not passed on (runc)
                    elif fd == self.master:
                        if ev & OUT and to_master:
                            try:
                                del to_master[:os.write(self.master, to_master)]
                            except BlockingIOError:
                                pass
                            except OSError:
                                to_master.clear()
                        if ev & (IN | BAD):
                            try:
                                data = os.read(self.master, self.BUF)
                            except BlockingIOError:
                                data = None
                            except OSError:  # EIO: every slave fd is closed
                                data = b""
                            if data:
                                to_out += data
                            elif data is not None:
                                master_open = False
                                to_master.clear()
                    elif fd == 1:
                        if not _write(to_out):
                            stdout_open = False
                if exited:
                    break
                if not stdout_open:
                    to_out.clear()
            while master_open:  # drain: what the process wrote before exiting is still in the pty
                try:
                    data = os.read(self.master, self.BUF)
                except OSError:  # EAGAIN (nothing left; others may still hold the slave) or EIO
                    break
                if not data:
                    break
                to_out += data
            if stdout_open:
                while to_out and _write(to_out):
                    pass
        finally:
            _signal.signal(_signal.SIGWINCH, old)
            os.close(pidfd)

    def close(self):
        """Restore the host terminal's mode and close everything (idempotent)."""
        if self.saved is not None:
            try:
                termios.tcsetattr(self.host, termios.TCSANOW, self.saved)
            except termios.error:
                pass
            self.saved = None
        for fd in (self.master, self.host if self.own_host else None):
            if fd is not None:
                os.close(fd)
        self.master = None
        self.own_host = False
        self.parent.close()
        self.child.close()


def _read(fd):
    try:
        return os.read(fd, Relay.BUF)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _write(buf):
    """Write some of ``buf`` to stdout (blocking), dropping what was written; False on error."""
    try:
        del buf[:os.write(1, buf)]
    except InterruptedError:
        pass
    except OSError:
        buf.clear()
        return False
    return True
