"""`SqliteJournal`: one file, one writer thread, group commit.

Every change is an *operation*: a function run by the writer thread against its connection.
The writer drains whatever has queued up, runs it in one transaction and commits once, so one
fsync serves every concurrent webhook, claim and outcome that arrived meanwhile (3k commits/s
become tens of thousands of durable changes per second). Futures are resolved only after the
commit returns. If an operation raises, the batch is rolled back and each operation is run
again in its own transaction, so one bad operation fails alone. If a commit itself fails (disk
full, I/O error), the whole batch fails, nothing is acknowledged and the connection is reopened.

Start-up checks that the file is in WAL mode with `synchronous=FULL`, the settings under which
a committed transaction survives a crash of the process and of the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from seamline.errors import JournalBusy, JournalError
from seamline.journal.base import (
    Claimed,
    FlowCount,
    Journal,
    NewMessage,
    Routing,
    Selection,
    Settlement,
    StoredMessage,
)
from seamline.journal.queries import migrations, queries

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
Q = queries("sqlite")
MAX_GROUP = 4096


class _Pending:
    __slots__ = ("enqueued", "future", "op")

    def __init__(self, op: Op, future: asyncio.Future[Any]) -> None:
        self.op = op
        self.future = future
        self.enqueued = time.monotonic()


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the pragmas every journal connection needs."""
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
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
    for number, script in migrations():
        if number <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = number
    return int(current)


def _statements(script: str) -> list[str]:
    # Migrations hold no string literal with "--" in it, so a comment runs to the line's end.
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class SqliteJournal:
    """The journal in one SQLite file, written by one thread."""

    def __init__(
        self,
        path: Path,
        *,
        max_pending: int = 20_000,
        ack_timeout: float = 5.0,
        exclusive: bool = False,
    ) -> None:
        self.path = Path(path)
        self.max_pending = max_pending
        self.ack_timeout = ack_timeout
        self._watchdog: asyncio.Task[None] | None = None
        self.exclusive = exclusive
        self._queue: deque[_Pending] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._append_listeners: list[Callable[[list[StoredMessage]], None]] = []
        self.commits = 0
        self.committed_ops = 0

    # --- life cycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.exclusive:
            self._take_lock()
        self._conn = connect(self.path)
        check_durable(self._conn)
        migrate(self._conn)
        self._reader = connect(self.path)
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()
        self._watchdog = asyncio.create_task(self._watch(), name="journal-watchdog")

    def _take_lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(
                f"another Seamline hub is running on {self.path}; one hub process owns a "
                "SQLite journal (use PostgreSQL to run several)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        for conn in (self._conn, self._reader):
            if conn is not None:
                conn.close()
        self._conn = self._reader = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- the writer ---------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Operations waiting for the writer."""
        return len(self._queue)

    def _submit(self, op: Op) -> asyncio.Future[Any]:
        if self._thread is None or self._loop is None:
            raise JournalError("the journal is not open")
        if not self._thread.is_alive():
            raise JournalError("the journal writer stopped; restart the hub")
        future: asyncio.Future[Any] = self._loop.create_future()
        self._queue.append(_Pending(op, future))
        self._wake.set()
        return future

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._queue:
                group: list[_Pending] = []
                while self._queue and len(group) < MAX_GROUP:
                    group.append(self._queue.popleft())
                try:
                    self._commit_group(group)
                except BaseException as exc:  # the writer must outlive any one group
                    failure = JournalError(f"journal writer failed: {exc!r}")
                    assert self._loop is not None
                    with contextlib.suppress(RuntimeError):
                        self._loop.call_soon_threadsafe(
                            self._resolve, group, [(False, failure)] * len(group)
                        )
            if self._stopping and not self._queue:
                return

    async def _watch(self) -> None:
        """Fail appends queued longer than `ack_timeout` (ingest answers 503; the sender retries).

        The writer skips operations whose caller has already been answered, so a 503 means the
        message was not journaled, except in the rare race where its group was already running:
        then the retry with the same delivery id is a duplicate, acknowledged and not stored twice.
        """
        while True:
            await asyncio.sleep(min(0.25, self.ack_timeout / 4))
            limit = time.monotonic() - self.ack_timeout
            for i in range(len(self._queue)):
                try:
                    pending = self._queue[i]
                except IndexError:
                    break
                if pending.enqueued > limit:
                    break
                if isinstance(pending.op, _AppendOp) and not pending.future.done():
                    pending.future.set_exception(
                        JournalBusy(f"the journal did not commit within {self.ack_timeout:g} s")
                    )

    def _commit_group(self, group: list[_Pending]) -> None:
        # Appends whose webhook was already answered 503 are not journaled. (Reading `done()`
        # from this thread races benignly: at worst the message is stored and its retry is a
        # duplicate.)
        group = [p for p in group if not (isinstance(p.op, _AppendOp) and p.future.done())]
        if not group:
            return
        conn = self._conn
        assert conn is not None
        outcomes: list[tuple[bool, Any]]
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = [p.op(conn) for p in group]
        except Exception:
            _rollback(conn)
            outcomes = [self._commit_one(p) for p in group]
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                outcomes = [(False, self._commit_failed(exc))] * len(group)
            else:
                outcomes = [(True, r) for r in results]
                self.commits += 1
                self.committed_ops += len(group)
        assert self._loop is not None
        # If the loop closed during shutdown, nobody is waiting for these results any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._resolve, group, outcomes)

    def _commit_one(self, pending: _Pending) -> tuple[bool, Any]:
        conn = self._conn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = pending.op(conn)
        except Exception as exc:
            _rollback(conn)
            if isinstance(exc, sqlite3.Error):
                # Disk full, I/O error, locked: the caller learns it as the journal's failure.
                failure = JournalError(f"journal write failed: {exc}")
                failure.__cause__ = exc
                return False, failure
            return False, exc
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            return False, self._commit_failed(exc)
        self.commits += 1
        self.committed_ops += 1
        return True, result

    def _commit_failed(self, exc: sqlite3.Error) -> JournalError:
        # After a failed fsync the file's state is unknown to us (fsyncgate): never trust this
        # connection again. Reopen, so SQLite recovers from the WAL as after a crash.
        try:
            assert self._conn is not None
            self._conn.close()
        finally:
            self._conn = connect(self.path)
        return JournalError(f"journal commit failed ({exc}); nothing in it was acknowledged")

    def _resolve(self, group: list[_Pending], outcomes: list[tuple[bool, Any]]) -> None:
        """In the event loop: hand out results, then tell listeners about new messages.

        Listeners hear from here, not from `append`'s caller, so a message whose webhook
        request was cancelled after the commit is still routed at once.
        """
        appended: list[StoredMessage] = []
        listening = bool(self._append_listeners)
        for pending, (ok, value) in zip(group, outcomes, strict=True):
            if listening and ok and value is not None and isinstance(pending.op, _AppendOp):
                m = pending.op.message
                appended.append(
                    StoredMessage(value, m.system, m.source_id, m.received_at, m.headers, m.body)
                )
            if pending.future.done():
                continue
            if ok:
                pending.future.set_result(value)
            else:
                pending.future.set_exception(value)
        if appended:
            for listener in self._append_listeners:
                listener(appended)

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        result: T = await self._submit(op)
        return result

    def _read(self, sql: str, params: dict[str, Any] | Sequence[Any] = ()) -> list[sqlite3.Row]:
        assert self._reader is not None
        self._reader.row_factory = sqlite3.Row
        return list(self._reader.execute(sql, params))

    # --- ingest -------------------------------------------------------------------------------

    def on_append(self, callback: Callable[[list[StoredMessage]], None]) -> None:
        self._append_listeners.append(callback)

    async def append(self, message: NewMessage) -> int | None:
        if len(self._queue) >= self.max_pending:
            raise JournalBusy(f"{len(self._queue)} changes are waiting for the journal")
        fresh: int | None = await self._submit(_AppendOp(message))
        return fresh

    async def unrouted(self, limit: int, *, before: float = float("inf")) -> list[StoredMessage]:
        rows = self._read(Q["unrouted_messages"], {"limit": limit, "before": before})
        return [
            StoredMessage(
                r["id"], r["system"], r["source_id"], r["received_at"], r["headers"], r["body"]
            )
            for r in rows
        ]

    # --- router -------------------------------------------------------------------------------

    async def route(self, routings: Sequence[Routing]) -> None:
        def op(conn: sqlite3.Connection) -> None:
            now = time.time()
            for r in routings:
                for name, value in r.keys.items():
                    conn.execute(
                        Q["insert_message_key"],
                        {"name": name, "value": value, "message_id": r.message_id},
                    )
                if r.rejected is not None:
                    conn.execute(
                        Q["mark_rejected"],
                        {"id": r.message_id, "event": r.event, "reason": r.rejected},
                    )
                    continue
                if (
                    conn.execute(Q["mark_routed"], {"id": r.message_id, "event": r.event}).rowcount
                    != 1
                ):
                    continue  # routed already (a start-up scan met a live notification)
                for d in r.deliveries:
                    if d.coalesce and d.key is not None:
                        conn.execute(
                            Q["supersede_pending"],
                            {"flow": d.flow, "key": d.key, "message_id": r.message_id, "now": now},
                        )
                    conn.execute(
                        Q["insert_delivery"],
                        {
                            "message_id": r.message_id,
                            "flow": d.flow,
                            "flow_version": d.flow_version,
                            "target": d.target,
                            "key": d.key,
                            "version": d.version,
                            "safe_retry": int(d.safe_retry),
                            "now": now,
                        },
                    )

        await self._write(op)

    # --- workers ------------------------------------------------------------------------------

    async def claim(self, *, target: str, owner: str, limit: int, lease: float) -> list[Claimed]:
        def op(conn: sqlite3.Connection) -> list[Claimed]:
            now = time.time()
            rows = conn.execute(
                Q["claim_deliveries"],
                {
                    "target": target,
                    "owner": owner,
                    "until": now + lease,
                    "now": now,
                    "limit": limit,
                },
            ).fetchall()
            if not rows:
                return []
            live = []
            for row in rows:
                (did, mid, flow, version_tag, key, version, attempts, token, created, payload) = row
                if version is not None and key is not None:
                    applied = conn.execute(
                        Q["applied_version"], {"flow": flow, "key": key}
                    ).fetchone()
                    if applied is not None and applied[0] >= version:
                        conn.execute(
                            Q["skip_delivery"],
                            {
                                "id": did,
                                "token": token,
                                "now": now,
                                "reason": f"stale: source version {version} is not newer than "
                                f"the applied {applied[0]}",
                            },
                        )
                        continue
                live.append(row)
            ids = orjson.dumps(sorted({r[1] for r in live})).decode()
            messages = {
                m[0]: m for m in conn.execute(Q["claimed_messages"], {"ids": ids}).fetchall()
            }
            claimed = []
            for (
                did,
                mid,
                flow,
                version_tag,
                key,
                version,
                attempts,
                token,
                created,
                payload,
            ) in live:
                msg = messages[mid]
                claimed.append(
                    Claimed(
                        did,
                        mid,
                        flow,
                        version_tag,
                        key,
                        version,
                        attempts,
                        token,
                        created,
                        payload,
                        msg[1],
                        msg[2] or b"{}",
                        msg[3] or b"",
                    )
                )
            claimed.sort(key=lambda c: c.id)
            return claimed

        return await self._write(op)

    async def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        def op(conn: sqlite3.Connection) -> list[bool]:
            now = time.time()
            recorded = []
            for s in settlements:
                cur = conn.execute(
                    Q["settle_delivery"],
                    {
                        "id": s.delivery_id,
                        "token": s.token,
                        "state": s.state,
                        "spent": s.spent,
                        "due_at": s.due_at,
                        "error_class": s.error_class,
                        "error": s.error,
                        "now": now,
                    },
                )
                if cur.rowcount != 1:
                    recorded.append(False)  # fenced: another worker owns this delivery now
                    continue
                recorded.append(True)
                if s.attempt is not None:
                    a = s.attempt
                    conn.execute(
                        Q["insert_attempt"],
                        {
                            "delivery_id": s.delivery_id,
                            "started_at": a.started_at,
                            "duration": a.duration,
                            "request": a.request,
                            "status": a.status,
                            "response": a.response,
                            "classification": a.classification,
                            "error": a.error,
                            "flow_version": a.flow_version,
                        },
                    )
                if s.applied_version is not None and s.key is not None:
                    conn.execute(
                        Q["record_applied"],
                        {"flow": s.flow, "key": s.key, "version": s.applied_version},
                    )
                for x in s.xrefs:
                    conn.execute(
                        Q["upsert_xref"],
                        {
                            "entity": x.entity,
                            "system": x.system,
                            "key": x.key,
                            "other_system": x.other_system,
                            "other_key": x.other_key,
                            "delivery_id": s.delivery_id,
                            "now": now,
                        },
                    )
            return recorded

        return await self._write(op)

    async def expire_leases(self) -> list[int]:
        def op(conn: sqlite3.Connection) -> list[int]:
            return [r[0] for r in conn.execute(Q["expire_leases"], {"now": time.time()})]

        return await self._write(op)

    async def expire_all_leases(self) -> list[int]:
        """At start of the only hub on this file: every lease belongs to a process that died."""

        def op(conn: sqlite3.Connection) -> list[int]:
            return [r[0] for r in conn.execute(Q["expire_leases"], {"now": float("inf")})]

        return await self._write(op)

    async def release_held(self, target: str) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(Q["release_held"], {"target": target, "now": time.time()}).rowcount

        return await self._write(op)

    async def purge(self, *, before: float) -> int:
        def op(conn: sqlite3.Connection) -> int:
            n = conn.execute(
                Q["purge_message_payloads"], {"before": before, "limit": 5000}
            ).rowcount
            n += conn.execute(
                Q["purge_attempt_payloads"], {"before": before, "limit": 5000}
            ).rowcount
            return n

        total = 0
        while True:
            n = await self._write(op)
            total += n
            if n == 0:
                return total

    # --- operators ----------------------------------------------------------------------------

    async def flow_counts(self) -> list[FlowCount]:
        return [FlowCount(r[0], r[1], r[2], r[3]) for r in self._read(Q["flow_counts"])]

    async def rejected_counts(self) -> list[tuple[str, int, float]]:
        return [(r[0], r[1], r[2]) for r in self._read(Q["rejected_counts"])]

    async def select(self, selection: Selection) -> list[dict[str, object]]:
        clauses, params = _selection_sql(selection)
        rows = self._read(
            "SELECT d.id, d.flow, d.state, d.attempts, d.error_class, d.last_error, d.created_at, "
            "d.updated_at, d.message_id, d.target, d.key, m.system, m.source_id "
            "FROM delivery d JOIN message m ON m.id = d.message_id "
            f"WHERE {' AND '.join(clauses) or '1'} ORDER BY d.id",
            params,
        )
        return [dict(r) for r in rows]

    async def rejected(
        self, ids: Sequence[int] = (), system: str | None = None
    ) -> list[dict[str, object]]:
        clauses = ["state = 'rejected'"]
        params: list[Any] = []
        if ids:
            clauses.append(f"id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        if system:
            clauses.append("system = ?")
            params.append(system)
        rows = self._read(
            "SELECT id, system, source_id, received_at, event, reason FROM message "
            f"WHERE {' AND '.join(clauses)} ORDER BY id",
            params,
        )
        return [dict(r) for r in rows]

    async def replay(
        self,
        ids: Sequence[int],
        *,
        actor: str,
        flow_versions: dict[str, str],
        payload: bytes | None = None,
    ) -> int:
        def op(conn: sqlite3.Connection) -> int:
            now = time.time()
            done = 0
            for did in ids:
                row = conn.execute("SELECT flow FROM delivery WHERE id = ?", (did,)).fetchone()
                if row is None:
                    continue
                n = conn.execute(
                    Q["replay_deliveries"],
                    {
                        "id": did,
                        "now": now,
                        "flow_version": flow_versions.get(row[0]),
                        "payload": payload,
                    },
                ).rowcount
                if n:
                    done += 1
                    _audit(
                        conn,
                        actor,
                        "replay" if payload is None else "edit-and-replay",
                        f"delivery/{did}",
                        {"flow": row[0], "flow_version": flow_versions.get(row[0])},
                    )
            return done

        return await self._write(op)

    async def discard(self, ids: Sequence[int], *, actor: str, reason: str) -> int:
        def op(conn: sqlite3.Connection) -> int:
            now = time.time()
            done = 0
            for did in ids:
                if conn.execute(
                    Q["discard_delivery"], {"id": did, "now": now, "reason": reason}
                ).rowcount:
                    done += 1
                    _audit(conn, actor, "discard", f"delivery/{did}", {"reason": reason})
            return done

        return await self._write(op)

    async def replay_rejected(self, ids: Sequence[int], *, actor: str) -> int:
        def op(conn: sqlite3.Connection) -> int:
            done = 0
            for mid in ids:
                if conn.execute(Q["rereceive_message"], {"id": mid}).rowcount:
                    done += 1
                    _audit(conn, actor, "replay-rejected", f"message/{mid}", {})
            return done

        return await self._write(op)

    async def audit(self, *, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        await self._write(lambda conn: _audit(conn, actor, action, target, detail))

    async def get_cursor(self, name: str) -> str | None:
        rows = self._read(Q["get_cursor"], {"name": name})
        return str(rows[0][0]) if rows else None

    async def set_cursor(self, name: str, value: str) -> None:
        await self._write(
            lambda conn: conn.execute(
                Q["set_cursor"], {"name": name, "value": value, "now": time.time()}
            )
        )

    def integrity_check(self) -> str:
        return str(self._read("PRAGMA integrity_check")[0][0])


class _AppendOp:
    """Insert one message; the hot path, so a class with slots rather than a closure."""

    __slots__ = ("message",)

    def __init__(self, message: NewMessage) -> None:
        self.message = message

    def __call__(self, conn: sqlite3.Connection) -> int | None:
        m = self.message
        row = conn.execute(
            _INSERT_MESSAGE, (m.system, m.source_id, m.received_at, m.headers, m.body)
        ).fetchone()
        return None if row is None else int(row[0])


_INSERT_MESSAGE = (
    "INSERT INTO message (system, source_id, received_at, headers, body) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (system, source_id) DO NOTHING RETURNING id"
)


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back on its own (SQLITE_FULL, SQLITE_IOERR).
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _audit(
    conn: sqlite3.Connection, actor: str, action: str, target: str, detail: dict[str, Any]
) -> None:
    conn.execute(
        Q["insert_audit"],
        {
            "at": time.time(),
            "actor": actor,
            "action": action,
            "target": target,
            "detail": orjson.dumps(detail).decode(),
        },
    )


def _selection_sql(s: Selection) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if s.ids:
        clauses.append(f"d.id IN ({','.join('?' * len(s.ids))})")
        params.extend(s.ids)
    else:
        if s.states:
            clauses.append(f"d.state IN ({','.join('?' * len(s.states))})")
            params.extend(s.states)
        if s.flow:
            clauses.append("d.flow = ?")
            params.append(s.flow)
        if s.error_class:
            clauses.append("d.error_class = ?")
            params.append(s.error_class)
        if s.since is not None:
            clauses.append("d.created_at >= ?")
            params.append(s.since)
        if s.until is not None:
            clauses.append("d.created_at < ?")
            params.append(s.until)
    return clauses, params


def _conforms(journal: SqliteJournal) -> Journal:
    return journal  # mypy checks here that SqliteJournal implements the Journal protocol
