"""Named SQL blocks: where one begins, and that both dialects' files parse whole."""

from __future__ import annotations

import re
import sqlite3

import pytest

from seamline.journal.queries import parse_blocks, queries
from seamline.journal.sqlite import migrate

TEXT = """-- first: the first one
SELECT 1
-- note: a comment inside a block, not a block of its own
FROM t;

-- Statements over many rows (a section's comment, between blocks).

-- second: after a blank line
SELECT 2;
"""


def test_a_block_begins_only_at_the_top_or_after_a_blank_line() -> None:
    blocks = parse_blocks(TEXT)

    assert set(blocks) == {"first", "second"}
    assert "-- note: a comment inside a block" in blocks["first"]
    assert blocks["first"].endswith("FROM t")  # the section's comment is in neither block
    assert blocks["second"] == "SELECT 2"


def test_a_name_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'first' is defined twice"):
        parse_blocks(TEXT + "\n-- first: again\nSELECT 3;\n")


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_every_named_query_of_a_dialect_is_one_statement(dialect: str) -> None:
    for name, sql in queries(dialect).items():
        assert sql.strip(), name
        assert ";" not in sql.rstrip(";"), f"{name} holds more than one statement"


def test_every_named_query_of_sqlite_is_valid_on_a_migrated_journal() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn)
    for name, sql in queries("sqlite").items():
        params = dict.fromkeys(re.findall(r"(?<![:\w]):([a-z_]+)", sql))
        try:
            conn.execute(f"EXPLAIN {sql}", params)
        except sqlite3.Error as exc:
            pytest.fail(f"{name}: {exc}")
