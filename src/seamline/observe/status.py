"""Health in numbers: per flow, deliveries by state and the oldest open one; per system, budget.

Read straight from the journal, so `seamline status` works whether or not the hub runs. The
running hub writes each target's circuit and budget into a cursor every few seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from seamline.journal.base import Journal
from seamline.project import Project

OPEN_STATES = ("pending", "retrying", "leased")
WORKER_WARNINGS = "@worker"
"""Suffix of the cursor where worker processes keep what targets told them (`warnings:NAME`
is the hub's, for what sources and pollers said)."""


@dataclass
class FlowStatus:
    flow: str
    counts: dict[str, int] = field(default_factory=dict)
    oldest_open: float | None = None
    sla: float = 300.0
    dead_since: float | None = None
    """When the oldest delivery that is dead now was created (its message arrived)."""

    def count(self, state: str) -> int:
        return self.counts.get(state, 0)

    @property
    def open(self) -> int:
        """Deliveries not settled yet: pending, retrying or leased."""
        return sum(self.counts.get(state, 0) for state in OPEN_STATES)

    @property
    def total(self) -> int:
        """Every delivery this flow ever got (a delivery changes state, it is never removed)."""
        return sum(self.counts.values())

    def age(self, now: float) -> float | None:
        """How long the oldest open delivery has waited at `now`."""
        return None if self.oldest_open is None else max(0.0, now - self.oldest_open)

    @property
    def oldest_age(self) -> float | None:
        return self.age(time.time())


@dataclass
class SystemStatus:
    system: str
    rejected: int = 0
    rejected_since: float | None = None
    """When the oldest rejected message from this system arrived."""
    budget: dict[str, Any] | None = None
    warnings: dict[str, float] = field(default_factory=dict)
    """What the vendor said that an operator should see (a deprecated call, another API
    version), with when it was first seen."""


async def snapshot(
    journal: Journal, project: Project
) -> tuple[list[FlowStatus], list[SystemStatus]]:
    flows = {
        name: FlowStatus(name, sla=flow.spec.sla.deliver_within)
        for name, flow in project.flows.items()
    }
    for row in await journal.flow_counts():
        status = flows.setdefault(row.flow, FlowStatus(row.flow))
        status.counts[row.state] = status.counts.get(row.state, 0) + row.count
        if row.state in OPEN_STATES and row.oldest is not None:
            status.oldest_open = min(status.oldest_open or row.oldest, row.oldest)
        if row.state == "dead" and row.oldest is not None:
            status.dead_since = row.oldest
    systems = {name: SystemStatus(name) for name in project.systems}
    for system_name, n, oldest in await journal.rejected_counts():
        system = systems.setdefault(system_name, SystemStatus(system_name))
        system.rejected, system.rejected_since = n, oldest
    for name, system in systems.items():
        raw = await journal.get_cursor(f"budget:{name}")
        if raw:
            system.budget = orjson.loads(raw)
        for key in (f"warnings:{name}", f"warnings:{name}{WORKER_WARNINGS}"):
            said = await journal.get_cursor(key)
            if said:
                for text, since in orjson.loads(said).items():
                    system.warnings[text] = min(since, system.warnings.get(text, since))
    return list(flows.values()), list(systems.values())


def circuit(system: SystemStatus) -> str:
    """The circuit the running hub last published for `system`: closed, half-open or open."""
    state = (system.budget or {}).get("circuit")
    return state if isinstance(state, str) else "closed"


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
