"""Many rows in few INSERT statements: the same rows, in the same order, as one at a time."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seamline.journal.multirow import MOST, MultiRow, chunk_sizes
from seamline.journal.queries import queries

TABLE = "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, n INTEGER, b BLOB, state TEXT)"
NAMED = "INSERT INTO t (k, n, b, state) VALUES (:k, :n, :b, 'new') ON CONFLICT (k) DO NOTHING;"
UPSERT = (
    "INSERT INTO t (k, n, b, state) VALUES (?, ?, ?, 'new') "
    "ON CONFLICT (k) DO UPDATE SET n = t.n + excluded.n"
)


def table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(TABLE)
    return conn


@given(st.integers(min_value=0, max_value=3 * MOST + 7))
def test_chunk_sizes_add_up_in_powers_of_two_no_larger_than_most(n: int) -> None:
    sizes = chunk_sizes(n)
    assert sum(sizes) == n
    assert all(s & (s - 1) == 0 and 0 < s <= MOST for s in sizes)
    assert sizes == sorted(sizes, reverse=True)


@given(
    st.lists(
        st.tuples(st.sampled_from("abcdefgh"), st.integers(-5, 5), st.binary(max_size=8)),
        max_size=40,
    )
)
def test_rows_land_as_executemany_puts_them(rows: list[tuple[str, int, bytes]]) -> None:
    one_by_one, at_once = table(), table()
    one_by_one.executemany(UPSERT, rows)
    changed = MultiRow.of(UPSERT).execute(at_once, rows)
    assert changed == len(rows)  # an upsert counts the rows it updated too
    dump = "SELECT id, k, n, b, state FROM t ORDER BY id"
    assert at_once.execute(dump).fetchall() == one_by_one.execute(dump).fetchall()


def test_named_parameters_take_shared_values_and_count_only_rows_inserted() -> None:
    conn = table()
    statement = MultiRow.of(NAMED)
    rows = [{"k": "a", "b": b"\x00"}, {"k": "b", "b": None}, {"k": "a", "b": b"again"}]
    assert statement.execute_named(conn, rows, {"n": 7}) == 2
    assert conn.execute("SELECT k, n, b, state FROM t ORDER BY id").fetchall() == [
        ("a", 7, b"\x00", "new"),
        ("b", 7, None, "new"),
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE t SET n = :n WHERE k = :k",
        "INSERT INTO t (k) SELECT value FROM json_each(:keys)",
        "INSERT INTO t (k, n) VALUES (:k, ?)",
        "INSERT INTO t (k, n) VALUES (:k, 1) ON CONFLICT (k) DO UPDATE SET n = :n",
    ],
)
def test_statements_that_are_not_one_row_of_values_are_refused(sql: str) -> None:
    with pytest.raises(ValueError):
        MultiRow.of(sql)


def test_the_journals_hot_inserts_run_as_many_rows() -> None:
    q = queries("sqlite")
    for name in ("insert_message_key", "insert_delivery", "insert_attempt", "upsert_xref"):
        assert MultiRow.of(q[name]).names, name
