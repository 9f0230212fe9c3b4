"""``serve``: says what it serves, wires the store, the clients, the refresher and one app per
listener, binds every socket before serving, and runs them all in one event loop until
SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib
import gc
import signal
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

import anyio
import httpx
import uvicorn

from sidecar.auth import hints
from sidecar.auth.copilot import CopilotApis
from sidecar.auth.credentials import CredentialResolver
from sidecar.auth.outcomes import Outcomes
from sidecar.auth.refresh import CALL_TIMEOUT_S, AuthLookup, Refresher
from sidecar.config import Listener, Settings
from sidecar.errors import ConfigError, SidecarError
from sidecar.log import get_logger
from sidecar.providers.catalog import ProviderSpec
from sidecar.providers.flows import provider_auth
from sidecar.providers.grants import ProviderAuth
from sidecar.providers.ids import auth_provider_id
from sidecar.proxy.agents import KnownAgents, Listing
from sidecar.proxy.app import create_app, create_ops
from sidecar.proxy.forward import Proxy
from sidecar.proxy.ledger import Ledger
from sidecar.proxy.metrics import Metrics
from sidecar.proxy.protocol import listener_protocol
from sidecar.proxy.transport import Upstream
from sidecar.sources.choice import open_source
from sidecar.sources.fleet.composite import with_fleet
from sidecar.sources.interface import CredentialSource
from sidecar.sources.openclaw.clock import now_ms
from sidecar.sources.openclaw.layout import Layout, resolve_home
from sidecar.sources.openclaw_json.store import JsonStore
from sidecar.sources.openclaw_sqlite.store import SqliteStore
from sidecar.ui.app import create_ui
from sidecar.usage.db import database_path
from sidecar.usage.recorder import NO_USAGE, Recorder, retention_ms

YOUNG_COLLECTION_THRESHOLD: Final = 10_000

log = get_logger("sidecar.server")
KEEP_ALIVE_S = 75  # idle keep-alive connections, as nginx's default


def auth_lookup(
    providers: Mapping[str, ProviderSpec], environ: Mapping[str, str] | None = None
) -> AuthLookup:
    """How a stored login's provider (as the store spells it) is refreshed; client ids and
    secrets that OpenClaw reads from the environment are read from ``environ``."""
    env = dict(environ or {})

    def auth_for(provider: str) -> ProviderAuth | None:
        wanted = auth_provider_id(provider)
        # 2026.6.1 renamed Codex logins openai:*; they refresh at the Codex endpoint.
        spec = providers.get("openai-codex" if wanted == "openai" else wanted)
        return None if spec is None else provider_auth(spec, env)

    return auth_for


def agent_listing(source: CredentialSource) -> Listing:
    """Every agent that exists, as the source lists them (``CredentialSource.all_agents``)."""
    return source.all_agents


def open_store(settings: Settings, environ: Mapping[str, str]) -> JsonStore | SqliteStore:
    """The install's credential source: the JSON store, or OpenClaw's SQLite store (era D)."""
    layout = Layout.from_env(environ, state_dir=settings.state_dir)
    return open_source(layout, home=resolve_home(environ), clock=now_ms)


def usage_recorder(
    settings: Settings, environ: Mapping[str, str], metrics: Metrics
) -> Recorder | None:
    """The recorder of requests, tokens and windows, unless ``[usage] enabled = false``."""
    if not settings.usage.enabled:
        return None
    return Recorder(
        database_path(settings.usage.dir, environ),
        clock=now_ms,
        retention_ms=retention_ms(settings.usage.retention_days),
        metrics=metrics,
    )


def refresh_listener(
    metrics: Metrics, recorder: Recorder | None
) -> Callable[[str, str, str], None]:
    """What a refresh's outcome goes to: the metrics, and the usage database's events."""

    def on_refresh(provider: str, profile_id: str, outcome: str) -> None:
        metrics.on_refresh(provider, profile_id, outcome)
        if recorder is not None:
            recorder.event(provider, profile_id, outcome)

    return on_refresh


def bind(listener: Listener) -> socket.socket:
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every keep-alive response waits ~40 ms for delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((listener.host, listener.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {listener.host}:{listener.port}: {exc.strerror}"
        ) from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """One uvicorn server among several: signals are handled once, by ``serve``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def announce(
    store: JsonStore | SqliteStore, settings: Settings, where: Sequence[str]
) -> None:
    """Says what is about to be served, before any listener: the ``serving`` line, and a
    warning with the command to run when the state dir is missing or holds no profile."""
    state_dir = store.layout.state_dir
    agents = store.agents()
    counts: dict[str, int] = {}
    for agent in agents:
        try:
            view = await store.view(agent)
        except SidecarError as exc:
            log.warning("store_unreadable", agent=agent, code=exc.code, reason=exc.message)
            continue
        counts[agent] = sum(1 for v in view.profiles.values() if v.owner == agent)
    log.info(
        "serving",
        state_dir=str(state_dir),
        layout="sqlite" if isinstance(store, SqliteStore) else "json",
        config=None if settings.config_file is None else str(settings.config_file),
        profiles=counts,
        default_agent=settings.default_agent,
        listeners=[
            {"address": f"{lst.host}:{lst.port}", "agents": [lst.agent] if lst.agent else agents}
            for lst in settings.listeners
        ],
        **({"fleet": settings.fleet.prefix} if settings.fleet else {}),
    )
    if not state_dir.is_dir():
        log.warning("state_dir_missing", state_dir=str(state_dir), hint=hints.first_profile(where))
    elif not any(counts.values()) and settings.fleet is None:  # a fleet's are not counted
        log.warning("no_profiles", state_dir=str(state_dir), hint=hints.first_profile(where))


async def serve(settings: Settings, environ: Mapping[str, str]) -> None:
    store = open_store(settings, environ)
    where = hints.install_args(settings.config_file, store.layout.state_dir, environ)
    await announce(store, settings, where)
    source = with_fleet(store, settings)  # plus the fleet's Redis when [fleet] is configured
    sockets = [bind(listener) for listener in settings.listeners]
    metrics = Metrics()
    recorder = usage_recorder(settings, environ, metrics)
    if recorder is not None:
        await recorder.start()
        log.info(
            "usage_recording",
            path=str(recorder.path),
            retention_days=settings.usage.retention_days,
        )
    async with (
        Upstream(settings.upstream, environ=dict(environ)) as upstream,
        httpx.AsyncClient(timeout=httpx.Timeout(CALL_TIMEOUT_S, connect=10.0)) as tokens,
    ):
        refresher = Refresher(
            source,
            tokens,
            auth_lookup(settings.providers, environ),
            clock=now_ms,
            timeout_s=settings.refresh.timeout_seconds,
            margin_ms=int(settings.refresh.margin_seconds * 1000),
            on_refresh=refresh_listener(metrics, recorder),
        )
        outcomes = Outcomes(source, clock=now_ms)
        copilot = CopilotApis(
            tokens, environ=environ, clock=now_ms, timeout_s=settings.refresh.timeout_seconds
        )
        credentials = CredentialResolver(
            refresher,
            environ=environ,
            home=store.home,
            secret_providers=lambda: store.config().secret_providers,
            clock=now_ms,
            hint_args=where,
            copilot=copilot,
        )
        agents = KnownAgents(agent_listing(source))
        ledger = Ledger()  # one for every listener: /metrics on any of them counts them all
        servers = []
        for listener in settings.listeners:
            proxy = Proxy(
                settings,
                listener,
                source=source,
                agents=agents,
                credentials=credentials,
                outcomes=outcomes,
                upstream=upstream,
                metrics=metrics,
                clock=now_ms,
                hint_args=where,
                usage=recorder or NO_USAGE,
                ledger=ledger,
            )
            ui = create_ui(
                listener,
                source=source,
                outcomes=outcomes,
                database=None if recorder is None else recorder.path,
                clock=now_ms,
            )
            config = uvicorn.Config(
                create_app(proxy, create_ops(proxy, metrics), ui),
                log_config=None,
                access_log=False,
                lifespan="off",
                ws="none",
                server_header=False,
                date_header=False,  # the upstream's Date passes through; one is enough
                proxy_headers=False,  # X-Forwarded-* from a caller never mean anything here
                # httptools, keeping a target that is not a path whole (so it is refused),
                # with the listener's connection cap and request-head deadline ([clients]).
                http=listener_protocol(settings.clients, metrics),
                ssl_certfile=listener.tls_cert_file,
                ssl_keyfile=listener.tls_key_file,
                timeout_graceful_shutdown=5,
                # Longer than any client keeps an idle connection (httpx 5 s, aiohttp 15 s): the
                # client closes first, and never reuses one the sidecar is closing (a ReadError).
                timeout_keep_alive=KEEP_ALIVE_S,
            )
            servers.append(_Server(config))
        # Everything made so far (modules, the catalog, settings, apps) lives as long as the
        # process: out of the collector's reach, a full collection walks only what requests
        # made, instead of ~200k objects in tens of milliseconds (the p99 at one connection).
        gc.freeze()
        # A young collection walks every tracked object made since the last one that is still
        # alive; at the default 700, that was every ~15 requests, mostly walking the requests
        # in flight. At 10,000 the collector runs ~100 times less often for the same walk
        # (bench/, 32 connections: ~0.5 s of 10 s in collections before, ~0.1 s after).
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 10, 10)
        async with refresher.running(), anyio.create_task_group() as background:
            background.start_soon(refresher.run, settings.refresh.background_interval_seconds)
            background.start_soon(outcomes.run)
            if recorder is not None:
                background.start_soon(recorder.run)
            async with anyio.create_task_group() as front:
                for server, sock, listener in zip(
                    servers, sockets, settings.listeners, strict=True
                ):
                    front.start_soon(server.serve, [sock])
                    log.info(
                        "listening",
                        host=listener.host,
                        port=listener.port,
                        agent=listener.agent,
                        tls=listener.tls_cert_file is not None,
                        caller_auth=listener.client_token is not None,
                    )
                front.start_soon(_stop_on_signal, servers, front.cancel_scope)
            ledger.settle()  # the last requests' lines, metrics and usage rows
            await outcomes.flush()
            background.cancel_scope.cancel()
        if recorder is not None:  # after its task: nothing writes after this
            await recorder.flush()
            recorder.close()
    log.info("stopped", state_dir=str(store.layout.state_dir))


async def _stop_on_signal(servers: list[_Server], scope: anyio.CancelScope) -> None:
    """Graceful stop: every server finishes its requests (uvicorn's own grace period)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("stopping", signal=signal.Signals(signum).name)
            break
    for server in servers:
        server.should_exit = True


def state_dir_of(settings: Settings, environ: Mapping[str, str]) -> Path:
    return Layout.from_env(environ, state_dir=settings.state_dir).state_dir
