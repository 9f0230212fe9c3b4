"""The login flow's I/O: callback server, paste reader, first answer, code exchange."""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import re
import socket
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sidecar.auth import login
from sidecar.auth.login import Answer, Callback, CallbackServer, LoginTimeout
from sidecar.auth.pkce import LoginError, LoginStart
from sidecar.errors import RefreshUnavailable
from sidecar.providers.grants import OPENAI_CODEX, ProviderAuth
from sidecar.secret import Secret
from tests.fakes.token_server import make_jwt

START = LoginStart("https://auth.example/authorize?x=1", "st4te", Secret("v" * 64))
ACCESS = make_jwt(
    {
        "https://api.openai.com/auth": {"chatgpt_account_id": "acct-1", "chatgpt_plan_type": "pro"},
        "https://api.openai.com/profile": {"email": "alice@example.com"},
    }
)
TOKENS = {"access_token": ACCESS, "refresh_token": "rt_new", "expires_in": 3600}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("redirect", "callback"),
    [
        (
            "http://localhost:1455/auth/callback",
            Callback(1455, "/auth/callback", "http://localhost:1455/auth/callback"),
        ),
        ("http://127.0.0.1/cb", Callback(1455, "/cb", "http://127.0.0.1:1455/cb")),
        ("http://localhost:8080", Callback(8080, "/", "http://localhost:8080/")),
        ("https://console.anthropic.com/oauth/code/callback", None),
        ("https://localhost:1455/auth/callback", None),
        ("http://example.com:1455/auth/callback", None),
    ],
)
def test_callback_of(redirect: str, callback: Callback | None) -> None:
    """Only an http loopback redirect gets a local callback server (port default 1455)."""
    assert login.callback_of(redirect) == callback


@pytest.mark.parametrize(
    ("provider", "email", "profile_id"),
    [
        ("openai-codex", "alice@example.com", "openai-codex:alice@example.com"),
        ("anthropic", None, "anthropic:default"),
    ],
)
def test_profile_id_for(provider: str, email: str | None, profile_id: str) -> None:
    """Logins are named by the account's email, else ``default``."""
    assert login.profile_id_for(provider, email) == profile_id


def test_instructions_with_a_callback() -> None:
    """The user is told the URL, where the callback waits, and that pasting works too."""
    callback = login.callback_of("http://localhost:1455/auth/callback")
    assert login.instructions("openai-codex", "https://a/x", callback, 300) == (
        "Sign in to openai-codex: open this URL in a browser:\n\n  https://a/x\n\n"
        "Waiting for the callback on http://localhost:1455/auth/callback (up to 300 s).\n"
        "If the browser is on another machine, or the page does not load after signing in, "
        "paste the redirect URL from its address bar here (or the code) and press Enter.\n"
    )


def test_instructions_without_a_callback() -> None:
    """With no local callback the user is told to paste ``code#state``."""
    assert login.instructions("anthropic", "https://a/x", None, 2.5) == (
        "Sign in to anthropic: open this URL in a browser:\n\n  https://a/x\n\n"
        "After signing in, the page shows a code (code#state). Paste it here and press Enter "
        "(waiting up to 2.5 s).\n"
    )


# --- first answer ------------------------------------------------------------------------------


def test_first_answer_is_the_code() -> None:
    """A checked code on the queue is the answer."""
    answers: queue.Queue[Answer] = queue.Queue()
    answers.put("the-code")
    assert login.first_answer(answers, 1) == "the-code"


def test_first_answer_raises_a_refusal() -> None:
    """A LoginError on the queue ends the login with it."""
    answers: queue.Queue[Answer] = queue.Queue()
    answers.put(LoginError("the provider refused the login (access_denied)"))
    with pytest.raises(LoginError, match=r"^the provider refused the login \(access_denied\)$"):
        login.first_answer(answers, 1)


def test_first_answer_times_out() -> None:
    """Nothing on the queue in time is a LoginTimeout naming the wait and --timeout."""
    with pytest.raises(LoginTimeout) as caught:
        login.first_answer(queue.Queue(), 0)
    assert caught.value.message == (
        "no callback and nothing pasted within 0 s; run the login again "
        "(--timeout sets how long to wait)"
    )


# --- the callback server -----------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[str, queue.Queue[Answer]]]:
    """A callback server for state ``st4te`` on a free port: its URL and its answers."""
    port = free_port()
    answers: queue.Queue[Answer] = queue.Queue()
    server = CallbackServer(Callback(port, "/auth/callback", ""), "st4te", answers)
    try:
        yield f"http://127.0.0.1:{port}/auth/callback", answers
    finally:
        server.close()


@pytest.mark.parametrize(
    ("query", "status", "title", "answer"),
    [
        ({"code": "c0de", "state": "st4te"}, 200, "Sign-in received", "c0de"),
        ({"code": "c0de", "state": "other"}, 400, "Sign-in failed", "the redirect's state"),
        ({"error": "access_denied", "state": "st4te"}, 400, "Sign-in failed", "the provider"),
        ({}, 400, "Sign-in failed", "the redirect carries no code"),
    ],
)
def test_callback_server_answers(
    served: tuple[str, queue.Queue[Answer]],
    query: dict[str, str],
    status: int,
    title: str,
    answer: str,
) -> None:
    """The callback's page says success or failure (never the code); the answer is queued."""
    url, answers = served
    page = httpx.get(url, params=query)
    got = answers.get(timeout=5)  # queued once the page is sent: may come just after it
    assert (page.status_code, page.headers["content-type"]) == (status, "text/html; charset=utf-8")
    assert f"<h1>{title}</h1>" in page.text
    assert "c0de" not in page.text
    assert (got if isinstance(got, str) else got.message).startswith(answer)


def test_callback_server_ignores_other_paths(served: tuple[str, queue.Queue[Answer]]) -> None:
    """Another path is a 404 and queues nothing."""
    url, answers = served
    assert httpx.get(url.replace("/auth/callback", "/favicon.ico")).status_code == 404
    assert answers.empty()


def test_listen_refuses_a_busy_port() -> None:
    """A taken port is a LoginError naming it."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LoginError, match=f"^cannot listen on 127.0.0.1:{port} "):
            login.listen(Callback(port, "/", ""), "s", queue.Queue())


# --- the paste reader ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pasted", "answer"),
    [
        (b"c0de#st4te\n", "c0de"),
        (b"\n   \nhttp://localhost:1455/auth/callback?code=c0de&state=st4te\n", "c0de"),
        (b"c0de", "c0de"),
        (b"c0de#other\nc0de#st4te\n", "the pasted state does not match this login"),
        (b"", None),
        (b"\n\n", None),
    ],
)
def test_read_pastes(pasted: bytes, answer: str | None) -> None:
    """The first non-blank line is parsed and queued; end of input queues nothing."""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, pasted)
    os.close(write_fd)
    answers: queue.Queue[Answer] = queue.Queue()
    try:
        login.read_pastes(read_fd, "st4te", answers)
    finally:
        os.close(read_fd)
    got = [answers.get_nowait() for _ in range(answers.qsize())]
    assert [a if isinstance(a, str) else a.message.split(";")[0] for a in got] == (
        [] if answer is None else [answer]
    )


# --- the exchange ---------------------------------------------------------------------------------


def token_endpoint(status: int, body: object, seen: list[httpx.Request]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    return httpx.Client(transport=httpx.MockTransport(handle))


def test_exchange_posts_the_code_and_verifier() -> None:
    """The code grant is a form POST with the verifier; the answer becomes a Grant."""
    seen: list[httpx.Request] = []
    with token_endpoint(200, TOKENS, seen) as client:
        grant = login.exchange(OPENAI_CODEX, "c0de", START, client, 1_000)
    form = parse_qs(seen[0].content.decode())
    assert str(seen[0].url) == OPENAI_CODEX.token_url
    assert {k: v[0] for k, v in form.items()} == {
        "grant_type": "authorization_code",
        "code": "c0de",
        "client_id": OPENAI_CODEX.client_id,
        "redirect_uri": "http://localhost:1455/auth/callback",
        "code_verifier": "v" * 64,
    }
    assert login.profile_fields(OPENAI_CODEX, grant) == {
        "type": "oauth",
        "provider": "openai-codex",
        "access": ACCESS,
        "refresh": "rt_new",
        "expires": 1_000 + 3_600_000,
        "accountId": "acct-1",
        "chatgptPlanType": "pro",
        "email": "alice@example.com",
    }


def test_exchange_translates_a_transport_error() -> None:
    """An unreachable token endpoint is RefreshUnavailable naming it, from the httpx error."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with (
        httpx.Client(transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(RefreshUnavailable) as caught,
    ):
        login.exchange(OPENAI_CODEX, "c0de", START, client, 0)
    assert caught.value.message == (
        f"cannot reach the openai-codex token endpoint {OPENAI_CODEX.token_url} (ConnectError); "
        "nothing was stored, run the login again"
    )
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


# --- the whole flow -------------------------------------------------------------------------------


def shown_url(text: str) -> str:
    match = re.search(r"^  (\S+)$", text, re.MULTILINE)
    assert match is not None
    return match.group(1)


def test_run_login_by_paste() -> None:
    """URL shown, browser asked, pasted redirect checked and exchanged: the profile fields."""
    auth: ProviderAuth = dataclasses.replace(OPENAI_CODEX, redirect_uri="https://remote.example/cb")
    read_fd, write_fd = os.pipe()
    shown: list[str] = []
    opened: list[str] = []

    def notify(text: str) -> None:  # the user reads the URL and pastes the redirect
        shown.append(text)
        state = parse_qs(urlsplit(shown_url(text)).query)["state"][0]
        os.write(write_fd, f"https://remote.example/cb?code=c0de&state={state}\n".encode())

    seen: list[httpx.Request] = []
    try:
        with token_endpoint(200, TOKENS, seen) as client:
            fields = login.run_login(
                auth,
                timeout_s=10,
                notify=notify,
                open_browser=opened.append,
                stdin_fd=read_fd,
                client=client,
                now_ms=lambda: 5,
            )
    finally:
        os.close(write_fd)
        os.close(read_fd)
    assert (fields["refresh"], fields["expires"], fields["email"]) == (
        "rt_new",
        5 + 3_600_000,
        "alice@example.com",
    )
    assert opened == [shown_url(shown[0])]
    assert json.dumps(shown).count("code#state") == 1
    assert parse_qs(seen[0].content.decode())["code"] == ["c0de"]
