"""OpenClaw 2026.9.x's refresh coordination, as pure functions: the refresh lock's file name and
the durable "fence" a refresh owner puts in place of an OAuth credential while it refreshes.

Ported from 2026.9.6's ``dist/credential-state-*.mjs`` (``createOAuthRefreshFence``,
``parseOAuthRefreshFence``, ``createFailedOAuthRefreshFence``) and ``dist/oauth-shared-*.mjs``
(``isSafeOAuthPostClaimSettlement``); docs/openclaw-findings.md g. The fence holds only sha256
digests of the claimed secrets: the real refresh token lives in the claimer's memory alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sidecar.sources.openclaw.model import REFRESH_MARGIN_MS, JSONObject

FENCE_PREFIX = "openclaw-oauth-refresh-fence:v1:"
_ACCESS = re.compile(
    r"^openclaw-oauth-refresh-fence:v1:([a-f0-9]{32}):(failed:)?access:([a-f0-9]{64})$"
)
_REFRESH = re.compile(
    r"^openclaw-oauth-refresh-fence:v1:([a-f0-9]{32}):(failed:)?refresh:([a-f0-9]{64})$"
)
# Fields OpenClaw drops from the credential when it fences it (createOAuthRefreshFence).
_DROPPED = ("access", "refresh", "expires", "idToken", "oauthRef", "copyToAgents")
_MAX_EXPIRES = 8_640_000_000_000_000  # JS Date's range: OpenClaw calls larger "invalid"
FenceState = Literal["pending", "failed"]


@dataclass(frozen=True)
class Fence:
    claim_id: str
    state: FenceState
    access_digest: str
    refresh_digest: str


def _js_json(value: Any) -> str:
    """``JSON.stringify`` of strings and small ints (lone surrogates aside)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def lock_digest(provider: str, profile_id: str) -> str:
    """``oauthLockPathDigest(JSON.stringify([provider, profileId]))``: two 64-bit FNV-1a
    lanes. JS precedence: ``right ^ octet + K`` is ``right ^ (octet + K)``."""
    mask = (1 << 64) - 1
    left, right, prime = 14695981039346656037, 11160318154034397263, 1099511628211
    for octet in _js_json([provider, profile_id]).encode("utf-8"):
        left = ((left ^ octet) * prime) & mask
        right = ((right ^ (octet + 11400714819323198485)) * prime) & mask
    return f"{left:016x}{right:016x}"


def lock_name(provider: str, profile_id: str) -> str:
    """The refresh lock's file name in ``<state>/locks/oauth-refresh/`` (2026.9.x)."""
    return f"lock-{lock_digest(provider, profile_id)}.lock"


def secret_digest(profile_id: str, provider: str, kind: str, secret: Any) -> str:
    """``buildOAuthRefreshSecretDigest``: the generation identity of one secret."""
    doc = ["openclaw.oauth-refresh-generation", 1, profile_id, provider, kind, secret]
    return hashlib.sha256(_js_json(doc).encode("utf-8")).hexdigest()


def parse_fence(raw: Mapping[str, Any] | None) -> Fence | None:
    """The fence an OAuth entry is, or None for a real credential (``parseOAuthRefreshFence``)."""
    if not raw or raw.get("type") != "oauth" or not _is_one(raw.get("expires")):
        return None
    access, refresh = raw.get("access"), raw.get("refresh")
    a = _ACCESS.match(access) if isinstance(access, str) else None
    r = _REFRESH.match(refresh) if isinstance(refresh, str) else None
    if a is None or r is None or a.group(1) != r.group(1) or a.group(2) != r.group(2):
        return None
    return Fence(a.group(1), "failed" if a.group(2) else "pending", a.group(3), r.group(3))


def _is_one(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value == 1


def is_fence(raw: Mapping[str, Any] | None) -> bool:
    return parse_fence(raw) is not None


def is_pending_fence(raw: Mapping[str, Any] | None) -> bool:
    found = parse_fence(raw)
    return found is not None and found.state == "pending"


def is_failed_fence(raw: Mapping[str, Any] | None) -> bool:
    found = parse_fence(raw)
    return found is not None and found.state == "failed"


def make_fence(profile_id: str, credential: Mapping[str, Any], claim_id: str) -> JSONObject:
    """The pending fence that replaces ``credential`` (``createOAuthRefreshFence``; OpenClaw
    draws ``claim_id`` from 16 random bytes). Other fields (email, accountId) stay, so an
    observer can check the settled credential's identity."""
    provider = credential.get("provider")
    rest = {k: v for k, v in credential.items() if k not in _DROPPED}
    return {
        **rest,
        "type": "oauth",
        "provider": provider,
        "access": f"{FENCE_PREFIX}{claim_id}:access:"
        + secret_digest(profile_id, str(provider), "access", credential.get("access")),
        "refresh": f"{FENCE_PREFIX}{claim_id}:refresh:"
        + secret_digest(profile_id, str(provider), "refresh", credential.get("refresh")),
        "expires": 1,
    }


def failed_fence(fence: Mapping[str, Any]) -> JSONObject:
    """The terminal no-replay marker of a claim that cannot settle
    (``createFailedOAuthRefreshFence``); anything but a pending fence is returned as it is."""
    found = parse_fence(fence)
    if found is None or found.state == "failed":
        return dict(fence)
    return {
        **fence,
        "access": f"{FENCE_PREFIX}{found.claim_id}:failed:access:{found.access_digest}",
        "refresh": f"{FENCE_PREFIX}{found.claim_id}:failed:refresh:{found.refresh_digest}",
    }


def generation_digest(profile_id: str, credential: Mapping[str, Any]) -> str:
    """The refresh generation a credential or its fence stands for."""
    found = parse_fence(credential)
    if found is not None:
        return found.refresh_digest
    provider = str(credential.get("provider"))
    return secret_digest(profile_id, provider, "refresh", credential.get("refresh"))


def restores_fenced_generation(
    profile_id: str, existing: Mapping[str, Any] | None, incoming: Mapping[str, Any]
) -> bool:
    """OpenClaw refuses a write that puts a fenced refresh generation back
    (``restoresFencedOAuthRefreshGeneration``): that token is single-use and maybe spent."""
    if existing is None or incoming.get("type") != "oauth" or not is_fence(existing):
        return False
    if incoming.get("copyToAgents") is True or is_fence(incoming):
        return False
    return existing.get("provider") == incoming.get("provider") and generation_digest(
        profile_id, existing
    ) == generation_digest(profile_id, incoming)


# --- settlement ---------------------------------------------------------------------------------


def is_usable(
    raw: Mapping[str, Any] | None, now_ms: int, margin_ms: int = REFRESH_MARGIN_MS
) -> bool:
    """``hasUsableOAuthCredential``: a real OAuth credential, more than ``margin_ms`` left."""
    if not raw or raw.get("type") != "oauth" or is_fence(raw):
        return False
    access, expires = raw.get("access"), raw.get("expires")
    if not isinstance(access, str) or not access.strip():
        return False
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        return False
    return 0 < expires <= _MAX_EXPIRES and expires - now_ms > max(0, margin_ms)


def _token(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _email(value: Any) -> str | None:
    token = _token(value)
    return token.lower() if token else None


def same_identity(existing: Mapping[str, Any], incoming: Mapping[str, Any]) -> bool:
    """``isSafeToCopyOAuthIdentity``: same accountId, else same email, else neither has one."""
    a_acct, b_acct = _token(existing.get("accountId")), _token(incoming.get("accountId"))
    a_mail, b_mail = _email(existing.get("email")), _email(incoming.get("email"))
    if a_acct is not None and b_acct is not None:
        return a_acct == b_acct
    if a_mail is not None and b_mail is not None:
        return a_mail == b_mail
    return a_acct is None and a_mail is None


def is_safe_settlement(
    generation: Mapping[str, Any], candidate: Mapping[str, Any] | None, now_ms: int
) -> bool:
    """``isSafeOAuthPostClaimSettlement``: may a claim of ``generation`` end with
    ``candidate``? Only a usable credential of the same provider and a known, same identity
    (a profile with neither email nor accountId is never adopted after a fence)."""
    if candidate is None or candidate.get("provider") != generation.get("provider"):
        return False
    if not is_usable(candidate, now_ms):
        return False
    has_identity = _token(generation.get("accountId")) or _email(generation.get("email"))
    return bool(has_identity) and same_identity(generation, candidate)
