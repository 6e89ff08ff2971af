"""`GroupCommitJournal`: the journal's verbs, run by one writer thread with group commit.

Every change is an *operation*: a function run by the writer thread against its connection.
The writer drains whatever has queued up, runs it in one transaction and commits once, so one
fsync serves every concurrent webhook, claim and outcome that arrived meanwhile (3k commits/s
become tens of thousands of durable changes per second). Futures are resolved only after the
commit returns. If an operation raises, the batch is rolled back and each operation is run
again in its own transaction, so one bad operation fails alone. If the commit itself fails
(disk full, I/O error, the server gone), the whole batch fails, nothing is acknowledged, and the
connection is opened afresh.

The dialects (`sqlite.py`, `postgres.py`) say how to connect, begin, commit and insert a group
of messages; the verbs and their SQL (named blocks, `queries.py`) are shared. Both drivers'
connections answer `execute(sql, params)` with a cursor that has `rowcount`, `fetchone` and
`fetchall`, which is all an operation uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import orjson

from seamline.errors import JournalBusy, JournalError
from seamline.journal.base import (
    SETTLED,
    Claimed,
    FlowCount,
    NewMessage,
    Routing,
    Selection,
    Settlement,
    StoredMessage,
)
from seamline.journal.check_verbs import CheckVerbs
from seamline.journal.console_verbs import ConsoleVerbs

T = TypeVar("T")
log = logging.getLogger("seamline.journal")
Op = Callable[[Any], Any]
MAX_GROUP = 4096
BULK_ROWS = 2000
"""Deliveries one bulk update changes in a commit (release after an outage, dead letters for a
target gone): SQLite's writer keeps the original of each page such a statement changes in
memory, and every webhook waits for the write lock while it runs."""


@dataclasses.dataclass(frozen=True, slots=True)
class Gathering:
    """When the writer waits a little for a larger group before it commits (SQLite).

    A commit costs the writer's core a fixed ~200-350 us (the fsync and its interrupts, thread
    switches, the futures' hand-over) whatever the group's size. Under a heavy load each commit
    starts as soon as the previous one ends, with what came meanwhile, and groups stay small
    (~30 webhooks at 15k/s), so that fixed cost is paid again and again. When `after` or more
    operations were waiting as the previous group began (the load is heavy), the writer
    gathers: it commits once `target` are waiting, or nothing new has arrived for `pause`
    seconds (every sender still active is waiting), or `longest` seconds have passed. Otherwise
    it commits at once: after light traffic a lone webhook waits for nothing, and the first
    one after a burst at most `pause`. What decides is the backlog found, not the size of the
    group made: a group made larger by gathering would keep gathering on at moderate loads,
    where it only adds latency (open loop at 8k/s: p50 1.5 -> 2.3-2.9 ms). PostgreSQL's
    `commit_delay` and MySQL's `binlog_group_commit_sync_delay` trade latency for throughput
    the same way, there by a fixed delay. bench/ingest.py (64 senders): groups of ~30 became
    ~60, and the same core took 10-14% more webhooks a second (bench/README.md, stop 23)."""

    after: int = 16
    target: int = 64
    pause: float = 0.0002
    longest: float = 0.003

    def __post_init__(self) -> None:
        if not 1 <= self.after <= self.target:
            raise ValueError(
                f"gathering needs 1 <= after <= target, got {self.after}, {self.target}"
            )
        if not (self.pause > 0 and self.longest > 0):
            raise ValueError(
                f"gathering needs pause and longest > 0, got {self.pause}, {self.longest}"
            )


GATHER = Gathering()


def verdict_columns(routings: Sequence[Routing | None]) -> dict[str, list[str | None]]:
    """The state, event and reason each message is stored with: what its routing found, or
    `received` (for the router) where it has none."""
    states: list[str | None] = []
    for r in routings:
        if r is None:
            states.append("received")
        else:
            states.append("routed" if r.rejected is None else "rejected")
    return {
        "states": states,
        "events": [None if r is None else r.event for r in routings],
        "reasons": [None if r is None else r.rejected for r in routings],
    }


class _Pending:
    __slots__ = ("enqueued", "future", "op")

    def __init__(self, op: Op, future: asyncio.Future[Any]) -> None:
        self.op = op
        self.future = future
        self.enqueued = time.monotonic()


class AppendOp:
    """Insert one message; the hot path, so a class with slots rather than a closure. The
    writer hands consecutive appends of a group to the dialect's `insert_messages` at once.
    `routing`: the router's verdict when the message was routed as it arrived."""

    __slots__ = ("message", "routing")

    def __init__(self, message: NewMessage, routing: Routing | None = None) -> None:
        self.message = message
        self.routing = routing

    def __call__(self, conn: Any) -> int | None:
        raise AssertionError("appends are inserted by the writer, in groups")


class AfterCommit:
    """What an operation returns to finish its result after the commit, in the writer thread
    (on SQLite, without the write lock): `then(conn)` is handed to the caller."""

    __slots__ = ("then",)

    def __init__(self, then: Callable[[Any], Any]) -> None:
        self.then = then


class GroupCommitJournal(ConsoleVerbs, CheckVerbs, ABC):
    """The journal's verbs over one connection owned by one writer thread."""

    dialect: ClassVar[str]
    marker: ClassVar[str]
    """The positional parameter marker of the driver: `?` or `%s`."""

    def __init__(
        self,
        *,
        max_pending: int = 20_000,
        ack_timeout: float = 5.0,
        gather: Gathering | None = None,
    ) -> None:
        """`gather`: when the writer waits for a larger group (None: never)."""
        self.max_pending = max_pending
        self.ack_timeout = ack_timeout
        self.gather = gather
        self._gathering_for = 0
        """While the writer gathers, how many it waits for (else 0)."""
        self._last_arrival = 0.0
        self.q: dict[str, str] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._queue: deque[_Pending] = deque()
        self._wake = threading.Event()
        self._flush_due = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._writer_ended = False
        """Set as the writer thread ends, however it ends (read at every append: cheaper
        than `Thread.is_alive`, which takes a lock)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: Any = None
        self._append_listeners: list[Callable[[list[StoredMessage]], None]] = []
        self.commits = 0
        self.reachable = True
        """False from a lost connection until the next commit succeeds (readiness checks)."""
        self.committed_ops = 0

    # --- what a dialect provides ------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> Any:
        """A connection for the writer, checked for durable settings, schema migrated."""

    @abstractmethod
    def _begin(self, conn: Any) -> None: ...

    @abstractmethod
    def _commit(self, conn: Any) -> None: ...

    @abstractmethod
    def _rollback(self, conn: Any) -> None: ...

    @abstractmethod
    def _insert_messages(
        self, conn: Any, messages: Sequence[NewMessage], routings: Sequence[Routing | None]
    ) -> list[int | None]:
        """Insert in order; each message's id, or None where its source id was journaled.
        A message with a routing is stored with its verdict (state `routed` or `rejected`,
        event, reason); one without is `received`, for the router."""

    @abstractmethod
    def _lease(self, conn: Any, params: dict[str, Any]) -> list[Any]:
        """Inside a transaction: lease due deliveries (parameters: target, owner, until, now,
        limit); as rows (id, message_id, flow, flow_version, key, version, attempts,
        lease_token, created_at, payload), in any order."""

    @abstractmethod
    def _claimed_messages(self, conn: Any, rows: list[Any]) -> dict[int, Any]:
        """After the claim's commit: the messages behind claimed rows (`_lease`), by id, as (id,
        system, headers, body)."""

    @abstractmethod
    def _count_settled(
        self, conn: Any, changes: Counter[tuple[str, str]], entered: Collection[int] = ()
    ) -> None:
        """Inside a transaction: add deliveries that entered (+) or left (-) a settled state
        to `delivery_tally`: `changes` by (flow, state), `entered` by id (open before, whatever
        state they are in now). Every verb that moves a delivery into or out of `SETTLED` calls
        this once, for all its rows."""

    def _lock_keys(self, conn: Any, keys: Collection[str | None]) -> None:
        """Inside a transaction, before deliveries of these ordering keys are made: wait
        until no other transaction is making deliveries of them, and keep them until the
        commit. Per key, delivery ids must become visible in their order (a claim takes the
        lowest open one of a key); an id is given at insert and seen at commit, so where
        several processes route at once, each key's deliveries are made one transaction at a
        time. One writer per SQLite file needs nothing."""

    def _changed(self, conn: Any, what: str) -> None:
        """Inside a transaction: other processes should hear, at commit, that `what` changed
        ("message" or "delivery"). One process per SQLite file has nobody to tell."""

    def _lost(self, exc: BaseException) -> bool:
        """True if `exc` means the connection is gone (the group failed as a whole, reconnect)."""
        return False

    def _ended_before_commit(self, exc: BaseException) -> bool:
        """Whether `exc`, raised by a commit, says the server had ended the session before the
        commit reached it (so nothing was committed). False unless the dialect knows."""
        return False

    def _busy(self, exc: BaseException) -> bool:
        """True if `exc` means another process kept the journal too long (the group is refused
        as a whole, without trying each change alone)."""
        return False

    def listen(self, callback: Callable[[str], None]) -> None:
        """Hear what other processes changed; one process per SQLite file has nobody to hear."""

    def lead(self, on_change: Callable[[bool], None]) -> None:
        """Take part in the scheduler election; the only process on a SQLite file leads."""
        on_change(True)

    async def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        """Rows of a read; by default run by the writer, between groups."""
        return await self._write(lambda conn: list(conn.execute(sql, params).fetchall()))

    async def _query_dicts(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:
        def op(conn: Any) -> list[dict[str, Any]]:
            cur = conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

        return await self._write(op)

    def _opened(self) -> None:
        """Called in the event loop once the writer runs (readers, locks)."""

    def _closed(self) -> None:
        """Called after the writer stopped."""

    # --- life cycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._conn = await asyncio.to_thread(self._connect)
        self._writer_ended = self._stopping = False  # a journal closed and opened again
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()
        self._watchdog = asyncio.create_task(self._watch(), name="journal-watchdog")
        self._opened()

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
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        self._closed()

    # --- the writer ---------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Operations waiting for the writer."""
        return len(self._queue)

    def _submit(self, op: Op) -> asyncio.Future[Any]:
        if self._thread is None or self._loop is None:
            raise JournalError("the journal is not open")
        if self._writer_ended:
            raise JournalError("the journal writer stopped; restart the hub")
        future: asyncio.Future[Any] = self._loop.create_future()
        pending = _Pending(op, future)
        self._queue.append(pending)
        self._last_arrival = pending.enqueued
        if not self._flush_due:
            # Wake the writer once per turn of the event loop, after every handler running in
            # this turn has queued its change: larger groups, fewer commits and thread switches
            # (bench/ingest.py: ~17 -> ~25 messages a commit, 5-10% more requests per CPU-s).
            self._flush_due = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_due = False
        if len(self._queue) < self._gathering_for:
            return  # the writer wakes by itself to see whether arrivals have paused
        if not self._wake.is_set():  # set already while the writer is busy: skip its lock
            self._wake.set()

    def _run(self) -> None:
        try:
            self._write_groups()
        finally:
            self._writer_ended = True

    def _write_groups(self) -> None:
        gather = self.gather
        heavy = False
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._queue:
                if gather is not None:
                    waiting = len(self._queue)
                    if heavy:
                        self._gather(gather)
                    heavy = waiting >= gather.after
                group: list[_Pending] = []
                while self._queue and len(group) < MAX_GROUP:
                    group.append(self._queue.popleft())
                try:
                    self._commit_group(group)
                except BaseException as exc:  # the writer must outlive any one group
                    failure = JournalError(f"journal writer failed: {exc!r}")
                    self._hand_out(group, [(False, failure)] * len(group))
            if self._stopping and not self._queue:
                return

    def _gather(self, gather: Gathering) -> None:
        """Wait for a larger group, as `gather` says; in the writer thread."""
        deadline = time.monotonic() + gather.longest
        self._gathering_for = gather.target
        try:
            while len(self._queue) < gather.target and not self._stopping:
                now = time.monotonic()
                if now >= deadline or now - self._last_arrival >= gather.pause:
                    return
                self._wake.wait(min(gather.pause, deadline - now))
                self._wake.clear()
        finally:
            self._gathering_for = 0

    async def _watch(self) -> None:
        """Fail appends queued longer than `ack_timeout` (ingest answers 503; the sender retries).

        The writer skips operations whose caller has already been answered, so a 503 means the
        message was not journaled, except in the rare race where its group was already running:
        then the retry with the same delivery id is a duplicate, acknowledged and not stored twice.

        And say when the writer is stuck: the oldest operation waiting has waited longer than
        `ack_timeout` (a hung disk, lock or server, or one very long operation). The journal is
        then not `reachable` (readiness answers 503, so a balancer sends webhooks elsewhere)
        until the writer commits again, and the log says so once, not at every look. Claims
        and settles keep waiting: failing them would drop outcomes already delivered.
        """
        stalled = False
        while True:
            await asyncio.sleep(min(0.25, self.ack_timeout / 4))
            now = time.monotonic()
            waited = self._oldest_wait(now)
            if waited > self.ack_timeout and not stalled:
                stalled = True
                self.reachable = False
                log.error(
                    "the journal's writer has taken nothing for %.1f s (a hung disk, lock or "
                    "server, or one very long operation): webhooks get 503 until it moves",
                    waited,
                    extra={"waiting": len(self._queue)},
                )
            elif stalled and waited <= self.ack_timeout:
                stalled = False
                log.warning("the journal's writer moves again", extra={"waiting": len(self._queue)})
            limit = now - self.ack_timeout
            for i in range(len(self._queue)):
                try:
                    pending = self._queue[i]
                except IndexError:
                    break
                if pending.enqueued > limit:
                    break
                if isinstance(pending.op, AppendOp) and not pending.future.done():
                    pending.future.set_exception(
                        JournalBusy(f"the journal did not commit within {self.ack_timeout:g} s")
                    )

    def _oldest_wait(self, now: float) -> float:
        """Seconds the oldest operation still queued has waited (0 if none)."""
        try:
            return now - self._queue[0].enqueued
        except IndexError:  # empty, or emptied by the writer meanwhile
            return 0.0

    def _ensure_connection(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _commit_group(self, group: list[_Pending]) -> None:
        # Appends whose webhook was already answered 503 are not journaled. (Reading `done()`
        # from this thread races benignly: at worst the message is stored and its retry is a
        # duplicate.)
        group = [p for p in group if not (isinstance(p.op, AppendOp) and p.future.done())]
        if not group:
            return
        for again in (False, True):
            ran = self._run_group(group)
            if ran is None:
                return  # handed out already
            conn, results = ran
            try:
                self._commit(conn)
            except Exception as exc:
                if not again and self._ended_before_commit(exc):
                    # This process was frozen inside the group, and the server ended the
                    # session before the commit reached it: nothing was committed. Once afresh.
                    self._drop_connection()
                    continue
                self._hand_out(group, [(False, self._commit_failed(exc))] * len(group))
                return
            self.commits += 1
            self.reachable = True
            self.committed_ops += len(group)
            self._hand_out(group, [self._finished(conn, r) for r in results])
            return

    def _run_group(self, group: list[_Pending]) -> tuple[Any, list[Any]] | None:
        """Run the group's statements in a transaction: the connection and their results, for
        the commit. None when the group was answered already (refused, unreachable, or run
        one by one after a failure)."""
        for retry in (False, True):
            fresh = retry or self._conn is None
            try:
                conn = self._ensure_connection()
            except Exception as exc:
                self._hand_out(group, [(False, self._unreachable(exc))] * len(group))
                return None
            try:
                self._begin(conn)
                return conn, self._run_ops(conn, group)
            except Exception as exc:
                if self._busy(exc):
                    # Waited its time for another process's write: one by one, each would wait
                    # as long again. The group is refused as a whole, as when the queue is full.
                    self._safe_rollback(conn)
                    busy = JournalBusy(f"the journal is busy: {exc}")
                    self._hand_out(group, [(False, busy)] * len(group))
                    return None
                if not self._lost(exc):
                    self._safe_rollback(conn)
                    self._hand_out(group, [self._commit_one(p) for p in group])
                    return None
                self._drop_connection()
                if fresh:
                    self._hand_out(group, [(False, self._unreachable(exc))] * len(group))
                    return None
                # A connection that died while idle (the server restarted) is found out at its
                # first statement; nothing of this group was committed, so try it once afresh.
        raise AssertionError("unreachable: the second try is always fresh")

    @staticmethod
    def _finished(conn: Any, result: Any) -> tuple[bool, Any]:
        """A committed operation's outcome: its result, finished if it asked for that."""
        if not isinstance(result, AfterCommit):
            return True, result
        try:
            return True, result.then(conn)
        except Exception as exc:  # the change holds; the caller learns what it missed
            failure = JournalError(f"committed, but reading after the commit failed: {exc}")
            failure.__cause__ = exc
            return False, failure

    def _run_ops(self, conn: Any, group: list[_Pending]) -> list[Any]:
        results: list[Any] = [None] * len(group)
        appends = [p.op for p in group if isinstance(p.op, AppendOp)]
        if appends:
            routings = [a.routing for a in appends]
            fresh = self._insert_messages(conn, [a.message for a in appends], routings)
            self._route_appended(conn, fresh, routings)
            if len(appends) == len(group):
                return fresh  # appends alone: ingest under load
            ids = iter(fresh)
            results = [next(ids) if isinstance(p.op, AppendOp) else None for p in group]
        for i, p in enumerate(group):
            if not isinstance(p.op, AppendOp):
                results[i] = p.op(conn)
        return results

    def _commit_one(self, pending: _Pending) -> tuple[bool, Any]:
        try:
            conn = self._ensure_connection()
            self._begin(conn)
            (result,) = self._run_ops(conn, [pending])
        except Exception as exc:
            if self._lost(exc):
                self._drop_connection()
                return False, self._unreachable(exc)
            if self._conn is not None:
                self._safe_rollback(self._conn)
            op = pending.op
            if isinstance(op, AppendOp) and op.routing is not None:
                # What the router made of it could not be stored: the message must be kept
                # all the same. It waits `received`, and the router's own failure is logged.
                log.error(
                    "a message's routing could not be stored; it waits for the router",
                    extra={"system": op.message.system, "error": str(exc)},
                )
                op.routing = None
                return self._commit_one(pending)
            if self._driver_error(exc) or isinstance(exc, MemoryError):
                # Disk full, I/O error, locked, out of memory (SQLite's SQLITE_NOMEM arrives as
                # MemoryError): the caller learns it as the journal's failure, and ingest
                # answers 503 with Retry-After rather than 500.
                failure = JournalError(f"journal write failed: {str(exc) or type(exc).__name__}")
                failure.__cause__ = exc
                return False, failure
            return False, exc
        try:
            self._commit(conn)
        except Exception as exc:
            return False, self._commit_failed(exc)
        self.commits += 1
        self.reachable = True
        self.committed_ops += 1
        return self._finished(conn, result)

    def _route_appended(
        self, conn: Any, ids: Sequence[int | None], routings: Sequence[Routing | None]
    ) -> None:
        """Keys and deliveries of messages routed as they arrived, just inserted (`ids`; None:
        a duplicate, which gets nothing)."""
        routed = [
            dataclasses.replace(r, message_id=mid)
            for mid, r in zip(ids, routings, strict=True)
            if mid is not None and r is not None
        ]
        if routed:
            if any(r.deliveries for r in routed):
                self._changed(conn, "delivery")
            self._route_rows(conn, routed, time.time(), stored=True)

    def _unreachable(self, exc: BaseException) -> JournalBusy:
        self.reachable = False
        return _unreachable_error(exc)

    def _driver_error(self, exc: BaseException) -> bool:
        return False

    def _safe_rollback(self, conn: Any) -> None:
        try:
            self._rollback(conn)
        except Exception as exc:
            if not self._lost(exc):
                raise
            self._drop_connection()

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _commit_failed(self, exc: BaseException) -> JournalError:
        # After a failed commit the state is unknown to us (fsyncgate, or the server went away
        # mid-commit): never trust this connection again. The next group opens a fresh one, so
        # the database recovers as after a crash. Callers retry; dedupe keeps repeats single.
        self._drop_connection()
        return JournalError(f"journal commit failed ({exc}); nothing in it was acknowledged")

    def _hand_out(self, group: list[_Pending], outcomes: list[tuple[bool, Any]]) -> None:
        assert self._loop is not None
        # If the loop closed during shutdown, nobody is waiting for these results any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._resolve, group, outcomes)

    def _resolve(self, group: list[_Pending], outcomes: list[tuple[bool, Any]]) -> None:
        """In the event loop: hand out results, then tell listeners about new messages.

        Listeners hear from here, not from `append`'s caller, so a message whose webhook
        request was cancelled after the commit is still routed at once.
        """
        appended: list[StoredMessage] = []
        listening = bool(self._append_listeners)
        for pending, (ok, value) in zip(group, outcomes, strict=True):
            if (
                listening
                and ok
                and value is not None
                and isinstance(pending.op, AppendOp)
                and pending.op.routing is None  # routed already
            ):
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

    async def _write(self, op: Callable[[Any], T]) -> T:
        result: T = await self._submit(op)
        return result

    # --- ingest -------------------------------------------------------------------------------

    def on_append(self, callback: Callable[[list[StoredMessage]], None]) -> None:
        self._append_listeners.append(callback)

    async def append(self, message: NewMessage, routing: Routing | None = None) -> int | None:
        if len(self._queue) >= self.max_pending:
            raise JournalBusy(f"{len(self._queue)} changes are waiting for the journal")
        fresh: int | None = await self._submit(AppendOp(message, routing))
        return fresh

    async def unrouted(self, limit: int, *, before: float = float("inf")) -> list[StoredMessage]:
        rows = await self._query(self.q["unrouted_messages"], {"limit": limit, "before": before})
        return [StoredMessage(r[0], r[1], r[2], r[3], _b(r[4]), _b(r[5])) for r in rows]

    # --- router -------------------------------------------------------------------------------

    async def route(self, routings: Sequence[Routing]) -> None:
        def op(conn: Any) -> None:
            if any(r.deliveries for r in routings):
                self._changed(conn, "delivery")
            self._route_rows(conn, routings, time.time())

        await self._write(op)

    # --- workers ------------------------------------------------------------------------------

    async def claim(self, *, target: str, owner: str, limit: int, lease: float) -> list[Claimed]:
        q = self.q

        def op(conn: Any) -> AfterCommit | list[Claimed]:
            now = time.time()
            rows = self._lease(
                conn,
                {
                    "target": target,
                    "owner": owner,
                    "until": now + lease,
                    "now": now,
                    "limit": limit,
                },
            )
            if not rows:
                return []
            live = []
            skipped: Counter[tuple[str, str]] = Counter()
            for row in rows:
                did, _mid, flow, _tag, key, version, _attempts, token = row[:8]
                if version is not None and key is not None:
                    applied = conn.execute(
                        q["applied_version"], {"flow": flow, "key": key}
                    ).fetchone()
                    if applied is not None and applied[0] >= version:
                        skipped[(flow, "skipped")] += conn.execute(
                            q["skip_delivery"],
                            {
                                "id": did,
                                "token": token,
                                "now": now,
                                "reason": f"stale: source version {version} is not newer than "
                                f"the applied {applied[0]}",
                            },
                        ).rowcount
                        continue
                live.append(row)
            self._count_settled(conn, skipped)
            # Messages never change once journaled (retention only empties their bodies):
            # read after the commit, on SQLite without holding the write lock.
            return AfterCommit(lambda conn: self._claimed_or_unleased(conn, live)) if live else []

        claimed: list[Claimed] = await self._submit(op)  # an AfterCommit is finished by then
        return claimed

    def _claimed_or_unleased(self, conn: Any, live: list[Any]) -> list[Claimed]:
        try:
            return self._claimed(conn, live)
        except Exception:
            # Nothing was sent: the leases go back now (a lease that ran out would send a
            # delivery unsafe to repeat to review). If that fails too, they run out.
            with contextlib.suppress(Exception):
                self._begin(conn)
                try:
                    now = time.time()
                    for r in live:
                        conn.execute(
                            self.q["unlease_delivery"], {"id": r[0], "token": r[7], "now": now}
                        )
                except Exception:
                    self._safe_rollback(conn)
                    raise
                self._commit(conn)
            raise

    def _claimed(self, conn: Any, live: list[Any]) -> list[Claimed]:
        messages = self._claimed_messages(conn, live)
        claimed = []
        for row in live:
            did, mid, flow, tag, key, version, attempts, token, created, payload = row[:10]
            msg = messages[mid]
            claimed.append(
                Claimed(
                    did,
                    mid,
                    flow,
                    tag,
                    key,
                    version,
                    attempts,
                    token,
                    created,
                    None if payload is None else bytes(payload),
                    msg[1],
                    _b(msg[2]) or b"{}",
                    _b(msg[3]),
                )
            )
        claimed.sort(key=lambda c: c.id)
        return claimed

    async def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        if not settlements:
            return []

        def op(conn: Any) -> list[bool]:
            return self._settle_rows(conn, settlements, time.time())

        return await self._write(op)

    def _route_rows(
        self, conn: Any, routings: Sequence[Routing], now: float, *, stored: bool = False
    ) -> None:
        """Keys, verdicts and deliveries of routed messages (`stored`: the messages were
        inserted with their verdicts, in this transaction)."""
        self._many(
            conn,
            "insert_message_key",
            [
                {"name": name, "value": value, "message_id": r.message_id}
                for r in routings
                for name, value in r.keys.items()
            ],
        )
        if stored:
            routed = {r.message_id for r in routings if r.rejected is None}
        else:
            routed = self._mark_verdicts(conn, routings)
        self._lock_keys(
            conn, {d.key for r in routings if r.message_id in routed for d in r.deliveries}
        )
        superseded: Counter[tuple[str, str]] = Counter()
        deliveries: list[dict[str, Any]] = []
        for r in routings:
            if r.message_id not in routed:
                continue
            for d in r.deliveries:
                row = {
                    "message_id": r.message_id,
                    "flow": d.flow,
                    "flow_version": d.flow_version,
                    "target": d.target,
                    "key": d.key,
                    "version": d.version,
                    "safe_retry": bool(d.safe_retry),
                    "waits_for": d.waits_for,
                }
                if d.coalesce and d.key is not None:
                    # In order, one at a time: each value supersedes the ones before it. The
                    # rows gathered so far go first, so ids keep the messages' order across
                    # flows too (a flow ordered after another waits only on lower ids).
                    self._many(conn, "insert_delivery", deliveries, now=now)
                    deliveries = []
                    superseded[(d.flow, "skipped")] += conn.execute(
                        self.q["supersede_pending"],
                        {"flow": d.flow, "key": d.key, "message_id": r.message_id, "now": now},
                    ).rowcount
                    self._many(conn, "insert_delivery", [row], now=now)
                else:
                    deliveries.append(row)
        self._many(conn, "insert_delivery", deliveries, now=now)
        self._count_settled(conn, superseded)

    def _mark_verdicts(self, conn: Any, routings: Sequence[Routing]) -> set[int]:
        """Mark messages rejected or routed; the ids routed now (a start-up scan may meet a
        live notification: a message routed already gets no deliveries again)."""
        self._many(
            conn,
            "mark_rejected",
            [
                {"id": r.message_id, "event": r.event, "reason": r.rejected}
                for r in routings
                if r.rejected is not None
            ],
        )
        verdicts = [{"id": r.message_id, "event": r.event} for r in routings if r.rejected is None]
        return self._mark_routed(conn, verdicts) if verdicts else set()

    def _settle_rows(self, conn: Any, settlements: Sequence[Settlement], now: float) -> list[bool]:
        """Record outcomes, each fenced by its lease token; which ones were recorded."""
        kept = self._settle_fenced(
            conn,
            [
                {
                    "id": s.delivery_id,
                    "token": s.token,
                    "state": s.state,
                    "spent": s.spent,
                    "due_at": s.due_at,
                    "error_class": s.error_class,
                    "error": s.error,
                }
                for s in settlements
            ],
            now,
        )
        recorded = [s for s in settlements if s.delivery_id in kept]
        self._count_settled(
            conn, Counter(), [s.delivery_id for s in recorded if s.state in SETTLED]
        )
        self._many(
            conn,
            "insert_attempt",
            [
                {
                    "delivery_id": s.delivery_id,
                    "started_at": s.attempt.started_at,
                    "duration": s.attempt.duration,
                    "request": s.attempt.request,
                    "status": s.attempt.status,
                    "response": s.attempt.response,
                    "classification": s.attempt.classification,
                    "error": s.attempt.error,
                    "flow_version": s.attempt.flow_version,
                    "body_start": s.attempt.body_span[0] if s.attempt.body_span else None,
                    "body_end": s.attempt.body_span[1] if s.attempt.body_span else None,
                }
                for s in recorded
                if s.attempt is not None
            ],
        )
        self._many(
            conn,
            "record_applied",
            [
                {"flow": s.flow, "key": s.key, "version": s.applied_version}
                for s in recorded
                if s.applied_version is not None and s.key is not None
            ],
        )
        self._many(
            conn,
            "upsert_xref",
            [
                {
                    "entity": x.entity,
                    "system": x.system,
                    "key": x.key,
                    "other_system": x.other_system,
                    "other_key": x.other_key,
                    "delivery_id": s.delivery_id,
                }
                for s in recorded
                for x in s.xrefs
            ],
            now=now,
        )
        return [s.delivery_id in kept for s in settlements]

    # --- statements over many rows: a few a batch on SQLite, one set at a time on PostgreSQL ---

    def _many(self, conn: Any, name: str, rows: list[dict[str, Any]], **same: Any) -> None:
        """Run the named statement for each row (`same`: parameters shared by every row)."""
        if rows:
            conn.executemany(self.q[name], [{**row, **same} for row in rows])

    def _mark_routed(self, conn: Any, rows: list[dict[str, Any]]) -> set[int]:
        """Mark messages routed; the ids that were still waiting to be."""
        q = self.q["mark_routed"]
        return {row["id"] for row in rows if conn.execute(q, row).rowcount == 1}

    def _settle_fenced(self, conn: Any, rows: list[dict[str, Any]], now: float) -> set[int]:
        """Settle deliveries whose lease token still holds; their ids."""
        q = self.q["settle_delivery"]
        return {row["id"] for row in rows if conn.execute(q, {**row, "now": now}).rowcount == 1}

    async def expire_leases(self) -> list[int]:
        return await self._expire(time.time())

    async def _expire(self, now: float) -> list[int]:
        q = self.q

        def op(conn: Any) -> list[int]:
            expired = [r[0] for r in conn.execute(q["expire_leases"], {"now": now}).fetchall()]
            if expired:
                self._changed(conn, "delivery")
            return expired

        return await self._write(op)

    async def expire_all_leases(self) -> list[int]:
        """Leases of processes that are gone; a dialect that knows more than the clock says so."""
        return await self.expire_leases()

    async def order_after(self, after: Mapping[str, str | None]) -> int:
        def op(conn: Any) -> int:
            changed = 0
            for flow, other in after.items():
                params = {"flow": flow, "after": other}
                changed += conn.execute(self.q["order_after"], params).rowcount
            if changed:
                self._changed(conn, "delivery")
            return changed

        return await self._write(op)

    async def dead_without_target(self, targets: Collection[str]) -> dict[str, int]:
        now = time.time()

        def orphans(conn: Any) -> list[str]:
            found = conn.execute(self.q["pending_targets"]).fetchall()
            return [t for (t,) in found if t not in targets]

        dead: dict[str, int] = {}
        for target in await self._write(orphans):
            reason = (
                f"no flow of the project delivers to target system '{target}' any more: "
                "replay once one does again (a replay goes to the same system), or discard"
            )
            dead[target] = await self._bulk(
                "dead_without_target", {"target": target, "now": now, "reason": reason}
            )
        return dead

    async def release_held(self, target: str) -> int:
        return await self._bulk("release_held", {"target": target, "now": time.time()})

    async def _bulk(self, query: str, params: dict[str, Any]) -> int:
        """Run the update `query` (which changes at most `:limit` deliveries) until it changes
        fewer than `BULK_ROWS`: each run a commit of its own, so webhooks are acknowledged
        between them. The number of deliveries changed."""
        sql, params = self.q[query], {**params, "limit": BULK_ROWS}

        def op(conn: Any) -> int:
            n = int(conn.execute(sql, params).rowcount)
            if n:
                self._changed(conn, "delivery")
            return n

        total = 0
        while True:
            n = await self._write(op)
            total += n
            if n < BULK_ROWS:
                return total

    async def purge(self, *, before: float) -> int:
        q = self.q

        def op(conn: Any) -> int:
            n: int = conn.execute(
                q["purge_message_payloads"], {"before": before, "limit": 5000}
            ).rowcount
            n += conn.execute(
                q["purge_attempt_payloads"], {"before": before, "limit": 5000}
            ).rowcount
            return n

        await self._write(self._compact)
        total = 0
        while True:
            n = await self._write(op)
            total += n
            if n == 0:
                return total

    def _compact(self, conn: Any) -> None:
        """Housekeeping that goes with the retention purge (the tally's rows, on PostgreSQL)."""

    # --- operators ----------------------------------------------------------------------------

    async def flow_counts(self) -> list[FlowCount]:
        rows = await self._query(self.q["flow_counts"])
        return [FlowCount(r[0], r[1], r[2], r[3]) for r in rows]

    async def rejected_counts(self) -> list[tuple[str, int, float]]:
        return [(r[0], r[1], r[2]) for r in await self._query(self.q["rejected_counts"])]

    async def select(self, selection: Selection) -> list[dict[str, object]]:
        clauses, params = _selection_sql(selection, self.marker)
        return await self._query_dicts(
            "SELECT d.id, d.flow, d.state, d.attempts, d.error_class, d.last_error, d.created_at, "
            "d.updated_at, d.message_id, d.target, d.key, m.system, m.source_id "
            "FROM delivery d JOIN message m ON m.id = d.message_id "
            f"WHERE {' AND '.join(clauses) or '1 = 1'} ORDER BY d.id",
            params,
        )

    async def rejected(
        self, ids: Sequence[int] = (), system: str | None = None
    ) -> list[dict[str, object]]:
        clauses = ["state = 'rejected'"]
        params: list[Any] = []
        if ids:
            clauses.append(f"id IN ({','.join([self.marker] * len(ids))})")
            params.extend(ids)
        if system:
            clauses.append(f"system = {self.marker}")
            params.append(system)
        return await self._query_dicts(
            "SELECT id, system, source_id, received_at, event, reason FROM message "
            f"WHERE {' AND '.join(clauses)} ORDER BY id",
            params,
        )

    async def delivery_source(self, delivery_id: int) -> tuple[bytes | None, StoredMessage] | None:
        """An edited payload, if any, and the message the delivery was routed from."""
        rows = await self._query(self.q["delivery_source"], {"id": delivery_id})
        if not rows:
            return None
        payload, mid, system, headers, body = rows[0]
        message = StoredMessage(mid, system, "", 0.0, _b(headers) or b"{}", _b(body))
        return (None if payload is None else bytes(payload)), message

    async def replay(
        self,
        ids: Sequence[int],
        *,
        actor: str,
        flow_versions: dict[str, str],
        payload: bytes | None = None,
    ) -> int:
        q = self.q
        flow_of = f"SELECT flow, state FROM delivery WHERE id = {self.marker}"

        def op(conn: Any) -> int:
            now = time.time()
            done = 0
            reopened: Counter[tuple[str, str]] = Counter()
            for did in ids:
                row = conn.execute(flow_of, (did,)).fetchone()
                if row is None:
                    continue
                n = conn.execute(
                    q["replay_deliveries"],
                    {
                        "id": did,
                        "now": now,
                        "flow_version": flow_versions.get(row[0]),
                        "payload": payload,
                    },
                ).rowcount
                if n:
                    done += 1
                    if row[1] in SETTLED:
                        reopened[(row[0], row[1])] -= 1
                    self._audit(
                        conn,
                        actor,
                        "replay" if payload is None else "edit-and-replay",
                        f"delivery/{did}",
                        {"flow": row[0], "flow_version": flow_versions.get(row[0])},
                    )
            self._count_settled(conn, reopened)
            if done:
                self._changed(conn, "delivery")
            return done

        return await self._write(op)

    async def discard(self, ids: Sequence[int], *, actor: str, reason: str) -> int:
        q = self.q

        def op(conn: Any) -> int:
            now = time.time()
            done = 0
            discarded: Counter[tuple[str, str]] = Counter()
            for did in ids:
                row = conn.execute(
                    q["discard_delivery"], {"id": did, "now": now, "reason": reason}
                ).fetchone()
                if row is not None:
                    done += 1
                    discarded[(row[0], "discarded")] += 1
                    self._audit(conn, actor, "discard", f"delivery/{did}", {"reason": reason})
            self._count_settled(conn, discarded)
            return done

        return await self._write(op)

    async def replay_rejected(self, ids: Sequence[int], *, actor: str) -> int:
        q = self.q

        def op(conn: Any) -> int:
            done = 0
            for mid in ids:
                if conn.execute(q["rereceive_message"], {"id": mid}).rowcount:
                    done += 1
                    self._audit(conn, actor, "replay-rejected", f"message/{mid}", {})
            if done:
                self._changed(conn, "message")
            return done

        return await self._write(op)

    async def audit(self, *, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        await self._write(lambda conn: self._audit(conn, actor, action, target, detail))

    def _audit(
        self, conn: Any, actor: str, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        conn.execute(
            self.q["insert_audit"],
            {
                "at": time.time(),
                "actor": actor,
                "action": action,
                "target": target,
                "detail": orjson.dumps(detail).decode(),
            },
        )

    async def get_cursor(self, name: str) -> str | None:
        rows = await self._query(self.q["get_cursor"], {"name": name})
        return str(rows[0][0]) if rows else None

    async def known_keys(self, name: str, values: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(values), 500):
            chunk = list(values[start : start + 500])
            marks = ", ".join([self.marker] * len(chunk))
            sql = (
                "SELECT DISTINCT value FROM message_key "
                f"WHERE name = {self.marker} AND value IN ({marks})"
            )
            found.update(str(r[0]) for r in await self._query(sql, [name, *chunk]))
        return found

    async def set_cursor(self, name: str, value: str) -> None:
        q = self.q
        await self._write(
            lambda conn: conn.execute(
                q["set_cursor"], {"name": name, "value": value, "now": time.time()}
            )
        )


def _b(value: Any) -> bytes:
    """A BLOB/bytea column as bytes (psycopg may hand back a memoryview); NULL as b""."""
    if value is None:
        return b""
    return value if isinstance(value, bytes) else bytes(value)


def _unreachable_error(exc: BaseException) -> JournalBusy:
    failure = JournalBusy(f"the journal is unreachable ({str(exc).strip() or type(exc).__name__})")
    failure.__cause__ = exc
    return failure


def _selection_sql(s: Selection, marker: str) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []

    def among(column: str, values: Sequence[Any]) -> None:
        clauses.append(f"{column} IN ({','.join([marker] * len(values))})")
        params.extend(values)

    if s.ids:
        among("d.id", s.ids)
        return clauses, params
    if s.states:
        among("d.state", s.states)
    for column, op, value in (
        ("d.flow", "=", s.flow),
        ("d.error_class", "=", s.error_class),
        ("d.created_at", ">=", s.since),
        ("d.created_at", "<", s.until),
    ):
        if value is not None and value != "":
            clauses.append(f"{column} {op} {marker}")
            params.append(value)
    return clauses, params
