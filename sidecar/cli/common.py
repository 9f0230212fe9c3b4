"""What every command shares: the settings from --config/--state-dir, and the store."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

from sidecar.config import Settings, load_settings, with_overrides
from sidecar.errors import SidecarError
from sidecar.sources.choice import open_source
from sidecar.sources.openclaw.layout import Layout, resolve_home
from sidecar.sources.openclaw_json.store import JsonStore
from sidecar.sources.openclaw_sqlite.store import SqliteStore


class UsageError(SidecarError):
    code = "usage"
    status = 2


class Missing(SidecarError):
    """What the command needs is not there: the state dir, any profile."""

    code = "not_found"
    status = 404


def settings_of(args: argparse.Namespace) -> Settings:
    settings = load_settings(Path(args.config) if args.config else None, os.environ)
    state_dir = Path(os.path.expanduser(args.state_dir)) if args.state_dir else None
    return with_overrides(
        settings,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        state_dir=state_dir,
    )


def open_store(args: argparse.Namespace, environ: Mapping[str, str]) -> JsonStore | SqliteStore:
    """The install's store, JSON or SQLite (era D), re-read on every call."""
    settings = settings_of(args)
    layout = Layout.from_env(environ, state_dir=settings.state_dir)
    return open_source(layout, home=resolve_home(environ), check_interval_s=0)


def for_store(store: JsonStore | SqliteStore, fields: dict[str, object]) -> dict[str, object]:
    """OpenClaw 2026.6.1+ stores ChatGPT/Codex logins as provider ``openai`` (store spec §3):
    in an SQLite store (2026.6.5+) the sidecar's ``openai-codex`` logins are written so."""
    if isinstance(store, SqliteStore) and fields.get("provider") == "openai-codex":
        return {**fields, "provider": "openai"}
    return fields
