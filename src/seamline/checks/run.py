"""Running a check: read both systems at once into a spool, then find every difference.

Both readers run concurrently (they wait on two different systems); each page goes into the
spool as it comes. Then the spool's findings stream past: counted in a `Tally`, the first
`keep` kept (sorted by kind and key) for the report, every one handed to `on_finding` if
given (the journal stores them). Memory stays flat: the spool is on disk and only `keep`
findings are held.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seamline.checks.compare import Finding, Row, Tally, Tolerance, counted
from seamline.checks.spec import ABSENT
from seamline.checks.spool import Side, Spool
from seamline.connectors.base import Reader, Window
from seamline.journal.base import ConsoleJournal
from seamline.project import Project

KEEP = 1000
SCAN_PARTITIONS = 16
"""Partitions of a duplicate scan (one side, one field): a few files, not a hundred."""


@dataclass(slots=True)
class Progress:
    """Rows read so far per side, and the phase: `reading`, `comparing`, `done`."""

    phase: str = "reading"
    read: dict[str, int] = field(default_factory=lambda: {"left": 0, "right": 0})


@dataclass(slots=True)
class Outcome:
    entity: str
    tally: Tally
    findings: list[Finding]
    """The first `keep` findings, by kind and key."""
    started_at: float
    seconds: float

    @property
    def clean(self) -> bool:
        return not any(self.tally.found.values())

    def summary(self) -> str:
        found = ", ".join(
            f"{n} {kind.replace('_', ' ')}" for kind, n in self.tally.found.items() if n
        )
        return (
            f"{self.entity}: {self.tally.left} rows left, {self.tally.right} right, "
            f"{self.tally.agreed} agree; " + (found or "no drift")
        )


async def run(
    entity: str,
    left: Reader,
    right: Reader,
    fields: Mapping[str, Tolerance],
    *,
    progress: Callable[[Progress], None] | None = None,
    on_finding: Callable[[Finding], None] | None = None,
    keep: int = KEEP,
    absent: Mapping[str, Any] | None = None,
    window: Window | None = None,
    duplicates_by: Sequence[str] = (),
    spool_dir: Path | None = None,
) -> Outcome:
    """Compare `entity` as `left` and `right` list it. Reader errors propagate.

    `duplicates_by` names fields (`phone`, `name`) by which two records of one side with
    different keys are probably one (a customer twice, under two e-mail addresses): each is
    a `duplicate` finding with `fields` (side, field)."""
    started, clock = time.time(), time.perf_counter()
    state = Progress()
    with contextlib.ExitStack() as stack:
        spool = stack.enter_context(Spool(spool_dir))
        sides: tuple[Side, Side] = ("left", "right")
        scans = {
            # A scan holds nothing in memory: one side only, and beside the spool above.
            (side, name): stack.enter_context(
                Spool(spool_dir, partitions=SCAN_PARTITIONS, memory=0)
            )
            for side in sides
            for name in duplicates_by
        }

        async def read(side: Side, reader: Reader) -> None:
            async for page in reader.pages(entity, window):
                spool.extend(side, page)
                for (scanned, name), scan in scans.items():
                    if scanned == side:
                        scan.extend("left", _by(name, page))
                state.read[side] += len(page)
                if progress is not None:
                    progress(state)
            spool.done(side)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(read("left", left))
            tg.create_task(read("right", right))
        state.phase = "comparing"
        if progress is not None:
            progress(state)
        tally = Tally()
        kept: list[Finding] = []
        found = spool.findings(fields, tally, absent=absent)
        for finding in itertools.chain(found, _probable(scans, tally)):
            if on_finding is not None:
                on_finding(finding)
            if len(kept) < keep:
                kept.append(finding)
    kept.sort(key=lambda f: (f.kind, f.key))
    state.phase = "done"
    if progress is not None:
        progress(state)
    return Outcome(entity, tally, kept, started, time.perf_counter() - clock)


def _by(name: str, page: list[Row]) -> Iterator[Row]:
    """The page's rows keyed by one field's value (rows without it left out)."""
    for row in page:
        value = row.values.get(name)
        if value:
            yield Row((f"{name}:{value}",), {"key": "/".join(row.key), **row.values})


def _probable(scans: Mapping[tuple[Side, str], Spool], tally: Tally) -> Iterator[Finding]:
    """Records of one side sharing a field's value under different keys."""
    for (side, name), scan in scans.items():
        for found in scan.findings({}, duplicates_only=True):
            assert found.left is not None and found.first is not None
            if found.left["key"] == found.first["key"]:
                continue  # the same record twice: the main comparison reports it
            values = {"left": found.left} if side == "left" else {"right": found.left}
            yield counted(
                Finding("duplicate", found.key, fields=(side, name), first=found.first, **values),
                tally,
            )


@dataclass(slots=True)
class Recorded:
    """A check run as the journal keeps it, with the run before it for the trend."""

    run_id: int
    outcome: Outcome
    previous: dict[str, Any] | None

    def trend(self) -> str:
        """`drift on 37 keys, up from 4 on the run before` (or as before, or down)."""
        return trend_text(sum(self.outcome.tally.found.values()), self.previous)


KINDS_COLUMNS = ("missing_left", "missing_right", "mismatch", "duplicate")


def drift_in(kept: Mapping[str, Any]) -> int:
    """The findings of every kind a run kept in the journal counted."""
    return sum(int(kept[k] or 0) for k in KINDS_COLUMNS)


def trend_text(now: int, previous: Mapping[str, Any] | None) -> str:
    """`drift on 37 keys, up from 4 on the run before` (or as before, or down): `now` findings
    against the kept run before (None: this is the first run)."""
    if previous is None:
        return f"drift on {now} keys (first run)" if now else "no drift (first run)"
    before = drift_in(previous)
    if now == before:
        return f"drift on {now} keys, as on the run before" if now else "no drift, as before"
    way = "up" if now > before else "down"
    return f"drift on {now} keys, {way} from {before} on the run before"


STORED = 10_000
"""Findings a run keeps in the journal (its counts are always whole)."""


async def run_check(
    project: Project,
    name: str,
    journal: ConsoleJournal,
    *,
    actor: str,
    progress: Callable[[Progress], None] | None = None,
    today: datetime.date | None = None,
) -> Recorded:
    """Run the project's check `name` against its two systems and keep the run (also when
    a reader fails: the run is kept with the error, then the error is raised)."""
    spec = project.checks[name]
    previous = await journal.check_runs(name, limit=1)
    readers = []
    for side in (spec.left, spec.right):
        system = project.systems[side.system]
        reader = system.connector.reader(side.system, system.options)
        assert reader is not None  # `seamline check` refuses a check its systems cannot read
        readers.append(reader)
    started = time.time()
    day = today or datetime.datetime.now(datetime.UTC).date()
    try:
        outcome = await run(
            spec.entity,
            readers[0],
            readers[1],
            spec.tolerances(),
            progress=progress,
            keep=STORED,
            absent=ABSENT[spec.entity],
            window=spec.window(day),
            duplicates_by=spec.duplicates_by,
        )
    except Exception as exc:
        first = _first_cause(exc)
        await journal.record_check_run(
            name, started_at=started, seconds=time.time() - started, counts={},
            findings=[], actor=actor, error=f"{type(first).__name__}: {first}",
        )  # fmt: skip
        if first is not exc:
            raise first from exc
        raise
    finally:
        for reader in readers:
            await reader.close()
    tally = outcome.tally
    run_id = await journal.record_check_run(
        name,
        started_at=started,
        seconds=outcome.seconds,
        counts={"left": tally.left, "right": tally.right, "agreed": tally.agreed, **tally.found},
        findings=((f.kind, f.key, f.fields, f.left, f.right) for f in outcome.findings),
        actor=actor,
    )
    return Recorded(run_id, outcome, previous[0] if previous else None)


def _first_cause(exc: BaseException) -> BaseException:
    """The reader's own error inside the task group's wrapping (both read at once)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
