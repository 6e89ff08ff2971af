"""Status counts on a big journal: `flow_counts` against a count of the whole delivery table.

Builds a SQLite journal with `--deliveries` rows (a few dead, the newest 500 pending, the rest
delivered, over 8 flows), then times the journal's `flow_counts` query (settled deliveries from
the tally the journal keeps, open and failed ones by index) next to the full-table count it
replaced, and the console's backlog chart, which still reads the table.

    .venv/bin/python bench/status_counts.py [--deliveries 1000000]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from seamline.journal.queries import queries
from seamline.journal.sqlite import TALLY_FROM_TABLE, migrate

FULL_COUNT = (
    "SELECT flow, CASE WHEN state = 'pending' AND attempts > 0 THEN 'retrying' ELSE state END, "
    "count(*), min(created_at) FROM delivery GROUP BY 1, 2"
)


def timed(conn: sqlite3.Connection, sql: str, params: dict[str, float] | None = None) -> float:
    started = time.perf_counter()
    conn.execute(sql, params or {}).fetchall()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    n = parser.parse_args().deliveries
    q = queries("sqlite")
    with tempfile.TemporaryDirectory(prefix="seamline-bench-status-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "journal.db", isolation_level=None)
        migrate(conn)
        conn.execute("BEGIN")
        conn.execute(
            "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < ?) "
            "INSERT INTO message (system, source_id, received_at, state) "
            "SELECT 'shop', x, x, 'routed' FROM g",
            (n,),
        )
        conn.execute(
            "INSERT INTO delivery (message_id, flow, flow_version, target, key, safe_retry, "
            "state, attempts, due_at, created_at, updated_at) "
            "SELECT id, 'flow' || (id % 8), 'v', 'sink', id, 1, CASE WHEN id % 1000 = 0 THEN "
            "'dead' WHEN id > ? THEN 'pending' ELSE 'delivered' END, 1, 0, id, id FROM message",
            (n - 500,),
        )
        # Rows made here, not by the journal's verbs: their tally is counted from the table.
        conn.execute(TALLY_FROM_TABLE)
        conn.execute("COMMIT")
        same = sorted(r[:3] for r in conn.execute(q["flow_counts"])) == sorted(
            r[:3] for r in conn.execute(FULL_COUNT)
        )
        counts = min(timed(conn, q["flow_counts"]) for _ in range(3))
        full = min(timed(conn, FULL_COUNT) for _ in range(3))
        chart = min(
            timed(conn, q["chart_backlog"], {"bucket": 60.0, "since": n - 3600.0}) for _ in range(3)
        )
        conn.close()
    print(f"{n:,} deliveries: flow_counts {counts:.1f} ms; the whole-table count {full:.0f} ms")
    print(f"  same counts: {same}; backlog chart (reads the table) {chart:.0f} ms")


if __name__ == "__main__":
    main()
