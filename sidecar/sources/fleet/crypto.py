"""Secrets at rest in the fleet's Redis: AES-256-GCM envelopes that name the key they were
sealed with, so keys can rotate (the newest key seals; every listed key opens).

A key id is a keyed fingerprint (HMAC-SHA256 of a fixed label under the key), never the key or
a plain hash of it; it tells which key sealed a value without helping anyone guess the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sidecar.errors import ConfigError, StoreError
from sidecar.secret import Secret

KEY_BYTES = 32
NONCE_BYTES = 12  # the 96-bit nonce GCM is designed for (NIST SP 800-38D §8.2)
_KID_LABEL = b"openclaw-sidecar fleet key id v1"


class SealError(StoreError):
    """A sealed value this keyring cannot open: another key, or tampered with."""


@dataclass(frozen=True)
class Sealed:
    kid: str
    blob: str  # base64 of nonce || ciphertext-with-tag

    def __repr__(self) -> str:
        return f"Sealed(kid={self.kid!r}, blob=<{len(self.blob)} chars>)"


def key_id(key: bytes) -> str:
    digest = hmac.new(key, _KID_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:9]).decode("ascii")


@dataclass(frozen=True)
class Keyring:
    """``keys[0]`` seals; all of them open. ``source`` names where they came from, for errors."""

    keys: Sequence[bytes] = field(repr=False)
    source: str = "fleet.key_file"
    # The keys as a key file holds them (base64), as Secrets while the keyring lives, so the
    # log masks them by value (sidecar.secret.HELD).
    _texts: tuple[Secret, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys or any(len(k) != KEY_BYTES for k in self.keys):
            raise ValueError(f"a keyring needs one or more keys of {KEY_BYTES} bytes")
        texts = tuple(Secret(base64.b64encode(k).decode("ascii")) for k in self.keys)
        object.__setattr__(self, "_texts", texts)  # frozen: set once, here

    @property
    def kid(self) -> str:
        return key_id(self.keys[0])

    def kids(self) -> list[str]:
        return [key_id(k) for k in self.keys]

    def seal(self, plaintext: bytes, aad: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(self.keys[0]).encrypt(nonce, plaintext, aad)
        return Sealed(self.kid, base64.b64encode(nonce + ciphertext).decode("ascii"))

    def open(self, sealed: Sealed, aad: bytes, what: str) -> bytes:
        """The plaintext; ``SealError`` naming ``what`` and the key file otherwise."""
        key = next((k for k in self.keys if key_id(k) == sealed.kid), None)
        if key is None:
            raise SealError(
                f"{what} was encrypted with key id {sealed.kid}, but {self.source} holds key "
                f"id(s) {', '.join(self.kids())}: give every sidecar of the fleet the same key "
                "(list the old key after the new one while rotating); nothing was written"
            )
        try:
            data = base64.b64decode(sealed.blob, validate=True)
            return AESGCM(key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], aad)
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError(
                f"{what} does not decrypt with key id {sealed.kid} of {self.source}: it was "
                "altered or written under another name; nothing was written"
            ) from None


def parse_keys(text: str, source: str) -> Keyring:
    """One base64 key per line (the first seals); blank lines and ``#`` comments skipped."""
    lines = [ln.strip() for ln in text.splitlines()]
    encoded = [ln for ln in lines if ln and not ln.startswith("#")]
    if not encoded:
        raise ConfigError(f"{source}: holds no key; write base64 of {KEY_BYTES} random bytes")
    keys: list[bytes] = []
    for number, value in enumerate(encoded, 1):
        try:
            key = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise ConfigError(
                f"{source}: key {number} is not base64 of {KEY_BYTES} bytes; create one with "
                "`head -c 32 /dev/urandom | base64`"
            )
        keys.append(key)
    return Keyring(keys, source)


def load_keyring(path: Path) -> Keyring:
    source = f"fleet.key_file ({path})"
    try:
        text = path.read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read it: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not base64 text") from None
    return parse_keys(text, source)
