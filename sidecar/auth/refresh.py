"""Rotation-safe OAuth refresh: one refresh per profile at a time in this process (single
flight), the cross-process protocol delegated to the credential source, and the token call.

A refresh, once started, is never cut short: a client that goes away, or one that stops
waiting, must not end it between the token endpoint rotating the refresh token and the new one
reaching the disk. Under ``running()`` (as ``serve`` runs it) a refresh is a task of its own:
requests wait for it at most ``timeout_s`` and get ``refresh_unavailable``, while the token call
goes on up to ``CALL_TIMEOUT_S`` and its answer is saved; without it, the call is bounded by
``timeout_s`` (the CLI, tests).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from sidecar.errors import RefreshUnavailable
from sidecar.log import get_logger
from sidecar.providers import flows
from sidecar.providers.grants import Answer, Grant, Login, ProviderAuth, RefreshFlow, TokenRequest
from sidecar.sources.interface import CredentialSource
from sidecar.sources.openclaw.model import REFRESH_MARGIN_MS, OAuthCredential
from sidecar.sources.openclaw.views import ProfileView

log = get_logger("sidecar.refresh")
AuthLookup = Callable[[str], ProviderAuth | None]
# OpenClaw's own token-call timeout; well inside the refresh lock's 180 s stale time.
CALL_TIMEOUT_S = 120.0


@dataclass
class _Flight:
    done: anyio.Event = field(default_factory=anyio.Event)
    result: OAuthCredential | None = None
    error: Exception | None = None


@dataclass
class RefreshStats:
    token_calls: int = 0
    adopted: int = 0
    failures: dict[str, int] = field(default_factory=dict)


class Refresher:
    """Keeps OAuth profiles fresh for ``source``; ``auth_for(provider)`` names the endpoint."""

    def __init__(
        self,
        source: CredentialSource,
        client: httpx.AsyncClient,
        auth_for: AuthLookup,
        *,
        clock: Callable[[], int],
        timeout_s: float = 30.0,
        margin_ms: int = REFRESH_MARGIN_MS,
        on_refresh: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.source = source
        self.client = client
        self.auth_for = auth_for
        self.clock = clock
        self.timeout_s = timeout_s
        self.margin_ms = margin_ms
        self.stats = RefreshStats()
        self._on_refresh = on_refresh
        self._flights: dict[tuple[str, str], _Flight] = {}
        self._in_use: dict[tuple[str, str], float] = {}
        self._group: anyio.abc.TaskGroup | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run refreshes as tasks of their own, which outlive the requests waiting for them."""
        async with anyio.create_task_group() as group:
            self._group = group
            try:
                yield
            finally:
                self._group = None

    def is_due(self, cred: OAuthCredential) -> bool:
        return not cred.is_usable(self.clock(), self.margin_ms)

    def refreshes(self, provider: str) -> bool:
        """Whether the sidecar can refresh a login of ``provider`` (as a store spells it)."""
        auth = self.auth_for(provider)
        return auth is not None and auth.style != "none"

    def no_refresh(self, cred: OAuthCredential) -> RefreshUnavailable:
        """The error for an expired login nobody here can refresh, naming what to run."""
        auth = self.auth_for(cred.provider)
        return RefreshUnavailable(flows.no_refresh_message(auth, cred.provider, cred.id))

    def fresh_hint(self, agent: str, view: ProfileView) -> None:
        """Note that ``view`` is in use, so the background refresher keeps it fresh."""
        self._in_use[(agent, view.id)] = time.monotonic()

    async def fresh(
        self, agent: str, view: ProfileView, *, rejected_access: str | None = None
    ) -> OAuthCredential:
        """A usable credential for ``view``'s OAuth profile, refreshing it if needed."""
        self._in_use[(agent, view.id)] = time.monotonic()
        key = (view.owner, view.id)
        while (flight := self._flights.get(key)) is not None:
            result = await self._wait(flight, view)
            if result.access.reveal() != rejected_access:
                return result
            # The flight brought back the very token this caller saw rejected: refresh again,
            # joining the next flight if another waiter of the same one already started it.
        flight = self._flights[key] = _Flight()
        if self._group is None:
            await self._fly(flight, key, agent, view, rejected_access)
        else:
            self._group.start_soon(self._fly, flight, key, agent, view, rejected_access)
        return await self._wait(flight, view)

    async def _wait(self, flight: _Flight, view: ProfileView) -> OAuthCredential:
        with anyio.move_on_after(self.timeout_s):
            await flight.done.wait()
        if not flight.done.is_set():
            raise RefreshUnavailable(
                f"the token endpoint did not answer within {self.timeout_s:g} s (profile "
                f"{view.id}); the refresh goes on and its answer will be saved, retry shortly"
            )
        if flight.error is not None:
            raise flight.error
        assert flight.result is not None
        return flight.result

    async def _fly(
        self,
        flight: _Flight,
        key: tuple[str, str],
        agent: str,
        view: ProfileView,
        rejected: str | None,
    ) -> None:
        try:
            with anyio.CancelScope(shield=True):
                flight.result = await self.source.refresh(
                    agent,
                    view.id,
                    self._exchange,
                    rejected_access=rejected,
                    margin_ms=self.margin_ms,
                )
        except Exception as exc:
            flight.error = exc
            self.stats.failures[type(exc).__name__] = (
                self.stats.failures.get(type(exc).__name__, 0) + 1
            )
            self._notify(view, "failed")
            log.warning(
                "token_refresh_failed",
                profile=view.id,
                agent=agent,
                code=getattr(exc, "code", type(exc).__name__),
            )
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.done.set()

    async def _exchange(self, cred: OAuthCredential) -> Mapping[str, Any]:
        auth = self.auth_for(cred.provider)
        login = Login(cred.id, cred.provider, cred.refresh.reveal(), cred.raw)
        flow = flows.refresh_flow(auth, login)  # RefreshUnavailable without a refresh method
        assert auth is not None
        started = time.monotonic()
        grant = await self._run(flow, auth, cred.id)
        log.info(
            "token_refreshed",
            profile=cred.id,
            provider=cred.provider,
            ms=round((time.monotonic() - started) * 1000, 1),
            expires=grant.expires_ms,
        )
        self._notify_id(cred, "refreshed")
        return grant.fields()

    async def _run(self, flow: RefreshFlow, auth: ProviderAuth, profile_id: str) -> Grant:
        """Makes each request the flow yields and hands it the answer, until it returns."""
        request = next(flow)
        while True:
            response = await self._send(auth, request, profile_id)
            self.stats.token_calls += 1
            try:
                request = flow.send(Answer(response.status_code, response.content, self.clock()))
            except StopIteration as done:
                grant: Grant = done.value
                return grant

    async def _send(
        self, auth: ProviderAuth, request: TokenRequest, profile_id: str
    ) -> httpx.Response:
        # The request's own headers, as they are: adding ours under other spellings sent
        # Content-Type twice, which aiohttp's server refuses with a 400 (#17).
        headers = list(request.headers)
        content = request.body or None  # a GET carries no body, not an empty one
        limit = self.timeout_s if self._group is None else CALL_TIMEOUT_S
        try:
            with anyio.fail_after(limit):
                return await self.client.request(
                    request.method, request.url, content=content, headers=headers
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise RefreshUnavailable(
                f"the token endpoint of {auth.provider} did not answer within {limit:g} s "
                f"(profile {profile_id}); the old token is kept"
            ) from exc
        except httpx.HTTPError as exc:
            raise RefreshUnavailable(
                f"cannot reach the token endpoint of {auth.provider} ({type(exc).__name__}, "
                f"profile {profile_id}); the old token is kept"
            ) from exc

    def _notify(self, view: ProfileView, outcome: str) -> None:
        if self._on_refresh is not None:
            self._on_refresh(view.profile.provider, view.id, outcome)

    def _notify_id(self, cred: OAuthCredential, outcome: str) -> None:
        if self._on_refresh is not None:
            self._on_refresh(cred.provider, cred.id, outcome)

    # --- background ----------------------------------------------------------------------------

    def in_use(self, max_idle_s: float) -> list[tuple[str, str]]:
        now = time.monotonic()
        stale = [k for k, t in self._in_use.items() if now - t > max_idle_s]
        for k in stale:
            del self._in_use[k]
        return list(self._in_use)

    async def refresh_due(self, lookahead_ms: int, max_idle_s: float = 6 * 3600) -> int:
        """One pass of the background refresher over the profiles in use: refresh those that
        will be due within ``lookahead_ms``, so requests rarely wait. Returns refreshes done."""
        done = 0
        for agent, profile_id in self.in_use(max_idle_s):
            try:
                view = (await self.source.view(agent)).get(profile_id)
                cred = view.profile if view else None
                if (
                    view
                    and isinstance(cred, OAuthCredential)
                    and self.refreshes(cred.provider)
                    and not cred.is_usable(self.clock(), self.margin_ms + lookahead_ms)
                ):
                    # Still usable, so the source would hand it back unrefreshed: force the
                    # refresh unless someone else has already replaced this access token.
                    await self.fresh(agent, view, rejected_access=cred.access.reveal())
                    done += 1
            except Exception as exc:
                log.warning(
                    "background_refresh_failed",
                    agent=agent,
                    profile=profile_id,
                    code=getattr(exc, "code", type(exc).__name__),
                )
        return done

    async def run(self, interval_s: float) -> None:
        lookahead_ms = int(interval_s * 2000)
        while True:
            await anyio.sleep(interval_s)
            await self.refresh_due(lookahead_ms)
