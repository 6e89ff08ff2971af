"""Both journals, SQLite on a real file and PostgreSQL on a real server: durability settings,
dedupe, group commit, claims, fencing, failures."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import math
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import seamline.journal.group_commit
import seamline.journal.sqlite
from seamline.errors import JournalBusy, JournalError
from seamline.journal.base import NewDelivery, NewMessage, Routing, Selection, Settlement
from seamline.journal.group_commit import Gathering, GroupCommitJournal
from seamline.journal.sqlite import SqliteJournal, check_durable
from tests.conftest import Backend


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


async def opened(backend: Backend, **kw: object) -> GroupCommitJournal:
    journal = backend.make(**kw)
    await journal.open()
    return journal


def message(n: int, system: str = "shop") -> NewMessage:
    return NewMessage(system, f"msg-{n}", time.time(), b"{}", b'{"n": %d}' % n)


def delivery(
    flow: str = "f",
    key: str | None = None,
    version: float | None = None,
    *,
    coalesce: bool = False,
    safe: bool = True,
) -> NewDelivery:
    return NewDelivery(flow, "v1", "target", key, version, safe, coalesce)


async def journal_with(backend: Backend, plan: list[NewDelivery]) -> GroupCommitJournal:
    """A journal holding one message per planned delivery, routed in order."""
    journal = await opened(backend)
    for i, d in enumerate(plan):
        mid = await journal.append(message(i))
        assert mid is not None
        await journal.route([Routing(mid, "order.created", deliveries=[d])])
    return journal


def done(
    claimed_id: int,
    token: int,
    state: str = "delivered",
    *,
    due: float = 0.0,
    key: str | None = None,
    version: float | None = None,
) -> Settlement:
    return Settlement(
        claimed_id,
        token,
        state,
        1,
        due,
        None,
        None,
        None,  # type: ignore[arg-type]
        flow="f",
        key=key,
        applied_version=version,
    )


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_journal_is_wal_with_synchronous_full(journal_path: Path) -> None:
    async def go() -> None:
        journal = SqliteJournal(journal_path)
        await journal.open()
        await journal.close()

    run(go())
    conn = sqlite3.connect(journal_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("PRAGMA synchronous = NORMAL")
    with pytest.raises(JournalError, match="synchronous=FULL"):
        check_durable(conn)
    conn.close()


@pytest.mark.parametrize(("made_with", "expected"), [(None, 16384), (4096, 4096)])
def test_a_new_journal_has_large_pages_and_an_older_one_keeps_its_own(
    journal_path: Path, made_with: int | None, expected: int
) -> None:
    if made_with is not None:  # a journal made by an earlier version, with SQLite's default
        conn = sqlite3.connect(journal_path)
        conn.execute(f"PRAGMA page_size = {made_with}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE made_before (x)")
        conn.close()

    async def go() -> int | None:
        journal = SqliteJournal(journal_path)
        await journal.open()
        try:
            return await journal.append(NewMessage("shop", "m-1", time.time(), b"{}", b"x" * 3000))
        finally:
            await journal.close()

    assert run(go()) == 1
    conn = sqlite3.connect(journal_path)
    assert conn.execute("PRAGMA page_size").fetchone()[0] == expected
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


@pytest.mark.parametrize(
    ("pragma", "writer", "reader"),
    [
        # A statement journal past 64 KiB went to a temporary file, created and unlinked at
        # nearly every commit under load: the writer keeps temporary data in memory (2); the
        # reader, whose sorts may be large, keeps SQLite's default (0).
        ("temp_store", 2, 0),
        # A commit past SQLite's default of 1,000 pages (16 MiB here) checkpointed that much
        # before acknowledging its group: 4 MiB, SQLite's default in bytes.
        ("wal_autocheckpoint", 256, 256),
    ],
)
def test_the_journals_connection_settings(
    journal_path: Path, pragma: str, writer: int, reader: int
) -> None:
    async def go() -> tuple[Any, Any]:
        journal = SqliteJournal(journal_path)
        await journal.open()
        try:
            on_writer = await journal._write(
                lambda conn: conn.execute(f"PRAGMA {pragma}").fetchone()[0]
            )
            return on_writer, (await journal._query(f"PRAGMA {pragma}"))[0][0]
        finally:
            await journal.close()

    assert run(go()) == (writer, reader)


def test_an_sqlite_too_old_for_the_journal_is_refused_with_what_to_do(
    journal_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")

    async def go() -> None:
        await SqliteJournal(journal_path).open()

    with pytest.raises(JournalError, match=r"SQLite 3\.31\.1; the journal needs 3\.35\.0 or newer"):
        run(go())


def test_a_long_read_on_sqlite_leaves_the_event_loop_to_ingest(journal_path: Path) -> None:
    """Reads (a chart, a search, a count) run beside the event loop, not in it: a webhook is
    journaled and acknowledged while a long read is still going."""
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000) "
        "SELECT count(*) FROM n"
    )

    async def go() -> tuple[bool, int | None, int]:
        journal = SqliteJournal(journal_path)
        await journal.open()
        read = asyncio.create_task(journal._query(slow))
        await asyncio.sleep(0)  # the read has begun
        appended = await journal.append(message(1))
        still_reading = not read.done()
        counted = (await read)[0][0]
        await journal.close()
        return still_reading, appended, counted

    still_reading, appended, counted = asyncio.run(go())
    assert appended is not None and counted == 5_000_000
    assert still_reading


def test_same_source_id_is_journaled_once(backend: Backend) -> None:
    async def go() -> tuple[int | None, int | None, int | None]:
        journal = await opened(backend)
        first = await journal.append(message(1))
        again = await journal.append(message(1))
        other_system = await journal.append(message(1, system="erp"))
        await journal.close()
        return first, again, other_system

    first, again, other = run(go())  # type: ignore[misc]
    assert first is not None and again is None and other is not None


def test_repeats_in_one_commit_are_journaled_once_and_each_new_message_gets_its_id(
    backend: Backend,
) -> None:
    async def go() -> tuple[list[int | None], list[tuple[int, str]]]:
        journal = await opened(backend)
        await journal.append(message(1))
        # Given messages arriving together: new ones, a repeat of one of them, an old one
        ids = await asyncio.gather(
            *(journal.append(message(n)) for n in (2, 1, 3, 2, 4)),
            journal.append(message(3, system="erp")),
        )
        rows = await journal._query("SELECT id, source_id FROM message WHERE system = 'shop'")
        await journal.close()
        return list(ids), [(int(r[0]), str(r[1])) for r in rows]

    ids, rows = run(go())  # type: ignore[misc]
    # Then each new message has the id it was stored under, and the repeats have none
    stored = {source_id: id_ for id_, source_id in rows}
    assert ids[:5] == [stored["msg-2"], None, stored["msg-3"], None, stored["msg-4"]]
    assert ids[5] is not None and ids[5] not in stored.values()
    assert len(rows) == 4


def test_concurrent_appends_share_commits(backend: Backend) -> None:
    # Given 2,000 webhooks arriving at once
    async def go() -> tuple[int, int]:
        journal = await opened(backend)
        ids = await asyncio.gather(*(journal.append(message(i)) for i in range(2000)))
        commits = journal.commits
        await journal.close()
        return len({i for i in ids if i is not None}), commits

    stored, commits = run(go())  # type: ignore[misc]
    # Then all are stored, with far fewer commits (fsyncs) than messages
    assert stored == 2000
    assert commits < 200


def test_under_a_heavy_load_the_writer_gathers_larger_groups(backend: Backend) -> None:
    # Given a journal that, after finding 2 or more waiting, gathers until 10 wait (pause and
    # longest wait far beyond the test)
    async def go() -> int:
        journal = await opened(backend, gather=Gathering(after=2, target=10, pause=30, longest=30))
        await asyncio.gather(journal.append(message(1)), journal.append(message(2)))
        before = journal.commits
        # When ten webhooks arrive 10 ms apart
        appends = []
        for n in range(10, 20):
            appends.append(asyncio.ensure_future(journal.append(message(n))))
            await asyncio.sleep(0.01)
        ids = await asyncio.gather(*appends)
        assert None not in ids
        commits = journal.commits - before
        await journal.close()
        return commits

    # Then they are committed together (without gathering: ten commits)
    assert run(go()) == 1


@pytest.mark.parametrize(
    ("heavy_before", "pause", "longest", "apart", "commits"),
    [
        # after light traffic a lone webhook is committed at once, whatever the gathering:
        # the next one, 50 ms later, goes in a commit of its own
        (False, 30.0, 30.0, 0.05, 2),
        # after heavy traffic it is held while more may arrive: the next one joins it
        (True, 30.0, 30.0, 0.05, 1),
        # but not once nothing more has arrived for `pause`
        (True, 0.02, 30.0, 0.5, 2),
        # nor for longer than `longest`
        (True, 30.0, 0.02, 0.5, 2),
    ],
)
def test_gathering_holds_a_webhook_only_while_more_may_arrive(
    backend: Backend,
    heavy_before: bool,
    pause: float,
    longest: float,
    apart: float,
    commits: int,
) -> None:
    # Given a journal that gathers after finding 2 waiting, until 2 wait
    async def go() -> tuple[int, int]:
        gather = Gathering(after=2, target=2, pause=pause, longest=longest)
        journal = await opened(backend, gather=gather)
        first = (1, 2) if heavy_before else (1,)
        await asyncio.gather(*(journal.append(message(n)) for n in first))
        before = journal.commits
        # When two webhooks arrive `apart` seconds apart
        one = asyncio.ensure_future(journal.append(message(3)))
        await asyncio.sleep(apart)
        two = asyncio.ensure_future(journal.append(message(4)))
        assert None not in await asyncio.gather(one, two)
        made = journal.commits - before
        await journal.close()
        return before, made

    before, made = run(go())  # type: ignore[misc]
    assert before == 1  # the first webhooks made one group
    # Then they are committed together or apart, as the case says
    assert made == commits


def test_gathering_stops_when_the_backlog_is_light_again(backend: Backend) -> None:
    # Given a journal that gathers after finding 3 waiting, until 3 wait
    async def go() -> int:
        gather = Gathering(after=3, target=3, pause=30, longest=30)
        journal = await opened(backend, gather=gather)
        await asyncio.gather(*(journal.append(message(n)) for n in (1, 2, 3)))
        # and then three webhooks 10 ms apart, which the writer gathers into one group
        # although it found one waiting
        appends = []
        for n in (4, 5, 6):
            appends.append(asyncio.ensure_future(journal.append(message(n))))
            await asyncio.sleep(0.01)
        await asyncio.gather(*appends)
        before = journal.commits
        # When two more arrive 50 ms apart
        one = asyncio.ensure_future(journal.append(message(7)))
        await asyncio.sleep(0.05)
        two = asyncio.ensure_future(journal.append(message(8)))
        assert None not in await asyncio.gather(one, two)
        made = journal.commits - before
        await journal.close()
        return made

    # Then each is committed at once: the gathered group's size does not keep gathering on
    assert run(go()) == 2


def test_messages_routed_as_they_arrive_are_stored_with_their_verdicts_and_deliveries(
    backend: Backend,
) -> None:
    # Given one group of arrivals: routed with a delivery, routed to no flow, rejected, a
    # repeat of the first (routed again), and one left for the router
    arrivals = [
        (message(1), Routing(0, "order.created", {"order": "1001"}, [delivery(key="1001")])),
        (message(2), Routing(0, "order.paid")),
        (message(3), Routing(0, None, rejected="no id in the order")),
        (message(1), Routing(0, "order.created", deliveries=[delivery(key="1001")])),
        (message(4), None),
    ]

    async def go() -> tuple[list[int | None], list[list[int]]]:
        journal = await opened(backend)
        heard: list[list[int]] = []
        journal.on_append(lambda stored: heard.append([m.id for m in stored]))
        ids = await asyncio.gather(*(journal.append(m, r) for m, r in arrivals))
        await asyncio.sleep(0)  # listeners hear in the event loop, after the results
        await journal.close()
        return list(ids), heard

    ids, heard = run(go())  # type: ignore[misc]
    first, second, third, repeat, fourth = ids
    assert repeat is None and None not in (first, second, third, fourth)
    # Then each message is stored with its verdict, in the same commit as its deliveries
    messages = backend.rows("SELECT id, state, event, reason FROM message ORDER BY id")
    assert messages == [
        (first, "routed", "order.created", None),
        (second, "routed", "order.paid", None),
        (third, "rejected", None, "no id in the order"),
        (fourth, "received", None, None),
    ]
    deliveries = backend.rows("SELECT message_id, flow, key, state FROM delivery")
    assert deliveries == [(first, "f", "1001", "pending")]
    assert backend.rows("SELECT name, value, message_id FROM message_key") == [
        ("order", "1001", first)
    ]
    # And only the message left unrouted is handed to the router
    assert heard == [[fourth]]


def test_second_hub_on_the_same_file_is_refused(journal_path: Path) -> None:
    async def go() -> None:
        first = SqliteJournal(journal_path, exclusive=True)
        await first.open()
        try:
            with pytest.raises(JournalError, match="another Seamline hub"):
                await SqliteJournal(journal_path, exclusive=True).open()
        finally:
            await first.close()

    run(go())


async def hub_with_one_delivery(journal_path: Path) -> SqliteJournal:
    """A hub's journal on `journal_path` holding one message routed to one pending delivery."""
    hub = SqliteJournal(journal_path, exclusive=True)
    await hub.open()
    mid = await hub.append(message(1))
    assert mid is not None
    await hub.route([Routing(mid, "order.created", deliveries=[delivery()])])
    return hub


def test_one_process_delivers_from_a_file_and_only_it_hands_back_every_lease(
    journal_path: Path,
) -> None:
    async def go() -> None:
        # Given a hub and its worker process on one file, the worker delivering with a lease
        hub = await hub_with_one_delivery(journal_path)
        worker = SqliteJournal(journal_path)
        await worker.open()
        await worker.hold_deliveries(within=1.0)
        (claimed,) = await worker.claim(target="target", owner="w1", limit=1, lease=60)
        # Then no other process may hand back every lease, nor deliver while the worker lives
        with pytest.raises(JournalError, match="only the process that delivers"):
            await hub.expire_all_leases()
        second = SqliteJournal(journal_path)
        await second.open()
        with pytest.raises(JournalError, match=r"another process \(pid \d+\) delivers"):
            await second.hold_deliveries(within=0.3)
        # And the lease stays the worker's, which records its outcome
        assert await worker.settle([done(claimed.id, claimed.token)]) == [True]
        await worker.close()
        # When the worker is gone, its successor delivers
        await second.hold_deliveries(within=1.0)
        assert await second.expire_all_leases() == []
        await second.close()
        await hub.close()

    run(go())


def test_after_the_upgrade_the_next_deliverer_counts_the_tally_afresh(journal_path: Path) -> None:
    """Migration 0008 dropped the triggers that counted settled deliveries: a worker process of
    the previous version, finishing its batch after it, settled without counting."""

    async def go() -> None:
        # Given a journal just migrated, and a delivery settled as the previous version did
        hub = await hub_with_one_delivery(journal_path)
        await hub._write(lambda conn: conn.execute("UPDATE delivery SET state = 'delivered'"))
        assert {r.state for r in await hub.flow_counts()} == set()
        # When the next process to deliver takes over
        await hub.hold_deliveries(within=1.0)
        await hub.expire_all_leases()
        # Then the tally is the table's, and it is counted afresh only that once
        assert [(r.state, r.count) for r in await hub.flow_counts()] == [("delivered", 1)]
        await hub._write(lambda conn: conn.execute("DELETE FROM delivery_tally"))
        await hub.expire_all_leases()
        assert await hub.flow_counts() == []
        await hub.close()

    run(go())


@contextlib.contextmanager
def another_process_writing(journal_path: Path) -> Iterator[None]:
    """Hold the file's write lock as a process in the middle of a write does."""
    fd = os.open(f"{journal_path}.write.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def test_a_write_waits_while_another_process_writes(journal_path: Path) -> None:
    async def go() -> None:
        journal = SqliteJournal(journal_path)
        await journal.open()
        # Given another process in the middle of a write (it holds the write lock)
        with another_process_writing(journal_path):
            # When this one appends, it waits its turn
            append = asyncio.ensure_future(journal.append(message(1)))
            await asyncio.sleep(0.3)
            assert not append.done()
        # Then it is written once the other is done
        assert await append == 1
        await journal.close()

    run(go())


def test_writes_are_refused_at_once_when_another_process_keeps_writing_too_long(
    journal_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seamline.journal.sqlite, "WRITE_WAIT", 0.3)
    waits: list[bool] = []
    acquire = seamline.journal.sqlite._WriteLock.acquire

    def counted(self: seamline.journal.sqlite._WriteLock, timeout: float) -> bool:
        got = acquire(self, timeout)
        if not got:
            waits.append(got)
        return got

    monkeypatch.setattr(seamline.journal.sqlite._WriteLock, "acquire", counted)

    async def go() -> None:
        journal = SqliteJournal(journal_path)
        await journal.open()
        # Given another process stopped in the middle of a write
        with another_process_writing(journal_path):
            # When 50 webhooks arrive, they are refused together after one wait (not each
            # after a wait of its own), as SQLite refuses a file locked too long
            refused = await asyncio.gather(
                *(journal.append(message(i)) for i in range(50)), return_exceptions=True
            )
            assert all(isinstance(r, JournalBusy) for r in refused), refused[:3]
            assert "database is locked" in str(refused[0])
            assert len(waits) < 5, f"{len(waits)} waits for 50 webhooks"
            # And the lock this journal's waiting thread takes after it gave up is let go
            # for the others
        deadline = time.monotonic() + 5
        while not another_process_can_write(journal_path):
            assert time.monotonic() < deadline, "the write lock was kept"
            await asyncio.sleep(0.05)
        # Then the next write goes through
        assert await journal.append(message(99)) is not None
        await journal.close()

    run(go())


def another_process_can_write(journal_path: Path) -> bool:
    fd = os.open(f"{journal_path}.write.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_claim_gives_each_delivery_as_it_was_routed_to_the_last_digit(
    backend: Backend,
) -> None:
    """What a worker sends and compares comes back exactly: a source version with every
    digit a float has (stale skipping compares them), none where the flow has none, the
    message's bytes, no payload unless an operator edited one, and then that one."""
    version = 1_764_512_345.123_456_7
    body = b'{"id": 7, "note": "\\u00e9\xc3\xa9 \\"quoted\\""}'

    async def go() -> None:
        journal = await opened(backend)
        mid = await journal.append(NewMessage("shop", "msg-7", time.time(), b'{"a": "b"}', body))
        assert mid is not None
        plain = await journal.append(message(8))
        assert plain is not None
        await journal.route(
            [
                Routing(mid, "order.updated", deliveries=[delivery("f", "K", version)]),
                Routing(plain, "order.updated", deliveries=[delivery("g")]),
            ]
        )
        claimed, unversioned = await journal.claim(target="target", owner="w", limit=10, lease=30)
        assert (claimed.version, claimed.key, claimed.payload) == (version, "K", None)
        assert (unversioned.version, unversioned.key, unversioned.body) == (None, None, b'{"n": 8}')
        assert (claimed.system, claimed.headers, claimed.body) == ("shop", b'{"a": "b"}', body)
        assert claimed.attempts == 0 and claimed.token >= 1
        assert await journal.settle([done(claimed.id, claimed.token, "dead")]) == [True]
        edited = b'{"id": 7, "edited": true}'
        await journal.replay([claimed.id], actor="t", flow_versions={}, payload=edited)
        (again,) = await journal.claim(target="target", owner="w", limit=10, lease=30)
        assert (again.id, again.payload, again.version) == (claimed.id, edited, version)
        assert again.token > claimed.token
        await journal.close()

    run(go())


def test_a_claim_that_cannot_hand_over_its_deliveries_gives_the_leases_back(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing was sent: the deliveries are due again at once, not when the lease runs out
    (then a delivery unsafe to repeat would go to review)."""

    async def go() -> None:
        journal = await journal_with(backend, [delivery(key="A", safe=False), delivery()])

        def broken(conn: Any, rows: list[Any]) -> dict[int, Any]:
            raise OSError("disk I/O error")

        monkeypatch.setattr(journal, "_claimed_messages", broken)
        with pytest.raises(JournalError, match="after the commit"):
            await journal.claim(target="target", owner="w", limit=10, lease=3600)
        monkeypatch.undo()
        again = await journal.claim(target="target", owner="w", limit=10, lease=3600)
        assert [c.message_id for c in again] == [1, 2]
        await journal.close()

    run(go())


def test_outcomes_are_recorded_as_given_whatever_their_text_or_time(backend: Backend) -> None:
    """An error quoting an answer verbatim, and a wait with no end, land as they were given.
    (PostgreSQL's text holds no NUL: the worker writes one out before it settles.)"""
    error = "server error 500: <\0h\0t\0m\0l\0>" if backend.name == "sqlite" else "é \u2028 ✓"

    async def go() -> None:
        journal = await journal_with(backend, [delivery(), delivery()])
        first, second = await journal.claim(target="target", owner="w", limit=10, lease=30)
        held = Settlement(first.id, first.token, "pending", 1, math.inf, "transient", error, None)
        assert await journal.settle([held, done(second.id, second.token)]) == [True, True]
        assert await journal.claim(target="target", owner="w", limit=10, lease=30) == []
        await journal.close()

    run(go())
    (row,) = backend.rows("SELECT due_at, last_error, error_class FROM delivery WHERE id = 1")
    assert (row[0], row[1], row[2]) == (math.inf, error, "transient")


def test_only_the_head_of_each_key_is_claimed(backend: Backend) -> None:
    async def go() -> None:
        journal = await journal_with(
            backend,
            [
                delivery(key="A"),
                delivery(key="A"),
                delivery(key="B"),
                delivery(key=None),
            ],
        )
        first = await journal.claim(target="target", owner="w", limit=10, lease=30)
        assert [c.message_id for c in first] == [1, 3, 4]
        # While A's head is in flight, nothing more of A
        assert await journal.claim(target="target", owner="w", limit=10, lease=30) == []
        head = first[0]
        await journal.settle([done(head.id, head.token)])
        second = await journal.claim(target="target", owner="w", limit=10, lease=30)
        assert [c.message_id for c in second] == [2]
        await journal.close()

    run(go())


def test_a_retrying_head_holds_back_its_key_only_and_a_dead_one_does_not(
    backend: Backend,
) -> None:
    async def go() -> None:
        journal = await journal_with(
            backend,
            [
                delivery(key="A"),
                delivery(key="A"),
                delivery(key="B"),
                delivery(key="B"),
            ],
        )
        a1, b1 = await journal.claim(target="target", owner="w", limit=10, lease=30)
        await journal.settle(
            [
                done(a1.id, a1.token, "pending", due=time.time() + 3600),  # retrying in an hour
                done(b1.id, b1.token, "dead"),
            ]
        )
        claimed = await journal.claim(target="target", owner="w", limit=10, lease=30)
        assert [c.message_id for c in claimed] == [4]
        await journal.close()

    run(go())


def test_a_flow_ordered_after_another_waits_for_its_earlier_delivery_of_the_key(
    backend: Backend,
) -> None:
    def order(key: str) -> NewDelivery:
        return NewDelivery("orders", "v1", "target", key, None, True)

    def cancel(key: str) -> NewDelivery:
        return NewDelivery("cancels", "v1", "target", key, None, True, waits_for="orders")

    async def go() -> None:
        # Given an order and its cancellation (A), a cancellation of an order long done (B),
        # an order alone (C), and a cancellation that came before its order (D)
        journal = await journal_with(
            backend, [order("A"), cancel("A"), cancel("B"), order("C"), cancel("D"), order("D")]
        )
        # When the target's deliveries are claimed
        first = await journal.claim(target="target", owner="w", limit=10, lease=30)
        # Then A's cancellation waits for A's order; an order never waits for a cancellation
        assert [c.message_id for c in first] == [1, 3, 4, 5, 6]
        assert await journal.claim(target="target", owner="w", limit=10, lease=30) == []
        # and it goes once the order is settled
        await journal.settle([done(first[0].id, first[0].token)])
        second = await journal.claim(target="target", owner="w", limit=10, lease=30)
        assert [c.message_id for c in second] == [2]
        await journal.close()

    run(go())


def test_a_coalescing_flow_ordered_after_another_waits_when_routed_in_one_batch(
    backend: Backend,
) -> None:
    async def go() -> None:
        # Given an order and an update of it (a coalescing flow ordered after the orders),
        # routed together
        journal = await opened(backend)
        first, second = [await journal.append(message(i)) for i in (1, 2)]
        assert first is not None and second is not None
        update = NewDelivery("updates", "v1", "target", "K", None, True, True, "orders")
        await journal.route(
            [
                Routing(first, "order.created", deliveries=[NewDelivery(*ORDER_K)]),
                Routing(second, "order.updated", deliveries=[update]),
            ]
        )
        # When the target's deliveries are claimed, then only the order goes
        claimed = await journal.claim(target="target", owner="w", limit=10, lease=30)
        assert [c.message_id for c in claimed] == [first]
        await journal.close()

    run(go())


def test_waits_follow_the_live_flows_not_those_of_the_routing(backend: Backend) -> None:
    async def go() -> None:
        # Given an order, and a cancellation routed while the cancellations were ordered after it
        journal = await journal_with(
            backend,
            [
                NewDelivery(*ORDER_K),
                NewDelivery("cancels", "v1", "target", "K", None, True, waits_for="orders"),
            ],
        )
        # When the live cancellations are no longer ordered after the orders
        changed = await journal.order_after({"cancels": None, "orders": None})
        claimed = await journal.claim(target="target", owner="w", limit=10, lease=30)
        # Then the cancellation no longer waits; said again, nothing changes
        assert changed == 1
        assert [c.message_id for c in claimed] == [1, 2]
        assert await journal.order_after({"cancels": None}) == 0
        await journal.close()

    run(go())


ORDER_K = ("orders", "v1", "target", "K", None, True)


def test_coalescing_supersedes_older_pending_values(backend: Backend) -> None:
    async def go() -> None:
        journal = await journal_with(
            backend, [delivery(key="SKU-1", coalesce=True) for _ in range(3)]
        )
        claimed = await journal.claim(target="target", owner="w", limit=10, lease=30)
        assert [c.message_id for c in claimed] == [3]
        skipped = await journal.select(Selection(states=("skipped",)))
        assert len(skipped) == 2
        assert all("superseded" in str(r["last_error"]) for r in skipped)
        await journal.close()

    run(go())


def test_stale_versions_are_skipped_with_a_reason(backend: Backend) -> None:
    async def go() -> None:
        journal = await journal_with(
            backend,
            [
                delivery(key="order-1", version=200.0),
                delivery(key="order-1", version=100.0),
            ],
        )
        (newer,) = await journal.claim(target="target", owner="w", limit=10, lease=30)
        await journal.settle([done(newer.id, newer.token, key="order-1", version=200.0)])
        assert await journal.claim(target="target", owner="w", limit=10, lease=30) == []
        (stale,) = await journal.select(Selection(states=("skipped",)))
        assert "stale" in str(stale["last_error"])
        await journal.close()

    run(go())


def test_an_outcome_with_an_old_lease_token_is_not_recorded(backend: Backend) -> None:
    async def go() -> None:
        journal = await journal_with(backend, [delivery()])
        (first,) = await journal.claim(target="target", owner="slow", limit=1, lease=0.01)
        await asyncio.sleep(0.05)
        await journal.expire_leases()
        (again,) = await journal.claim(target="target", owner="fast", limit=1, lease=30)
        assert again.token == first.token + 1
        assert await journal.settle([done(first.id, first.token, "dead")]) == [False]
        assert await journal.settle([done(again.id, again.token)]) == [True]
        (row,) = await journal.select(Selection(states=("delivered",)))
        assert row["id"] == first.id
        await journal.close()

    run(go())


def test_expired_leases_go_back_to_pending_or_to_review_when_a_repeat_is_unsafe(
    backend: Backend,
) -> None:
    async def go() -> None:
        journal = await journal_with(backend, [delivery(safe=True), delivery(safe=False)])
        await journal.claim(target="target", owner="w", limit=10, lease=0.01)
        await asyncio.sleep(0.05)
        assert len(await journal.expire_leases()) == 2
        assert [r["message_id"] for r in await journal.select(Selection(states=("pending",)))] == [
            1
        ]
        (review,) = await journal.select(Selection(states=("review",)))
        assert "outcome unknown" in str(review["last_error"])
        await journal.close()

    run(go())


def test_pending_deliveries_to_a_target_no_flow_has_become_replayable_dead_letters(
    backend: Backend,
) -> None:
    async def go() -> None:
        gone = NewDelivery("f", "v1", "old-erp", None, None, True, False)
        journal = await journal_with(backend, [delivery(), gone])
        # When the project's flows deliver to "target" only
        assert await journal.dead_without_target({"target"}) == {"old-erp": 1}
        # Then the delivery to the system no flow delivers to is a dead letter saying why
        (dead,) = await journal.select(Selection(states=("dead",)))
        assert dead["target"] == "old-erp"
        assert dead["error_class"] == "contract"
        assert "no flow of the project delivers to target system 'old-erp'" in str(
            dead["last_error"]
        )
        # And the other still waits; and once the system is back, the dead letter replays
        assert len(await journal.select(Selection(states=("pending",)))) == 1
        assert await journal.dead_without_target({"target"}) == {}
        replayed = await journal.replay([dead["id"]], actor="test", flow_versions={"f": "v1"})
        assert replayed == 1
        assert len(await journal.select(Selection(states=("pending",)))) == 2
        await journal.close()

    run(go())


@pytest.mark.parametrize("bulk_rows", [2, 5, 100])
def test_bulk_updates_change_every_delivery_in_commits_of_bounded_size(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, bulk_rows: int
) -> None:
    """Releasing a recovered target's deliveries, and dead-lettering a gone target's, change
    at most `BULK_ROWS` a commit (a statement journal and a write lock of bounded size) and
    change them all: fewer than, exactly, and more than one commit's worth."""
    monkeypatch.setattr(seamline.journal.group_commit, "BULK_ROWS", bulk_rows)
    gone = NewDelivery("f", "v1", "old-erp", None, None, True, False)
    commits: list[int] = []

    async def go() -> None:
        journal = await journal_with(backend, [delivery()] * 5 + [gone] * 5 + [delivery()])
        write = journal._write

        async def counted(op: Any) -> Any:
            result = await write(op)
            if isinstance(result, int):
                commits.append(result)
            return result

        journal._write = counted  # type: ignore[method-assign]
        # Given: six deliveries to "target" wait out its outage
        claimed = await journal.claim(target="target", owner="w", limit=10, lease=30)
        later = time.time() + 3600
        await journal.settle(
            [
                Settlement(c.id, c.token, "pending", 1, later, "transient", "503", None)
                for c in claimed
            ]
        )
        # When: the target is back, and no flow delivers to "old-erp" any more
        commits.clear()
        assert await journal.release_held("target") == 6
        released = list(commits)
        commits.clear()
        assert await journal.dead_without_target({"target"}) == {"old-erp": 5}
        # Then: every held one is due, every one to old-erp is dead, in bounded commits
        assert len(await journal.claim(target="target", owner="w", limit=10, lease=30)) == 6
        assert len(await journal.select(Selection(states=("dead",)))) == 5
        await journal.close()
        for done_in in (released, commits):
            assert done_in and all(n <= bulk_rows for n in done_in), done_in
        assert sum(released) == 6 and sum(commits) == 5

    run(go())


def test_retention_purges_payloads_but_keeps_ids_and_outcomes(backend: Backend) -> None:
    async def go() -> None:
        journal = await journal_with(backend, [delivery()])
        assert await journal.purge(before=time.time() + 1) >= 1
        await journal.close()

    run(go())
    assert backend.rows("SELECT source_id, body FROM message") == [("msg-0", None)]
    assert backend.rows("SELECT count(*) FROM delivery") == [(1,)]


def test_a_failing_operation_fails_alone(backend: Backend) -> None:
    async def go() -> None:
        journal = await opened(backend)

        def broken(conn: Any) -> None:
            conn.execute("INSERT INTO no_such_table VALUES (1)")

        results = await asyncio.gather(
            journal.append(message(1)),
            journal._write(broken),
            journal.append(message(2)),
            return_exceptions=True,
        )
        assert isinstance(results[0], int) and isinstance(results[2], int)
        assert isinstance(results[1], JournalError)
        assert "no_such_table" in str(results[1])
        await journal.close()

    run(go())


def test_a_write_that_runs_out_of_memory_fails_as_the_journals_failure(backend: Backend) -> None:
    async def go() -> None:
        journal = await opened(backend)

        def starved(conn: Any) -> None:
            raise MemoryError  # as SQLite's SQLITE_NOMEM arrives in Python

        results = await asyncio.gather(
            journal.append(message(1)), journal._write(starved), return_exceptions=True
        )
        assert isinstance(results[0], int)
        assert isinstance(results[1], JournalError)
        assert "MemoryError" in str(results[1])
        assert isinstance(await journal.append(message(2)), int)
        await journal.close()

    run(go())


def test_an_append_stuck_behind_a_stalled_writer_is_refused_and_not_journaled(
    backend: Backend,
) -> None:
    async def go() -> None:
        journal = await opened(backend, ack_timeout=0.2)
        # Given a writer busy for a second
        stall = asyncio.ensure_future(journal._write(lambda conn: time.sleep(1.0)))
        await asyncio.sleep(0.1)
        # When a webhook's message waits behind it
        started = time.monotonic()
        with pytest.raises(JournalBusy):
            await journal.append(message(1))
        # Then it is refused soon after the ack timeout, and never written
        assert time.monotonic() - started < 0.9
        await stall
        assert await journal.append(message(2)) is not None
        await journal.close()

    run(go())
    assert backend.rows("SELECT source_id FROM message") == [("msg-2",)]


def test_a_journal_closed_and_opened_again_keeps_writing(backend: Backend) -> None:
    async def go() -> list[int | None]:
        journal = await opened(backend)
        await journal.append(message(1))
        await journal.close()
        await journal.open()
        ids = [await journal.append(message(n)) for n in (2, 3, 4)]
        await journal.close()
        return ids

    assert all(isinstance(i, int) for i in run(go()))
    assert backend.rows("SELECT count(*) FROM message") == [(4,)]


def test_a_stuck_writer_makes_the_journal_unready_until_it_commits_again(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        journal = await opened(backend, ack_timeout=0.2)
        assert journal.reachable
        # Given a writer held for a second, and a settle-like operation waiting behind it
        stall = asyncio.ensure_future(journal._write(lambda conn: time.sleep(1.0)))
        await asyncio.sleep(0.05)
        behind = asyncio.ensure_future(journal._write(lambda conn: None))
        # Then, once the oldest waiting has waited past the ack timeout, it is not ready
        await asyncio.sleep(0.6)
        assert not journal.reachable
        assert not behind.done()  # what waits is not failed: it runs once the writer moves
        # And when the writer moves and commits again, it is ready again
        await stall
        await behind
        assert await journal.append(message(1)) is not None
        assert journal.reachable
        await asyncio.sleep(0.3)  # the watchdog's next look
        await journal.close()

    with caplog.at_level(logging.WARNING, logger="seamline.journal"):
        run(go())
    said = [r.getMessage() for r in caplog.records if r.name == "seamline.journal"]
    assert len([m for m in said if "has taken nothing for" in m]) == 1, said
    assert "the journal's writer moves again" in said


RECOUNT = (
    "SELECT flow, CASE WHEN state = 'pending' AND attempts > 0 THEN 'retrying' ELSE state END, "
    "count(*) FROM delivery GROUP BY 1, 2"
)


def test_flow_counts_agree_with_the_table_after_every_kind_of_change(backend: Backend) -> None:
    """Settled deliveries are counted from a tally the journal keeps, not by reading the whole
    table: after each change of state, the counts must be the table's."""

    async def go() -> set[str]:
        plan = [delivery("f"), delivery("f"), delivery("f"), delivery("f", safe=False)]
        plan += [delivery("g", "k", coalesce=True), delivery("g", "k", coalesce=True)]
        plan += [delivery("f", "k2", version=200.0), delivery("f", "k2", version=100.0)]
        journal = await journal_with(backend, plan)  # the first g/k is superseded: skipped
        seen: set[str] = set()

        async def agree() -> None:
            counts = {(r.flow, r.state): r.count for r in await journal.flow_counts()}
            assert all(type(n) is int for n in counts.values())
            exact = {(f, s): int(n) for f, s, n in await journal._query(RECOUNT)}
            assert counts == exact
            seen.update(s for _f, s in counts)

        await agree()
        a, b, c, unsafe, g, newer = await journal.claim(
            target="target", owner="w", limit=10, lease=30
        )
        await agree()
        later = time.time() + 60
        await journal.settle([done(a.id, a.token), done(b.id, b.token, "dead")])
        await journal.settle([done(newer.id, newer.token, key="k2", version=200.0)])
        assert await journal.claim(target="target", owner="w", limit=10, lease=30) == []
        await agree()  # the older k2 was skipped as stale when claimed
        await journal.settle([done(c.id, c.token, "pending", due=later)])
        await agree()
        await journal.replay([b.id], actor="t", flow_versions={})  # dead, due again
        await journal.discard([c.id], actor="t", reason="not wanted")  # retrying
        await agree()
        await journal.replay([c.id], actor="t", flow_versions={})  # out of a settled state
        await agree()
        run_out = f"UPDATE delivery SET lease_until = 0 WHERE id IN ({unsafe.id}, {g.id})"
        await journal._write(lambda conn: conn.execute(run_out))  # a retry, and a review
        await journal.expire_leases()
        await agree()
        await journal.close()
        return seen

    seen = asyncio.run(go())
    assert seen == {
        *("pending", "retrying", "leased", "delivered", "dead", "discarded", "skipped", "review")
    }
