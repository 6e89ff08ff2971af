"""The hub's promises under real faults, with real processes on loopback.

- kill -9 of the hub mid-load, several times: every acknowledged webhook is applied, none
  twice, and the journal passes `PRAGMA integrity_check`;
- the target down for 30 s: the circuit opens, nothing becomes a dead letter, all is delivered
  after recovery;
- 1% poison (the target answers 422): exactly those are dead letters; after the fix a bulk
  replay applies each of them once.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path

import pytest

from seamline.sandbox.webhook_sender import send_webhooks
from tests.reliability.harness import (
    Hub,
    Sink,
    drained,
    free_port,
    integrity,
    journal_counts,
    verdict,
    write_project,
)

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_kill_9_mid_load_loses_nothing_acknowledged_and_applies_nothing_twice(
    tmp_path: Path,
) -> None:
    seed = 20261122
    rng = random.Random(seed)
    sink = Sink(tmp_path / "sink.db", free_port())
    sink.start()
    project = write_project(tmp_path / "project", sink_port=sink.port)
    hub = Hub(project, tmp_path / "hub.log")
    history = tmp_path / "history.jsonl"

    async def go() -> int:
        await hub.start()
        sender = asyncio.create_task(
            send_webhooks(
                url=project.url,
                secret=project.secret,
                count=4000,
                connections=16,
                history=history,
                id_prefix="k",
                rate=600,
                retry_for=90.0,
                request_timeout=5.0,
            )
        )
        kills = 0
        # Given a hub under load, when it is killed with SIGKILL four times and restarted
        while kills < 4 and not sender.done():
            await asyncio.sleep(rng.uniform(0.8, 2.0))
            hub.kill()
            kills += 1
            await asyncio.sleep(rng.uniform(0.1, 0.5))
            await hub.start()
        summary = await sender
        assert summary.ok == 4000, summary
        await drained(project.journal, within=90)
        return kills

    try:
        kills = asyncio.run(go())
    finally:
        hub.stop()
        sink.stop()
    # Then every acknowledged webhook was applied, and none twice
    result = verdict(history, sink.db, project.journal)
    print(f"seed {seed}, {kills} kills, {hub.starts} starts: {result.table()}")
    assert kills == 4, f"seed {seed}: the load ended before the fourth kill"
    assert not result.lost, f"seed {seed}: {result.table()}; lost {sorted(result.lost)[:20]}"
    assert not result.duplicated, f"seed {seed}: {result.table()}"
    assert not result.dead, f"seed {seed}: {result.table()}"
    assert integrity(project.journal) == "ok"


@pytest.mark.timeout(300)
def test_target_down_for_30_s_opens_the_circuit_and_dead_letters_nothing(tmp_path: Path) -> None:
    sink = Sink(tmp_path / "sink.db", free_port())
    sink.start()
    project = write_project(tmp_path / "project", sink_port=sink.port)
    hub = Hub(project, tmp_path / "hub.log")
    history = tmp_path / "history.jsonl"

    async def go() -> dict[str, int]:
        await hub.start()
        sender = asyncio.create_task(
            send_webhooks(
                url=project.url,
                secret=project.secret,
                count=3000,
                connections=8,
                history=history,
                id_prefix="d",
                rate=75,
                request_timeout=5.0,
            )
        )
        await asyncio.sleep(3)
        # When the target goes down for 30 s while webhooks keep arriving
        await sink.control(mode="down")
        await asyncio.sleep(30)
        during = journal_counts(project.journal)
        await sink.control(mode="ok")
        await sender
        await drained(project.journal, within=60)
        return during

    try:
        during = asyncio.run(go())
        opened = _circuit_opened(project.dir)
    finally:
        hub.stop()
        sink.stop()
    result = verdict(history, sink.db, project.journal)
    # Then work waited during the outage, the circuit opened, and nothing was dead-lettered
    assert during.get("pending", 0) > 500, during
    assert opened >= 1
    assert not result.dead, result.table()
    assert not result.lost, result.table()
    assert not result.duplicated, result.table()
    assert len(result.acked) == 3000


def _circuit_opened(project: Path) -> int:
    import sqlite3

    import orjson

    conn = sqlite3.connect(f"file:{project / 'journal.db'}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM cursor WHERE name = 'budget:sink'").fetchone()
    finally:
        conn.close()
    return int(orjson.loads(row[0])["opened"]) if row else 0


@pytest.mark.timeout(300)
def test_poison_messages_become_dead_letters_and_a_bulk_replay_applies_each_once(
    tmp_path: Path,
) -> None:
    sink = Sink(tmp_path / "sink.db", free_port())
    sink.start()
    project = write_project(tmp_path / "project", sink_port=sink.port)
    hub = Hub(project, tmp_path / "hub.log")
    history = tmp_path / "history.jsonl"
    poisoned: set[int] = set()

    async def go() -> None:
        await hub.start()
        # Given 1% of orders the target refuses with 422
        await send_webhooks(
            url=project.url,
            secret=project.secret,
            count=3000,
            connections=16,
            history=history,
            id_prefix="p",
            poison_rate=0.01,
            seed=7,
        )
        await drained(project.journal, within=60)
        poisoned.update(verdict(history, sink.db, project.journal).dead)
        assert 10 < len(poisoned) < 60
        # When the target is fixed and the dead letters are replayed in bulk, twice (a double click)
        await sink.control(poison_field=None)
        for _ in range(2):
            replay = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    "-m",
                    "seamline.cli",
                    "replay",
                    str(project.dir),
                    "--flow",
                    "orders",
                    "--yes",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert replay.returncode == 0, replay.stderr
        await drained(project.journal, within=60)

    try:
        asyncio.run(go())
    finally:
        hub.stop()
        sink.stop()
    result = verdict(history, sink.db, project.journal)
    poison_in_history = {i for i in result.acked if i in poisoned}
    # Then exactly the poisoned ones were dead, and now each was applied once
    assert poison_in_history == poisoned
    assert not result.dead, result.table()
    assert all(result.effects[i] == 1 for i in poisoned), result.table()
    assert not result.duplicated and not result.lost, result.table()
    assert _audit_rows(project.dir) == len(poisoned)


def _audit_rows(project: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{project / 'journal.db'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM audit WHERE action = 'replay'").fetchone()[0])
    finally:
        conn.close()
