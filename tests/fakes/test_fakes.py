"""Tests of the fakes themselves: they must behave like the real services where it matters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiohttp import web
from anthropic import Anthropic
from openai import OpenAI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import bind as bind_socket
from tests.fakes.server import serve_in_thread, spawn
from tests.fakes.token_server import (
    ANTHROPIC_CLIENT_ID,
    OPENAI_CLIENT_ID,
    FakeTokenServer,
    decode_jwt,
    duplicate_header_text,
    pkce_pair,
)
from tests.fakes.upstream import FakeUpstream

REDIRECT = "http://localhost:1455/auth/callback"
CHAT: dict[str, Any] = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE: dict[str, Any] = {
    "model": "claude-fake",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}


def openai_refresh(
    ts: FakeTokenServer, token: str, client_id: str = OPENAI_CLIENT_ID
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}
    return httpx.post(ts.openai_token_url, data=form)


def anthropic_refresh(ts: FakeTokenServer, token: str) -> httpx.Response:
    body = {"grant_type": "refresh_token", "client_id": ANTHROPIC_CLIENT_ID, "refresh_token": token}
    return httpx.post(ts.anthropic_token_url, json=body)


def authorize(
    ts: FakeTokenServer, challenge: str, client_id: str = OPENAI_CLIENT_ID
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile email offline_access",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-123",
    }
    response = httpx.get(ts.authorize_url, params=params)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def sse_lines(response: httpx.Response) -> Iterator[str]:
    return (line for line in response.iter_lines() if line.startswith("data:"))


# --------------------------------------------------------------------------- token server


def test_openai_refresh_rotates_and_rejects_reuse(token_server: FakeTokenServer) -> None:
    """A refresh token works once; reusing it is 401 refresh_token_reused and counted."""
    grant = token_server.seed("rt_one")
    first = openai_refresh(token_server, "rt_one")
    assert first.status_code == 200
    body = first.json()
    assert body["refresh_token"] not in ("rt_one", grant.refresh_token)
    assert body["expires_in"] == 3600
    reuse = openai_refresh(token_server, "rt_one")
    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "refresh_token_reused"
    assert reuse.json()["error"]["type"] == "invalid_request_error"
    assert openai_refresh(token_server, body["refresh_token"]).status_code == 200
    assert (token_server.calls, token_server.reused) == (3, 1)
    assert [e["outcome"] for e in token_server.exchanges] == ["ok", "reused", "ok"]
    assert token_server.exchanges[0]["body_format"] == "form"


FORM = "application/x-www-form-urlencoded"
REPEATED: list[list[tuple[str, str]]] = [
    [("Content-Type", FORM), ("content-type", FORM)],  # what the refresher sent before #17 §7
    [("Accept", "application/json"), ("accept", "application/json")],
]


@pytest.mark.parametrize("headers", REPEATED, ids=["content-type", "accept"])
def test_strict_token_server_refuses_a_repeated_header(
    token_server: FakeTokenServer, headers: list[tuple[str, str]]
) -> None:
    """A token request repeating a header gets aiohttp's 400 and never reaches the registry;
    the lenient server takes the same request."""
    token_server.seed("rt_twice")
    form = b"grant_type=refresh_token&refresh_token=rt_twice&client_id=" + OPENAI_CLIENT_ID.encode()
    refused = httpx.post(token_server.openai_token_url, content=form, headers=headers)
    name = headers[0][0]
    assert (refused.status_code, refused.text) == (400, duplicate_header_text(name))
    assert (token_server.registry.arrivals, token_server.calls) == (0, 0)
    with FakeTokenServer(token_server.registry, strict=False) as lenient:
        taken = httpx.post(lenient.openai_token_url, content=form, headers=headers)
    assert taken.status_code == 200


@pytest.mark.anyio
async def test_strict_token_server_refuses_what_aiohttp_refuses(
    token_server: FakeTokenServer,
) -> None:
    """aiohttp's own server answers a repeated Content-Type with the same 400 and text as the
    strict fake, and takes the request once the header is sent once."""

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/oauth/token", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.SockSite(runner, bind_socket())
    await site.start()
    twice = REPEATED[0]
    try:
        async with httpx.AsyncClient() as client:
            real = f"http://127.0.0.1:{site.name.rsplit(':', 1)[1]}/oauth/token"
            answers = [
                (r.status_code, r.text)
                for url in (real, token_server.openai_token_url)
                for r in [await client.post(url, content=b"", headers=twice)]
            ]
            once = await client.post(real, content=b"", headers=twice[:1])
    finally:
        await runner.cleanup()
    assert answers == [(400, "Duplicate 'Content-Type' header found.")] * 2
    assert once.status_code == 200


def test_openai_tokens_are_jwts_with_account_claims(token_server: FakeTokenServer) -> None:
    """Access and id tokens are JWT-shaped and carry account id, plan, email and exp."""
    token_server.seed("rt_jwt", account_id="acct_42", email="a@example.com")
    body = openai_refresh(token_server, "rt_jwt").json()
    claims = decode_jwt(body["access_token"])
    assert claims["https://api.openai.com/auth"]["chatgpt_account_id"] == "acct_42"
    assert claims["https://api.openai.com/auth"]["chatgpt_plan_type"] == "plus"
    assert claims["https://api.openai.com/profile"]["email"] == "a@example.com"
    assert claims["exp"] == pytest.approx(time.time() + 3600, abs=5)
    assert decode_jwt(body["id_token"])["email"] == "a@example.com"


def test_anthropic_refresh_json_and_reuse_is_invalid_grant(token_server: FakeTokenServer) -> None:
    """Anthropic style: JSON body, sk-ant tokens, reuse is 400 invalid_grant."""
    token_server.seed("sk-ant-ort01-seed", style="anthropic")
    ok = anthropic_refresh(token_server, "sk-ant-ort01-seed")
    assert ok.status_code == 200
    assert ok.json()["access_token"].startswith("sk-ant-oat01-")
    assert ok.json()["refresh_token"].startswith("sk-ant-ort01-")
    reuse = anthropic_refresh(token_server, "sk-ant-ort01-seed")
    assert (reuse.status_code, reuse.json()["error"]) == (400, "invalid_grant")
    assert token_server.reused == 1
    assert token_server.exchanges[0]["body_format"] == "json"


def test_unknown_token_and_wrong_client_rejected(token_server: FakeTokenServer) -> None:
    """Unknown refresh tokens get invalid_grant; a wrong client_id gets invalid_client."""
    token_server.seed("rt_known")
    unknown = openai_refresh(token_server, "rt_nope")
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_grant")
    wrong = openai_refresh(token_server, "rt_known", client_id="someone-else")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert openai_refresh(token_server, "rt_known").status_code == 200


def test_endpoint_bound_token_refused_elsewhere(token_server: FakeTokenServer) -> None:
    """A token seeded with any_endpoint=False only works at its own style's endpoint."""
    token_server.seed("rt_bound", style="openai", any_endpoint=False)
    assert anthropic_refresh(token_server, "rt_bound").json()["error"] == "invalid_grant"
    assert openai_refresh(token_server, "rt_bound").status_code == 200


def test_pkce_code_exchange(token_server: FakeTokenServer) -> None:
    """authorize 302s with code+state; the exchange checks PKCE, redirect_uri, single use."""
    verifier, challenge = pkce_pair()
    got = authorize(token_server, challenge)
    assert got["state"] == "st-123"
    form = {
        "grant_type": "authorization_code",
        "code": got["code"],
        "code_verifier": "wrong",
        "redirect_uri": REDIRECT,
        "client_id": OPENAI_CLIENT_ID,
    }
    assert httpx.post(token_server.openai_token_url, data=form).json()["error"] == "invalid_grant"
    form["code"] = authorize(token_server, challenge)["code"]
    bad_redirect = {**form, "code_verifier": verifier, "redirect_uri": "http://localhost:9/x"}
    assert httpx.post(token_server.openai_token_url, data=bad_redirect).status_code == 400
    form["code"] = authorize(token_server, challenge)["code"]
    form["code_verifier"] = verifier
    ok = httpx.post(token_server.openai_token_url, data=form)
    assert ok.status_code == 200
    assert decode_jwt(ok.json()["id_token"])["email"] == "login@example.com"
    assert httpx.post(token_server.openai_token_url, data=form).status_code == 400


def test_anthropic_code_exchange_checks_state(token_server: FakeTokenServer) -> None:
    """The Anthropic JSON code exchange verifies state and PKCE."""
    verifier, challenge = pkce_pair()
    code = authorize(token_server, challenge, ANTHROPIC_CLIENT_ID)["code"]
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "state": "st-123",
        "client_id": ANTHROPIC_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    ok = httpx.post(token_server.anthropic_token_url, json=body)
    assert ok.status_code == 200
    assert ok.json()["account"]["email_address"] == "login@example.com"
    body["code"] = authorize(token_server, challenge, ANTHROPIC_CLIENT_ID)["code"]
    assert (
        httpx.post(token_server.anthropic_token_url, json={**body, "state": "x"}).status_code == 400
    )


def test_authorize_rejects_plain_pkce(token_server: FakeTokenServer) -> None:
    """An authorize request without S256 is refused (no redirect)."""
    params = {
        "response_type": "code",
        "client_id": OPENAI_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "code_challenge": "abc",
        "code_challenge_method": "plain",
        "state": "s",
    }
    response = httpx.get(token_server.authorize_url, params=params)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("mode", "params", "check"),
    [
        ("503", {}, lambda r: r.status_code == 503),
        ("500", {}, lambda r: r.status_code == 500),
        ("malformed", {}, lambda r: r.status_code == 200 and r.text.startswith("<html>")),
        ("reject", {}, lambda r: r.json()["error"] == "invalid_grant"),
        (
            "missing_fields",
            {},
            lambda r: "refresh_token" not in r.json() and "expires_in" not in r.json(),
        ),
        ("missing_fields", {"fields": ["expires_in"]}, lambda r: "refresh_token" in r.json()),
    ],
)
def test_token_failure_modes(
    token_server: FakeTokenServer, mode: str, params: dict[str, Any], check: Any
) -> None:
    """Each failure mode answers as documented."""
    token_server.seed("rt_mode")
    token_server.set_mode(mode, **params)
    assert check(openai_refresh(token_server, "rt_mode"))


def test_token_mode_down_drops_connection_then_recovers(token_server: FakeTokenServer) -> None:
    """Mode down drops the connection; times=1 reverts to normal; the token still works."""
    token_server.seed("rt_down")
    token_server.set_mode("down", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        openai_refresh(token_server, "rt_down")
    assert openai_refresh(token_server, "rt_down").status_code == 200


def test_token_mode_slow_delays_then_answers(token_server: FakeTokenServer) -> None:
    """Mode slow waits delay_ms, then does the exchange (the token rotates)."""
    token_server.seed("rt_slow")
    token_server.set_mode("slow", delay_ms=150)
    started = time.monotonic()
    assert openai_refresh(token_server, "rt_slow").status_code == 200
    assert time.monotonic() - started >= 0.15
    assert token_server.registry.refresh_tokens["rt_slow"].status == "rotated"


def test_token_mode_hold_parks_requests_until_released(token_server: FakeTokenServer) -> None:
    """Mode hold parks a token request (seen via wait_arrivals/held) until release()."""
    token_server.seed("rt_hold")
    token_server.set_mode("hold")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(openai_refresh, token_server, "rt_hold")
        assert token_server.registry.wait_arrivals(1)
        assert token_server.held.wait(5)
        assert (token_server.calls, pending.done()) == (0, False)
        token_server.release()
        assert pending.result(5).status_code == 200
    assert token_server.calls == 1


def test_token_http_control(token_server: FakeTokenServer) -> None:
    """/__fake/seed, mode, state, introspect, advance, revoke and reset work over HTTP."""
    with httpx.Client(base_url=token_server.url) as c:
        grant = c.post(
            "/__fake/seed", json={"refresh_token": "rt_http", "account_id": "acct_h"}
        ).json()
        assert c.get("/__fake/introspect", params={"token": grant["access_token"]}).json()["active"]
        assert (
            c.post("/__fake/mode", json={"mode": "reject", "times": 1}).json()["name"] == "reject"
        )
        assert openai_refresh(token_server, "rt_http").status_code == 400
        state = c.get("/__fake/state").json()
        assert (state["calls"], state["mode"]["name"]) == (1, "normal")
        assert state["refresh_tokens"][0]["account_id"] == "acct_h"
        c.post("/__fake/advance", json={"seconds": 4000})
        info = c.get("/__fake/introspect", params={"token": grant["access_token"]}).json()
        assert (info["active"], info["reason"]) == (False, "expired")
        c.post("/__fake/reset")
        assert c.get("/__fake/state").json()["refresh_tokens"] == []


def test_registry_validity_checks(token_server: FakeTokenServer) -> None:
    """is_valid_access follows expiry, clock advance and revocation."""
    reg = token_server.registry
    grant = token_server.seed(access_expires_in=60)
    assert reg.is_valid_access(grant.access_token)
    assert not reg.is_valid_access(grant.access_token, now=grant.expires_at)
    assert [t["token"] for t in reg.valid_access_tokens()] == [grant.access_token]
    assert reg.revoke(grant.access_token) == 1
    assert not reg.is_valid_access(grant.access_token)
    assert not reg.is_valid_access(token_server.seed(access_expires_in=0).access_token)


# --------------------------------------------------------------------------- upstream: SDKs


def test_openai_sdk_chat_and_responses(upstream: FakeUpstream) -> None:
    """The openai SDK parses chat and responses answers, plain and streamed."""
    with OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-x", max_retries=0) as client:
        chat = client.chat.completions.create(**CHAT)
        assert chat.choices[0].message.content == "Hello from the fake upstream."
        stream = client.chat.completions.create(
            **CHAT, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
        assert (
            "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            == chat.choices[0].message.content
        )
        assert chunks[-1].usage is not None
        assert (
            client.responses.create(model="gpt-fake", input="hi").output_text
            == "Hello from the fake upstream."
        )
        with client.responses.stream(model="gpt-fake", input="hi") as rs:
            deltas = [e.delta for e in rs if e.type == "response.output_text.delta"]
            assert rs.get_final_response().output_text == "".join(deltas)


def test_openai_sdk_codex_embeddings_models(upstream: FakeUpstream) -> None:
    """Codex backend SSE, embeddings (base64 default) and models parse with the openai SDK."""
    with OpenAI(base_url=f"{upstream.url}/backend-api/codex", api_key="x", max_retries=0) as codex:
        events = list(codex.responses.create(model="gpt-5", input="hi", stream=True))
        assert events[-1].type == "response.completed"
    with OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-x", max_retries=0) as client:
        vectors = client.embeddings.create(model="emb", input=["a", "b"]).data
        assert [len(v.embedding) for v in vectors] == [8, 8]
        assert "gpt-fake" in [m.id for m in client.models.list()]
    assert upstream.recorder.for_path("/codex/responses")[0].endpoint == "codex.responses"


def test_anthropic_sdk_messages(upstream: FakeUpstream) -> None:
    """The anthropic SDK parses messages (plain and streamed) and count_tokens."""
    with Anthropic(base_url=upstream.url, api_key="sk-ant-x", max_retries=0) as client:
        assert client.messages.create(**MESSAGE).content[0].text == "Hello from the fake upstream."
        with client.messages.stream(**MESSAGE) as stream:
            assert stream.get_final_text() == "Hello from the fake upstream."
        assert (
            client.messages.count_tokens(model="c", messages=MESSAGE["messages"]).input_tokens > 0
        )


# --------------------------------------------------------------------------- upstream: auth


def test_static_keys_and_provider_error_shapes(upstream: FakeUpstream) -> None:
    """Expected keys pass via Bearer or x-api-key; others get 401 in the provider's shape."""
    upstream.expect("/v1", {"sk-real"})
    with httpx.Client(base_url=upstream.url) as c:
        assert (
            c.post(
                "/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer sk-real"}
            ).status_code
            == 200
        )
        assert (
            c.post("/v1/messages", json=MESSAGE, headers={"x-api-key": "sk-real"}).status_code
            == 200
        )
        bad = c.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer sk-fake"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (401, "invalid_api_key")
        bad = c.post("/v1/messages", json=MESSAGE)
        assert bad.json() == {
            "type": "error",
            "error": {"type": "authentication_error", "message": bad.json()["error"]["message"]},
        }
        assert c.get("/other/models").status_code == 200


def test_per_key_limits_in_each_providers_shape(upstream: FakeUpstream) -> None:
    """A limited key gets the provider's own refusal (with the headers given), others pass;
    ``times`` lifts it after so many answers, and so does the control route."""
    upstream.limit("sk-a", headers={"retry-after": "7"})
    upstream.limit("sk-ant-a", "overloaded")
    upstream.limit("sk-codex", times=1, resets_in_s=120)
    with httpx.Client(base_url=upstream.url) as c:
        key_a = {"authorization": "Bearer sk-a"}
        limited = c.post("/v1/chat/completions", json=CHAT, headers=key_a)
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        other = c.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer sk-b"})
        assert other.status_code == 200
        busy = c.post("/v1/messages", json=MESSAGE, headers={"x-api-key": "sk-ant-a"})
        assert (busy.status_code, busy.json()["error"]["type"]) == (529, "overloaded_error")
        codex = {"authorization": "Bearer sk-codex"}
        body = {**CHAT, "stream": True}
        used_up = c.post("/backend-api/codex/responses", json=body, headers=codex).json()["error"]
        assert (used_up["type"], used_up["resets_in_seconds"]) == ("usage_limit_reached", 120)
        assert c.post("/backend-api/codex/responses", json=body, headers=codex).status_code == 200
        c.post("/__fake/limit", json={"key": "sk-a", "lift": True})
        again = c.post("/v1/chat/completions", json=CHAT, headers=key_a)
        assert again.status_code == 200


def test_oauth_tokens_checked_against_token_server(
    upstream: FakeUpstream, token_server: FakeTokenServer
) -> None:
    """A valid access token (with matching account header) passes; a stale one gets 401."""
    upstream.expect("/backend-api/codex", oauth=True, account_header=True)
    grant = token_server.seed("rt_up", account_id="acct_up")
    body = {"model": "gpt-5", "input": "hi", "stream": True}
    headers = {"authorization": f"Bearer {grant.access_token}", "chatgpt-account-id": "acct_up"}
    with httpx.Client(base_url=upstream.url) as c:
        assert c.post("/backend-api/codex/responses", json=body, headers=headers).status_code == 200
        wrong = c.post(
            "/backend-api/codex/responses",
            json=body,
            headers={**headers, "chatgpt-account-id": "x"},
        )
        assert wrong.status_code == 401
        token_server.registry.advance(3601)
        stale = c.post("/backend-api/codex/responses", json=body, headers=headers)
        assert (stale.status_code, stale.json()["error"]["code"]) == (401, "token_expired")
        fresh = openai_refresh(token_server, "rt_up").json()["access_token"]
        headers["authorization"] = f"Bearer {fresh}"
        assert c.post("/backend-api/codex/responses", json=body, headers=headers).status_code == 200


# --------------------------------------------------------------------------- upstream: streaming


def test_hold_gate_proves_event_by_event_delivery(upstream: FakeUpstream) -> None:
    """In hold mode the first event reaches the client before the second is sent."""
    upstream.set_mode("hold", after=1)
    with (
        httpx.Client(base_url=upstream.url) as c,
        c.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as r,
    ):
        lines = sse_lines(r)
        assert '"role":"assistant"' in next(lines)
        assert upstream.held.wait(5)
        assert upstream.events_sent == 1
        assert httpx.post(f"{upstream.url}/__fake/release").status_code == 200
        rest = list(lines)
    assert rest[-1] == "data: [DONE]"
    assert upstream.events_sent == 1 + len(rest)


def test_disconnect_is_observed(upstream: FakeUpstream) -> None:
    """A client that goes away mid-stream sets `disconnected` and counts it."""
    upstream.set_mode("hold", after=1)
    with (
        httpx.Client(base_url=upstream.url) as c,
        c.stream("POST", "/v1/messages", json={**MESSAGE, "stream": True}) as r,
    ):
        assert "message_start" in next(sse_lines(r))
    assert upstream.disconnected.wait(5)
    assert upstream.disconnects == 1
    assert upstream.stat("completed") == 0


def test_hang_times_out_client_and_sees_disconnect(upstream: FakeUpstream) -> None:
    """Mode hang never answers; the client's timeout shows up as a disconnect."""
    upstream.set_mode("hang")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{upstream.url}/v1/chat/completions", json=CHAT, timeout=0.3)
    assert upstream.disconnected.wait(5)


def test_reset_mid_stream(upstream: FakeUpstream) -> None:
    """Mode reset drops the connection after N events."""
    upstream.set_mode("reset", after=2)
    received: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            f"{upstream.url}/v1/responses",
            json={"model": "m", "input": "hi", "stream": True},
        ) as r,
    ):
        received.extend(sse_lines(r))
    assert len(received) == 2
    assert upstream.stat("aborted") == 1


def test_slow_first_byte_and_statuses(upstream: FakeUpstream) -> None:
    """slow delays the first byte; 500 and 429 (Retry-After) apply `times` then stop."""
    with httpx.Client(base_url=upstream.url) as c:
        upstream.set_mode("slow", delay_ms=150)
        started = time.monotonic()
        assert c.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert time.monotonic() - started >= 0.15
        upstream.set_mode("429", retry_after="7", times=1)
        limited = c.post("/v1/messages", json=MESSAGE)
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
        assert limited.json()["error"]["type"] == "rate_limit_error"
        assert c.post("/v1/messages", json=MESSAGE).status_code == 200
        upstream.set_mode("500", times=1, path="/chat")
        assert c.post("/v1/messages", json=MESSAGE).status_code == 200
        failed = c.post("/v1/chat/completions", json=CHAT)
        assert (failed.status_code, failed.json()["error"]["type"]) == (500, "server_error")


def test_event_count_and_spacing(upstream: FakeUpstream) -> None:
    """x-fake-events / x-fake-interval-ms control how many deltas and how far apart."""
    headers = {"x-fake-events": "100", "x-fake-interval-ms": "0"}
    with httpx.stream(
        "POST",
        f"{upstream.url}/v1/chat/completions",
        json={**CHAT, "stream": True},
        headers=headers,
    ) as r:
        deltas = [line for line in sse_lines(r) if '"content":"tok' in line]
    assert len(deltas) == 100
    with FakeUpstream(events=5, interval_ms=20) as spaced:
        started = time.monotonic()
        with httpx.stream(
            "POST", f"{spaced.url}/v1/messages", json={**MESSAGE, "stream": True}
        ) as r:
            count = sum(1 for line in sse_lines(r) if "text_delta" in line)
        assert count == 5
        assert time.monotonic() - started >= 0.2


def test_request_body_streaming_is_observable(upstream: FakeUpstream) -> None:
    """The echo endpoint sees a streamed body chunk by chunk (wait_body_bytes between)."""

    def body() -> Iterator[bytes]:
        yield b"a" * 1000
        assert upstream.wait_body_bytes(1000)
        yield b"b" * 500

    answer = httpx.post(f"{upstream.url}/v1/echo", content=body()).json()
    assert answer["bytes"] == 1500
    assert answer["chunks"] >= 2
    assert upstream.recorder.last.body_chunks == answer["chunks"]


def test_recorder_and_http_control(upstream: FakeUpstream) -> None:
    """Requests are recorded (lower-cased headers, query, body); /__fake/* controls work."""
    with httpx.Client(base_url=upstream.url) as c:
        c.post("/v1/chat/completions?x=1", json=CHAT, headers={"X-Custom": "V"})
        rec = upstream.recorder.last
        assert (rec.method, rec.path, rec.query, rec.headers["x-custom"]) == (
            "POST",
            "/v1/chat/completions",
            "x=1",
            "V",
        )
        assert rec.json() == CHAT
        assert c.get("/__fake/requests").json()[0]["headers"]["x-custom"] == "V"
        c.post("/__fake/expect", json={"prefix": "/v1", "keys": ["k"]})
        assert c.post("/v1/chat/completions", json=CHAT).status_code == 401
        c.post("/__fake/expect", json={"clear": True})
        c.post("/__fake/config", json={"text": "Other text"})
        assert (
            c.post("/v1/chat/completions", json=CHAT).json()["choices"][0]["message"]["content"]
            == "Other text"
        )
        c.post("/__fake/mode", json={"mode": "500"})
        assert c.get("/__fake/state").json()["mode"]["name"] == "error"
        c.post("/__fake/reset")
        assert c.get("/__fake/requests").json() == []
        assert c.get("/v1/nothing").status_code == 404


def test_serve_in_thread_runs_any_app() -> None:
    """serve_in_thread serves an arbitrary Starlette app on a free loopback port."""

    async def hello(request: Request) -> Response:
        return PlainTextResponse("hi")

    app = Starlette(routes=[Route("/", hello)])
    with serve_in_thread(app) as running:
        assert running.url.startswith("http://127.0.0.1:")
        assert httpx.get(running.url).text == "hi"
    with pytest.raises(httpx.ConnectError):
        httpx.get(running.url)


# --------------------------------------------------------------------------- subprocesses


def test_fakes_as_subprocesses() -> None:
    """Both fakes run via python -m with a port file; the upstream introspects over HTTP."""
    with spawn("tests.fakes.token_server", "--seed", "rt_proc:acct_p:p@example.com") as ts:
        assert Path(ts.port_file).read_text().strip() == str(ts.port)
        form = {
            "grant_type": "refresh_token",
            "refresh_token": "rt_proc",
            "client_id": OPENAI_CLIENT_ID,
        }
        access = httpx.post(f"{ts.url}/oauth/token", data=form).json()["access_token"]
        with spawn("tests.fakes.upstream", "--token-server", ts.url, "--expect-oauth", "/v1") as up:
            ok = httpx.post(
                f"{up.url}/v1/chat/completions",
                json=CHAT,
                headers={"authorization": f"Bearer {access}"},
            )
            assert ok.status_code == 200
            bad = httpx.post(
                f"{up.url}/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer nope"}
            )
            assert bad.status_code == 401
