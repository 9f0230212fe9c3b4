"""What ``status`` reports, computed purely from agent views and ``now`` (store spec §11)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sidecar.providers.flows import no_refresh_message
from sidecar.providers.grants import ProviderAuth
from sidecar.secret import Secret
from sidecar.sources.openclaw.model import (
    ApiKeyCredential,
    OAuthCredential,
    Profile,
    TokenCredential,
)
from sidecar.sources.openclaw.views import AgentView, ProfileView

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


def label(profile: Profile) -> str:
    """OpenClaw's ``label``: the profile id, with the email when there is one."""
    return f"{profile.id} ({profile.email})" if profile.email else profile.id


def secret_label(profile: Profile) -> str:
    """The secret as OpenClaw's ``models status`` shows it: masked (first/last characters),
    ``token:`` before a token, ``ref(source:id)`` for a SecretRef, ``OAuth (email)``."""
    if isinstance(profile, OAuthCredential):
        return f"OAuth ({profile.email})" if profile.email else "OAuth"
    secret: Secret | None
    if isinstance(profile, ApiKeyCredential):
        prefix, secret, ref = "", profile.key, profile.key_ref
    else:
        prefix, secret, ref = "token:", profile.token, profile.token_ref
    if secret:
        return prefix + secret.label()
    if ref is not None:
        return f"{prefix}ref({ref.source}:{ref.id})"
    return prefix + "missing"


def expires_at(profile: Profile) -> int | None:
    return profile.expires if isinstance(profile, TokenCredential | OAuthCredential) else None


def profile_entry(view: ProfileView, agent: AgentView, now_ms: int) -> dict[str, Any]:
    profile = view.profile
    expiry = expires_at(profile)
    usage = agent.state.usage.get(view.id)
    cooldown = usage.unusable_until() if usage and usage.in_cooldown(now_ms) else None
    return {
        "profileId": view.id,
        "provider": profile.provider,
        "type": profile.type,
        "status": profile_status(profile, now_ms),
        "expiresAt": expiry,
        "remainingMs": None if expiry is None else expiry - now_ms,
        "source": str(view.origin),
        "owner": view.owner,
        "inherited": view.owner != agent.agent,
        "label": label(profile),
        "secret": secret_label(profile),
        "email": profile.email,
        "cooldownUntil": cooldown,
    }


def agent_entry(agent: AgentView, now_ms: int) -> dict[str, Any]:
    profiles = sorted(agent.profiles.values(), key=lambda v: (v.profile.provider, v.id))
    return {
        "agent": agent.agent,
        "era": agent.era.value,
        "profiles": [profile_entry(v, agent, now_ms) for v in profiles],
        "skipped": [
            {"profileId": e.id, "reason": e.reason, "source": str(p)} for p, e in agent.invalid
        ],
    }


def report(
    agents: Sequence[AgentView], now_ms: int, errors: Sequence[dict[str, str]] = ()
) -> dict[str, Any]:
    return {
        "version": 1,
        "generatedAt": now_ms,
        "agents": [agent_entry(a, now_ms) for a in agents],
        "errors": list(errors),
    }


def refresh_entry(profile: dict[str, Any], auth: ProviderAuth | None) -> dict[str, Any]:
    """Who refreshes an OAuth login (``refresh``): the sidecar (its flavour), only OpenClaw's
    plugin (``openclaw``) or nobody (``none``); and, once such a login has expired, the
    ``action`` that signs in again (null otherwise, and for other profile types)."""
    if profile["type"] != "oauth":
        return {"refresh": None, "action": None}
    refresh = "openclaw" if auth is None else auth.style
    action = None
    if refresh in ("openclaw", "none") and profile["status"] in ("expired", "missing"):
        action = no_refresh_message(auth, profile["provider"], profile["profileId"])
    return {"refresh": refresh, "action": action}


def check_exit_code(doc: dict[str, Any]) -> int:
    """``--check``: 1 if anything is expired or missing (or unreadable), or there is no
    profile at all, else 2 if anything is expiring, else 0 (OpenClaw's ``models status
    --check``, plus "nothing to serve" as a failure)."""
    statuses = {p["status"] for a in doc["agents"] for p in a["profiles"]}
    if doc["errors"] or not statuses or statuses & {"expired", "missing"}:
        return 1
    return 2 if "expiring" in statuses else 0


def format_duration(ms: int) -> str:
    sign, ms = ("-" if ms < 0 else ""), abs(ms)
    minutes = ms // 60_000
    if minutes < 60:
        return f"{sign}{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{sign}{hours}h{minutes % 60:02d}m"
    return f"{sign}{hours // 24}d"
