"""`/metrics`: the exposition parsed back, its values checked against real work.

Counters are this process's, shared by every test in it, so each test reads them before and
after and checks the difference.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from seamline.cli import write_example
from seamline.connectors.base import Exchange
from seamline.connectors.fake import FakeSink, answer
from seamline.engine.hub import Hub
from seamline.errors import PermanentError, TransientError
from seamline.journal.sqlite import SqliteJournal
from seamline.observe.alerts import STATE_CURSOR, Alert, AlertState
from seamline.observe.metrics import METRICS, Metrics, render, snapshot_exposition
from seamline.observe.status import FlowStatus, SystemStatus, snapshot
from seamline.project import load_project
from seamline.sandbox.project import write_shop_project
from seamline.sandbox.recording_sink import start_recording_sink
from seamline.sandbox.webhook_sender import send_webhooks
from tests.integration.rig import order, receive, rig
from tests.observe.receivers import free_port, until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(body: bytes) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def run(case: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(case(), 90))


@pytest.mark.parametrize("processes", [0, 1], ids=["delivered in the hub", "worker process"])
def test_metrics_after_real_deliveries_through_a_hub(tmp_path: Path, processes: int) -> None:
    async def case() -> None:
        sink = await start_recording_sink(db_path=tmp_path / "sink.db")
        root = tmp_path / "project"
        secret = write_shop_project(
            root, hub_port=free_port(), sink_port=sink.port, processes=processes
        )
        project = load_project(root)
        hub = Hub(project)
        running = asyncio.create_task(hub.run())
        try:
            await hub.started.wait()
            before = parse((await render(hub.journal, project))[0])
            # Given 40 orders sent to the hub, a quarter of them refused by the target (422)
            summary = await send_webhooks(
                url=f"http://127.0.0.1:{hub.listen[1]}/hooks/shop",
                secret=secret,
                count=40,
                poison_rate=0.25,
                seed=3,
            )
            assert summary.ok == 40
            while True:  # until every delivery is settled
                flows, _ = await snapshot(hub.journal, project)
                if flows[0].total == 40 and flows[0].open == 0:
                    break
                await asyncio.sleep(0.05)

            def attempts(samples: Samples) -> float:
                return value(samples, "seamline_attempt_duration_seconds_count", target="sink")

            # When /metrics is scraped (a worker process reports its counts every second)
            deadline = time.monotonic() + 10
            while True:
                body, content_type = await render(hub.journal, project)
                after = parse(body)
                if attempts(after) - attempts(before) >= 40 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
        finally:
            hub.stop()
            await running
            await sink.close()

        assert content_type.startswith("text/plain; version=0.0.4")
        delivered, dead = flows[0].count("delivered"), flows[0].count("dead")
        assert delivered + dead == 40 and dead > 0

        def grew(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        # Then the counters say what happened, per system, flow and target
        assert grew("seamline_received_total", system="shop") == 40
        assert grew("seamline_delivered_total", flow="orders", target="sink") == delivered
        assert grew("seamline_dead_total", flow="orders", target="sink") == dead
        assert grew("seamline_delivery_latency_seconds_count", flow="orders") == delivered
        assert grew("seamline_attempt_duration_seconds_count", target="sink") == 40
        assert grew("seamline_delivery_latency_seconds_bucket", flow="orders", le="+Inf") == (
            delivered
        )
        # and the gauges what the journal holds now
        assert value(after, "seamline_dead_letters", flow="orders") == dead
        assert value(after, "seamline_backlog", flow="orders", state="pending") == 0
        assert value(after, "seamline_oldest_open_age_seconds", flow="orders") == 0
        assert value(after, "seamline_sla_seconds", flow="orders") == 300
        assert value(after, "seamline_flow_health", flow="orders") == 2  # dead letters: red
        assert value(after, "seamline_circuit_state", system="sink") == 0
        assert ("seamline_rejected", (("system", "shop"),)) in after

    run(case)


def test_counts_of_worker_processes_add_to_the_hubs_and_stay_when_one_ends() -> None:
    # Given a hub's metrics, and those of two worker processes it started
    hub, first, second = Metrics(), Metrics(), Metrics()
    hub.received("shop").inc(10)
    for worker, n in ((first, 3), (second, 4)):
        counters = worker.flow("orders", "sink")
        counters.delivered.inc(n)
        for _ in range(n):
            counters.latency.observe(0.2)
            worker.attempts("sink").observe(0.02)

    def seen() -> tuple[float, float, float, float]:
        got = parse(hub.exposition())
        return (
            value(got, "seamline_received_total", system="shop"),
            value(got, "seamline_delivered_total", flow="orders", target="sink"),
            value(got, "seamline_delivery_latency_seconds_bucket", flow="orders", le="0.25"),
            value(got, "seamline_attempt_duration_seconds_sum", target="sink"),
        )

    # When the hub hears their reports (again: the latest one counts, not each)
    for _ in range(2):
        hub.absorb("worker-1", first.report())
        hub.absorb("worker-2", second.report())
    # Then /metrics shows their counts added to its own
    assert seen() == (10, 7, 7, pytest.approx(0.14))
    # And when one ends and its successor starts counting from zero, nothing goes back
    hub.retire("worker-1")
    assert seen() == (10, 7, 7, pytest.approx(0.14))
    successor = Metrics()
    successor.flow("orders", "sink").delivered.inc()
    hub.absorb("worker-1", successor.report())
    assert seen()[1] == 8


@pytest.mark.parametrize(
    "report",
    [
        [],
        None,
        {"counts": {"sold": [[["shop"], 1]]}},
        {"spreads": {"attempt": [[["sink"], [1, 2, 3], 0.5]]}},
        {"counts": {"delivered": [[["orders", "sink"], "many"]]}},
    ],
    ids=["a list", "nothing", "an unknown counter", "other buckets", "not a number"],
)
def test_what_is_not_a_report_is_refused_and_metrics_stay_readable(report: Any) -> None:
    hub = Metrics()
    good = Metrics()
    good.flow("orders", "sink").delivered.inc(2)
    hub.absorb("worker-1", good.report())
    # When a worker process writes something that is not a report of these metrics
    with pytest.raises(ValueError, match="not a metrics report"):
        hub.absorb("worker-1", report)
    # Then its last good report still counts, and /metrics and its end are unharmed
    got = parse(hub.exposition())
    assert value(got, "seamline_delivered_total", flow="orders", target="sink") == 2
    hub.retire("worker-1")
    assert (
        value(parse(hub.exposition()), "seamline_delivered_total", flow="orders", target="sink")
        == 2
    )


def by_number(body: dict[str, Any]) -> Exchange:
    number = body.get("number")
    if number == 1:
        return answer(503, error=TransientError("server error 503"))(body)
    if number == 2:
        return answer(422, error=PermanentError("refused with 422"))(body)
    return answer(200)(body)


def test_the_worker_counts_delivered_retried_and_dead_per_flow_and_target(tmp_path: Path) -> None:
    async def case() -> None:
        r = await rig(tmp_path, FakeSink(default=by_number))
        before = parse(METRICS.exposition())
        # Given three orders: one the target fails on for now, one it refuses, one it takes
        for n in (1, 2, 3):
            await receive(r, order(id=n, order_number=n), n)
        # When the worker has sent each once
        loop = asyncio.create_task(r.worker.run_loop())
        await until(lambda: len(r.sink.sent) == 3, "three sends")
        r.worker.stop()
        await loop
        after = parse(METRICS.exposition())
        await r.journal.close()

        def grew(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        labels = {"flow": "orders-to-oms", "target": "orders-api"}
        # Then each outcome is counted once, and every attempt timed
        assert grew("seamline_delivered_total", **labels) == 1
        assert grew("seamline_retried_total", **labels) == 1
        assert grew("seamline_dead_total", **labels) == 1
        assert grew("seamline_attempt_duration_seconds_count", target="orders-api") == 3
        assert grew("seamline_delivery_latency_seconds_count", flow="orders-to-oms") == 1

    run(case)


def test_snapshot_gauges_per_state_and_circuit() -> None:
    flows = [
        FlowStatus("orders", counts={"pending": 4, "retrying": 2, "review": 1}, oldest_open=100.0)
    ]
    systems = [
        SystemStatus("erp", budget={"circuit": "open"}),
        SystemStatus("shop", rejected=3, budget={"circuit": "half-open"}),
        SystemStatus("3pl"),
    ]
    got = parse(snapshot_exposition(flows, systems, now=160.0))
    assert value(got, "seamline_backlog", flow="orders", state="pending") == 4
    assert value(got, "seamline_backlog", flow="orders", state="retrying") == 2
    assert value(got, "seamline_backlog", flow="orders", state="review") == 1
    assert value(got, "seamline_oldest_open_age_seconds", flow="orders") == 60
    assert value(got, "seamline_flow_health", flow="orders") == 1
    assert value(got, "seamline_circuit_state", system="erp") == 2
    assert value(got, "seamline_circuit_state", system="shop") == 1
    assert ("seamline_circuit_state", (("system", "3pl"),)) in got
    assert value(got, "seamline_rejected", system="shop") == 3


def test_firing_alerts_are_gauges_too(tmp_path: Path) -> None:
    async def case() -> None:
        # Given an alert firing in the journal's alert state
        write_example(tmp_path / "p")
        project = load_project(tmp_path / "p")
        journal = SqliteJournal(tmp_path / "journal.db")
        await journal.open()
        alert = Alert("circuit", "system:orders-api", "critical", "circuit open", 1.0)
        main, _ = AlertState(firing={alert.key: alert}).dump()
        await journal.set_cursor(STATE_CURSOR, main)
        # When /metrics is scraped
        body, _ = await render(journal, project)
        await journal.close()
        # Then the alert is a series of its own
        got = parse(body)
        labels = {"rule": "circuit", "subject": "system:orders-api", "severity": "critical"}
        assert value(got, "seamline_alert_firing", **labels) == 1

    run(case)


def test_the_journal_snapshot_says_since_when_there_are_dead_letters(tmp_path: Path) -> None:
    async def case() -> None:
        r = await rig(tmp_path, FakeSink(default=by_number))
        await receive(r, order(id=2, order_number=2), 2)
        loop = asyncio.create_task(r.worker.run_loop())
        await until(lambda: bool(r.sink.sent), "a send")
        r.worker.stop()
        await loop
        project = load_project(tmp_path)
        flows, _ = await snapshot(r.journal, project)
        await r.journal.close()
        (flow,) = flows
        assert flow.count("dead") == 1 and flow.dead_since is not None

    run(case)


def test_a_histogram_counts_a_value_on_a_bound_in_that_bound_s_bucket() -> None:
    metrics = Metrics()
    attempts = metrics.attempts("erp")
    for seconds in (0.005, 0.0051, 0.3, 120.0):
        attempts.observe(seconds)
    got = parse(metrics.exposition())

    def bucket(le: str) -> float:
        return value(got, "seamline_attempt_duration_seconds_bucket", target="erp", le=le)

    assert (bucket("0.005"), bucket("0.01"), bucket("0.5"), bucket("60.0")) == (1, 2, 3, 3)
    assert bucket("+Inf") == 4
    assert value(got, "seamline_attempt_duration_seconds_count", target="erp") == 4
    assert value(got, "seamline_attempt_duration_seconds_sum", target="erp") == pytest.approx(
        120.3101
    )
