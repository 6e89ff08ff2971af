"""Comparing two sets that come in any order, on disk, in memory that does not grow with them.

Readers list what a system holds in the system's own order (stock by inventory item id, a
3PL file as written). A `Spool` takes the rows of both sides as they come and writes each to
one of `partitions` files per side by the hash of its key (a grace hash join): then, one
partition at a time, it loads the left rows into a dict and streams the right rows past it.
Memory holds one partition; a partition larger than `max_bytes` on disk is split again
(another hash) before it is loaded, so a set of any size fits the same memory.

A hybrid hash join, as databases do with their work memory: the left rows are first kept in
a dict, up to `memory` bytes. When the left side is `done` with all of it held, each right row
is judged as it comes (those that came before, at that moment, key by key in their order): a
row that agrees with its left row, the common case, is neither written nor read again; a
mismatch or a repeat goes to a file of its own, and a key the left lacks to the partition
files, to tell its first row from repeats a partition at a time in `findings`. A left side
that outgrows `memory` is spilled to the partition files, and the rest is the grace join
above: memory is bounded by `memory` plus one partition, whatever the sizes.

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
MEMORY = 200 << 20
"""Bytes of left rows (stored size plus `ROW_COST` each) held in memory before spilling: a
million stock rows fit, and a check's peak stays under 300 MB whatever the sets' size."""
ROW_COST = 120
"""Bytes a held row costs beyond its key and values: two bytes objects and a dict slot."""


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
        memory: int = MEMORY,
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="seamline-spool-", dir=directory)
        self.root = Path(self._dir.name)
        self.partitions = partitions
        self.max_bytes = max_bytes
        self.memory = memory
        # The hybrid part: left rows held (None once spilled, or with no memory to hold them),
        # left duplicates met on the way in, and right rows judged on arrival that agree not.
        self._held: dict[bytes, bytes] | None = {} if memory > 0 else None
        self._held_bytes = 0
        self._left_done = False
        self._left_count = 0
        self._right_count = 0
        self._agreed = 0
        self._left_duplicates = open(f"{self.root}/left.duplicates", "wb")  # noqa: SIM115
        self._unmatched = open(f"{self.root}/right.unmatched", "wb")  # noqa: SIM115
        # Plain strings for the many partition files: pathlib interns every name it parses.
        self._base = str(self.root)
        self._files: dict[Side, list[BinaryIO]] = {
            side: [open(self._name(side, n), "wb") for n in range(partitions)]  # noqa: SIM115
            for side in ("left", "right")
        }

    def add(self, side: Side, row: Row) -> None:
        self.extend(side, (row,))

    def done(self, side: Side) -> None:
        """Say that `side` has no more rows: once the left is done and held whole, right
        rows are judged as they come (and those spooled before, now, key by key in the order
        they came)."""
        if side != "left" or self._left_done:
            return
        self._left_done = True
        if self._held is None:
            return
        held = self._held
        files = self._files["right"]
        agreed = 0
        for n in range(self.partitions):
            files[n].close()
            early = f"{self._name('right', n)}.early"
            os.rename(self._name("right", n), early)
            files[n] = open(self._name("right", n), "wb")  # noqa: SIM115
            with open(early, "rb") as f:
                for line in f:  # `_probe`'s loop, over rows as spooled (kept apart: hot path)
                    head, values = line.split(b"\t", 1)
                    key = head + b"\t"
                    mine = held.get(key)
                    if mine is not None and mine is not MATCHED:
                        held[key] = MATCHED
                        if mine == values:
                            agreed += 1
                            continue
                    self._unheld(key, values, mine, n)
            os.unlink(early)
        self._right_count += agreed
        self._agreed += agreed

    def extend(self, side: Side, rows: Iterable[Row]) -> None:
        """Spool rows of one side (the hot loop of a reconciliation: keep it lean)."""
        if self._held is not None:
            if side == "left":
                self._hold(iter(rows))
                return
            if self._left_done:
                self._probe(rows)
                return
        self._write(side, rows)

    def _hold(self, rows: Iterator[Row]) -> None:
        held = self._held
        assert held is not None
        dumps = orjson.dumps
        size, limit, cost = self._held_bytes, self.memory, ROW_COST
        duplicate = self._left_duplicates.write
        hold, length = held.setdefault, len
        count = 0
        for row in rows:
            count += 1
            # A held key ends in its tab, and the concatenation is what makes the copy: the
            # bytes orjson returns keep a buffer of some kilobytes behind them.
            key, values = dumps(row.key) + b"\t", dumps(row.values) + b"\n"
            first = hold(key, values)
            if first is values:
                size += length(key) + length(values) + cost
                if size > limit:
                    self._left_count += count
                    self._spill()
                    self._write("left", rows)
                    return
            else:
                # Kept on disk with the row it repeats: memory stays what the dict takes.
                duplicate(key + first.rstrip(b"\n") + b"\t" + values)
        self._left_count += count
        self._held_bytes = size

    def _spill(self) -> None:
        """The left side outgrew `memory`: everything held goes to the partition files."""
        held = self._held
        assert held is not None
        self._held = None
        self._left_count = 0  # counted again when the partitions are loaded
        writes = [f.write for f in self._files["left"]]
        partitions = self.partitions
        for key, values in held.items():
            writes[hash(_key(key)) % partitions](key + values)
        held.clear()
        self._left_duplicates.close()
        with open(f"{self.root}/left.duplicates", "rb") as f:
            for line in f:
                key, _, values = line.split(b"\t", 2)
                writes[hash(_key(key)) % partitions](key + b"\t" + values)
        self._left_duplicates = open(f"{self.root}/left.duplicates", "wb")  # noqa: SIM115

    def _probe(self, rows: Iterable[Row]) -> None:
        held = self._held
        assert held is not None
        dumps = orjson.dumps
        newline = orjson.OPT_APPEND_NEWLINE
        partitions = self.partitions
        agreed = 0
        for row in rows:
            key = dumps(row.key) + b"\t"
            values = dumps(row.values, option=newline)
            mine = held.get(key)
            if mine is not None and mine is not MATCHED:
                held[key] = MATCHED
                if mine == values:
                    agreed += 1
                    continue
            self._unheld(key, values, mine, hash(row.key) % partitions)
        self._right_count += agreed
        self._agreed += agreed

    def _unheld(self, key: bytes, values: bytes, mine: bytes | None, partition: int) -> None:
        """A right row that met no held row it agrees with: a mismatch (`mine`, the left
        values) or a second right row (MATCHED), judged in `findings`; or a key the left
        lacks, spooled to its partition, where `findings` tells its first row from repeats."""
        if mine is None:
            self._files["right"][partition].write(key + values)  # counted when read back
            return
        self._right_count += 1
        if mine is MATCHED:
            self._unmatched.write(key + b"=\t" + values)
        else:
            self._unmatched.write(key + mine.rstrip(b"\n") + b"\t" + values)

    def _write(self, side: Side, rows: Iterable[Row]) -> None:
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
        self.done("left")  # if the caller did not say so: the right rows so far are judged now
        for files in self._files.values():
            for f in files:
                f.close()
        self._left_duplicates.close()
        self._unmatched.close()
        rules = _Rules(fields, absent, tally, duplicates_only)
        if self._held is not None:
            yield from self._held_findings(rules)
            return
        for n in range(self.partitions):
            yield from self._partition(self._name("left", n), self._name("right", n), 0, rules)

    def _held_findings(self, rules: _Rules) -> Iterator[Finding]:
        """The hybrid join's findings: the left side whole in memory."""
        held = self._held
        assert held is not None
        fields, absent, tally = rules.fields, rules.absent, rules.tally
        tally.left += self._left_count
        tally.right += self._right_count
        tally.agreed += self._agreed
        with open(f"{self.root}/left.duplicates", "rb") as f:
            for line in f:
                key, first, values = line.split(b"\t", 2)
                yield counted(_duplicate("left", key, values, first), tally)
        # Right rows that met a held row and did not agree with it, then keys the left lacks,
        # then what no right row met.
        with open(f"{self.root}/right.unmatched", "rb") as f:
            for line in f:
                key, mine, values = line.split(b"\t", 2)
                if mine == b"=":
                    yield counted(_duplicate("right", key, values, None), tally)
                elif not mine:
                    yield from missing(
                        "missing_left", _key(key), _values(values), fields, absent, tally
                    )
                elif (finding := _mismatch(key, mine, values, fields)) is not None:
                    yield counted(finding, tally)
                else:
                    tally.agreed += 1
        # Keys the left lacks, a partition at a time: the first row of each is missing on the
        # left, any other a duplicate.
        for n in range(self.partitions):
            yield from self._partition(self._name("left", n), self._name("right", n), 0, rules)
        if not rules.duplicates_only:
            for key, values in held.items():
                if values is not MATCHED:
                    yield from missing(
                        "missing_right", _key(key), _values(values), fields, absent, tally
                    )
        held.clear()

    def _partition(
        self,
        left: str,
        right: str,
        depth: int,
        rules: _Rules,
    ) -> Iterator[Finding]:
        size = max(os.path.getsize(left), os.path.getsize(right))
        if size > self.max_bytes and depth < DEPTH:
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
        yield from self._right_rows(right, held, rules)
        if not rules.duplicates_only:
            for key, values in held.items():
                if values is not MATCHED:
                    yield from missing(
                        "missing_right", _key(key), _values(values), fields, absent, tally
                    )
        os.unlink(left)

    def _right_rows(self, right: str, held: dict[bytes, bytes], rules: _Rules) -> Iterator[Finding]:
        """Stream a right partition file past the left rows `held`; unlinks the file."""
        fields, absent, tally = rules.fields, rules.absent, rules.tally
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
                elif (finding := _mismatch(key, mine, values, fields)) is not None:
                    yield counted(finding, tally)
                else:
                    agreed += 1
        tally.right += count
        tally.agreed += agreed
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
        self._left_duplicates.close()
        self._unmatched.close()
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


def _mismatch(
    key: bytes, mine: bytes, values: bytes, fields: Mapping[str, Tolerance]
) -> Finding | None:
    """Two rows whose bytes differ: a mismatch, unless their values agree within tolerance."""
    a, b = _values(mine), _values(values)
    differ = judge(a, b, fields)
    return Finding("mismatch", _key(key), a, b, differ) if differ else None


def _key(raw: bytes) -> Key:
    return tuple(orjson.loads(raw))


def _values(raw: bytes) -> dict[str, Any]:
    values: dict[str, Any] = orjson.loads(raw)
    return values
