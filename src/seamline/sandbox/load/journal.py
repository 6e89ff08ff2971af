"""What a load run reads from the hub's SQLite journal, read-only, while the hub runs or after.

Tables `message`, `delivery` and `attempt` (see `journal/sql/migrations/0001_init.sql`); a
delivery's latency is from its message's `received_at` (the hub acknowledged it) to the end
of its delivered attempt.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPEN = ("pending", "leased", "retrying")


@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        yield db


def rows(path: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    if not path.exists():
        return []
    try:
        with reading(path) as db:
            return [tuple(r) for r in db.execute(sql, params).fetchall()]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # the hub has not made its tables yet
        raise


def flow_counts(path: Path) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for flow, state, n in rows(path, "SELECT flow, state, count(*) FROM delivery GROUP BY 1, 2"):
        counts.setdefault(flow, {})[state] = n
    return counts


def backlog(path: Path) -> int:
    """Deliveries not settled, and messages not routed yet."""
    found = rows(
        path,
        "SELECT (SELECT count(*) FROM delivery WHERE state IN ('pending', 'leased', 'retrying'))"
        " + (SELECT count(*) FROM message WHERE state = 'received')",
    )
    return int(found[0][0]) if found else 0


def messages(path: Path) -> dict[str, int]:
    return {state: n for state, n in rows(path, "SELECT state, count(*) FROM message GROUP BY 1")}


def cursor(path: Path, name: str) -> str | None:
    found = rows(path, "SELECT value FROM cursor WHERE name = ?", (name,))
    return str(found[0][0]) if found else None


@dataclass(frozen=True, slots=True)
class Delivered:
    flow: str
    key: str | None
    delivery: int
    received_at: float
    done_at: float


def delivered(path: Path) -> list[Delivered]:
    """Every delivered delivery with the end of its delivered attempt, in journal order."""
    found = rows(
        path,
        "SELECT d.flow, d.key, d.id, m.received_at, max(a.started_at + a.duration)"
        " FROM delivery d JOIN message m ON m.id = d.message_id"
        " JOIN attempt a ON a.delivery_id = d.id AND a.classification = 'delivered'"
        " WHERE d.state = 'delivered' GROUP BY d.id ORDER BY d.id",
    )
    return [Delivered(f, k, int(i), float(r), float(t)) for f, k, i, r, t in found]


def bodies(path: Path, flow: str, states: Sequence[str]) -> list[tuple[str, bytes]]:
    """(state, message body) of the flow's deliveries in these states."""
    marks = ", ".join("?" for _ in states)
    found = rows(
        path,
        f"SELECT d.state, m.body FROM delivery d JOIN message m ON m.id = d.message_id"
        f" WHERE d.flow = ? AND d.state IN ({marks})",
        (flow, *states),
    )
    return [(str(s), bytes(b or b"")) for s, b in found]


def journaled(path: Path, system: str, source_ids: Sequence[str]) -> dict[str, bytes]:
    """Which of these source ids the journal holds for `system`, with each message's body."""
    held: dict[str, bytes] = {}
    for start in range(0, len(source_ids), 500):
        chunk = list(source_ids[start : start + 500])
        marks = ", ".join("?" for _ in chunk)
        for source_id, body in rows(
            path,
            f"SELECT source_id, body FROM message WHERE system = ? AND source_id IN ({marks})",
            (system, *chunk),
        ):
            held[str(source_id)] = bytes(body or b"")
    return held
