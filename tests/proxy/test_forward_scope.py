"""The proxy in-process, attacked: a credential reaches only its own provider's base URL (the
Codex backend taking renamed ``openai`` Codex logins is the one exception), a port bound to an
agent uses only that agent's own profiles unless it opts into read-through (and the log line and
metrics say whose profile was used), and an agent that does not exist is 404 unknown_agent and
leaves nothing behind. Every secret is a canary, and every request that reaches a fake upstream
is checked for whose canaries it carries."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from sidecar.config import Listener
from sidecar.proxy.forward import Proxy
from tests.proxy.app_support import CONFIGURED, PROVIDERS, World

pytestmark = pytest.mark.anyio

# main has everything; work only some providers (so read-through has something to lend) plus
# an id main also holds; personal everything again.
AGENTS = {
    "main": PROVIDERS,
    "work": ("openai", "openai-codex", "anthropic"),
    "personal": PROVIDERS,
}
SHARED_ID = "anthropic:shared"
LISTENERS = {
    "shared": Listener(port=1),
    "shared-own": Listener(port=2, inherit=False),
    "work": Listener(port=3, agent="work"),
    "work-inherit": Listener(port=4, agent="work", inherit=True),
    "personal": Listener(port=5, agent="personal"),
    "main": Listener(port=6, agent="main"),
    "ghost": Listener(port=7, agent="ghost"),  # bound to an agent the state dir does not know
}


def build(root: Path) -> World:
    world = World(root, AGENTS, LISTENERS)
    for agent in ("main", "work"):
        world.add_profile(agent, SHARED_ID, "anthropic", "token")
    return world


@pytest.fixture
async def world(tmp_path: Path) -> World:
    built = build(tmp_path)
    await built.start()
    return built


def owners(world: World) -> list[tuple[str, str, str]]:
    """(called provider, owner, profile id) of every credential that reached an upstream."""
    return [(c.provider, s.owner, s.profile_id) for c in world.calls for s in c.carried]


def requests_total(world: World) -> dict[tuple[str, ...], float]:
    """openclaw_sidecar_requests_total by (agent, provider, status, owner)."""
    found: dict[tuple[str, ...], float] = {}
    for line in world.metrics.render().decode().splitlines():
        if line.startswith("openclaw_sidecar_requests_total{"):
            labels, _, value = line.partition("{")[2].rpartition("} ")
            fields = dict(item.split("=", 1) for item in labels.split(","))
            key = tuple(fields[n].strip('"') for n in ("agent", "provider", "status", "owner"))
            found[key] = float(value)
    return found


def error_code(response: Any) -> tuple[int, str | None]:
    return response.status_code, response.headers.get("x-openclaw-sidecar-error")


# --------------------------------------------------------------------------- 1. own provider


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        # the case: an Anthropic OAuth token on the openai route
        ("/openai@anthropic:main-oauth/v1/chat/completions", {}),
        ("/openai/v1/chat/completions", {"x-openclaw-profile": "anthropic:main-oauth"}),
        ("/agents/work/openai@anthropic:work-oauth/v1/chat/completions", {}),
        ("/openai@openai-codex:main-oauth/v1/chat/completions", {}),
        ("/openai@ghost:main-oauth/v1/chat/completions", {}),
        ("/openai@anthropic:main-token/v1/chat/completions", {}),
        ("/anthropic@openai:main-oauth/v1/messages", {}),  # a Codex login on the anthropic route
        ("/anthropic@openai:main-api_key/v1/messages", {}),
        ("/openai-codex@openai:main-api_key/responses", {}),
        ("/openai-codex@anthropic:main-oauth/responses", {}),
        ("/openrouter@openai:main-api_key/v1/chat/completions", {}),
        ("/my-llm@openrouter:main-api_key/v1/chat/completions", {}),
        ("/my-llm/v1/chat/completions", {"x-openclaw-profile": "ghost:main-api_key"}),
    ],
)
async def test_a_pin_of_another_providers_profile_is_no_profile(
    world: World, path: str, headers: dict[str, str]
) -> None:
    """404 no_profile, and nothing is sent anywhere: no upstream request, no refresh."""
    response = await world.request("shared", path, headers)
    assert (error_code(response), world.calls, world.token_calls) == ((404, "no_profile"), [], [])


async def test_a_401_for_a_foreign_credential_cannot_happen_so_nothing_refreshes(
    world: World,
) -> None:
    """The issue's replay: the upstream would answer 401 and the foreign token be refreshed
    and sent again. Nothing is sent, so there is no 401, no refresh and no replay."""
    world.answers = [401, 401]
    response = await world.request("shared", "/openai@anthropic:main-oauth/v1/chat/completions")
    assert (error_code(response), world.calls, world.token_calls) == ((404, "no_profile"), [], [])


async def test_a_renamed_codex_login_goes_to_the_codex_backend(world: World) -> None:
    """The documented exception: ``openai:*`` OAuth (2026.6.1's name for a Codex login) pinned
    on the openai route, or picked on the Codex route, goes to the Codex backend, its own."""
    pinned = await world.request("shared", "/openai@openai:main-oauth/v1/responses")
    header = await world.request(
        "shared", "/openai-codex/responses", {"x-openclaw-profile": "openai:main-oauth"}
    )
    assert (pinned.status_code, header.status_code) == (200, 200)
    assert owners(world) == [("openai-codex", "main", "openai:main-oauth")] * 2


async def test_the_guard_where_requests_are_built_holds_when_selection_is_wrong(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the profile choice broken on purpose (every profile said to serve every route),
    the check where the upstream request is built still sends no foreign credential."""
    monkeypatch.setattr(Proxy, "_serves", lambda *_args, **_kw: True)
    for pid in ("anthropic:main-oauth", "ghost:main-oauth", "openai:main-api_key"):
        response = await world.request("shared", f"/openai-codex@{pid}/responses")
        assert error_code(response) == (404, "no_profile"), pid
    response = await world.request("shared", "/anthropic@openai:main-oauth/v1/messages")
    assert error_code(response) == (404, "no_profile")
    assert (world.calls, world.token_calls) == ([], [])


async def test_a_replay_after_a_refresh_carries_the_same_providers_new_token(
    world: World,
) -> None:
    """401, refresh at the provider's own token endpoint, replay: both sends go to anthropic,
    with anthropic's old and new tokens."""
    world.answers = [401]
    response = await world.request("shared", "/anthropic@anthropic:main-oauth/v1/messages")
    assert response.status_code == 200
    assert (owners(world), world.token_calls) == (
        [("anthropic", "main", "anthropic:main-oauth")] * 2,
        ["anthropic.tokens.test"],
    )


# --------------------------------------------------------------------------- 3. isolation by port


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/openrouter/v1/chat/completions", {}),  # work has none of its own
        ("/my-llm/v1/chat/completions", {}),
        ("/openrouter/v1/chat/completions", {"x-openclaw-agent": "work"}),
        ("/agents/work/my-llm/v1/chat/completions", {}),
        ("/openai@openai:main-api_key/v1/chat/completions", {}),  # main's, pinned
        ("/openai/v1/chat/completions", {"x-openclaw-profile": "openai:main-token"}),
        ("/anthropic@anthropic:main-oauth/v1/messages", {}),
    ],
)
async def test_a_bound_port_never_uses_mains_profiles(
    world: World, path: str, headers: dict[str, str]
) -> None:
    """Unpinned or pinned, a port bound to work uses none of main's profiles: 404 no_profile,
    saying why, and nothing sent."""
    response = await world.request("work", path, headers)
    assert (error_code(response), world.calls) == ((404, "no_profile"), [])
    assert "inherit = true" in response.json()["error"]["message"]


async def test_a_bound_port_uses_its_own_copy_of_an_id_main_also_has(world: World) -> None:
    """work's own ``anthropic:shared``, never main's copy of the same id."""
    response = await world.request("work", f"/anthropic@{SHARED_ID}/v1/messages")
    assert response.status_code == 200
    assert owners(world) == [("anthropic", "work", SHARED_ID)]


async def test_inherit_true_opts_a_bound_port_into_read_through(world: World) -> None:
    """``inherit = true``: OpenClaw's read-through from main, as on a shared port."""
    bound = await world.request("work-inherit", "/openrouter/v1/chat/completions")
    shared = await world.request("shared", "/agents/work/openrouter/v1/chat/completions")
    assert (bound.status_code, shared.status_code) == (200, 200)
    assert [o[:2] for o in owners(world)] == [("openrouter", "main")] * 2


async def test_inherit_false_on_a_shared_port_isolates_every_agent(world: World) -> None:
    """A shared port with ``inherit = false`` serves each agent its own profiles only."""
    refused = await world.request("shared-own", "/agents/work/openrouter/v1/chat/completions")
    mains = await world.request("shared-own", "/openrouter/v1/chat/completions")
    assert (error_code(refused), mains.status_code) == ((404, "no_profile"), 200)
    assert [o[:2] for o in owners(world)] == [("openrouter", "main")]


async def test_a_failure_on_a_bound_port_writes_no_cooldown_into_mains_state(
    world: World,
) -> None:
    """Rate limits on every provider through the work port: cooldowns go to work's own
    ``auth-state.json`` only; main's state, which every agent reads, is never written."""
    for provider in CONFIGURED:
        world.answers = [429]
        await world.request("work", f"/{provider}/v1/x")
    await world.outcomes.flush()
    main_state = world.profiles_path("main").with_name("auth-state.json")
    work_state = json.loads(world.profiles_path("work").with_name("auth-state.json").read_text())
    assert not main_state.exists()
    assert {owner for _, owner, _ in owners(world)} == {"work"}
    assert set(work_state["usageStats"]) == {pid for _, _, pid in owners(world)}


async def test_the_log_line_and_metrics_name_the_profiles_owner(world: World) -> None:
    """``owner`` in request_completed and in openclaw_sidecar_requests_total: work's own
    profile, main's lent one (inherit), and none for a refused request."""
    with capture_logs() as logs:
        await world.request("work", "/openai/v1/chat/completions")
        await world.request("work-inherit", "/openrouter/v1/chat/completions")
        await world.request("work", "/openrouter/v1/chat/completions")
    lines = [(e["agent"], e["provider"], e["status"], e["owner"]) for e in logs]
    assert lines == [
        ("work", "openai", 200, "work"),
        ("work", "openrouter", 200, "main"),
        ("work", "openrouter", 404, "-"),
    ]
    assert requests_total(world) == {(a, p, str(s), o): 1.0 for a, p, s, o in lines}


async def test_readyz_on_a_bound_port_reports_its_own_agent(world: World) -> None:
    """/readyz speaks for the port's agent and counts the profiles that port may use."""
    bound = await world.request("work", "/readyz", method="GET")
    inherit = await world.request("work-inherit", "/readyz", method="GET")
    shared = await world.request("shared", "/readyz", method="GET")
    own, mains = 3 * len(AGENTS["work"]) + 1, 3 * len(PROVIDERS) + 1  # + the shared id
    assert [r.json() for r in (bound, inherit, shared)] == [
        {"status": "ready", "agent": "work", "store": "json", "profiles": own},
        {"status": "ready", "agent": "work", "store": "json", "profiles": own + mains - 1},
        {"status": "ready", "agent": "main", "store": "json", "profiles": mains},
    ]


async def test_readyz_on_a_port_bound_to_an_unknown_agent_is_unready(world: World) -> None:
    """503 naming unknown_agent: every request on that port would be refused."""
    response = await world.request("ghost", "/readyz", method="GET")
    body = response.json()
    assert (response.status_code, body["status"], body["code"]) == (503, "unready", "unknown_agent")


# --------------------------------------------------------------------------- unknown agents


@pytest.mark.parametrize(
    ("listener", "path", "headers"),
    [
        ("shared", "/agents/ghost/openai/v1/chat/completions", {}),
        ("shared", "/openai/v1/chat/completions", {"x-openclaw-agent": "ghost"}),
        ("shared", "/agents/ghost/openai@openai:main-api_key/v1/chat/completions", {}),
        ("shared-own", "/agents/nobody/anthropic/v1/messages", {}),
        ("ghost", "/openai/v1/chat/completions", {}),
    ],
)
async def test_an_unknown_agent_is_404_and_never_gets_mains_credentials(
    world: World, monkeypatch: pytest.MonkeyPatch, listener: str, path: str, headers: dict[str, str]
) -> None:
    """No folder, not in openclaw.json: 404 unknown_agent; the store is not even asked."""
    asked: list[str] = []
    view = world.store.view

    async def spy(agent: str) -> Any:
        asked.append(agent)
        return await view(agent)

    monkeypatch.setattr(world.store, "view", spy)
    response = await world.request(listener, path, headers)
    assert (error_code(response), world.calls, asked) == ((404, "unknown_agent"), [], [])


async def test_made_up_agent_ids_leave_no_per_agent_state(world: World) -> None:
    """Hundreds of random agent ids: /metrics does not grow, and no view or rank is cached
    for any of them."""

    async def made_up(count: int) -> None:
        for _ in range(count):
            agent = f"a{uuid.uuid4().hex}"
            await world.request("shared", f"/agents/{agent}/openai/v1/chat/completions")

    await made_up(5)
    before = world.metrics.render().splitlines()
    await made_up(300)
    proxy = world.proxies["shared"]
    assert len(world.metrics.render().splitlines()) == len(before)
    assert b"404" in b"".join(before)
    assert {agent for agent, _ in proxy._rank_cache} <= set(AGENTS)
    assert set(world.store._views._entries) <= set(AGENTS)


async def test_main_is_known_without_a_folder(tmp_path: Path) -> None:
    """A fresh state dir: main (the default agent) exists all the same, and a request is
    404 no_profile with the command that adds one, not unknown_agent."""
    empty = World(
        tmp_path, {}, {"shared": Listener(port=1), "main": Listener(port=2, agent="main")}
    )
    await empty.start()
    for listener in ("shared", "main"):
        response = await empty.request(listener, "/openai/v1/chat/completions")
        assert error_code(response) == (404, "no_profile")
        assert "paste-api-key --provider openai" in response.json()["error"]["message"]


async def test_an_agent_known_only_to_openclaw_json_is_known(tmp_path: Path) -> None:
    """An agent listed in openclaw.json (its folder elsewhere or not made yet) exists."""
    world = World(tmp_path, {"main": ("openai",)}, {"shared": Listener(port=1)})
    config = {"agents": {"list": [{"id": "listed"}]}}
    (world.state / "openclaw.json").write_text(json.dumps(config))
    await world.start()
    response = await world.request("shared", "/agents/listed/openai/v1/chat/completions")
    assert response.status_code == 200
    assert owners(world) == [("openai", "main", "openai:main-token")]  # a Codex login is not
