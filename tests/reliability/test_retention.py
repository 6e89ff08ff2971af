"""Retention through the running hub: payloads past the window go; ids, keys and outcomes stay."""

from __future__ import annotations

import asyncio
import time

from tests.reliability.harness import Landscape, drained, query


def test_the_hub_purges_payloads_past_retention_and_keeps_what_happened(land: Landscape) -> None:
    settings = land.project.dir / "seamline.yaml"
    settings.write_text(settings.read_text() + "retention: {payloads: 1s}\n")

    async def go() -> None:
        # Given 50 orders delivered by a hub whose retention is one second
        await land.hub.start()
        assert (await land.send(count=50, connections=4, id_prefix="t")).ok == 50
        await drained(land.project.journal, within=30)
        land.hub.stop()
        await asyncio.sleep(1.1)
        # When a hub runs past its first sweep
        await land.hub.start()
        deadline = time.monotonic() + 10
        while query(land.project.journal, "SELECT count(*) FROM message WHERE body IS NOT NULL")[0][
            0
        ]:
            assert time.monotonic() < deadline, "payloads were not purged"
            await asyncio.sleep(0.2)
        land.hub.stop()

    asyncio.run(go())
    journal = land.project.journal
    # Then no body, header or attempt payload is left, and every id, key and outcome is
    assert query(journal, "SELECT count(*) FROM message WHERE headers IS NOT NULL") == [(0,)]
    assert query(journal, "SELECT count(*) FROM attempt WHERE request IS NOT NULL") == [(0,)]
    assert query(journal, "SELECT count(*) FROM message") == [(50,)]
    assert query(journal, "SELECT count(DISTINCT message_id) FROM message_key") == [(50,)]
    assert query(journal, "SELECT state, count(*) FROM delivery GROUP BY state") == [
        ("delivered", 50)
    ]
    assert query(journal, "SELECT count(*) FROM attempt") == [(50,)]
