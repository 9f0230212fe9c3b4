"""Isolation by port, and a credential only ever going to its provider's base URL.

One sidecar with a shared listener, a ``personal``-bound port and a ``work``-bound port, both
bound ports with a client token (0600 files). The work port never reaches another agent's
credentials (personal's, nor main's), whatever the path, header or profile pin says; traversal,
absolute-form targets and Host tricks never send a request anywhere but the configured upstream.

A second sidecar is attacked the ways issue #17 describes: an Anthropic OAuth login pinned on the
openai route, a bound port falling back to main's profiles and writing cooldowns into main's
state, made-up agent ids. ``inherit = true`` on a bound port opts into OpenClaw's read-through.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.conftest import (
    PREFIXES,
    Canaries,
    RawResponse,
    Running,
    SidecarFactory,
    Wire,
    anthropic_style,
    canary,
    openai_style,
    provider_tables,
    sidecar_error,
)
from tests.e2e.refresh_support import read_profiles, read_state, state_path, write_profiles
from tests.fakes.token_server import ANTHROPIC_CLIENT_ID, FakeTokenServer
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
T = TypeVar("T")

SHARED, PERSONAL, WORK = 0, 1, 2
CHAT: dict[str, Any] = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE: dict[str, Any] = {
    "model": "claude-fake",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def sidecar(sidecar_factory: SidecarFactory, fake: FakeUpstream) -> Running:
    """Shared, personal-bound and work-bound (client token) listeners in front of the fake."""
    running = sidecar_factory.start(
        [{"host": "127.0.0.1"}, {"agent": "personal"}, {"agent": "work"}],
        provider_tables(fake.url),
        client_tokens={PERSONAL: "client:personal", WORK: "client:work"},
    )
    keys = running.canaries.keys
    fake.expect(PREFIXES["openai"], [keys[f"openai:{a}"] for a in ("main", "personal", "work")])
    fake.expect(
        PREFIXES["anthropic"], [keys[f"anthropic:{a}"] for a in ("main", "personal", "work")]
    )
    return running


def token(sidecar: Running, agent: str) -> dict[str, str]:
    return {"authorization": f"Bearer {sidecar.canaries.keys[f'client:{agent}']}"}


KINDS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error"}


def openai_error(response: httpx.Response | RawResponse, status: int, code: str) -> None:
    """``response`` is the sidecar's OpenAI-style error ``code`` with ``status``."""
    kind = KINDS.get(status, "not_found_error")
    assert sidecar_error(response) == openai_style(status, code, kind)


def anthropic_error(response: httpx.Response, status: int, code: str) -> None:
    """``response`` is the sidecar's Anthropic-style error ``code`` with ``status``."""
    kind = KINDS.get(status, "not_found_error")
    assert sidecar_error(response) == anthropic_style(status, code, kind)


def authorization_seen(fake: FakeUpstream) -> list[str]:
    return [r.headers.get("authorization", "") for r in fake.requests]


# --------------------------------------------------------------------------- the work port


def test_work_port_serves_work(sidecar: Running, fake: FakeUpstream, http: httpx.Client) -> None:
    """With its client token, the work port uses work's own profile; the token stays here."""
    response = http.post(
        sidecar.url(WORK) + "/openai/v1/chat/completions", json=CHAT, headers=token(sidecar, "work")
    )
    assert response.status_code == 200
    assert authorization_seen(fake) == [f"Bearer {sidecar.canaries.keys['openai:work']}"]
    client_token = sidecar.canaries.keys["client:work"]
    assert [v for _, v in fake.requests[0].raw_headers if client_token in v] == []


def test_work_port_client_token_in_x_api_key(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """The client token may come as the Anthropic SDK's x-api-key; it is not forwarded."""
    headers = {"x-api-key": sidecar.canaries.keys["client:work"], **ANTHROPIC_HEADERS}
    response = http.post(
        sidecar.url(WORK) + "/anthropic/v1/messages", json=MESSAGE, headers=headers
    )
    assert response.status_code == 200
    got = fake.requests[0]
    assert (got.headers.get("x-api-key"), got.headers["authorization"]) == (
        None,
        f"Bearer {sidecar.canaries.keys['anthropic:work']}",
    )


@pytest.mark.parametrize(
    "path",
    [
        "/agents/personal/openai/v1/chat/completions",
        "/agents/personal/openai@openai:personal/v1/chat/completions",
        "/agents/main/openai/v1/chat/completions",
    ],
)
def test_work_port_refuses_other_agents_by_path(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client, path: str
) -> None:
    """A path naming another agent is 403 agent_mismatch, and nothing goes upstream."""
    response = http.post(sidecar.url(WORK) + path, json=CHAT, headers=token(sidecar, "work"))
    openai_error(response, 403, "agent_mismatch")
    assert fake.requests == []


def test_work_port_refuses_other_agents_by_header(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """X-OpenClaw-Agent: personal on the work port is 403 agent_mismatch."""
    headers = {**token(sidecar, "work"), "X-OpenClaw-Agent": "personal"}
    response = http.post(
        sidecar.url(WORK) + "/openai/v1/chat/completions", json=CHAT, headers=headers
    )
    openai_error(response, 403, "agent_mismatch")
    assert fake.requests == []


def test_work_port_anthropic_mismatch_is_anthropic_shaped(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """The same refusal on an anthropic path comes in Anthropic's error shape."""
    response = http.post(
        sidecar.url(WORK) + "/agents/personal/anthropic/v1/messages",
        json=MESSAGE,
        headers={**token(sidecar, "work"), **ANTHROPIC_HEADERS},
    )
    anthropic_error(response, 403, "agent_mismatch")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/openai@openai:personal/v1/chat/completions", {}),
        ("/agents/work/openai@openai:personal/v1/chat/completions", {}),
        ("/openai/v1/chat/completions", {"X-OpenClaw-Profile": "openai:personal"}),
        ("/openai@anthropic:personal/v1/chat/completions", {}),
    ],
)
def test_work_port_cannot_pin_personal_profiles(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client, path: str, headers: dict[str, str]
) -> None:
    """A pin of a profile only personal has is 404 no_profile inside work's view."""
    response = http.post(
        sidecar.url(WORK) + path, json=CHAT, headers={**token(sidecar, "work"), **headers}
    )
    openai_error(response, 404, "no_profile")
    assert fake.requests == []


def test_work_port_anthropic_pin_of_personal_is_not_found(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """The Anthropic form of the same pin: 404 no_profile, Anthropic-shaped."""
    response = http.post(
        sidecar.url(WORK) + "/anthropic@anthropic:personal/v1/messages",
        json=MESSAGE,
        headers={**token(sidecar, "work"), **ANTHROPIC_HEADERS},
    )
    anthropic_error(response, 404, "no_profile")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/openai@openai:main/v1/chat/completions", {}),
        ("/agents/work/openai@openai:main/v1/chat/completions", {}),
        ("/openai/v1/chat/completions", {"X-OpenClaw-Profile": "openai:main"}),
        ("/my-llm/v1/chat/completions", {}),  # work has none of its own: no fallback to main's
    ],
)
def test_work_port_never_uses_mains_profiles(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client, path: str, headers: dict[str, str]
) -> None:
    """The work port serves only work's own profiles: main's, pinned or as a fallback, are
    404 no_profile there, and nothing goes upstream."""
    response = http.post(
        sidecar.url(WORK) + path, json=CHAT, headers={**token(sidecar, "work"), **headers}
    )
    openai_error(response, 404, "no_profile")
    assert fake.requests == []


@pytest.mark.parametrize(
    "who",
    ["missing", "wrong", "personal", "wrong-x-api-key", "personal-x-openclaw-token", "basic"],
)
def test_work_port_requires_its_client_token(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client, who: str
) -> None:
    """No token, a wrong one or personal's token (in any header) is 401 caller_unauthorized."""
    personal = sidecar.canaries.keys["client:personal"]
    work = sidecar.canaries.keys["client:work"]
    headers = {
        "missing": {},
        "wrong": {"authorization": "Bearer not-the-token"},
        "personal": {"authorization": f"Bearer {personal}"},
        "wrong-x-api-key": {"x-api-key": work + "x"},
        "personal-x-openclaw-token": {"x-openclaw-token": personal},
        "basic": {"authorization": f"Basic {work}"},
    }[who]
    response = http.post(
        sidecar.url(WORK) + "/openai/v1/chat/completions", json=CHAT, headers=headers
    )
    openai_error(response, 401, "caller_unauthorized")
    assert fake.requests == []


def test_personal_port_refuses_work(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """The personal port is bound the same way: work by path is 403, its own agent works."""
    refused = http.post(
        sidecar.url(PERSONAL) + "/agents/work/openai/v1/chat/completions",
        json=CHAT,
        headers=token(sidecar, "personal"),
    )
    openai_error(refused, 403, "agent_mismatch")
    served = http.post(
        sidecar.url(PERSONAL) + "/openai/v1/chat/completions",
        json=CHAT,
        headers=token(sidecar, "personal"),
    )
    assert served.status_code == 200
    assert authorization_seen(fake) == [f"Bearer {sidecar.canaries.keys['openai:personal']}"]


def test_work_token_does_not_open_the_personal_port(
    sidecar: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """Each bound port checks its own token: work's is 401 on the personal port."""
    response = http.post(
        sidecar.url(PERSONAL) + "/openai/v1/chat/completions",
        json=CHAT,
        headers=token(sidecar, "work"),
    )
    openai_error(response, 401, "caller_unauthorized")
    assert fake.requests == []


# --------------------------------------------------------------------------- paths and hosts


@pytest.mark.parametrize(
    "target",
    [
        "/openai/../anthropic/v1/messages",
        "/openai/%2e%2e/anthropic/v1/messages",
        "/openai/%2E%2E/anthropic/v1/messages",
        "/openai/v1/%252e%252e/%252e%252e/anthropic/v1/messages",
        "/openai/v1/./chat/completions",
        "/openai/v1/chat%2fcompletions",
        "/openai/v1/..%2f..%2fanthropic/v1/messages",
        "/openai/v1/%5c..%5canthropic",
        "//evil.example/openai/v1/chat/completions",
        "/agents/work/../personal/openai/v1/chat/completions",
    ],
)
@pytest.mark.parametrize("port", [SHARED, WORK])
def test_traversal_is_invalid_path(
    sidecar: Running, fake: FakeUpstream, wire: Wire, target: str, port: int
) -> None:
    """Dot segments, raw or encoded (even twice), and encoded slashes are 400 invalid_path."""
    response = wire.raw(
        sidecar.url(port),
        "POST",
        target,
        headers=list(token(sidecar, "work").items()) if port == WORK else [],
        body=b"{}",
    )
    openai_error(response, 400, "invalid_path")
    assert fake.requests == []


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/v1/chat/completions",
        "http://evil.example/openai/v1/chat/completions",
        "http://127.0.0.1:1/openai/v1/chat/completions",
    ],
)
def test_absolute_form_target_is_invalid_path(
    sidecar: Running, fake: FakeUpstream, wire: Wire, target: str
) -> None:
    """A proxy-style absolute-form request target never chooses an upstream: 400."""
    response = wire.raw(sidecar.url(SHARED), "POST", target, body=b"{}")
    openai_error(response, 400, "invalid_path")
    assert fake.requests == []


def test_host_header_does_not_choose_the_upstream(
    sidecar: Running, fake: FakeUpstream, wire: Wire
) -> None:
    """Host: evil.example changes nothing: the configured upstream gets the request, with its
    own Host, under the provider's base path."""
    response = wire.raw(
        sidecar.url(SHARED),
        "POST",
        "/openai/v1/chat/completions",
        headers=[("Host", "evil.example"), ("Content-Type", "application/json")],
        body=b'{"model": "gpt-fake", "messages": []}',
    )
    assert response.status == 200
    got = fake.requests
    assert [(r.path, r.headers["host"]) for r in got] == [
        ("/oa/v1/chat/completions", httpx.URL(fake.url).netloc.decode())
    ]
    assert [v for _, v in got[0].raw_headers if "evil" in v] == []


def test_forwarded_headers_do_not_choose_the_upstream(
    sidecar: Running, fake: FakeUpstream, wire: Wire
) -> None:
    """X-Forwarded-Host and friends are the client's business; the URL stays the configured one."""
    response = wire.raw(
        sidecar.url(SHARED),
        "GET",
        "/openai/v1/models",
        headers=[("X-Forwarded-Host", "evil.example"), ("Forwarded", "host=evil.example")],
    )
    assert response.status == 200
    assert [(r.path, r.headers["host"]) for r in fake.requests] == [
        ("/oa/v1/models", httpx.URL(fake.url).netloc.decode())
    ]


# --------------------------------------------------------------------------- issue #17, attacked

ATTACK = "/attack"  # the attacked sidecar's upstreams: a prefix of the fake with no key checks
A_SHARED, A_WORK, A_INHERIT, A_GHOST = 0, 1, 2, 3
HOUR_MS = 3_600_000
DEADLINE_S = 10.0  # a safety net for what the sidecar writes or logs after answering


def anthropic_login(state_dir: Path, canaries: Canaries) -> None:
    """work's ``anthropic:work`` becomes an Anthropic OAuth login, as OpenClaw stores one."""
    profiles = read_profiles(state_dir, "work")
    profiles["anthropic:work"] = {
        "type": "oauth",
        "provider": "anthropic",
        "access": canaries.add("anthropic:work", f"sk-ant-oat01-{canary('access')}"),
        "refresh": canaries.add("anthropic:work:refresh", f"sk-ant-ort01-{canary('refresh')}"),
        "expires": int(time.time() * 1000) + HOUR_MS,
    }
    write_profiles(state_dir, profiles, "work")


@pytest.fixture(scope="module")
def attacked(
    sidecar_factory: SidecarFactory, fake: FakeUpstream, e2e_token_server: FakeTokenServer
) -> Running:
    """Shared, work-bound, work-bound with ``inherit = true`` and ghost-bound (an agent the
    state dir does not know) listeners; Anthropic refreshes at the fake token server."""
    anthropic = {
        "token_url": e2e_token_server.anthropic_token_url,
        "client_id": ANTHROPIC_CLIENT_ID,
    }
    return sidecar_factory.start(
        [{}, {"agent": "work"}, {"agent": "work", "inherit": True}, {"agent": "ghost"}],
        provider_tables(fake.url + ATTACK, anthropic=anthropic),
        client_tokens={A_WORK: "client:work", A_INHERIT: "client:work-inherit"},
        prepare=anthropic_login,
    )


def until(observe: Callable[[], T], done: Callable[[T], bool]) -> T:
    deadline = time.monotonic() + DEADLINE_S
    value = observe()
    while not done(value) and time.monotonic() < deadline:
        value = observe()
    return value


def credentials_seen(fake: FakeUpstream) -> list[tuple[str, str]]:
    """(path, credential) of every request the fake received."""
    return [
        (r.path, r.headers.get("authorization") or r.headers.get("x-custom-key", ""))
        for r in fake.requests
    ]


@pytest.mark.parametrize(
    ("port", "path", "headers"),
    [
        (A_WORK, "/openai@anthropic:work/v1/chat/completions", {}),
        (A_SHARED, "/agents/work/openai@anthropic:work/v1/chat/completions", {}),
        (
            A_SHARED,
            "/openai/v1/chat/completions",
            {"X-OpenClaw-Agent": "work", "X-OpenClaw-Profile": "anthropic:work"},
        ),
        (A_WORK, "/openrouter@anthropic:work/v1/chat/completions", {}),
        (A_WORK, "/openai-codex@anthropic:work/responses", {}),
    ],
)
def test_an_anthropic_login_is_never_sent_to_another_provider(
    attacked: Running,
    fake: FakeUpstream,
    e2e_token_server: FakeTokenServer,
    http: httpx.Client,
    port: int,
    path: str,
    headers: dict[str, str],
) -> None:
    """Issue #17: ``/openai@anthropic:work`` sent the Anthropic OAuth token to the openai base
    URL (and refreshed it on every 401 from there). Now 404 no_profile: no upstream request,
    no token call."""
    calls = e2e_token_server.calls
    if port == A_WORK:
        headers = {"authorization": f"Bearer {attacked.canaries.keys['client:work']}", **headers}
    response = http.post(attacked.url(port) + path, json=CHAT, headers=headers)
    openai_error(response, 404, "no_profile")
    assert (fake.requests, e2e_token_server.calls) == ([], calls)


def test_the_anthropic_login_still_reaches_anthropic(
    attacked: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """Its own route is unchanged: Anthropic's base URL, the login's access token."""
    response = http.post(
        attacked.url(A_WORK) + "/anthropic/v1/messages",
        json=MESSAGE,
        headers={
            "authorization": f"Bearer {attacked.canaries.keys['client:work']}",
            **ANTHROPIC_HEADERS,
        },
    )
    assert response.status_code == 200
    access = attacked.canaries.keys["anthropic:work"]
    assert credentials_seen(fake) == [(ATTACK + "/an/v1/messages", f"Bearer {access}")]


def test_a_bound_port_writes_no_cooldown_into_mains_state(
    attacked: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """Rate limited on the work port: the cooldown goes into work's own auth-state.json, and
    main's (which every agent reads) is never written; my-llm, which only main has, is refused
    instead of being tried with main's key."""
    fake.set_mode("429", times=2)
    auth = {"authorization": f"Bearer {attacked.canaries.keys['client:work']}"}
    borrowed = http.post(
        attacked.url(A_WORK) + "/my-llm/v1/chat/completions", json=CHAT, headers=auth
    )
    own = http.post(attacked.url(A_WORK) + "/openai/v1/chat/completions", json=CHAT, headers=auth)
    assert (borrowed.status_code, own.status_code) == (404, 429)
    work_state = state_path(attacked.state_dir, "work")

    def cooling() -> set[str]:
        if not work_state.exists():
            return set()
        usage = read_state(attacked.state_dir, "work").get("usageStats", {})
        return {pid for pid, stats in usage.items() if stats.get("cooldownUntil")}

    assert until(cooling, bool) == {"openai:work"}
    main_state = state_path(attacked.state_dir, "main")
    assert not main_state.exists(), main_state.read_text()


def test_inherit_true_opts_a_bound_port_into_read_through(
    attacked: Running, fake: FakeUpstream, http: httpx.Client
) -> None:
    """``inherit = true``: main's profiles too, as OpenClaw's read-through gives them; the log
    line and the metrics name main as the owner of the profile used."""
    auth = {"authorization": f"Bearer {attacked.canaries.keys['client:work-inherit']}"}
    lent = http.post(attacked.url(A_INHERIT) + "/my-llm/chat/completions", json=CHAT, headers=auth)
    pinned = http.post(
        attacked.url(A_INHERIT) + "/openai@openai:main/v1/chat/completions", json=CHAT, headers=auth
    )
    own = http.post(
        attacked.url(A_INHERIT) + "/anthropic/v1/messages",
        json=MESSAGE,
        headers={**auth, **ANTHROPIC_HEADERS},
    )
    assert (lent.status_code, pinned.status_code, own.status_code) == (200, 200, 200)
    keys = attacked.canaries.keys
    assert credentials_seen(fake) == [
        (ATTACK + "/my/v1/chat/completions", keys["my-llm:main"]),
        (ATTACK + "/oa/v1/chat/completions", f"Bearer {keys['openai:main']}"),
        (ATTACK + "/an/v1/messages", f"Bearer {keys['anthropic:work']}"),  # its own comes first
    ]

    def lines() -> list[tuple[str, str, str]]:
        return [
            (e["profile"], e["owner"], e["agent"])
            for e in attacked.sidecar.log_events()
            if e.get("event") == "request_completed"
            and e.get("profile") in ("my-llm:main", "openai:main")
        ]

    assert until(lines, lambda found: len(found) >= 2) == [
        ("my-llm:main", "main", "work"),
        ("openai:main", "main", "work"),
    ]
    metrics = http.get(attacked.url(A_INHERIT) + "/metrics").text
    assert 'agent="work",owner="main",provider="my-llm",status="200"' in metrics


@pytest.mark.parametrize(
    ("port", "path", "headers"),
    [
        (A_SHARED, "/agents/ghost/openai/v1/chat/completions", {}),
        (A_SHARED, "/openai/v1/chat/completions", {"X-OpenClaw-Agent": "ghost"}),
        (A_SHARED, "/agents/ghost/openai@openai:main/v1/chat/completions", {}),
        (A_GHOST, "/openai/v1/chat/completions", {}),
    ],
)
def test_an_unknown_agent_is_404_not_mains_credentials(
    attacked: Running,
    fake: FakeUpstream,
    http: httpx.Client,
    port: int,
    path: str,
    headers: dict[str, str],
) -> None:
    """No folder, not in openclaw.json: 404 unknown_agent, and nothing goes upstream."""
    response = http.post(attacked.url(port) + path, json=CHAT, headers=headers)
    openai_error(response, 404, "unknown_agent")
    assert fake.requests == []


def test_readyz_on_a_bound_port_reports_its_own_agent(
    attacked: Running, http: httpx.Client
) -> None:
    """/readyz speaks for the port's agent, counting the profiles that port may use; a port
    bound to an agent that does not exist is not ready."""
    pages = [
        http.get(attacked.url(port) + "/readyz") for port in (A_SHARED, A_WORK, A_INHERIT, A_GHOST)
    ]
    bodies = [
        {k: v for k, v in page.json().items() if k not in ("store", "reason")} for page in pages
    ]
    assert [(p.status_code, b) for p, b in zip(pages, bodies, strict=True)] == [
        (200, {"status": "ready", "agent": "main", "profiles": 3}),
        (200, {"status": "ready", "agent": "work", "profiles": 2}),
        (200, {"status": "ready", "agent": "work", "profiles": 5}),
        (503, {"status": "unready", "code": "unknown_agent"}),
    ]


def test_made_up_agent_ids_do_not_grow_the_metrics(attacked: Running, http: httpx.Client) -> None:
    """Hundreds of random agent ids (5,000 grew /metrics to 19 MB before): each is 404
    unknown_agent, and /metrics has not one series more, nor any of the ids."""

    def made_up(count: int) -> list[str]:
        ids = [f"x{uuid.uuid4().hex}" for _ in range(count)]
        for agent in ids:
            response = http.post(attacked.url(A_SHARED) + f"/agents/{agent}/openai/v1/x", json=CHAT)
            assert response.headers.get("x-openclaw-sidecar-error") == "unknown_agent"
        return ids

    made_up(3)

    def series() -> list[str]:
        # The usage recorder sets the token counters and window gauges a second after earlier
        # tests' answers (it writes in batches): they are left out of the count.
        late = ("openclaw_sidecar_window_", "openclaw_sidecar_tokens")
        return [
            line
            for line in http.get(attacked.url() + "/metrics").text.splitlines()
            if not line.startswith("#") and not line.startswith(late)
        ]

    before = until(series, lambda lines: any("unknown_agent" in line for line in lines))
    ids = made_up(300)
    after = series()
    assert len(after) == len(before)
    assert [agent for agent in ids if agent in "\n".join(after)] == []
