"""What a change to the project would change, shown on real traffic before it goes live.

Two parts. `differences` compares two loaded projects (live and on disk): systems, flows and
value maps added, removed or changed, each in a line. `rehearse` sends a flow's recent real
messages through its live and its new version, offline (`engine/preview.py`: nothing is
sent), and sums up what would go out differently, grouped so a person reads it at once:

    orders-to-erp: 37 of 500 recent messages would be handled differently:
      order_type: WEB -> B2B in 37
      2 would now be rejected (were sent): value 'DHL Express' ... not in value map 'carriers'

"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from seamline.engine.preview import Preview, preview
from seamline.engine.router import Router
from seamline.errors import ContractError
from seamline.journal.base import StoredMessage
from seamline.project import Flow, Project

EXAMPLES = 3
"""Message ids kept per group of differences, to look at."""
GROUPS = 3
"""Distinct changes of one field listed one by one; more are summed with an example."""


def differences(live: Project, new: Project) -> list[str]:
    """Each change between two projects in a line: systems, flows, value maps."""
    said: list[str] = []
    for kind, old_items, new_items in (
        ("system", live.systems, new.systems),
        ("flow", live.flows, new.flows),
    ):
        for name in sorted(new_items.keys() - old_items.keys()):
            said.append(f"+ {kind} {name} (new)")
        for name in sorted(old_items.keys() - new_items.keys()):
            said.append(f"- {kind} {name} (removed)")
    for name in sorted(live.systems.keys() & new.systems.keys()):
        if live.systems[name].spec != new.systems[name].spec:
            said.append(
                f"~ system {name}: {_fields(live.systems[name].spec, new.systems[name].spec)}"
            )
    for name in sorted(live.flows.keys() & new.flows.keys()):
        old, now = live.flows[name], new.flows[name]
        if old.version == now.version:
            continue
        said.append(f"~ flow {name}: {_fields(old.spec, now.spec) or 'its mapping code'}")
        said += _value_maps(name, old.spec.value_maps, now.spec.value_maps)
    return said


@dataclass
class Rehearsal:
    """How one flow's recent messages fare under its new version, against the live one."""

    flow: str
    messages: int = 0
    same: int = 0
    changed: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(field path, live value, new value) -> messages where the request changes so."""
    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(live outcome, new outcome, new reason) -> messages that change outcome."""
    examples: dict[tuple[str, ...], list[int]] = field(default_factory=dict)

    @property
    def different(self) -> int:
        return self.messages - self.same

    def summary(self) -> list[str]:
        if not self.messages:
            return [f"{self.flow}: no recent messages to rehearse with"]
        if not self.different:
            return [f"{self.flow}: all {self.messages} recent messages would be handled the same"]
        lines = [
            f"{self.flow}: {self.different} of {self.messages} recent messages would be "
            "handled differently:"
        ]
        by_path: dict[str, list[tuple[str, str, int]]] = {}
        for (path, old, new), n in self.changed.most_common():
            by_path.setdefault(path, []).append((old, new, n))
        for path, pairs in by_path.items():
            if len(pairs) <= GROUPS:
                lines += [f"  {path}: {old} -> {new} in {n}" for old, new, n in pairs]
            else:
                old, new, _ = pairs[0]
                total = sum(n for _, _, n in pairs)
                lines.append(f"  {path}: changes in {total}, e.g. {old} -> {new}")
        for (old, new, reason), n in self.outcomes.most_common():
            now = {"send": "be sent", "not_routed": "not be for this flow"}.get(new, f"be {new}")
            was = {"send": "sent"}.get(old, old)
            lines.append(f"  {n} would now {now} (were {was})" + (f": {reason}" if reason else ""))
        return lines


def rehearse(
    flow_name: str,
    live: tuple[Flow, Router] | None,
    new: tuple[Flow, Router] | None,
    messages: Iterable[StoredMessage],
) -> Rehearsal:
    """Each message through the live and the new version of a flow (either may be None: a
    flow added or removed); nothing is sent."""
    result = Rehearsal(flow_name)
    for message in messages:
        result.messages += 1
        before = _through(live, message)
        after = _through(new, message)
        if before == after:
            result.same += 1
            continue
        if before.outcome == after.outcome == "send":
            for change in set(_changes(before.body, after.body)):
                result.changed[change] += 1
                _example(result, change, message.id)
        else:
            key = (before.outcome, after.outcome, after.reason or "")
            result.outcomes[key] += 1
            _example(result, key, message.id)
    return result


def _through(version: tuple[Flow, Router] | None, message: StoredMessage) -> Preview:
    if version is None:
        return Preview("not_routed", reason="no such flow in this version")
    flow, router = version
    try:
        event = router.decode(message)
    except ContractError as exc:
        return Preview("rejected", reason=str(exc))
    return preview(flow, router, event)


def _changes(old: Any, new: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """(path, old, new) of every leaf that differs; list items by position (`lines[]`)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            yield from _changes(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for a, b in zip(old, new, strict=True):
            yield from _changes(a, b, f"{path}[]")
    elif old != new:
        yield path or "(body)", _short(old), _short(new)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _example(result: Rehearsal, key: tuple[str, ...], message_id: int) -> None:
    kept = result.examples.setdefault(key, [])
    if len(kept) < EXAMPLES:
        kept.append(message_id)


def _fields(old: Any, new: Any) -> str:
    a, b = old.model_dump(mode="json"), new.model_dump(mode="json")
    return ", ".join(k for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k))


def _value_maps(
    flow: str, old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    said = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name, {}), new.get(name, {})
        for key in sorted(b.keys() - a.keys(), key=str):
            said.append(f"  value map {name}: + {key} -> {b[key]}")
        for key in sorted(a.keys() - b.keys(), key=str):
            said.append(f"  value map {name}: - {key} (was {a[key]})")
        for key in sorted(a.keys() & b.keys(), key=str):
            if a[key] != b[key]:
                said.append(f"  value map {name}: {key}: {a[key]} -> {b[key]}")
    return said
