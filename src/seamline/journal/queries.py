"""Named SQL blocks: `-- name: what it does` followed by one statement."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_BLOCK = re.compile(r"(?:\A|(?<=\n\n))-- ([a-z_]+): .*$", re.MULTILINE)
"""A block starts at a `-- name: what it does` line at the top of the file or after a blank
line; inside a block, a comment that happens to read `-- note: ...` is only a comment."""


def parse_blocks(text: str) -> dict[str, str]:
    """Split a `.sql` file into its named statements."""
    marks = list(_BLOCK.finditer(text))
    blocks: dict[str, str] = {}
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else len(text)
        lines = text[mark.end() : end].strip().split("\n")
        while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
            lines.pop()  # a section's comment between blocks belongs to none of them
        body = "\n".join(lines)
        if mark.group(1) in blocks:
            raise ValueError(f"query {mark.group(1)!r} is defined twice")
        blocks[mark.group(1)] = body.rstrip(";").strip()
    return blocks


_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)")


def _read(name: str) -> str:
    return resources.files("seamline.journal.sql").joinpath(name).read_text("utf-8")


@cache
def queries(dialect: str = "sqlite") -> dict[str, str]:
    """The named queries of a dialect. PostgreSQL runs SQLite's, with `:name` written as
    `%(name)s`, except the blocks `queries.postgres.sql` gives for itself."""
    shared = parse_blocks(_read("queries.sql"))
    if dialect == "sqlite":
        return shared
    own = parse_blocks(_read(f"queries.{dialect}.sql"))
    return {**{k: _PARAM.sub(r"%(\1)s", v) for k, v in shared.items()}, **own}


def migrations(dialect: str = "sqlite") -> list[tuple[int, str]]:
    """Schema migrations in order: (number, script)."""
    where = "migrations" if dialect == "sqlite" else f"migrations_{dialect}"
    folder = resources.files("seamline.journal.sql").joinpath(where)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(found)
