"""Named SQL blocks: where one begins, and that both dialects' files parse whole."""

from __future__ import annotations

import pytest

from seamline.journal.queries import parse_blocks, queries

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
