"""`--role ingest` journals without routing; a full hub started later routes and delivers it all."""

from __future__ import annotations

import asyncio

from tests.reliability.harness import Landscape, drained, journal_counts


def test_an_ingest_only_hub_keeps_messages_for_a_full_hub_to_deliver(land: Landscape) -> None:
    async def go() -> dict[str, int]:
        # Given a hub that only ingests
        await land.hub.start(role="ingest")
        summary = await land.send(count=300, connections=8, id_prefix="r")
        assert summary.ok == 300
        land.hub.stop()
        before = journal_counts(land.project.journal)
        # When a full hub starts on the same journal
        await land.hub.start()
        await drained(land.project.journal, within=30)
        return before

    before = asyncio.run(go())
    # Then nothing was routed before, and everything was delivered after
    assert before == {"unrouted": 300}
    result = land.verdict()
    assert len(result.effects) == 300 and not result.duplicated and not result.lost
