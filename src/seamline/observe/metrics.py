"""Prometheus metrics: counters the engine bumps as it works, gauges read from the journal.

Counted in this process, as it happens (each process of a scaled-out hub counts its own):

| metric                                     | labels        | bumped by                          |
|--------------------------------------------|---------------|------------------------------------|
| `seamline_received_total`                  | system        | ingest, per webhook journaled      |
| `seamline_delivered_total`                 | flow, target  | worker, per delivery recorded      |
| `seamline_retried_total`                   | flow, target  | worker, per failed attempt retried |
| `seamline_dead_total`                      | flow, target  | worker, per delivery dead-lettered |
| `seamline_delivery_latency_seconds`        | flow          | created (on accept) → delivered    |
| `seamline_attempt_duration_seconds`        | target        | each attempt on the wire           |

Read from the journal at each scrape (the same for every process, whoever did the work):

| metric                             | labels      | value                                        |
|------------------------------------|-------------|----------------------------------------------|
| `seamline_backlog`                 | flow, state | open: pending, retrying, leased, review      |
| `seamline_dead_letters`            | flow        | dead deliveries not replayed or discarded    |
| `seamline_oldest_open_age_seconds` | flow        | how long the oldest open delivery has waited |
| `seamline_sla_seconds`             | flow        | the flow's SLA (`sla.deliver_within`)        |
| `seamline_flow_health`             | flow        | 0 green, 1 amber, 2 red (see `health.py`)    |
| `seamline_circuit_state`           | system      | 0 closed, 1 half-open, 2 open                |
| `seamline_rejected`                | system      | rejected messages not replayed               |
| `seamline_alert_firing`            | rule, subject, severity | 1 per firing alert (`alerts.py`) |

A worker process that the hub started (`worker.processes`) reports its counts to the hub every
second (`report`); the hub's `/metrics` shows them added to its own (`absorb`), and keeps a
process's last counts when it ends (`retire`), so totals never go back when one is restarted.

The metrics live in their own `CollectorRegistry`, never the process-global one. Engine code
holds its series (`FlowCounters`, `received(system)`, `attempts(target)`), so a message costs an
addition, not a label lookup; the series are plain numbers the scrape reads (the engine bumps
them from the event loop's thread only), about 1 µs for the four a delivery takes.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from seamline.journal.base import Journal
from seamline.observe.health import FiringAlert, flow_health
from seamline.observe.status import FlowStatus, SystemStatus, circuit, snapshot
from seamline.project import Project

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BACKLOG_STATES = ("pending", "retrying", "leased", "review")
CIRCUIT_VALUES = {"closed": 0, "half-open": 1, "open": 2}
HEALTH_VALUES = {"green": 0, "amber": 1, "red": 2}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format, which every Prometheus reads; every name here is plain ASCII."""


class Count:
    """One counter series. Bumped from the event loop's thread only, so it takes no lock
    (prometheus-client's own counter takes one per increment)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, n: float = 1.0) -> None:
        self.value += n


class Spread:
    """One histogram series: a count per bucket (upper bounds `le`), and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def add(self, counts: Sequence[int], total: float) -> None:
        """Add another process's counts of the same buckets."""
        if len(counts) != len(self.counts):
            raise ValueError(f"{len(counts)} buckets reported, {len(self.counts)} expected")
        self.counts = [a + int(b) for a, b in zip(self.counts, counts, strict=True)]
        self.sum += float(total)

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative counts, as the exposition has them."""
        out, total = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += n
            out.append(("+Inf" if bound == math.inf else repr(float(bound)), float(total)))
        return out


@dataclass(frozen=True, slots=True)
class FlowCounters:
    """The series one worker bumps for one flow."""

    delivered: Count
    retried: Count
    dead: Count
    latency: Spread


class Metrics:
    """The in-process counters and histograms, exposed through a registry of their own."""

    def __init__(self, *, registered: bool = True) -> None:
        """`registered=False`: a scratch copy to fold reports into, never scraped."""
        self._received: dict[tuple[str, ...], Count] = {}
        self._delivered: dict[tuple[str, ...], Count] = {}
        self._retried: dict[tuple[str, ...], Count] = {}
        self._dead: dict[tuple[str, ...], Count] = {}
        self._latency: dict[tuple[str, ...], Spread] = {}
        self._attempt: dict[tuple[str, ...], Spread] = {}
        self._reports: dict[str, Report] = {}
        """The latest counts of each live process this one started, by its name."""
        self.registry = CollectorRegistry(auto_describe=False)
        if registered:
            self.registry.register(self)

    def _counts(self) -> dict[str, dict[tuple[str, ...], Count]]:
        return {
            "received": self._received,
            "delivered": self._delivered,
            "retried": self._retried,
            "dead": self._dead,
        }

    def _spreads(self) -> dict[str, tuple[tuple[float, ...], dict[tuple[str, ...], Spread]]]:
        return {
            "latency": (LATENCY_BUCKETS, self._latency),
            "attempt": (ATTEMPT_BUCKETS, self._attempt),
        }

    def report(self) -> Report:
        """This process's counts, as plain data for the hub that started it."""
        return {
            "counts": {
                kind: [[list(labels), c.value] for labels, c in series.items()]
                for kind, series in self._counts().items()
            },
            "spreads": {
                kind: [[list(labels), s.counts, s.sum] for labels, s in series.items()]
                for kind, (_bounds, series) in self._spreads().items()
            },
        }

    def absorb(self, source: str, report: Report) -> None:
        """The latest `report` of the process `source`: shown added to this one's counts.
        Raises ValueError, and keeps the last good one, if it is not a report of these
        metrics (another version of Seamline, say)."""
        try:
            _fold(Metrics(registered=False), report)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a metrics report: {exc}") from None
        self._reports[source] = report

    def retire(self, source: str) -> None:
        """`source` ended: its last counts become this process's own."""
        report = self._reports.pop(source, None)
        if report is not None:
            _fold(self, report)

    def received(self, system: str) -> Count:
        return self._received.setdefault((system,), Count())

    def flow(self, flow: str, target: str) -> FlowCounters:
        key = (flow, target)
        return FlowCounters(
            self._delivered.setdefault(key, Count()),
            self._retried.setdefault(key, Count()),
            self._dead.setdefault(key, Count()),
            self._latency.setdefault((flow,), Spread(LATENCY_BUCKETS)),
        )

    def attempts(self, target: str) -> Spread:
        return self._attempt.setdefault((target,), Spread(ATTEMPT_BUCKETS))

    def collect(self) -> Iterator[Metric]:
        merged = self
        if self._reports:
            merged = Metrics(registered=False)
            _fold(merged, self.report())
            for report in list(self._reports.values()):
                _fold(merged, report)
        yield from merged._families()

    def _families(self) -> Iterator[Metric]:
        counters = (
            ("seamline_received", "Webhooks journaled", ["system"], self._received),
            (
                "seamline_delivered",
                "Deliveries recorded as delivered",
                ["flow", "target"],
                self._delivered,
            ),
            (
                "seamline_retried",
                "Failed attempts scheduled for another try",
                ["flow", "target"],
                self._retried,
            ),
            ("seamline_dead", "Deliveries dead-lettered", ["flow", "target"], self._dead),
        )
        for name, doc, labels, series in counters:
            family = CounterMetricFamily(name, doc, labels=labels)
            for values, count in list(series.items()):
                family.add_metric(list(values), count.value)
            yield family
        histograms = (
            (
                "seamline_delivery_latency_seconds",
                "From a delivery's creation (its message accepted and routed) to delivered",
                ["flow"],
                self._latency,
            ),
            (
                "seamline_attempt_duration_seconds",
                "One attempt on the wire, per target system",
                ["target"],
                self._attempt,
            ),
        )
        for name, doc, labels, spreads in histograms:
            histogram = HistogramMetricFamily(name, doc, labels=labels)
            for values, spread in list(spreads.items()):
                histogram.add_metric(list(values), spread.buckets(), spread.sum)
            yield histogram

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


Report = dict[str, dict[str, list[list[Any]]]]
"""`Metrics.report()`: {"counts": {kind: [[labels, value]]}, "spreads": {kind: [[labels,
bucket counts, sum]]}}."""


def _fold(into: Metrics, report: Report) -> None:
    counts, spreads = into._counts(), into._spreads()
    if not isinstance(report, dict):
        raise TypeError(f"a report is an object, not {type(report).__name__}")
    for kind, rows in report.get("counts", {}).items():
        count_series = counts[kind]
        for labels, value in rows:
            count_series.setdefault(tuple(labels), Count()).inc(float(value))
    for kind, rows in report.get("spreads", {}).items():
        bounds, spread_series = spreads[kind]
        for labels, bucket_counts, total in rows:
            spread_series.setdefault(tuple(labels), Spread(bounds)).add(bucket_counts, total)


METRICS = Metrics()
"""This process's metrics: what the engine bumps unless it is given its own `Metrics`."""


def snapshot_exposition(
    flows: list[FlowStatus],
    systems: list[SystemStatus],
    now: float,
    alerts: Sequence[FiringAlert] = (),
) -> bytes:
    """The gauges read from a status snapshot (and the firing alerts), in the text format."""
    r = CollectorRegistry(auto_describe=True)
    backlog = Gauge("seamline_backlog", "Open deliveries by state", ["flow", "state"], registry=r)
    dead = Gauge("seamline_dead_letters", "Dead deliveries to fix or replay", ["flow"], registry=r)
    oldest = Gauge(
        "seamline_oldest_open_age_seconds",
        "How long the oldest open delivery has waited (0: none open)",
        ["flow"],
        registry=r,
    )
    sla = Gauge("seamline_sla_seconds", "The flow's SLA", ["flow"], registry=r)
    health = Gauge(
        "seamline_flow_health", "0 green, 1 amber, 2 red, against the SLA", ["flow"], registry=r
    )
    circuit_state = Gauge(
        "seamline_circuit_state", "0 closed, 1 half-open, 2 open", ["system"], registry=r
    )
    rejected = Gauge("seamline_rejected", "Rejected messages not replayed", ["system"], registry=r)
    for f in flows:
        for state in BACKLOG_STATES:
            backlog.labels(f.flow, state).set(f.count(state))
        dead.labels(f.flow).set(f.count("dead"))
        oldest.labels(f.flow).set(f.age(now) or 0.0)
        sla.labels(f.flow).set(f.sla)
        health.labels(f.flow).set(HEALTH_VALUES[flow_health(f, now).level])
    for s in systems:
        circuit_state.labels(s.system).set(CIRCUIT_VALUES.get(circuit(s), 0))
        rejected.labels(s.system).set(s.rejected)
    firing = Gauge(
        "seamline_alert_firing",
        "1 for each firing alert",
        ["rule", "subject", "severity"],
        registry=r,
    )
    for a in alerts:
        firing.labels(a.rule, a.subject, a.severity).set(1)
    return generate_latest(r)


async def render(
    journal: Journal, project: Project, *, metrics: Metrics | None = None
) -> tuple[bytes, str]:
    """The body and content type of `GET /metrics`: this process's counters and the journal's
    gauges. Reads the journal once (the same queries as `seamline status`)."""
    from seamline.observe.alerts import current  # not at import: the engine imports this module

    flows, systems = await snapshot(journal, project)
    firing = await current(journal)
    body = (metrics or METRICS).exposition() + snapshot_exposition(
        flows, systems, time.time(), firing
    )
    return body, CONTENT_TYPE
