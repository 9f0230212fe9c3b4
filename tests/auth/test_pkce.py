"""Login-flow pieces: the authorize URL with PKCE, and reading the code that comes back."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from sidecar.auth.pkce import LoginError, LoginStart, parse_callback, start_login
from sidecar.providers import oauth
from sidecar.providers.grants import ANTHROPIC, OPENAI_CODEX
from sidecar.secret import Secret

VERIFIER = Secret("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
ANTHROPIC_LOGIN = dataclasses.replace(
    ANTHROPIC,
    authorize_url="https://claude.example/oauth/authorize",
    redirect_uri="https://console.example/oauth/code/callback",
    scope="user:inference",
)
PASTE = "paste the whole redirect URL from the browser's address bar, or the code"


def test_start_login_openai_codex_url() -> None:
    """The Codex login URL carries PKCE S256, state and the Codex CLI's extras (spec §9)."""
    start = start_login(OPENAI_CODEX, state="st4te", verifier=VERIFIER)
    assert start == LoginStart(
        "https://auth.openai.com/oauth/authorize?response_type=code"
        "&client_id=app_EMoamEEZ73f0CkXaXp7hrann"
        "&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback"
        "&scope=openid+profile+email+offline_access&state=st4te"
        f"&code_challenge={CHALLENGE}&code_challenge_method=S256"
        "&id_token_add_organizations=true&codex_cli_simplified_flow=true",
        "st4te",
        VERIFIER,
    )


@pytest.mark.parametrize(
    ("extra_params", "tail"),
    [(None, "&code=true"), ((), ""), ((("prompt", "login"),), "&prompt=login")],
)
def test_start_login_extras(extra_params: tuple[tuple[str, str], ...] | None, tail: str) -> None:
    """Extras default to the provider style's and can be replaced."""
    start = start_login(ANTHROPIC_LOGIN, extra_params=extra_params, state="s", verifier=VERIFIER)
    assert start.url == (
        "https://claude.example/oauth/authorize?response_type=code"
        "&client_id=9d1c250a-e61b-44d9-88ed-5944d1962f5e"
        "&redirect_uri=https%3A%2F%2Fconsole.example%2Foauth%2Fcode%2Fcallback"
        f"&scope=user%3Ainference&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256"
        f"{tail}"
    )


def test_start_login_draws_fresh_state_and_verifier() -> None:
    """Each login has its own state and an RFC 7636 verifier whose challenge is in the URL."""
    first, second = start_login(OPENAI_CODEX), start_login(OPENAI_CODEX)
    query = parse_qs(urlsplit(first.url).query)
    assert re.fullmatch(r"[A-Za-z0-9]{64}", first.verifier.reveal())
    assert (query["state"], query["code_challenge"]) == (
        [first.state],
        [oauth.s256_challenge(first.verifier.reveal())],
    )
    assert (first.state != second.state, first.verifier != second.verifier) == (True, True)


def test_login_start_repr_hides_the_verifier() -> None:
    """The verifier is masked in a LoginStart's repr."""
    assert VERIFIER.reveal() not in repr(start_login(OPENAI_CODEX, verifier=VERIFIER))


def test_start_login_without_authorize_endpoint_is_a_login_error() -> None:
    """A provider with no authorize URL has no browser login."""
    with pytest.raises(LoginError, match=r"^anthropic has no browser login \(no authorize_url/"):
        start_login(ANTHROPIC)


def test_start_login_rejects_a_short_verifier() -> None:
    """A verifier outside RFC 7636's 43-128 characters is a caller bug."""
    with pytest.raises(ValueError, match="RFC 7636"):
        start_login(OPENAI_CODEX, verifier=Secret("short"))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("http://localhost:1455/auth/callback?code=ac_1&state=st", "ac_1"),
        ("  http://localhost:1455/auth/callback?code=ac_1&scope=x&state=st\n", "ac_1"),
        ("localhost:1455/auth/callback?code=ac_1&state=st", "ac_1"),
        ("code=ac_1&state=st", "ac_1"),
        ("?state=st&code=ac%2B1", "ac+1"),
        ("ac_1#st", "ac_1"),
        ("ac_1", "ac_1"),
        ("ac=1", "ac=1"),
    ],
)
def test_parse_callback_accepts(text: str, code: str) -> None:
    """Redirect URLs, queries and code#state are checked against the state; a bare code is not."""
    assert parse_callback(text, "st") == code


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"nothing was given; {PASTE}"),
        (" \n", f"nothing was given; {PASTE}"),
        (
            "http://localhost:1455/auth/callback?code=ac_1&state=other",
            "the redirect's state does not match this login; start the login again",
        ),
        (
            "http://localhost:1455/auth/callback?code=ac_1",
            "the redirect's state does not match this login; start the login again",
        ),
        (
            "http://localhost:1455/auth/callback?error=access_denied&state=st",
            "the provider refused the login (access_denied); start the login again",
        ),
        (
            "error=ac_1SECRET&state=st",
            "the provider refused the login (an unrecognised error); start the login again",
        ),
        (
            "http://localhost:1455/auth/callback?state=st",
            "the redirect carries no code; start the login again",
        ),
        ("http://[::1/cb?code=ac_1&state=st", "that is not a redirect URL; start the login again"),
        ("ac_1#other", "the pasted state does not match this login; start the login again"),
        ("ac_1#", "the pasted state does not match this login; start the login again"),
        ("#st", f"there is no code before '#'; {PASTE}"),
        ("ac_1 and more", f"that is neither a code nor a redirect URL; {PASTE}"),
    ],
)
def test_parse_callback_rejects(text: str, message: str) -> None:
    """Empty, refused, foreign or garbled input is a LoginError that never repeats the code."""
    with pytest.raises(LoginError) as caught:
        parse_callback(text, "st")
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        "login_failed",
        400,
        message,
    )


def test_login_round_trip() -> None:
    """The callback for a started login gives back its code."""
    start = start_login(OPENAI_CODEX)
    callback = f"http://localhost:1455/auth/callback?code=ac_9&state={start.state}"
    assert parse_callback(callback, start.state) == "ac_9"
