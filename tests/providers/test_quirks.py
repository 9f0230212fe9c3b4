"""Tests for sidecar.providers.quirks: which providers' requests are shaped by their body, and
what each hook adds for each credential type."""

from __future__ import annotations

import json

import pytest

from sidecar.providers.catalog import BUILTIN_PROVIDERS
from sidecar.providers.quirks import HOOKS, NO_QUIRK, Quirk, reads_body, request_quirk
from sidecar.providers.spec import CredentialType

CHAT = json.dumps({"model": "m", "messages": [{"role": "tool", "content": "x"}]}).encode()
PROMPT = json.dumps({"prompt": {}}).encode()


def test_only_three_providers_read_bodies() -> None:
    """Copilot, xAI and Comfy: every other provider's body streams as it comes."""
    assert set(HOOKS) == {"github-copilot", "xai", "comfy"}
    assert {n for n, spec in BUILTIN_PROVIDERS.items() if reads_body(spec)} == set(HOOKS)


@pytest.mark.parametrize(
    ("provider", "cred_type", "url", "body", "expected"),
    [
        ("github-copilot", "token", "https://api.individual.githubcopilot.com/chat/completions",
         CHAT, Quirk(headers=(("x-initiator", "agent"),))),
        ("github-copilot", "oauth", "https://api.individual.githubcopilot.com/chat/completions",
         None, Quirk(headers=(("x-initiator", "user"),))),
        ("github-copilot", "token", "https://api.individual.githubcopilot.com/models", None,
         Quirk()),
        # xAI: only a login's requests (to the Grok CLI proxy) carry the model override.
        ("xai", "oauth", "https://cli-chat-proxy.grok.com/v1/chat/completions", CHAT,
         Quirk(headers=(("x-grok-model-override", "m"),))),
        ("xai", "api_key", "https://api.x.ai/v1/chat/completions", CHAT, NO_QUIRK),
        # Comfy Cloud: the key in a workflow submission's body.
        ("comfy", "api_key", "https://cloud.comfy.org/api/prompt?x=1", PROMPT,
         Quirk(body=b'{"prompt":{},"extra_data":{"api_key_comfy_org":"SECRET"}}')),
        ("comfy", "api_key", "https://cloud.comfy.org/api/view", None, Quirk()),
        # Everyone else: nothing.
        ("openai", "api_key", "https://api.openai.com/v1/chat/completions", CHAT, NO_QUIRK),
        ("deepseek", "api_key", "https://api.deepseek.com/chat/completions", CHAT, NO_QUIRK),
    ],
)  # fmt: skip
def test_request_quirk(
    provider: str, cred_type: CredentialType, url: str, body: bytes | None, expected: Quirk
) -> None:
    """Each hook, by credential type and request; the URL's path is what it reads."""
    spec = BUILTIN_PROVIDERS[provider]
    assert request_quirk(spec, cred_type, "SECRET", url, body) == expected


def test_a_quirk_s_repr_shows_no_body() -> None:
    """A written body holds the credential: its repr says only how long it is."""
    quirk = Quirk(body=b'{"k":"SECRET"}')
    assert "SECRET" not in repr(quirk)
    assert repr(quirk) == "Quirk(headers=[], body=<14 bytes>)"
