"""A raw-socket HTTP/1.1 client for requests no library would send (two framings at once, a
head trickled byte by byte), which also tells whether the server closed the connection."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from tests.e2e.conftest import Leaks

TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name), None)

    @property
    def code(self) -> str:
        """The sidecar's error code, or "<none>" (an answer the HTTP server made itself)."""
        return self.header("x-openclaw-sidecar-error") or "<none>"


class RawClient:
    """One connection to ``port``; every answer is scanned for canaries."""

    def __init__(self, port: int, leaks: Leaks, timeout: float = TIMEOUT_S) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.leaks = leaks
        self.buffer = b""
        self.eof = False

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, data: bytes) -> Answer:
        self.send(data)
        return self.answer()

    def answer(self) -> Answer:
        """The next response, read by its own framing (Content-Length or chunked)."""
        head = self._until(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = [(n.strip().lower(), v.strip()) for n, _, v in (x.partition(":") for x in lines)]
        framing = dict(headers)
        if framing.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked()
        elif "content-length" in framing:
            body = self._exactly(int(framing["content-length"]))
        else:  # RFC 9112 §6.3: delimited by the server closing the connection
            body = self._to_eof()
        self.leaks.scan("a raw response", head + body)
        return Answer(int(status_line.split(" ")[1]), headers, body)

    def closed(self) -> bool:
        """Whether the server closed the connection (EOF or reset) within the timeout, with
        nothing more sent."""
        if self.eof:
            return True
        try:
            return self.buffer == b"" and self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before a whole answer: {self.buffer[:200]!r}")
        self.buffer += data

    def _to_eof(self) -> bytes:
        while data := self.sock.recv(65536):
            self.buffer += data
        self.eof = True
        found, self.buffer = self.buffer, b""
        return found

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._fill()
        found, _, self.buffer = self.buffer.partition(marker)
        return found

    def _exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self._fill()
        found, self.buffer = self.buffer[:count], self.buffer[count:]
        return found

    def _chunked(self) -> bytes:
        body = b""
        while size := int(self._until(b"\r\n").partition(b";")[0], 16):
            body += self._exactly(size)
            self._exactly(2)
        while self._until(b"\r\n"):
            pass
        return body


def head(method: str, target: str, port: int, *lines: str) -> bytes:
    """A request head: the request line, Host, then ``lines`` as given."""
    text = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", *lines]
    return ("\r\n".join(text) + "\r\n\r\n").encode("utf-8")


def chunked(*chunks: bytes) -> bytes:
    """``chunks`` in chunked framing, with the last-chunk and no trailers."""
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"
