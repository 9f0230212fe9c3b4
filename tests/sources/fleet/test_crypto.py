"""AES-GCM envelopes: round trip, key ids, rotation, and refusals that name the key file."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from sidecar.errors import ConfigError
from sidecar.sources.fleet.crypto import Keyring, SealError, key_id, load_keyring, parse_keys

pytestmark = pytest.mark.fleet

KEY_A, KEY_B = os.urandom(32), os.urandom(32)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_seal_then_open_gives_the_plaintext_back() -> None:
    """A sealed value opens with the same key and additional data."""
    ring = Keyring([KEY_A])
    sealed = ring.seal(b"refresh-token-CANARY", b"aad")
    assert (sealed.kid, ring.open(sealed, b"aad", "x")) == (key_id(KEY_A), b"refresh-token-CANARY")
    assert b"CANARY" not in base64.b64decode(sealed.blob)


def test_two_seals_of_one_value_differ() -> None:
    """A fresh nonce every time: equal plaintexts give unequal ciphertexts."""
    ring = Keyring([KEY_A])
    assert ring.seal(b"same", b"").blob != ring.seal(b"same", b"").blob


def test_other_additional_data_does_not_open() -> None:
    """A blob moved to another profile or version is refused, naming it and the key file."""
    ring = Keyring([KEY_A], source="fleet.key_file (/k)")
    sealed = ring.seal(b"secret", b"profile-a")
    with pytest.raises(SealError, match=r"profile b .*fleet.key_file \(/k\)"):
        ring.open(sealed, b"profile-b", "profile b")


def test_a_wrong_key_is_named_by_key_id_and_key_file() -> None:
    """Sealed under key A, opened with only key B: the error names both ids and the file."""
    sealed = Keyring([KEY_A]).seal(b"secret", b"")
    with pytest.raises(SealError) as info:
        Keyring([KEY_B], source="fleet.key_file (/run/k)").open(sealed, b"", "fleet profile p")
    message = info.value.message
    assert key_id(KEY_A) in message
    assert key_id(KEY_B) in message
    assert "fleet.key_file (/run/k)" in message
    assert "secret" not in message


def test_rotation_seals_with_the_first_key_and_opens_with_any() -> None:
    """Keys listed new-first: old blobs still open, new blobs use the new key."""
    old = Keyring([KEY_A]).seal(b"old", b"")
    ring = Keyring([KEY_B, KEY_A])
    assert (ring.open(old, b"", "x"), ring.seal(b"new", b"").kid) == (b"old", key_id(KEY_B))


def test_a_tampered_blob_is_refused() -> None:
    """Flipping one ciphertext bit fails authentication."""
    ring = Keyring([KEY_A])
    sealed = ring.seal(b"secret", b"")
    raw = bytearray(base64.b64decode(sealed.blob))
    raw[-1] ^= 1
    forged = type(sealed)(sealed.kid, base64.b64encode(bytes(raw)).decode())
    with pytest.raises(SealError, match="altered"):
        ring.open(forged, b"", "x")


def test_key_ids_are_stable_short_and_not_the_key() -> None:
    """A key id is 12 url-safe characters, the same for the same key, unrelated to its text."""
    assert key_id(KEY_A) == key_id(KEY_A) != key_id(KEY_B)
    assert len(key_id(KEY_A)) == 12
    assert key_id(KEY_A) not in b64(KEY_A)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "holds no key"),
        ("# only a comment\n", "holds no key"),
        ("not base64!", "key 1 is not base64 of 32 bytes"),
        (b64(os.urandom(16)), "key 1 is not base64 of 32 bytes"),
        (f"{b64(KEY_A)}\n{b64(b'short')}", "key 2 is not base64 of 32 bytes"),
    ],
)
def test_bad_key_files_are_refused_naming_the_key(text: str, error: str) -> None:
    """Each bad key file is a ConfigError naming fleet.key_file, never its content."""
    with pytest.raises(ConfigError, match=error) as info:
        parse_keys(text, "fleet.key_file (/k)")
    assert info.value.message.startswith("fleet.key_file (/k): ")


def test_a_key_file_with_comments_and_two_keys_loads(tmp_path: Path) -> None:
    """Comments and blank lines are skipped; the order is kept."""
    path = tmp_path / "key"
    path.write_text(f"# current\n{b64(KEY_B)}\n\n# previous\n{b64(KEY_A)}\n")
    assert load_keyring(path).kids() == [key_id(KEY_B), key_id(KEY_A)]


def test_a_missing_key_file_names_it(tmp_path: Path) -> None:
    """An unreadable key file is a ConfigError naming fleet.key_file and the path."""
    with pytest.raises(ConfigError, match=r"fleet.key_file \(.*missing\): cannot read it"):
        load_keyring(tmp_path / "missing")
