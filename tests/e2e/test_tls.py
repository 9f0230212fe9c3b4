"""A central sidecar: a network-facing listener serves TLS and requires its client token."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.sidecar import free_port, render_config, start_sidecar
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
KEY = "sk-tls-upstream-key-0123456789"
CLIENT_TOKEN = "tls-client-token-0123456789"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sidecar.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def test_a_network_listener_serves_tls_with_its_client_token(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """On 0.0.0.0 with TLS and a token: HTTPS works and the credential is injected; plain HTTP
    and a missing token get nothing."""
    cert, key = self_signed(tmp_path)
    token = tmp_path / "client-token"
    token.write_text(CLIENT_TOKEN + "\n")
    token.chmod(0o600)
    state = tmp_path / "state"
    store = state / "agents" / "main" / "agent" / "auth-profiles.json"
    store.parent.mkdir(parents=True)
    store.write_text(
        json.dumps(
            {
                "version": 1,
                "profiles": {"openai:main": {"type": "api_key", "provider": "openai", "key": KEY}},
            },
            indent=2,
        )
        + "\n"
    )
    port = free_port()
    config = render_config(
        [{"host": "0.0.0.0", "port": port, "client_token_file": str(token),
          "tls_cert_file": str(cert), "tls_key_file": str(key)}],
        {"openai": {"base_url": upstream.url}},
    )  # fmt: skip
    sidecar = start_sidecar(config, [port], state_dir=state, workdir=tmp_path)
    try:
        base = f"https://127.0.0.1:{port}"
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=trust, timeout=10) as https:
            assert https.get(base + "/healthz").status_code == 200
            answer = https.post(
                base + "/openai/v1/chat/completions",
                headers={"authorization": f"Bearer {CLIENT_TOKEN}"},
                json={"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]},
            )
            refused = https.post(base + "/openai/v1/chat/completions", json={})
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        sidecar.stop()
    assert (answer.status_code, refused.status_code) == (200, 401)
    assert upstream.recorder.last.headers["authorization"] == f"Bearer {KEY}"
    assert CLIENT_TOKEN not in sidecar.logs()
