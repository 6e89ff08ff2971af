"""What only the PostgreSQL journal has to show: durable settings refused, a server that goes
away and comes back, several processes claiming from one database."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg
import pytest

from seamline.errors import JournalBusy, JournalError
from seamline.journal.base import NewDelivery, NewMessage, Routing
from seamline.journal.postgres import PostgresJournal, Q, migrate, redacted
from seamline.journal.queries import migrations
from seamline.sandbox.postgres import LocalPostgres
from tests.integration.test_journal import done


def message(n: int) -> NewMessage:
    return NewMessage("shop", f"msg-{n}", time.time(), b"{}", b'{"n": %d}' % n)


def test_a_server_that_may_lose_commits_is_refused(postgres_url: str) -> None:
    async def go() -> None:
        journal = PostgresJournal(postgres_url + "?options=-c%20synchronous_commit%3Doff")
        with pytest.raises(JournalError, match="synchronous_commit=off"):
            await journal.open()

    asyncio.run(go())


def test_an_unreachable_server_is_a_clear_error_at_start() -> None:
    async def go() -> None:
        journal = PostgresJournal("postgresql://seamline:s3cret@127.0.0.1:9/none")
        with pytest.raises(JournalError, match="cannot reach the journal") as caught:
            await journal.open()
        assert "s3cret" not in str(caught.value)

    asyncio.run(go())


def test_passwords_are_redacted_from_urls() -> None:
    assert redacted("postgresql://u:pw@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert redacted("postgresql://u@db/x") == "postgresql://u@db/x"


def test_a_repeated_source_id_in_one_group_is_stored_once(postgres_url: str) -> None:
    async def go() -> list[int | None]:
        journal = PostgresJournal(postgres_url)
        await journal.open()
        ids = await asyncio.gather(*(journal.append(message(n)) for n in (1, 2, 1, 3, 2)))
        await journal.close()
        return list(ids)

    ids = asyncio.run(go())
    assert ids[0] is not None and ids[1] is not None and ids[3] is not None
    assert ids[2] is None and ids[4] is None


def test_every_statement_is_planned_for_the_tables_as_they_are_now(postgres_url: str) -> None:
    """The queue tables start empty and grow by thousands of rows a second. psycopg prepares a
    statement run five times, and the server then keeps one generic plan for it, made for the
    empty table: in a run of bench/postgres.py that plan scanned every pending delivery for
    each one claimed (120 ms for a claim of 100 at 5,000 pending, against 3 ms planned
    afresh), and throughput fell by two thirds. No execution may run a cached generic plan."""

    async def go() -> list[int]:
        journal = PostgresJournal(postgres_url)
        await journal.open()
        for _ in range(8):  # prepared by psycopg on the empty table
            assert await journal.claim(target="sink", owner="w", limit=100, lease=30) == []
        for n in range(20):
            mid = await journal.append(message(n))
            assert mid is not None
            plain = NewDelivery("f", "v1", "sink", key=None, version=None, safe_retry=True)
            await journal.route([Routing(mid, "order.created", deliveries=[plain])])
        claimed = await journal.claim(target="sink", owner="w", limit=100, lease=30)
        plans = await journal._query(
            "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) "
            "FROM pg_prepared_statements"
        )
        await journal.close()
        return [len(claimed), *plans[0]]

    claimed, generic, custom = asyncio.run(go())
    assert claimed == 20
    assert custom > 0, "no statement was prepared: the test no longer sees what it checks"
    assert generic == 0


def test_a_worker_frozen_in_its_settle_holds_back_neither_the_lease_sweep_nor_its_leases(
    postgres_url: str,
) -> None:
    """A worker process frozen (SIGSTOP) between its settle's statements keeps its rows locked.
    The scheduler's sweep must not wait for it, since its writer routes too; the server ends
    the frozen session after `idle_in_transaction`, and the next sweep takes its leases over."""

    async def go() -> tuple[list[int], list[int], int]:
        journal = PostgresJournal(postgres_url, idle_in_transaction=1.0)
        await journal.open()
        mid = await journal.append(message(1))
        assert mid is not None
        plain = NewDelivery("f", "v1", "sink", key=None, version=None, safe_retry=True)
        await journal.route([Routing(mid, "order.created", deliveries=[plain])])
        (claimed,) = await journal.claim(target="sink", owner="frozen", limit=1, lease=0.01)
        # The frozen worker: a session of the journal's own kind, in a transaction holding
        # the delivery's row, never to commit
        frozen = await asyncio.to_thread(journal._connect)
        frozen.execute("UPDATE delivery SET updated_at = updated_at WHERE id = %s", (claimed.id,))
        await asyncio.sleep(0.05)  # the lease has run out
        first = await asyncio.wait_for(journal.expire_leases(), timeout=5)
        later: list[int] = []
        sweeps = 1
        while not later and sweeps < 100:  # ~10 s at most
            await asyncio.sleep(0.1)
            later = await journal.expire_leases()
            sweeps += 1
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
            frozen.execute("SELECT 1")  # the server ended its session
        frozen.close()
        await journal.close()
        return first, later, claimed.id

    first, later, delivery_id = asyncio.run(go())
    assert first == [], "the sweep waited for the frozen session's lock instead of skipping it"
    assert later == [delivery_id]


@pytest.mark.parametrize("stalls", ["between its statements", "before its commit"])
def test_a_writer_that_wakes_to_find_its_session_ended_runs_its_group_again(
    postgres_url: str, stalls: str
) -> None:
    """The frozen worker's side: its writer thread stalls inside a group longer than
    `idle_in_transaction`; the server ends the session and rolls the group back. When the
    thread goes on, at its next statement or at the commit, the group runs again, once, on a
    new session: nothing of it was committed."""
    runs: list[int] = []

    def stalls_the_first_time(conn: Any) -> int:
        conn.execute("SELECT count(*) FROM delivery")  # a transaction is open
        runs.append(1)
        if len(runs) == 1 and stalls == "between its statements":
            time.sleep(2.0)  # frozen, as far as the server can tell
        answer = int(conn.execute("SELECT 1").fetchone()[0])
        if len(runs) == 1 and stalls == "before its commit":
            time.sleep(2.0)
        return answer

    async def go() -> int:
        journal = PostgresJournal(postgres_url, idle_in_transaction=0.5)
        await journal.open()
        try:
            return await journal._write(stalls_the_first_time)
        finally:
            await journal.close()

    assert asyncio.run(go()) == 1
    assert len(runs) == 2


def test_an_idle_in_transaction_limit_that_could_not_work_is_refused() -> None:
    with pytest.raises(ValueError, match="idle_in_transaction must be positive"):
        PostgresJournal("postgresql://127.0.0.1/none", idle_in_transaction=0)


def test_a_scheduler_lock_that_could_not_be_kept_is_refused() -> None:
    with pytest.raises(ValueError, match=r"lead_silence must be over 2\.0 s"):
        PostgresJournal("postgresql://127.0.0.1/none", lead_silence=1.5)


LEADER = """
import asyncio, sys
from seamline.journal.postgres import PostgresJournal

async def main():
    journal = PostgresJournal(sys.argv[1], lead_silence=3)
    journal.lead(lambda leading: print("leading" if leading else "lost", flush=True))
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_a_frozen_scheduler_loses_its_lock_to_another_and_learns_it_when_thawed(
    postgres_url: str,
) -> None:
    """A frozen holder's connection stays open, so the lock would stay held for as long as it
    is frozen (and for hours after a host dies: the server's TCP keepalives are that slow)."""
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER, postgres_url], stdout=subprocess.PIPE, text=True
    )
    assert leader.stdout is not None
    said = leader.stdout

    async def go() -> list[str]:
        # Given a scheduler in another process holding the lock, then frozen
        heard = [await asyncio.wait_for(asyncio.to_thread(said.readline), 30)]
        assert heard == ["leading\n"]
        leader.send_signal(signal.SIGSTOP)
        # Then another takes the lock once the server has ended the silent session
        other = PostgresJournal(postgres_url, lead_silence=3)
        await other.open()
        took = asyncio.Event()
        other.lead(lambda leading: took.set() if leading else None)
        try:
            await asyncio.wait_for(took.wait(), 30)
            # And the frozen one, thawed, knows it no longer leads
            leader.send_signal(signal.SIGCONT)
            heard.append(await asyncio.wait_for(asyncio.to_thread(said.readline), 30))
        finally:
            await other.close()
        return heard

    try:
        assert asyncio.run(go()) == ["leading\n", "lost\n"]
    finally:
        leader.send_signal(signal.SIGCONT)
        leader.kill()
        leader.wait()
        said.close()


def test_tally_rows_of_ended_server_processes_are_folded_by_the_hourly_sweep(
    postgres_url: str,
) -> None:
    """Each server process counts settled deliveries in rows of its own; once it has ended,
    the retention sweep adds its rows into shard 0, and the counts stay what they were."""

    async def settle_one(journal: PostgresJournal, n: int) -> None:
        mid = await journal.append(message(n))
        assert mid is not None
        plain = NewDelivery("f", "v1", "sink", key=None, version=None, safe_retry=True)
        await journal.route([Routing(mid, "order.created", deliveries=[plain])])
        (c,) = await journal.claim(target="sink", owner="w", limit=10, lease=30)
        await journal.settle([done(c.id, c.token)])

    async def go() -> tuple[dict[str, int], dict[str, int], list[Any]]:
        first, second = PostgresJournal(postgres_url), PostgresJournal(postgres_url)
        await first.open()
        await second.open()
        await settle_one(first, 1)
        await settle_one(second, 2)
        ((gone,),) = await second._query("SELECT pg_backend_pid()")
        await second.close()
        counts = {r.state: r.count for r in await first.flow_counts()}
        left: list[Any] = [gone]
        for _ in range(50):  # until the server has seen the process end
            await first.purge(before=0.0)
            left = await first._query("SELECT shard FROM delivery_tally WHERE shard = %s", (gone,))
            if not left:
                break
            await asyncio.sleep(0.1)
        after = {r.state: r.count for r in await first.flow_counts()}
        await first.close()
        return counts, after, left

    counts, after, left = asyncio.run(go())
    assert counts == {"delivered": 2}
    assert left == []
    assert after == counts


def test_settles_in_flight_while_the_tally_is_made_are_counted_once(postgres_url: str) -> None:
    """A hub of the previous version settles a delivery while a new one migrates (several
    processes may start and run at once): the tally's backfill and its triggers between them
    count that change exactly once."""
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for number, script in migrations("postgres"):
            if number >= 10:  # the tally's migration
                break
            conn.execute(script.encode())
            conn.execute("INSERT INTO schema_version VALUES (%s)", (number,))
        conn.execute(
            "INSERT INTO message (system, source_id, received_at, state) "
            "VALUES ('shop', '1', 0, 'routed')"
        )
        for state in ("delivered", "leased", "pending"):
            conn.execute(
                "INSERT INTO delivery (message_id, flow, flow_version, target, safe_retry, "
                "state, due_at, created_at, updated_at) "
                "VALUES (1, 'f', 'v1', 'sink', true, %s, 0, 0, 0)",
                (state,),
            )
    old_hub = psycopg.connect(postgres_url)
    old_hub.execute("UPDATE delivery SET state = 'delivered' WHERE state = 'leased'")
    new_hub = psycopg.connect(postgres_url)
    migrating = threading.Thread(target=migrate, args=(new_hub,))
    migrating.start()
    with psycopg.connect(postgres_url, autocommit=True) as watch:
        for _ in range(100):  # until the migration waits for the old hub's transaction
            if watch.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone() != (0,):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the migration never waited for the transaction in flight")
    old_hub.commit()
    old_hub.close()
    migrating.join(timeout=30)
    new_hub.close()

    async def counts() -> dict[str, int]:
        journal = PostgresJournal(postgres_url)
        await journal.open()
        found = {r.state: r.count for r in await journal.flow_counts()}
        await journal.close()
        return found

    assert asyncio.run(counts()) == {"delivered": 2, "pending": 1}


def test_every_named_query_is_valid_on_postgresql(postgres_url: str) -> None:
    """PostgreSQL runs SQLite's named queries unless it has its own: a shared query written in
    SQLite's dialect only (json_each, INSERT OR IGNORE) needs a PostgreSQL block."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        migrate(conn)
        for name, sql in Q.items():
            params = dict.fromkeys(re.findall(r"%\((\w+)\)[sb]", sql))
            try:
                conn.execute(f"EXPLAIN {sql}".encode() if not params else f"EXPLAIN {sql}", params)
            except psycopg.Error as exc:
                pytest.fail(f"{name}: {str(exc).splitlines()[0]}")


def test_while_the_server_is_down_appends_fail_fast_and_resume_when_it_returns(
    own_postgres: LocalPostgres,
) -> None:
    url = own_postgres.create_database("j")

    async def go() -> None:
        journal = PostgresJournal(url, ack_timeout=2.0)
        await journal.open()
        assert await journal.append(message(1)) is not None
        own_postgres.crash()
        # Every append during the outage is refused within the ack timeout, never hangs
        for n in range(2, 6):
            started = time.monotonic()
            with pytest.raises(JournalBusy):
                await journal.append(message(n))
            assert time.monotonic() - started < 5.0  # the bound: never hangs
        assert journal.reachable is False  # readiness checks say so
        own_postgres.start()
        await journal.wait_connected(30)
        assert await journal.append(message(6)) is not None
        assert journal.reachable is True
        assert await journal.append(message(1)) is None  # the first survived the crash
        await journal.close()

    asyncio.run(go())


def test_workers_in_several_processes_never_lease_one_delivery_twice(postgres_url: str) -> None:
    # Given 400 deliveries over 40 ordering keys, claimed by 4 journals (4 processes' worth)
    async def go() -> tuple[list[int], int]:
        journals = [PostgresJournal(postgres_url) for _ in range(4)]
        for j in journals:
            await j.open()
        writer = journals[0]
        for n in range(400):
            mid = await writer.append(message(n))
            assert mid is not None
            d = NewDelivery("f", "v1", "target", f"k{n % 40}", None, True)
            await writer.route([Routing(mid, "order.created", deliveries=[d])])
        seen: list[int] = []
        concurrent_per_key = 0
        in_flight: set[str] = set()

        async def work(j: PostgresJournal, name: str) -> None:
            nonlocal concurrent_per_key
            idle = 0
            while idle < 5:
                batch = await j.claim(target="target", owner=name, limit=7, lease=30)
                if not batch:
                    idle += 1
                    await asyncio.sleep(0.02)
                    continue
                idle = 0
                for c in batch:
                    assert c.key is not None
                    if c.key in in_flight:
                        concurrent_per_key += 1
                    in_flight.add(c.key)
                seen.extend(c.id for c in batch)
                await asyncio.sleep(0.005)
                for c in batch:
                    in_flight.discard(c.key)  # type: ignore[arg-type]
                assert await j.settle([done(c.id, c.token) for c in batch]) == [True] * len(batch)

        await asyncio.gather(*(work(j, f"w{i}") for i, j in enumerate(journals)))
        for j in journals:
            await j.close()
        return seen, concurrent_per_key

    seen, concurrent_per_key = asyncio.run(go())
    # Then every delivery was leased exactly once, and never two of one key at a time
    assert sorted(seen) == list(range(1, 401))
    assert concurrent_per_key == 0


def routed(key: str, *, coalesce: bool = False) -> Routing:
    """A webhook's routing as an ingest process makes it: one delivery of `key`."""
    delivery = NewDelivery("stock", "v1", "erp", key, None, True, coalesce)
    return Routing(0, "inventory.changed", {"sku": key}, [delivery])


def test_routers_in_two_processes_make_a_key_s_deliveries_visible_in_their_order(
    postgres_url: str,
) -> None:
    async def go() -> list[int]:
        first, second, claimer = (PostgresJournal(postgres_url) for _ in range(3))
        for journal in (first, second, claimer):
            await journal.open()
        try:
            # Given one ingest process still committing update 1 of SKU-1 (its group is busy
            # with something else after it)
            earlier = asyncio.ensure_future(first.append(message(1), routed("SKU-1")))
            stall = asyncio.ensure_future(first._write(lambda conn: time.sleep(1.0)))
            await asyncio.sleep(0.3)
            # When another ingest process journals update 2 of the same SKU meanwhile
            later = asyncio.ensure_future(second.append(message(2), routed("SKU-1")))
            await asyncio.sleep(0.3)
            # Then a worker claiming all along gets update 1 first, then update 2
            order: list[int] = []
            deadline = time.monotonic() + 10
            while len(order) < 2 and time.monotonic() < deadline:
                claimed = await claimer.claim(target="erp", owner="w", limit=10, lease=30)
                order += [c.message_id for c in claimed]
                if claimed:
                    await claimer.settle([done(c.id, c.token) for c in claimed])
                await asyncio.sleep(0.05)
            await asyncio.gather(earlier, stall, later)
            return [order.index(m) for m in (earlier.result(), later.result())]
        finally:
            for journal in (first, second, claimer):
                await journal.close()

    assert asyncio.run(go()) == [0, 1]


def test_routers_in_two_processes_coalescing_the_same_keys_refuse_nothing(
    postgres_url: str,
) -> None:
    # Given two ingest processes routing stock levels of the same 20 SKUs at once, each
    # superseding the pending levels of its SKUs
    skus = [f"SKU-{i}" for i in range(20)]
    pick = random.Random(22).choice  # each group meets the SKUs in an order of its own

    async def go() -> tuple[list[BaseException | int | None], list[bool]]:
        journals = [PostgresJournal(postgres_url) for _ in range(2)]
        for journal in journals:
            await journal.open()
        outcomes: list[BaseException | int | None] = []
        ready = []
        try:
            n = 0
            for _ in range(8):
                appends = []
                for journal in journals:
                    for _ in range(200):
                        n += 1
                        appends.append(
                            journal.append(message(n), routed(pick(skus), coalesce=True))
                        )
                outcomes += await asyncio.gather(*appends, return_exceptions=True)
                ready.append(all(j.reachable for j in journals))
        finally:
            for journal in journals:
                await journal.close()
        return outcomes, ready

    outcomes, ready = asyncio.run(go())
    # Then every webhook is journaled, no process ever took itself for cut off, and one
    # level per SKU is left pending
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert refused == [] and all(ready)
    with psycopg.connect(postgres_url) as conn:
        pending = conn.execute(
            "SELECT key, count(*) FROM delivery WHERE state = 'pending' GROUP BY key"
        ).fetchall()
    assert sorted(pending) == sorted((sku, 1) for sku in skus)


def test_a_routing_the_database_refuses_leaves_the_message_for_the_router(
    postgres_url: str,
) -> None:
    async def go() -> int | None:
        journal = PostgresJournal(postgres_url)
        await journal.open()
        try:
            # Given a routing PostgreSQL cannot store (a NUL in a text column)
            bad = Routing(0, "order.\x00created", deliveries=routed("1001").deliveries)
            return await journal.append(message(1), bad)
        finally:
            await journal.close()

    # Then the message is journaled all the same, waiting for the router
    mid = asyncio.run(go())
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT id, state FROM message").fetchall()
        made = conn.execute("SELECT count(*) FROM delivery").fetchone()
    assert rows == [(mid, "received")] and made == (0,)
