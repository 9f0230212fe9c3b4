"""The proxy's I/O: route, pick a profile, inject its credential, stream both ways.

Decisions (routing, header rules, order, error bodies) are pure functions elsewhere; this module
calls them in order and does the sending. One line is logged per request.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import httpx
import yarl
from starlette.types import Message, Receive, Scope, Send

from sidecar.auth import hints
from sidecar.auth.credentials import Credential, CredentialResolver
from sidecar.auth.outcomes import Outcomes
from sidecar.config import Listener, Settings
from sidecar.errors import (
    CallerUnauthorized,
    NoProfile,
    ProfilesCooling,
    RefreshError,
    SidecarError,
    UpgradeUnsupported,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from sidecar.log import get_logger
from sidecar.providers.catalog import ProviderSpec
from sidecar.providers.endpoints import base_url_for
from sidecar.providers.ids import profiles_of, stored_spellings
from sidecar.providers.injection import credential_injection
from sidecar.providers.quirks import reads_body
from sidecar.proxy import headers as rules
from sidecar.proxy.agents import KnownAgents
from sidecar.proxy.aiohttp_transport import PooledStream
from sidecar.proxy.body import HELD_BODY, ClientDisconnected, RequestBody
from sidecar.proxy.ledger import Ledger
from sidecar.proxy.metrics import Metrics
from sidecar.proxy.problems import error_body
from sidecar.proxy.routing import Route, codex_path, resolve_route, upstream_url
from sidecar.proxy.scope import CODEX, is_codex_login, is_inherited, may_carry, own_view
from sidecar.proxy.transport import Upstream, is_timeout
from sidecar.proxy.verdict import Verdict, judge
from sidecar.sources.interface import CredentialSource
from sidecar.sources.openclaw import usage
from sidecar.sources.openclaw.layout import DEFAULT_AGENT
from sidecar.sources.openclaw.order import (
    by_availability,
    is_model_scoped,
    order_changes_at,
    ranked_profiles,
    unusable_until,
)
from sidecar.sources.openclaw.usage import Failure
from sidecar.sources.openclaw.views import AgentView, ProfileView
from sidecar.usage.recorder import NO_USAGE, UsageSink
from sidecar.usage.tap import NO_TAP, Tap

log = get_logger("sidecar.proxy")


# How long a client that left mid-answer may have had all of it: the upstream's end often trails
# its last event (the OpenAI SDK closes the connection at `data: [DONE]`, before the end of the
# chunked body). The upstream request runs on this long at most before it is cancelled.
END_GRACE_S = 1.0


@dataclass
class Exchange:
    """What one request turned out to be, for its log line and metrics."""

    method: str
    path: str = "-"  # as requested, never with the query
    started: float = field(default_factory=time.perf_counter)
    agent: str = "-"
    provider: str = "-"
    profile: str | None = None
    owner: str | None = None  # whose store holds the profile used (``fleet:<agent>``: the fleet)
    status: int = 0
    error: str | None = None
    response_started: bool = False
    response_done: bool = False
    credential_s: float | None = None  # getting the credential (waiting on a refresh included)
    body_sent: int = 0
    body_expected: int | None = None  # the answer's length when its framing says it
    upstream_ended: anyio.Event = field(default_factory=anyio.Event)  # its whole body relayed
    client_left_after: int | None = None  # body bytes sent when the client was seen leaving
    usage: Tap = NO_TAP  # reads tokens from the answer as it is relayed (sidecar/usage/)
    tried: list[dict[str, object]] = field(default_factory=list)  # profiles left, and why

    def client_has_all(self) -> bool:
        return self.body_expected is not None and self.body_sent >= self.body_expected

    def left_early(self) -> bool:
        """Whether the client went away missing part of the answer: not once it had every
        byte its framing announced, and not just before an upstream end that added nothing."""
        left = self.client_left_after
        if left is None or (self.body_expected is not None and left >= self.body_expected):
            return False
        return not (self.upstream_ended.is_set() and self.body_sent == left)


NEVER = 2**62


@dataclass(frozen=True)
class Ranked:
    """A route's profiles in OpenClaw's order, for one view, until the clock changes it."""

    view: AgentView
    profiles: list[ProfileView]
    until: int  # epoch ms
    model_scoped: bool  # a window of one of them holds for one model only


class Proxy:
    def __init__(
        self,
        settings: Settings,
        listener: Listener,
        *,
        source: CredentialSource,
        agents: KnownAgents,
        credentials: CredentialResolver,
        outcomes: Outcomes,
        upstream: Upstream,
        metrics: Metrics,
        clock: Callable[[], int],
        hint_args: Sequence[str] = (),
        usage: UsageSink = NO_USAGE,
        ledger: Ledger | None = None,
    ) -> None:
        self.settings = settings
        self.listener = listener
        self.source = source
        self.agents = agents
        self.credentials = credentials
        self.outcomes = outcomes
        self.upstream = upstream
        self.metrics = metrics
        self.clock = clock
        self.hint_args = tuple(hint_args)  # --config / --state-dir for the commands hints name
        self.usage = usage
        self.ledger = ledger or Ledger()  # serve's listeners share one: /metrics settles all
        self.codex = settings.providers.get(CODEX)
        self._rank_cache: dict[tuple[str, str], Ranked] = {}
        self._own_views: dict[str, tuple[AgentView, AgentView]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ex = Exchange(method=scope["method"], path=_path_of(scope))
        body = RequestBody(receive, self.settings.refresh.replay_body_limit_bytes)
        self.metrics.in_flight.inc()
        try:
            await self._handle(scope, body, receive, send, ex)
        except SidecarError as exc:
            await self._fail(send, exc, ex, scope)
        except ClientDisconnected:
            ex.status, ex.error = 499, "client_disconnected"
        except Exception:
            log.exception("request_failed", agent=ex.agent, provider=ex.provider)
            await self._fail(
                send, SidecarError("the sidecar failed unexpectedly; see its log"), ex, scope
            )
        finally:
            self.metrics.in_flight.dec()
            self.ledger.add(self._account, ex, time.perf_counter() - ex.started)

    async def _handle(
        self, scope: Scope, body: RequestBody, receive: Receive, send: Send, ex: Exchange
    ) -> None:
        raw = scope["headers"]
        self._check_caller(raw)
        if any(n.lower() == b"upgrade" and b"websocket" in v.lower() for n, v in raw):
            # Codex and OpenClaw try a websocket first and fall back to HTTP on a 426.
            raise UpgradeUnsupported("websocket upgrades are not proxied; use plain HTTP")
        route = self._route(scope)
        ex.provider = route.provider
        # Before anything is read or kept for it: an agent that does not exist leaves no trace.
        ex.agent = await self.agents.check(route.agent)
        view = self.listener_view(await self.source.view(route.agent))
        response = await self._answer(scope, route, view, body, ex)
        await self._stream_back(response, receive, send, body, ex)

    async def _answer(
        self, scope: Scope, route: Route, view: AgentView, body: RequestBody, ex: Exchange
    ) -> httpx.Response:
        """The answer to relay: the first profile's, or, when it failed in a way another account
        may not share (a rate or usage limit, an overload, billing) before a byte went to the
        client, the next usable profile's, until one succeeds; the last failure when none is
        left. A pinned profile never moves, and a body over the replay limit is not sent twice."""
        candidates = self._candidates(route, view, await self._model_for(route, view, scope, body))
        length = rules.body_length(scope["headers"])
        if length is not None and (
            length <= HELD_BODY or reads_body(self.settings.providers[route.provider])
        ):
            await body.hold(length)  # a small body, or one its provider's quirks read
        content = await self._content(scope["headers"], body)
        failed: tuple[httpx.Response, ProfileView, Verdict] | None = None
        while True:
            try:
                cred, chosen, spec = await self._credential(
                    route, candidates, view, ex, usable_only=failed is not None
                )
            except SidecarError:
                if failed is None:
                    raise
                return failed[0]  # no other profile could be used: the last failure stands
            if failed is not None:
                self._left(failed[1], failed[2], ex)
                await failed[0].aclose()
            response = await self._try(scope, route, cred, chosen, spec, content, body, ex)
            response, verdict = await judge(response, spec.name, scope["method"], self.clock())
            # An OAuth token refused but not refreshed (the body was too large to replay) says
            # nothing of the login yet: the next request refreshes it.
            if not (verdict.status == 401 and cred.type == "oauth" and not body.replayable):
                self._record(chosen, verdict, view, body, ex)
            if not (verdict.fails_over and await self._may_fail_over(route, chosen, body, ex)):
                return response
            failed, content = (response, chosen, verdict), body.kept()

    async def _try(
        self,
        scope: Scope,
        route: Route,
        cred: Credential,
        chosen: ProfileView,
        spec: ProviderSpec,
        content: Any,
        body: RequestBody,
        ex: Exchange,
    ) -> httpx.Response:
        """One profile's request, refreshed and replayed once if its OAuth token was refused."""
        path = route.upstream_path
        if spec.kind == "openai-codex":
            path = codex_path(spec.base_url, path)
        url = upstream_url(
            spec.base_url, path, scope.get("query_string", b""), provider=route.provider
        )
        response = await self._send(scope, url, spec, cred, content)
        if response.status_code == 401 and cred.type == "oauth" and cred.refreshable:
            response = await self._replay(scope, url, spec, cred, chosen, body, response, ex)
        return response

    async def _may_fail_over(
        self, route: Route, chosen: ProfileView, body: RequestBody, ex: Exchange
    ) -> bool:
        if route.profile_id is not None:
            return False  # a pinned request never moves to another profile
        await body.drain()
        if not body.replayable:
            log.warning(
                "failover_skipped",
                profile=chosen.id,
                agent=ex.agent,
                reason="request body larger than refresh.replay_body_limit_bytes",
            )
        return body.replayable

    def _left(self, chosen: ProfileView, verdict: Verdict, ex: Exchange) -> None:
        """``chosen`` failed over to the next profile: on the log line, and counted."""
        reason = verdict.reason or "-"
        ex.tried.append({"profile": chosen.id, "status": verdict.status, "reason": reason})
        self.metrics.failovers.labels(ex.agent, ex.provider, reason).inc()

    @staticmethod
    async def _content(raw: list[tuple[bytes, bytes]], body: RequestBody) -> Any:
        """The body to send: streamed when the client sent one; else read (it is empty) so
        httpx adds no chunked framing to a GET (RFC 9112 §6.3)."""
        if body.started:  # read already, for its model: sent from what was kept
            return body.kept()
        if rules.declares_body(raw):
            return body.stream()
        await body.drain()
        return body.kept()

    def _check_caller(self, raw: list[tuple[bytes, bytes]]) -> None:
        expected = self.listener.client_token
        if expected is not None and not rules.tokens_match(
            rules.client_token_from(raw), expected.reveal()
        ):
            raise CallerUnauthorized(
                f"this port ({self.listener.port}) requires its client token: send it as the "
                "API key (Authorization: Bearer, x-api-key) or as X-OpenClaw-Token"
            )

    def _route(self, scope: Scope) -> Route:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in scope["headers"]
            if k.lower().startswith(rules.OPENCLAW_PREFIX)
        }
        return resolve_route(
            raw_path,
            headers,
            bound_agent=self.listener.agent,
            default_agent=self.settings.default_agent,
            providers=self.settings.providers.keys(),
        )

    # --- choosing the profile ---------------------------------------------------------------------

    def listener_view(self, view: AgentView) -> AgentView:
        """The part of ``view`` this listener may use: without main's profiles unless it reads
        through (the same object while ``view`` is, so the rank cache keeps hitting)."""
        if self.listener.reads_through:
            return view
        cached = self._own_views.get(view.agent)
        if cached is None or cached[0] is not view:
            cached = self._own_views[view.agent] = (view, own_view(view))
        return cached[1]

    def _candidates(
        self, route: Route, view: AgentView, model: str | None
    ) -> Iterator[tuple[ProfileView, int]]:
        """The profiles to try for a request for ``model``, each with when it may be used
        again (0: now)."""
        if route.profile_id is not None:
            pinned = view.get(route.profile_id)
            if pinned is None and view.unreadable is not None:
                raise view.unreadable
            if pinned is None or not self._serves(route.provider, pinned, pinned=True):
                raise NoProfile(
                    f"agent {route.agent!r} has no {route.provider} profile "
                    f"{route.profile_id!r}; {self._add_hint(route)}"
                    f"{self._own_only_note(route.agent)}"
                )
            return iter([(pinned, 0)])
        now = self.clock()

        def until(v: ProfileView) -> int:
            # The store's windows, and those of failures not yet in the store's view.
            stored = unusable_until(view, v, model, now)
            return max(stored, self.outcomes.cooling_until(v.owner, v.id, model))

        # Lazily: the first usable profile is found without looking at the others.
        return by_availability(self._ranked(route, view).profiles, now, until)

    def _ranked(self, route: Route, view: AgentView) -> Ranked:
        """The route's profiles in OpenClaw's order, kept as long as the view is the same
        object (the store hands out a new one when its files change) and no OAuth or token
        expiry has changed the order since."""
        key = (route.agent, route.provider)
        now = self.clock()
        cached = self._rank_cache.get(key)
        if cached is not None and cached.view is view and now < cached.until:
            return cached
        spec = self.settings.providers[route.provider]
        providers = stored_spellings(profiles_of(spec), _spellings(view))
        if route.provider == CODEX:
            providers.append("openai")  # 2026.6.1+ stores ChatGPT/Codex logins as openai
        profiles = [
            v
            for v in ranked_profiles(view, providers, now)
            if self._serves(route.provider, v, pinned=False)
        ]
        changes = order_changes_at(view, providers, now)
        ranked = Ranked(view, profiles, changes or NEVER, is_model_scoped(view, profiles))
        self._rank_cache[key] = ranked
        return ranked

    async def _model_for(
        self, route: Route, view: AgentView, scope: Scope, body: RequestBody
    ) -> str | None:
        """The model the request asks for, when a cooldown held for one model only could
        decide the profile: read from a body that fits the replay limit (it is then sent from
        what was kept). Else None: every window counts, as OpenClaw has it without a model."""
        if route.profile_id is not None:
            return None
        if not (self._ranked(route, view).model_scoped or self.outcomes.is_model_scoped()):
            return None
        length = rules.body_length(scope["headers"])
        if length is None or length > self.settings.refresh.replay_body_limit_bytes:
            return None
        await body.drain()
        return body.model()

    def _serves(self, provider: str, view: ProfileView, *, pinned: bool) -> bool:
        """Whether ``view`` may answer a request for ``provider``: only if the upstream it would
        be sent to takes its credentials (provider ids compared as OpenClaw compares them, so a
        ``z-ai`` profile serves ``zai``). Codex logins renamed ``openai:*`` in 2026.6.1 serve the
        Codex route, and the plain ``openai`` route only when pinned."""
        profile = view.profile
        if provider == "openai" and is_codex_login(profile.provider, profile.type) and not pinned:
            return False
        upstream = self._upstream_for(provider, profile.provider, profile.type)
        return may_carry(upstream, profile.provider, profile.type)

    def _own_only_note(self, agent: str) -> str:
        if self.listener.reads_through or agent == DEFAULT_AGENT:
            return ""
        return (
            f" (port {self.listener.port} serves only the agent's own profiles, not those it "
            "would inherit from main; `inherit = true` on the listener changes that)"
        )

    async def _credential(
        self,
        route: Route,
        candidates: Iterator[tuple[ProfileView, int]],
        view: AgentView,
        ex: Exchange,
        *,
        usable_only: bool = False,
    ) -> tuple[Credential, ProfileView, ProviderSpec]:
        """The next candidate whose credential can be had (``usable_only``: none in cooldown)."""
        asked = time.perf_counter()
        try:
            return await self._next_credential(route, candidates, view, ex, usable_only)
        finally:
            ex.credential_s = (ex.credential_s or 0.0) + time.perf_counter() - asked

    async def _next_credential(
        self,
        route: Route,
        candidates: Iterator[tuple[ProfileView, int]],
        view: AgentView,
        ex: Exchange,
        usable_only: bool,
    ) -> tuple[Credential, ProfileView, ProviderSpec]:
        last: SidecarError | None = None
        for chosen, until in candidates:
            if until > 0:  # this one and the rest are cooling down
                if usable_only or last is not None:
                    break
                raise self._cooling(route, chosen, until, view)
            try:
                cred = await self.credentials.resolve(route.agent, chosen)
            except (RefreshError, NoProfile) as exc:
                last = exc
                self._record_refresh_failure(chosen, exc, view)
                ex.tried.append({"profile": chosen.id, "reason": exc.code})
                continue
            ex.profile, ex.owner = chosen.id, chosen.owner
            return cred, chosen, self._spec_for(route.provider, cred, chosen)
        if last is not None:
            raise last
        if view.unreadable is not None:
            raise view.unreadable  # the profile may be among those that could not be read
        raise NoProfile(
            f"agent {route.agent!r} has no {route.provider} profile; {self._add_hint(route)}"
            f"{self._own_only_note(route.agent)}"
        )

    def _record_refresh_failure(
        self, chosen: ProfileView, exc: SidecarError, view: AgentView
    ) -> None:
        """A refresh token refused is the login's own failure (auth_permanent, as OpenClaw
        2026.9.6 classifies a rejected OAuth refresh); a token endpoint down or slow is not,
        since the provider never saw a request (its rule: no timeout before the provider
        started)."""
        if exc.status != 401:
            return
        current = view.state.usage.get(chosen.id)
        failure = Failure("auth_permanent")
        provider = chosen.profile.provider
        self.outcomes.failure(chosen.owner, provider, chosen.id, failure, current)

    def _cooling(
        self, route: Route, soonest: ProfileView, until: int, view: AgentView
    ) -> ProfilesCooling:
        """Every usable profile rests: a 429 whose Retry-After is the soonest one's end, rather
        than a request the provider would refuse again; what to do depends on why it rests
        (OpenClaw's buildAuthProfileUnusableHint)."""
        now = self.clock()
        wait_s = max(1, -(-(until - now) // 1000))
        stats = self.outcomes.unwritten(soonest.owner, soonest.id) or view.state.usage.get(
            soonest.id
        )
        why = usage.resting_reason(stats, now) or "a failure"
        spec = self.settings.providers[route.provider]
        if why in ("auth", "auth_permanent", "session_expired"):
            todo = "sign in again or replace it: " + hints.add_profile(
                spec, route.agent, profile_id=soonest.id, where=self.hint_args
            ).removeprefix("add one with ")
        elif why == "billing":
            todo = f"top up the account's credits, or {self._add_hint(route)}"
        else:
            todo = f"wait, or {self._add_hint(route)}"
        return ProfilesCooling(
            f"every {route.provider} profile agent {route.agent!r} may use is resting; the "
            f"soonest, {soonest.id} ({why}), is usable again in {wait_s} s; {todo} "
            f"(`openclaw-sidecar cooldowns` lists them)",
            retry_after_s=wait_s,
        )

    def _add_hint(self, route: Route) -> str:
        spec = self.settings.providers[route.provider]
        return hints.add_profile(
            spec, route.agent, profile_id=route.profile_id, where=self.hint_args
        )

    def _spec_for(self, route: str, cred: Credential, chosen: ProfileView) -> ProviderSpec:
        """The upstream a chosen profile goes to, with a per-user endpoint filled in: the
        profile's (where OpenClaw keeps it), else the config's."""
        spec = self._upstream_for(route, cred.provider, cred.type)
        if cred.base_url is not None:  # GitHub Copilot's, found for the credential
            return replace(spec, base_url=cred.base_url)
        if spec.endpoint is None and spec.oauth_base_url is None:
            return spec
        return replace(spec, base_url=base_url_for(spec, chosen.profile.raw, chosen.id))

    def _upstream_for(self, route: str, provider: str, credential_type: str) -> ProviderSpec:
        """Whose base URL a profile of ``provider`` would go to on the ``route`` provider's path:
        the route's, except a Codex login on the ``openai`` or Codex path goes to Codex."""
        codex_route = route in ("openai", CODEX)
        if codex_route and is_codex_login(provider, credential_type) and self.codex is not None:
            return self.codex
        return self.settings.providers[route]

    # --- sending ---------------------------------------------------------------------------------

    async def _send(
        self, scope: Scope, url: yarl.URL, spec: ProviderSpec, cred: Credential, content: Any
    ) -> httpx.Response:
        if not may_carry(spec, cred.provider, cred.type):
            # The last word, whatever chose the profile: every upstream request (first send and
            # replay) is built here, and a credential goes to its own provider's base URL only.
            raise NoProfile(
                f"profile {cred.profile_id} is a {cred.provider} credential and is never sent "
                f"to {spec.name}; name a {spec.name} profile"
            )
        held = content if isinstance(content, bytes) else None
        injection = credential_injection(
            spec,
            cred.type,
            cred.secret.reveal(),
            account_id=cred.account_id,
            url=str(url),
            body=held,
        )
        length = rules.body_length(scope["headers"])  # framed by the sidecar, RFC 9112 §6
        if injection.body is not None:  # a provider's quirk wrote the body (Comfy Cloud's key)
            content, length = injection.body, len(injection.body)
        try:
            return await self.upstream.send_parts(
                scope["method"],
                url,
                rules.outbound_request_headers(scope["headers"], injection),
                content,
                length=length,
            )
        except httpx.TransportError as exc:
            if isinstance(exc.__context__, ClientDisconnected):
                raise ClientDisconnected from exc
            if is_timeout(exc):
                raise UpstreamTimeout(f"{spec.name} did not answer in time") from exc
            raise UpstreamUnavailable(
                f"cannot reach {spec.name} at {spec.base_url} ({_reason(exc)})"
            ) from exc

    async def _replay(
        self,
        scope: Scope,
        url: yarl.URL,
        spec: ProviderSpec,
        cred: Credential,
        chosen: ProfileView,
        body: RequestBody,
        response: httpx.Response,
        ex: Exchange,
    ) -> httpx.Response:
        """An OAuth token the upstream refused: refresh once, and replay once if we can."""
        await body.drain()
        if not body.replayable:
            log.warning(
                "replay_skipped",
                profile=chosen.id,
                agent=ex.agent,
                reason="request body larger than refresh.replay_body_limit_bytes",
            )
            return response
        await response.aclose()
        fresh = await self.credentials.resolve(
            ex.agent, chosen, rejected_access=cred.secret.reveal()
        )
        log.info("request_replayed", profile=chosen.id, agent=ex.agent)
        return await self._send(scope, url, spec, fresh, body.kept())

    def _record(
        self,
        chosen: ProfileView,
        verdict: Verdict,
        view: AgentView,
        body: RequestBody,
        ex: Exchange,
    ) -> None:
        """What the answer taught about the profile: a success, a failure of its own (an
        overload, a server error or a malformed request is not), or nothing."""
        profile = chosen.profile
        failure = verdict.failure_of(body.model()) if verdict.failure else None
        if failure is not None:
            current = view.state.usage.get(chosen.id)
            self.outcomes.failure(
                chosen.owner, profile.provider, chosen.id, failure, current, verdict.at_ms
            )
        elif verdict.success:
            inherited = is_inherited(chosen, ex.agent)
            self.outcomes.success(chosen.owner, profile.provider, chosen.id, inherited=inherited)

    async def _stream_back(
        self,
        response: httpx.Response,
        receive: Receive,
        send: Send,
        body: RequestBody,
        ex: Exchange,
    ) -> None:
        ex.status = response.status_code
        raw = response.headers.raw  # a list made per call: made once here
        length = _content_length(raw)
        ex.body_expected = _body_length(response.status_code, length, ex.method)
        ex.usage = self.usage.observe(raw, body)
        try:
            if body.complete and _may_stream(length):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope, ex)
                    await _relay_all(response, raw, send, ex)
                    tg.cancel_scope.cancel()
            else:
                await _relay_all(response, raw, send, ex)
        finally:
            await response.aclose()
        if ex.left_early() and ex.error is None:
            ex.error = "client_disconnected"

    # --- errors and accounting --------------------------------------------------------------------

    async def _fail(self, send: Send, exc: SidecarError, ex: Exchange, scope: Scope) -> None:
        ex.status, ex.error = exc.status, exc.code
        self.metrics.errors.labels(exc.code).inc()
        if ex.response_started:
            return
        spec = self.settings.providers.get(ex.provider) or self._guess_provider(scope)
        status, headers, payload = error_body(
            exc, "anthropic" if spec and spec.error_style == "anthropic" else "openai"
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _guess_provider(self, scope: Scope) -> ProviderSpec | None:
        parts = scope["path"].split("/")
        for part in parts[1:4]:
            spec = self.settings.providers.get(part.split("@")[0])
            if spec is not None:
                return spec
        return None

    def _account(self, ex: Exchange, seconds: float) -> None:
        """The request's metrics, usage row and log line (``ledger``: once the loop is free)."""
        self.metrics.observe(
            ex.agent, ex.provider, ex.status, seconds, ex.credential_s, ex.owner or "-"
        )
        self.usage.record(ex, seconds)
        log.info(
            "request_completed",
            method=ex.method,
            path=ex.path,
            agent=ex.agent,
            provider=ex.provider,
            profile=ex.profile,
            owner=ex.owner or "-",
            **({"tried": ex.tried} if ex.tried else {}),
            status=ex.status,
            error=ex.error,
            ms=round(seconds * 1000, 2),
            credential_ms=None if ex.credential_s is None else round(ex.credential_s * 1000, 2),
        )


def _spellings(view: AgentView) -> list[str]:
    """Every provider id the agent's profiles and orders are stored under."""
    stored = {v.profile.provider for v in view.profiles.values()}
    return sorted(stored | set(view.state.order) | set(view.config_order))


def _reason(exc: httpx.TransportError) -> str:
    return type(exc.__cause__ or exc).__name__


def _path_of(scope: Scope) -> str:
    """The path as the client sent it (percent-encoding kept), for the log: ASGI's raw_path
    has no query, and anything after a '?' is cut anyway, since a query may hold a key."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    return raw.partition(b"?")[0].decode("latin-1")


def _content_length(raw: Sequence[tuple[bytes, bytes]]) -> int | None:
    """The answer's Content-Length, when it has a valid one (aiohttp has checked its framing)."""
    for name, value in raw:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _body_length(status: int, length: int | None, method: str) -> int | None:
    """How many body bytes the client is to get, when the framing says it (RFC 9112 §6.3):
    none for HEAD, 1xx, 204 and 304, else the Content-Length; None for a chunked body."""
    if method == "HEAD" or status < 200 or status in (204, 304):
        return 0
    return length


SMALL_BODY = 64 * 1024


def _may_stream(length: int | None) -> bool:
    """Whether the answer may take long enough that a client leaving midway must cancel it
    (SSE and other bodies without a small Content-Length). A small body with a length is sent
    at once, and a disconnect then shows as a failed send: no watcher task is needed."""
    return length is None or length > SMALL_BODY


async def _relay_all(
    response: httpx.Response, raw: Sequence[tuple[bytes, bytes]], send: Send, ex: Exchange
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": rules.response_headers(raw),
        }
    )
    ex.response_started = True
    await _relay(response, send, ex)


async def _relay(response: httpx.Response, send: Send, ex: Exchange) -> None:
    """Upstream bytes to the client as they arrive; an upstream failing mid-stream ends the
    client's stream cleanly instead of tearing the connection."""
    try:
        async for chunk in _raw_chunks(response):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            ex.body_sent += len(chunk)
            ex.usage.feed(chunk)
        ex.upstream_ended.set()
    except httpx.HTTPError as exc:
        ex.error = "upstream_stream_failed"
        log.warning(
            "upstream_stream_failed",
            agent=ex.agent,
            provider=ex.provider,
            reason=type(exc).__name__,
        )
    # Marked done before the last send: uvicorn answers receive() with http.disconnect as soon
    # as the response completes, and the watcher must not take that for the client leaving and
    # cancel the very send that completes it (seen once in 5,000 requests: a truncated reply).
    ex.response_done = True
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _raw_chunks(response: httpx.Response) -> AsyncIterable[bytes]:
    """The answer's bytes as they come: from aiohttp's pooled stream itself when the answer
    is one (httpx's ``aiter_raw`` adds two generators and a chunker per chunk, and counts
    what nobody reads here), else through httpx."""
    stream = response.stream
    if isinstance(stream, PooledStream):
        return stream
    return response.aiter_raw()


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope, ex: Exchange) -> None:
    """A client gone mid-answer cancels the upstream request: at once if it had every byte,
    else once the upstream's end had END_GRACE_S to arrive (whether it missed anything is
    decided after, by ``Exchange.left_early``)."""
    message: Message = await receive()
    while message["type"] != "http.disconnect":
        message = await receive()
    if ex.response_done:  # uvicorn also reports a disconnect once the response is sent
        return
    ex.client_left_after = ex.body_sent
    if not ex.client_has_all():
        with anyio.move_on_after(END_GRACE_S):
            await ex.upstream_ended.wait()
    scope.cancel()
