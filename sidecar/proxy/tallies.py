"""The series updated on every request (requests, latency, the wait for a credential, tokens,
windows, requests in flight) as plain numbers, turned into prometheus-client's samples only when
``/metrics`` is read.

prometheus-client takes a lock and checks the metric's state on each update: a request's nine
updates cost ~7 us (bench/). These are updated by the event loop's thread alone (the usage
database's totals at start are added before serving), and ``/metrics`` reads them on that same
thread, so nothing here needs a lock. The exposition is prometheus-client's own, series by
series and in the same order (``tests/proxy/test_tallies.py`` renders both).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Final

import prometheus_client.metrics
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString

Labels = tuple[str, ...]


def _created_shown() -> bool:
    """prometheus-client's switch for ``_created`` series (its environment variable, or
    ``disable_created_metrics()``), read as it reads it."""
    return bool(getattr(prometheus_client.metrics, "_use_created", True))


class CounterCell:
    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()


class HistogramCell:
    __slots__ = ("counts", "created", "sum")

    def __init__(self, bounds: int) -> None:
        self.counts = [0] * bounds  # per bucket, not cumulative (as prometheus-client keeps them)
        self.sum = 0.0
        self.created = time.time()


class _Family:
    """A metric's name, help text and label names, as prometheus-client takes them."""

    kind = "gauge"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)

    def named(self, labels: Labels) -> dict[str, str]:
        return dict(zip(self.labelnames, labels, strict=True))

    def metric(self) -> Metric:
        """The family with its samples, as prometheus-client's collect() gives it."""
        raise NotImplementedError


class Counters(_Family):
    """A labelled counter: ``cell(labels).value += n``."""

    kind = "counter"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, documentation, labelnames)
        self.cells: dict[Labels, CounterCell] = {}

    def cell(self, labels: Labels) -> CounterCell:
        cell = self.cells.get(labels)
        if cell is None:
            cell = self.cells[labels] = CounterCell()
        return cell

    def metric(self) -> Metric:
        metric = Metric(self.name, self.documentation, self.kind)
        created = _created_shown()
        for labels, cell in self.cells.items():
            named = self.named(labels)
            metric.add_sample(self.name + "_total", named, cell.value)
            if created:
                metric.add_sample(self.name + "_created", named, cell.created)
        return metric


class Histograms(_Family):
    """A labelled histogram: ``observe(cell(labels), seconds)``."""

    kind = "histogram"

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, documentation, labelnames)
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds) or not bounds:
            raise ValueError("buckets must be sorted")
        self.bounds: Final = (*bounds, INF) if bounds[-1] != INF else tuple(bounds)
        self._le = tuple(floatToGoString(b) for b in self.bounds)  # type: ignore[no-untyped-call]
        self.cells: dict[Labels, HistogramCell] = {}

    def cell(self, labels: Labels) -> HistogramCell:
        cell = self.cells.get(labels)
        if cell is None:
            cell = self.cells[labels] = HistogramCell(len(self.bounds))
        return cell

    def observe(self, cell: HistogramCell, amount: float) -> None:
        """Into the first bucket whose bound is at least ``amount`` (``le``), as
        prometheus-client does; a NaN counts in no bucket."""
        index = bisect_left(self.bounds, amount)
        if index < len(self.bounds) and amount <= self.bounds[index]:
            cell.counts[index] += 1
        cell.sum += amount

    def metric(self) -> Metric:
        metric = Metric(self.name, self.documentation, self.kind)
        created = _created_shown()
        for labels, cell in self.cells.items():
            named = self.named(labels)
            total = 0.0
            for le, count in zip(self._le, cell.counts, strict=True):
                total += count
                metric.add_sample(self.name + "_bucket", {**named, "le": le}, total)
            metric.add_sample(self.name + "_count", named, total)
            if self.bounds[0] >= 0:
                metric.add_sample(self.name + "_sum", named, cell.sum)
            if created:
                metric.add_sample(self.name + "_created", named, cell.created)
        return metric


class Gauges(_Family):
    """A labelled gauge: ``values[labels] = x``."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, documentation, labelnames)
        self.values: dict[Labels, float] = {}

    def metric(self) -> Metric:
        metric = Metric(self.name, self.documentation, self.kind)
        for labels, value in self.values.items():
            metric.add_sample(self.name, self.named(labels), value)
        return metric


class Level(_Family):
    """An unlabelled gauge that goes up and down (requests in flight)."""

    def __init__(self, name: str, documentation: str) -> None:
        super().__init__(name, documentation)
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1

    def metric(self) -> Metric:
        metric = Metric(self.name, self.documentation, self.kind)
        metric.add_sample(self.name, {}, float(self.value))
        return metric


class Tallies(Collector):
    """The families above, for a ``CollectorRegistry``, in the order given."""

    def __init__(self, *families: _Family) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.metric()

    def describe(self) -> Iterator[Metric]:
        """Names only, for the registry's duplicate check at registration."""
        for family in self.families:
            yield Metric(family.name, family.documentation, family.kind)
