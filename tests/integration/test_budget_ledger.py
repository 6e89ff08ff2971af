"""Budget ledgers: several processes (owners) draw from one budget per target.

Each case runs on the in-process ledger and on the PostgreSQL one, where the owners stand for
worker processes on different hosts: what one takes, the other cannot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from seamline.engine.budget import BudgetLedger, Limits, MemoryLedger, Outcome
from seamline.journal.ledger import PostgresLedger
from seamline.journal.postgres import PostgresJournal

MakeLedger = Callable[[], AbstractAsyncContextManager[BudgetLedger]]


@pytest.fixture(params=["memory", "postgres"])
def ledger(request: pytest.FixtureRequest) -> MakeLedger:
    @asynccontextmanager
    async def memory() -> AsyncIterator[BudgetLedger]:
        yield MemoryLedger()

    @asynccontextmanager
    async def postgres() -> AsyncIterator[BudgetLedger]:
        url = request.getfixturevalue("postgres_url")
        journal = PostgresJournal(url)
        await journal.open()  # migrates the schema
        shared = PostgresLedger(url)
        try:
            yield shared
        finally:
            await shared.close()
            await journal.close()

    return memory if request.param == "memory" else postgres


def run(make: MakeLedger, case: Callable[[BudgetLedger], Awaitable[None]]) -> None:
    async def go() -> None:
        async with make() as ledger:
            await case(ledger)

    asyncio.run(go())


def test_concurrency_is_capped_across_owners(ledger: MakeLedger) -> None:
    limits = Limits(concurrency=3)

    async def case(b: BudgetLedger) -> None:
        assert (await b.grant("erp", "host-a", 10, in_flight=0, limits=limits)).n == 3
        assert (await b.grant("erp", "host-b", 10, in_flight=0, limits=limits)).n == 0
        await b.returned("erp", "host-a", in_flight=1, unused=0, outcome=Outcome(), limits=limits)
        assert (await b.grant("erp", "host-b", 10, in_flight=0, limits=limits)).n == 2
        # another target has a budget of its own
        assert (await b.grant("shop", "host-b", 10, in_flight=0, limits=limits)).n == 3

    run(ledger, case)


def test_one_bucket_for_every_owner(ledger: MakeLedger) -> None:
    limits = Limits(concurrency=100, rate=5.0, burst=5)

    async def case(b: BudgetLedger) -> None:
        assert (await b.grant("erp", "host-a", 4, in_flight=0, limits=limits)).n == 4
        grant = await b.grant("erp", "host-b", 4, in_flight=0, limits=limits)
        assert grant.n == 1
        empty = await b.grant("erp", "host-b", 4, in_flight=1, limits=limits)
        assert empty.n == 0 and 0 < empty.wait <= 0.2

    run(ledger, case)


def test_failures_seen_by_one_owner_open_the_circuit_for_all(
    ledger: MakeLedger,
) -> None:
    limits = Limits(concurrency=10, failures=3, cooldown=0.5)

    async def case(b: BudgetLedger) -> None:
        await b.grant("erp", "host-a", 2, in_flight=0, limits=limits)
        await b.grant("erp", "host-b", 2, in_flight=0, limits=limits)
        down = Outcome(failures=2)
        await b.returned("erp", "host-a", in_flight=0, unused=0, outcome=down, limits=limits)
        await b.returned("erp", "host-b", in_flight=0, unused=0, outcome=down, limits=limits)
        closed = await b.grant("erp", "host-b", 10, in_flight=0, limits=limits)
        assert (closed.n, closed.circuit) == (0, "open")
        await asyncio.sleep(0.55)
        # one probe, for whichever owner asks first
        probe = await b.grant("erp", "host-a", 10, in_flight=0, limits=limits)
        assert (probe.n, probe.circuit) == (1, "half-open")
        assert (await b.grant("erp", "host-b", 10, in_flight=0, limits=limits)).n == 0
        good = Outcome(successes=1)
        assert await b.returned("erp", "host-a", in_flight=0, unused=0, outcome=good, limits=limits)
        assert (await b.grant("erp", "host-b", 10, in_flight=0, limits=limits)).n == 10

    run(ledger, case)


def test_a_throttle_seen_by_one_owner_holds_all(
    ledger: MakeLedger,
) -> None:
    limits = Limits(concurrency=10)

    async def case(b: BudgetLedger) -> None:
        await b.grant("erp", "host-a", 1, in_flight=0, limits=limits)
        held = Outcome(hold=0.4)
        await b.returned("erp", "host-a", in_flight=0, unused=0, outcome=held, limits=limits)
        grant = await b.grant("erp", "host-b", 10, in_flight=0, limits=limits)
        assert grant.n == 0 and 0.2 < grant.wait <= 0.4
        await asyncio.sleep(grant.wait + 0.05)
        assert (await b.grant("erp", "host-b", 10, in_flight=0, limits=limits)).n == 10

    run(ledger, case)


def test_what_a_vanished_owner_held_is_free_after_one_lease(
    ledger: MakeLedger,
) -> None:
    limits = Limits(concurrency=3, lease=0.4)

    async def case(b: BudgetLedger) -> None:
        assert (await b.grant("erp", "host-a", 3, in_flight=0, limits=limits)).n == 3
        started = time.monotonic()
        assert (await b.grant("erp", "host-b", 3, in_flight=0, limits=limits)).n == 0
        await asyncio.sleep(0.45 - (time.monotonic() - started))
        assert (await b.grant("erp", "host-b", 3, in_flight=0, limits=limits)).n == 3

    run(ledger, case)


def test_owners_racing_for_one_budget_never_get_more_than_its_cap(postgres_url: str) -> None:
    # Given six processes (a connection each) asking for the same budget at the same moments
    owners, asks, cap = 6, 8, 13
    limits = Limits(concurrency=cap)

    async def go() -> list[int]:
        journal = PostgresJournal(postgres_url)
        await journal.open()
        ledgers = [PostgresLedger(postgres_url) for _ in range(owners)]
        got = []
        try:
            for target in ("erp", "oms", "wms"):

                async def owner(i: int, target: str = target) -> int:
                    held = 0
                    for _ in range(asks):
                        grant = await ledgers[i].grant(
                            target, f"host-{i}", 2, in_flight=held, limits=limits
                        )
                        held += grant.n
                    return held

                got.append(sum(await asyncio.gather(*(owner(i) for i in range(owners)))))
        finally:
            for ledger in ledgers:
                await ledger.close()
            await journal.close()
        return got

    # Then together they hold exactly the cap of each target
    assert asyncio.run(go()) == [cap, cap, cap]


def test_budget_sessions_are_ended_when_left_in_a_transaction_as_the_journal_says(
    postgres_url: str,
) -> None:
    """A transition locks the budget's row: a worker frozen in one would hold every other
    worker's grants (`postgres.IDLE_IN_TRANSACTION`); the hub gives the journal's limit here."""

    async def go() -> dict[str, str]:
        ledger = PostgresLedger(postgres_url, idle_in_transaction=3)
        pool = ledger._connections()
        await pool.open()
        try:
            async with pool.connection() as conn:
                cur = await conn.execute("SHOW idle_in_transaction_session_timeout")
                row = await cur.fetchone()
                assert row is not None
                return dict(row)
        finally:
            await ledger.close()

    assert asyncio.run(go()) == {"idle_in_transaction_session_timeout": "3s"}
