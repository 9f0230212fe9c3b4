"""Tests for sidecar.providers.endpoints: per-user endpoints from the profile, else the config."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from sidecar.errors import NoEndpoint
from sidecar.providers.catalog import BUILTIN_PROVIDERS
from sidecar.providers.endpoints import base_url_for

CLOUDFLARE = BUILTIN_PROVIDERS["cloudflare-ai-gateway"]
FOUNDRY = BUILTIN_PROVIDERS["microsoft-foundry"]
COPILOT = BUILTIN_PROVIDERS["github-copilot"]
VLLM = BUILTIN_PROVIDERS["vllm"]


@pytest.mark.parametrize(
    ("spec_name", "profile", "expected"),
    [
        ("deepseek", {}, "https://api.deepseek.com"),
        (
            "cloudflare-ai-gateway",
            {"metadata": {"accountId": "acc_1", "gatewayId": "gw-2"}},
            "https://gateway.ai.cloudflare.com/v1/acc_1/gw-2/anthropic",
        ),
        (
            "microsoft-foundry",
            {"metadata": {"endpoint": "https://res.services.ai.azure.com/"}},
            "https://res.services.ai.azure.com/openai/v1",
        ),
        (  # OpenClaw's normalizeFoundryEndpoint drops an API suffix, query and fragment
            "microsoft-foundry",
            {"metadata": {"endpoint": "https://res.openai.azure.com/openai/v1?api-version=x#y"}},
            "https://res.openai.azure.com/openai/v1",
        ),
        ("github-copilot", {}, "https://api.individual.githubcopilot.com"),
        ("github-copilot", {"enterpriseUrl": "github.com"}, "https://api.individual.githubcopilot.com"),
        ("github-copilot", {"enterpriseUrl": "Acme.GHE.com"}, "https://copilot-api.acme.ghe.com"),
        ("xai", {"type": "api_key"}, "https://api.x.ai/v1"),
        ("xai", {"type": "oauth"}, "https://cli-chat-proxy.grok.com/v1"),  # 2026.9.6's Grok proxy
    ],
)  # fmt: skip
def test_base_url_from_the_profile(spec_name: str, profile: dict[str, Any], expected: str) -> None:
    """Where OpenClaw keeps the endpoint in the profile, the profile says where to go."""
    assert base_url_for(BUILTIN_PROVIDERS[spec_name], profile, "p:1") == expected


def test_the_profile_wins_over_the_config() -> None:
    """The profile's endpoint first, then the config's base_url (issue #18's order)."""
    configured = replace(CLOUDFLARE, base_url="https://gw.example.com")
    profile = {"metadata": {"accountId": "a", "gatewayId": "g"}}
    assert base_url_for(configured, profile, "p") == (
        "https://gateway.ai.cloudflare.com/v1/a/g/anthropic"
    )
    assert base_url_for(configured, {"metadata": {"accountId": "a"}}, "p") == (
        "https://gw.example.com"
    )


@pytest.mark.parametrize(
    ("spec_name", "message"),
    [
        (
            "vllm",
            "provider 'vllm' needs its own endpoint: set base_url in [providers.vllm] of the "
            'sidecar config, e.g. "http://127.0.0.1:8000/v1" (OpenClaw\'s default)',
        ),
        (
            "cloudflare-ai-gateway",
            "provider 'cloudflare-ai-gateway' needs its own endpoint (profile 'p:1' has no "
            "metadata.accountId and metadata.gatewayId): set base_url in "
            "[providers.cloudflare-ai-gateway] of the sidecar config",
        ),
    ],
)
def test_no_endpoint_names_the_key_to_set(spec_name: str, message: str) -> None:
    """Without a profile endpoint or a config one, the error says exactly which key to set."""
    with pytest.raises(NoEndpoint) as caught:
        base_url_for(BUILTIN_PROVIDERS[spec_name], {}, "p:1")
    assert (caught.value.message, caught.value.status) == (message, 404)


@pytest.mark.parametrize(
    ("spec_name", "profile"),
    [
        ("github-copilot", {"enterpriseUrl": "evil.com"}),
        ("github-copilot", {"enterpriseUrl": "x.ghe.com.evil.com"}),
        ("microsoft-foundry", {"metadata": {"endpoint": "http://res.openai.azure.com"}}),
        ("microsoft-foundry", {"metadata": {"endpoint": "https://u:p@res.openai.azure.com"}}),
        ("microsoft-foundry", {"metadata": {"endpoint": "https://[::1"}}),
        ("cloudflare-ai-gateway", {"metadata": {"accountId": "../x", "gatewayId": "g"}}),
    ],
)
def test_a_bad_profile_endpoint_is_refused(spec_name: str, profile: dict[str, Any]) -> None:
    """A stored endpoint a credential must not go to is refused, never used or skipped."""
    with pytest.raises(NoEndpoint, match="store the profile again"):
        base_url_for(BUILTIN_PROVIDERS[spec_name], profile, "p:1")
