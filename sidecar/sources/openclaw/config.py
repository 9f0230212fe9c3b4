"""The parts of ``openclaw.json`` the sidecar needs: agent dirs, ``auth.order``, secret providers.

The file is JSON5 (usually plain JSON): plain JSON is tried first because it is much faster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5

from sidecar.errors import StoreError
from sidecar.sources.openclaw.layout import expand_user, is_valid_agent_id


@dataclass(frozen=True)
class ConfiguredProfile:
    """``auth.profiles.<id>``: metadata only (OpenClaw's paste and login commands add one)."""

    provider: str  # lowercased, as OpenClaw compares it
    mode: str  # api_key, token, oauth (or aws-sdk, which needs no stored credential)


@dataclass(frozen=True)
class OpenClawConfig:
    agent_dirs: Mapping[str, Path] = field(default_factory=dict)
    agents: tuple[str, ...] = ()
    auth_order: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    auth_profiles: Mapping[str, ConfiguredProfile] = field(default_factory=dict)
    secret_providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def parse_openclaw_config(text: str, *, path: Path, home: Path) -> OpenClawConfig:
    doc = _load(text, path)
    return OpenClawConfig(
        agent_dirs=_agent_dirs(doc, path.parent, home),
        agents=_agent_ids(doc),
        auth_order=_auth_order(doc),
        auth_profiles=_auth_profiles(doc),
        secret_providers=_secret_providers(doc),
    )


def load_openclaw_config(path: Path, home: Path) -> OpenClawConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return OpenClawConfig()
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    return parse_openclaw_config(text, path=path, home=home)


def _load(text: str, path: Path) -> Mapping[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        try:
            doc = json5.loads(text)
        except ValueError as exc:
            raise StoreError(
                f"{path} is not valid JSON5 ({exc}); fix it with `openclaw doctor`"
            ) from None
    if not isinstance(doc, dict):
        raise StoreError(f"{path}: the top level is not an object")
    return doc


def _agents_list(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    agents = doc.get("agents")
    items = agents.get("list") if isinstance(agents, dict) else None
    return [a for a in items if isinstance(a, dict)] if isinstance(items, list) else []


def _agent_ids(doc: Mapping[str, Any]) -> tuple[str, ...]:
    ids = (a.get("id") for a in _agents_list(doc))
    return tuple(i for i in ids if isinstance(i, str) and is_valid_agent_id(i))


def _agent_dirs(doc: Mapping[str, Any], base: Path, home: Path) -> dict[str, Path]:
    dirs: dict[str, Path] = {}
    for agent in _agents_list(doc):
        agent_id, agent_dir = agent.get("id"), agent.get("agentDir")
        if isinstance(agent_id, str) and is_valid_agent_id(agent_id) and isinstance(agent_dir, str):
            path = expand_user(agent_dir, home)
            dirs[agent_id] = path if path.is_absolute() else base / path
    return dirs


def _auth_order(doc: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    auth = doc.get("auth")
    order = auth.get("order") if isinstance(auth, dict) else None
    if not isinstance(order, dict):
        return {}
    return {
        str(p).lower(): tuple(i for i in ids if isinstance(i, str))
        for p, ids in order.items()
        if isinstance(ids, list)
    }


def _auth_profiles(doc: Mapping[str, Any]) -> dict[str, ConfiguredProfile]:
    auth = doc.get("auth")
    profiles = auth.get("profiles") if isinstance(auth, dict) else None
    if not isinstance(profiles, dict):
        return {}
    return {
        str(pid): ConfiguredProfile(entry["provider"].strip().lower(), entry["mode"])
        for pid, entry in profiles.items()
        if isinstance(entry, dict)
        and isinstance(entry.get("provider"), str)
        and isinstance(entry.get("mode"), str)
    }


def _secret_providers(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    secrets = doc.get("secrets")
    providers = secrets.get("providers") if isinstance(secrets, dict) else None
    if not isinstance(providers, dict):
        return {}
    return {str(k): v for k, v in providers.items() if isinstance(v, dict)}
