"""``paste-token`` and ``paste-api-key``: a secret from stdin, with OpenClaw's input checks.

Everything that can be refused without the secret (the provider, the agent, an existing
profile) is checked before it is read, so nobody pastes a secret only to be told to start over.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from sidecar.auth import hints
from sidecar.cli.common import UsageError, open_store, settings_of
from sidecar.config import NAME_PATTERN
from sidecar.config.settings import TOKEN_PATTERN
from sidecar.providers.catalog import ProviderSpec
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.layout import check_agent_id
from sidecar.sources.openclaw_json.store import JsonStore
from sidecar.sources.openclaw_sqlite.store import SqliteStore

_DURATION = re.compile(r"^(\d+)\s*(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# Real keys and tokens are far longer (OpenAI's and OpenRouter's 50+, Anthropic's 100+); this
# only refuses a stray answer or a cut-off paste. --force stores a shorter one anyway.
MIN_SECRET_LENGTH = 8


def parse_duration_ms(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise UsageError(f"--expires-in {text!r}: use a number and a unit, like 30m, 12h or 365d")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def check_provider(asked: str, providers: Mapping[str, ProviderSpec], *, force: bool) -> str:
    """The provider id as OpenClaw normalises it (trimmed, lowercased), which must be an id
    (1-64 of a-z, 0-9, '-', '_') and, unless ``force``, built in or configured."""
    provider = asked.strip().lower()
    if NAME_PATTERN.fullmatch(provider) is None:
        raise UsageError(
            f"--provider {asked[:80]!r}: not a provider id; use 1-64 of a-z, 0-9, '-' and '_', "
            "starting with a letter or digit"
        )
    if provider not in providers and not force:
        raise UsageError(
            f"--provider {provider}: not a provider the sidecar knows (`openclaw-sidecar "
            f"providers` lists them); add [providers.{provider}] with its base_url to the config "
            "and pass --config, or pass --force to store it anyway"
        )
    return provider


def check_api_key_provider(spec: ProviderSpec | None) -> None:
    """The ChatGPT/Codex backend answers only a ChatGPT sign-in: an API key stored for it
    would fail on every request."""
    if spec is not None and spec.kind == "openai-codex":
        raise UsageError(
            f"--provider {spec.name}: the ChatGPT/Codex backend takes a ChatGPT sign-in, not an "
            f"API key; {hints.add_profile(spec, 'main')} (an OpenAI API key goes to "
            "--provider openai)"
        )


def check_new_profile(
    store: JsonStore | SqliteStore, agent: str, profile_id: str, *, replace: bool
) -> None:
    """A profile the agent's own store already holds is replaced only when asked to (one read
    through from main is not: the agent's own copy will stand beside it)."""
    found = store.view_sync(agent).get(profile_id)
    if found is not None and found.owner == agent and not replace:
        raise UsageError(
            f"agent {agent} already has profile {profile_id} ({found.profile.type}, in "
            f"{found.origin}); pass --replace to overwrite it, or choose another --profile-id"
        )


def read_secret(stdin: TextIO, what: str) -> str:
    if stdin.isatty():  # typed or pasted on a terminal: echo off, as for a password
        value = getpass.getpass(f"Paste the {what} and press Enter (not shown): ", sys.stderr)
    else:
        value = stdin.readline()
    value = value.strip()
    if not value:
        raise UsageError(f"no {what} on stdin")
    return value


def check_secret(what: str, secret: str, *, force: bool) -> None:
    """It must fit in an HTTP header as it is injected, and not be absurdly short. The
    messages never quote the secret."""
    if TOKEN_PATTERN.fullmatch(secret) is None:
        raise UsageError(
            f"the {what} has spaces or characters that cannot go in an HTTP header; paste the "
            f"{what} alone, on one line"
        )
    if len(secret) < MIN_SECRET_LENGTH and not force:
        raise UsageError(
            f"the {what} is {len(secret)} characters long, too short to be one; paste the whole "
            f"{what} (or pass --force)"
        )


def check_token(provider: str, token: str) -> None:
    """OpenClaw's input checks for ``paste-token``."""
    if provider == "anthropic" and (not token.startswith("sk-ant-oat01-") or len(token) < 80):
        raise UsageError(
            "an Anthropic setup token starts with sk-ant-oat01- and has at least 80 "
            "characters; create one with `claude setup-token`"
        )
    if provider == "openai" and re.match(r"^sk-(proj-|svcacct-)?[A-Za-z0-9_-]{20,}$", token):
        raise UsageError("that looks like an OpenAI API key: store it with paste-api-key")


def cmd_paste(args: argparse.Namespace, out: TextIO) -> int:
    providers = settings_of(args).providers
    provider = check_provider(args.provider, providers, force=args.force)
    token = args.command == "paste-token"
    if not token:
        check_api_key_provider(providers.get(provider))
    profile_id = args.profile_id or f"{provider}:manual"
    if ":" not in profile_id:
        raise UsageError(f"--profile-id {profile_id!r}: use <provider>:<name>")
    agent = check_agent_id(args.agent)
    lifetime_ms = parse_duration_ms(args.expires_in) if token and args.expires_in else None
    store = open_store(args, os.environ)
    check_new_profile(store, agent, profile_id, replace=args.replace)
    what = "token" if token else "API key"
    secret = read_secret(sys.stdin, what)
    check_secret(what, secret, force=args.force)
    if token:
        check_token(provider, secret)
        fields: dict[str, Any] = {"type": "token", "provider": provider, "token": secret}
        if lifetime_ms is not None:
            fields["expires"] = now_ms() + lifetime_ms
    else:
        fields = {"type": "api_key", "provider": provider, "key": secret}
    path = store.put_profile_sync(agent, profile_id, fields)
    out.write(f"Stored {profile_id} ({fields['type']}) for agent {agent} in {path}\n")
    return 0
