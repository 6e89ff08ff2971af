"""One budget per target system, however many worker processes deliver to it.

Three worker processes on one PostgreSQL journal deliver to one sink. With a budget of its own
in each process, the sink would see three times the rate and three times the concurrency; it
must see the system's budget, while every worker does part of the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from seamline.sandbox.recording_sink import read_records
from seamline.sandbox.webhook_sender import send_webhooks
from tests.reliability.harness import Hub, Sink, drained, free_port, write_project

WORKERS = 3


def run_landscape(
    root: Path, url: str, count: int, during: Callable[[Sink], Any] | None = None, **budget: Any
) -> tuple[list[float], list[int]]:
    """Send `count` orders (distinct keys) through 3 workers; the sink's apply times, sorted,
    and how many each worker process delivered."""
    sink = Sink(root / "sink.db", free_port())
    sink.start()
    project = write_project(root / "project", sink_port=sink.port, journal=url, **budget)
    logs = root / "logs"
    logs.mkdir()
    ingest = Hub(project, logs / "ingest.log", role="ingest")
    scheduler = Hub(project, logs / "scheduler.log", role="scheduler")
    workers = [Hub(project, logs / f"worker{i}.log", role="worker") for i in range(WORKERS)]

    async def go() -> None:
        for hub in (ingest, scheduler, *workers):
            await hub.start(within=30)
        if during is not None:
            await during(sink)
        summary = await send_webhooks(
            url=ingest.url,
            secret=project.secret,
            history=root / "history.jsonl",
            count=count,
            connections=8,
            id_prefix="b",
            data=lambda i: {"id": 70_000 + i, "seq": i},
        )
        assert summary.failed == 0 and summary.unknown == 0, summary
        await drained(url, within=60)

    try:
        asyncio.run(go())
    finally:
        for hub in (ingest, scheduler, *workers):
            hub.stop()
        sink.stop()
    times = sorted(r.received_at for r in read_records(sink.db))
    assert len(times) == count
    return times, [delivered(w.log) for w in workers]


def delivered(log: Path) -> int:
    for line in log.read_text().splitlines():
        if '"hub stopped"' in line:
            return int(orjson.loads(line)["delivered"])
    raise AssertionError(f"no 'hub stopped' line in {log}")


@pytest.mark.timeout(120)
def test_the_rate_budget_is_shared_by_every_worker_process(
    tmp_path: Path, postgres_url: str
) -> None:
    rate, burst = 20, 5
    times, shares = run_landscape(tmp_path, postgres_url, 120, rate=rate, burst=burst)
    # Then the busiest second at the sink is within the budget (one bucket, not three: those
    # would let ~3 x 20 through). Measured at the sink, where a stall of the sink or of a
    # worker holding a grant bunches requests together: hence the margin of half a second's
    # rate (a review froze the sink for 0.4 s and saw 28 in a second)
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= rate + burst + rate // 2, f"{busiest} requests in one second; budget {rate}/s"
    elapsed = times[-1] - times[0]
    assert (len(times) - burst) / elapsed <= rate * 1.1
    # ...and it was shared: each worker process delivered some of it
    assert all(shares), shares


@pytest.mark.timeout(120)
def test_the_concurrency_cap_is_shared_by_every_worker_process(
    tmp_path: Path, postgres_url: str
) -> None:
    async def slow(sink: Sink) -> None:
        await sink.control(mode="slow", slow_seconds=0.4)

    times, shares = run_landscape(tmp_path, postgres_url, 24, during=slow, concurrency=2)
    # Each request is held 0.4 s after it is applied, so with 2 in flight at most, any three
    # consecutive requests span at least one whole request's time
    spans = [later - earlier for earlier, later in zip(times, times[2:], strict=False)]
    assert min(spans) >= 0.35, f"3 requests within {min(spans):.2f} s: more than 2 in flight"
    # (Which worker sends is not fixed: one may keep both slots busy while the others wait.)
    assert sum(shares) == len(times)
