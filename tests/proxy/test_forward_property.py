"""The property behind issue #17 §1 and §3, over the whole in-process app: whatever the route,
the pins (path and ``X-OpenClaw-Profile``), the agent (path and ``X-OpenClaw-Agent``), the
listener (shared or bound, with or without read-through) and the upstream's first answer (a 401
makes the proxy refresh and replay; a 429 or a 529 makes it fail over to the next profile, issue
#19), every credential that reaches an upstream is of the provider whose base URL was called,
and belongs to an agent the listener may use; a pinned request only ever carries its pin."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.sources.openclaw.layout import DEFAULT_AGENT
from tests.proxy.app_support import CONFIGURED, TYPES, Canary, World, profile_id
from tests.proxy.test_forward_scope import AGENTS, LISTENERS, SHARED_ID, build

NAMED_AGENTS = (*AGENTS, "ghost")  # ghost: no folder, not in openclaw.json
SUFFIXES = ("/v1/chat/completions", "/v1/messages", "/responses", "/codex/responses", "")


def _ids() -> Iterator[str]:
    for agent, providers in AGENTS.items():
        for provider in providers:
            for kind in TYPES:
                yield profile_id(agent, provider, kind)


PINS = sorted({*_ids(), SHARED_ID, "openai:nobody"})


@dataclass(frozen=True)
class Ask:
    listener: str
    provider: str
    path_agent: str | None
    header_agent: str | None
    path_pin: str | None
    header_pin: str | None
    first_answer: int  # the upstream's answer to the first request (then 200s)
    suffix: str

    def path(self) -> str:
        agent = f"/agents/{self.path_agent}" if self.path_agent else ""
        pin = f"@{self.path_pin}" if self.path_pin else ""
        return f"{agent}/{self.provider}{pin}{self.suffix}"

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.header_agent:
            headers["x-openclaw-agent"] = self.header_agent
        if self.header_pin:
            headers["x-openclaw-profile"] = self.header_pin
        return headers

    def agent(self) -> str | None:
        """The agent served, or None when the listener must refuse the one named."""
        bound = LISTENERS[self.listener].agent
        named = [a for a in (self.path_agent, self.header_agent) if a is not None]
        if bound is not None:
            return bound if all(a == bound for a in named) else None
        return named[0] if named else DEFAULT_AGENT


asks = st.builds(
    Ask,
    listener=st.sampled_from(sorted(LISTENERS)),
    provider=st.sampled_from(CONFIGURED),
    path_agent=st.none() | st.sampled_from(NAMED_AGENTS),
    header_agent=st.none() | st.sampled_from(NAMED_AGENTS),
    path_pin=st.none() | st.sampled_from(PINS),
    header_pin=st.none() | st.sampled_from(PINS),
    first_answer=st.sampled_from([200, 401, 429, 529]),
    suffix=st.sampled_from(SUFFIXES),
)


def goes_to_its_own_provider(called: str, secret: Canary) -> bool:
    """Written out here, not imported: the rule the issue states."""
    if secret.provider == called:
        return True
    return called == "openai-codex" and secret.provider == "openai" and secret.type == "oauth"


def check(world: World, ask: Ask, status: int, code: str | None, first_call: int) -> None:
    calls = world.calls[first_call:]
    agent = ask.agent()
    if agent is None:
        assert (status, code, calls) == (403, "agent_mismatch", [])
        return
    if agent not in AGENTS:
        assert (status, code, calls) == (404, "unknown_agent", [])
        return
    allowed = {agent, DEFAULT_AGENT} if LISTENERS[ask.listener].reads_through else {agent}
    assert len(calls) <= (1 if ask.first_answer == 200 else 2)
    for call in calls:
        assert len(call.carried) == 1, call  # exactly the injected credential
        (secret,) = call.carried
        assert goes_to_its_own_provider(call.provider, secret), (call, secret)
        assert secret.owner in allowed, (call, secret)
        route_upstreams = {ask.provider}
        if ask.provider == "openai":
            route_upstreams.add("openai-codex")  # a pinned Codex login
        assert call.provider in route_upstreams, call
    pin = ask.path_pin or ask.header_pin
    if pin is not None and calls:  # a pinned request never fails over
        assert {s.profile_id for c in calls for s in c.carried} == {pin}
    if ask.first_answer in (429, 529) and len(calls) == 2:  # failed over: another profile
        assert calls[0].carried[0].profile_id != calls[1].carried[0].profile_id


def test_every_credential_reaches_only_its_own_provider_and_allowed_agents(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Hundreds of generated requests through every listener kind; each upstream request is
    checked for the provider and the owner of the canary it carried."""
    world = build(tmp_path_factory.mktemp("property"))
    with start_blocking_portal(backend="asyncio") as portal:
        portal.call(world.start)

        @settings(
            max_examples=400,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        )
        @given(ask=asks)
        def one(ask: Ask) -> None:
            first_call = len(world.calls)
            world.answers = [] if ask.first_answer == 200 else [ask.first_answer]
            response = portal.call(world.request, ask.listener, ask.path(), ask.headers())
            code = response.headers.get("x-openclaw-sidecar-error")
            check(world, ask, response.status_code, code, first_call)

        one()
    served = [c for c in world.calls if c.carried]
    assert len(served) > 50  # the property saw real traffic, not only refusals
    metrics = world.metrics.render().decode().splitlines()
    moved = [m for m in metrics if m.startswith("openclaw_sidecar_failovers_total{")]
    assert sum(float(m.rsplit(" ", 1)[1]) for m in moved) >= 3  # and failovers among it
