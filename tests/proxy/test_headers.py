"""Tests for sidecar.proxy.headers: stripping, applying an injection, caller tokens."""

from __future__ import annotations

import pytest

from sidecar.providers.catalog import BUILTIN_PROVIDERS, ProviderSpec
from sidecar.providers.injection import Injection
from sidecar.proxy.headers import (
    body_length,
    client_token_from,
    outbound_request_headers,
    response_headers,
    tokens_match,
)

OPENAI = BUILTIN_PROVIDERS["openai"]
CODEX = BUILTIN_PROVIDERS["openai-codex"]
ANTHROPIC = BUILTIN_PROVIDERS["anthropic"]
OPENROUTER = BUILTIN_PROVIDERS["openrouter"]
GENERIC = ProviderSpec(name="my-llm", kind="generic", base_url="https://llm.example.com")
CODEX_DEFAULTS = (("openai-beta", "responses=experimental"), ("originator", "codex_cli_rs"))


INBOUND = [
    (b"host", b"127.0.0.1:18801"),
    (b"content-type", b"application/json"),
    (b"content-length", b"42"),
    (b"authorization", b"Bearer client-token"),
    (b"x-api-key", b"client-token"),
    (b"api-key", b"x"),
    (b"cookie", b"a=b"),
    (b"chatgpt-account-id", b"spoofed"),
    (b"x-openclaw-agent", b"work"),
    (b"X-OpenClaw-Token", b"t"),
    (b"connection", b"keep-alive, X-Drop-Me"),
    (b"keep-alive", b"timeout=5"),
    (b"x-drop-me", b"1"),
    (b"te", b"trailers"),
    (b"transfer-encoding", b"chunked"),
    (b"upgrade", b"h2c"),
    (b"proxy-authorization", b"Basic x"),
    (b"trailer", b"x"),
    (b"accept-encoding", b"gzip, br"),
    (b"user-agent", b"Anthropic/Python 0.40"),
    (b"x-stainless-retry-count", b"0"),
    (b"x-stainless-retry-count", b"1"),
]
KEPT = [
    (b"content-type", b"application/json"),
    (b"accept-encoding", b"gzip, br"),
    (b"user-agent", b"Anthropic/Python 0.40"),
    (b"x-stainless-retry-count", b"0"),
    (b"x-stainless-retry-count", b"1"),
]


@pytest.mark.parametrize(
    ("inbound", "injection", "expected"),
    [
        (INBOUND, Injection(), KEPT),
        (INBOUND, Injection(set=(("x-api-key", "K"),)), [*KEPT, (b"x-api-key", b"K")]),
        (
            [(b"openai-beta", b"assistants=v2"), (b"accept", b"*/*")],
            Injection(
                set=(("authorization", "Bearer T"), ("chatgpt-account-id", "A")),
                set_if_absent=CODEX_DEFAULTS,
            ),
            [
                (b"openai-beta", b"assistants=v2"),
                (b"accept", b"*/*"),
                (b"authorization", b"Bearer T"),
                (b"chatgpt-account-id", b"A"),
                (b"originator", b"codex_cli_rs"),
            ],
        ),
        (
            [(b"X-Goog-Api-Key", b"client"), (b"accept", b"*/*")],
            Injection(set=(("x-goog-api-key", "K"),)),
            [(b"accept", b"*/*"), (b"x-goog-api-key", b"K")],
        ),
        (
            [(b"accept", b"*/*")],
            Injection(set=(("authorization", "Bearer T"),), merge_beta="oauth-2025-04-20"),
            [
                (b"accept", b"*/*"),
                (b"authorization", b"Bearer T"),
                (b"anthropic-beta", b"oauth-2025-04-20"),
            ],
        ),
        (
            [
                (b"anthropic-version", b"2023-06-01"),
                (b"anthropic-beta", b"prompt-caching-2024-07-31, oauth-2025-04-20"),
                (b"accept", b"*/*"),
                (b"Anthropic-Beta", b"files-api-2025-04-14,prompt-caching-2024-07-31"),
            ],
            Injection(set=(("authorization", "Bearer T"),), merge_beta="oauth-2025-04-20"),
            [
                (b"anthropic-version", b"2023-06-01"),
                (
                    b"anthropic-beta",
                    b"prompt-caching-2024-07-31,oauth-2025-04-20,files-api-2025-04-14",
                ),
                (b"accept", b"*/*"),
                (b"authorization", b"Bearer T"),
            ],
        ),
        (
            [(b"anthropic-beta", b"a,b")],
            Injection(merge_beta="oauth-2025-04-20"),
            [(b"anthropic-beta", b"a,b,oauth-2025-04-20")],
        ),
    ],
)
def test_outbound_request_headers(
    inbound: list[tuple[bytes, bytes]],
    injection: Injection,
    expected: list[tuple[bytes, bytes]],
) -> None:
    """Credentials, hop-by-hop, framing and Host go; the rest stays in order; the injection is
    added."""
    assert outbound_request_headers(inbound, injection) == expected


def test_response_headers_drop_only_hop_by_hop() -> None:
    """Upstream response headers keep everything but hop-by-hop ones, in order."""
    upstream = [
        (b"content-type", b"text/event-stream"),
        (b"connection", b"close, x-internal"),
        (b"x-internal", b"1"),
        (b"transfer-encoding", b"chunked"),
        (b"content-encoding", b"gzip"),
        (b"content-length", b"120"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"keep-alive", b"timeout=5"),
        (b"request-id", b"req_1"),
    ]
    assert response_headers(upstream) == [
        (b"content-type", b"text/event-stream"),
        (b"content-encoding", b"gzip"),
        (b"content-length", b"120"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"request-id", b"req_1"),
    ]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], None),
        ([(b"authorization", b"Bearer abc")], "abc"),
        ([(b"Authorization", b"bearer  abc ")], "abc"),
        ([(b"authorization", b"Basic abc")], None),
        ([(b"authorization", b"Bearer")], None),
        ([(b"authorization", b"Basic abc"), (b"x-api-key", b"k")], "k"),
        ([(b"x-api-key", b"k"), (b"authorization", b"Bearer abc")], "abc"),
        ([(b"api-key", b"a"), (b"x-api-key", b"k")], "k"),
        ([(b"api-key", b"a")], "a"),
        ([(b"x-openclaw-token", b"t")], "t"),
        ([(b"x-api-key", b""), (b"api-key", b"a")], "a"),
        ([(b"x-api-key", b"first"), (b"x-api-key", b"second")], "first"),
    ],
)
def test_client_token_from(headers: list[tuple[bytes, bytes]], expected: str | None) -> None:
    """The caller token comes from Bearer, x-api-key, api-key, then x-openclaw-token."""
    assert client_token_from(headers) == expected


@pytest.mark.parametrize(
    ("given", "expected_token", "expected"),
    [
        ("abc", "abc", True),
        ("abd", "abc", False),
        ("ab", "abc", False),
        (None, "abc", False),
        ("", "", False),
        ("é", "é", True),
    ],
)
def test_tokens_match(given: str | None, expected_token: str, expected: bool) -> None:
    """Tokens match only when equal and non-empty."""
    assert tokens_match(given, expected_token) is expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], None),
        ([(b"transfer-encoding", b"chunked")], None),
        ([(b"content-length", b"0")], 0),
        ([(b"Content-Length", b"0042")], 42),
        ([(b"content-length", b"7, 7")], 7),
    ],
)
def test_body_length(headers: list[tuple[bytes, bytes]], expected: int | None) -> None:
    """The Content-Length the edge let through, as the number that frames the upstream body."""
    assert body_length(headers) == expected
