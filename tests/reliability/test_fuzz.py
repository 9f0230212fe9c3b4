"""Bad input. Properties (beyond tests/sources/openclaw/test_properties.py and
tests/proxy/test_routing.py): the config parser on TOML-shaped documents, the store parser on
JSON that is almost a store, routes built from traversal and look-alike pieces, header rules
on any names and bytes. Then a few hundred fuzzed raw requests against the real server: never
a 500 that is not the documented JSON error, never a file touched outside the state dir, never
a request off the base URLs."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.config import parse_settings
from sidecar.errors import ConfigError, RouteError
from sidecar.providers.injection import Injection
from sidecar.proxy import headers as rules
from sidecar.proxy.routing import resolve_route, upstream_url
from sidecar.sources.openclaw.model import StoreFormatError, parse_profiles, parse_state
from tests.e2e.refresh_support import write_profiles
from tests.e2e.sidecar import Sidecar, free_port, render_config, start_sidecar
from tests.fakes.upstream import FakeUpstream
from tests.reliability.support import raw_request, report, request_bytes, tree

pytestmark = pytest.mark.reliability

EXAMPLES = 300
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RAW_REQUESTS = 400

# --- the config parser --------------------------------------------------------------------------

KEYS = [
    "state_dir", "default_agent", "listeners", "providers", "refresh", "upstream", "log",
    "fleet", "host", "port", "agent", "client_token_file", "kind", "base_url", "auth",
    "error_style", "token_url", "client_id", "margin_seconds", "timeout_seconds",
    "replay_body_limit_bytes", "level", "url_file", "key_file", "prefix", "openai", "my-llm",
]  # fmt: skip
toml_scalars = (
    st.text(max_size=20)
    | st.sampled_from(["http://x", "https://h/v1", "header:X-K", "bearer", "~/p", "main", "::1"])
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=True)
    | st.booleans()
    | st.datetimes()
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
toml_docs = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), toml_values, max_size=5)


@FUZZ
@given(toml_docs)
def test_config_parser_fails_only_with_config_errors(doc: dict[str, Any]) -> None:
    """Any TOML-shaped document either parses or raises ConfigError naming the source."""
    try:
        parse_settings(doc, source="fuzz.toml")
    except ConfigError as exc:
        assert exc.message.startswith("fuzz.toml: ")  # noqa: PT017 - any doc, not one case


# --- the store parser ---------------------------------------------------------------------------

SECRET = "sk-FUZZ-SECRET-0123456789abcdef"
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = ["type", "mode", "provider", "keyRef", "tokenRef", "expires", "email", "accountId",
          "source", "id"]  # fmt: skip
SECRET_FIELDS = ["key", "apiKey", "token", "access", "refresh", "idToken"]
entries = st.dictionaries(
    st.sampled_from(FIELDS),
    st.sampled_from(["api_key", "token", "oauth", "openai", "env"]) | json_values,
    max_size=6,
) | st.dictionaries(
    st.sampled_from(FIELDS + SECRET_FIELDS),
    st.sampled_from(["api_key", "token", "oauth", "openai"]),
    max_size=4,
).map(lambda entry: {**entry, **dict.fromkeys(SECRET_FIELDS, SECRET)})
near_stores = st.fixed_dictionaries(
    {"profiles": st.dictionaries(st.text(max_size=10), entries | json_values, max_size=4)},
    optional={
        "version": json_values,
        "order": json_values,
        "lastGood": json_values,
        "usageStats": st.dictionaries(st.text(max_size=6), json_values | entries, max_size=3),
    },
)


@FUZZ
@given(near_stores | json_values)
def test_store_parser_on_almost_stores(doc: Any) -> None:
    """JSON that is nearly a store parses or is a StoreFormatError; a secret in a credential
    field never shows in the repr of what was parsed."""
    data = json.dumps(doc)
    try:
        parse_state(data)
        assert SECRET not in repr(parse_profiles(data).entries)
    except StoreFormatError as exc:
        assert SECRET not in str(exc)  # noqa: PT017 - any doc, not one case


# --- routes and headers -------------------------------------------------------------------------

PIECES = [
    "openai", "anthropic", "agents", "main", "work", "v1", "chat", "..", ".", "%2e", "%2E%2e",
    "%252e%252e", "%2f", "%5c", "%00", "%0a", "%ef%bc%8e", "%ef%bc%8f", "%e2%80%a4", "%c0%ae",
    "%c0%af", "%", "%zz", "@", "openai@openai:main", "@..", "A", "\u2024", "x" * 300,
]  # fmt: skip
BASE = "https://api.example.com/v1"


@FUZZ
@given(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=7),
    st.sampled_from(["/", "//", "", "http://evil.example/", "/../"]),
    st.binary(max_size=12),
)
def test_routes_from_traversal_pieces(pieces: list[str], lead: str, query: bytes) -> None:
    """Any path of traversal and look-alike pieces is a route error or a URL under the base."""
    raw = (lead + "/".join(pieces)).encode("utf-8")
    try:
        route = resolve_route(
            raw, {}, bound_agent=None, default_agent="main", providers=["openai", "anthropic"]
        )
        url = str(upstream_url(BASE, route.upstream_path, query))
    except RouteError:
        return
    assert url == BASE or url.startswith((BASE + "/", BASE + "?"))
    assert "/../" not in url
    assert not url.endswith("/..")


header_names = st.sampled_from(
    [b"Authorization", b"AUTHORIZATION", b"x-api-key", b"X-Api-Key", b"api-key", b"Cookie",
     b"x-openclaw-agent", b"X-OpenClaw-Token", b"chatgpt-account-id", b"Host", b"Connection",
     b"keep-alive", b"TE", b"Upgrade", b"proxy-authorization", b"x-custom", b"accept"]
) | st.binary(min_size=1, max_size=12)  # fmt: skip


@FUZZ
@given(st.lists(st.tuples(header_names, st.binary(max_size=40)), max_size=12))
def test_inbound_credentials_never_go_upstream(inbound: list[tuple[bytes, bytes]]) -> None:
    """Whatever the client sends, no credential, hop-by-hop or Host header goes upstream except
    the injected one, and reading a client token never fails."""
    rules.client_token_from(inbound)
    injection = Injection(set=(("authorization", "Bearer injected"),))
    out = rules.outbound_request_headers(inbound, injection)
    named = rules.connection_named(inbound)
    for name, value in out:
        lowered = name.lower()
        assert lowered not in rules.HOP_BY_HOP | named | {b"host"}
        assert not lowered.startswith(rules.OPENCLAW_PREFIX)
        if lowered in rules.INBOUND_CREDENTIALS:
            assert (lowered, value) == (b"authorization", b"Bearer injected")


# --- the real server ----------------------------------------------------------------------------

KEY = "sk-fuzz-main-" + "k" * 20
PREFIXES = {"openai": "/oa", "anthropic": "/an"}


@dataclass
class Target:
    sidecar: Sidecar
    upstream: FakeUpstream
    root: Path


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A sidecar whose state dir has a sibling folder that must stay untouched."""
    root = tmp_path_factory.mktemp("fuzz")
    state_dir = root / "state"
    profile = {"type": "api_key", "provider": "openai", "key": KEY}
    write_profiles(
        state_dir, {"openai:main": profile, "anthropic:main": {**profile, "provider": "anthropic"}}
    )
    write_profiles(state_dir, {"openai:work": profile}, agent="work")
    sibling = root / "sibling" / "agents" / "main" / "agent"
    sibling.mkdir(parents=True)
    (sibling / "auth-profiles.json").write_text('{"profiles": {}}')
    with FakeUpstream() as upstream:
        providers = {name: {"base_url": upstream.url + prefix} for name, prefix in PREFIXES.items()}
        port = free_port()
        usage = {"usage": {"dir": str(root / "usage")}}  # the sidecar's own data folder
        sidecar = start_sidecar(
            render_config([{"port": port}], providers, usage),
            [port],
            state_dir=state_dir,
            workdir=root,
        )
        try:
            yield Target(sidecar, upstream, root)
        finally:
            sidecar.stop()


TARGET_PIECES = [
    *PIECES, "v1/chat/completions", "healthz", "metrics", "agents/work/openai",
    "agents/../openai", "agents/%2e%2e/sibling", "agents/main/openai@openai:main",
    "..%2f..%2fsibling", "%2e%2e%2fsibling", "?x=1", "#frag", "\\..\\", ";", "*",
]  # fmt: skip
HEADER_TRICKS: list[tuple[bytes, bytes]] = [
    (b"Host", b"evil.example"),
    (b"Host", b"127.0.0.1:1"),
    (b"X-Forwarded-Host", b"evil.example"),
    (b"X-OpenClaw-Agent", b".."),
    (b"X-OpenClaw-Agent", b"../sibling"),
    (b"X-OpenClaw-Agent", "ｍａｉｎ".encode()),
    (b"X-OpenClaw-Agent", b"work"),
    (b"X-OpenClaw-Agent", b"a" * 5000),
    (b"X-OpenClaw-Profile", b"openai:main"),
    (b"X-OpenClaw-Profile", b"../../x"),
    (b"X-OpenClaw-Profile", b"p" * 300),
    (b"Authorization", b"Bearer stolen"),
    (b"Authorization", b"Bearer stolen-too"),
    (b"x-api-key", b"k"),
    (b"Connection", b"x-api-key, close"),
    (b"Transfer-Encoding", b"chunked"),
    (b"X-Big", b"b" * 70_000),
    (b"Content-Type", b"application/json"),
]


def fuzzed_request(rng: random.Random) -> bytes:
    pieces = [rng.choice(TARGET_PIECES) for _ in range(rng.randint(0, 4))]
    lead = rng.choice(
        ["/", "//", "http://evil.example/", "*", "", "/openai/v1/", "/anthropic/v1/",
         "/agents/work/openai/v1/", "/openai@openai:main/", "/agents/main/anthropic/"]
    )  # fmt: skip
    target = (lead + "/".join(pieces)).encode("utf-8")
    headers = [(b"Host", b"127.0.0.1")] if rng.random() < 0.8 else []
    headers += rng.sample(HEADER_TRICKS, rng.randint(0, 4))
    headers.append((b"Connection", b"close"))
    if any(name == b"Transfer-Encoding" for name, _ in headers):
        headers = [h for h in headers if h[0] != b"Transfer-Encoding"]
    method = rng.choice(["GET", "POST", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "BREW"])
    body = b'{"model": "m", "messages": []}' if method in ("POST", "PUT") else b""
    return request_bytes(method, target, headers, body)


def test_fuzzed_raw_requests_against_the_real_server(target: Target) -> None:
    """Hundreds of fuzzed requests: no undocumented 500, nothing written outside the state dir
    but the usage database in the sidecar's own folder, every upstream request under a
    configured base path, and the server still healthy."""
    root = target.root
    outside = {p: tree(root / p) for p in ("sibling",)}
    rng = random.Random(8)
    statuses: dict[int, int] = {}
    for _ in range(RAW_REQUESTS):
        data = fuzzed_request(rng)
        reply = raw_request(target.sidecar.ports[0], data)
        status = reply.status if reply else 0
        statuses[status] = statuses.get(status, 0) + 1
        if reply is None:
            continue
        assert b"Traceback" not in reply.body, data
        code = reply.header("x-openclaw-sidecar-error")
        assert code != "internal_error", data
        if reply.status >= 500 and reply.status not in (502, 503, 504):
            assert code is not None, data
            assert json.loads(reply.body)["error"], data
    for request in target.upstream.requests:
        assert request.path.startswith(("/oa/", "/an/")) or request.path in ("/oa", "/an")
        assert ".." not in request.path.split("/")
        assert request.headers.get("authorization", f"Bearer {KEY}") == f"Bearer {KEY}"
    assert {p: tree(root / p) for p in outside} == outside
    names = {p.name for p in root.iterdir()}
    assert names <= {"state", "sibling", "usage", *(p.name for p in root.glob("sidecar-*"))}
    assert {p.name for p in (root / "usage").iterdir()} <= {
        "usage.sqlite3",
        "usage.sqlite3-wal",
        "usage.sqlite3-shm",
    }
    logged = [e for e in target.sidecar.log_events() if e.get("event") == "request_failed"]
    assert logged == []
    assert target.sidecar.proc.poll() is None
    report(
        "fuzz_raw",
        requests=RAW_REQUESTS,
        statuses=dict(sorted(statuses.items())),
        upstream_requests=len(target.upstream.requests),
        hypothesis_examples_per_property=EXAMPLES,
        properties=4,
    )
