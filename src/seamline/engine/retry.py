"""Retry policy of a flow: a value that says when the next attempt is due, or that none is."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`schedule[n]` is the wait after the (n+1)th failed attempt; the last entry repeats.

    `jitter` spreads each wait by ±jitter*wait so that a recovering target is not hit by every
    delivery at once. A delivery is dead after `max_attempts` attempts or once it is older than
    `max_age` seconds at a failed attempt. A target's `Retry-After` wins when it asks for longer.
    """

    schedule: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0, 1800.0)
    max_attempts: int = 10
    max_age: float = 86400.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempts: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait after `attempts` failed attempts (1-based)."""
        base = self.schedule[min(max(attempts, 1), len(self.schedule)) - 1]
        wait = base * (1.0 + self.jitter * (2.0 * self.rng.random() - 1.0)) if self.jitter else base
        if retry_after is not None and retry_after > wait:
            return retry_after
        return max(0.0, wait)

    def exhausted(self, attempts: int, *, age: float) -> str | None:
        """Why no further attempt is allowed, or None."""
        if attempts >= self.max_attempts:
            return f"gave up after {attempts} attempts (max_attempts {self.max_attempts})"
        if age >= self.max_age:
            return f"gave up after {age:.0f} s (max_age {self.max_age:.0f} s)"
        return None


def exponential(first: float, factor: float, maximum: float, steps: int = 20) -> tuple[float, ...]:
    """A schedule that grows by `factor` from `first` up to `maximum`."""
    waits: list[float] = []
    wait = first
    for _ in range(steps):
        waits.append(min(wait, maximum))
        if wait >= maximum:
            break
        wait *= factor
    return tuple(waits)
