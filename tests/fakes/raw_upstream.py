"""A raw-socket HTTP/1.1 upstream on 127.0.0.1 that records requests exactly as they arrived.

No HTTP library in the way: the request line, the header lines (names as sent, order and repeats
kept) and the body (Content-Length or chunked, de-framed) are read from the socket byte for
byte, so a test sees what the sidecar really put on the wire, and on which connection.

``answer="early"`` answers as soon as a request head is in, before reading its body (as an
upstream that refuses a request at once does), then still reads the body by its framing before
the next request on the connection, as a correct server must. What does not parse as a request
(the tail of a body that was longer than announced, say) is recorded as ``malformed``, answered
400 and the connection closed.

    with RawUpstream(answer="early") as upstream:
        ... upstream.url ...
        upstream.wait_for(2)
        upstream.requests  # [RawRequest(connection=1, method=b"POST", ...), ...]
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Literal

from tests.fakes.server import LOOPBACK

READ_TIMEOUT_S = 5.0
MAX_HEAD = 64 * 1024

Framing = Literal["length", "chunked", "none", "incomplete", "malformed"]


@dataclass(frozen=True)
class RawRequest:
    """One request as it arrived; ``framing`` says how its body was delimited (``incomplete``:
    the connection ended or went quiet first; ``malformed``: ``head`` holds what came instead
    of a request)."""

    connection: int
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    framing: Framing
    head: bytes = b""

    def header(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name]


class _Closed(Exception):
    """The peer closed, or sent nothing for READ_TIMEOUT_S."""


@dataclass
class _Reader:
    sock: socket.socket
    buffer: bytes = b""

    def fill(self) -> None:
        try:
            data = self.sock.recv(65536)
        except OSError as exc:
            raise _Closed from exc
        if not data:
            raise _Closed
        self.buffer += data

    def until(self, marker: bytes, limit: int = MAX_HEAD) -> bytes:
        while marker not in self.buffer:
            if len(self.buffer) > limit:
                raise _Closed
            self.fill()
        found, _, self.buffer = self.buffer.partition(marker)
        return found

    def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self.fill()
        found, self.buffer = self.buffer[:count], self.buffer[count:]
        return found


@dataclass
class RawUpstream:
    answer: Literal["early", "after_body"] = "after_body"
    padding: int = 0  # bytes of filler in every answer, for answers a client stops reading
    requests: list[RawRequest] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(64)
        self._open: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.url = f"http://{LOOPBACK}:{self._listener.getsockname()[1]}"

    def __enter__(self) -> RawUpstream:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        _shut(self._listener)  # wakes the accept() (close alone does not, on Linux)
        self._listener.close()
        with self._cond:
            for sock in self._open:
                _shut(sock)
        for thread in self._threads:
            thread.join(READ_TIMEOUT_S)

    def reset(self) -> None:
        with self._cond:
            self.requests.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[RawRequest]:
        """The requests, once ``count`` of them have arrived (or ``timeout`` has passed)."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.settimeout(READ_TIMEOUT_S)
            with self._cond:
                self.connections += 1
                self._open.append(sock)
                number = self.connections
            self._spawn(self._serve, sock, number)

    def _answer(self, count: int) -> bytes:
        return _response(200, {"n": count, **({"pad": "x" * self.padding} if self.padding else {})})

    def _record(self, request: RawRequest) -> None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    def _serve(self, sock: socket.socket, number: int) -> None:
        reader = _Reader(sock)
        with sock:
            try:
                while self._one(reader, number):
                    pass
            except (_Closed, OSError):  # the peer went away, mid-answer included
                pass

    def _one(self, reader: _Reader, number: int) -> bool:
        """Serve one request; False when the connection must end."""
        head = reader.until(b"\r\n\r\n")
        parsed = _parse_head(head)
        if parsed is None:
            self._record(RawRequest(number, b"", b"", [], b"", "malformed", head))
            reader.sock.sendall(_response(400, {"error": "malformed"}, close=True))
            return False
        method, target, headers = parsed
        count = len(self.requests) + 1
        if self.answer == "early":
            reader.sock.sendall(self._answer(count))
        try:
            body, framing = _read_body(reader, headers)
        except _Closed:
            body, framing = reader.buffer, "incomplete"
            self._record(RawRequest(number, method, target, headers, body, framing, head))
            raise
        self._record(RawRequest(number, method, target, headers, body, framing, head))
        if self.answer == "after_body":
            reader.sock.sendall(self._answer(count))
        return True


def _parse_head(head: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]] | None:
    line, *fields = head.split(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1" or not parts[0].isalpha():
        return None
    headers = []
    for item in fields:
        name, colon, value = item.partition(b":")
        if not colon or not name or name != name.strip():
            return None
        headers.append((name, value.strip(b" \t")))
    return parts[0], parts[1], headers


def _read_body(reader: _Reader, headers: list[tuple[bytes, bytes]]) -> tuple[bytes, Framing]:
    names = {name.lower(): value for name, value in headers}
    if names.get(b"transfer-encoding", b"").lower() == b"chunked":  # RFC 9112 §6.3: TE wins
        return _read_chunked(reader), "chunked"
    if b"content-length" in names:
        return reader.exactly(int(names[b"content-length"])), "length"
    return b"", "none"


def _read_chunked(reader: _Reader) -> bytes:
    body = b""
    while True:
        size = int(reader.until(b"\r\n").partition(b";")[0].strip(), 16)
        if size == 0:
            while reader.until(b"\r\n"):  # trailer fields, up to the empty line
                pass
            return body
        body += reader.exactly(size)
        if reader.exactly(2) != b"\r\n":
            raise _Closed


def _response(status: int, payload: object, *, close: bool = False) -> bytes:
    body = json.dumps(payload).encode()
    head = [
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Bad Request'}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        *(["connection: close"] if close else []),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)
