"""`SqliteJournal`: one file, one writer thread, group commit (see `group_commit.py`).

Start-up checks that the file is in WAL mode with `synchronous=FULL`, the settings under which
a committed transaction survives a crash of the process and of the machine.

Locks beside the file (`flock`, released by the kernel when a process dies):
- `<file>.lock`: the one hub process (`exclusive`);
- `<file>.deliver.lock`: the one process that delivers (`hold_deliveries`), the hub's own or a
  worker process it started. It alone hands back leases left by a dead process;
- `<file>.write.lock`: held for each write transaction. Writers in several processes (the hub,
  its worker process, an operator's command) take turns on it. SQLite's own wait for its lock
  sleeps 1, 2, 5, 10 ms and more between tries, and a writer that commits often starved the
  other; the kernel hands a released `flock` to the next waiter at once.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import math
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from seamline.errors import JournalError
from seamline.journal.base import ConsoleJournal, Journal, NewMessage, Routing
from seamline.journal.group_commit import (
    GATHER,
    Gathering,
    GroupCommitJournal,
    verdict_columns,
)
from seamline.journal.multirow import MultiRow
from seamline.journal.queries import migrations, queries

Q = queries("sqlite")
WRITE_WAIT = 10.0
"""Longest a write waits for another process's (SQLite's `busy_timeout` is as long)."""


PAGE_SIZE = 16384
"""The page size of a journal created here (SQLite's default is 4096)."""

CHECKPOINT_PAGES = 256
"""WAL pages after which a commit checkpoints: 4 MiB of 16 KiB pages."""

MIN_SQLITE = (3, 35, 0)
"""The oldest SQLite the journal's statements run on (RETURNING; UPDATE ... FROM is 3.33)."""


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the pragmas every journal connection needs."""
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise JournalError(
            f"this Python uses SQLite {sqlite3.sqlite_version}; the journal needs "
            f"{'.'.join(map(str, MIN_SQLITE))} or newer: run Seamline with a Python built "
            "against a newer SQLite (Debian 12's python3.11 has 3.40), or use PostgreSQL"
        )
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    if not readonly:
        # A new journal gets 16 KiB pages (an existing one keeps its own). A message is ~3 KB,
        # so a 4 KiB page holds one, and SQLite writes each WAL frame, and each page a checkpoint
        # copies, with a system call of its own: under the full path's load the hub made 52k
        # pwrite calls a second, holding the write lock. With 16 KiB pages, 21k; the full path
        # delivered 2-14% more in each of 7 interleaved pairs (bench/README.md, stop 20).
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode = WAL")
        # A commit that takes the WAL past this many pages checkpoints it before it returns,
        # so the group it acknowledges waits for the copy and its fsync. SQLite's default of
        # 1,000 pages is 16 MiB at this page size: the ingest benchmark's p99 was 41-43 ms on
        # a machine whose disk syncs ~200 MB/s. 4 MiB (SQLite's default in bytes): 17-19 ms,
        # with no loss of throughput; 1 MiB lowered ingest's p99 further but cost routing
        # (bench/README.md, stop 27).
        conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def check_durable(conn: sqlite3.Connection) -> None:
    """Refuse to run unless commits are durable: WAL and synchronous=FULL."""
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    if str(mode).lower() != "wal" or int(sync) < 2:
        raise JournalError(
            f"journal is in journal_mode={mode}, synchronous={sync}; "
            "Seamline needs WAL with synchronous=FULL (2) to keep what it acknowledged"
        )


def migrate(conn: sqlite3.Connection) -> int:
    """Apply migrations not yet applied; return the schema version."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    current = row[0] or 0
    for number, script in migrations("sqlite"):
        if number <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = number
    return int(current)


def statements(script: str) -> list[str]:
    """A migration script's statements."""
    # Migrations hold no string literal with "--" in it, so a comment runs to the line's end.
    # A trigger's body holds statements of its own: a statement ends at the ";" that
    # completes it, as SQLite's own parser says.
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    found, pending = [], ""
    for piece in "\n".join(lines).split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                found.append(pending.strip().removesuffix(";").strip())
            pending = ""
    if pending.strip(" \n;"):
        raise JournalError(f"a migration ends inside a statement: {pending.strip()[:80]}")
    return found


class SqliteJournal(GroupCommitJournal):
    """The journal in one SQLite file, written by one thread."""

    dialect = "sqlite"
    marker = "?"

    def __init__(
        self,
        path: Path,
        *,
        max_pending: int = 20_000,
        ack_timeout: float = 5.0,
        exclusive: bool = False,
        gather: Gathering | None = GATHER,
    ) -> None:
        super().__init__(max_pending=max_pending, ack_timeout=ack_timeout, gather=gather)
        self.path = Path(path)
        self.exclusive = exclusive
        self.q = Q
        self._reader: sqlite3.Connection | None = None
        self._reads: ThreadPoolExecutor | None = None
        """The one thread that uses `_reader`: reads run there, one at a time."""
        self._lock_fd: int | None = None
        self._deliver_fd: int | None = None
        self._writes: _WriteLock | None = None

    def __repr__(self) -> str:
        return f"SqliteJournal({str(self.path)!r})"

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.exclusive:
            self._take_lock()
        try:
            await super().open()
        except BaseException:
            self._closed()
            raise

    def _connect(self) -> sqlite3.Connection:
        conn = connect(self.path)
        check_durable(conn)
        migrate(conn)
        # The writer's statements each change many rows of a group, so SQLite keeps a statement
        # journal of the pages each one changes, to undo it alone should it fail. Past 64 KiB
        # (four of these 16 KiB pages) that journal went to a temporary file: under load
        # nearly every commit created, wrote, unlinked and closed one in /var/tmp (bench/README,
        # stop 27). In memory it is a copy of the pages, no system call. Set after the
        # migrations: one that rewrites a whole table of a large journal may spill to disk.
        # So the writer's statements change a bounded number of rows each (bulk updates go
        # in batches), and sorts over many rows run on the reader, whose sorts may spill.
        conn.execute("PRAGMA temp_store = MEMORY")
        if self._writes is None:
            self._writes = _WriteLock(_lock_file(self.path, "write"))
        return conn

    def _opened(self) -> None:
        self._reader = connect(self.path)
        self._reads = ThreadPoolExecutor(1, thread_name_prefix="journal-reader")

    def _closed(self) -> None:
        if self._reads is not None:
            self._reads.shutdown(wait=True)
            self._reads = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._writes is not None:
            self._writes.close()
            self._writes = None
        for name in ("_lock_fd", "_deliver_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)

    def _take_lock(self) -> None:
        fd = _lock_file(self.path, "")
        if not _try_lock(fd):
            os.close(fd)
            raise JournalError(
                f"another Seamline hub is running on {self.path}; one hub process owns a "
                "SQLite journal (use PostgreSQL to run several)"
            )
        self._lock_fd = fd

    async def hold_deliveries(self, *, within: float) -> None:
        """Become the one process that delivers from this file, waiting up to `within`
        seconds for one that is finishing (a worker process whose hub died finishes its batch
        first). Then every lease left in the file is a dead process's, and is handed back."""
        fd = _lock_file(self.path, "deliver")
        deadline = time.monotonic() + within
        while not _try_lock(fd):
            if time.monotonic() > deadline:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                raise JournalError(
                    f"another process (pid {holder or '?'}) delivers from {self.path}; one "
                    "process delivers from a SQLite journal: stop it, or use PostgreSQL"
                )
            await asyncio.sleep(0.1)
        self._deliver_fd = fd

    # --- the dialect --------------------------------------------------------------------------

    def _begin(self, conn: sqlite3.Connection) -> None:
        # Writers of this file in other processes take turns on the write lock: the kernel
        # hands it to a waiting one at once (SQLite's own wait sleeps, and starved one).
        if self._writes is not None and not self._writes.acquire(WRITE_WAIT):
            raise WriteLockBusy(
                f"database is locked: another process has been writing {self.path} for over "
                f"{WRITE_WAIT:.0f} s (stopped or hung?)"
            )
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._unlock_writes()
            raise

    def _commit(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("COMMIT")
        finally:
            self._unlock_writes()

    def _rollback(self, conn: sqlite3.Connection) -> None:
        try:
            # SQLite may already have rolled back on its own (SQLITE_FULL, SQLITE_IOERR).
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            self._unlock_writes()

    def _unlock_writes(self) -> None:
        if self._writes is not None:
            self._writes.release()

    def _busy(self, exc: BaseException) -> bool:
        return isinstance(exc, WriteLockBusy)

    def _driver_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error)

    def _insert_messages(
        self,
        conn: sqlite3.Connection,
        messages: Sequence[NewMessage],
        routings: Sequence[Routing | None],
    ) -> list[int | None]:
        # Rows in few statements (`multirow.py`), no RETURNING. The transaction holds the write
        # lock and ids are never given explicitly (so they stay far below 2^63, where SQLite
        # would pick random ones): the rows inserted have the ids that follow each other up
        # to last_insert_rowid(), in the order given.
        if any(r is not None for r in routings):
            verdicts = verdict_columns(routings)
            inserted = _INSERT_ROUTED_MESSAGES.execute(
                conn,
                [
                    (m.system, m.source_id, m.received_at, m.headers, m.body, state, event, why)
                    for m, state, event, why in zip(messages, *verdicts.values(), strict=True)
                ],
            )
        else:
            inserted = _INSERT_MESSAGES.execute(
                conn, [(m.system, m.source_id, m.received_at, m.headers, m.body) for m in messages]
            )
        if inserted <= 0:
            return [None] * len(messages)
        last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
        if inserted == len(messages):
            return list(range(last - inserted + 1, last + 1))
        # Some were journaled before, or came twice in this group: the new rows by source id,
        # each given to the first message that has it (the one inserted).
        fresh = {
            (system, source_id): int(id_)
            for id_, system, source_id in conn.execute(_NEW_MESSAGES, (last - inserted,))
        }
        return [fresh.pop((m.system, m.source_id), None) for m in messages]

    def _count_settled(
        self,
        conn: sqlite3.Connection,
        changes: Counter[tuple[str, str]],
        entered: Collection[int] = (),
    ) -> None:
        # Counted here, a statement or two for a whole batch. SQLite's triggers run once per
        # row: the tally's cost 20-45 us a delivery (insert, claim and settle), a quarter of
        # the journal's work per message (bench/README.md, 2026-11-30, night).
        rows = [(f, s, n) for (f, s), n in changes.items() if n]
        if rows:
            conn.executemany(_COUNT_SETTLED, rows)
        if entered:
            conn.execute(_COUNT_SETTLED_IDS, (orjson.dumps(list(entered)).decode(),))

    def _many(
        self, conn: sqlite3.Connection, name: str, rows: list[dict[str, Any]], **same: Any
    ) -> None:
        if not rows:
            return
        multi = _multi_row(name)
        if multi is not None:
            multi.execute_named(conn, rows, same)
        else:
            super()._many(conn, name, rows, **same)

    # A statement steps once a row, and Python's sqlite3 lets go of the GIL for each step:
    # the writer thread, holding the write lock, then waits for the event loop at every row
    # (`multirow.py`). So the verbs of the hot path read and change many rows in a statement
    # or two, their ids and values going in and out as one JSON array.

    def _lease(self, conn: sqlite3.Connection, params: dict[str, Any]) -> list[Any]:
        (ids,) = conn.execute(_DUE_IDS, params).fetchone()
        if ids == "[]":
            return []
        conn.execute(_LEASE_IDS, {**params, "ids": ids})
        (leased,) = conn.execute(_LEASED_ROWS, (ids,)).fetchone()
        rows = orjson.loads(leased)
        return [
            (
                did,
                mid,
                flow,
                tag,
                key,
                None if version is None else float(version),
                attempts,
                token,
                float(created),
                None if payload is None else bytes.fromhex(payload),
            )
            for did, mid, flow, tag, key, version, attempts, token, created, payload in rows
        ]

    def _claimed_messages(self, conn: sqlite3.Connection, rows: list[Any]) -> dict[int, Any]:
        # After the claim's commit, so a step a row is no longer under the write lock.
        ids = orjson.dumps(sorted({r[1] for r in rows})).decode()
        return {m[0]: m for m in conn.execute(self.q["claimed_messages"], {"ids": ids})}

    def _mark_routed(self, conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> set[int]:
        ids = orjson.dumps([r["id"] for r in rows]).decode()
        (waiting,) = conn.execute(_STILL_RECEIVED, (ids,)).fetchone()
        routed = set(orjson.loads(waiting))
        by_event: dict[str | None, list[int]] = {}
        for r in rows:
            if r["id"] in routed:
                by_event.setdefault(r["event"], []).append(r["id"])
        for event, group in by_event.items():
            conn.execute(_MARK_ROUTED_IDS, (event, orjson.dumps(group).decode()))
        return routed

    def _settle_fenced(
        self, conn: sqlite3.Connection, rows: list[dict[str, Any]], now: float
    ) -> set[int]:
        if not _in_one_statement(rows):
            return super()._settle_fenced(conn, rows, now)
        outcomes = orjson.dumps(
            [
                (
                    r["id"],
                    r["token"],
                    r["state"],
                    r["spent"],
                    _real(r["due_at"]),
                    r["error_class"],
                    r["error"],
                )
                for r in rows
            ]
        ).decode()
        (held,) = conn.execute(_STILL_LEASED, (outcomes,)).fetchone()
        conn.execute(_SETTLE_ROWS, (now, outcomes))
        return set(orjson.loads(held))

    async def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        # Reads go to their own connection (WAL readers never wait for the writer) in a thread
        # of their own: a read of many rows (a chart, a search) takes the event loop's place
        # for as long as SQLite works, and ingest would wait. SQLite lets go of the GIL while
        # it steps.
        if self._reads is None:
            raise JournalError("the journal is not open")
        rows: list[Any] = await asyncio.get_running_loop().run_in_executor(
            self._reads, self._read, sql, params
        )
        return rows

    async def _query_dicts(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._query(sql, params)]

    def _read(self, sql: str, params: dict[str, Any] | Sequence[Any] = ()) -> list[sqlite3.Row]:
        if self._reader is None:
            raise JournalError("the journal is not open")
        self._reader.row_factory = sqlite3.Row
        return list(self._reader.execute(sql, params))

    async def expire_all_leases(self) -> list[int]:
        """Once `hold_deliveries` is held: every lease belongs to a process that died.
        Then, once after the upgrade that made the journal's verbs keep the tally of settled
        deliveries (migration 0008), the tally is counted afresh from the table: a worker
        process of the previous version, finishing its batch after the migration, settled
        without the triggers and without counting."""
        if self._deliver_fd is None:
            raise JournalError("only the process that delivers may hand back every lease")
        expired = await self._expire(float("inf"))
        await self._write(_recount_tally)
        return expired


_INSERT_MESSAGE = (
    "INSERT INTO message (system, source_id, received_at, headers, body) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (system, source_id) DO NOTHING"
)
_INSERT_MESSAGES = MultiRow.of(_INSERT_MESSAGE)
_INSERT_ROUTED_MESSAGES = MultiRow.of(
    "INSERT INTO message (system, source_id, received_at, headers, body, state, event, reason) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (system, source_id) DO NOTHING"
)
_DUE_IDS = f"SELECT json_group_array(id) FROM ({Q['due_deliveries']})"
_LEASE_IDS = (
    "UPDATE delivery SET state = 'leased', lease_owner = :owner, lease_until = :until, "
    "lease_token = lease_token + 1, updated_at = :now "
    "WHERE id IN (SELECT value FROM json_each(:ids)) AND +state = 'pending'"
)
# REAL columns go as text with 17 digits ("!": SQLite's printf stops at 16 without it), JSON's
# 15 would round a source version, and stale skipping compares them. NULL is '' to hex() and
# '0.0' to printf().
_LEASED_ROWS = (
    "SELECT json_group_array(json_array(id, message_id, flow, flow_version, key, "
    "iif(version IS NULL, NULL, printf('%!.17g', version)), attempts, lease_token, "
    "printf('%!.17g', created_at), iif(payload IS NULL, NULL, hex(payload)))) "
    "FROM delivery WHERE id IN (SELECT value FROM json_each(?))"
)
_STILL_RECEIVED = (
    "SELECT json_group_array(id) FROM message "
    "WHERE id IN (SELECT value FROM json_each(?)) AND state = 'received'"
)
_MARK_ROUTED_IDS = (
    "UPDATE message SET state = 'routed', event = ?, reason = NULL "
    "WHERE id IN (SELECT value FROM json_each(?)) AND state = 'received'"
)
# Outcomes as a JSON array of [id, token, state, spent, due_at (text), error_class, error];
# `+state` keeps the planner from the state index: each outcome finds its row by id.
_OUTCOMES = "(SELECT {} FROM json_each(?)) AS o".format(
    ", ".join(
        f"json_extract(value, '$[{i}]') AS {name}"
        for i, name in enumerate(
            ("id", "token", "state", "spent", "due_at", "error_class", "error")
        )
    )
)
_STILL_LEASED = (
    f"SELECT json_group_array(d.id) FROM {_OUTCOMES} CROSS JOIN delivery d ON d.id = o.id "
    "WHERE d.lease_token = o.token AND +d.state = 'leased'"
)
_SETTLE_ROWS = (
    "UPDATE delivery SET state = o.state, attempts = attempts + o.spent, "
    "due_at = CAST(o.due_at AS REAL), "
    "error_class = o.error_class, last_error = o.error, lease_owner = NULL, lease_until = NULL, "
    f"updated_at = ? FROM {_OUTCOMES} "
    "WHERE delivery.id = o.id AND delivery.lease_token = o.token AND +delivery.state = 'leased'"
)
_NEW_MESSAGES = "SELECT id, system, source_id FROM message WHERE id > ?"
_TALLY_RECOUNT_DUE = "journal:tally-recount"
"""A cursor migration 0008 sets: the tally is to be counted afresh from the table."""


TALLY_FROM_TABLE = (
    "INSERT INTO delivery_tally (flow, state, shard, n) "
    "SELECT flow, state, 0, count(*) FROM delivery "
    "WHERE state NOT IN ('pending', 'leased', 'dead', 'review') GROUP BY flow, state"
)
"""The tally counted from the whole table, into an empty `delivery_tally`."""


def _in_one_statement(outcomes: list[dict[str, Any]]) -> bool:
    """Whether outcomes can cross as one JSON array: `json_extract` ends a text at a NUL (an
    error quoting a UTF-16 answer has them; error classes are the worker's own names), and
    `UPDATE ... FROM` with one id twice would apply either outcome (one at a time, the first
    wins)."""
    if len({r["id"] for r in outcomes}) != len(outcomes):
        return False
    return not any("\0" in (r["error"] or "") for r in outcomes)


def _real(value: float) -> str:
    """A float as text that `CAST(... AS REAL)` reads back: 'inf' would be 0.0 (a delivery
    throttled with `Retry-After: inf` would be due at once)."""
    if math.isfinite(value):
        return repr(value)
    if math.isnan(value):
        raise ValueError("a delivery's due time is not a number")
    return "1e999" if value > 0 else "-1e999"


@functools.cache
def _multi_row(name: str) -> MultiRow | None:
    """The named statement for many rows at once, if it is an INSERT of one row."""
    try:
        return MultiRow.of(Q[name])
    except ValueError:
        return None


def _recount_tally(conn: sqlite3.Connection) -> None:
    due = "DELETE FROM cursor WHERE name = ?"
    if conn.execute(due, (_TALLY_RECOUNT_DUE,)).rowcount:
        conn.execute("DELETE FROM delivery_tally")
        conn.execute(TALLY_FROM_TABLE)


# The tally of settled deliveries, kept here on SQLite only (PostgreSQL's triggers keep it):
# deliveries of a flow that entered (n > 0) or left (n < 0) a settled state,
_COUNT_SETTLED = (
    "INSERT INTO delivery_tally (flow, state, shard, n) VALUES (?, ?, 0, ?) "
    "ON CONFLICT (flow, state, shard) DO UPDATE SET n = n + excluded.n"
)
# and deliveries given by id (a JSON array) that entered the state they are in now, if settled.
_COUNT_SETTLED_IDS = (
    "INSERT INTO delivery_tally (flow, state, shard, n) "
    "SELECT flow, state, 0, count(*) FROM delivery "
    "WHERE id IN (SELECT value FROM json_each(?)) "
    "AND state NOT IN ('pending', 'leased', 'dead', 'review') "
    "GROUP BY flow, state "
    "ON CONFLICT (flow, state, shard) DO UPDATE SET n = n + excluded.n"
)


class WriteLockBusy(sqlite3.OperationalError):
    """Another process has held the write lock longer than `WRITE_WAIT`."""


class _WriteLock:
    """The exclusive `flock` on `<journal>.write.lock`, taken and let go by the writer thread,
    waited for in a thread of its own so that the writer can give up after a time (a blocked
    `flock` cannot be interrupted). A lock belongs to the open file, not the thread: taken by
    the waiting thread, the writer holds it. All taking and letting go happens under `_cond`,
    and never while the waiting thread is in `flock`, so neither can let go of the other's."""

    def __init__(self, fd: int) -> None:
        """`fd`: the open lock file, which this closes."""
        self.fd = fd
        self._cond = threading.Condition()
        self._held = False
        """The writer holds the lock."""
        self._blocked = False
        """The waiting thread is in `flock`."""
        self._wanted = False
        """The writer waits for the waiting thread."""
        self._granted = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def acquire(self, timeout: float) -> bool:
        with self._cond:
            if not self._blocked:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self._held = True
                    return True
                except BlockingIOError:
                    self._blocked = True
                    if self._thread is None or not self._thread.is_alive():
                        self._thread = threading.Thread(
                            target=self._wait, name="journal-write-lock", daemon=True
                        )
                        self._thread.start()
                    self._cond.notify_all()
            self._wanted, self._granted = True, False
            granted = self._cond.wait_for(lambda: self._granted, timeout)
            self._wanted = self._granted = False
            self._held = granted
            return granted

    def release(self) -> None:
        with self._cond:
            if self._held:
                self._held = False
                fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Let go, and close the file now, or when the waiting thread is out of `flock`."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            if not self._blocked:
                os.close(self.fd)

    def _wait(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._blocked or self._stopping)
                if self._stopping and not self._blocked:
                    return
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            except OSError:  # not expected; the writer then tries again without this thread
                with self._cond:
                    self._blocked = False
                return
            with self._cond:
                self._blocked = False
                if self._stopping:
                    os.close(self.fd)  # lets the lock go
                    return
                if self._wanted:
                    self._granted = True
                    self._cond.notify_all()
                else:  # the writer gave up waiting: let it go for the others
                    fcntl.flock(self.fd, fcntl.LOCK_UN)


def _lock_file(path: Path, kind: str) -> int:
    """The open lock file `<journal>.lock` or `<journal>.<kind>.lock`."""
    name = f"{path.name}.{kind}.lock" if kind else f"{path.name}.lock"
    return os.open(path.with_name(name), os.O_RDWR | os.O_CREAT, 0o644)


def _try_lock(fd: int) -> bool:
    """Take the lock without waiting, and write this process's id into the file."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return True


def _conforms(journal: SqliteJournal) -> Journal:
    return journal  # mypy checks here that SqliteJournal implements the Journal protocol


def _serves_console(journal: SqliteJournal) -> ConsoleJournal:
    return journal  # and that it implements the console's verbs
