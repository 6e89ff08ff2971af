"""One budget per target system: rate (token bucket), concurrency cap and circuit breaker.

Every flow that delivers to a system draws from the same budget, so an ERP that takes 2
orders/s is fed 2 orders/s however many flows feed it. Workers ask `capacity()` before they
claim, so deliveries the target cannot take now stay pending in the journal: they are never
leased, never sent, and never burn an attempt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Clock = Callable[[], float]
CircuitState = Literal["closed", "open", "half-open"]


class TokenBucket:
    """`rate` tokens per second up to `burst`; `None` rate means unlimited."""

    def __init__(
        self, rate: float | None, burst: int | None = None, *, clock: Clock = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst if burst is not None else max(1, math.ceil(rate or 1)))
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        if self.rate is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def available(self) -> int:
        if self.rate is None:
            return 1 << 30
        self._refill()
        return int(self._tokens)

    def take(self, n: int) -> None:
        if self.rate is None:
            return
        self._refill()
        self._tokens -= n

    def give_back(self, n: int) -> None:
        if self.rate is None:
            return
        self._tokens = min(self.burst, self._tokens + n)

    def drain_for(self, seconds: float) -> None:
        """The target said `Retry-After: seconds`: no token before then."""
        if self.rate is None:
            return
        self._refill()
        self._tokens = min(self._tokens, -seconds * self.rate)

    def wait_time(self) -> float:
        """Seconds until one token is available."""
        if self.rate is None:
            return 0.0
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate


class CircuitBreaker:
    """Opens after `failures` consecutive transient failures; one probe after `cooldown`.

    A failed probe opens it again with the cooldown doubled (up to `max_cooldown`); a
    successful one closes it.
    """

    def __init__(
        self,
        *,
        failures: int = 5,
        cooldown: float = 10.0,
        max_cooldown: float = 120.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.threshold = failures
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._clock = clock
        self.consecutive = 0
        self.cooldown = cooldown
        self._opened_at: float | None = None
        self._probing = False
        self.opened_count = 0

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock() - self._opened_at >= self.cooldown:
            return "half-open"
        return "open"

    def allowed(self) -> int:
        """How many requests may start now: unlimited (-1) when closed, 1 probe, or 0."""
        state = self.state
        if state == "closed":
            return -1
        if state == "half-open" and not self._probing:
            return 1
        return 0

    def start_probe(self) -> None:
        if self._opened_at is not None:
            self._probing = True

    def abandon_probe(self) -> None:
        """The probe slot was reserved but nothing was sent (no delivery was due)."""
        self._probing = False

    def retry_in(self) -> float:
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - self._clock())

    def success(self) -> bool:
        """Record a success; True if this closed the circuit."""
        was_open = self._opened_at is not None
        self.consecutive = 0
        self._opened_at = None
        self._probing = False
        self.cooldown = self.base_cooldown
        return was_open

    def failure(self) -> bool:
        """Record a transient failure; True if the circuit is (now or still) not closed."""
        self.consecutive += 1
        if self._opened_at is not None:
            if self._probing:
                self._probing = False
                self.cooldown = min(self.max_cooldown, self.cooldown * 2)
                self._opened_at = self._clock()
            return True
        if self.consecutive >= self.threshold:
            self._opened_at = self._clock()
            self.opened_count += 1
            return True
        return False


@dataclass
class BudgetView:
    """What `seamline status` shows of a budget."""

    circuit: CircuitState
    in_flight: int
    concurrency: int
    rate: float | None
    opened_count: int


class Budget:
    """The budget of one target system, shared by all its flows in this process."""

    def __init__(
        self,
        *,
        concurrency: int,
        rate: float | None = None,
        burst: int | None = None,
        breaker: CircuitBreaker | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.concurrency = concurrency
        self.bucket = TokenBucket(rate, burst, clock=clock)
        self.breaker = breaker or CircuitBreaker(clock=clock)
        self.in_flight = 0
        self._clock = clock
        self._held_until = 0.0

    def capacity(self, limit: int) -> int:
        """How many deliveries may be claimed now, at most `limit`."""
        if self._clock() < self._held_until:
            return 0
        n = min(limit, self.concurrency - self.in_flight, self.bucket.available())
        allowed = self.breaker.allowed()
        if allowed >= 0:
            n = min(n, allowed)
        return max(0, n)

    def reserve(self, n: int) -> None:
        self.in_flight += n
        self.bucket.take(n)
        if self.breaker.state == "half-open" and n:
            self.breaker.start_probe()

    def release(self, n: int, *, unused: int = 0) -> None:
        """`n` requests finished; `unused` of them were reserved but never sent."""
        self.in_flight -= n
        if unused:
            self.bucket.give_back(unused)
            if unused == n and self.breaker.state == "half-open":
                self.breaker.abandon_probe()

    def hold(self, seconds: float) -> None:
        """The target throttled us: send nothing for `seconds`."""
        self._held_until = max(self._held_until, self._clock() + seconds)
        self.bucket.drain_for(seconds)

    def wait_time(self) -> float:
        """Seconds until capacity may be back (a hint for sleeping, not a promise)."""
        waits = [self._held_until - self._clock(), self.bucket.wait_time()]
        if self.breaker.state == "open":
            waits.append(self.breaker.retry_in())
        return max(0.0, *waits)

    def view(self) -> BudgetView:
        return BudgetView(
            self.breaker.state,
            self.in_flight,
            self.concurrency,
            self.bucket.rate,
            self.breaker.opened_count,
        )
