"""A loopback server that answers every request with the bytes it was given, as they are: for
upstream answers that no HTTP library would send (a header line without a colon, a control
character in a value, a broken status line).

``with RawServer(answer) as server: server.url``; ``server.served`` counts the answers sent.
"""

from __future__ import annotations

import socket
import threading

from tests.fakes.server import bind

_READ_TIMEOUT_S = 5.0


class RawServer:
    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.served = 0
        self._sock = bind()
        self._thread = threading.Thread(target=self._serve, name="raw-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()
        return f"http://{host}:{port}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # shutdown() wakes the blocked accept() (close() alone does not, on Linux).
        self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(_READ_TIMEOUT_S)
                try:
                    _read_request(conn)
                    conn.sendall(self.answer)
                    self.served += 1
                except OSError:
                    continue


def _read_request(conn: socket.socket) -> None:
    """Reads one request's head and its body (by Content-Length, or up to the last chunk), so
    closing the connection afterwards cannot reset it under the client's feet."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(conn)
    head, _, body = data.partition(b"\r\n\r\n")
    fields = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
    }
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        while not body.endswith(b"0\r\n\r\n"):
            body += _recv(conn)
        return
    length = int(fields.get(b"content-length", b"0"))
    while len(body) < length:
        body += _recv(conn)


def _recv(conn: socket.socket) -> bytes:
    chunk = conn.recv(65536)
    if not chunk:
        raise ConnectionError("the client closed the connection mid-request")
    return chunk
