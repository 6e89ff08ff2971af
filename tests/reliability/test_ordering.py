"""Per-key ordering through the real hub: each order's updates reach the target in journal order,
also when some of them fail for a while and retry, and when the target goes away mid-run."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from seamline.sandbox.recording_sink import read_records
from tests.reliability.harness import Landscape, drained, query

KEYS = 40


def update(i: int) -> dict[str, Any]:
    return {"id": 9_000 + i % KEYS, "seq": i, "status": "open"}


def test_updates_of_one_key_are_applied_in_journal_order_across_an_outage(land: Landscape) -> None:
    async def go() -> None:
        await land.hub.start()
        # Given 40 orders updated 50 times each, arriving interleaved over 16 connections,
        # where 5% of the updates fail with 503 (and retry) until the target is fixed
        await land.sink.control(poison_field="poison", poison_status=503)
        sender = asyncio.create_task(
            land.send(
                count=KEYS * 50,
                connections=16,
                id_prefix="o",
                data=update,
                rate=400,
                poison_rate=0.05,
                seed=11,
            )
        )
        await asyncio.sleep(3)
        await land.sink.control(poison_field=None)
        # And the target is down for 3 s in the middle
        await land.sink.control(mode="down")
        await asyncio.sleep(3)
        await land.sink.control(mode="ok")
        await sender
        await drained(land.project.journal, within=60)

    asyncio.run(go())
    land.hub.stop()
    journal_order = {
        int(str(source_id).rsplit("-", 1)[1]): message_id
        for source_id, message_id in query(
            land.project.journal, "SELECT source_id, id FROM message"
        )
    }
    applied: dict[str, list[int]] = defaultdict(list)
    for record in read_records(land.sink.db):
        applied[str(record.key)].append(journal_order[int(record.json()["seq"])])
    # Then every update was applied once, and per key in the order the journal received them
    assert sum(len(v) for v in applied.values()) == KEYS * 50
    out_of_order = {k: v for k, v in applied.items() if v != sorted(v)}
    assert not out_of_order, f"{len(out_of_order)} keys out of order"
    assert len(applied) == KEYS
