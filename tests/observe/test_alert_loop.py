"""The alert loop on a real SQLite journal: it fires once, survives a restart without firing
again, resolves when the dead letter is discarded, and a notifier failing does not stop it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest

from seamline.cli import write_example
from seamline.journal.base import Journal, NewDelivery, NewMessage, Routing, Settlement
from seamline.journal.sqlite import SqliteJournal
from seamline.observe.alerts import (
    STATE_CURSOR,
    AlertLoop,
    current,
    resolved,
)
from seamline.project import Project, load_project
from tests.conftest import Backend
from tests.observe.receivers import HttpReceiver, free_port, http_receiver

FLOW, TARGET = "orders-to-oms", "orders-api"


def run(case: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(case(), 60))


async def dead_letter(journal: Journal, source_id: str) -> int:
    """A delivery of the example flow, dead after a permanent failure."""
    message_id = await journal.append(
        NewMessage("webshop", source_id, time.time(), b"{}", b'{"id": 1}')
    )
    assert message_id is not None
    delivery = NewDelivery(FLOW, "v1", TARGET, None, None, True)
    await journal.route([Routing(message_id, "order.created", {}, [delivery])])
    (claimed,) = await journal.claim(target=TARGET, owner="test", limit=1, lease=30)
    settled = Settlement(
        claimed.id, claimed.token, "dead", 1, time.time(), "permanent", "422", None
    )
    assert await journal.settle([settled]) == [True]
    return claimed.id


def project(tmp_path: Path, notifiers: str = "") -> Project:
    """The example project, with `notifiers` (YAML lines) added to its seamline.yaml."""
    root = tmp_path / "p"
    if not root.exists():
        write_example(root)
    if notifiers:
        with (root / "seamline.yaml").open("a") as f:
            f.write("notifiers:\n" + notifiers)
    return load_project(root)


def webhook(url: str, retries: int = 3) -> str:
    return f"  ops: {{kind: webhook, url: '{url}', retries: {retries}, backoff: 0s}}\n"


def events(receiver: HttpReceiver) -> list[tuple[str, str]]:
    out = []
    for r in receiver.received:
        body = orjson.loads(r.body)
        out.append((body["type"], body["alert"]["rule"]))
    return out


def test_an_alert_fires_once_survives_a_restart_and_resolves(
    tmp_path: Path, backend: Backend
) -> None:

    async def case() -> None:
        async with http_receiver() as receiver:
            p = project(tmp_path, webhook(receiver.url))
            journal = backend.make()
            await journal.open()
            # Given a dead letter in the journal
            dead = await dead_letter(journal, "m-1")
            # When the loop runs twice
            first = AlertLoop(journal, p)
            await first.tick()
            await first.tick()
            # Then one notification went out, and the alert is listed as firing
            assert events(receiver) == [("alert.firing", "dead_letters")]
            (alert,) = await current(journal)
            assert alert.flow == FLOW and alert.summary.startswith("1 dead letter since")
            await first.close()
            await journal.close()

            # Given the hub restarted (a new loop, the journal opened again)
            journal = backend.make()
            await journal.open()
            second = AlertLoop(journal, p, resolve_after=0)
            # When it runs: the alert is still firing and is not sent again
            await second.tick()
            assert events(receiver) == [("alert.firing", "dead_letters")]
            # When the dead letter is discarded, the alert resolves, once
            await journal.discard([dead], actor="ops", reason="test order")
            await second.tick()
            await second.tick()
            assert events(receiver) == [
                ("alert.firing", "dead_letters"),
                ("alert.resolved", "dead_letters"),
            ]
            assert await current(journal) == []
            (past,) = await resolved(journal)
            assert past.rule == "dead_letters" and past.resolved_at is not None
            await second.close()
            await journal.close()

    run(case)


def test_a_notifier_that_is_down_does_not_stop_the_loop(tmp_path: Path) -> None:
    # Given a notifier nobody listens for
    p = project(tmp_path, webhook(f"http://127.0.0.1:{free_port()}/in", retries=1))

    async def case() -> None:
        journal = SqliteJournal(tmp_path / "journal.db")
        await journal.open()
        await dead_letter(journal, "m-1")
        alerts = AlertLoop(journal, p)
        # When an alert fires: the send fails, is logged, and the round ends normally
        sent = await alerts.tick()
        assert [(n.event, n.alert.rule, n.alert.notify) for n in sent] == [
            ("firing", "dead_letters", ("ops",))
        ]
        # and the state was kept before sending: the alert is firing all the same
        assert [a.rule for a in await current(journal)] == ["dead_letters"]
        assert await alerts.tick() == []
        await alerts.close()
        await journal.close()

    run(case)


def test_the_loop_keeps_running_when_a_round_fails(tmp_path: Path) -> None:
    p = project(tmp_path)

    async def case() -> None:
        journal = SqliteJournal(tmp_path / "journal.db")
        await journal.open()
        await dead_letter(journal, "m-1")
        # Given a state the loop cannot read
        await journal.set_cursor(STATE_CURSOR, "not json")
        alerts = AlertLoop(journal, p, interval=0.001)
        # Then a round fails, says so in the log, and sends nothing
        assert await alerts.tick() == []
        # and the loop goes on: once the state is readable again, the alert fires
        task = asyncio.create_task(alerts.run())
        await journal.set_cursor(STATE_CURSOR, "")
        while not await current(journal):
            assert not task.done()
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await journal.close()

    run(case)


def test_the_loop_evaluates_only_while_this_process_leads(tmp_path: Path) -> None:
    p = project(tmp_path)

    async def case() -> None:
        journal = SqliteJournal(tmp_path / "journal.db")
        await journal.open()
        await dead_letter(journal, "m-1")
        leading = asyncio.Event()
        alerts = AlertLoop(journal, p, interval=0.001, leading=leading)
        task = asyncio.create_task(alerts.run())
        # While another process leads, this one keeps no state
        for _ in range(20):
            await asyncio.sleep(0)
        assert await journal.get_cursor(STATE_CURSOR) is None
        # Once it leads, it evaluates
        leading.set()
        while not await current(journal):
            assert not task.done()
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await journal.close()

    run(case)
