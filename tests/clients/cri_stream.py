"""`kubectl exec` without kubectl: the client side of the CRI streaming server, standard library only.

The CRI Exec RPC answers with a URL on containerd's stream server (its copy of Kubernetes'
pkg/kubelet/cri/streaming); the client upgrades an HTTP request to it and speaks Kubernetes'
remotecommand protocol, version v4.channel.k8s.io: five channels (0 stdin, 1 stdout, 2 stderr,
3 error: the exit status as a JSON metav1.Status, 4 resize: {"Width": W, "Height": H}).  Two
transports, as containerd 1.6 offers them:

- `open_websocket(url)`: RFC 6455 with the subprotocol v4.channel.k8s.io, each message the channel's
  byte then its data (what web consoles and the client libraries use).  The protocol has no way to
  close stdin alone (v5, which added one, is newer than containerd 1.6): commands fed that way must
  end without EOF.
- `open_spdy(url)`: SPDY/3.1 as kubectl (before 1.29) speaks it to the kubelet, which passes it on
  to this server: one SPDY stream per channel, opened by the client with a `streamtype` header;
  `close_stdin()` sends the stdin stream's FIN, as `kubectl exec -i` does at the end of its piped
  input.  Header blocks are zlib-compressed (one deflate stream per direction); ours are sent
  without SPDY's preset dictionary, which a reader needs only when the stream's header says so, and
  the server's (SYN_REPLY, which carries nothing we need) are not read.

Either returns a `Stream`: `send(data)`, `resize(width, height)`, `read_until(text)` (stdout so far
once it holds text), `wait()` -> `Result(stdout, stderr, exit_code, status)`.

containerd 1.6.20 never ends a terminal exec without stdin (`kubectl exec -t` without `-i`): it
closes the terminal's output along with the absent stdin ("Failed to pipe stdout ... file already
closed" in its log), with runc as with ociruntime; a terminal exec here always has stdin.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import time
import zlib
from typing import NamedTuple
from urllib.parse import urlsplit

PROTOCOL = "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE = range(5)
STREAM_TIMEOUT = 30          # seconds a test waits for output or the end of the exec


class Result(NamedTuple):
    stdout: bytes
    stderr: bytes
    exit_code: int           # None when the status is a failure other than the command's exit code
    status: dict             # the error channel's metav1.Status ({} if none came)


def exit_code(status):
    """The command's exit code from a v4 status: 0 on Success, the ExitCode cause of a
    NonZeroExitCode failure, None for another failure (the exec could not run)."""
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        for cause in status.get("details", {}).get("causes", []):
            if cause.get("reason") == "ExitCode":
                return int(cause["message"])
    return None


def _upgrade(url, method, headers, timeout):
    """A TCP connection to the URL's host with the request sent and a 101 answer read; returns
    (socket, response headers {lowercase name: value}, bytes read past the headers)."""
    u = urlsplit(url)
    assert u.scheme == "http", f"stream URL {url}: only plain http is expected from the test's containerd"
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    lines = [f"{method} {u.path}{'?' + u.query if u.query else ''} HTTP/1.1", f"Host: {u.netloc}",
             *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    sock.sendall("\r\n".join(lines).encode())
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            sock.close()
            raise AssertionError(f"{method} {url}: no answer in {timeout}s: {data!r}") from None
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status, *fields = head.decode(errors="replace").split("\r\n")
    if not status.startswith("HTTP/1.1 101"):
        sock.close()
        raise AssertionError(f"{method} {url}: {status!r}, not 101 Switching Protocols\n"
                             f"{data.decode(errors='replace')}")
    answer = {}
    for f in fields:
        k, _, v = f.partition(":")
        answer[k.strip().lower()] = v.strip()
    return sock, answer, rest


class _Ended(Exception):
    """The server ended the connection."""


class Stream:
    """One exec's connection; subclasses read and write their transport's frames."""

    def __init__(self, sock, rest, tty):
        self.sock, self.buf, self.tty = sock, rest, tty
        self.data = {STDOUT: bytearray(), STDERR: bytearray(), ERROR: bytearray()}
        self.ended = False

    # the transport's part
    def _write(self, channel, data):
        raise NotImplementedError

    def _read_frame(self, deadline):
        """Read one frame and file its data under its channel (_Ended: the server is done)."""
        raise NotImplementedError

    def _frame(self, deadline):
        """One frame; False once the connection has ended."""
        if self.ended:
            return False
        try:
            self._read_frame(deadline)
            return True
        except _Ended:
            self.ended = True
            return False

    # what the tests call
    def send(self, data):
        self._write(STDIN, data.encode() if isinstance(data, str) else data)

    def resize(self, width, height):
        self._write(RESIZE, json.dumps({"Width": width, "Height": height}).encode())

    def read_until(self, text, timeout=STREAM_TIMEOUT):
        """stdout so far, once it holds text (bytes or str)."""
        want = text.encode() if isinstance(text, str) else text
        deadline = time.monotonic() + timeout
        while want not in self.data[STDOUT]:
            if not self._frame(deadline):
                raise AssertionError(f"the exec ended before {want!r} came: {self._so_far()}")
        return bytes(self.data[STDOUT])

    def wait(self, timeout=STREAM_TIMEOUT):
        """Everything until the server ends the connection, and the exit status."""
        deadline = time.monotonic() + timeout
        while self._frame(deadline):
            pass
        self.close()
        status = json.loads(bytes(self.data[ERROR]) or b"{}")
        return Result(bytes(self.data[STDOUT]), bytes(self.data[STDERR]), exit_code(status), status)

    def close(self):
        self.ended = True
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # reading the socket
    def _need(self, n, deadline):
        """The next n bytes (_Ended if the connection ends first)."""
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the exec's stream timed out: {self._so_far()}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise _Ended()
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _so_far(self):
        return ", ".join(f"{name} {bytes(self.data[ch])!r}"
                         for name, ch in (("stdout", STDOUT), ("stderr", STDERR), ("status", ERROR)))


# ---------------------------------------------------------------------------------------------------
# websocket (RFC 6455)


def open_websocket(url, tty=False, timeout=STREAM_TIMEOUT):
    key = base64.b64encode(os.urandom(16)).decode()
    u = urlsplit(url)
    sock, answer, rest = _upgrade(url, "GET", {
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": PROTOCOL, "Origin": f"http://{u.netloc}"}, timeout)
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    if answer.get("sec-websocket-accept") != accept.decode() or answer.get("sec-websocket-protocol") != PROTOCOL:
        sock.close()
        raise AssertionError(f"websocket handshake with {url}: answer {answer}")
    return WebSocketStream(sock, rest, tty)


def _masked(data, mask):
    key = (mask * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


class WebSocketStream(Stream):
    def __init__(self, *args):
        super().__init__(*args)
        self.message = b""

    def _send_frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(head + mask + _masked(payload, mask))

    def _write(self, channel, data):
        for i in range(0, max(len(data), 1), 32768):
            self._send_frame(0x2, bytes([channel]) + data[i:i + 32768])

    def _read_frame(self, deadline):
        head = self._need(2, deadline)
        fin, opcode, n = head[0] & 0x80, head[0] & 0x0F, head[1] & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._need(2, deadline))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._need(8, deadline))[0]
        mask = self._need(4, deadline) if head[1] & 0x80 else None
        payload = self._need(n, deadline)
        if mask:
            payload = _masked(payload, mask)
        if opcode == 0x8:                      # close: the server is done
            raise _Ended()
        if opcode == 0x9:                      # ping
            self._send_frame(0xA, payload)
        elif opcode in (0x0, 0x1, 0x2):
            self.message += payload
            if fin:
                msg, self.message = self.message, b""
                if msg and msg[0] in self.data:
                    self.data[msg[0]] += msg[1:]


# ---------------------------------------------------------------------------------------------------
# SPDY/3.1 (what kubectl speaks)

SYN_STREAM, RST_STREAM, PING, GOAWAY = 1, 3, 6, 7
FLAG_FIN = 0x01


def open_spdy(url, tty=False, stdin=True, stdout=True, stderr=True, timeout=STREAM_TIMEOUT):
    """The channels opened must be the ones the Exec request asked for (the server waits for each)."""
    sock, answer, rest = _upgrade(url, "POST", {
        "Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": PROTOCOL,
        "Content-Length": "0"}, timeout)
    if answer.get("x-stream-protocol-version") != PROTOCOL:
        sock.close()
        raise AssertionError(f"SPDY upgrade of {url}: protocol {answer.get('x-stream-protocol-version')!r}")
    s = SpdyStream(sock, rest, tty)
    # kubectl's order: the error stream first, then the others
    wanted = [("error", ERROR), ("stdin", STDIN) if stdin else None, ("stdout", STDOUT) if stdout else None,
              ("stderr", STDERR) if stderr and not tty else None, ("resize", RESIZE) if tty else None]
    for name, channel in filter(None, wanted):
        s.open_channel(name, channel)
    return s


class SpdyStream(Stream):
    def __init__(self, *args):
        super().__init__(*args)
        self.deflate = zlib.compressobj()
        self.ids = {}                # channel -> stream id
        self.channels = {}           # stream id -> channel
        self.reset = []              # (stream id, status) of RST_STREAM frames

    def _control(self, ftype, flags, body):
        return struct.pack(">HHI", 0x8000 | 3, ftype, flags << 24 | len(body)) + body

    def open_channel(self, name, channel):
        sid = 2 * len(self.ids) + 1                      # a client's streams have odd ids
        pairs = [(b"streamtype", name.encode())]
        block = struct.pack(">I", len(pairs)) + b"".join(
            struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v for k, v in pairs)
        packed = self.deflate.compress(block) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        # stream id, associated stream id, priority (3 bits) and slot
        body = struct.pack(">IIBB", sid, 0, 0, 0) + packed
        self.sock.sendall(self._control(SYN_STREAM, 0, body))
        self.ids[channel], self.channels[sid] = sid, channel

    def _data(self, channel, data, flags=0):
        self.sock.sendall(struct.pack(">II", self.ids[channel], flags << 24 | len(data)) + data)

    def _write(self, channel, data):
        for i in range(0, len(data), 32768):
            self._data(channel, data[i:i + 32768])

    def close_stdin(self):
        """The stdin stream's FIN: EOF for the command's stdin."""
        self._data(STDIN, b"", FLAG_FIN)

    def _read_frame(self, deadline):
        head = self._need(8, deadline)
        word, length = struct.unpack(">II", head)
        body = self._need(length & 0xFFFFFF, deadline)
        if word & 0x80000000:
            ftype = word & 0xFFFF
            if ftype == PING:
                self.sock.sendall(head + body)
            elif ftype == RST_STREAM:          # the server cancels the streams it ends (CANCEL)
                self.reset.append(struct.unpack(">II", body))
            elif ftype == GOAWAY:              # written after the status and the streams' ends
                raise _Ended()
            return
        channel = self.channels.get(word & 0x7FFFFFFF)
        if channel in self.data:
            self.data[channel] += body
