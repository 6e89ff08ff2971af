"""How long a SQLite write transaction is held when another thread keeps the GIL busy.

Python's sqlite3 lets go of the GIL for every step of a statement, and `executemany` steps once
a row. The journal's writer thread holds the file's write lock while it works; when the event
loop (HTTP, routing) is busy, the writer waits for the GIL again after every step. This runs
transactions of `--rows` 3 KB inserts on a fresh WAL file (synchronous=FULL) beside a thread
that only computes, with the hub's switch interval, and prints how long each transaction was
held: rows one statement each (`executemany`), and rows in a few multi-row statements
(`seamline.journal.multirow.MultiRow`, what the journal does).

    .venv/bin/python bench/gil_steps.py [--rows 60] [--transactions 200]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from seamline.engine.hub import SWITCH_INTERVAL
from seamline.journal.multirow import MultiRow

INSERT = "INSERT INTO m (source_id, body) VALUES (?, ?) ON CONFLICT (source_id) DO NOTHING"
Rows = list[tuple[str, bytes]]


def held(
    conn: sqlite3.Connection, insert: Callable[[Rows], object], args: argparse.Namespace
) -> float:
    """Mean seconds from BEGIN to the end of COMMIT."""
    body = os.urandom(3000)
    total = 0.0
    for _ in range(args.transactions):
        rows = [(f"msg_{random.getrandbits(64):x}", body) for _ in range(args.rows)]
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        insert(rows)
        conn.execute("COMMIT")
        total += time.perf_counter() - started
    return total / args.transactions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60, help="inserts per transaction")
    parser.add_argument("--transactions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    sys.setswitchinterval(SWITCH_INTERVAL)
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            sum(range(1000))

    with tempfile.TemporaryDirectory(prefix="seamline-bench-gil-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "j.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, source_id TEXT UNIQUE, body BLOB)")
        multi = MultiRow.of(INSERT)
        ways: dict[str, Callable[[Rows], object]] = {
            "a statement a row (executemany)": lambda rows: conn.executemany(INSERT, rows),
            "multi-row statements (MultiRow)": lambda rows: multi.execute(conn, rows),
        }
        for insert in ways.values():  # warm-up: the file and its index exist
            held(conn, insert, argparse.Namespace(rows=args.rows, transactions=20))
        print(
            f"transactions of {args.rows} inserts of 3 KB, WAL, synchronous=FULL, a busy thread "
            f"beside them, switch interval {SWITCH_INTERVAL * 1e6:.0f} us; mean time held:"
        )
        for label, insert in ways.items():
            alone = held(conn, insert, args)
            worker = threading.Thread(target=busy)
            worker.start()
            try:
                contended = [held(conn, insert, args) for _ in range(args.repeat)]
            finally:
                stop.set()
                worker.join()
                stop.clear()
            print(
                f"  {label:34} alone {alone * 1e3:5.2f} ms, beside the busy thread "
                + ", ".join(f"{c * 1e3:5.2f} ms" for c in contended)
            )


if __name__ == "__main__":
    main()
