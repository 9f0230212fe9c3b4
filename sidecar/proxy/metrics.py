"""Prometheus metrics in a registry of the app's own (no global state): requests, latency, the
wait for a credential, refreshes and upstream failures, by agent and provider; tokens by agent,
profile, provider and model, and each profile's windows (from ``sidecar.usage``'s recorder).
Labels never carry a secret, and only name agents that exist (an unknown one is refused before
it counts)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from sidecar.proxy.tallies import (
    CounterCell,
    Counters,
    Gauges,
    HistogramCell,
    Histograms,
    Level,
    Tallies,
)
from sidecar.usage.tokens import Tokens
from sidecar.usage.windows import Window

CONTENT_TYPE = CONTENT_TYPE_LATEST
TOKEN_KINDS = ("input", "output", "cached", "cache_write", "reasoning")
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Mostly microseconds (a cached token); a refresh takes one token call, 0.1 s to 30 s.
_WAIT_BUCKETS = (0.0005, 0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counters(
            "openclaw_sidecar_requests",
            "Requests answered, by agent, provider, status and the owner of the profile used "
            "(main for one inherited from it, fleet:<agent> for the fleet's, - for none)",
            ["agent", "provider", "status", "owner"],
        )
        self.latency = Histograms(
            "openclaw_sidecar_request_seconds",
            "Time to the end of the response (streams included), by agent and provider",
            ["agent", "provider"],
            _BUCKETS,
        )
        self.credential_wait = Histograms(
            "openclaw_sidecar_credential_seconds",
            "Time a request spent getting its credential, waiting on a refresh included",
            ["agent", "provider"],
            _WAIT_BUCKETS,
        )
        self.registry.register(Tallies(self.requests, self.latency, self.credential_wait))
        self.errors = Counter(
            "openclaw_sidecar_errors",
            "Sidecar-made error answers, by code",
            ["code"],
            registry=self.registry,
        )
        self.refreshes = Counter(
            "openclaw_sidecar_refreshes",
            "OAuth refresh outcomes, by provider",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.failovers = Counter(
            "openclaw_sidecar_failovers",
            "Requests sent again with the next profile, by agent, provider and why the profile "
            "before was left (rate_limit, overloaded, billing)",
            ["agent", "provider", "reason"],
            registry=self.registry,
        )
        self.in_flight = Level("openclaw_sidecar_in_flight", "Requests being proxied now")
        self.tokens = Counters(
            "openclaw_sidecar_tokens",
            "Tokens the answers reported (kind: input, output, cached, cache_write, reasoning),"
            " by agent, profile, provider and model; started from the usage database",
            ["agent", "profile", "provider", "model", "kind"],
        )
        self.window_utilization = Gauges(
            "openclaw_sidecar_window_utilization",
            "How much of a profile's rate-limit or subscription window is used (1 = all),"
            " as its latest answer said; owner is the agent whose store holds the profile",
            ["owner", "profile", "provider", "window"],
        )
        self.window_reset = Gauges(
            "openclaw_sidecar_window_reset_timestamp_seconds",
            "When a profile's window resets (Unix time), as its latest answer said",
            ["owner", "profile", "provider", "window"],
        )
        self.registry.register(
            Tallies(self.in_flight, self.tokens, self.window_utilization, self.window_reset)
        )
        self.usage_dropped = Counter(
            "openclaw_sidecar_usage_dropped",
            "Requests not recorded in the usage database (it could not be written for too long)",
            registry=self.registry,
        )
        # A series' cells, looked up once per label set (no new cardinality: the families
        # hold the same cells).
        self._request_cells: dict[tuple[str, str, int, str], tuple[CounterCell, HistogramCell]] = {}
        self._wait_cells: dict[tuple[str, str], HistogramCell] = {}
        self._token_cells: dict[tuple[str, str, str, str], tuple[CounterCell, ...]] = {}

    def observe(
        self,
        agent: str,
        provider: str,
        status: int,
        seconds: float,
        credential_s: float | None = None,
        owner: str = "-",
    ) -> None:
        key = (agent, provider, status, owner)
        cells = self._request_cells.get(key)
        if cells is None:
            cells = self._request_cells[key] = (
                self.requests.cell((agent, provider, str(status), owner)),
                self.latency.cell((agent, provider)),
            )
        cells[0].value += 1
        self.latency.observe(cells[1], seconds)
        if credential_s is not None:
            waits = self._wait_cells.get((agent, provider))
            if waits is None:  # made at the first wait: a series only where one happened
                waits = self._wait_cells[(agent, provider)] = self.credential_wait.cell(
                    (agent, provider)
                )
            self.credential_wait.observe(waits, credential_s)

    def on_refresh(self, provider: str, _profile_id: str, outcome: str) -> None:
        self.refreshes.labels(provider, outcome).inc()

    def on_tokens(self, agent: str, profile: str, provider: str, model: str, t: Tokens) -> None:
        key = (agent, profile, provider, model)
        cells = self._token_cells.get(key)
        if cells is None:  # every kind's series exists from the first answer on
            cells = tuple(self.tokens.cell((*key, kind)) for kind in TOKEN_KINDS)
            self._token_cells[key] = cells
        for cell, count in zip(
            cells, (t.input, t.output, t.cached, t.cache_write, t.reasoning), strict=True
        ):
            if count:
                cell.value += count

    def on_window(self, owner: str, profile: str, provider: str, window: Window) -> None:
        labels = (owner, profile, provider, window.name)
        if window.utilization is not None:
            self.window_utilization.values[labels] = window.utilization
        if window.reset_at is not None:
            self.window_reset.values[labels] = window.reset_at / 1000

    def on_dropped(self, rows: int) -> None:
        self.usage_dropped.inc(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
