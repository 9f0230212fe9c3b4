"""The per-request series kept as plain numbers (``proxy.tallies``, ``proxy.metrics``) render
exactly as prometheus-client's own metrics render the same updates: names, labels, buckets,
values, series order; only the ``_created`` times differ (each side's clock)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sidecar.proxy import metrics as metrics_module
from sidecar.proxy.metrics import TOKEN_KINDS, Metrics
from sidecar.proxy.tallies import Histograms
from sidecar.usage.tokens import Tokens
from sidecar.usage.windows import Window

_CREATED = re.compile(r"^(\S+_created(?:\{[^}]*\})?) \S+$", re.MULTILINE)


class Reference:
    """The same families as prometheus-client objects, updated the way metrics.py did before."""

    def __init__(self) -> None:
        m = Metrics()  # for the names and help texts only
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        def names(family: Any) -> tuple[str, str, list[str]]:
            return family.name, family.documentation, list(family.labelnames)

        self.requests = Counter(*names(m.requests), registry=r)
        self.latency = Histogram(*names(m.latency), buckets=metrics_module._BUCKETS, registry=r)
        self.wait = Histogram(
            *names(m.credential_wait), buckets=metrics_module._WAIT_BUCKETS, registry=r
        )
        self.errors = Counter(
            "openclaw_sidecar_errors", m.errors._documentation, ["code"], registry=r
        )
        self.refreshes = Counter(
            "openclaw_sidecar_refreshes",
            m.refreshes._documentation,
            ["provider", "outcome"],
            registry=r,
        )
        self.failovers = Counter(
            "openclaw_sidecar_failovers",
            m.failovers._documentation,
            ["agent", "provider", "reason"],
            registry=r,
        )
        self.in_flight = Gauge(m.in_flight.name, m.in_flight.documentation, registry=r)
        self.tokens = Counter(*names(m.tokens), registry=r)
        self.utilization = Gauge(*names(m.window_utilization), registry=r)
        self.reset = Gauge(*names(m.window_reset), registry=r)
        self.dropped = Counter(
            "openclaw_sidecar_usage_dropped", m.usage_dropped._documentation, registry=r
        )


def rendered(text: bytes) -> str:
    return _CREATED.sub(r"\1 <created>", text.decode())


AGENTS = st.sampled_from(["main", "work", "a-b"])
PROVIDERS = st.sampled_from(["openai", "anthropic"])
SECONDS = st.one_of(
    st.sampled_from([0.0, 0.0005, 0.005, 0.01, 1.0, 300.0, 301.0]),  # bounds: le includes them
    st.floats(min_value=0, max_value=400, allow_nan=False),
)
REQUEST = st.tuples(
    st.just("request"),
    AGENTS,
    PROVIDERS,
    st.sampled_from([200, 429, 502]),
    SECONDS,
    st.one_of(st.none(), SECONDS),
    st.sampled_from(["-", "main"]),
)
TOKENS = st.tuples(
    st.just("tokens"),
    AGENTS,
    st.sampled_from(["openai:a", "-"]),
    PROVIDERS,
    st.sampled_from(["gpt", "-"]),
    st.lists(st.integers(0, 10**6), min_size=5, max_size=5),
)
WINDOW = st.tuples(
    st.just("window"),
    AGENTS,
    st.sampled_from(["p:1", "p:2"]),
    PROVIDERS,
    st.sampled_from(["requests", "tokens"]),
    st.one_of(st.none(), st.floats(0, 1)),
    st.one_of(st.none(), st.integers(0, 2**41)),
)
OTHER = st.sampled_from([("flight+",), ("flight-",), ("error",), ("refresh",), ("dropped",)])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(REQUEST, TOKENS, WINDOW, OTHER), max_size=40))
def test_the_exposition_is_prometheus_clients(updates: list[tuple[Any, ...]]) -> None:
    ours, ref = Metrics(), Reference()
    for update in updates:
        kind = update[0]
        if kind == "request":
            _, agent, provider, status, seconds, waited, owner = update
            ours.observe(agent, provider, status, seconds, waited, owner)
            ref.requests.labels(agent, provider, str(status), owner).inc()
            ref.latency.labels(agent, provider).observe(seconds)
            if waited is not None:
                ref.wait.labels(agent, provider).observe(waited)
        elif kind == "tokens":
            _, agent, profile, provider, model, counts = update
            ours.on_tokens(agent, profile, provider, model, Tokens(*counts))
            for k, n in zip(TOKEN_KINDS, counts, strict=True):
                child = ref.tokens.labels(agent, profile, provider, model, k)
                if n:
                    child.inc(n)
        elif kind == "window":
            _, owner, profile, provider, name, used, reset_at = update
            ours.on_window(
                owner,
                profile,
                provider,
                Window(name, "requests", utilization=used, reset_at=reset_at),
            )
            if used is not None:
                ref.utilization.labels(owner, profile, provider, name).set(used)
            if reset_at is not None:
                ref.reset.labels(owner, profile, provider, name).set(reset_at / 1000)
        elif kind == "flight+":
            ours.in_flight.inc()
            ref.in_flight.inc()
        elif kind == "flight-":
            ours.in_flight.dec()
            ref.in_flight.dec()
        elif kind == "error":
            ours.errors.labels("bad_gateway").inc()
            ref.errors.labels("bad_gateway").inc()
        elif kind == "refresh":
            ours.on_refresh("openai", "openai:a", "refreshed")
            ref.refreshes.labels("openai", "refreshed").inc()
        else:
            ours.on_dropped(3)
            ref.dropped.inc(3)
    assert rendered(ours.render()) == rendered(generate_latest(ref.registry))


def test_without_created_series_neither_side_has_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """prometheus-client's switch for ``_created`` series applies to these too."""
    monkeypatch.setattr("prometheus_client.metrics._use_created", False)
    ours = Metrics()
    ours.observe("main", "openai", 200, 0.2, 0.001)
    ours.on_tokens("main", "p", "openai", "gpt", Tokens(1, 2))
    text = ours.render().decode()
    assert "_created" not in text
    assert (
        'openclaw_sidecar_tokens_total{agent="main",kind="input",model="gpt",profile="p",'
        'provider="openai"} 1.0' in text
    )


def test_histogram_buckets_must_be_sorted() -> None:
    with pytest.raises(ValueError, match="sorted"):
        Histograms("h", "help", [], [1.0, 0.5])


def test_a_nan_counts_in_no_bucket_as_in_prometheus_client() -> None:
    ours = Histograms("h", "help", [], [0.1, 1.0])
    ref = Histogram("h", "help", buckets=[0.1, 1.0], registry=None)
    cell = ours.cell(())
    for value in (0.05, float("nan"), 2.0):
        ours.observe(cell, value)
        ref.observe(value)
    assert cell.counts == [int(b.get()) for b in ref._buckets] == [1, 0, 1]
