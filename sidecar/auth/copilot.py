"""Where a GitHub Copilot credential goes (``providers/copilot.py`` has both OpenClaw models): an
OAuth login's Copilot token (2026.6.1's model) to its ``proxy-ep``, read from the token; a
GitHub token (2026.9.6's model: a token profile) to the API its account's
``/copilot_internal/user`` names, looked up once per token and domain for ``ttl_s`` (one lookup
at a time; requests wait for it) with the token-endpoint client."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import anyio
import httpx

from sidecar.errors import RefreshUnavailable
from sidecar.providers import copilot
from sidecar.providers.grants import Answer, ProviderAuth, TokenRequest
from sidecar.secret import Secret

LOOKUP_TTL_S: Final = 600.0
DOMAIN_ENV: Final = "COPILOT_GITHUB_DOMAIN"  # OpenClaw 2026.9.6 resolveGithubCopilotDomain


class CopilotApis:
    """The base URL of each Copilot credential; ``None`` means the provider's own."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        environ: Mapping[str, str],
        clock: Callable[[], int],
        timeout_s: float = 30.0,
        ttl_s: float = LOOKUP_TTL_S,
    ) -> None:
        self.client = client
        self.clock = clock
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self.lookups = 0
        self._env_domain = environ.get(DOMAIN_ENV, "")
        self._found: dict[tuple[str, str], tuple[float, str | None]] = {}
        self._locks: dict[tuple[str, str], anyio.Lock] = {}

    async def base_url(
        self, auth: ProviderAuth, cred_type: str, secret: Secret, profile: Mapping[str, Any]
    ) -> str | None:
        """Where a request with ``secret`` goes: an OAuth login's Copilot token by its proxy-ep
        (else the tenant's API), any other credential (a GitHub token) by its account."""
        domain = self._domain(profile)
        token = secret.reveal()
        if cred_type == "oauth":
            found = copilot.base_url_from_token(token, domain)
            return found or copilot.fallback_base_url(domain)
        return await self._looked_up(auth, token, domain)

    def _domain(self, profile: Mapping[str, Any]) -> str:
        """``$COPILOT_GITHUB_DOMAIN`` first, as OpenClaw reads it, then the profile's
        ``enterpriseUrl``; a value that is not a GitHub domain means github.com, as there."""
        for raw in (self._env_domain, profile.get("enterpriseUrl")):
            if isinstance(raw, str) and raw.strip():
                try:
                    return copilot.domain_of(raw)
                except ValueError:
                    return copilot.PUBLIC_DOMAIN
        return copilot.PUBLIC_DOMAIN

    async def _looked_up(self, auth: ProviderAuth, token: str, domain: str) -> str | None:
        key = (hashlib.sha256(token.encode()).hexdigest(), domain)
        async with self._locks.setdefault(key, anyio.Lock()):
            cached = self._found.get(key)
            if cached is not None and time.monotonic() < cached[0]:
                return cached[1]
            answer = await self._get(copilot.user_request(auth, token, domain))
            found = copilot.base_url_from_user(answer, domain) or copilot.fallback_base_url(domain)
            self._found[key] = (time.monotonic() + self.ttl_s, found)
            return found

    async def _get(self, request: TokenRequest) -> Answer:
        self.lookups += 1
        try:
            with anyio.fail_after(self.timeout_s):
                response = await self.client.get(request.url, headers=list(request.headers))
        except (TimeoutError, httpx.HTTPError) as exc:
            raise RefreshUnavailable(
                f"cannot reach GitHub's Copilot user endpoint ({type(exc).__name__}); try "
                "again later"
            ) from exc
        return Answer(response.status_code, response.content, self.clock())
