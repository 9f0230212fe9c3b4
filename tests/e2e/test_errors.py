"""Every error of product.md's table that the proxy makes here, from the real process, in the
provider's own shape (OpenAI style on OpenAI-like paths, Anthropic style on anthropic paths) with
``X-OpenClaw-Sidecar-Error``; upstream errors pass through as the upstream sent them.

Not here: ``reauth_required`` and ``refresh_unavailable`` need OAuth profiles and the token
server, and belong to the refresh end-to-end tests.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    PREFIXES,
    Profile,
    Running,
    SidecarFactory,
    anthropic_style,
    canary,
    openai_style,
    provider_tables,
    sidecar_error,
)
from tests.e2e.sidecar import free_port
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

SHARED, WORK = 0, 1
READ_TIMEOUT_S = 1
CORRUPT = b'{"version": 1, "profiles": {"openai:broken": {"type": "api_key", '
CHAT: dict[str, Any] = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE: dict[str, Any] = {
    "model": "claude-fake",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def sidecar(sidecar_factory: SidecarFactory, fake: FakeUpstream) -> Running:
    """A shared and a work-bound listener; ``down`` and ``down-anthropic`` providers point at a
    closed port; the upstream read timeout is one second; agent ``broken``'s store is corrupt."""
    closed = f"http://127.0.0.1:{free_port()}"
    providers = provider_tables(
        fake.url,
        down={"base_url": closed + "/v1"},
        **{"down-anthropic": {"base_url": closed, "kind": "anthropic"}},
    )
    running = sidecar_factory.start(
        [{"host": "127.0.0.1"}, {"agent": "work"}],
        providers,
        extra={"upstream": {"read_timeout_seconds": READ_TIMEOUT_S}},
        client_tokens={WORK: "client:work"},
        extra_profiles=[
            Profile("main", "down", "down:main", canary("sk")),
            Profile("main", "down-anthropic", "down-anthropic:main", canary("sk-ant-api03")),
        ],
    )
    broken = running.state_dir / "agents" / "broken" / "agent"
    broken.mkdir(parents=True)
    (broken / "auth-profiles.json").write_bytes(CORRUPT)
    keys = running.canaries.keys
    fake.expect(PREFIXES["openai"], [keys["openai:main"], keys["openai:work"]])
    fake.expect(PREFIXES["anthropic"], [keys["anthropic:main"], keys["anthropic:work"]])
    return running


def work_token(sidecar: Running) -> dict[str, str]:
    return {"authorization": f"Bearer {sidecar.canaries.keys['client:work']}"}


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        (
            "/agents/Not-Valid/openai/v1/chat/completions",
            {},
            openai_style(400, "invalid_agent", "invalid_request_error"),
        ),
        (
            "/openai/v1/chat/completions",
            {"X-OpenClaw-Agent": "../main"},
            openai_style(400, "invalid_agent", "invalid_request_error"),
        ),
        (
            "/agents/Not-Valid/anthropic/v1/messages",
            ANTHROPIC_HEADERS,
            anthropic_style(400, "invalid_agent", "invalid_request_error"),
        ),
        (
            "/anthropic/v1/%2e%2e/messages",
            ANTHROPIC_HEADERS,
            anthropic_style(400, "invalid_path", "invalid_request_error"),
        ),
        (
            "/openai/v1/%2e%2e/chat/completions",
            {},
            openai_style(400, "invalid_path", "invalid_request_error"),
        ),
        (
            "/no-such-provider/v1/chat/completions",
            {},
            openai_style(404, "unknown_provider", "not_found_error"),
        ),
        (
            "/openrouter/v1/chat/completions",
            {},
            openai_style(404, "no_profile", "not_found_error"),
        ),
        (
            "/openai@openai:nobody/v1/chat/completions",
            {},
            openai_style(404, "no_profile", "not_found_error"),
        ),
        (
            "/anthropic@anthropic:nobody/v1/messages",
            ANTHROPIC_HEADERS,
            anthropic_style(404, "no_profile", "not_found_error"),
        ),
        (
            "/agents/broken/openai/v1/chat/completions",
            {},
            openai_style(500, "store_unreadable", "api_error"),
        ),
        (
            "/agents/broken/anthropic/v1/messages",
            ANTHROPIC_HEADERS,
            anthropic_style(500, "store_unreadable", "api_error"),
        ),
        (
            "/down/chat/completions",
            {},
            openai_style(502, "upstream_unavailable", "api_error"),
        ),
        (
            "/down-anthropic/v1/messages",
            ANTHROPIC_HEADERS,
            anthropic_style(502, "upstream_unavailable", "api_error"),
        ),
    ],
)
def test_shared_listener_errors(
    sidecar: Running,
    fake: FakeUpstream,
    http: httpx.Client,
    path: str,
    headers: dict[str, str],
    expected: tuple[int, str, Any],
) -> None:
    """Each code in its provider's shape; none of these requests reaches the fake upstream."""
    body = MESSAGE if "anthropic" in path else CHAT
    response = http.post(sidecar.url(SHARED) + path, json=body, headers=headers)
    assert sidecar_error(response) == expected
    assert fake.requests == []


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        (
            "/openai/v1/chat/completions",
            {},
            openai_style(401, "caller_unauthorized", "authentication_error"),
        ),
        (
            "/anthropic/v1/messages",
            {"x-api-key": "dummy", **ANTHROPIC_HEADERS},
            anthropic_style(401, "caller_unauthorized", "authentication_error"),
        ),
        (
            "/agents/main/openai/v1/chat/completions",
            "token",
            openai_style(403, "agent_mismatch", "permission_error"),
        ),
        (
            "/agents/main/anthropic/v1/messages",
            "token",
            anthropic_style(403, "agent_mismatch", "permission_error"),
        ),
    ],
)
def test_bound_listener_errors(
    sidecar: Running,
    fake: FakeUpstream,
    http: httpx.Client,
    path: str,
    headers: dict[str, str] | str,
    expected: tuple[int, str, Any],
) -> None:
    """caller_unauthorized and agent_mismatch on the work-bound port, in each shape."""
    sent = {**work_token(sidecar), **ANTHROPIC_HEADERS} if headers == "token" else headers
    assert isinstance(sent, dict)
    body = MESSAGE if "anthropic" in path else CHAT
    response = http.post(sidecar.url(WORK) + path, json=body, headers=sent)
    assert sidecar_error(response) == expected
    assert fake.requests == []


def test_store_unreadable_leaves_the_file_alone(sidecar: Running, http: httpx.Client) -> None:
    """A corrupt auth-profiles.json is reported (naming no secret) and never rewritten."""
    path = sidecar.state_dir / "agents" / "broken" / "agent" / "auth-profiles.json"
    for _ in range(2):
        response = http.post(sidecar.url() + "/agents/broken/openai/v1/chat/completions", json=CHAT)
        assert response.status_code == 500
    assert path.read_bytes() == CORRUPT
    assert sorted(p.name for p in path.parent.iterdir()) == ["auth-profiles.json"]


def test_upstream_timeout(sidecar: Running, fake: FakeUpstream, http: httpx.Client) -> None:
    """An upstream that never answers is 504 upstream_timeout after read_timeout_seconds."""
    fake.set_mode("hang")
    response = http.post(sidecar.url() + "/openai/v1/chat/completions", json=CHAT)
    assert sidecar_error(response) == openai_style(504, "upstream_timeout", "api_error")
    assert fake.disconnected.wait(5)


def test_upstream_timeout_anthropic(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """The same timeout on an anthropic path, Anthropic-shaped."""
    fake.set_mode("hang")
    response = http.post(
        sidecar.url() + "/anthropic/v1/messages", json=MESSAGE, headers=ANTHROPIC_HEADERS
    )
    assert sidecar_error(response) == anthropic_style(504, "upstream_timeout", "api_error")


@pytest.mark.parametrize("mode", ["500", "429"])
def test_upstream_errors_pass_through(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client, mode: str
) -> None:
    """An upstream's own error reaches the client as sent, with no sidecar error header."""
    fake.set_mode(mode, times=1)
    response = http.post(sidecar.url() + "/openai/v1/chat/completions", json=CHAT)
    assert response.status_code == int(mode)
    assert "x-openclaw-sidecar-error" not in response.headers
    assert response.json()["error"]["message"] in ("fake upstream error 500", "Rate limit reached")


def test_error_paths_keep_the_sidecar_healthy(sidecar: Running, http: httpx.Client) -> None:
    """After all of the above, the process is alive and serves a normal request (Anthropic's:
    the 429 above left main's only OpenAI key in its cooldown, so an OpenAI request is now the
    sidecar's own 429 all_profiles_cooling, as it should be)."""
    assert http.get(sidecar.url() + "/healthz").json() == {"status": "ok"}
    ok = http.post(
        sidecar.url() + "/anthropic/v1/messages", json=MESSAGE, headers=ANTHROPIC_HEADERS
    )
    assert ok.status_code == 200
    resting = http.post(sidecar.url() + "/openai/v1/chat/completions", json=CHAT)
    assert sidecar_error(resting) == openai_style(429, "all_profiles_cooling", "rate_limit_error")


def test_websocket_upgrade_is_refused_with_426(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """A websocket attempt (Codex, OpenClaw try one first) gets 426 and never reaches the
    upstream, so the client falls back to plain HTTP at once."""
    before = len(fake.recorder.requests)
    response = http.get(
        sidecar.url() + "/openai-codex/responses",
        headers={"connection": "Upgrade", "upgrade": "websocket", "sec-websocket-version": "13"},
    )
    assert sidecar_error(response) == openai_style(
        426, "upgrade_unsupported", "invalid_request_error"
    )
    assert len(fake.recorder.requests) == before
