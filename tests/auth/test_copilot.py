"""Where a GitHub Copilot credential goes (sidecar.auth.copilot): an exchanged token to its
proxy-ep with no call, a GitHub token to its account's API, looked up once per token and
domain, one lookup at a time."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

from sidecar.auth.copilot import CopilotApis
from sidecar.errors import RefreshUnavailable
from sidecar.providers import flows
from sidecar.providers.catalog import BUILTIN_PROVIDERS
from sidecar.secret import Secret

pytestmark = pytest.mark.anyio
AUTH = flows.provider_auth(BUILTIN_PROVIDERS["github-copilot"], {})
assert AUTH is not None
GITHUB = Secret("gho_16C7e42F292c6912E7710c838347Ae178B4a")
COPILOT = Secret("tid=1;exp=2;proxy-ep=proxy.business.githubcopilot.com:sig")
ACME, ACME_API = "https://api.acme.ghe.com", "https://copilot-api.acme.ghe.com"
PUBLIC = "https://api.github.com"


class GitHub:
    """GitHub's /copilot_internal/user, counting calls; ``gate`` holds answers when set."""

    def __init__(self, api: str | None = "https://api.individual.githubcopilot.com") -> None:
        self.api = api
        self.urls: list[str] = []
        self.gate: anyio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        if self.gate is not None:
            await self.gate.wait()
        if request.headers["authorization"] != f"Bearer {GITHUB.reveal()}":
            return httpx.Response(401, json={"message": "Bad credentials"})
        body: dict[str, Any] = {"login": "ada"}
        if self.api:
            body["endpoints"] = {"api": self.api}
        return httpx.Response(200, content=json.dumps(body).encode())


def apis(github: GitHub, **environ: str) -> CopilotApis:
    client = httpx.AsyncClient(transport=httpx.MockTransport(github))
    return CopilotApis(client, environ=environ, clock=lambda: 0)


async def test_an_exchanged_token_goes_to_its_proxy_ep_without_a_call() -> None:
    """2026.6.1's model (an OAuth login): the base URL is in the Copilot token; a tenant's
    default otherwise, and no call either way."""
    github = GitHub()
    found = apis(github)
    assert (
        await found.base_url(AUTH, "oauth", COPILOT, {}) == "https://api.business.githubcopilot.com"
    )
    plain = Secret("tid=1;exp=2:sig")
    tenant = {"enterpriseUrl": "acme.ghe.com"}
    assert await found.base_url(AUTH, "oauth", plain, tenant) == "https://copilot-api.acme.ghe.com"
    assert await found.base_url(AUTH, "oauth", plain, {}) is None
    assert github.urls == []


async def test_a_github_token_s_api_is_looked_up_once() -> None:
    """2026.9.6's model (a token profile): the account's endpoints.api, once per token and
    domain."""
    github = GitHub("https://api.business.githubcopilot.com")
    found = apis(github)
    for _ in range(3):
        assert (
            await found.base_url(AUTH, "token", GITHUB, {})
            == "https://api.business.githubcopilot.com"
        )
    assert github.urls == ["https://api.github.com/copilot_internal/user"]


async def test_concurrent_requests_share_one_lookup() -> None:
    """Twenty requests at once with the same GitHub token make one lookup."""
    github = GitHub()
    github.gate = anyio.Event()
    found = apis(github)
    results: list[str | None] = []

    async def one() -> None:
        results.append(await found.base_url(AUTH, "token", GITHUB, {}))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
            while not github.urls:
                await anyio.sleep(0)
            github.gate.set()
    assert (len(github.urls), set(results)) == (1, {"https://api.individual.githubcopilot.com"})


@pytest.mark.parametrize(
    ("environ", "profile", "url", "base"),
    [
        ({"COPILOT_GITHUB_DOMAIN": "acme.ghe.com"}, {}, ACME, ACME_API),
        ({}, {"enterpriseUrl": "acme.ghe.com"}, ACME, ACME_API),
        ({"COPILOT_GITHUB_DOMAIN": "evil.example"}, {"enterpriseUrl": "acme.ghe.com"}, PUBLIC,
         None),
    ],
)  # fmt: skip
async def test_the_domain_comes_from_the_environment_then_the_profile(
    environ: dict[str, str], profile: dict[str, Any], url: str, base: str | None
) -> None:
    """$COPILOT_GITHUB_DOMAIN first (a value that is no GitHub domain means github.com, as in
    OpenClaw), then enterpriseUrl; a tenant's default API when the account names none."""
    github = GitHub(api=None)
    assert await apis(github, **environ).base_url(AUTH, "token", GITHUB, profile) == base
    assert github.urls == [url + "/copilot_internal/user"]


async def test_an_unreachable_github_is_refresh_unavailable() -> None:
    """GitHub down: refresh_unavailable, and nothing is cached."""

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(down))
    found = CopilotApis(client, environ={}, clock=lambda: 0)
    with pytest.raises(RefreshUnavailable, match="cannot reach GitHub's Copilot user endpoint"):
        await found.base_url(AUTH, "token", GITHUB, {})
    assert found.lookups == 1
