"""The official openai and anthropic SDKs, pointed at the real sidecar with a dummy key, against
the fake upstream: every call completes, the upstream sees only the injected credential, and
everything else the SDK sent arrives unchanged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import httpx2
import openai
import pytest
from anthropic import Anthropic
from openai import OpenAI

from tests.e2e.conftest import (
    CUSTOM_AUTH_HEADER,
    PREFIXES,
    Running,
    SidecarFactory,
    Wire,
    provider_tables,
)
from tests.fakes.upstream import FakeUpstream, RecordedRequest

pytestmark = pytest.mark.e2e

DUMMY = "dummy"
# Headers the sidecar replaces by design: the hop's own (Host, Connection) and the credential.
REPLACED = frozenset({"host", "connection", "authorization", "x-api-key"})
CHAT: dict[str, Any] = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE: dict[str, Any] = {
    "model": "claude-fake",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}
CLIENT_BETAS = "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14"
OAUTH_BETA = "oauth-2025-04-20"


@pytest.fixture(scope="module")
def sidecar(sidecar_factory: SidecarFactory, fake: FakeUpstream) -> Running:
    """One shared listener; the fake accepts only the seeded credentials per provider."""
    running = sidecar_factory.start([{"host": "127.0.0.1"}], provider_tables(fake.url))
    keys = running.canaries.keys
    fake.expect(PREFIXES["openai"], [keys[f"openai:{a}"] for a in ("main", "personal", "work")])
    fake.expect(
        PREFIXES["anthropic"], [keys[f"anthropic:{a}"] for a in ("main", "personal", "work")]
    )
    return running


def openai_sdk(base_url: str, http_client: httpx2.Client, **kwargs: Any) -> OpenAI:
    return OpenAI(
        base_url=base_url, api_key=DUMMY, http_client=http_client, max_retries=0, **kwargs
    )


def anthropic_sdk(base_url: str, http_client: httpx2.Client, **kwargs: Any) -> Anthropic:
    return Anthropic(
        base_url=base_url, api_key=DUMMY, http_client=http_client, max_retries=0, **kwargs
    )


def only(fake: FakeUpstream) -> RecordedRequest:
    """The one request the upstream received."""
    requests = fake.requests
    assert len(requests) == 1, [r.path for r in requests]
    return requests[0]


def check_forwarded(
    wire: Wire,
    fake: FakeUpstream,
    *,
    path: str,
    injected: Mapping[str, str],
    beta: str | None = None,
) -> RecordedRequest:
    """The upstream got ``path`` with exactly ``injected`` as credential, its own Host, none of
    the client's credentials or X-OpenClaw-* headers, and every other header, the query and the
    body exactly as the client sent them; with ``beta``, anthropic-beta is that instead."""
    got = only(fake)
    sent = wire.sent[-1]
    assert (got.method, got.path, got.query) == (sent.method, path, sent.query)
    assert got.body == sent.body
    assert got.headers["host"] == httpx.URL(fake.url).netloc.decode()
    assert [v for _, v in got.raw_headers if DUMMY in v] == []
    assert [k for k, _ in got.raw_headers if k.startswith("x-openclaw-")] == []
    credential_names = {"authorization", "x-api-key", "api-key", CUSTOM_AUTH_HEADER.lower()}
    assert {k: v for k, v in got.raw_headers if k in credential_names | set(injected)} == injected
    replaced = REPLACED | set(injected) | ({"anthropic-beta"} if beta else set())
    if beta is not None:
        assert got.headers["anthropic-beta"] == beta
    kept_sent = [(k, v) for k, v in sent.headers if k not in replaced]
    kept_sent = [(k, v) for k, v in kept_sent if not k.startswith("x-openclaw-")]
    assert [(k, v) for k, v in got.raw_headers if k not in replaced] == kept_sent
    return got


def bearer(running: Running, name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {running.canaries.keys[name]}"}


def api_key(running: Running, name: str) -> dict[str, str]:
    return {"x-api-key": running.canaries.keys[name]}


# --------------------------------------------------------------------------- openai


def test_openai_chat_completion(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """A non-streaming chat completion through /openai/v1 carries main's key and nothing else."""
    client = openai_sdk(sidecar.url() + "/openai/v1", wire.sdk_http)
    completion = client.chat.completions.create(
        model="gpt-fake",
        messages=[{"role": "user", "content": "hi"}],
        extra_query={"trace": "a b", "n": "1"},
    )
    assert completion.choices[0].message.content == "Hello from the fake upstream."
    check_forwarded(
        wire,
        fake,
        path="/oa/v1/chat/completions",
        injected=bearer(sidecar, "openai:main"),
    )


def test_openai_chat_completion_stream(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """A streaming chat completion arrives chunk by chunk and ends with the whole text."""
    client = openai_sdk(sidecar.url() + "/openai/v1", wire.sdk_http)
    stream = client.chat.completions.create(
        model="gpt-fake",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    deltas = [c.choices[0].delta.content for c in stream if c.choices]
    assert "".join(d or "" for d in deltas) == "Hello from the fake upstream."
    check_forwarded(
        wire,
        fake,
        path="/oa/v1/chat/completions",
        injected=bearer(sidecar, "openai:main"),
    )


def test_openai_responses(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """The Responses API, non-streaming."""
    client = openai_sdk(sidecar.url() + "/openai/v1", wire.sdk_http)
    response = client.responses.create(model="gpt-fake", input="hi")
    assert response.output_text == "Hello from the fake upstream."
    check_forwarded(wire, fake, path="/oa/v1/responses", injected=bearer(sidecar, "openai:main"))


def test_openai_responses_stream(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """The Responses API, streaming: the SDK sees every event through to response.completed."""
    client = openai_sdk(sidecar.url() + "/openai/v1", wire.sdk_http)
    with client.responses.stream(model="gpt-fake", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert final.output_text == "Hello from the fake upstream."
    check_forwarded(wire, fake, path="/oa/v1/responses", injected=bearer(sidecar, "openai:main"))


def test_openai_embeddings(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """Embeddings (the SDK asks for base64 and decodes it)."""
    client = openai_sdk(sidecar.url() + "/openai/v1", wire.sdk_http)
    result = client.embeddings.create(model="fake-embed", input=["a", "b"], dimensions=4)
    assert [len(item.embedding) for item in result.data] == [4, 4]
    check_forwarded(wire, fake, path="/oa/v1/embeddings", injected=bearer(sidecar, "openai:main"))


def test_openai_models_list(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """A GET with no body: the models list."""
    client = openai_sdk(sidecar.url() + "/openai/v1", wire.sdk_http)
    assert [m.id for m in client.models.list()] == ["fake-model", "gpt-fake", "claude-fake"]
    check_forwarded(wire, fake, path="/oa/v1/models", injected=bearer(sidecar, "openai:main"))


def test_agent_path_form(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """/agents/work/openai/v1 uses work's own profile (its token outranks main's key)."""
    client = openai_sdk(sidecar.url() + "/agents/work/openai/v1", wire.sdk_http)
    client.chat.completions.create(**CHAT)
    check_forwarded(
        wire, fake, path="/oa/v1/chat/completions", injected=bearer(sidecar, "openai:work")
    )


def test_profile_pin_path_form(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """/agents/work/openai@openai:main/v1 pins main's key, which work inherits."""
    client = openai_sdk(sidecar.url() + "/agents/work/openai@openai:main/v1", wire.sdk_http)
    client.chat.completions.create(**CHAT)
    check_forwarded(
        wire, fake, path="/oa/v1/chat/completions", injected=bearer(sidecar, "openai:main")
    )


def test_agent_header_form(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """X-OpenClaw-Agent chooses the agent; the header is not forwarded."""
    client = openai_sdk(
        sidecar.url() + "/openai/v1",
        wire.sdk_http,
        default_headers={"X-OpenClaw-Agent": "personal"},
    )
    client.chat.completions.create(**CHAT)
    check_forwarded(
        wire,
        fake,
        path="/oa/v1/chat/completions",
        injected=bearer(sidecar, "openai:personal"),
    )


def test_profile_header_form(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """X-OpenClaw-Agent plus X-OpenClaw-Profile pin a profile the agent inherits."""
    headers = {"X-OpenClaw-Agent": "personal", "X-OpenClaw-Profile": "openai:main"}
    client = openai_sdk(sidecar.url() + "/openai/v1", wire.sdk_http, default_headers=headers)
    client.chat.completions.create(**CHAT)
    check_forwarded(
        wire, fake, path="/oa/v1/chat/completions", injected=bearer(sidecar, "openai:main")
    )


def test_custom_provider(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """[providers.my-llm] with auth = "header:X-Custom-Key": the key goes in that header."""
    client = openai_sdk(sidecar.url() + "/my-llm", wire.sdk_http)
    completion = client.chat.completions.create(**CHAT)
    assert completion.choices[0].message.content == "Hello from the fake upstream."
    injected = {CUSTOM_AUTH_HEADER.lower(): sidecar.canaries.keys["my-llm:main"]}
    check_forwarded(wire, fake, path="/my/v1/chat/completions", injected=injected)


def test_custom_provider_base_url_repeated(
    sidecar: Running, fake: FakeUpstream, wire: Wire
) -> None:
    """The /v1/v1 trap: my-llm's base_url ends in /v1, so the SDK's natural …/my-llm/v1 is
    refused with a hint the SDK shows, and nothing reaches the upstream."""
    client = openai_sdk(sidecar.url() + "/my-llm/v1", wire.sdk_http)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(**CHAT)
    assert caught.value.response.headers["x-openclaw-sidecar-error"] == "repeated_base_path"
    assert "drop '/v1' from the end of the client's base URL" in caught.value.message
    assert fake.requests == []


# --------------------------------------------------------------------------- anthropic


def test_anthropic_message(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """A non-streaming message with main's API key in x-api-key; anthropic-version unchanged."""
    client = anthropic_sdk(sidecar.url() + "/anthropic", wire.sdk_http)
    message = client.messages.create(**MESSAGE)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the fake upstream."
    got = check_forwarded(
        wire, fake, path="/an/v1/messages", injected=api_key(sidecar, "anthropic:main")
    )
    assert got.headers["anthropic-version"] == dict(wire.sent[-1].headers)["anthropic-version"]
    assert "anthropic-beta" not in got.headers


def test_anthropic_message_stream(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """A streaming message: text deltas in order and the final message."""
    client = anthropic_sdk(sidecar.url() + "/anthropic", wire.sdk_http)
    with client.messages.stream(**MESSAGE) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the fake upstream."
    assert final.stop_reason == "end_turn"
    check_forwarded(wire, fake, path="/an/v1/messages", injected=api_key(sidecar, "anthropic:main"))


def test_anthropic_count_tokens_keeps_betas_and_query(
    sidecar: Running, fake: FakeUpstream, wire: Wire
) -> None:
    """The beta count_tokens call: its query and the client's anthropic-beta pass unchanged
    with an API key."""
    client = anthropic_sdk(sidecar.url() + "/anthropic", wire.sdk_http)
    counted = client.beta.messages.count_tokens(
        model="claude-fake",
        messages=[{"role": "user", "content": "hi"}],
        betas=CLIENT_BETAS.split(","),
        extra_query={"source": "e2e test", "beta": "true"},
    )
    assert counted.input_tokens > 0
    got = check_forwarded(
        wire,
        fake,
        path="/an/v1/messages/count_tokens",
        injected=api_key(sidecar, "anthropic:main"),
    )
    assert got.query == "source=e2e%20test&beta=true"
    assert got.headers["anthropic-beta"].startswith(CLIENT_BETAS)


def test_anthropic_models_list(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """The Anthropic models list, a GET with a query."""
    client = anthropic_sdk(sidecar.url() + "/anthropic", wire.sdk_http)
    page = client.models.list(limit=3)
    assert [m.id for m in page.data] == ["fake-model", "gpt-fake", "claude-fake"]
    got = check_forwarded(
        wire, fake, path="/an/v1/models", injected=api_key(sidecar, "anthropic:main")
    )
    assert got.query == "limit=3"


def test_anthropic_setup_token_is_bearer_with_oauth_beta(
    sidecar: Running, fake: FakeUpstream, wire: Wire
) -> None:
    """A setup token (paste-token) goes as Authorization: Bearer, and anthropic-beta gains
    oauth-2025-04-20 after the client's own betas."""
    client = anthropic_sdk(
        sidecar.url() + "/agents/work/anthropic",
        wire.sdk_http,
        default_headers={"anthropic-beta": CLIENT_BETAS},
    )
    with client.messages.stream(**MESSAGE) as stream:
        assert "".join(stream.text_stream) == "Hello from the fake upstream."
    check_forwarded(
        wire,
        fake,
        path="/an/v1/messages",
        injected=bearer(sidecar, "anthropic:work"),
        beta=f"{CLIENT_BETAS},{OAUTH_BETA}",
    )


def test_anthropic_pinned_setup_token_without_client_betas(
    sidecar: Running, fake: FakeUpstream, wire: Wire
) -> None:
    """The @profileId form with a setup token: anthropic-beta is just the OAuth flag."""
    client = anthropic_sdk(
        sidecar.url() + "/agents/personal/anthropic@anthropic:personal", wire.sdk_http
    )
    message = client.messages.create(**MESSAGE)
    assert message.stop_reason == "end_turn"
    check_forwarded(
        wire,
        fake,
        path="/an/v1/messages",
        injected=bearer(sidecar, "anthropic:personal"),
        beta=OAUTH_BETA,
    )


def test_anthropic_agent_header_form(sidecar: Running, fake: FakeUpstream, wire: Wire) -> None:
    """X-OpenClaw-Agent on the Anthropic SDK: work's setup token, the header not forwarded."""
    client = anthropic_sdk(
        sidecar.url() + "/anthropic", wire.sdk_http, default_headers={"X-OpenClaw-Agent": "work"}
    )
    message = client.messages.create(**MESSAGE)
    assert message.stop_reason == "end_turn"
    check_forwarded(
        wire,
        fake,
        path="/an/v1/messages",
        injected=bearer(sidecar, "anthropic:work"),
        beta=OAUTH_BETA,
    )
