"""The real providers' hosts, faked on loopback: an ``HTTPS_PROXY`` for the sidecar process that
answers ``CONNECT host:443``, ends TLS with a certificate for that host signed by a test CA (which
the sidecar trusts through ``SSL_CERT_FILE``), and relays the decrypted requests to a recorder.

The sidecar runs unchanged and with no provider config: it resolves each provider's catalog URL,
opens TLS to that host name through the proxy as it would through a corporate proxy, and the
recorder sees the request exactly as the provider would (Host, path, query, headers, body).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.requests import Request
from starlette.responses import JSONResponse

from tests.fakes.server import RunningServer, start_in_thread

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Seen:
    """One request as the provider's host would have received it."""

    method: str
    host: str
    path: str  # raw, percent-encoding as sent
    query: str
    headers: list[tuple[str, str]]  # lower-cased names, in order
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


@dataclass
class Recorder:
    """A catch-all upstream that answers 200 and keeps what it was sent."""

    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        body = await request.body()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        item = Seen(
            method=scope["method"],
            host=request.headers.get("host", ""),
            path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
        )
        with self.lock:
            self.seen.append(item)
        await JSONResponse({"ok": True})(scope, receive, send)

    def take(self) -> list[Seen]:
        with self.lock:
            items, self.seen = self.seen, []
        return items


def write_certificates(hosts: Iterable[str], directory: Path) -> tuple[Path, Path, Path]:
    """A test CA (``ca.pem``) and one server certificate for every host (``host.pem``,
    ``host.key``), EC P-256 so that making them takes milliseconds."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openclaw-sidecar e2e CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in sorted(set(hosts))]
    names.append(x509.IPAddress(ipaddress.ip_address(LOOPBACK)))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "providers")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "host.pem",
        directory / "host.key",
    )
    ca_path.write_bytes(ca.public_bytes(pem))
    cert_path.write_bytes(leaf.public_bytes(pem))
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


class InterceptingProxy:
    """``CONNECT host:443`` -> TLS as ``host`` -> the recorder, on a loop in its own thread."""

    def __init__(self, tls: ssl.SSLContext, backend_port: int) -> None:
        self.tls = tls
        self.backend_port = backend_port
        self.connects: list[str] = []
        self.refused: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._run, name="intercepting-proxy", daemon=True)

    def start(self) -> InterceptingProxy:
        self.thread.start()
        if not self.started.wait(10):
            raise RuntimeError("the intercepting proxy did not start")
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._client, LOOPBACK, 0))
        self.port = server.sockets[0].getsockname()[1]
        self.started.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            self.loop.run_until_complete(server.wait_closed())
            self.loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method != "CONNECT" or not target.endswith(":443"):
                self.refused.append(f"{method} {target}")
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.connects.append(target)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await writer.start_tls(self.tls)
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.backend_port)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
            pass  # a client that went away; the test sees what was (not) recorded
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        writer.close()


@dataclass
class Interception:
    """What a test needs: the proxy URL and CA file for the sidecar's environment, and the
    recorder that stands in for every provider."""

    proxy: InterceptingProxy
    recorder: Recorder
    ca_file: Path
    backend: RunningServer

    def environment(self) -> dict[str, str]:
        """The sidecar process's environment: the proxy for https, this CA trusted."""
        return {
            "HTTPS_PROXY": self.proxy.url,
            "SSL_CERT_FILE": str(self.ca_file),
            "HTTP_PROXY": "",
            "ALL_PROXY": "",
            "NO_PROXY": "127.0.0.1,localhost",
        }


@contextmanager
def intercepting(hosts: Iterable[str], directory: Path) -> Iterator[Interception]:
    """Fake every host in ``hosts`` on loopback for a sidecar started with ``environment()``."""
    ca_file, cert_file, key_file = write_certificates(hosts, directory)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    recorder = Recorder()
    backend = start_in_thread(recorder)
    proxy = InterceptingProxy(tls, backend.port).start()
    try:
        yield Interception(proxy, recorder, ca_file, backend)
    finally:
        proxy.stop()
        backend.stop()
