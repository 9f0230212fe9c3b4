"""Tests for sidecar.providers.injection: the headers that carry each provider's credential."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from sidecar.errors import StoreError
from sidecar.providers import copilot
from sidecar.providers.catalog import BUILTIN_PROVIDERS, ProviderSpec
from sidecar.providers.injection import CredentialType, Injection, credential_injection

OPENAI = BUILTIN_PROVIDERS["openai"]
CODEX = BUILTIN_PROVIDERS["openai-codex"]
ANTHROPIC = BUILTIN_PROVIDERS["anthropic"]
OPENROUTER = BUILTIN_PROVIDERS["openrouter"]
XAI = BUILTIN_PROVIDERS["xai"]
GROK_HEADERS = (("x-xai-token-auth", "xai-grok-cli"), ("x-grok-client-version", "2026.9.6"))
GENERIC = ProviderSpec(name="my-llm", kind="generic", base_url="https://llm.example.com")
CODEX_DEFAULTS = (("openai-beta", "responses=experimental"), ("originator", "codex_cli_rs"))


def jwt(payload: dict[str, object]) -> str:
    """A compact JWS with ``payload`` and a meaningless signature."""
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{encoded}.c2ln"


CLAIMED = jwt({"https://api.openai.com/auth": {"chatgpt_account_id": "acct-claim"}})


@pytest.mark.parametrize(
    ("provider", "cred_type", "account_id", "expected"),
    [
        (OPENAI, "api_key", None, Injection(set=(("authorization", "Bearer SECRET"),))),
        (OPENAI, "token", None, Injection(set=(("authorization", "Bearer SECRET"),))),
        (OPENAI, "oauth", "acct-1", Injection(
            set=(("authorization", "Bearer SECRET"), ("chatgpt-account-id", "acct-1")),
            set_if_absent=CODEX_DEFAULTS)),
        (CODEX, "oauth", "acct-1", Injection(
            set=(("authorization", "Bearer SECRET"), ("chatgpt-account-id", "acct-1")),
            set_if_absent=CODEX_DEFAULTS)),
        (CODEX, "oauth", None, Injection(
            set=(("authorization", "Bearer SECRET"),), set_if_absent=CODEX_DEFAULTS)),
        (ANTHROPIC, "api_key", None, Injection(set=(("x-api-key", "SECRET"),))),
        (ANTHROPIC, "token", None, Injection(
            set=(("authorization", "Bearer SECRET"),), merge_beta="oauth-2025-04-20")),
        (ANTHROPIC, "oauth", None, Injection(
            set=(("authorization", "Bearer SECRET"),), merge_beta="oauth-2025-04-20")),
        (OPENROUTER, "api_key", None, Injection(set=(("authorization", "Bearer SECRET"),))),
        (OPENROUTER, "oauth", "acct-1", Injection(set=(("authorization", "Bearer SECRET"),))),
        (XAI, "api_key", None, Injection(set=(("authorization", "Bearer SECRET"),))),
        (XAI, "oauth", None, Injection(
            set=(("authorization", "Bearer SECRET"),), set_if_absent=GROK_HEADERS)),
        (replace(GENERIC, auth="x-api-key"), "api_key", None,
         Injection(set=(("x-api-key", "SECRET"),))),
        (replace(GENERIC, auth="header:X-Goog-Api-Key"), "api_key", None,
         Injection(set=(("x-goog-api-key", "SECRET"),))),
        (replace(GENERIC, auth="header:X-Goog-Api-Key"), "token", None,
         Injection(set=(("x-goog-api-key", "SECRET"),))),
        (replace(GENERIC, auth="authorization:Key"), "api_key", None,
         Injection(set=(("authorization", "Key SECRET"),))),
        # A provider OpenClaw sends no credential to (apple-fm): the secret goes nowhere.
        (replace(GENERIC, auth="none"), "api_key", None, Injection()),
        (replace(GENERIC, auth="none"), "token", None, Injection()),
        (replace(GENERIC, auth="x-api-key", token_auth="bearer"), "api_key", None,
         Injection(set=(("x-api-key", "SECRET"),))),
        (replace(GENERIC, auth="x-api-key", token_auth="bearer"), "token", None,
         Injection(set=(("authorization", "Bearer SECRET"),))),
        (replace(GENERIC, auth="x-api-key", token_auth="bearer"), "oauth", "acct-1",
         Injection(set=(("authorization", "Bearer SECRET"),))),
    ],
)  # fmt: skip
def test_credential_injection(
    provider: ProviderSpec, cred_type: CredentialType, account_id: str | None, expected: Injection
) -> None:
    """Each provider and credential type gets the headers of store spec §9."""
    assert credential_injection(provider, cred_type, "SECRET", account_id=account_id) == expected


@pytest.mark.parametrize(
    ("account_id", "expected"), [(None, "acct-claim"), ("acct-profile", "acct-profile")]
)
def test_a_codex_account_id_comes_from_the_token_when_the_profile_has_none(
    account_id: str | None, expected: str
) -> None:
    """Without the profile's accountId, chatgpt-account-id is the access token's claim."""
    injection = credential_injection(CODEX, "oauth", CLAIMED, account_id=account_id)
    assert injection.set == (
        ("authorization", f"Bearer {CLAIMED}"),
        ("chatgpt-account-id", expected),
    )


@pytest.mark.parametrize(
    ("secret", "account_id"),
    [
        ("", None),
        ("a\r\nx-evil: 1", None),
        ("a\x00", None),
        ("a\tb", None),
        ("a\x7fb", None),
        ("kéy", None),
        ("ok", "a\nb"),
    ],
)
def test_credential_injection_refuses_unsendable_values(
    secret: str, account_id: str | None
) -> None:
    """A stored value that cannot go in a header (or would inject one) is refused."""
    with pytest.raises(StoreError):
        credential_injection(CODEX, "oauth", secret, account_id=account_id)


def test_a_long_token_of_printable_ascii_is_sent() -> None:
    """A subscription's access token runs to kilobytes; every printable character may be in it."""
    token = "".join(chr(c) for c in range(0x20, 0x7F)) * 20
    injection = credential_injection(CODEX, "oauth", token, account_id="acct")
    assert ("authorization", f"Bearer {token}") in injection.set


def test_injection_repr_hides_the_secret() -> None:
    """An Injection's repr names the headers but not their values."""
    injection = credential_injection(ANTHROPIC, "oauth", "sk-ant-oat01-SECRET", account_id=None)
    assert repr(injection) == "Injection(headers=['authorization'], merge_beta='oauth-2025-04-20')"


COPILOT = BUILTIN_PROVIDERS["github-copilot"]
COMFY = BUILTIN_PROVIDERS["comfy"]
TOOL_TURN = b'{"model": "gpt-5", "messages": [{"role": "tool", "content": "done"}]}'


def test_a_provider_s_quirks_join_its_credential() -> None:
    """Copilot's x-initiator fills a gap after its identity headers, like them never over a
    client's own; the credential's header is unchanged."""
    url = "https://api.individual.githubcopilot.com/chat/completions"
    injection = credential_injection(
        COPILOT, "token", "SECRET", account_id=None, url=url, body=TOOL_TURN
    )
    assert injection == Injection(
        set=(("authorization", "Bearer SECRET"),),
        set_if_absent=(*copilot.GITHUB_TOKEN_HEADERS, ("x-initiator", "agent")),
    )


def test_a_body_quirk_carries_the_credential_and_hides_it() -> None:
    """Comfy Cloud's submission gets the key in its body as well as in X-API-Key; the
    injection's repr names neither."""
    injection = credential_injection(
        COMFY, "api_key", "SECRET", account_id=None,
        url="https://cloud.comfy.org/api/prompt", body=b'{"prompt": {}}',
    )  # fmt: skip
    assert injection == Injection(
        set=(("x-api-key", "SECRET"),),
        body=b'{"prompt":{},"extra_data":{"api_key_comfy_org":"SECRET"}}',
    )
    assert "SECRET" not in repr(injection)
    assert repr(injection) == "Injection(headers=['x-api-key'], merge_beta=None, body=<57 bytes>)"
