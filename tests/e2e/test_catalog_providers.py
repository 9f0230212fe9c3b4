"""Every catalog entry through the real ``openclaw-sidecar serve`` with zero provider config
(issue #18, first proof): a profile of that provider in an OpenClaw store, a request through the
sidecar, and the credential arriving at that provider's host, under its base path, in that
provider's header and nowhere else.

How the providers are reached, and why that keeps the proof honest: the sidecar process is
started with ``HTTPS_PROXY`` (a loopback proxy) and ``SSL_CERT_FILE`` (a test CA), the two
environment variables any deployment behind a TLS-inspecting proxy sets. The proxy answers
``CONNECT api.deepseek.com:443``, ends TLS with a certificate for that name and hands the request
to a recorder (``tests/e2e/interception.py``). So the sidecar runs with no test-only code path and
its config names no provider (only a listener port): it resolves the catalog's own URL, and the
recorder sees the Host, path and headers the provider would. Re-pointing the catalog's entries at
a fake (a ``[providers.X] base_url``, an environment variable, a Settings fixture) would have
tested the override instead of the catalog.

A provider with a per-user endpoint has no URL to go to with zero config: those that keep it in
the profile (Cloudflare, Foundry, a Copilot tenant) are tested with the profile OpenClaw writes;
the others (a vLLM or Ollama server, a Bedrock region...) must answer ``no_endpoint`` naming the
key to set, and are then tested with exactly that key set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from sidecar.providers.catalog import ALIASES, CATALOG
from sidecar.providers.spec import CatalogEntry, ProviderSpec
from tests.e2e.conftest import Canaries, Leaks, canary
from tests.e2e.interception import Interception, Seen, intercepting
from tests.e2e.sidecar import Sidecar, free_port, render_config, start_sidecar

pytestmark = pytest.mark.e2e

PLACEHOLDER = "placeholder-from-the-client"
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})
AGENT_FOR = {"api_key": "keys", "token": "tokens", "oauth": "logins"}
FAR_FUTURE_MS = 4_102_444_800_000  # 2100: never due for a refresh during the test
ACCOUNT = "acct-e2e"
# Where OpenClaw keeps a per-user endpoint in the profile, as it writes it.
PROFILE_ENDPOINTS: Mapping[str, tuple[dict[str, Any], str]] = {
    "cloudflare-ai-gateway": (
        {"metadata": {"accountId": "e2e-account", "gatewayId": "e2e-gateway"}},
        "https://gateway.ai.cloudflare.com/v1/e2e-account/e2e-gateway/anthropic",
    ),
    "microsoft-foundry": (
        {"metadata": {"endpoint": "https://e2e-res.services.ai.azure.com/"}},
        "https://e2e-res.services.ai.azure.com/openai/v1",
    ),
}
GHE = ({"enterpriseUrl": "e2e.ghe.com"}, "https://copilot-api.e2e.ghe.com")
ENTRIES = sorted(CATALOG.values(), key=lambda e: e.spec.name)
# Per-user endpoints that no profile holds: reached only once the config names them.
CONFIG_ONLY = [
    e.spec.name for e in ENTRIES if not e.spec.base_url and e.spec.name not in PROFILE_ENDPOINTS
]


def tried_with(entry: CatalogEntry) -> tuple[str, ...]:
    """The profile types to try: those OpenClaw stores, or for a provider it stores none for
    (apple-fm) an API key a user wrote by hand, which must then go nowhere."""
    return entry.credentials or ("api_key",)


CASES = [(entry, cred) for entry in ENTRIES for cred in tried_with(entry)]


def owner(spec: ProviderSpec) -> str:
    """The provider whose profiles serve this entry (a variant's provider, an alias's target)."""
    name = spec.profiles_from or spec.name
    return ALIASES.get(name, name)


def configured_url(name: str) -> str:
    return f"https://{name}.e2e.test/v1"


def expected_base(spec: ProviderSpec, cred: str) -> str:
    if spec.name in PROFILE_ENDPOINTS:
        return PROFILE_ENDPOINTS[spec.name][1]
    if cred == "oauth" and spec.oauth_base_url:  # xAI's logins: the Grok CLI proxy
        return spec.oauth_base_url
    return spec.base_url or configured_url(spec.name)


def expected_header(spec: ProviderSpec, cred: str, secret: str) -> tuple[str, str] | None:
    """The header the catalog says carries this credential type (docs/providers.md's columns:
    an API key as ``auth``, a token or OAuth access token as ``token_auth``, else as ``auth``;
    the three built-in kinds send tokens as Bearer); None for ``none``."""
    auth = spec.auth
    if cred != "api_key":
        auth = spec.token_auth or (auth if spec.kind == "generic" else "bearer")
    if auth == "none":
        return None
    if auth == "bearer":
        return "authorization", f"Bearer {secret}"
    if auth.startswith("authorization:"):
        return "authorization", f"{auth.partition(':')[2]} {secret}"
    if auth.startswith("header:"):
        return auth.partition(":")[2].lower(), secret
    return auth, secret


def client_path(spec: ProviderSpec) -> str:
    return "/v1/chat/completions" if spec.name in ("openai", "openrouter") else "/chat/completions"


@dataclass
class Store:
    """The profiles written for the module: one per (credential type, serving provider)."""

    state_dir: Path
    canaries: Canaries
    secrets: dict[tuple[str, str], str]  # (credential type, serving provider) -> secret

    def secret(self, cred: str, spec: ProviderSpec) -> str:
        return self.secrets[(cred, owner(spec))]


def profile_fields(cred: str, provider: str, secret: str) -> dict[str, Any]:
    if cred == "api_key":
        fields: dict[str, Any] = {"type": "api_key", "provider": provider, "key": secret}
    elif cred == "token":
        fields = {"type": "token", "provider": provider, "token": secret}
    else:
        fields = {
            "type": "oauth",
            "provider": provider,
            "access": secret,
            "refresh": f"refresh-{secret}",
            "expires": FAR_FUTURE_MS,
            "accountId": ACCOUNT,
        }
    return {**fields, **PROFILE_ENDPOINTS.get(provider, ({}, ""))[0]}


def write_store(state_dir: Path, agent: str, profiles: Mapping[str, dict[str, Any]]) -> None:
    """An OpenClaw (JSON layout, 2026.6.1) auth-profiles.json for one agent."""
    path = state_dir / "agents" / agent / "agent" / "auth-profiles.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "profiles": profiles}, indent=2) + "\n")
    path.chmod(0o600)


def build_store(root: Path, leaks: Leaks) -> Store:
    state_dir = root / "state"
    canaries = Canaries()
    leaks.canaries.append(canaries)
    secrets: dict[tuple[str, str], str] = {}
    by_agent: dict[str, dict[str, dict[str, Any]]] = {agent: {} for agent in AGENT_FOR.values()}
    for entry, cred in CASES:
        provider = owner(entry.spec)
        if (cred, provider) in secrets:
            continue
        secret = canary(f"{cred}-{provider}")
        canaries.add(f"{provider} {cred}", secret)
        secrets[(cred, provider)] = secret
        by_agent[AGENT_FOR[cred]][f"{provider}:e2e"] = profile_fields(cred, provider, secret)
    extras = {
        # A Copilot tenant (*.ghe.com): OpenClaw keeps it in the profile's enterpriseUrl.
        "tenant": {"github-copilot:ghe": profile_fields("oauth", "github-copilot", "")},
        # Provider ids as a store may spell them: aliases OpenClaw maps to their provider.
        "aliases": {
            "zai:alias": profile_fields("api_key", "z-ai", ""),
            "minimax:alias": profile_fields("api_key", "minimax-cn", ""),
            "moonshot:alias": profile_fields("api_key", "moonshotai", ""),
        },
    }
    extras["tenant"]["github-copilot:ghe"].update(GHE[0])
    for agent, profiles in extras.items():
        for profile_id, fields in profiles.items():
            secret = canary(profile_id)
            canaries.add(profile_id, secret)
            secrets[(agent, profile_id)] = secret
            fields["access" if fields["type"] == "oauth" else "key"] = secret
        by_agent[agent] = profiles
    for agent, profiles in by_agent.items():
        write_store(state_dir, agent, profiles)
    return Store(state_dir, canaries, secrets)


@dataclass
class World:
    interception: Interception
    store: Store
    zero: Sidecar  # no provider config at all
    configured: Sidecar  # only base_url for the per-user endpoints no profile holds
    http: httpx.Client
    leaks: Leaks


def hosts() -> set[str]:
    found = {urlsplit(e.spec.base_url).hostname for e in ENTRIES if e.spec.base_url}
    found |= {urlsplit(e.spec.oauth_base_url).hostname for e in ENTRIES if e.spec.oauth_base_url}
    found |= {urlsplit(url).hostname for _, url in PROFILE_ENDPOINTS.values()}
    found |= {urlsplit(GHE[1]).hostname} | {
        urlsplit(configured_url(n)).hostname for n in CONFIG_ONLY
    }
    return {h for h in found if h}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, leaks: Leaks) -> Iterator[World]:
    root = tmp_path_factory.mktemp("catalog")
    store = build_store(root, leaks)
    with intercepting(hosts(), root) as interception:
        env = interception.environment()
        sidecars: list[Sidecar] = []
        try:
            for name, providers in (
                ("zero", {}),
                ("configured", {n: {"base_url": configured_url(n)} for n in CONFIG_ONLY}),
            ):
                port = free_port()
                workdir = root / name
                workdir.mkdir()
                sidecars.append(
                    start_sidecar(
                        render_config([{"port": port}], providers),
                        [port],
                        state_dir=store.state_dir,
                        workdir=workdir,
                        env=env,
                    )
                )
            with httpx.Client(timeout=30) as http:
                yield World(interception, store, sidecars[0], sidecars[1], http, leaks)
        finally:
            for sidecar in sidecars:
                sidecar.stop()
        logs = "".join(s.logs() for s in sidecars)
        assert store.canaries.found_in(logs) == [], "a secret reached a sidecar log"
        assert interception.proxy.refused == []


CHAT = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'


def send(
    world: World,
    sidecar: Sidecar,
    agent: str,
    route: str,
    path: str,
    body: bytes = CHAT,
    extra: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A client request as an SDK would send it, with placeholder credentials of its own."""
    headers = {
        "authorization": f"Bearer {PLACEHOLDER}",
        "x-api-key": PLACEHOLDER,
        "content-type": "application/json",
        **(extra or {}),
    }
    url = f"{sidecar.url()}/agents/{agent}/{route}{path}"
    response = world.http.post(url, headers=headers, content=body)
    world.leaks.scan(f"the answer to {route}", repr(response.headers.raw) + response.text)
    return response


def only_request(world: World) -> Seen:
    seen = world.interception.recorder.take()
    assert len(seen) == 1, seen
    return seen[0]


def assert_arrived(
    seen: Seen, base: str, path: str, header: tuple[str, str] | None, secret: str
) -> None:
    """At the base URL's host and path, in ``header`` and nowhere else (None: nowhere)."""
    parts = urlsplit(base)
    assert (seen.method, seen.host, seen.path, seen.query) == (
        "POST",
        parts.hostname,
        parts.path + path,
        "",
    )
    carrying = [(name, value) for name, value in seen.headers if secret in value]
    assert carrying == ([header] if header else [])
    assert {name for name, _ in seen.headers} & CREDENTIAL_HEADERS == (
        {header[0]} if header else set()
    )
    assert secret.encode() not in seen.body
    assert all(PLACEHOLDER not in value for _, value in seen.headers)


@pytest.mark.parametrize(("entry", "cred"), CASES, ids=[f"{e.spec.name}-{c}" for e, c in CASES])
def test_credential_arrives_in_the_providers_header(
    world: World, entry: CatalogEntry, cred: str
) -> None:
    """A profile of this provider, a request through the sidecar with zero provider config: the
    credential arrives at the catalog's URL in the catalog's header, and nowhere else."""
    spec = entry.spec
    secret = world.store.secret(cred, spec)
    sidecar = world.configured if spec.name in CONFIG_ONLY else world.zero
    path = "/responses" if spec.kind == "openai-codex" else client_path(spec)
    response = send(world, sidecar, AGENT_FOR[cred], spec.name, path)
    assert response.status_code == 200, response.text
    seen = only_request(world)
    base = expected_base(spec, cred)
    assert_arrived(seen, base, path, expected_header(spec, cred, secret), secret)
    assert f"{urlsplit(base).hostname}:443" in world.interception.proxy.connects
    if spec.kind == "openai-codex" or (spec.kind == "anthropic" and cred != "api_key"):
        extra = seen.header("chatgpt-account-id") or seen.header("anthropic-beta")
        assert extra == ([ACCOUNT] if spec.kind == "openai-codex" else ["oauth-2025-04-20"])
    assert [(n, v) for n, v in seen.headers if n in QUIRK_HEADERS] == expected_quirks(spec, cred)


# The headers OpenClaw derives from a request's body (sidecar/providers/quirks.py).
QUIRK_HEADERS = frozenset({"x-initiator", "copilot-vision-request", "x-grok-model-override"})


def expected_quirks(spec: ProviderSpec, cred: str) -> list[tuple[str, str]]:
    """What the quirks add to ``send``'s chat completion (the user's turn, model "m"): Copilot's
    initiator, and on an xAI login (to the Grok CLI proxy) the model override."""
    if spec.name == "github-copilot":
        return [("x-initiator", "user")]
    if spec.name == "xai" and cred == "oauth":
        return [("x-grok-model-override", "m")]
    return []


@pytest.mark.parametrize("name", CONFIG_ONLY)
def test_a_per_user_endpoint_without_config_names_the_key(world: World, name: str) -> None:
    """With zero config a provider whose endpoint is per user (and in no profile) is not
    guessed: the answer names the config key to set, and nothing is sent anywhere."""
    spec = CATALOG[name].spec
    cred = tried_with(CATALOG[name])[0]
    response = send(world, world.zero, AGENT_FOR[cred], name, "/chat/completions")
    assert (response.status_code, response.headers["x-openclaw-sidecar-error"]) == (
        404,
        "no_endpoint",
    )
    message = response.json()["error"]["message"]
    assert f"set base_url in [providers.{name}] of the sidecar config" in message
    assert world.interception.recorder.take() == []
    assert spec.base_url == ""


def test_a_copilot_tenant_comes_from_the_profile(world: World) -> None:
    """A GitHub Copilot login for a *.ghe.com tenant goes to that tenant's Copilot host."""
    secret = world.store.secrets[("tenant", "github-copilot:ghe")]
    response = send(world, world.zero, "tenant", "github-copilot", "/chat/completions")
    assert response.status_code == 200, response.text
    assert_arrived(
        only_request(world),
        GHE[1],
        "/chat/completions",
        ("authorization", f"Bearer {secret}"),
        secret,
    )


@pytest.mark.parametrize(
    ("route", "profile_id", "base"),
    [
        ("zai", "zai:alias", "https://api.z.ai/api/paas/v4"),
        ("Z.AI", "zai:alias", "https://api.z.ai/api/paas/v4"),
        ("z-ai", "zai:alias", "https://api.z.ai/api/paas/v4"),
        ("zai-coding-global", "zai:alias", "https://api.z.ai/api/coding/paas/v4"),
        ("minimax", "minimax:alias", "https://api.minimax.io/anthropic"),
        ("minimax-cn", "minimax:alias", "https://api.minimaxi.com/anthropic"),
        ("MoonShot", "moonshot:alias", "https://api.moonshot.ai/v1"),
    ],
)
def test_ids_are_compared_as_openclaw_compares_them(
    world: World, route: str, profile_id: str, base: str
) -> None:
    """Profiles stored under an alias (z-ai, minimax-cn, moonshotai) serve their provider, and a
    route may be named in any case or by alias; a regional variant keeps its own endpoint."""
    secret = world.store.secrets[("aliases", profile_id)]
    spec = CATALOG[base_route(base)].spec
    response = send(world, world.zero, "aliases", route, "/chat/completions")
    assert response.status_code == 200, response.text
    assert_arrived(
        only_request(world),
        base,
        "/chat/completions",
        expected_header(spec, "api_key", secret),
        secret,
    )


def base_route(base: str) -> str:
    return next(e.spec.name for e in ENTRIES if e.spec.base_url == base)


# --- what OpenClaw derives from the request body (sidecar/providers/quirks.py) -------------------

COPILOT_BASE = "https://api.individual.githubcopilot.com"
TOOL_LAST = {"model": "gpt-5", "messages": [
    {"role": "user", "content": "go"},
    {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function"}]},
    {"role": "tool", "tool_call_id": "c1", "content": "done"},
]}  # fmt: skip
OVER_LIMIT = {**TOOL_LAST, "padding": "x" * 1_100_000}  # past the default 1 MiB replay limit


@pytest.mark.parametrize(
    ("path", "doc", "extra", "initiator"),
    [
        ("/chat/completions", TOOL_LAST, {}, "agent"),
        ("/responses", {"model": "gpt-5", "input": [
            {"role": "user", "content": "go"},
            {"type": "function_call_output", "call_id": "c1", "output": "done"}]}, {}, "agent"),
        ("/v1/messages", {"model": "claude", "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1"}]}]},
         {}, "agent"),
        ("/chat/completions", TOOL_LAST, {"X-Initiator": "user"}, "user"),  # the client's own
        ("/chat/completions", OVER_LIMIT, {}, "user"),  # not held: an empty conversation
    ],
    ids=["chat-tool", "responses-output", "messages-tool-result", "client-wins", "over-limit"],
)  # fmt: skip
def test_copilot_s_initiator_follows_the_conversation(
    world: World, path: str, doc: dict[str, Any], extra: dict[str, str], initiator: str
) -> None:
    """The real sidecar sends Copilot x-initiator as OpenClaw infers it from the last turn,
    never over a client's own, and "user" when it does not hold the body."""
    secret = world.store.secrets[("oauth", "github-copilot")]
    body = json.dumps(doc).encode()
    response = send(world, world.zero, "logins", "github-copilot", path, body, extra)
    assert response.status_code == 200, response.text
    seen = only_request(world)
    assert_arrived(seen, COPILOT_BASE, path, ("authorization", f"Bearer {secret}"), secret)
    assert seen.header("x-initiator") == [initiator]
    assert seen.body == body


def test_a_grok_login_names_the_model_it_asks_for(world: World) -> None:
    """An xAI login's Responses call goes to the Grok CLI proxy with x-grok-model-override, the
    body's model (2026.9.6 createXaiGrokOAuthHeadersWrapper); an API key's does not."""
    body = b'{"model": "grok-4", "input": "hi"}'
    for agent, cred in (("logins", "oauth"), ("keys", "api_key")):
        secret = world.store.secret(cred, CATALOG["xai"].spec)
        response = send(world, world.zero, agent, "xai", "/responses", body)
        assert response.status_code == 200, response.text
        seen = only_request(world)
        base = expected_base(CATALOG["xai"].spec, cred)
        assert_arrived(seen, base, "/responses", ("authorization", f"Bearer {secret}"), secret)
        expected = ["grok-4"] if cred == "oauth" else []
        assert seen.header("x-grok-model-override") == expected


def test_comfy_cloud_gets_its_key_in_the_workflow_submission(world: World) -> None:
    """A workflow submission to Comfy Cloud carries the key in extra_data.api_key_comfy_org as
    OpenClaw writes it (the client's placeholder replaced), framed by the new body's length, at
    Comfy's own host only; the answer to the client holds no key."""
    secret = world.store.secret("api_key", CATALOG["comfy"].spec)
    doc = {"prompt": {"9": {"class_type": "SaveImage", "inputs": {}}}, "client_id": "c1",
           "extra_data": {"api_key_comfy_org": PLACEHOLDER}}  # fmt: skip
    response = send(world, world.zero, "keys", "comfy", "/api/prompt", json.dumps(doc).encode())
    assert response.status_code == 200, response.text
    seen = only_request(world)
    assert (seen.host, seen.path) == ("cloud.comfy.org", "/api/prompt")
    assert json.loads(seen.body) == {**doc, "extra_data": {"api_key_comfy_org": secret}}
    assert seen.header("content-length") == [str(len(seen.body))]
    assert [(n, v) for n, v in seen.headers if secret in v] == [("x-api-key", secret)]
    assert seen.body.count(secret.encode()) == 1
    assert PLACEHOLDER.encode() not in seen.body
