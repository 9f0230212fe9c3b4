"""A profile's state by its secret and expiry, as ``openclaw models status`` computes it (store
spec §11): pure, over a profile and ``now``. ``status``, ``fleet list`` and the page show it."""

from __future__ import annotations

from sidecar.sources.openclaw.model import (
    ApiKeyCredential,
    OAuthCredential,
    Profile,
    TokenCredential,
)

EXPIRING_MS = 24 * 3600 * 1000
STATUS_RANK = {"ok": 0, "static": 0, "expiring": 2, "expired": 1, "missing": 1}


def profile_status(profile: Profile, now_ms: int) -> str:
    """``static`` (api key, token without expiry), ``ok``, ``expiring`` (< 24 h), ``expired``,
    ``missing`` (no secret at all)."""
    if isinstance(profile, ApiKeyCredential):
        return "static" if profile.key or profile.key_ref else "missing"
    if isinstance(profile, TokenCredential):
        if not (profile.token or profile.token_ref):
            return "missing"
        if profile.expires is None:
            return "static"
        return _by_expiry(profile.expires, now_ms)
    if not profile.access and not profile.refresh:
        return "missing"
    return _by_expiry(profile.expires or 0, now_ms)


def _by_expiry(expires: int, now_ms: int) -> str:
    if expires <= now_ms:
        return "expired"
    return "expiring" if expires - now_ms < EXPIRING_MS else "ok"


def expires_at(profile: Profile) -> int | None:
    return profile.expires if isinstance(profile, TokenCredential | OAuthCredential) else None
