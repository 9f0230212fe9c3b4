"""Typed model of ``auth-profiles.json`` and ``auth-state.json``, parsed and dumped here only.

Each parsed value keeps the JSON object it came from (``raw``); an update is a merge over that
object and a re-parse, so unknown fields, key order and entries we do not understand survive a
rewrite byte for byte (store spec §3), and ``{...old, ...new}`` is exactly OpenClaw's merge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from sidecar.secret import Secret

JSONObject: TypeAlias = dict[str, Any]
CredentialType = Literal["api_key", "token", "oauth"]
RefSource = Literal["env", "file", "exec"]

CREDENTIAL_TYPES: tuple[CredentialType, ...] = ("oauth", "token", "api_key")
STATE_KEYS = ("order", "lastGood", "usageStats")
REFRESH_MARGIN_MS = 300_000  # OpenClaw's "usable" margin: 5 minutes (store spec §6)
_ENV_TEMPLATE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class StoreFormatError(ValueError):
    """The document is not a store at all (not JSON, not an object, no ``profiles`` object)."""


@dataclass(frozen=True)
class SecretRef:
    source: RefSource
    provider: str
    id: str


@dataclass(frozen=True)
class _Base:
    id: str
    provider: str  # lowercased, as OpenClaw compares it
    email: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.id.split(":", 1)[1] if ":" in self.id else self.id


@dataclass(frozen=True)
class ApiKeyCredential(_Base):
    key: Secret | None
    key_ref: SecretRef | None
    type: Literal["api_key"] = "api_key"


@dataclass(frozen=True)
class TokenCredential(_Base):
    token: Secret | None
    token_ref: SecretRef | None
    expires: int | None
    type: Literal["token"] = "token"


@dataclass(frozen=True)
class OAuthCredential(_Base):
    access: Secret
    refresh: Secret
    expires: int | None
    account_id: str | None
    type: Literal["oauth"] = "oauth"

    def is_usable(self, now_ms: int, margin_ms: int = REFRESH_MARGIN_MS) -> bool:
        """OpenClaw's rule: a non-empty access token more than 5 minutes from expiry."""
        return bool(self.access) and self.expires is not None and self.expires - now_ms > margin_ms


Profile: TypeAlias = ApiKeyCredential | TokenCredential | OAuthCredential


@dataclass(frozen=True)
class InvalidEntry:
    """An entry OpenClaw would skip; kept verbatim so a rewrite does not lose it."""

    id: str
    reason: str
    raw: Any = field(repr=False, compare=False)


Entry: TypeAlias = Profile | InvalidEntry


@dataclass(frozen=True)
class UsageStats:
    last_used: int | None = None
    error_count: int = 0
    cooldown_until: int | None = None
    disabled_until: int | None = None
    blocked_until: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def unusable_until(self) -> int:
        return max(self.cooldown_until or 0, self.disabled_until or 0, self.blocked_until or 0)

    def in_cooldown(self, now_ms: int) -> bool:
        return self.unusable_until() > now_ms


@dataclass(frozen=True)
class AuthState:
    """``order`` / ``lastGood`` / ``usageStats``, from ``auth-state.json`` or inline (eras A/B)."""

    order: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    last_good: Mapping[str, str] = field(default_factory=dict)
    usage: Mapping[str, UsageStats] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def is_empty(self) -> bool:
        return not (self.order or self.last_good or self.usage)


@dataclass(frozen=True)
class ProfilesDoc:
    """A parsed ``auth-profiles.json``; ``raw`` is the whole document."""

    entries: Mapping[str, Entry]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def profiles(self) -> dict[str, Profile]:
        return {k: v for k, v in self.entries.items() if not isinstance(v, InvalidEntry)}

    @property
    def invalid(self) -> list[InvalidEntry]:
        return [v for v in self.entries.values() if isinstance(v, InvalidEntry)]

    def has_inline_state(self) -> bool:
        """Eras A/B keep order/lastGood/usageStats inside this file."""
        return any(k in self.raw for k in STATE_KEYS)

    def inline_state(self) -> AuthState:
        return parse_state_object({k: self.raw[k] for k in STATE_KEYS if k in self.raw})


def empty_profiles() -> ProfilesDoc:
    return ProfilesDoc(entries={}, raw={"version": 1, "profiles": {}})


# --- parsing ---------------------------------------------------------------------------------


def parse_profiles(data: bytes | str) -> ProfilesDoc:
    """Parse ``auth-profiles.json``; raises ``StoreFormatError`` if it is not a store."""
    doc = _load_object(data)
    profiles = doc.get("profiles")
    if not isinstance(profiles, dict):
        raise StoreFormatError('"profiles" is missing or not an object')
    entries = {str(pid): parse_entry(str(pid), value) for pid, value in profiles.items()}
    return ProfilesDoc(entries=entries, raw=doc)


def parse_state(data: bytes | str) -> AuthState:
    return parse_state_object(_load_object(data))


def _load_object(data: bytes | str) -> JSONObject:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # also too deep, or an int over 4300 digits
        raise StoreFormatError(f"not valid JSON ({_describe(exc)})") from None
    if not isinstance(doc, dict):
        raise StoreFormatError("the top level is not a JSON object")
    return doc


def _describe(exc: Exception) -> str:
    # Never the message of a UnicodeDecodeError or the document itself: they can hold a secret.
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "a number too long to read"


def parse_entry(profile_id: str, value: Any) -> Entry:
    if not isinstance(value, dict):
        return InvalidEntry(profile_id, "not an object", value)
    kind = value.get("type", value.get("mode"))
    provider = value.get("provider")
    if not isinstance(provider, str) or not provider.strip():
        return InvalidEntry(profile_id, "no provider", value)
    common: dict[str, Any] = {
        "id": profile_id,
        "provider": provider.strip().lower(),
        "email": _opt_str(value.get("email")),
        "raw": value,
    }
    if kind == "api_key":
        key, key_ref = _secret_or_ref(value.get("key", value.get("apiKey")), value.get("keyRef"))
        return ApiKeyCredential(**common, key=key, key_ref=key_ref)
    if kind == "token":
        token, token_ref = _secret_or_ref(value.get("token"), value.get("tokenRef"))
        return TokenCredential(
            **common, token=token, token_ref=token_ref, expires=_opt_int(value.get("expires"))
        )
    if kind == "oauth":
        return _parse_oauth(profile_id, value, common)
    return InvalidEntry(profile_id, f"unknown type {str(kind)[:40]!r}", value)


def _parse_oauth(profile_id: str, value: JSONObject, common: dict[str, Any]) -> Entry:
    access, refresh = value.get("access"), value.get("refresh")
    if isinstance(access, dict) or isinstance(refresh, dict) or _has_ref_field(value):
        return InvalidEntry(profile_id, "SecretRefs are not allowed on oauth profiles", value)
    return OAuthCredential(
        **common,
        access=Secret(access if isinstance(access, str) else ""),
        refresh=Secret(refresh if isinstance(refresh, str) else ""),
        expires=_opt_int(value.get("expires")),
        account_id=_opt_str(value.get("accountId")),
    )


def _has_ref_field(value: JSONObject) -> bool:
    return "keyRef" in value or "tokenRef" in value


def _secret_or_ref(inline: Any, ref: Any) -> tuple[Secret | None, SecretRef | None]:
    """OpenClaw's aliases: a SecretRef object in ``key``/``token`` is the ref, and an inline
    ``"${VAR}"`` string is an env ref."""
    if isinstance(inline, dict):
        return None, parse_ref(inline)
    if isinstance(inline, str):
        match = _ENV_TEMPLATE.match(inline)
        if match:
            return None, SecretRef("env", "default", match.group(1))
        if inline:
            return Secret(inline), parse_ref(ref)
    return None, parse_ref(ref)


def parse_ref(value: Any) -> SecretRef | None:
    if not isinstance(value, dict):
        return None
    source, ref_id = value.get("source"), value.get("id")
    if source not in ("env", "file", "exec") or not isinstance(ref_id, str):
        return None
    provider = value.get("provider")
    return SecretRef(source, provider if isinstance(provider, str) else "default", ref_id)


def parse_state_object(doc: Mapping[str, Any]) -> AuthState:
    order, last_good, usage = (_obj(doc.get(k)) for k in STATE_KEYS)
    return AuthState(
        order={
            str(p): tuple(i for i in ids if isinstance(i, str))
            for p, ids in order.items()
            if isinstance(ids, list)
        },
        last_good={str(p): i for p, i in last_good.items() if isinstance(i, str)},
        usage={str(k): parse_usage(v) for k, v in usage.items() if isinstance(v, dict)},
        raw=dict(doc),
    )


def parse_usage(value: Mapping[str, Any]) -> UsageStats:
    return UsageStats(
        last_used=_opt_int(value.get("lastUsed")),
        error_count=_opt_int(value.get("errorCount")) or 0,
        cooldown_until=_opt_int(value.get("cooldownUntil")),
        disabled_until=_opt_int(value.get("disabledUntil")),
        blocked_until=_opt_int(value.get("blockedUntil")),
        raw=dict(value),
    )


def _obj(value: Any) -> JSONObject:
    return value if isinstance(value, dict) else {}


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or value in (float("inf"), float("-inf")):  # NaN/inf
        return None
    return int(value)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- updating and dumping ----------------------------------------------------------------------


def merge_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> JSONObject:
    """``{...old, ...new}``; a ``None`` in ``new`` deletes the key (a null already stored in
    ``old`` is an unknown field like any other and is kept)."""
    merged = {**old, **new}
    return {k: v for k, v in merged.items() if not (k in new and new[k] is None)}


def with_profile(doc: ProfilesDoc, profile_id: str, fields: Mapping[str, Any]) -> ProfilesDoc:
    """The document with one profile replaced by ``fields`` (kept in place if it existed)."""
    profiles = dict(doc.raw.get("profiles") or {})
    profiles[profile_id] = dict(fields)
    raw = {**doc.raw, "profiles": profiles}
    if "version" not in raw:
        raw = {"version": 1, **raw}
    entries = dict(doc.entries)
    entries[profile_id] = parse_entry(profile_id, profiles[profile_id])
    return ProfilesDoc(entries=entries, raw=raw)


def update_profile(doc: ProfilesDoc, profile_id: str, fields: Mapping[str, Any]) -> ProfilesDoc:
    """Merge ``fields`` over the stored profile, OpenClaw's ``{...old, ...new}``."""
    old = doc.raw.get("profiles", {}).get(profile_id)
    return with_profile(doc, profile_id, merge_fields(old if isinstance(old, dict) else {}, fields))


def with_inline_state(doc: ProfilesDoc, state: AuthState) -> ProfilesDoc:
    """Eras A/B: the state keys are written back inside ``auth-profiles.json``."""
    new = state_object(state, with_version=False)
    # Keys that were inline stay, emptied rather than dropped, so the file keeps its era-A/B
    # shape and never starts to look like an era-C store (which would move state elsewhere).
    raw = {k: (new.pop(k, {}) if k in STATE_KEYS else v) for k, v in doc.raw.items()}
    raw.update(new)
    return ProfilesDoc(entries=doc.entries, raw=raw)


def dump_json(doc: Mapping[str, Any]) -> bytes:
    """Byte-identical to OpenClaw's writer: ``JSON.stringify(doc, null, 2) + "\\n"``."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def dump_profiles(doc: ProfilesDoc) -> bytes:
    return dump_json(doc.raw)


def state_object(state: AuthState, *, with_version: bool = True) -> JSONObject:
    """The JSON of ``state``: known keys rebuilt from the typed values, unknown ones kept."""
    out: JSONObject = {k: v for k, v in state.raw.items() if k not in STATE_KEYS}
    if with_version:
        out = {"version": 1, **out}
    if state.order:
        out["order"] = {p: list(ids) for p, ids in state.order.items()}
    if state.last_good:
        out["lastGood"] = dict(state.last_good)
    if state.usage:
        out["usageStats"] = {k: usage_object(v) for k, v in state.usage.items()}
    return out


def usage_object(usage: UsageStats) -> JSONObject:
    return dict(usage.raw)


def merge_usage(usage: UsageStats, fields: Mapping[str, Any]) -> UsageStats:
    """New usage stats: ``fields`` merged over the stored object (``None`` deletes a key)."""
    return parse_usage(merge_fields(usage.raw, fields))


def dump_state(state: AuthState) -> bytes:
    return dump_json(state_object(state))


def profile_fields(profile: Profile) -> JSONObject:
    """The JSON object a profile is stored as (its raw object)."""
    return dict(profile.raw)
