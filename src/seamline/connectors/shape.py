"""Vendor drift: the shape of what a system sends, learned from its traffic, and its changes.

A vendor adds a field, renames one, stops sending one in a new API version: the flows keep
"working" until the day the missing field matters. `Shapes` learns, per system and payload
type (`orders/create`, `shipment`), which field paths occur (`line_items[].sku`), and says so
in words when that changes:

- **a new field**: a path never seen in the samples so far, once at least `warm_up` samples
  were seen (before that, everything is new), reported once;
- **a field gone**: a path that came in at least 95% of the samples (of at least `warm_up`)
  and is missing from the last `gone_after` samples in a row, reported once (optional fields,
  like a discount code, come in fewer and are never reported).

Each warning names the system, the payload type, the field and the first message where it
changed. Sampling keeps it off the hot path: at most one message per `every` seconds per
payload type is looked at (a change shows within minutes at any volume, and "first message"
is the first one sampled after the change). `state()`/`load()` carry what was learned over a
restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 8
"""Deeper paths are cut here: metafield blobs are not a contract."""
COMMON = 0.95


def paths(value: Any) -> set[str]:
    """The field paths of a JSON value: `a.b`, lists as `items[].sku` (all items merged)."""
    found: set[str] = set()
    _walk(value, "", 0, found)
    return found


def _walk(value: Any, prefix: str, depth: int, found: set[str]) -> None:
    if depth >= MAX_DEPTH:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            found.add(path)
            _walk(child, path, depth + 1, found)
    elif isinstance(value, list):
        for child in value:
            _walk(child, f"{prefix}[]", depth + 1, found)


@dataclass(slots=True)
class _Learned:
    samples: int = 0
    seen: dict[str, int] = field(default_factory=dict)
    """How many samples had each path."""
    missing: dict[str, int] = field(default_factory=dict)
    """Samples in a row without a common path."""
    gone: set[str] = field(default_factory=set)
    """Common paths already reported gone (until they come back)."""


@dataclass(frozen=True, slots=True)
class Drift:
    system: str
    kind: str
    field: str
    change: str
    """`new` or `gone`."""
    where: str
    """The first message sampled with the change (its id, or a file and line)."""

    def text(self) -> str:
        if self.change == "new":
            return (
                f"{self.system} sends a new field '{self.field}' in {self.kind} "
                f"(first in {self.where})"
            )
        return (
            f"{self.system} stopped sending '{self.field}' in {self.kind}: it came in nearly "
            f"every one before (first missing in {self.where})"
        )


class Shapes:
    def __init__(
        self,
        *,
        every: float = 10.0,
        warm_up: int = 20,
        gone_after: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every = every
        self.warm_up = warm_up
        self.gone_after = gone_after
        self._clock = clock
        self._learned: dict[tuple[str, str], _Learned] = {}
        self._next: dict[tuple[str, str], float] = {}
        self.samples = 0
        """Payloads looked at since the start (to know when there is something to keep)."""

    def due(self, system: str, kind: str) -> bool:
        """Whether the next message of this type is to be sampled (and if so, the gate moves)."""
        key, now = (system, kind), self._clock()
        if now < self._next.get(key, 0.0):
            return False
        self._next[key] = now + self.every
        return True

    def observe(self, system: str, kind: str, value: Any, where: str) -> list[Drift]:
        """Learn one sampled payload; the changes it shows."""
        learned = self._learned.setdefault((system, kind), _Learned())
        now = paths(value)
        drift: list[Drift] = []
        warm = learned.samples >= self.warm_up
        for path in sorted(now - learned.seen.keys()):
            if warm:
                drift.append(Drift(system, kind, path, "new", where))
        for path, count in learned.seen.items():
            if path in now:
                learned.missing.pop(path, None)
                learned.gone.discard(path)
            elif warm:
                streak = learned.missing.get(path, 0)
                # common among the samples before this run of misses began
                if count < COMMON * (learned.samples - streak):
                    continue
                missing = learned.missing[path] = streak + 1
                if missing >= self.gone_after and path not in learned.gone:
                    learned.gone.add(path)
                    drift.append(Drift(system, kind, path, "gone", where))
        learned.samples += 1
        self.samples += 1
        for path in now:
            learned.seen[path] = learned.seen.get(path, 0) + 1
        return drift

    def state(self) -> dict[str, Any]:
        """What was learned, as JSON-ready data (`load` takes it back)."""
        return {
            f"{system}\t{kind}": {
                "samples": learned.samples,
                "seen": learned.seen,
                "missing": learned.missing,
                "gone": sorted(learned.gone),
            }
            for (system, kind), learned in self._learned.items()
        }

    @staticmethod
    def merged(kept: Mapping[str, Any], mine: Mapping[str, Any]) -> dict[str, Any]:
        """What to keep when several processes learn (ingest processes, the scheduler): per
        system and payload type, the picture drawn from more samples, so a process that saw
        few of a type does not overwrite what another learned from many."""
        merged = dict(kept)
        for name, data in mine.items():
            other = merged.get(name)
            if other is None or int(data["samples"]) >= int(other["samples"]):
                merged[name] = data
        return merged

    def load(self, state: Mapping[str, Any]) -> None:
        for name, data in state.items():
            system, _, kind = name.partition("\t")
            self._learned[(system, kind)] = _Learned(
                int(data["samples"]),
                dict(data["seen"]),
                dict(data.get("missing") or {}),
                set(data.get("gone") or ()),
            )

    def kinds(self) -> Iterator[tuple[str, str]]:
        yield from self._learned
