"""The proxy in-process, for app tests: a JSON store with a canary secret in every profile, every
listener kind wired as ``serve`` wires it, a recording fake upstream per provider (one host each,
so the host says whose base URL was called) and a fake token endpoint whose new tokens are
canaries of the refreshed profile's provider too."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from sidecar.auth.credentials import CredentialResolver
from sidecar.auth.outcomes import Outcomes
from sidecar.auth.refresh import Refresher
from sidecar.config import Listener, Settings, UpstreamSettings
from sidecar.providers.catalog import BUILTIN_PROVIDERS, ProviderSpec
from sidecar.proxy.agents import KnownAgents
from sidecar.proxy.app import create_app, create_ops
from sidecar.proxy.forward import Proxy
from sidecar.proxy.metrics import Metrics
from sidecar.proxy.transport import Upstream
from sidecar.server import agent_listing, auth_lookup
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw_json.store import JsonStore

DAY_MS = 24 * 3600 * 1000
TYPES = ("api_key", "token", "oauth")
# Every configured provider, plus one no listener knows (its profiles must never be sent).
CONFIGURED = ("openai", "openai-codex", "anthropic", "openrouter", "my-llm")
PROVIDERS = (*CONFIGURED, "ghost")


def upstream_host(provider: str) -> str:
    return f"{provider}.upstream.test"


def token_host(provider: str) -> str:
    return f"{provider}.tokens.test"


def provider_specs() -> dict[str, ProviderSpec]:
    """Each configured provider on a host of its own; the OAuth ones refresh at the fake."""
    specs = dict(BUILTIN_PROVIDERS)
    specs["my-llm"] = ProviderSpec(name="my-llm", kind="generic", base_url="", auth="header:X-Key")
    return {
        name: replace(
            spec,
            base_url=f"http://{upstream_host(name)}/base",
            token_url=f"http://{token_host(name)}/token" if spec.token_url else None,
        )
        for name, spec in specs.items()
    }


@dataclass(frozen=True)
class Canary:
    """Whose a canary is: the store that holds it, its profile, provider and type."""

    owner: str
    profile_id: str
    provider: str
    type: str


@dataclass(frozen=True)
class Call:
    """One request that reached a fake upstream, and the canaries it carried."""

    provider: str  # whose base URL (host) was called
    url: str
    carried: tuple[Canary, ...]


@dataclass
class Canaries:
    by_value: dict[str, Canary] = field(default_factory=dict)

    def new(self, secret: Canary, kind: str) -> str:
        value = f"{kind}-CANARY-{uuid.uuid4().hex}"
        self.by_value[value] = secret
        return value

    def found_in(self, texts: Iterable[str]) -> tuple[Canary, ...]:
        joined = "\n".join(texts)
        return tuple(s for value, s in self.by_value.items() if value in joined)


def profile_id(agent: str, provider: str, kind: str) -> str:
    return f"{provider}:{agent}-{kind}"


class World:
    """The state dir (``agents`` maps each agent to the providers it has profiles of), the store,
    the fakes and one app per listener (``apps[name]``)."""

    def __init__(
        self,
        root: Path,
        agents: Mapping[str, Iterable[str]],
        listeners: Mapping[str, Listener],
    ) -> None:
        self.state, self.home = root / "state", root / "home"
        self.home.mkdir(parents=True)
        self.canaries = Canaries()
        self.calls: list[Call] = []
        self.token_calls: list[str] = []
        self.answers: list[int] = []  # the statuses of the next upstream answers, then 200s
        for agent, providers in agents.items():
            self.write_profiles(agent, self.profiles_of(agent, providers))
        layout = Layout.from_env({"HOME": str(self.home), "OPENCLAW_STATE_DIR": str(self.state)})
        self.store = JsonStore(layout, home=self.home, check_interval_s=0)
        self.settings = Settings(listeners=tuple(listeners.values()), providers=provider_specs())
        self.metrics = Metrics()
        self.listeners = dict(listeners)
        self.apps: dict[str, Any] = {}
        self.proxies: dict[str, Proxy] = {}

    # --- the store -----------------------------------------------------------------------------

    def profiles_of(self, agent: str, providers: Iterable[str]) -> dict[str, Any]:
        """A profile of every type for each of ``providers``, each with canary secrets."""
        profiles: dict[str, Any] = {}
        for provider in providers:
            for kind in TYPES:
                pid = profile_id(agent, provider, kind)
                profiles[pid] = self.profile(agent, pid, provider, kind)
        return profiles

    def profile(self, owner: str, pid: str, provider: str, kind: str) -> dict[str, Any]:
        secret = Canary(owner, pid, provider, kind)
        if kind == "api_key":
            return {"type": kind, "provider": provider, "key": self.canaries.new(secret, "key")}
        if kind == "token":
            return {"type": kind, "provider": provider, "token": self.canaries.new(secret, "tok")}
        return {
            "type": "oauth",
            "provider": provider,
            "access": self.canaries.new(secret, "access"),
            "refresh": self.canaries.new(secret, "refresh"),
            "expires": int(time.time() * 1000) + DAY_MS,
        }

    def profiles_path(self, agent: str) -> Path:
        return self.state / "agents" / agent / "agent" / "auth-profiles.json"

    def write_profiles(self, agent: str, profiles: Mapping[str, Any]) -> None:
        path = self.profiles_path(agent)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": 1, "profiles": dict(profiles)}, indent=2) + "\n")

    def add_profile(self, agent: str, pid: str, provider: str, kind: str) -> None:
        doc = json.loads(self.profiles_path(agent).read_text())
        doc["profiles"][pid] = self.profile(agent, pid, provider, kind)
        self.write_profiles(agent, doc["profiles"])

    # --- the fakes -----------------------------------------------------------------------------

    async def upstream(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        provider = request.url.host.removesuffix(".upstream.test")
        texts = [v.decode("latin-1") for _, v in request.headers.raw]
        carried = self.canaries.found_in([*texts, request.content.decode("latin-1")])
        self.calls.append(Call(provider, str(request.url), carried))
        status = self.answers.pop(0) if self.answers else 200
        body = json.dumps({"ok": status == 200}).encode()
        headers = {"content-type": "application/json", "content-length": str(len(body))}
        # A stream not yet read, as a real transport's (MockTransport reads it first).
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))

    def tokens(self, request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        if request.headers["content-type"].startswith("application/json"):
            refresh = json.loads(body)["refresh_token"]
        else:
            refresh = urllib.parse.parse_qs(body)["refresh_token"][0]
        self.token_calls.append(request.url.host)
        old = self.canaries.by_value[refresh]
        answer = {
            "access_token": self.canaries.new(old, "access"),
            "refresh_token": self.canaries.new(old, "refresh"),
            "expires_in": 86400,
        }
        return httpx.Response(200, json=answer)

    # --- the apps ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Wires the apps as ``serve`` does (inside the event loop that will run them)."""
        upstream = Upstream(UpstreamSettings(transport="httpx"))
        await upstream.transport.aclose()
        upstream.transport = _Handler(self)
        token_client = httpx.AsyncClient(transport=httpx.MockTransport(self.tokens))
        refresher = Refresher(
            self.store, token_client, auth_lookup(self.settings.providers), clock=_now_ms
        )
        credentials = CredentialResolver(
            refresher,
            environ={},
            home=self.home,
            secret_providers=lambda: self.store.config().secret_providers,
            clock=_now_ms,
        )
        self.outcomes = outcomes = Outcomes(self.store, clock=_now_ms)
        agents = KnownAgents(agent_listing(self.store), interval_s=0)  # tests add agents
        for name, listener in self.listeners.items():
            proxy = Proxy(
                self.settings,
                listener,
                source=self.store,
                agents=agents,
                credentials=credentials,
                outcomes=outcomes,
                upstream=upstream,
                metrics=self.metrics,
                clock=_now_ms,
            )
            self.proxies[name] = proxy
            self.apps[name] = create_app(proxy, create_ops(proxy, self.metrics))

    async def request(
        self,
        listener: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.apps[listener])
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar.test") as c:
            body = b'{"model": "m"}' if method == "POST" else None
            response = await c.request(method, path, content=body, headers=dict(headers or {}))
        self.proxies[listener].ledger.settle()  # as serve's loop does once it is free
        return response


class _Handler(httpx.AsyncBaseTransport):
    def __init__(self, world: World) -> None:
        self.world = world

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.world.upstream(request)


def _now_ms() -> int:
    return int(time.time() * 1000)
