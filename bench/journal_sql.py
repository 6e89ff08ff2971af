"""The journal's SQL per message on SQLite, statement by statement, in one thread.

Runs the named statements of the full path the way the journal's verbs run them (appends in
groups of `--group`, then route, claim and settle in batches of `--batch`, each in a
transaction of its own, WAL, synchronous=FULL) on a fresh journal file, and prints the time
per message of each statement and each kind of commit. Next to it, in the same run: the same
3 KB bodies inserted alone into a bare table in the same groups, the floor any durable journal
pays.

No HTTP, no event loop, no second process: this is the work the write lock is held for, without
the waits around it (`full_path.py` measures those).

    .venv/bin/python bench/journal_sql.py [--rounds 100] [--group 30] [--batch 200]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from seamline.journal.sqlite import _INSERT_MESSAGES, SqliteJournal, connect, migrate
from seamline.sandbox.webhook_sender import order_data

BODIES = [orjson.dumps({"type": "order.updated", "data": order_data(i)}) for i in range(100)]
HEADERS = orjson.dumps({"webhook-id": "msg_x", "content-type": "application/json"})


class Clock:
    """Seconds spent in each step."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    def __call__(self, name: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = work()
        self.steps[name] = self.steps.get(name, 0.0) + time.perf_counter() - started
        return result


def commit(conn: sqlite3.Connection, clock: Clock, kind: str) -> None:
    clock(f"commit ({kind})", lambda: conn.execute("COMMIT"))


def full_path(
    journal: SqliteJournal, conn: sqlite3.Connection, clock: Clock, group: int, batch: int
) -> int:
    """One batch of messages through the journal's statements; how many were settled."""
    ids: list[int] = []
    while len(ids) < batch:
        rows = [
            ("shop", f"msg_{random.getrandbits(64):x}", time.time(), HEADERS, random.choice(BODIES))
            for _ in range(group)
        ]
        conn.execute("BEGIN IMMEDIATE")
        clock("insert message", partial(_INSERT_MESSAGES.execute, conn, rows))
        last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        commit(conn, clock, "append")
        ids += range(last - group + 1, last + 1)
    ids = ids[:batch]
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    keys = [{"name": "order", "value": str(i), "message_id": i} for i in ids]
    clock("insert message key", lambda: journal._many(conn, "insert_message_key", keys))
    verdicts = [{"id": i, "event": "order.updated"} for i in ids]
    clock("mark routed", lambda: journal._mark_routed(conn, verdicts))
    deliveries = [
        {
            "message_id": i,
            "flow": "orders",
            "flow_version": "v1",
            "target": "sink",
            "key": str(i % 5000),
            "version": None,
            "safe_retry": True,
            "waits_for": None,
        }
        for i in ids
    ]
    clock("insert delivery", lambda: journal._many(conn, "insert_delivery", deliveries, now=now))
    commit(conn, clock, "route")
    conn.execute("BEGIN IMMEDIATE")
    claim = {"target": "sink", "owner": "w", "until": now + 30, "now": now + 1, "limit": batch}
    claimed = clock("claim", lambda: journal._lease(conn, claim))
    commit(conn, clock, "claim")
    clock("claimed messages (after commit)", lambda: journal._claimed_messages(conn, claimed))
    conn.execute("BEGIN IMMEDIATE")
    outcomes = [
        {
            "id": r[0],
            "token": r[7],
            "state": "delivered",
            "spent": 1,
            "due_at": now,
            "error_class": None,
            "error": None,
        }
        for r in claimed
    ]
    kept = clock("settle delivery", lambda: journal._settle_fenced(conn, outcomes, now))
    attempts = [
        {
            "delivery_id": r[0],
            "started_at": now,
            "duration": 0.01,
            "request": BODIES[r[0] % len(BODIES)],
            "status": 200,
            "response": b'{"id": 1}',
            "classification": "delivered",
            "error": None,
            "flow_version": "v1",
        }
        for r in claimed
    ]
    clock("insert attempt", lambda: journal._many(conn, "insert_attempt", attempts))
    clock("count settled", lambda: journal._count_settled(conn, Counter(), kept))
    commit(conn, clock, "settle")
    return len(claimed)


def bare_inserts(conn: sqlite3.Connection, messages: int, group: int) -> float:
    """Seconds to insert `messages` bodies alone, `group` to a commit."""
    conn.execute("CREATE TABLE bare (id INTEGER PRIMARY KEY, body BLOB)")
    started = time.perf_counter()
    for _ in range(0, messages, group):
        rows = [(random.choice(BODIES),) for _ in range(group)]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO bare (body) VALUES (?)", rows)
        conn.execute("COMMIT")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="batches measured")
    parser.add_argument("--group", type=int, default=30, help="messages per append commit")
    parser.add_argument("--batch", type=int, default=200, help="messages per route/claim/settle")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seamline-bench-sql-") as tmp:
        conn = connect(Path(tmp) / "journal.db")
        migrate(conn)
        journal = SqliteJournal(Path(tmp) / "journal.db")  # its statements, on `conn`
        for _ in range(args.rounds):  # warm-up: the tables and indexes hold rows already
            full_path(journal, conn, Clock(), args.group, args.batch)
        clock = Clock()
        started = time.perf_counter()
        n = sum(full_path(journal, conn, clock, args.group, args.batch) for _ in range(args.rounds))
        elapsed = time.perf_counter() - started
        bare = connect(Path(tmp) / "bare.db")
        floor = bare_inserts(bare, n, args.group)
    print(
        f"{n:,} messages through the journal's statements in {elapsed:.2f} s: "
        f"{elapsed / n * 1e6:.0f} us a message ({n / elapsed:,.0f}/s in one thread)"
    )
    print(
        f"the same bodies inserted alone, {args.group} to a commit: {floor / n * 1e6:.0f} us a "
        f"message; the journal's full path costs {elapsed / floor:.1f}x that"
    )
    for name, seconds in sorted(clock.steps.items(), key=lambda s: -s[1]):
        print(f"  {name:20} {seconds / n * 1e6:6.1f} us a message")


if __name__ == "__main__":
    main()
