"""Prometheus metrics in a registry of the app's own (no global state): requests, latency, the
wait for a credential, refreshes and upstream failures, by agent and provider; tokens by agent,
profile, provider and model, and each profile's windows (from ``sidecar.usage``'s recorder).
Labels never carry a secret, and only name agents that exist (an unknown one is refused before
it counts)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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
        self.requests = Counter(
            "openclaw_sidecar_requests",
            "Requests answered, by agent, provider, status and the owner of the profile used "
            "(main for one inherited from it, fleet:<agent> for the fleet's, - for none)",
            ["agent", "provider", "status", "owner"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "openclaw_sidecar_request_seconds",
            "Time to the end of the response (streams included), by agent and provider",
            ["agent", "provider"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.credential_wait = Histogram(
            "openclaw_sidecar_credential_seconds",
            "Time a request spent getting its credential, waiting on a refresh included",
            ["agent", "provider"],
            buckets=_WAIT_BUCKETS,
            registry=self.registry,
        )
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
        self.in_flight = Gauge(
            "openclaw_sidecar_in_flight",
            "Requests being proxied now",
            registry=self.registry,
        )
        self.tokens = Counter(
            "openclaw_sidecar_tokens",
            "Tokens the answers reported (kind: input, output, cached, cache_write, reasoning),"
            " by agent, profile, provider and model; started from the usage database",
            ["agent", "profile", "provider", "model", "kind"],
            registry=self.registry,
        )
        self.window_utilization = Gauge(
            "openclaw_sidecar_window_utilization",
            "How much of a profile's rate-limit or subscription window is used (1 = all),"
            " as its latest answer said; owner is the agent whose store holds the profile",
            ["owner", "profile", "provider", "window"],
            registry=self.registry,
        )
        self.window_reset = Gauge(
            "openclaw_sidecar_window_reset_timestamp_seconds",
            "When a profile's window resets (Unix time), as its latest answer said",
            ["owner", "profile", "provider", "window"],
            registry=self.registry,
        )
        self._token_children: dict[tuple[str, str, str, str], tuple[Counter, ...]] = {}
        # Holds what the registry holds already (a child per label set): no new cardinality.
        self._request_children: dict[tuple[str, str, int, str], tuple[Counter, Histogram]] = {}
        self._wait_children: dict[tuple[str, str], Histogram] = {}
        self.usage_dropped = Counter(
            "openclaw_sidecar_usage_dropped",
            "Requests not recorded in the usage database (it could not be written for too long)",
            registry=self.registry,
        )

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
        children = self._request_children.get(key)
        if children is None:  # as for tokens: one labels() look-up per series, not per request
            children = (
                self.requests.labels(agent, provider, str(status), owner),
                self.latency.labels(agent, provider),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if credential_s is not None:
            waits = self._wait_children.get((agent, provider))
            if waits is None:  # made at the first wait: a series only where one happened
                waits = self._wait_children[(agent, provider)] = self.credential_wait.labels(
                    agent, provider
                )
            waits.observe(credential_s)

    def on_refresh(self, provider: str, _profile_id: str, outcome: str) -> None:
        self.refreshes.labels(provider, outcome).inc()

    def on_tokens(self, agent: str, profile: str, provider: str, model: str, t: Tokens) -> None:
        key = (agent, profile, provider, model)
        children = self._token_children.get(key)
        if children is None:  # labels() is most of the cost: each series is looked up once
            children = tuple(self.tokens.labels(*key, kind) for kind in TOKEN_KINDS)
            self._token_children[key] = children
        for child, count in zip(
            children, (t.input, t.output, t.cached, t.cache_write, t.reasoning), strict=True
        ):
            if count:  # most kinds are 0 in most answers: the series exists, nothing to add
                child.inc(count)

    def on_window(self, owner: str, profile: str, provider: str, window: Window) -> None:
        labels = (owner, profile, provider, window.name)
        if window.utilization is not None:
            self.window_utilization.labels(*labels).set(window.utilization)
        if window.reset_at is not None:
            self.window_reset.labels(*labels).set(window.reset_at / 1000)

    def on_dropped(self, rows: int) -> None:
        self.usage_dropped.inc(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
