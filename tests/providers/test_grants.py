"""Token requests and the meaning of token-endpoint answers, per provider style."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.errors import RefreshError, RefreshUnavailable
from sidecar.providers.grants import (
    ANTHROPIC,
    OPENAI_CODEX,
    Grant,
    ProviderAuth,
    TokenRejected,
    TokenRequest,
    code_request,
    parse_token_response,
    refresh_request,
)
from sidecar.secret import Secret

NOW = 1_767_225_600_000
CANARY = "sk-ant-oat01-CANARY-rt_leak-0123456789"
OPENAI_OAUTH = dataclasses.replace(OPENAI_CODEX, provider="openai")
ANTHROPIC_LOGIN = dataclasses.replace(ANTHROPIC, redirect_uri="https://console.example/cb")
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def jwt(payload: object) -> str:
    """A compact JWS with ``payload`` and a meaningless signature."""
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{encoded}.c2ln"


def answer(**fields: object) -> bytes:
    """A token endpoint's JSON body."""
    return json.dumps(fields).encode()


ACCESS = jwt(
    {
        "https://api.openai.com/auth": {"chatgpt_account_id": "acc-1", "chatgpt_plan_type": "plus"},
        "https://api.openai.com/profile": {"email": "alice@example.com"},
    }
)
ID_TOKEN = jwt(
    {
        "email": "bob@example.com",
        "https://api.openai.com/auth": {"chatgpt_account_id": "acc-2", "chatgpt_plan_type": "pro"},
    }
)


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            OPENAI_CODEX,
            TokenRequest(
                "https://auth.openai.com/oauth/token",
                (("Content-Type", FORM), ("Accept", JSON)),
                b"grant_type=refresh_token&refresh_token=rt_1&client_id=app_EMoamEEZ73f0CkXaXp7hrann",
            ),
        ),
        (
            ANTHROPIC,
            TokenRequest(
                "https://platform.claude.com/v1/oauth/token",
                (("Content-Type", JSON), ("Accept", JSON)),
                b'{"grant_type": "refresh_token", "refresh_token": "rt_1", '
                b'"client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e"}',
            ),
        ),
    ],
)
def test_refresh_request_per_style(auth: ProviderAuth, expected: TokenRequest) -> None:
    """OpenAI refreshes with a form, Anthropic with a JSON body (spec §9)."""
    assert refresh_request(auth, "rt_1") == expected


def test_refresh_request_without_a_refresh_token_asks_for_a_login() -> None:
    """An empty refresh token is a rejection that names the login command."""
    with pytest.raises(TokenRejected) as caught:
        refresh_request(OPENAI_CODEX, "")
    assert (caught.value.reason, caught.value.message) == (
        "no_refresh_token",
        "openai-codex refused the sign-in (no_refresh_token); sign in again with: "
        "openclaw-sidecar login --provider openai-codex",
    )


@pytest.mark.parametrize(
    ("auth", "state", "body"),
    [
        (
            OPENAI_CODEX,
            "st",
            b"grant_type=authorization_code&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth"
            b"%2Fcallback&code=c0de&client_id=app_EMoamEEZ73f0CkXaXp7hrann&code_verifier=v3r",
        ),
        (
            ANTHROPIC_LOGIN,
            "st",
            b'{"grant_type": "authorization_code", "code": "c0de", "state": "st", "client_id": '
            b'"9d1c250a-e61b-44d9-88ed-5944d1962f5e", "redirect_uri": "https://console.example/cb",'
            b' "code_verifier": "v3r"}',
        ),
        (
            ANTHROPIC,
            None,
            b'{"grant_type": "authorization_code", "code": "c0de", "client_id": '
            b'"9d1c250a-e61b-44d9-88ed-5944d1962f5e", "code_verifier": "v3r"}',
        ),
    ],
)
def test_code_request_per_style(auth: ProviderAuth, state: str | None, body: bytes) -> None:
    """The code exchange sends code, client, redirect and verifier (and state to Anthropic)."""
    assert code_request(auth, "c0de", Secret("v3r"), state).body == body


@pytest.mark.parametrize(("code", "verifier"), [("", "v"), ("c", "")])
def test_code_request_needs_code_and_verifier(code: str, verifier: str) -> None:
    """An empty code or verifier is a caller bug."""
    with pytest.raises(ValueError, match="are both required"):
        code_request(OPENAI_CODEX, code, Secret(verifier), None)


def test_token_request_repr_hides_the_body() -> None:
    """The refresh token in a request's body is not in its repr."""
    request = refresh_request(ANTHROPIC, CANARY)
    assert CANARY not in repr(request)
    assert repr(request) == (
        "TokenRequest(POST 'https://platform.claude.com/v1/oauth/token', "
        "headers=['Content-Type', 'Accept'])"
    )


@pytest.mark.parametrize(
    ("auth", "body", "previous", "grant"),
    [
        (
            OPENAI_CODEX,
            answer(access_token=ACCESS, refresh_token="rt_2", expires_in=864000),
            None,
            Grant(
                Secret(ACCESS),
                Secret("rt_2"),
                NOW + 864_000_000,
                None,
                "acc-1",
                "plus",
                "alice@example.com",
            ),
        ),
        (
            OPENAI_OAUTH,
            answer(access_token="opaque", refresh_token="rt_2", expires_in=60.5, id_token=ID_TOKEN),
            "ignored",
            Grant(
                Secret("opaque"),
                Secret("rt_2"),
                NOW + 60_500,
                Secret(ID_TOKEN),
                "acc-2",
                "pro",
                "bob@example.com",
            ),
        ),
        (
            OPENAI_CODEX,
            answer(access_token="opaque", refresh_token="rt_2", expires_in=10, id_token=""),
            None,
            Grant(Secret("opaque"), Secret("rt_2"), NOW + 10_000),
        ),
        (
            ANTHROPIC,
            answer(
                access_token="sk-ant-oat01-a",
                refresh_token="sk-ant-ort01-r",
                expires_in=28800,
                account={"email_address": "carol@example.com", "uuid": "u"},
            ),
            None,
            Grant(
                Secret("sk-ant-oat01-a"),
                Secret("sk-ant-ort01-r"),
                NOW + 28_500_000,
                email="carol@example.com",
            ),
        ),
        (
            OPENAI_CODEX,
            answer(access_token=ACCESS, expires_in=3600),
            "rt_old",
            Grant(
                Secret(ACCESS),
                Secret("rt_old"),
                NOW + 3_600_000,
                None,
                "acc-1",
                "plus",
                "alice@example.com",
            ),
        ),
        (
            ANTHROPIC,
            answer(access_token="sk-ant-oat01-a", expires_in=28800, account="odd"),
            "sk-ant-ort01-old",
            Grant(Secret("sk-ant-oat01-a"), Secret("sk-ant-ort01-old"), NOW + 28_500_000),
        ),
    ],
)
def test_parse_token_response_success(
    auth: ProviderAuth, body: bytes, previous: str | None, grant: Grant
) -> None:
    """A 2xx answer becomes a Grant with expiry and identity per provider style."""
    assert parse_token_response(auth, 200, body, NOW, previous_refresh=previous) == grant


@pytest.mark.parametrize(
    ("grant", "fields"),
    [
        (
            Grant(Secret("a"), Secret("r"), 5, Secret("i"), "acc", "plus", "e@x"),
            {
                "access": "a",
                "refresh": "r",
                "expires": 5,
                "idToken": "i",
                "accountId": "acc",
                "chatgptPlanType": "plus",
                "email": "e@x",
            },
        ),
        (Grant(Secret("a"), Secret("r"), 5), {"access": "a", "refresh": "r", "expires": 5}),
    ],
)
def test_grant_fields_hold_only_what_is_known(grant: Grant, fields: dict[str, object]) -> None:
    """Profile fields hold revealed tokens and only the identity fields that are known."""
    assert grant.fields() == fields


def test_grant_fields_merge_keeps_old_identity() -> None:
    """Merging {**old, **new} keeps fields the provider did not return."""
    old = {"type": "oauth", "access": "a0", "refresh": "r0", "expires": 1, "accountId": "acc"}
    merged = {**old, **Grant(Secret("a1"), Secret("r1"), 9).fields()}
    assert merged == {
        "type": "oauth",
        "access": "a1",
        "refresh": "r1",
        "expires": 9,
        "accountId": "acc",
    }


def test_grant_repr_masks_tokens() -> None:
    """A Grant's repr shows no token."""
    grant = Grant(Secret(CANARY), Secret(CANARY), 1, Secret(CANARY), "acc")
    assert repr(grant) == (
        "Grant(access=Secret(***), refresh=Secret(***), expires_ms=1, id_token=Secret(***), "
        "account_id='acc', plan=None, email=None, extra=())"
    )


def malformed(what: str, provider: str = "openai-codex") -> str:
    """The message for a 2xx answer without what a grant needs."""
    return f"the {provider} token endpoint's answer {what}; nothing was stored, try again later"


@pytest.mark.parametrize(
    ("auth", "body", "message"),
    [
        (OPENAI_CODEX, b"<html>ok</html>", malformed("is not a JSON object")),
        (OPENAI_CODEX, b"[1]", malformed("is not a JSON object")),
        (OPENAI_CODEX, b"\xff\xfe\x00", malformed("is not a JSON object")),
        (OPENAI_CODEX, b"[" * 100_000, malformed("is not a JSON object")),
        (OPENAI_CODEX, answer(refresh_token="r", expires_in=1), malformed("has no access_token")),
        (
            OPENAI_CODEX,
            answer(access_token="", refresh_token="r", expires_in=1),
            malformed("has no access_token"),
        ),
        (
            OPENAI_CODEX,
            answer(access_token=1, refresh_token="r", expires_in=1),
            malformed("has no access_token"),
        ),
        (OPENAI_CODEX, answer(access_token="a", expires_in=1), malformed("has no refresh_token")),
        (
            ANTHROPIC,
            answer(access_token="a", expires_in=1),
            malformed("has no refresh_token", "anthropic"),
        ),
    ]
    + [
        (
            OPENAI_CODEX,
            answer(access_token="a", refresh_token="r", expires_in=value),
            malformed("has no positive expires_in"),
        )
        for value in (None, 0, -5, "3600", True, 10**12, 10**400, [1])
    ]
    + [
        (
            OPENAI_CODEX,
            b'{"access_token": "a", "refresh_token": "r", "expires_in": ' + raw + b"}",
            malformed("has no positive expires_in"),
        )
        for raw in (b"NaN", b"Infinity", b"1e400")
    ],
)
def test_parse_token_response_malformed_success(
    auth: ProviderAuth, body: bytes, message: str
) -> None:
    """A 2xx answer without the tokens and a sane lifetime is a provider fault; none is invented."""
    with pytest.raises(RefreshUnavailable) as caught:
        parse_token_response(auth, 200, body, NOW)
    assert (type(caught.value), caught.value.message) == (RefreshUnavailable, message)


OPENAI_REAUTH = "sign in again with: openclaw-sidecar login --provider openai-codex"
ANTHROPIC_REAUTH = (
    "get a new token with `claude setup-token` and store it with: "
    "openclaw-sidecar paste-token --provider anthropic"
)


@pytest.mark.parametrize(
    ("auth", "status", "body", "reason", "message"),
    [
        (
            OPENAI_CODEX,
            401,
            answer(error={"code": "refresh_token_reused", "message": CANARY}),
            "refresh_token_reused",
            f"openai-codex refused the sign-in (refresh_token_reused); {OPENAI_REAUTH}",
        ),
        (
            OPENAI_OAUTH,
            400,
            answer(error="invalid_grant", error_description=CANARY),
            "invalid_grant",
            f"openai refused the sign-in (invalid_grant); {OPENAI_REAUTH}",
        ),
        (
            OPENAI_CODEX,
            401,
            answer(error={"type": "refresh_token_expired"}),
            "refresh_token_expired",
            f"openai-codex refused the sign-in (refresh_token_expired); {OPENAI_REAUTH}",
        ),
        (
            dataclasses.replace(OPENAI_CODEX, provider="my-oauth"),
            400,
            answer(error="invalid_grant"),
            "invalid_grant",
            "my-oauth refused the sign-in (invalid_grant); sign in again with: "
            "openclaw-sidecar login --provider my-oauth",
        ),
        (
            ANTHROPIC,
            400,
            answer(error="invalid_grant", error_description=f"token {CANARY} revoked"),
            "invalid_grant",
            f"anthropic refused the sign-in (invalid_grant); {ANTHROPIC_REAUTH}",
        ),
        (
            OPENAI_CODEX,
            400,
            answer(error={"code": "invalid_refresh_token", "type": "invalid_request_error"}),
            "invalid_refresh_token",
            f"openai-codex refused the sign-in (invalid_refresh_token); {OPENAI_REAUTH}",
        ),
        (
            ANTHROPIC,
            403,
            answer(error="unauthorized_client"),
            "unauthorized_client",
            f"anthropic refused the sign-in (unauthorized_client); {ANTHROPIC_REAUTH}",
        ),
    ],
)
def test_parse_token_response_rejection(
    auth: ProviderAuth, status: int, body: bytes, reason: str, message: str
) -> None:
    """A 400/401/403 with a rejecting code means a new login; the message names the command."""
    with pytest.raises(TokenRejected) as caught:
        parse_token_response(auth, status, body, NOW)
    assert (caught.value.reason, caught.value.message, caught.value.status) == (
        reason,
        message,
        401,
    )


def unavailable(status: int, shown: str) -> str:
    """The message for a failed answer that is not a rejection."""
    return f"the openai-codex token endpoint answered {status} ({shown}); try again later"


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (429, answer(error="rate_limit_exceeded"), unavailable(429, "rate_limit_exceeded")),
        (500, b"", unavailable(500, "no error code")),
        (502, b"<html>Bad gateway</html>", unavailable(502, "no error code")),
        (503, answer(error="invalid_grant"), unavailable(503, "invalid_grant")),
        (404, answer(error="invalid_grant"), unavailable(404, "invalid_grant")),
        (400, answer(error="invalid_request"), unavailable(400, "invalid_request")),
        (401, answer(error="invalid_client"), unavailable(401, "invalid_client")),
        (401, b"", unavailable(401, "no error code")),
        (401, answer(error=CANARY), unavailable(401, "an unrecognised error")),
        (
            400,
            answer(error={"code": CANARY, "message": CANARY}),
            unavailable(400, "an unrecognised error"),
        ),
        (403, answer(error={"code": None, "type": 7}), unavailable(403, "no error code")),
        (
            302,
            answer(access_token="a", refresh_token="r", expires_in=1),
            unavailable(302, "no error code"),
        ),
    ],
)
def test_parse_token_response_unavailable(status: int, body: bytes, message: str) -> None:
    """Other failures keep the old token: throttling, outages, unknown or unsafe codes."""
    with pytest.raises(RefreshUnavailable) as caught:
        parse_token_response(OPENAI_CODEX, status, body, NOW)
    assert (type(caught.value), caught.value.message) == (RefreshUnavailable, message)


KEYS = st.sampled_from(
    [
        "error",
        "error_description",
        "code",
        "message",
        "type",
        "access_token",
        "refresh_token",
        "expires_in",
        "id_token",
        "account",
        "email_address",
    ]
)
LEAVES = st.one_of(
    st.just(CANARY), st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)
)
JSONISH = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=8), inner, max_size=6)
    ),
)
STYLES = st.sampled_from([OPENAI_CODEX, OPENAI_OAUTH, ANTHROPIC])


def outcome(
    auth: ProviderAuth, status: int, body: bytes, now_ms: int = NOW, **kw: str | None
) -> object:
    """What parse_token_response returns or raises."""
    try:
        return parse_token_response(auth, status, body, now_ms, **kw)
    except RefreshError as exc:
        return exc


@given(STYLES, st.integers(100, 599), JSONISH)
def test_no_answer_puts_its_text_in_a_message(
    auth: ProviderAuth, status: int, data: object
) -> None:
    """Whatever JSON a token endpoint sends, a canary in it never reaches an error message."""
    result = outcome(auth, status, json.dumps(data).encode())
    if isinstance(result, RefreshError):
        assert CANARY not in f"{result.message} {result!r}"


@given(STYLES, st.integers(), st.binary(), st.integers(-(2**62), 2**62), st.none() | st.text())
def test_any_answer_is_a_grant_or_a_refresh_error(
    auth: ProviderAuth, status: int, body: bytes, now_ms: int, previous: str | None
) -> None:
    """Arbitrary bytes and statuses give a Grant, TokenRejected or RefreshUnavailable."""
    result = outcome(auth, status, body, now_ms, previous_refresh=previous)
    assert type(result) in {Grant, TokenRejected, RefreshUnavailable}
