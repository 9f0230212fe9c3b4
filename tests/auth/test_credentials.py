"""From a stored profile to the secret a request carries: inline values, SecretRefs resolved
from the environment given, expired tokens refused, and OAuth tokens refreshed when due."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sidecar.auth.credentials import Credential, CredentialResolver
from sidecar.auth.refresh import Refresher
from sidecar.errors import NoProfile
from sidecar.providers.grants import OPENAI_CODEX
from sidecar.secret import Secret
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.refs import SecretRefError
from sidecar.sources.openclaw_json.store import JsonStore

pytestmark = pytest.mark.anyio

NOW = 1_767_225_600_000
MIN = 60_000
HOUR = 60 * MIN
AUTH = dataclasses.replace(OPENAI_CODEX, token_url="https://auth.test/oauth/token")
CODEX = "openai-codex:alice@example.com"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Setup:
    """A state dir, a JSON store on it, a refresher over a fake endpoint, and the resolver."""

    def __init__(self, root: Path, client: httpx.AsyncClient) -> None:
        self.state, home = root / "state", root / "home"
        home.mkdir()
        layout = Layout.from_env({"HOME": str(home), "OPENCLAW_STATE_DIR": str(self.state)})
        self.store = JsonStore(layout, home=home, clock=lambda: NOW, check_interval_s=0)
        self.refresher = Refresher(
            self.store, client, {"openai-codex": AUTH}.get, clock=lambda: NOW
        )
        self.environ: dict[str, str] = {}
        self.resolver = CredentialResolver(
            self.refresher,
            environ=self.environ,
            home=home,
            secret_providers=dict,
            clock=lambda: NOW,
        )

    def write(self, profiles: dict[str, Any]) -> None:
        path = self.state / "agents" / "main" / "agent" / "auth-profiles.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": 1, "profiles": profiles}))

    async def resolve(self, pid: str, **kwargs: Any) -> Credential:
        view = (await self.store.view("main")).get(pid)
        assert view is not None
        return await self.resolver.resolve("main", view, **kwargs)


class Endpoint:
    """A token endpoint that grants ``access-new`` for any refresh token, counting calls."""

    def __init__(self) -> None:
        self.presented: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.presented += urllib.parse.parse_qs(request.content.decode())["refresh_token"]
        body = {"access_token": "access-new", "refresh_token": "rt_new", "expires_in": 3600}
        return httpx.Response(200, json=body)


@pytest.fixture
async def endpoint() -> Endpoint:
    return Endpoint()


@pytest.fixture
async def s(tmp_path: Path, endpoint: Endpoint) -> AsyncIterator[Setup]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
        yield Setup(tmp_path, client)


def oauth(expires: int) -> dict[str, Any]:
    return {
        "type": "oauth",
        "provider": "openai-codex",
        "access": "access-old",
        "refresh": "rt_old",
        "expires": expires,
        "accountId": "acc-1",
    }


@pytest.mark.parametrize(
    ("profile", "environ", "expected"),
    [
        (
            {"type": "api_key", "provider": "openai", "key": "sk-inline"},
            {},
            Credential("p:x", "openai", "api_key", Secret("sk-inline")),
        ),
        (
            {"type": "token", "provider": "anthropic", "token": "sk-ant-oat01-x"},
            {},
            Credential("p:x", "anthropic", "token", Secret("sk-ant-oat01-x")),
        ),
        (
            {"type": "token", "provider": "anthropic", "token": "tok", "expires": NOW + 1},
            {},
            Credential("p:x", "anthropic", "token", Secret("tok")),
        ),
        (
            {
                "type": "api_key",
                "provider": "anthropic",
                "keyRef": {"source": "env", "provider": "default", "id": "ANTHROPIC_API_KEY"},
            },
            {"ANTHROPIC_API_KEY": "sk-ant-from-env"},
            Credential("p:x", "anthropic", "api_key", Secret("sk-ant-from-env")),
        ),
        (
            {"type": "api_key", "provider": "openai", "key": "${OPENAI_KEY}"},
            {"OPENAI_KEY": "sk-templated"},
            Credential("p:x", "openai", "api_key", Secret("sk-templated")),
        ),
        (
            {
                "type": "token",
                "provider": "anthropic",
                "tokenRef": {"source": "env", "provider": "default", "id": "TOK"},
            },
            {"TOK": "sk-ant-oat01-env"},
            Credential("p:x", "anthropic", "token", Secret("sk-ant-oat01-env")),
        ),
    ],
    ids=["api-key", "token", "token-not-yet-expired", "env-key-ref", "env-template", "token-ref"],
)
async def test_static_profiles_resolve_to_their_secret(
    s: Setup, profile: dict[str, Any], environ: dict[str, str], expected: Credential
) -> None:
    """api_key and token profiles give their inline secret or the one their ref points at."""
    s.write({"p:x": profile})
    s.environ.update(environ)
    assert await s.resolve("p:x") == expected


@pytest.mark.parametrize(
    ("profile", "error", "message"),
    [
        (
            {"type": "token", "provider": "anthropic", "token": "tok", "expires": NOW},
            NoProfile,
            "token profile p:x expired; store a new one in its place with `claude setup-token "
            "| openclaw-sidecar paste-token --provider anthropic --profile-id p:x --replace`",
        ),
        (
            {"type": "token", "provider": "openrouter", "token": "tok", "expires": NOW},
            NoProfile,
            "token profile p:x expired; store a new one in its place with "
            "`openclaw-sidecar paste-token --provider openrouter --profile-id p:x --replace`",
        ),
        (
            {"type": "api_key", "provider": "openai"},
            NoProfile,
            "profile p:x holds no secret",
        ),
        (
            {"type": "api_key", "provider": "openai", "key": "${UNSET_VAR}"},
            SecretRefError,
            "environment variable UNSET_VAR is not set or empty",
        ),
    ],
    ids=["expired-setup-token", "expired-token", "no-secret", "unset-env"],
)
async def test_unusable_static_profiles_are_refused(
    s: Setup, profile: dict[str, Any], error: type[Exception], message: str
) -> None:
    """An expired token, a profile without a secret and an unset env ref raise, saying why."""
    s.write({"p:x": profile})
    with pytest.raises(error) as info:
        await s.resolve("p:x")
    assert str(info.value) == message


async def test_resolved_refs_are_cached(s: Setup) -> None:
    """A resolved ref is reused for a while: a changed environment is not re-read at once."""
    s.write({"p:x": {"type": "api_key", "provider": "openai", "key": "${K}"}})
    s.environ["K"] = "sk-first"
    first = await s.resolve("p:x")
    s.environ["K"] = "sk-second"
    assert (first.secret, (await s.resolve("p:x")).secret) == (Secret("sk-first"),) * 2


@pytest.mark.parametrize(
    ("expires", "rejected", "presented", "access"),
    [
        (NOW + HOUR, None, [], "access-old"),
        (NOW + 4 * MIN, None, ["rt_old"], "access-new"),  # within the 5-minute margin
        (NOW - MIN, None, ["rt_old"], "access-new"),
        (NOW + HOUR, "access-old", ["rt_old"], "access-new"),  # upstream refused it
    ],
    ids=["usable", "due", "expired", "rejected"],
)
async def test_oauth_profiles_are_refreshed_when_due(
    s: Setup,
    endpoint: Endpoint,
    expires: int,
    rejected: str | None,
    presented: list[str],
    access: str,
) -> None:
    """An OAuth profile is refreshed when due or rejected, else served as stored."""
    s.write({CODEX: oauth(expires)})
    cred = await s.resolve(CODEX, rejected_access=rejected)
    assert cred == Credential(CODEX, "openai-codex", "oauth", Secret(access), "acc-1")
    assert endpoint.presented == presented


async def test_served_oauth_profile_is_kept_fresh_in_background(s: Setup) -> None:
    """Serving a usable OAuth profile marks it in use for the background refresher."""
    s.write({CODEX: oauth(NOW + HOUR)})
    await s.resolve(CODEX)
    assert s.refresher.in_use(max_idle_s=3600) == [("main", CODEX)]
