"""Many processes on one PostgreSQL journal, under load and under faults.

Two ingest processes behind a round-robin sender, four workers and two schedulers, while:
a worker is killed with SIGKILL and restarted; the server is stopped with
`pg_ctl stop -m immediate` twice and restarted; a worker holding claims is frozen with SIGSTOP
for longer than its lease, then thawed; the active scheduler is killed. Then every acknowledged
update was applied once, none twice, and per key in the order the journal routed them.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from seamline.sandbox.postgres import LocalPostgres
from seamline.sandbox.recording_sink import read_records
from seamline.sandbox.webhook_sender import send_webhooks
from tests.reliability.harness import (
    Hub,
    Sink,
    acked_indexes,
    drained,
    free_port,
    query,
    write_project,
)

KEYS = 60
COUNT = 3000
FENCED = "outcomes not recorded: the leases were taken over"
LEASE = 3.0


def update(i: int) -> dict[str, Any]:
    return {"id": 9_000 + i % KEYS, "seq": i, "status": "open"}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_many_processes_lose_nothing_repeat_nothing_and_keep_key_order(
    tmp_path: Path, own_postgres: LocalPostgres
) -> None:
    url = own_postgres.create_database("hub")
    sink = Sink(tmp_path / "sink.db", free_port())
    sink.start()
    project = write_project(
        tmp_path / "project",
        sink_port=sink.port,
        journal=url,
        lease=f"{LEASE:g}s",
        batch=50,
        concurrency=512,  # room for every worker to hold claims when one is frozen
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    ingest = [
        Hub(project, logs / f"ingest{i}.log", role="ingest", port=free_port()) for i in range(2)
    ]
    workers = [Hub(project, logs / f"worker{i}.log", role="worker") for i in range(4)]
    schedulers = [Hub(project, logs / f"scheduler{i}.log", role="scheduler") for i in range(2)]
    everyone = [*ingest, *workers, *schedulers]
    history = tmp_path / "history.jsonl"

    restarted_at = 0.0
    """When the server last came back (time.time(), as the journal's lease_until)."""

    def leased_by(worker: Hub) -> list[tuple[int, int]]:
        """(id, lease token) of the deliveries `worker` holds now, of those leased since the
        server came back. A lease taken before its crash may belong to a batch whose outcomes
        could not be recorded: the worker dropped that batch, will never settle it, and so
        cannot show the fencing; such a lease runs out before `restarted_at + LEASE`."""
        assert worker.proc is not None
        return [
            (int(i), int(t))
            for i, t in query(
                url,
                "SELECT id, lease_token FROM delivery WHERE state = 'leased' "
                f"AND lease_until > {restarted_at + LEASE!r} "
                f"AND lease_owner LIKE '%:{worker.proc.pid}'",
            )
        ]

    async def freeze_one_holding_leases(within: float = 20.0) -> tuple[Hub, list[tuple[int, int]]]:
        """Freeze, with SIGSTOP, a worker that holds leased deliveries; say which, and what it
        holds. A worker may settle between a look and the signal (the sink answers in 0.5 s),
        so it is thawed and another look taken until the journal shows it holding some while
        frozen. Which worker claims the heads of the keys is the journal's choice."""
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            holding = {w: leased_by(w) for w in workers}
            worker = max(workers, key=lambda w: len(holding[w]))
            if holding[worker]:
                worker.signal(signal.SIGSTOP)
                await asyncio.sleep(0.3)  # a settle already on the wire lands
                held = leased_by(worker)
                if held:
                    return worker, held
                worker.signal(signal.SIGCONT)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no worker held a lease while frozen within {within:g} s")

    async def taken_over(held: list[tuple[int, int]], within: float = 30.0) -> None:
        """Until none of `held` is still leased under the same token: each lease expired
        (the scheduler sweeps every 2 s) and went back to pending or to another worker."""
        ids = ",".join(str(i) for i, _ in held)
        for _ in range(int(within / 0.1)):
            now = dict(
                query(
                    url,
                    f"SELECT id, lease_token FROM delivery WHERE id IN ({ids}) "
                    "AND state = 'leased'",
                )
            )
            if not any(now.get(i) == token for i, token in held):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"leases {held} were not taken over within {within:g} s")

    async def logged(hub: Hub, line: str, within: float = 30.0) -> None:
        """Until `hub`'s log says `line`."""
        for _ in range(int(within / 0.1)):
            if line in hub.log.read_text():
                return
            await asyncio.sleep(0.1)
        tail = hub.log.read_text()[-4000:]  # what it did instead, for the next reader
        raise AssertionError(
            f"{hub.log.name} did not say {line!r} within {within:g} s; it ends:\n{tail}"
        )

    async def go() -> Hub:
        """The load and the faults; the worker that was frozen."""
        nonlocal restarted_at
        for hub in everyone:
            await hub.start(within=30)
        sender = asyncio.create_task(
            send_webhooks(
                url=[h.url for h in ingest],
                secret=project.secret,
                history=history,
                count=COUNT,
                connections=16,
                id_prefix="s",
                data=update,
                rate=150,  # still sending when a worker is frozen, on a slow machine too
                retry_for=120,
            )
        )
        await asyncio.sleep(2)
        workers[0].kill()  # SIGKILL while holding claims
        await workers[0].start(within=30)
        await asyncio.sleep(1)
        own_postgres.crash()  # pg_ctl stop -m immediate
        await asyncio.sleep(1.5)
        restarted_at = time.time()  # before: every lease taken once it is back counts
        own_postgres.start()
        await asyncio.sleep(2)
        # A slow target keeps claims in every worker's hands; one worker is frozen past its
        # 3 s lease while holding them, until the journal shows them taken over
        await sink.control(mode="slow", slow_seconds=0.5)
        frozen, held = await freeze_one_holding_leases()
        await taken_over(held)
        frozen.signal(signal.SIGCONT)
        await sink.control(mode="ok")
        # Its late outcomes reach the journal before the next fault: a settle cut off by the
        # server's crash is not recorded at all, and would not show the fencing
        await logged(frozen, FENCED)
        schedulers[0].kill()  # the other one takes over
        await asyncio.sleep(1)
        own_postgres.crash()
        await asyncio.sleep(1)
        own_postgres.start()
        summary = await sender
        assert summary.unknown == 0 and summary.failed == 0, summary
        await drained(url, within=120)
        return frozen

    try:
        frozen = asyncio.run(go())
    finally:
        for hub in everyone:
            hub.stop()
        sink.stop()

    acked = acked_indexes(history)
    applied = [record.json()["seq"] for record in read_records(sink.db)]
    times = Counter(applied)
    # Every acknowledged update applied, none twice
    assert len(acked) == COUNT
    assert not (acked - set(times)), f"lost: {sorted(acked - set(times))[:20]}"
    assert not {s: n for s, n in times.items() if n > 1}, "duplicate effects"
    # Per key, in the order the journal routed them (delivery order)
    journal_order = {
        int(str(source_id).rsplit("-", 1)[1]): delivery_id
        for source_id, delivery_id in query(
            url, "SELECT m.source_id, d.id FROM delivery d JOIN message m ON m.id = d.message_id"
        )
    }
    per_key: dict[int, list[int]] = defaultdict(list)
    for seq in applied:
        per_key[seq % KEYS].append(journal_order[seq])
    out_of_order = [k for k, ids in per_key.items() if ids != sorted(ids)]
    assert not out_of_order, f"{len(out_of_order)} keys applied out of order"
    states = dict(query(url, "SELECT state, count(*) FROM delivery GROUP BY state"))
    assert states == {"delivered": COUNT}, states
    # The frozen worker's leases expired and were taken over; when it woke up, its late
    # outcomes were refused (fenced), and the sink applied its repeated requests once
    said = "".join(log.read_text() for log in logs.iterdir())
    assert "leases expired" in said
    assert FENCED in frozen.log.read_text()
