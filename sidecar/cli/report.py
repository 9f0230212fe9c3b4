"""What ``status`` reports, computed purely from agent views and ``now`` (store spec §11); the
states themselves are ``sources.openclaw.expiry``'s."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sidecar.providers.flows import no_refresh_message
from sidecar.providers.grants import ProviderAuth
from sidecar.secret import Secret
from sidecar.sources.openclaw.expiry import expires_at, profile_status
from sidecar.sources.openclaw.model import (
    ApiKeyCredential,
    OAuthCredential,
    Profile,
)
from sidecar.sources.openclaw.views import AgentView, ProfileView
from sidecar.usage.db import WindowRow
from sidecar.usage.windows import label as window_label

# The latest windows of each profile, by (owner, profile id): ``usage.queries.latest_windows``.
Windows = Mapping[tuple[str, str], Sequence[WindowRow]]


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


def window_entry(row: WindowRow) -> dict[str, Any]:
    """A window as its latest answer described it (``utilization``: 0..1, above 1 past it)."""
    w = row.window
    return {
        "name": window_label(w),
        "window": w.name,
        "kind": w.kind,
        "utilization": w.utilization,
        "resetsAt": w.reset_at,
        "windowMinutes": w.window_minutes,
        "limit": w.limit,
        "remaining": w.remaining,
        "status": w.status,
        "seenAt": row.seen_at_ms,
    }


def profile_entry(
    view: ProfileView, agent: AgentView, now_ms: int, windows: Windows | None = None
) -> dict[str, Any]:
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
        "windows": [window_entry(w) for w in (windows or {}).get((view.owner, view.id), ())],
    }


def agent_entry(agent: AgentView, now_ms: int, windows: Windows | None = None) -> dict[str, Any]:
    profiles = sorted(agent.profiles.values(), key=lambda v: (v.profile.provider, v.id))
    return {
        "agent": agent.agent,
        "era": agent.era.value,
        "profiles": [profile_entry(v, agent, now_ms, windows) for v in profiles],
        "skipped": [
            {"profileId": e.id, "reason": e.reason, "source": str(p)} for p, e in agent.invalid
        ],
    }


def report(
    agents: Sequence[AgentView],
    now_ms: int,
    errors: Sequence[dict[str, str]] = (),
    windows: Windows | None = None,
) -> dict[str, Any]:
    return {
        "version": 1,
        "generatedAt": now_ms,
        "agents": [agent_entry(a, now_ms, windows) for a in agents],
        "errors": list(errors),
    }


def windows_text(windows: Sequence[dict[str, Any]], now_ms: int) -> str:
    """``5h 42% resets 2h10m  7d 18% resets 3d``: the windows with a share used."""
    parts = []
    for w in windows:
        if w["utilization"] is None:
            continue
        text = f"{w['name']} {round(w['utilization'] * 100)}%"
        if w["resetsAt"] is not None and w["resetsAt"] > now_ms:
            text += f" resets {format_duration(w['resetsAt'] - now_ms)}"
        parts.append(text)
    return "  ".join(parts)


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
