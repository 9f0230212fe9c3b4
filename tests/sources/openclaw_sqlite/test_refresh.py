"""Tests for sidecar.sources.openclaw_sqlite.refresh: what a spent login tells the user to run."""

from __future__ import annotations

import pytest

from sidecar.sources.openclaw_sqlite.refresh import reauth_message


@pytest.mark.parametrize(
    ("provider", "sidecar_login"),
    [
        ("openai", "`openclaw-sidecar login --provider openai-codex`"),
        ("openai-codex", "`openclaw-sidecar login --provider openai-codex`"),
        ("anthropic", "`openclaw-sidecar login --provider anthropic`"),
        ("xai", None),
        ("chutes", None),
    ],
)
def test_reauth_names_only_commands_that_work(provider: str, sidecar_login: str | None) -> None:
    """OpenClaw's own sign-in always; the sidecar's ``login`` only for a provider it can sign
    in to (a hint naming ``openclaw-sidecar login --provider xai`` would fail)."""
    message = reauth_message(f"{provider}:me", provider, "it has no refresh token")
    assert f"`openclaw models auth login --provider {provider}`" in message
    if sidecar_login is None:
        assert "openclaw-sidecar login" not in message
    else:
        assert sidecar_login in message
