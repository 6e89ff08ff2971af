"""`MultiRow`: an INSERT of one row, run for many rows in a few statements (SQLite).

Python's sqlite3 lets go of the GIL for every step of a statement, and `executemany` steps once
a row. The journal's writer thread holds the file's write lock meanwhile; after each step it
waits for the GIL, which the event loop (HTTP, routing) holds for up to the switch interval.
Beside a busy thread (`bench/gil_steps.py`), a transaction of 60 inserts was held 8.1 ms that
way against 4.1-4.3 ms in multi-row statements (1.7 and 2.0 ms alone), and another process
waiting for the lock waited as long.

So the rows go as `INSERT ... VALUES (...), (...), ...`, in chunks whose sizes are powers of two
(at most `MOST` rows): n rows take one statement per bit of n, and each statement text is one of
a few, which SQLite's statement cache keeps prepared.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

MOST = 256
"""Rows in one statement, at most (5-10 parameters each: far below SQLite's 32,766)."""

_VALUES = re.compile(r"^(?P<head>.*?\bVALUES\s*)\((?P<row>[^()]*)\)(?P<tail>.*)$", re.DOTALL)
_PARAM = re.compile(r":(\w+)")


def chunk_sizes(n: int) -> list[int]:
    """`n` as a sum of powers of two, each at most `MOST`, largest first."""
    sizes = []
    while n > 0:
        size = min(MOST, 1 << (n.bit_length() - 1))
        sizes.append(size)
        n -= size
    return sizes


class MultiRow:
    """One INSERT statement's text for any number of rows.

    Made from an `INSERT ... VALUES (<one row>) [tail]` whose row has `?` or `:name`
    parameters (and literals), and whose tail (`ON CONFLICT ...`) has none.
    """

    def __init__(self, head: str, row: str, tail: str, names: tuple[str, ...]) -> None:
        self._head = head
        self._row = f"({row})"
        self._tail = tail
        self.names = names
        """For a statement with named parameters: their names, in the order of the `?`s."""
        self._texts: dict[int, str] = {}

    @classmethod
    def of(cls, sql: str) -> MultiRow:
        """The statement for many rows; ValueError if `sql` is not such an INSERT."""
        match = _VALUES.match(sql.strip().rstrip(";"))
        if match is None or ":" in match["tail"] or "?" in match["tail"]:
            raise ValueError(f"not an INSERT of one row of values: {sql[:60]!r}")
        row = match["row"]
        names = tuple(_PARAM.findall(row))
        if names and "?" in row:
            raise ValueError(f"both named and positional parameters: {sql[:60]!r}")
        return cls(match["head"], _PARAM.sub("?", row), match["tail"], names)

    def text(self, rows: int) -> str:
        text = self._texts.get(rows)
        if text is None:
            text = self._texts[rows] = self._head + ", ".join([self._row] * rows) + self._tail
        return text

    def execute(self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Insert `rows` (tuples in the order of the `?`s), in order; how many rows changed."""
        changed = 0
        start = 0
        for size in chunk_sizes(len(rows)):
            chunk = rows[start : start + size]
            start += size
            changed += conn.execute(self.text(size), [v for row in chunk for v in row]).rowcount
        return changed

    def execute_named(
        self, conn: sqlite3.Connection, rows: Sequence[Mapping[str, Any]], same: Mapping[str, Any]
    ) -> int:
        """Insert `rows` given by parameter name (`same`: values shared by every row)."""
        names = self.names
        return self.execute(
            conn, [tuple(same[n] if n in same else row[n] for n in names) for row in rows]
        )
