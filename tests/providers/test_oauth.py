"""The authlib adapter: PKCE, tokens, URLs, form bodies, redirect parsing, JWT claims."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sidecar
from sidecar.providers import oauth


def jwt(payload: object) -> str:
    """A compact JWS with ``payload`` and a meaningless signature."""

    header, body = (b64(json.dumps(value).encode()) for value in ({"alg": "RS256"}, payload))
    return f"{header}.{body}.c2ln"


def b64(raw: bytes) -> str:
    """Unpadded base64url of ``raw``."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_s256_challenge_matches_rfc7636_appendix_b() -> None:
    """The RFC 7636 appendix B verifier gives the appendix's challenge."""
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert oauth.s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_random_token_is_alphanumeric_of_the_length_asked() -> None:
    """Random tokens have the requested length, use [A-Za-z0-9] and differ."""
    first, second = oauth.random_token(64), oauth.random_token(64)
    assert (len(first), bool(re.fullmatch(r"[A-Za-z0-9]{64}", first))) == (64, True)
    assert first != second


def test_authorize_url_has_the_code_flow_query() -> None:
    """The authorize URL carries the code-flow parameters and the extras, in order."""
    url = oauth.authorize_url(
        "https://auth.example/authorize",
        client_id="app_1",
        redirect_uri="http://localhost:1455/cb",
        scope="openid email",
        state="st",
        params=(("code_challenge", "ch"), ("flag", "true")),
    )
    assert url == (
        "https://auth.example/authorize?response_type=code&client_id=app_1"
        "&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fcb&scope=openid+email&state=st"
        "&code_challenge=ch&flag=true"
    )


def test_authorize_url_without_scope_omits_it() -> None:
    """No scope means no scope parameter."""
    url = oauth.authorize_url(
        "https://a.example/x", client_id="c", redirect_uri="r", scope=None, state="s", params=()
    )
    assert url == "https://a.example/x?response_type=code&client_id=c&redirect_uri=r&state=s"


def test_token_form_encodes_the_grant() -> None:
    """A token form starts with grant_type and percent-encodes values."""
    body = oauth.token_form("refresh_token", (("refresh_token", "rt/+="), ("client_id", "app")))
    assert body == b"grant_type=refresh_token&refresh_token=rt%2F%2B%3D&client_id=app"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://localhost:1455/auth/callback?code=abc&state=st", "abc"),
        ("http://localhost:1455/auth/callback?state=st&code=a%2Fb", "a/b"),
        ("?code=abc&state=st", "abc"),
        ("localhost:1455/auth/callback?code=abc&state=st&scope=x", "abc"),
    ],
)
def test_redirect_code_reads_the_code(url: str, code: str) -> None:
    """A redirect with the expected state gives its code."""
    assert oauth.redirect_code(url, "st") == code


@pytest.mark.parametrize(
    ("url", "state", "message"),
    [
        (
            "http://h/cb?code=abc&state=other",
            "st",
            "the redirect's state does not match this login",
        ),
        ("http://h/cb?code=abc", "st", "the redirect's state does not match this login"),
        ("http://h/cb?state=st", "st", "the redirect carries no code"),
        ("http://h/cb?code=&state=st", "st", "the redirect carries no code"),
        (
            "http://h/cb?error=access_denied&state=st",
            "st",
            "the provider refused the login (access_denied)",
        ),
        (
            "http://h/cb?error=Secret-123",
            "st",
            "the provider refused the login (an unrecognised error)",
        ),
        ("http://[::1/cb?code=abc&state=st", "st", "that is not a redirect URL"),
        ("http://h/cb?code=abc", "", "this login has no state to check the redirect against"),
    ],
)
def test_redirect_code_rejects_with_a_fixed_message(url: str, state: str, message: str) -> None:
    """A refused, foreign or codeless redirect raises ValueError with a fixed text."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        oauth.redirect_code(url, state)


@pytest.mark.parametrize(
    ("token", "claims"),
    [
        (jwt({"sub": "u1", "n": {"a": 1}}), {"sub": "u1", "n": {"a": 1}}),
        (jwt({"e": "é" * 5}), {"e": "é" * 5}),
        (jwt([1, 2]), {}),
        (jwt("text"), {}),
        ("a.b", {}),
        ("a.b.c.d.e", {}),
        ("", {}),
        ("x.!!!.y", {}),
        ("x.a.y", {}),
        ("x.é.y", {}),
        (f"x.{b64(b'not json')}.y", {}),
        (f"x.{b64(bytes([0xFF, 0xFE]))}.y", {}),
        (f"x.{b64(b'[' * 100_000)}.y", {}),
    ],
)
def test_decode_claims_reads_payloads_and_refuses_the_rest(
    token: str, claims: dict[str, object]
) -> None:
    """A JWT's payload object is returned unverified; anything else gives {}."""
    assert oauth.decode_claims(token) == claims


@given(st.text())
def test_decode_claims_never_raises(token: str) -> None:
    """Any text decodes to a dict."""
    assert isinstance(oauth.decode_claims(token), dict)


def test_only_the_adapter_imports_authlib() -> None:
    """No module of sidecar/ but providers/oauth.py imports authlib."""
    root = Path(sidecar.__file__).parent
    importers = {
        path.relative_to(root).as_posix()
        for path in root.rglob("*.py")
        if re.search(r"^\s*(from|import)\s+authlib\b", path.read_text(), re.MULTILINE)
    }
    assert importers == {"providers/oauth.py"}
