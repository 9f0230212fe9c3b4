"""Tests for sidecar.proxy.routing: precedence, refusals and the base-URL guarantee."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.errors import (
    AgentMismatch,
    InvalidAgent,
    InvalidPath,
    RepeatedBasePath,
    RouteError,
    SidecarError,
    UnknownProvider,
)
from sidecar.proxy.routing import (
    RESERVED_PATHS,
    Route,
    codex_path,
    is_valid_agent_id,
    repeated_base_tail,
    resolve_route,
    upstream_url,
)

PROVIDERS = frozenset({"anthropic", "openai", "openai-codex", "openrouter", "my-llm"})
BASE_URLS = [
    "https://api.anthropic.com",
    "https://chatgpt.com/backend-api/codex",
    "http://127.0.0.1:9000/v1",
]


def route(path: bytes, headers: dict[str, str] | None = None, bound: str | None = None) -> Route:
    return resolve_route(
        path, headers or {}, bound_agent=bound, default_agent="main", providers=PROVIDERS
    )


@pytest.mark.parametrize(
    ("path", "headers", "bound", "expected"),
    [
        (b"/anthropic/v1/messages", {}, None, Route("main", "anthropic", None, "/v1/messages")),
        (b"/openai/v1/chat/completions", {}, None,
         Route("main", "openai", None, "/v1/chat/completions")),
        (b"/openai-codex/responses", {}, None, Route("main", "openai-codex", None, "/responses")),
        (b"/anthropic", {}, None, Route("main", "anthropic", None, "")),
        (b"/anthropic/", {}, None, Route("main", "anthropic", None, "/")),
        (b"/agents/work/anthropic@anthropic:work/v1/messages", {}, None,
         Route("work", "anthropic", "anthropic:work", "/v1/messages")),
        (b"/anthropic@anthropic:me@example.com/v1", {}, None,
         Route("main", "anthropic", "anthropic:me@example.com", "/v1")),
        (b"/anthropic@anthropic%3Awork%20x/v1", {}, None,
         Route("main", "anthropic", "anthropic:work x", "/v1")),
        (b"/anthropic/v1", {"x-openclaw-agent": "ops"}, None,
         Route("ops", "anthropic", None, "/v1")),
        (b"/anthropic/v1", {"x-openclaw-profile": "anthropic:b"}, None,
         Route("main", "anthropic", "anthropic:b", "/v1")),
        (b"/agents/work/anthropic/v1", {"x-openclaw-agent": "ops"}, None,
         Route("work", "anthropic", None, "/v1")),
        (b"/anthropic@anthropic:a/v1", {"x-openclaw-profile": "anthropic:b"}, None,
         Route("main", "anthropic", "anthropic:a", "/v1")),
        (b"/anthropic/v1", {}, "work", Route("work", "anthropic", None, "/v1")),
        (b"/anthropic/v1", {"x-openclaw-agent": "work"}, "work",
         Route("work", "anthropic", None, "/v1")),
        (b"/agents/work/anthropic/v1", {"x-openclaw-agent": "work"}, "work",
         Route("work", "anthropic", None, "/v1")),
        (b"/openai/v1/files/file%2Dabc/content", {}, None,
         Route("main", "openai", None, "/v1/files/file%2Dabc/content")),
        (b"/openai/v1//models", {}, None, Route("main", "openai", None, "/v1//models")),
        (b"/openai/v1/.well-known/x", {}, None, Route("main", "openai", None, "/v1/.well-known/x")),
        (b"/openai/v1/...", {}, None, Route("main", "openai", None, "/v1/...")),
    ],
)  # fmt: skip
def test_resolve_route(
    path: bytes, headers: dict[str, str], bound: str | None, expected: Route
) -> None:
    """Agent: listener > path > header > default; profile: path pin > header."""
    assert route(path, headers, bound) == expected


@pytest.mark.parametrize(
    ("path", "headers", "bound", "error"),
    [
        (b"/agents/other/anthropic/v1", {}, "work", AgentMismatch),
        (b"/anthropic/v1", {"x-openclaw-agent": "other"}, "work", AgentMismatch),
        (b"/agents/work/anthropic/v1", {"x-openclaw-agent": "other"}, "work", AgentMismatch),
        (b"/agents/Work/anthropic/v1", {}, None, InvalidAgent),
        (b"/agents//anthropic/v1", {}, None, InvalidAgent),
        (b"/agents/-x/anthropic/v1", {}, None, InvalidAgent),
        (b"/agents/" + b"a" * 65 + b"/anthropic/v1", {}, None, InvalidAgent),
        (b"/agents/ma%C4%B1n/anthropic/v1", {}, None, InvalidAgent),
        (b"/agents/%EF%BD%8Dain/anthropic/v1", {}, None, InvalidAgent),
        (b"/anthropic/v1", {"x-openclaw-agent": "../main"}, None, InvalidAgent),
        (b"/anthropic/v1", {"x-openclaw-agent": "main\n"}, None, InvalidAgent),
        (b"/anthropic/v1", {"x-openclaw-agent": ""}, None, InvalidAgent),
        (b"/anthropic/v1", {"x-openclaw-agent": "ｍain"}, None, InvalidAgent),
        (b"/anthropic/v1", {"x-openclaw-agent": "maın"}, "main", InvalidAgent),
        (b"/anthropic/v1", {"x-openclaw-agent": "a" * 10_000}, None, InvalidAgent),
        (b"/agents", {}, None, InvalidPath),
        (b"/agents/work", {}, None, InvalidPath),
        (b"/agents/work/", {}, None, InvalidPath),
        (b"/", {}, None, InvalidPath),
        (b"/@anthropic:a/v1", {}, None, InvalidPath),
        (b"/anthropic@/v1", {}, None, InvalidPath),
        (b"/anthropic@" + b"p" * 201 + b"/v1", {}, None, InvalidPath),
        (b"/anthropic@%FF/v1", {}, None, InvalidPath),
        (b"/anthropic/v1", {"x-openclaw-profile": ""}, None, InvalidPath),
        (b"/anthropic/v1", {"x-openclaw-profile": "a/b"}, None, InvalidPath),
        (b"/anthropic/v1", {"x-openclaw-profile": "a\x00b"}, None, InvalidPath),
        (b"/anthropic/v1", {"x-openclaw-profile": "p" * 201}, None, InvalidPath),
        (b"/unknown/v1", {}, None, UnknownProvider),
        (b"/healthz", {}, None, UnknownProvider),
        (b"/%61nthropic/v1", {}, None, UnknownProvider),
        (b"/agents/work/nope/v1", {}, None, UnknownProvider),
    ],
)  # fmt: skip
def test_route_refusals(
    path: bytes, headers: dict[str, str], bound: str | None, error: type[RouteError]
) -> None:
    """Bad agents, bad pins, mismatches and unknown providers are refused with their class."""
    with pytest.raises(error) as caught:
        route(path, headers, bound)
    assert type(caught.value) is error


@pytest.mark.parametrize(
    "path",
    [
        b"/anthropic/../openai/v1",
        b"/anthropic/v1/..",
        b"/anthropic/./v1",
        b"/anthropic/%2e%2e/v1",
        b"/anthropic/%2E%2E/v1",
        b"/anthropic/.%2e/v1",
        b"/anthropic/%2e./v1",
        b"/anthropic/%2e/v1",
        b"/anthropic/%252e%252e/v1",
        b"/anthropic/%25252e/v1",
        b"/anthropic/%25252525252e/v1",
        b"/anthropic/%EF%BC%8E%EF%BC%8E/v1",
        b"/anthropic/v1%2f..%2fx",
        b"/anthropic/v1%2F..",
        b"/anthropic%2fv1",
        b"/anthropic/v1%5c..",
        b"/anthropic/v1%255c",
        b"/anthropic/v1%EF%BC%8F",
        b"/anthropic/v1\\..\\x",
        b"/anthropic/v1/\x00",
        b"/anthropic/v1%00",
        b"/anthropic/v1%0d%0aHost:%20evil",
        b"/anthropic/v1%7f",
        b"/anthropic/v1%C2%85",
        b"/anthropic/v1\x7f",
        b"/anthropic/v 1",
        b"/anthropic/v1\xc3\xa9",
        b"/anthropic/v1%zz",
        b"/anthropic/v1%4",
        b"/anthropic/v1#x",
        b"/anthropic/v1?x=1",
        b"https://evil.example/anthropic/v1",
        b"evil.example/anthropic/v1",
        b"//evil.example/anthropic/v1",
        b"*",
        b"",
        b"/agents/../anthropic/v1",
        b"/agents/%2e%2e/anthropic/v1",
    ],
)
def test_invalid_paths(path: bytes) -> None:
    """Traversal, encoded separators, controls and absolute-form targets are invalid_path."""
    with pytest.raises(InvalidPath):
        route(path)


@pytest.mark.parametrize(
    ("base_url", "path", "query", "expected"),
    [
        ("https://api.anthropic.com", "/v1/messages", b"",
         "https://api.anthropic.com/v1/messages"),
        ("https://api.openai.com", "/v1/chat/completions", b"a=1&b=%20",
         "https://api.openai.com/v1/chat/completions?a=1&b=%20"),
        ("https://chatgpt.com/backend-api/codex", "/responses", b"",
         "https://chatgpt.com/backend-api/codex/responses"),
        ("https://chatgpt.com/backend-api/codex", "", b"", "https://chatgpt.com/backend-api/codex"),
        ("http://127.0.0.1:9000/v1", "/x%2Dy", b"q", "http://127.0.0.1:9000/v1/x%2Dy?q"),
    ],
)  # fmt: skip
def test_upstream_url(base_url: str, path: str, query: bytes, expected: str) -> None:
    """The upstream URL is the base URL plus the path as received, plus the query."""
    assert str(upstream_url(base_url, path, query)) == expected


@pytest.mark.parametrize(
    ("base_url", "path", "query"),
    [
        ("https://api.anthropic.com", "@evil.example/v1", b""),
        ("https://api.anthropic.com", ".evil.example/v1", b""),
        ("https://api.anthropic.com", ":8443/v1", b""),
        ("https://api.anthropic.com", "/../x", b""),
        ("https://chatgpt.com/backend-api/codex", "/../../x", b""),
        ("https://chatgpt.com/backend-api/codex", "/../codex-other", b""),
        ("https://api.anthropic.com", "/v1", b"a=1#frag"),
        ("https://api.anthropic.com", "/v1", b"a= 1"),
        ("https://api.anthropic.com", "/v1", b"a=\r\nHost: evil"),
        ("https://api.anthropic.com", "/v1", b"a=\xff"),
        ("https://api.example.com:abc", "/v1", b""),
    ],
)
def test_upstream_url_never_leaves_the_base(base_url: str, path: str, query: bytes) -> None:
    """A path or query that would reach another host or path prefix is invalid_path."""
    with pytest.raises(InvalidPath):
        upstream_url(base_url, path, query)


@pytest.mark.parametrize(
    ("base_url", "path", "expected"),
    [
        ("https://llm.example.com/v1", "/v1/chat/completions", "/v1"),
        ("https://llm.example.com/v1/", "/v1/models", "/v1"),
        ("https://llm.example.com/v1", "/v1", "/v1"),
        ("https://openrouter.ai/api", "/api/v1/chat/completions", "/api"),
        ("https://openrouter.ai/api/v1", "/api/v1/chat/completions", "/api/v1"),
        ("https://openrouter.ai/api/v1", "/v1/chat/completions", "/v1"),
        ("https://chatgpt.com/backend-api/codex", "/backend-api/codex/responses",
         "/backend-api/codex"),
        ("https://llm.example.com/v1", "/chat/completions", None),
        ("https://llm.example.com/v1", "", None),
        ("https://llm.example.com/v1", "/v10/x", None),
        ("https://api.openai.com", "/v1/chat/completions", None),
        ("https://api.anthropic.com", "/v1/messages", None),
        ("https://openrouter.ai/api", "/v1/chat/completions", None),
        ("https://chatgpt.com/backend-api/codex", "/responses", None),
        ("https://host/a/v1", "/a/x", None),
    ],
)  # fmt: skip
def test_repeated_base_tail(base_url: str, path: str, expected: str | None) -> None:
    """A path that starts by repeating the end of the base_url's path is found, with the part
    repeated; any other path is not."""
    assert repeated_base_tail(base_url, path) == expected


def test_upstream_url_refuses_a_repeated_base_tail() -> None:
    """…/my-llm/v1 against a base_url ending in /v1 is refused, naming what to drop."""
    with pytest.raises(RepeatedBasePath) as caught:
        upstream_url("https://llm.example.com/v1", "/v1/chat/completions", b"", provider="my-llm")
    assert caught.value.message == (
        "the path '/v1/chat/completions' repeats '/v1', the end of my-llm's base_url "
        "https://llm.example.com/v1: /my-llm on the sidecar stands for the whole base_url, so "
        "drop '/v1' from the end of the client's base URL (`openclaw-sidecar wire` prints the "
        "URL for each client)"
    )
    assert (caught.value.code, caught.value.status) == ("repeated_base_path", 404)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("main", True),
        ("a", True),
        ("0", True),
        ("work_2-b", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("-a", False),
        ("_a", False),
        ("Main", False),
        ("main\n", False),
        ("ma.in", False),
        ("..", False),
        ("a/b", False),
        ("a\x00", False),
        ("ｍain", False),
        ("maın", False),
    ],
)
def test_is_valid_agent_id(value: str, expected: bool) -> None:
    """Agent ids match ^[a-z0-9][a-z0-9_-]{0,63}$ exactly, ASCII only."""
    assert is_valid_agent_id(value) is expected


def test_reserved_paths() -> None:
    """The app's own paths are listed for it to handle before routing."""
    assert frozenset({"/healthz", "/readyz", "/metrics"}) == RESERVED_PATHS


def test_error_messages_are_short_and_quoted() -> None:
    """A huge client-supplied value is cut short in the error message."""
    with pytest.raises(UnknownProvider) as caught:
        route(b"/" + b"x" * 5000 + b"/v1")
    assert caught.value.message == (
        f"unknown provider {'x' * 64 + '…'!r}; `openclaw-sidecar providers` lists the 5 configured"
    )


def test_agent_mismatch_message() -> None:
    """A mismatch names the listener's agent and the one asked for."""
    with pytest.raises(AgentMismatch) as caught:
        route(b"/agents/other/anthropic/v1", bound="work")
    assert caught.value.message == (
        "this listener serves only agent 'work'; the request named 'other'"
    )


_SAFE = st.sampled_from(["a", "z", "0", "-", "_", ".", "~", ":", "@", "v1", "%20", "%2D"])
_RISKY = st.sampled_from(
    ["..", "%", "%2e", "%2E", "%252e", "%2f", "%5c", "%00", "%25", "\\", "\x00", "\n", " ",
     "é", "ｍ", "ı", "%C4%B1", "%EF%BC%8E", "?", "#", "//"]
)  # fmt: skip
_SEGMENT = st.lists(st.one_of(_SAFE, _SAFE, _SAFE, _RISKY), max_size=4).map("".join)
_AGENT_PART = st.one_of(
    st.just(""),
    _SEGMENT.map(lambda agent: f"/agents/{agent}"),
    st.sampled_from(["/agents/main", "/agents/work"]),
)
_PROVIDER_PART = st.sampled_from([*sorted(PROVIDERS), "nope", "", "agents"])
_PIN_PART = st.one_of(st.just(""), _SEGMENT.map(lambda pin: f"@{pin}"))
_REST = st.lists(_SEGMENT, max_size=5).map(lambda parts: "".join(f"/{part}" for part in parts))
_PATHS = st.one_of(
    st.tuples(_AGENT_PART, _PROVIDER_PART, _PIN_PART, _REST).map(
        lambda parts: f"{parts[0]}/{parts[1]}{parts[2]}{parts[3]}"
    ),
    st.text(max_size=40),
).map(lambda text: text.encode("utf-8"))
_HEADER_VALUES = st.one_of(st.none(), st.text(max_size=80), st.sampled_from(["main", "work"]))


@given(
    path=_PATHS,
    agent=_HEADER_VALUES,
    profile=_HEADER_VALUES,
    bound=st.sampled_from([None, "work"]),
    base_url=st.sampled_from(BASE_URLS),
    query=st.binary(max_size=20),
)
def test_routing_property(
    path: bytes,
    agent: str | None,
    profile: str | None,
    bound: str | None,
    base_url: str,
    query: bytes,
) -> None:
    """Any path and headers give a route or a RouteError; a route's URL stays under the base."""
    headers = {
        name: value
        for name, value in (("x-openclaw-agent", agent), ("x-openclaw-profile", profile))
        if value is not None
    }
    try:
        result = route(path, headers, bound)
    except RouteError:
        return
    assert is_valid_agent_id(result.agent)
    assert bound is None or result.agent == bound
    try:
        url = str(upstream_url(base_url, result.upstream_path, query))
    except InvalidPath:
        return
    assert url.startswith(base_url)
    assert url[len(base_url) :][:1] in ("", "/", "?")


@given(
    agent=st.one_of(
        st.text(max_size=100),
        st.text(st.sampled_from(["a", ".", "/", "\x00", "ｍ", "ı", "A", "%"]), min_size=1),
        st.just("a" * 1000),
    )
)
def test_agent_ids_from_path_and_header_are_checked(agent: str) -> None:
    """An agent id is accepted from path or header exactly when it is valid."""
    for path, headers in (
        (b"/agents/" + agent.encode("utf-8") + b"/anthropic/v1", {}),
        (b"/anthropic/v1", {"x-openclaw-agent": agent}),
    ):
        try:
            result = route(path, headers)
        except (InvalidAgent, InvalidPath):
            assert not is_valid_agent_id(agent)
        except UnknownProvider:
            # "/agents/0/0/anthropic": the path's agent is "0", and "0" is read as the provider.
            assert "/" in agent
            assert not headers
        except SidecarError as exc:  # pragma: no cover - reported by the assertion
            raise AssertionError(f"unexpected {exc!r}") from exc
        else:
            assert result.agent == agent


@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        ("https://chatgpt.com/backend-api/codex", "/codex/responses", "/responses"),
        ("https://chatgpt.com/backend-api/codex", "/codex", ""),
        ("https://chatgpt.com/backend-api/codex", "/responses", "/responses"),
        ("https://chatgpt.com/backend-api/codex", "/codexes/x", "/codexes/x"),
        ("https://relay.example/backend-api", "/codex/responses", "/codex/responses"),
    ],
)
def test_codex_path_drops_the_segment_openclaw_appends(base: str, path: str, expected: str) -> None:
    """OpenClaw 2026.9.x's '/codex/responses' on a base already ending in /codex is not doubled."""
    assert codex_path(base, path) == expected


def test_a_kept_url_is_the_same_and_a_refusal_is_refused_every_time() -> None:
    """URLs are kept (upstream_url is pure); a refusal raises each time, never kept."""
    url = upstream_url("https://api.openai.com/v1", "/chat/completions", b"a=1", provider="openai")
    again = upstream_url(
        "https://api.openai.com/v1", "/chat/completions", b"a=1", provider="openai"
    )
    assert again is url
    assert str(url) == "https://api.openai.com/v1/chat/completions?a=1"
    for _ in range(2):
        with pytest.raises(InvalidPath):
            upstream_url("https://api.openai.com/v1", "/../admin", b"", provider="openai")
