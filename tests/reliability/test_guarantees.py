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

import orjson
import pytest

from tests.reliability.harness import Landscape, drained, integrity, journal_counts, query

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_kill_9_mid_load_loses_nothing_acknowledged_and_applies_nothing_twice(
    land: Landscape,
) -> None:
    seed = 20261122
    rng = random.Random(seed)

    async def go() -> int:
        await land.hub.start()
        sender = asyncio.create_task(
            land.send(
                count=4000,
                connections=16,
                id_prefix="k",
                rate=300,  # 13 s at least: the four kills take ~10 s, restarts included
                retry_for=90.0,
                request_timeout=5.0,
            )
        )
        kills = 0
        # Given a hub under load, when it is killed with SIGKILL four times and restarted
        while kills < 4:
            await asyncio.sleep(rng.uniform(0.8, 2.0))
            if sender.done():
                break  # not mid-load any more: the assertion below says so
            land.hub.kill()
            kills += 1
            await asyncio.sleep(rng.uniform(0.1, 0.5))
            await land.hub.start()
        summary = await sender
        assert summary.ok == 4000, summary
        await drained(land.project.journal, within=90)
        return kills

    kills = asyncio.run(go())
    # Then every acknowledged webhook was applied, and none twice
    result = land.verdict()
    print(f"seed {seed}, {kills} kills, {land.hub.starts} starts: {result.table()}")
    assert kills == 4, f"seed {seed}: the load ended before the fourth kill"
    assert not result.lost, f"seed {seed}: {result.table()}; lost {sorted(result.lost)[:20]}"
    assert not result.duplicated, f"seed {seed}: {result.table()}"
    assert not result.dead, f"seed {seed}: {result.table()}"
    assert integrity(land.project.journal) == "ok"


@pytest.mark.timeout(300)
def test_target_down_for_30_s_opens_the_circuit_and_dead_letters_nothing(land: Landscape) -> None:
    async def go() -> dict[str, int]:
        await land.hub.start()
        sender = asyncio.create_task(
            land.send(count=3000, connections=8, id_prefix="d", rate=75, request_timeout=5.0)
        )
        await asyncio.sleep(3)
        # When the target goes down for 30 s while webhooks keep arriving
        await land.sink.control(mode="down")
        await asyncio.sleep(30)
        during = journal_counts(land.project.journal)
        await land.sink.control(mode="ok")
        await sender
        await drained(land.project.journal, within=60)
        return during

    during = asyncio.run(go())
    (budget,) = query(land.project.journal, "SELECT value FROM cursor WHERE name = 'budget:sink'")
    result = land.verdict()
    # Then work waited during the outage, the circuit opened, and nothing was dead-lettered
    assert during.get("pending", 0) > 500, during
    assert orjson.loads(budget[0])["opened"] >= 1
    assert not result.dead, result.table()
    assert not result.lost, result.table()
    assert not result.duplicated, result.table()
    assert len(result.acked) == 3000


@pytest.mark.timeout(300)
def test_poison_messages_become_dead_letters_and_a_bulk_replay_applies_each_once(
    land: Landscape,
) -> None:
    poisoned: set[int] = set()

    async def go() -> None:
        await land.hub.start()
        # Given 1% of orders the target refuses with 422
        await land.send(count=3000, connections=16, id_prefix="p", poison_rate=0.01, seed=7)
        await drained(land.project.journal, within=60)
        poisoned.update(land.verdict().dead)
        assert 10 < len(poisoned) < 60
        # When the target is fixed and the dead letters are replayed in bulk, twice (a double click)
        await land.sink.control(poison_field=None)
        for _ in range(2):
            replay = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    "-m",
                    "seamline.cli",
                    "replay",
                    str(land.project.dir),
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
        await drained(land.project.journal, within=60)

    asyncio.run(go())
    result = land.verdict()
    # Then exactly the poisoned ones were dead, and now each was applied once
    assert {i for i in result.acked if i in poisoned} == poisoned
    assert not result.dead, result.table()
    assert all(result.effects[i] == 1 for i in poisoned), result.table()
    assert not result.duplicated and not result.lost, result.table()
    replays = query(land.project.journal, "SELECT count(*) FROM audit WHERE action = 'replay'")
    assert replays[0][0] == len(poisoned)
