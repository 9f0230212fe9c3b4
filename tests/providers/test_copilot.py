"""GitHub Copilot's two OpenClaw models (sidecar.providers.copilot): 2026.6.1's exchange of the
GitHub token for a Copilot token, and 2026.9.6's GitHub token with its account's API; where
each credential goes and the headers OpenClaw adds."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from sidecar.errors import ReauthRequired, RefreshUnavailable
from sidecar.providers import copilot, flows
from sidecar.providers.catalog import BUILTIN_PROVIDERS
from sidecar.providers.conversation import model_call
from sidecar.providers.grants import Answer, Grant, Login, TokenRejected, TokenRequest
from sidecar.providers.injection import Injection, credential_injection
from sidecar.secret import Secret
from tests.providers.flow_support import NOW, answer, drive

AUTH = flows.provider_auth(BUILTIN_PROVIDERS["github-copilot"], {})
assert AUTH is not None
GITHUB = "gho_16C7e42F292c6912E7710c838347Ae178B4a"
COPILOT = "tid=abc;exp=1767229200;sku=free;proxy-ep=proxy.individual.githubcopilot.com;8kp=1:sig"
EXCHANGE_HEADERS = (
    ("Accept", "application/json"),
    ("Authorization", f"Bearer {GITHUB}"),
    ("User-Agent", "GitHubCopilotChat/0.35.0"),
    ("Editor-Version", "vscode/1.107.0"),
    ("Editor-Plugin-Version", "copilot-chat/0.35.0"),
    ("Copilot-Integration-Id", "vscode-chat"),
)


def login(**fields: Any) -> Login:
    return Login("github-copilot:github", "github-copilot", GITHUB, {"type": "oauth", **fields})


# --- 2026.6.1: the exchange -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "url"),
    [
        ({}, "https://api.github.com/copilot_internal/v2/token"),
        ({"enterpriseUrl": "github.com"}, "https://api.github.com/copilot_internal/v2/token"),
        ({"enterpriseUrl": "Acme.GHE.com"}, "https://api.acme.ghe.com/copilot_internal/v2/token"),
        (
            {"enterpriseUrl": "https://acme.ghe.com/login"},
            "https://api.acme.ghe.com/copilot_internal/v2/token",
        ),
    ],
)
def test_the_refresh_exchanges_the_github_token_at_the_profile_s_domain(
    fields: dict[str, Any], url: str
) -> None:
    """GET api.<enterpriseUrl or github.com>/copilot_internal/v2/token with the GitHub token
    and the IDE headers of 2026.6.1's refreshGitHubCopilotToken."""
    assert next(flows.refresh_flow(AUTH, login(**fields))) == TokenRequest(
        url, EXCHANGE_HEADERS, b"", "GET"
    )


def test_an_enterprise_url_off_github_is_never_sent_the_token() -> None:
    """An enterpriseUrl that is not github.com or a *.ghe.com tenant: nothing is sent."""
    with pytest.raises(RefreshUnavailable, match=r"not github\.com or a \*\.ghe\.com tenant"):
        next(flows.refresh_flow(AUTH, login(enterpriseUrl="evil.example")))


def test_a_configured_api_is_where_the_exchange_goes() -> None:
    """[providers.github-copilot] issuer: GitHub's API elsewhere (a test's fake)."""
    auth = dataclasses.replace(AUTH, issuer="http://127.0.0.1:9/github")
    request = next(flows.refresh_flow(auth, login()))
    assert request.url == "http://127.0.0.1:9/github/copilot_internal/v2/token"


@pytest.mark.parametrize("expires_at", [1_767_229_200, "1767229200"])
def test_the_copilot_token_is_the_access_the_github_token_stays(expires_at: object) -> None:
    """The Copilot token is the new access, expiring five minutes before expires_at; the
    GitHub token stays the refresh token."""
    given = answer(token=COPILOT, expires_at=expires_at, refresh_in=1500)
    _, grant = drive(flows.refresh_flow(AUTH, login()), [given])
    assert grant == Grant(Secret(COPILOT), Secret(GITHUB), 1_767_229_200_000 - 300_000)


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (
            answer(401, message="Bad credentials", documentation_url="https://docs.github.com"),
            TokenRejected,
            "GitHub refused the Copilot sign-in (bad_credentials); sign in again with "
            "OpenClaw: `openclaw models auth login --provider github-copilot`",
        ),
        (
            answer(403, message="Resource not accessible by integration"),
            TokenRejected,
            "GitHub refused the Copilot sign-in (copilot_not_enabled); sign in again with "
            "OpenClaw: `openclaw models auth login --provider github-copilot`",
        ),
        (
            answer(502, message=GITHUB),
            RefreshUnavailable,
            "GitHub's Copilot token endpoint answered 502; try again later",
        ),
        (
            answer(expires_at=1_767_229_200),
            RefreshUnavailable,
            "the github-copilot token endpoint's answer has no token; nothing was stored, try "
            "again later",
        ),
        (
            answer(token=COPILOT, expires_at=True),
            RefreshUnavailable,
            "the github-copilot token endpoint's answer has no expires_at; nothing was stored, "
            "try again later",
        ),
    ],
)
def test_exchange_failures(given: Answer, error: type[Exception], message: str) -> None:
    """A refused GitHub token asks for OpenClaw's login; the rest keeps the old token."""
    flow = flows.refresh_flow(AUTH, login())
    next(flow)
    with pytest.raises(error) as caught:
        flow.send(given)
    assert (type(caught.value), str(caught.value)) == (error, message)


@pytest.mark.parametrize(
    ("token", "domain", "base"),
    [
        (COPILOT, "github.com", "https://api.individual.githubcopilot.com"),
        ("tid=1;proxy-ep=proxy.business.githubcopilot.com;x=1:s", "github.com",
         "https://api.business.githubcopilot.com"),
        ("tid=1; proxy-ep=https://proxy.enterprise.githubcopilot.com/:s", "github.com",
         "https://api.enterprise.githubcopilot.com"),
        ("tid=1;proxy-ep=copilot-api.acme.ghe.com:s", "acme.ghe.com",
         "https://copilot-api.acme.ghe.com"),
        ("tid=1;proxy-ep=proxy.evil.example:s", "github.com", None),
        ("tid=1;proxy-ep=copilot-api.acme.ghe.com:s", "github.com", None),
        ("tid=1;exp=2:s", "github.com", None),
        (GITHUB, "github.com", None),
    ],
)  # fmt: skip
def test_the_base_url_of_a_copilot_token_is_its_proxy_ep(
    token: str, domain: str, base: str | None
) -> None:
    """proxy-ep with proxy. made api., on a host 2026.9.6 trusts; else none (the default)."""
    assert copilot.base_url_from_token(token, domain) == base


# --- 2026.9.6: the GitHub token ------------------------------------------------------------------


def test_the_user_lookup() -> None:
    """GET api.<domain>/copilot_internal/user with the GitHub token (resolveCopilotRuntimeAuth)."""
    assert copilot.user_request(AUTH, GITHUB, "acme.ghe.com") == TokenRequest(
        "https://api.acme.ghe.com/copilot_internal/user",
        (("Accept", "application/json"), ("Authorization", f"Bearer {GITHUB}")),
        b"",
        "GET",
    )


@pytest.mark.parametrize(
    ("given", "domain", "base"),
    [
        (answer(endpoints={"api": "https://api.individual.githubcopilot.com/"}), "github.com",
         "https://api.individual.githubcopilot.com"),
        (answer(endpoints={"api": "https://api.acme.ghe.com"}), "acme.ghe.com",
         "https://api.acme.ghe.com"),
        (answer(login="ada"), "github.com", None),
        (answer(endpoints={"api": ""}), "github.com", None),
        (answer(endpoints="odd"), "github.com", None),
    ],
)  # fmt: skip
def test_the_user_endpoint_names_the_api(given: Answer, domain: str, base: str | None) -> None:
    """endpoints.api when trusted; none named: the default (parseCopilotApiBaseUrl)."""
    assert copilot.base_url_from_user(given, domain) == base


@pytest.mark.parametrize(
    ("given", "error"),
    [
        (answer(endpoints={"api": "https://evil.example"}), RefreshUnavailable),
        (answer(endpoints={"api": "http://api.individual.githubcopilot.com"}), RefreshUnavailable),
        (answer(endpoints={"api": "https://u:p@api.githubcopilot.com"}), RefreshUnavailable),
        (answer(endpoints={"api": 7}), RefreshUnavailable),
        (answer(500), RefreshUnavailable),
        (Answer(200, b"<html>", NOW), RefreshUnavailable),
        (answer(401, message="Bad credentials"), ReauthRequired),
    ],
)
def test_the_user_endpoint_failures(given: Answer, error: type[Exception]) -> None:
    """An untrusted API is never used; a refused GitHub token asks for a new sign-in."""
    with pytest.raises(error):
        copilot.base_url_from_user(given, "github.com")


# --- headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cred_type", "secret", "extra"),
    [
        ("oauth", COPILOT, copilot.EXCHANGED_HEADERS),
        ("token", GITHUB, copilot.GITHUB_TOKEN_HEADERS),
        ("api_key", GITHUB, copilot.GITHUB_TOKEN_HEADERS),
    ],
)
def test_the_copilot_request_headers_follow_the_model(
    cred_type: Any, secret: str, extra: tuple[tuple[str, str], ...]
) -> None:
    """An OAuth login (2026.6.1's exchanged Copilot token) goes with the vscode-chat identity, a
    GitHub token (2026.9.6's token profile) with copilot-developer-cli; a client's own win."""
    injection = credential_injection(
        BUILTIN_PROVIDERS["github-copilot"], cred_type, secret, account_id=None
    )
    assert injection == Injection(set=(("authorization", f"Bearer {secret}"),), set_if_absent=extra)
    assert dict(extra)["editor-version"] == "vscode/1.107.0"


# --- the per-request headers: x-initiator and the vision flag ------------------------------------

USER = {"role": "user", "content": "fix the bug"}
ASSISTANT = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]}
TOOL = {"role": "tool", "tool_call_id": "c1", "content": "done"}
TOOL_RESULT = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1"}]}
CALL_OUTPUT = {"type": "function_call_output", "call_id": "c1", "output": "done"}


def chat(*turns: object) -> bytes:
    return json.dumps({"model": "gpt-5", "messages": list(turns)}).encode()


def responses(items: object) -> bytes:
    return json.dumps({"model": "gpt-5", "input": items}).encode()


@pytest.mark.parametrize(
    ("path", "body", "initiator"),
    [
        # The user's own words: a user turn last.
        ("/chat/completions", chat(USER), "user"),
        ("/responses", responses("fix the bug"), "user"),
        ("/responses", responses([USER]), "user"),
        ("/v1/messages", chat(USER), "user"),
        # The agent's loop: a tool's result, or the assistant's turn, last.
        ("/chat/completions", chat(USER, ASSISTANT, TOOL), "agent"),
        ("/chat/completions", chat(USER, ASSISTANT), "agent"),
        ("/responses", responses([USER, {"type": "function_call"}, CALL_OUTPUT]), "agent"),
        ("/v1/messages", chat(USER, ASSISTANT, TOOL_RESULT), "agent"),
        # Nothing to read (a body over the replay limit, chunked, or not JSON): OpenClaw's
        # answer for an empty conversation.
        ("/chat/completions", None, "user"),
        ("/chat/completions", b"{not json", "user"),
        ("/chat/completions", chat(), "user"),
        ("/chat/completions", chat(None), "user"),
    ],
)
def test_x_initiator_is_inferred_from_the_last_turn(
    path: str, body: bytes | None, initiator: str
) -> None:
    """``agent`` unless the last turn is the user's own (2026.9.6 projectCopilotRequestFacts,
    nested; 2026.6.1 inferCopilotInitiator), for each API OpenClaw's wrapper handles."""
    call = model_call(path, body)
    assert copilot.conversation_headers(call) == (("x-initiator", initiator),)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/chat/completions", chat({"role": "user", "content": [{"type": "image_url"}]})),
        ("/responses", responses([{"role": "user", "content": [{"type": "input_image"}]}])),
        ("/responses", responses([{"type": "function_call_output", "output": [
            {"type": "input_image"}]}])),
        ("/v1/messages", chat({"role": "user", "content": [
            {"type": "tool_result", "content": [{"type": "image"}]}]})),
    ],
)  # fmt: skip
def test_an_image_adds_the_vision_flag(path: str, body: bytes) -> None:
    """An image in a user turn or a tool's result: Copilot-Vision-Request, as OpenClaw sends it
    with the initiator."""
    headers = dict(copilot.conversation_headers(model_call(path, body)))
    assert headers["copilot-vision-request"] == "true"


def test_an_image_from_the_assistant_is_no_vision_request() -> None:
    """Only the user's and tools' images count (an assistant turn's do not)."""
    body = chat({"role": "assistant", "content": [{"type": "image_url"}]}, USER)
    assert copilot.conversation_headers(model_call("/chat/completions", body)) == (
        ("x-initiator", "user"),
    )


@pytest.mark.parametrize("path", ["/models", "/embeddings", "/v1/messages/count_tokens"])
def test_other_requests_get_no_conversation_headers(path: str) -> None:
    """Only model calls go through OpenClaw's wrapper: a listing or embeddings get nothing."""
    assert copilot.conversation_headers(model_call(path, chat(USER))) == ()
