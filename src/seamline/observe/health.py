"""Health against the SLA: green, amber or red, and the reason in words an operator reads.

A flow is judged from its `FlowStatus` (deliveries by state, the oldest open one, its SLA):

| level | when                                              | reason, for example                |
|-------|---------------------------------------------------|------------------------------------|
| red   | dead letters exist (until replayed or discarded)  | "12 dead letters since 21:40"      |
| red   | the oldest open delivery waited longer than SLA   | "oldest pending 18 min, SLA 5 min" |
| amber | the oldest open delivery waited over half the SLA | "oldest pending 3 min, SLA 5 min"  |
| amber | deliveries are being retried                      | "3 retrying"                       |
| amber | deliveries wait for a person (unknown outcome)    | "2 need review"                    |
| green | none of the above                                 | no reasons                         |

A system is judged from its `SystemStatus` (the circuit the hub published, rejected messages,
what its vendor warned about):

| level | when                                 | reason, for example                              |
|-------|--------------------------------------|--------------------------------------------------|
| red   | its circuit is open                  | "circuit open: deliveries held"                  |
| amber | its circuit is half-open             | "circuit half-open: probing"                     |
| amber | messages from it were rejected       | "4 rejected messages since 21:40"                |
| amber | its vendor warned                    | "vendor warns: API version 2024-01 is deprecated" |

Given the firing alerts (`alerts.current`), a flow's health also carries those of its alerts
that see more than one snapshot can: "no orders for 25 min in trading hours", a failure rate,
a volume drop, a backlog; red for a critical alert, amber for a warning.

The level is the worst of the rules that hold; the reasons list every rule that holds, worst
first. Times are the hub's local clock; durations are rounded for reading, not for arithmetic.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from seamline.observe.status import FlowStatus, SystemStatus, circuit

Level = Literal["green", "amber", "red"]
_RANK: dict[Level, int] = {"green": 0, "amber": 1, "red": 2}
_JUDGED_HERE = frozenset({"dead_letters", "sla"})
"""Alert rules whose condition the health rules above already say in their own words."""


class FiringAlert(Protocol):
    """What health reads of an `alerts.Alert`."""

    @property
    def rule(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def flow(self) -> str | None: ...
    @property
    def severity(self) -> str: ...
    @property
    def summary(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Health:
    level: Level
    reasons: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """The reasons in one line ("" when green)."""
        return "; ".join(self.reasons)


def flow_health(status: FlowStatus, now: float, *, alerts: Iterable[FiringAlert] = ()) -> Health:
    """How `status`'s flow stands against its SLA at `now` (the rules in the module docstring),
    with what its firing `alerts` add."""
    found: list[tuple[Level, str]] = []
    dead = status.count("dead")
    if dead:
        found.append(("red", f"{plural(dead, 'dead letter')}{since_text(status.dead_since, now)}"))
    age = status.age(now)
    if age is not None:
        waited = f"oldest pending {duration_text(age)}, SLA {duration_text(status.sla)}"
        if age > status.sla:
            found.append(("red", waited))
        elif age > status.sla / 2:
            found.append(("amber", waited))
    retrying = status.count("retrying")
    if retrying:
        found.append(("amber", f"{retrying} retrying"))
    review = status.count("review")
    if review:
        found.append(("amber", f"{review} {'needs' if review == 1 else 'need'} review"))
    for alert in alerts:
        if alert.flow == status.flow and alert.rule not in _JUDGED_HERE:
            found.append(("red" if alert.severity == "critical" else "amber", alert.summary))
    return _worst(found)


def system_health(status: SystemStatus, now: float | None = None) -> Health:
    """How a system stands: its circuit, rejected messages, vendor warnings."""
    now = time.time() if now is None else now
    found: list[tuple[Level, str]] = []
    state = circuit(status)
    if state == "open":
        found.append(("red", "circuit open: deliveries held"))
    elif state == "half-open":
        found.append(("amber", "circuit half-open: probing"))
    if status.rejected:
        found.append(
            (
                "amber",
                f"{plural(status.rejected, 'rejected message')}"
                f"{since_text(status.rejected_since, now)}",
            )
        )
    for warning in status.warnings:
        found.append(("amber", f"vendor warns: {warning}"))
    return _worst(found)


def _worst(found: Iterable[tuple[Level, str]]) -> Health:
    ordered = sorted(found, key=lambda f: -_RANK[f[0]])
    if not ordered:
        return Health("green")
    return Health(ordered[0][0], tuple(reason for _, reason in ordered))


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def since_text(at: float | None, now: float) -> str:
    """ " since 21:40" (local time); with the date when it is not today; "" if unknown."""
    if at is None:
        return ""
    then, today = time.localtime(at), time.localtime(now)
    if (then.tm_year, then.tm_yday) == (today.tm_year, today.tm_yday):
        return time.strftime(" since %H:%M", then)
    return time.strftime(" since %d %b %H:%M", then)


def duration_text(seconds: float) -> str:
    """ "45 s", "18 min", "2 h 5 min", "3 d 4 h": what a person says, not what a clock shows."""
    s = round(max(0.0, seconds))
    if s < 90:
        return f"{s} s"
    minutes = round(s / 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")
