"""``paste-token`` and ``paste-api-key``: a secret from stdin, with OpenClaw's input checks."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, TextIO

from sidecar.cli.common import UsageError, open_store
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.layout import check_agent_id

_DURATION = re.compile(r"^(\d+)\s*(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration_ms(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise UsageError(f"--expires-in {text!r}: use a number and a unit, like 30m, 12h or 365d")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def read_secret(stdin: TextIO, what: str) -> str:
    if stdin.isatty():
        sys.stderr.write(f"Paste the {what} and press Enter (it is read from stdin, not shown):\n")
    value = stdin.readline().strip()
    if not value:
        raise UsageError(f"no {what} on stdin")
    return value


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
    provider = args.provider.strip().lower()
    profile_id = args.profile_id or f"{provider}:manual"
    if ":" not in profile_id:
        raise UsageError(f"--profile-id {profile_id!r}: use <provider>:<name>")
    agent = check_agent_id(args.agent)
    if args.command == "paste-token":
        secret = read_secret(sys.stdin, "token")
        check_token(provider, secret)
        fields: dict[str, Any] = {"type": "token", "provider": provider, "token": secret}
        if args.expires_in:
            fields["expires"] = now_ms() + parse_duration_ms(args.expires_in)
    else:
        secret = read_secret(sys.stdin, "API key")
        fields = {"type": "api_key", "provider": provider, "key": secret}
    path = open_store(args, os.environ).put_profile_sync(agent, profile_id, fields)
    out.write(f"Stored {profile_id} ({fields['type']}) for agent {agent} in {path}\n")
    return 0
