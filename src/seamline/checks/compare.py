"""Comparing one entity set between two systems: a merge of two streams sorted by key.

Each side is a stream of `Row`s in ascending key order (sets in any order go through a
`Spool`, which finds the same differences on disk). One pass over both yields a `Finding`
for every difference:

| kind            | when                                                              |
|-----------------|-------------------------------------------------------------------|
| `missing_right` | the key is on the left only                                       |
| `missing_left`  | the key is on the right only                                      |
| `mismatch`      | on both sides, a compared field differs beyond its tolerance      |
| `duplicate`     | one side has the key more than once (its later rows are reported) |

Nothing else is held than the current row of each side, so memory does not grow with the
sets. A field missing on one side counts as `None`; `None` against a value is a mismatch.

`absent` says what a missing row stands for, where a system lists only what it has: for
stock a full snapshot leaves out what is at 0, so with `absent={"available": 0}` a key
missing on one side whose other side agrees with 0 is no finding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

Key = tuple[str, ...]
FindingKind = Literal["missing_left", "missing_right", "mismatch", "duplicate"]
KINDS: tuple[FindingKind, ...] = ("missing_left", "missing_right", "mismatch", "duplicate")


@dataclass(frozen=True, slots=True)
class Row:
    """One entity as a system holds it: its key and the fields a check compares."""

    key: Key
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far two values of a field may differ and still agree.

    Numbers agree when `|left - right| <= max(absolute, relative * max(|left|, |right|))`;
    other values when they are equal (text after `strip()` and, with `fold_case`, casefold).
    """

    absolute: Decimal = Decimal(0)
    relative: Decimal = Decimal(0)
    fold_case: bool = False

    def agrees(self, left: Any, right: Any) -> bool:
        if left == right and type(left) is type(right):
            return True
        if left is None or right is None:
            return left is None and right is None
        a, b = _number(left), _number(right)
        if a is not None and b is not None:
            return abs(a - b) <= max(self.absolute, self.relative * max(abs(a), abs(b)))
        x, y = str(left).strip(), str(right).strip()
        return x.casefold() == y.casefold() if self.fold_case else x == y


EXACT = Tolerance()


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    key: Key
    left: Mapping[str, Any] | None = None
    right: Mapping[str, Any] | None = None
    fields: tuple[str, ...] = ()
    """For a mismatch, the fields that differ; for a duplicate, which side (`left`/`right`)
    and, for a probable duplicate, the field both rows share (`phone`)."""
    first: Mapping[str, Any] | None = None
    """For a duplicate, the row seen first with the same key (None where a spool does not
    keep it: a second right row)."""

    def describe(self) -> str:
        """One line an operator reads."""
        key = "/".join(self.key)
        if self.kind == "mismatch":
            assert self.left is not None and self.right is not None
            what = ", ".join(
                f"{name} {self.left.get(name)!r} vs {self.right.get(name)!r}"
                for name in self.fields
            )
            return f"{key}: {what}"
        if self.kind == "duplicate":
            if len(self.fields) > 1:
                return f"{key}: two records on the {self.fields[0]} share this {self.fields[1]}"
            return f"{key}: more than once on the {self.fields[0]}"
        side = "left" if self.kind == "missing_right" else "right"
        return f"{key}: only on the {side}"


@dataclass(slots=True)
class Tally:
    """Counts of one comparison, kept while the findings stream past."""

    left: int = 0
    right: int = 0
    agreed: int = 0
    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))


def compare(
    left: Iterable[Row],
    right: Iterable[Row],
    fields: Mapping[str, Tolerance],
    *,
    tally: Tally | None = None,
    absent: Mapping[str, Any] | None = None,
) -> Iterator[Finding]:
    """Every difference between two key-sorted streams (see the module's docstring).

    Raises ValueError naming the side and key when a stream is not in ascending key order:
    a reader's promise broken is a bug to see, not drift to report.
    """
    tally = tally if tally is not None else Tally()
    lefts = _unique(left, "left", tally)
    rights = _unique(right, "right", tally)
    a, b = next(lefts, None), next(rights, None)
    while a is not None or b is not None:
        if isinstance(a, Finding):
            yield counted(a, tally)
            a = next(lefts, None)
        elif isinstance(b, Finding):
            yield counted(b, tally)
            b = next(rights, None)
        elif b is None or (a is not None and a.key < b.key):
            assert a is not None
            yield from missing("missing_right", a.key, a.values, fields, absent, tally)
            a = next(lefts, None)
        elif a is None or b.key < a.key:
            yield from missing("missing_left", b.key, b.values, fields, absent, tally)
            b = next(rights, None)
        else:
            differ = judge(a.values, b.values, fields)
            if differ:
                yield counted(Finding("mismatch", a.key, a.values, b.values, differ), tally)
            else:
                tally.agreed += 1
            a, b = next(lefts, None), next(rights, None)


def _unique(rows: Iterable[Row], side: str, tally: Tally) -> Iterator[Row | Finding]:
    """The rows of one side, a later row with the same key turned into a `duplicate`."""
    previous: Row | None = None
    for row in rows:
        if side == "left":
            tally.left += 1
        else:
            tally.right += 1
        if previous is not None and row.key <= previous.key:
            if row.key == previous.key:
                values = {"left": row.values} if side == "left" else {"right": row.values}
                yield Finding("duplicate", row.key, fields=(side,), first=previous.values, **values)
                continue
            raise ValueError(
                f"the {side} side is not sorted by key: {'/'.join(row.key)} came after "
                f"{'/'.join(previous.key)}"
            )
        previous = row
        yield row


def judge(
    left: Mapping[str, Any], right: Mapping[str, Any], fields: Mapping[str, Tolerance]
) -> tuple[str, ...]:
    """The fields whose values differ beyond their tolerance (none: the rows agree)."""
    return tuple(
        name
        for name, tolerance in fields.items()
        if not tolerance.agrees(left.get(name), right.get(name))
    )


def missing(
    kind: Literal["missing_left", "missing_right"],
    key: Key,
    values: Mapping[str, Any],
    fields: Mapping[str, Tolerance],
    absent: Mapping[str, Any] | None,
    tally: Tally,
) -> Iterator[Finding]:
    """A row on one side only: a finding, unless it agrees with what absence stands for."""
    if absent is not None and not judge(values, absent, fields):
        tally.agreed += 1
        return
    if kind == "missing_right":
        yield counted(Finding(kind, key, left=values), tally)
    else:
        yield counted(Finding(kind, key, right=values), tally)


def counted(finding: Finding, tally: Tally) -> Finding:
    """The finding, counted in the tally by its kind."""
    tally.found[finding.kind] += 1
    return finding


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None
