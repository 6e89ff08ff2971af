"""`PostgresJournal`: the same verbs and group commit as on SQLite, on a PostgreSQL server.

Every process (ingest, worker, scheduler, or all of them) has one writer connection that
commits groups, exactly as the SQLite journal does; many processes on many hosts share the
database. What differs from SQLite:

- Messages of a group are inserted in one statement (`unnest` of arrays), so a group of 500
  webhooks is one round trip, not 500.
- Workers claim with `FOR UPDATE SKIP LOCKED`: two workers never wait for each other and never
  lease the same delivery. Leases carry a fencing token, as on SQLite, so a worker that wakes
  up after its lease expired cannot record an outcome over the worker that took over.
- Durability is checked at start: the server must run with `fsync` on and the session with
  `synchronous_commit` at least `on` (or `remote_write`/`remote_apply` on a replicated server).
- The server may go away: a lost connection fails the group in hand with `JournalBusy` (ingest
  answers 503 with Retry-After; workers back off) and the next group connects afresh, with a
  connect timeout and TCP keepalives, so nothing waits longer than the ack timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from seamline.errors import JournalError
from seamline.journal.base import ConsoleJournal, Journal, NewMessage, Routing
from seamline.journal.group_commit import Gathering, GroupCommitJournal, verdict_columns
from seamline.journal.queries import migrations, queries

Q = queries("postgres")
CONNECT_TIMEOUT = 3
NOTIFY_CHANNEL = "seamline_journal"
SCHEDULER_LOCK = 4242000002
"""The advisory lock the one active scheduler holds for as long as its session lives."""
RETRY_CONNECT = 1.0
log = logging.getLogger("seamline.journal")


PLANNING = "SET plan_cache_mode = force_custom_plan"
"""Plan every execution for the tables as they are. The queue tables start empty and grow by
thousands of rows a second; psycopg prepares a statement run five times, and the server would
then keep one generic plan, made for the empty table. In bench/postgres.py such a plan scanned
every pending delivery for each one claimed (a claim of 100: 120 ms instead of 3) and cut
throughput by two thirds, in some runs and not others. Planning afresh costs well under a
millisecond per statement of a batch. A SET after connecting rather than a startup option:
poolers such as pgbouncer refuse startup options they do not know."""


IDLE_IN_TRANSACTION = 10.0
"""Seconds a session of ours may sit in an open transaction before the server ends it. Ours
run their statements back to back, so one that sits longer belongs to a process frozen in
it (SIGSTOP, a host starved of CPU, a debugger): its row locks would hold every other
process's statements on those rows (the scheduler's lease sweep, a budget transition) for as
long as it stays frozen. Ended, its transaction rolls back; when it wakes, its connection is
gone and the change is retried or its leases run out, as after any lost connection."""


def idle_in_transaction_setting(seconds: float = IDLE_IN_TRANSACTION) -> str:
    """The SET that has the server end a session of ours left in a transaction `seconds`. A
    SET after connecting, as `PLANNING`, not a startup option (pgbouncer)."""
    return f"SET idle_in_transaction_session_timeout = {max(1, round(seconds * 1000))}"


LEAD_SILENCE = 10.0
"""Seconds the scheduler lock's session may stay silent before the server ends it, and frees
the lock for another scheduler. The holder asks the server every `RETRY_CONNECT` (1 s) whether
it still holds it, so a session silent for 10 s belongs to a process frozen (SIGSTOP, a host
starved of CPU, a debugger) or cut off from the server without the connection being closed (a
host that died or a network that dropped its packets, which the server's own TCP keepalives
would notice only after hours). Needs PostgreSQL 14 (`idle_session_timeout`); on older servers
the lock is freed only when the session ends otherwise."""


def connection_options(ack_timeout: float) -> dict[str, Any]:
    """Keep a dead server from holding a caller longer than it may wait."""
    return {
        "connect_timeout": CONNECT_TIMEOUT,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 2,
        "tcp_user_timeout": int(max(ack_timeout, 1.0) * 1000),
        "application_name": "seamline",
    }


def redacted(url: str) -> str:
    """A journal URL fit for a log line or an error: the password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def check_durable(conn: psycopg.Connection[Any]) -> None:
    """Refuse to run where a committed transaction could be lost in a crash."""
    fsync = conn.execute("SHOW fsync").fetchone()
    sync = conn.execute("SHOW synchronous_commit").fetchone()
    assert fsync is not None and sync is not None
    if fsync[0] != "on" or sync[0] not in ("on", "remote_write", "remote_apply"):
        raise JournalError(
            f"PostgreSQL runs with fsync={fsync[0]}, synchronous_commit={sync[0]}; Seamline "
            "needs fsync=on and synchronous_commit=on to keep what it acknowledged"
        )


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Apply migrations not yet applied, one process at a time; return the schema version."""
    with conn.transaction():
        conn.execute(Q["lock_migrations"])
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        current = int(row[0] or 0) if row else 0
        for number, script in migrations("postgres"):
            if number <= current:
                continue
            conn.execute(script.encode())
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
            current = number
    return current


class PostgresJournal(GroupCommitJournal):
    """The journal in a PostgreSQL database, shared by any number of hub processes."""

    dialect = "postgres"
    marker = "%s"

    def __init__(
        self,
        url: str,
        *,
        max_pending: int = 20_000,
        ack_timeout: float = 5.0,
        gather: Gathering | None = None,
        idle_in_transaction: float = IDLE_IN_TRANSACTION,
        lead_silence: float = LEAD_SILENCE,
    ) -> None:
        """`gather`: none by default. A commit here is a round trip to the server, whose own
        group commit serves every process; waiting in the writer measured no gain in
        bench/postgres.py, and reads that go through the writer would wait too.
        `idle_in_transaction`: see `IDLE_IN_TRANSACTION`; `lead_silence`: see `LEAD_SILENCE`."""
        super().__init__(max_pending=max_pending, ack_timeout=ack_timeout, gather=gather)
        if idle_in_transaction <= 0:
            raise ValueError(f"idle_in_transaction must be positive, got {idle_in_transaction}")
        if lead_silence <= 2 * RETRY_CONNECT:
            raise ValueError(
                f"lead_silence must be over {2 * RETRY_CONNECT} s (the lock holder speaks every"
                f" {RETRY_CONNECT} s), got {lead_silence}"
            )
        self.url = url
        self.idle_in_transaction = idle_in_transaction
        self.lead_silence = lead_silence
        self.q = Q
        self._reconnect_after = 0.0
        self._listeners: list[Callable[[str], None]] = []
        self._warned_old_server = False
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"PostgresJournal({redacted(self.url)!r})"

    async def open(self) -> None:
        try:
            await super().open()
        except psycopg.OperationalError as exc:
            raise JournalError(
                f"cannot reach the journal at {redacted(self.url)}: {str(exc).strip()}"
            ) from None

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        """A new connection to the journal's database (the writer's, or a listener's)."""
        return psycopg.connect(
            self.url, autocommit=autocommit, **connection_options(self.ack_timeout)
        )

    def _connect(self) -> psycopg.Connection[Any]:
        # While the server is away, each group would otherwise wait for a connect attempt;
        # after a failure, fail fast for a moment and let callers retry.
        if time.monotonic() < self._reconnect_after:
            raise psycopg.OperationalError("the last connection attempt failed just now")
        try:
            conn = self.connect()
        except psycopg.OperationalError:
            self._reconnect_after = time.monotonic() + 0.5
            raise
        try:
            # First, so that a process frozen in a migration is ended too
            conn.execute(PLANNING)
            conn.execute(idle_in_transaction_setting(self.idle_in_transaction))
            conn.commit()  # a SET made in a transaction lasts for the session once committed
            check_durable(conn)
            conn.rollback()  # end the transaction the checks began: migrate runs in its own
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    # --- the dialect --------------------------------------------------------------------------

    def _begin(self, conn: psycopg.Connection[Any]) -> None:
        pass  # psycopg opens a transaction with the first statement

    def _commit(self, conn: psycopg.Connection[Any]) -> None:
        conn.commit()

    def _rollback(self, conn: psycopg.Connection[Any]) -> None:
        conn.rollback()

    def _lost(self, exc: BaseException) -> bool:
        # A deadlock or serialization failure is an OperationalError to psycopg, but the
        # connection is fine: the group is rolled back and run again one change at a time.
        # A session the server ended for sitting in a transaction (this process was frozen)
        # is an InternalError to psycopg, but gone.
        if self._ended_before_commit(exc):
            return True
        return isinstance(exc, psycopg.OperationalError) and not isinstance(
            exc, psycopg.errors.TransactionRollback
        )

    def _ended_before_commit(self, exc: BaseException) -> bool:
        # Ended for sitting in a transaction: the server says so before it reads the COMMIT
        return isinstance(exc, psycopg.errors.IdleInTransactionSessionTimeout)

    def _lock_keys(self, conn: psycopg.Connection[Any], keys: Collection[str | None]) -> None:
        wanted = list({k for k in keys if k is not None})  # the query orders them
        if wanted:
            conn.execute(Q["lock_keys"], {"keys": wanted})

    def _driver_error(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.Error)

    def _changed(self, conn: psycopg.Connection[Any], what: str) -> None:
        # Delivered by the server at commit, once per transaction and payload.
        conn.execute(Q["notify"], {"channel": NOTIFY_CHANNEL, "what": what})

    def _insert_messages(
        self,
        conn: psycopg.Connection[Any],
        messages: Sequence[NewMessage],
        routings: Sequence[Routing | None],
    ) -> list[int | None]:
        columns = {
            "systems": [m.system for m in messages],
            "source_ids": [m.source_id for m in messages],
            "received": [m.received_at for m in messages],
            "headers": [m.headers for m in messages],
            "bodies": [m.body for m in messages],
        }
        if any(r is None for r in routings):
            self._changed(conn, "message")  # the scheduler routes these
        if any(r is not None for r in routings):
            rows = conn.execute(
                Q["insert_routed_messages"], {**columns, **verdict_columns(routings)}
            ).fetchall()
        else:
            rows = conn.execute(Q["insert_messages"], columns).fetchall()
        fresh = {(system, source_id): mid for mid, system, source_id in rows}
        # A source id twice in one group: the first gets the id, the repeat is a duplicate.
        return [fresh.pop((m.system, m.source_id), None) for m in messages]

    def _compact(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(Q["fold_tally"])

    def _lease(self, conn: psycopg.Connection[Any], params: dict[str, Any]) -> list[Any]:
        # In binary: a 3 KB body as text is 6 KB of hex the server writes and psycopg reads
        # back; binary saves ~8 us of client and ~8 of server CPU a delivery
        # (bench/postgres_claim.py).
        return conn.execute(Q["claim_deliveries"], params, binary=True).fetchall()

    def _claimed_messages(self, conn: psycopg.Connection[Any], rows: list[Any]) -> dict[int, Any]:
        # The claim returns each delivery's message (system, headers, body) after its columns:
        # one statement and one round trip fewer per batch.
        return {r[1]: (r[1], *r[10:13]) for r in rows}

    def _many(
        self, conn: psycopg.Connection[Any], name: str, rows: list[dict[str, Any]], **same: Any
    ) -> None:
        if rows:
            conn.execute(Q[f"{name}_set"], {**_columns(rows), **same})

    def _mark_routed(self, conn: psycopg.Connection[Any], rows: list[dict[str, Any]]) -> set[int]:
        return {r[0] for r in conn.execute(Q["mark_routed_set"], _columns(rows))}

    def _settle_fenced(
        self, conn: psycopg.Connection[Any], rows: list[dict[str, Any]], now: float
    ) -> set[int]:
        return {
            r[0] for r in conn.execute(Q["settle_delivery_set"], {**_columns(rows), "now": now})
        }

    def _count_settled(
        self,
        conn: psycopg.Connection[Any],
        changes: Counter[tuple[str, str]],
        entered: Collection[int] = (),
    ) -> None:
        # The tally's statement-level triggers count a whole statement's rows at once, in
        # shards per server process (migration 0010), cheaply: nothing to add here.
        pass

    async def _connect_async(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, **connection_options(self.ack_timeout)
        )

    def listen(self, callback: Callable[[str], None]) -> None:
        """Call `callback(what)` in the event loop when another process changed `what`
        ("message": new messages to route; "delivery": deliveries due). Also called with "*"
        after each (re)connection, since notifications sent meanwhile are lost."""
        self._listeners.append(callback)
        if not any(t.get_name() == "journal-listen" for t in self._tasks):
            self._tasks.append(asyncio.create_task(self._listen(), name="journal-listen"))

    async def _listen(self) -> None:
        while True:
            try:
                async with await self._connect_async() as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._tell("*")
                    async for note in conn.notifies():
                        self._tell(note.payload)
            except psycopg.OperationalError as exc:
                log.warning("journal notifications lost; reconnecting: %s", str(exc).strip())
            await asyncio.sleep(RETRY_CONNECT)

    def _tell(self, what: str) -> None:
        for callback in self._listeners:
            callback(what)

    def lead(self, on_change: Callable[[bool], None]) -> None:
        """Take part in the scheduler election: `on_change(True)` once this process holds the
        scheduler lock, `on_change(False)` when its session is lost. The lock is a session
        advisory lock, so it is free the moment the holder's connection dies, or once the holder
        has been silent for `lead_silence` (frozen, or cut off); the others try every second.
        Two schedulers for a moment (a holder cut off or thawed, but not yet told) do no harm:
        routing and lease expiry are guarded by the rows' states."""
        self._tasks.append(asyncio.create_task(self._lead(on_change), name="journal-lead"))

    async def _lead(self, on_change: Callable[[bool], None]) -> None:
        leading = False
        while True:
            try:
                async with await self._connect_async() as conn:
                    await self._silence_ends(conn)
                    while True:
                        if not leading:
                            lock = {"key": SCHEDULER_LOCK}
                            cur = await conn.execute(Q["try_scheduler_lock"], lock)
                            row = await cur.fetchone()
                            if row is not None and row[0]:
                                leading = True
                                on_change(True)
                        else:
                            await conn.execute("SELECT 1")  # still alive, still holding
                        await asyncio.sleep(RETRY_CONNECT)
            except psycopg.OperationalError as exc:
                if leading:
                    log.warning("scheduler lock lost with its session: %s", str(exc).strip())
                    leading = False
                    on_change(False)
            await asyncio.sleep(RETRY_CONNECT)

    async def _silence_ends(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Have the server end the lock's session once it has been silent `lead_silence`."""
        if conn.info.server_version >= 140000:
            ms = round(self.lead_silence * 1000)
            await conn.execute(f"SET idle_session_timeout = {ms}")
        elif not self._warned_old_server:
            self._warned_old_server = True
            log.warning(
                "PostgreSQL %d has no idle_session_timeout: a scheduler frozen or cut off keeps"
                " the scheduler lock until its session ends (14 or later frees it within %g s)",
                conn.info.server_version // 10000,
                self.lead_silence,
            )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await super().close()

    async def wait_connected(self, within: float) -> None:
        """Wait until the writer has a connection again (tests, start-up)."""
        deadline = time.monotonic() + within
        while True:
            try:
                await self._query("SELECT 1")
                return
            except JournalError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows of parameters as one array per column, for the `unnest` of a `*_set` statement."""
    return {name: [row[name] for row in rows] for name in rows[0]}


def _conforms(journal: PostgresJournal) -> Journal:
    return journal  # mypy checks here that PostgresJournal implements the Journal protocol


def _serves_console(journal: PostgresJournal) -> ConsoleJournal:
    return journal  # and that it implements the console's verbs
