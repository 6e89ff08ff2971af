"""Risk per integration: how likely it is to hurt, and how much, explained in words.

Each factor adds points; the sum is weighed by criticality (low 1, medium 2, high 3,
critical 4), halved and capped at 100. The reasons come sorted by the points they add, so
the first one is what to fix first.

| factor                                   | points |
|------------------------------------------|--------|
| runs outside the hub (unmonitored)       | 30     |
| no owner                                 | 25     |
| dead letters waiting                     | 20     |
| failing more than 5% of attempts (24 h)  | 15     |
| drift found by its check                 | 15     |
| no SLA                                   | 10     |
| no check compares its two systems        | 10     |
| unchanged for more than a year           | 10     |
"""

from __future__ import annotations

from dataclasses import dataclass

from seamline.landscape.register import CRITICALITY, Integration

YEAR = 365 * 86400.0
FAILURE_RATE = 0.05


@dataclass(frozen=True, slots=True)
class Signals:
    """What the journal says about an integration lately (zeros for one outside the hub)."""

    dead: int = 0
    attempts: int = 0
    """Attempts in the last 24 h."""
    failed: int = 0
    """Of those, failed ones (any classification but delivered)."""
    drift: int = 0
    """Findings of the last run of the checks on its systems."""
    drift_before: int | None = None
    """Findings of the run before that, for a trend."""


@dataclass(frozen=True, slots=True)
class Risk:
    score: int
    reasons: tuple[str, ...]

    @property
    def level(self) -> str:
        return "high" if self.score >= 60 else "medium" if self.score >= 30 else "low"


def assess(integration: Integration, signals: Signals, *, now: float) -> Risk:
    found: list[tuple[int, str]] = []
    if not integration.monitored:
        found.append((30, "runs outside the hub: nobody is told when it fails"))
    if not integration.owner:
        found.append((25, "no owner: nobody answers for it"))
    if signals.dead:
        found.append((20, f"{signals.dead} dead letter{'s' * (signals.dead != 1)} waiting"))
    if signals.attempts and signals.failed / signals.attempts > FAILURE_RATE:
        rate = signals.failed / signals.attempts
        found.append((15, f"{rate:.0%} of {signals.attempts} attempts failed in the last 24 h"))
    if signals.drift:
        found.append((15, f"drift on {signals.drift} records{_trend(signals)}"))
    if not integration.sla:
        found.append((10, "no SLA: late is not defined"))
    if not integration.checked_by:
        found.append((10, f"no check compares {integration.source} and {integration.target}"))
    if integration.changed_at is not None and now - integration.changed_at > YEAR:
        years = (now - integration.changed_at) / YEAR
        found.append((10, f"unchanged for {years:.1f} years: does anyone still know it?"))
    points = sum(p for p, _ in found)
    weight = CRITICALITY.index(integration.criticality) + 1
    score = min(100, round(points * weight / 2))
    found.sort(key=lambda f: -f[0])
    return Risk(score, tuple(reason for _, reason in found))


def _trend(signals: Signals) -> str:
    before = signals.drift_before
    if before is None or before == signals.drift:
        return "" if before is None else ", as before"
    return f", {'up' if signals.drift > before else 'down'} from {before}"
