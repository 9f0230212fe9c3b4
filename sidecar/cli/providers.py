"""``providers``: the providers the sidecar serves (the catalog, as the config overrides and extends
it): base URL, how credentials are sent, whether the sidecar can refresh their OAuth logins,
which agents' stores hold profiles for them, and each one's client base URL."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from typing import Any, TextIO

from sidecar.cli.common import open_store, settings_of
from sidecar.config import Listener, Settings
from sidecar.errors import SidecarError
from sidecar.providers.catalog import BUILTIN_PROVIDERS, CATALOG
from sidecar.providers.clients import CLIENT_URL_RULE, client_base_url
from sidecar.providers.endpoints import missing_message
from sidecar.providers.ids import serves
from sidecar.providers.spec import ProviderSpec, can_refresh, refresh_style

_WILDCARDS = ("0.0.0.0", "::", "")


def cmd_providers(args: argparse.Namespace, out: TextIO) -> int:
    settings = settings_of(args)
    profiles, problem = _stored(args)
    sidecar = listener_url(settings.listeners[0])
    rows = [_row(spec, settings, profiles, sidecar) for spec in settings.providers.values()]
    rows.sort(key=lambda row: row["id"])
    doc = {"client_url_rule": CLIENT_URL_RULE, "sidecar": sidecar, "providers": rows}
    if problem is not None:
        doc["store_error"] = problem
    out.write(json.dumps(doc, indent=2) + "\n" if args.json else _table(doc))
    return 0


def listener_url(listener: Listener) -> str:
    """How a client on this host reaches the first listener."""
    host = "127.0.0.1" if listener.host in _WILDCARDS else listener.host
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if listener.tls_cert_file is not None else "http"
    return f"{scheme}://{host}:{listener.port}"


Stored = dict[str, list[tuple[str, str, str]]]  # agent -> [(profile id, provider, type)]


def _stored(args: argparse.Namespace) -> tuple[Stored, str | None]:
    """Every agent's profiles, as (id, provider, type); the store's error, if it has one."""
    found: Stored = {}
    try:
        store = open_store(args, os.environ)
        for agent in store.agents():
            view = store.view_sync(agent)
            found[agent] = [
                (v.id, v.profile.provider, v.profile.type) for v in view.profiles.values()
            ]
    except SidecarError as exc:
        return found, exc.message
    return found, None


def _row(spec: ProviderSpec, settings: Settings, stored: Stored, sidecar: str) -> dict[str, Any]:
    entry = CATALOG.get(spec.name)
    builtin = BUILTIN_PROVIDERS.get(spec.name)
    source = "config" if builtin is None else "catalog" if builtin == spec else "catalog+config"
    return {
        "id": spec.name,
        "label": entry.label if entry else spec.name,
        "source": source,
        "api": entry.api if entry else None,
        "base_url": spec.base_url or None,
        "endpoint": _endpoint(spec),
        "auth": _auth(spec),
        "refresh": can_refresh(spec),
        "refresh_style": refresh_style(spec),
        "profiles": _profiles(spec, stored),
        "client_base_url": client_base_url(sidecar, spec.name),
        "openclaw": list(entry.openclaw) if entry else [],
    }


def _endpoint(spec: ProviderSpec) -> dict[str, Any] | None:
    """For a per-user endpoint: where it comes from, and what to set when it is missing."""
    endpoint = spec.endpoint
    if endpoint is None:
        return None
    return {
        "template": endpoint.template,
        "profile_fields": [f.path for f in endpoint.fields],
        "config_key": endpoint.config_key,
        "missing": None if spec.base_url else missing_message(spec, None),
    }


_ANTHROPIC_TOKENS = "Authorization: Bearer + anthropic-beta: oauth-2025-04-20"
_CODEX_LOGINS = "Authorization: Bearer + chatgpt-account-id (the Codex backend)"


def _auth(spec: ProviderSpec) -> dict[str, str]:
    """How each credential type is sent, as a header (credential_injection, in words)."""
    by_key = _header(spec.auth)
    by_token = _header(spec.token_auth or (spec.auth if spec.kind == "generic" else "bearer"))
    by_login = by_token
    if spec.kind == "anthropic":
        by_token = by_login = _ANTHROPIC_TOKENS
    elif spec.kind == "openai-codex":
        by_key = by_token = _header("bearer")
        by_login = _CODEX_LOGINS
    elif spec.kind == "openai":
        by_login = _CODEX_LOGINS
    return {"api_key": by_key, "token": by_token, "oauth": by_login}


def _header(auth: str) -> str:
    if auth == "none":
        return "none (OpenClaw sends none)"
    if auth == "bearer":
        return "Authorization: Bearer"
    if auth.startswith("authorization:"):
        return f"Authorization: {auth.partition(':')[2]}"
    return auth.removeprefix("header:")


def _profiles(
    spec: ProviderSpec, stored: Mapping[str, list[tuple[str, str, str]]]
) -> dict[str, list[str]]:
    return {
        agent: ids
        for agent, profiles in sorted(stored.items())
        if (ids := [pid for pid, provider, kind in profiles if serves(spec, provider, kind)])
    }


def _upstream(row: Mapping[str, Any]) -> str:
    endpoint = row["endpoint"]
    if endpoint is None:
        return str(row["base_url"])
    table, _, key = endpoint["config_key"].rpartition(".")
    fields = " and ".join(endpoint["profile_fields"])
    if row["base_url"]:
        return f"{row['base_url']}, or the profile's {fields}" if fields else row["base_url"]
    configured = f"set {key} in [{table}]"
    return f"the profile's {fields}, else {configured}" if fields else f"per user: {configured}"


def _table(doc: Mapping[str, Any]) -> str:
    lines = [f"Client URL rule: {doc['client_url_rule']}", ""]
    header = ("PROVIDER", "CLIENT BASE URL", "UPSTREAM", "API KEY AS", "REFRESH", "PROFILES")
    rows = [header]
    for row in doc["providers"]:
        upstream = _upstream(row)
        agents = ", ".join(f"{a} ({len(ids)})" for a, ids in row["profiles"].items()) or "-"
        refresh = row["refresh_style"] or "no"
        rows.append(
            (row["id"], row["client_base_url"], upstream, row["auth"]["api_key"], refresh, agents)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    if "store_error" in doc:
        lines += ["", f"profiles unknown: {doc['store_error']}"]
    return "\n".join(lines) + "\n"
