"""Comparing two sets that come in any order, on disk, in memory that does not grow with them.

Readers list what a system holds in the system's own order (stock by inventory item id, a
3PL file as written). A `Spool` takes the rows of both sides as they come and writes each to
one of `partitions` files per side by the hash of its key (a grace hash join): then, one
partition at a time, it loads the left rows into a dict and streams the right rows past it.
Memory holds one partition; a partition larger than `max_bytes` on disk is split again
(another hash) before it is loaded, so a set of any size fits the same memory.

A row is stored as `<key as a JSON list>\\t<values as JSON>\\n` (JSON escapes tabs and
newlines, so the tab splits it), and two rows whose values serialise to the same bytes agree
without being parsed: only differing rows are decoded and judged by the field tolerances, as
`compare` does.
Findings come partition by partition, not in key order.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal

import orjson

from seamline.checks.compare import (
    Finding,
    Key,
    Row,
    Tally,
    Tolerance,
    counted,
    judge,
    missing,
)

Side = Literal["left", "right"]
MATCHED = b"\x00"
"""Marks a left row a right row has met (by identity; JSON never is a lone NUL)."""
PARTITIONS = 64
MAX_BYTES = 16 << 20
"""Largest left partition loaded as it is (16 MiB of rows on disk, about 60 MB in a dict)."""
DEPTH = 6
"""How often a partition is split again before it is loaded as it is (all one key)."""


@dataclass(frozen=True, slots=True)
class _Rules:
    """How rows are judged, and where the counts go."""

    fields: Mapping[str, Tolerance]
    absent: Mapping[str, Any] | None
    tally: Tally
    duplicates_only: bool = False


class Spool:
    """`add` rows of both sides in any order, then iterate `findings` once; then `close`."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        partitions: int = PARTITIONS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="seamline-spool-", dir=directory)
        self.root = Path(self._dir.name)
        self.partitions = partitions
        self.max_bytes = max_bytes
        # Plain strings for the many partition files: pathlib interns every name it parses.
        self._base = str(self.root)
        self._files: dict[Side, list[BinaryIO]] = {
            side: [open(self._name(side, n), "wb") for n in range(partitions)]  # noqa: SIM115
            for side in ("left", "right")
        }

    def add(self, side: Side, row: Row) -> None:
        self.extend(side, (row,))

    def extend(self, side: Side, rows: Iterable[Row]) -> None:
        """Spool rows of one side (the hot loop of a reconciliation: keep it lean)."""
        writes = [f.write for f in self._files[side]]
        partitions = self.partitions
        dumps = orjson.dumps
        newline = orjson.OPT_APPEND_NEWLINE
        for row in rows:
            key = row.key
            writes[hash(key) % partitions](dumps(key) + b"\t" + dumps(row.values, option=newline))

    def findings(
        self,
        fields: Mapping[str, Tolerance],
        tally: Tally | None = None,
        *,
        absent: Mapping[str, Any] | None = None,
        duplicates_only: bool = False,
    ) -> Iterator[Finding]:
        """Every difference between the two sides (see `compare` for the kinds and `absent`);
        with `duplicates_only`, only keys repeated within a side (a scan of one side)."""
        tally = tally if tally is not None else Tally()
        for files in self._files.values():
            for f in files:
                f.close()
        rules = _Rules(fields, absent, tally, duplicates_only)
        for n in range(self.partitions):
            yield from self._partition(self._name("left", n), self._name("right", n), 0, rules)

    def _partition(
        self,
        left: str,
        right: str,
        depth: int,
        rules: _Rules,
    ) -> Iterator[Finding]:
        if os.path.getsize(left) > self.max_bytes and depth < DEPTH:
            yield from self._split(left, right, depth + 1, rules)
            return
        fields, absent, tally = rules.fields, rules.absent, rules.tally
        # The left rows by key; once a right row met one, its entry becomes MATCHED (one
        # object, compared by identity: no copy per row), so a second right row with that
        # key is a duplicate (reported without the row it repeats).
        held: dict[bytes, bytes] = {}
        count = 0
        with open(left, "rb") as f:
            for line in f:
                key, values = line.split(b"\t", 1)
                count += 1
                first = held.get(key)
                if first is None:
                    held[key] = values
                else:
                    yield counted(_duplicate("left", key, values, first), tally)
        tally.left += count
        count = agreed = 0
        with open(right, "rb") as f:
            for line in f:
                key, values = line.split(b"\t", 1)
                count += 1
                mine = held.get(key)
                if mine is MATCHED:
                    yield counted(_duplicate("right", key, values, None), tally)
                    continue
                held[key] = MATCHED
                if mine is None:
                    yield from missing(
                        "missing_left", _key(key), _values(values), fields, absent, tally
                    )
                elif mine == values:
                    agreed += 1
                else:
                    a, b = _values(mine), _values(values)
                    differ = judge(a, b, fields)
                    if differ:
                        yield counted(Finding("mismatch", _key(key), a, b, differ), tally)
                    else:
                        agreed += 1
        tally.right += count
        tally.agreed += agreed
        if not rules.duplicates_only:
            for key, values in held.items():
                if values is not MATCHED:
                    yield from missing(
                        "missing_right", _key(key), _values(values), fields, absent, tally
                    )
        os.unlink(left)
        os.unlink(right)

    def _split(
        self,
        left: str,
        right: str,
        depth: int,
        rules: _Rules,
    ) -> Iterator[Finding]:
        """Split one partition of both sides in `partitions` smaller ones (another hash)."""
        parts: dict[Side, list[str]] = {}
        sides: tuple[tuple[Side, str], ...] = (("left", left), ("right", right))
        for side, path in sides:
            names = [f"{path}.{n}" for n in range(self.partitions)]
            outs = [open(name, "wb") for name in names]  # noqa: SIM115
            with open(path, "rb") as f:
                for line in f:
                    key = line.split(b"\t", 1)[0]
                    p = hash((depth, key)) % self.partitions
                    outs[p].write(line)
            for out in outs:
                out.close()
            os.unlink(path)
            parts[side] = names
        for n in range(self.partitions):
            yield from self._partition(parts["left"][n], parts["right"][n], depth, rules)

    def _name(self, side: Side, n: int) -> str:
        return f"{self._base}/{side}.{n}"

    def close(self) -> None:
        for files in self._files.values():
            for f in files:
                f.close()
        self._dir.cleanup()

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _duplicate(side: Side, key: bytes, values: bytes, first: bytes | None) -> Finding:
    if side == "left":
        known = None if first is None else _values(first)
        return Finding("duplicate", _key(key), left=_values(values), fields=(side,), first=known)
    known = None if first is None else _values(first)
    return Finding("duplicate", _key(key), right=_values(values), fields=(side,), first=known)


def _key(raw: bytes) -> Key:
    return tuple(orjson.loads(raw))


def _values(raw: bytes) -> dict[str, Any]:
    values: dict[str, Any] = orjson.loads(raw)
    return values
