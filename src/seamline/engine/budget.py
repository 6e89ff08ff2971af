"""One budget per target system: rate (token bucket), concurrency cap and circuit breaker.

Every flow that delivers to a system draws from the same budget, and so does every worker
process on every host: an ERP that takes 2 orders/s is fed 2 orders/s however many flows and
workers feed it. Workers ask for a grant before they claim, so deliveries the target cannot
take now stay pending in the journal: never leased, never sent, never burning an attempt.

The state of a budget is one `BudgetState` record, changed only by two pure transitions,
`grant` (before a claim) and `returned` (after the batch, with its outcome). A `BudgetLedger`
keeps the records: `MemoryLedger` in this process (SQLite: one process owns the journal; also
the fake for tests), `PostgresLedger` in the database, row-locked for each transition, so that
all processes share one bucket, one concurrency count and one circuit.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from seamline.project import BudgetSpec

Clock = Callable[[], float]
CircuitState = Literal["closed", "open", "half-open"]
UNLIMITED = 1 << 30


@dataclass(frozen=True, slots=True)
class Limits:
    """A target system's budget as configured (`systems/NAME.yaml`, `budget:`)."""

    concurrency: int = 32
    rate: float | None = None
    burst: int | None = None
    failures: int = 5
    cooldown: float = 10.0
    max_cooldown: float = 120.0
    lease: float = 30.0
    """How long a grant counts against the concurrency cap (and a probe holds the half-open
    circuit) if the process that took it vanishes without returning it."""

    @classmethod
    def of(cls, spec: BudgetSpec, *, lease: float) -> Limits:
        c = spec.circuit
        return cls(
            spec.concurrency, spec.rate, spec.burst, c.failures, c.cooldown, c.max_cooldown, lease
        )

    @property
    def bucket(self) -> float:
        """The bucket's size: the burst, or one second's worth of rate."""
        return float(self.burst if self.burst is not None else max(1, math.ceil(self.rate or 1)))


@dataclass(slots=True)
class Outcome:
    """What came of the requests sent since the last report."""

    successes: int = 0
    failures: int = 0
    """Transient failures after the last success (consecutive ones)."""
    hold: float = 0.0
    """The target asked for a pause of this many seconds (Retry-After)."""

    def __bool__(self) -> bool:
        return bool(self.successes or self.failures or self.hold)


@dataclass(frozen=True, slots=True)
class Grant:
    n: int
    """Requests that may start now."""
    wait: float
    """When `n` is 0: seconds until capacity may be back (a hint for sleeping)."""
    circuit: CircuitState
    failures: int
    """Consecutive transient failures recorded so far."""
    opened_count: int = 0


@dataclass(slots=True)
class BudgetState:
    """A budget's shared record; `now` is the ledger's clock (the database's, when shared)."""

    tokens: float
    at: float
    held_until: float = 0.0
    failures: int = 0
    opened_at: float | None = None
    cooldown: float = 0.0
    probe_until: float = 0.0
    """While a probe of the half-open circuit is out: until when it holds the probe slot."""
    opened_count: int = 0

    @classmethod
    def fresh(cls, limits: Limits, now: float) -> BudgetState:
        return cls(tokens=limits.bucket, at=now, cooldown=limits.cooldown)

    def circuit(self, now: float) -> CircuitState:
        if self.opened_at is None:
            return "closed"
        return "open" if now < self.opened_at + self.cooldown else "half-open"

    def _refill(self, now: float, limits: Limits) -> None:
        if limits.rate is not None:
            elapsed = max(0.0, now - self.at)
            self.tokens = min(limits.bucket, self.tokens + elapsed * limits.rate)
        self.at = now

    def grant(self, now: float, want: int, in_use: int, limits: Limits) -> Grant:
        """Take up to `want` requests; `in_use` are the requests in flight everywhere."""
        self._refill(now, limits)
        circuit = self.circuit(now)
        n = min(want, limits.concurrency - in_use)
        if limits.rate is not None:
            n = min(n, math.floor(self.tokens))
        if now < self.held_until or circuit == "open":
            n = 0
        elif circuit == "half-open":
            n = min(n, 0 if self.probe_until > now else 1)
        n = max(0, n)
        if limits.rate is not None:
            self.tokens -= n
        if circuit == "half-open" and n:
            self.probe_until = now + limits.lease
        return Grant(n, self.wait(now, limits), circuit, self.failures, self.opened_count)

    def wait(self, now: float, limits: Limits) -> float:
        waits = [self.held_until - now]
        if limits.rate is not None and self.tokens < 1:
            waits.append((1 - self.tokens) / limits.rate)
        if self.opened_at is not None:
            waits.append(self.opened_at + self.cooldown - now)
            if self.probe_until > now:
                waits.append(min(self.probe_until - now, 1.0))
        return max(0.0, *waits)

    def returned(self, now: float, unused: int, outcome: Outcome, limits: Limits) -> bool:
        """Record what came of a grant; True if this closed an open circuit."""
        self._refill(now, limits)
        if unused and limits.rate is not None:
            self.tokens = min(limits.bucket, self.tokens + unused)
        if outcome.hold:
            self.held_until = max(self.held_until, now + outcome.hold)
            if limits.rate is not None:
                self.tokens = min(self.tokens, -outcome.hold * limits.rate)
        closed = False
        if outcome.successes:
            closed = self.opened_at is not None
            self.failures = 0
            self.opened_at = None
            self.probe_until = 0.0
            self.cooldown = limits.cooldown
        if outcome.failures:
            self.failures += outcome.failures
            if self.opened_at is not None:
                if self.probe_until > 0:
                    # The probe failed: open again, and wait longer before the next one.
                    self.cooldown = min(limits.max_cooldown, self.cooldown * 2)
                    self.opened_at = now
                    self.probe_until = 0.0
            elif self.failures >= limits.failures:
                self.opened_at = now
                self.cooldown = limits.cooldown
                self.opened_count += 1
        elif unused and not outcome and self.probe_until > 0:
            self.probe_until = 0.0  # the probe slot was granted but nothing was due
        return closed


class BudgetLedger(Protocol):
    """Where budget states live; each call is one atomic transition of one target's state."""

    async def grant(
        self, target: str, owner: str, want: int, *, in_flight: int, limits: Limits
    ) -> Grant:
        """Up to `want` requests for `owner`, which has `in_flight` requests out already."""
        ...

    async def returned(
        self,
        target: str,
        owner: str,
        *,
        in_flight: int,
        unused: int,
        outcome: Outcome,
        limits: Limits,
    ) -> bool:
        """`owner` now has `in_flight` out; `unused` granted requests were never sent; True if
        the outcome closed the circuit."""
        ...


@dataclass
class MemoryLedger:
    """Budget states in this process: the ledger of a single-process (SQLite) hub."""

    clock: Clock = time.time
    states: dict[str, BudgetState] = field(default_factory=dict)
    uses: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)

    def _state(self, target: str, limits: Limits) -> BudgetState:
        if target not in self.states:
            self.states[target] = BudgetState.fresh(limits, self.clock())
        return self.states[target]

    def _others(self, target: str, owner: str, now: float) -> int:
        uses = self.uses.items()
        return sum(n for (t, o), (n, until) in uses if t == target and o != owner and until > now)

    async def grant(
        self, target: str, owner: str, want: int, *, in_flight: int, limits: Limits
    ) -> Grant:
        now = self.clock()
        state = self._state(target, limits)
        grant = state.grant(now, want, self._others(target, owner, now) + in_flight, limits)
        self.uses[(target, owner)] = (in_flight + grant.n, now + limits.lease)
        return grant

    async def returned(
        self,
        target: str,
        owner: str,
        *,
        in_flight: int,
        unused: int,
        outcome: Outcome,
        limits: Limits,
    ) -> bool:
        now = self.clock()
        self.uses[(target, owner)] = (in_flight, now + limits.lease)
        return self._state(target, limits).returned(now, unused, outcome, limits)


@dataclass
class BudgetView:
    """What `seamline status` shows of a budget."""

    circuit: CircuitState
    in_flight: int
    concurrency: int
    rate: float | None
    opened_count: int


class Budget:
    """One process's hold on the budget of one target system.

    Between grants it keeps a local view: requests in flight here, the circuit and failure
    count of the last grant, and the outcomes not yet reported. The worker classifies each
    failure with `failed()`, which says whether the circuit is (about to be) open, so that
    failures during an outage wait without burning attempts.
    """

    def __init__(
        self,
        target: str,
        limits: Limits,
        ledger: BudgetLedger,
        *,
        owner: str = "hub",
        clock: Clock = time.monotonic,
    ) -> None:
        self.target = target
        self.limits = limits
        self.ledger = ledger
        self.owner = owner
        self.in_flight = 0
        self.circuit: CircuitState = "closed"
        self.consecutive = 0
        self.opened_count = 0
        self._clock = clock
        self._held_until = 0.0
        self._outcome = Outcome()
        # This process's loops take turns with the ledger: each tells it what the process has
        # in flight, which must include what the other loop was granted a moment ago.
        self._turn = asyncio.Lock()

    async def acquire(self, want: int) -> Grant:
        """Up to `want` requests; the caller gives every one back with `returned`."""
        now = self._clock()
        if now < self._held_until:
            return Grant(0, self._held_until - now, self.circuit, self.consecutive)
        async with self._turn:
            grant = await self.ledger.grant(
                self.target, self.owner, want, in_flight=self.in_flight, limits=self.limits
            )
            self.in_flight += grant.n
        self.circuit = grant.circuit
        self.consecutive = grant.failures
        self.opened_count = grant.opened_count
        return grant

    async def returned(self, n: int, *, unused: int = 0) -> bool:
        """`n` granted requests are done, `unused` of them never sent; report the outcomes.
        True if this closed the circuit (deliveries held for the outage are due now)."""
        async with self._turn:
            self.in_flight -= n
            outcome, self._outcome = self._outcome, Outcome()
            closed = await self.ledger.returned(
                self.target,
                self.owner,
                in_flight=self.in_flight,
                unused=unused,
                outcome=outcome,
                limits=self.limits,
            )
        if closed:
            self.circuit = "closed"
        return closed

    def succeeded(self) -> None:
        self._outcome.successes += 1
        self._outcome.failures = 0
        self.consecutive = 0
        self.circuit = "closed"

    def failed(self) -> bool:
        """A transient failure; True if the circuit is open (or opens with this one)."""
        self._outcome.failures += 1
        self.consecutive += 1
        if self.circuit != "closed" or self.consecutive >= self.limits.failures:
            self.circuit = "open"
            return True
        return False

    def hold(self, seconds: float) -> None:
        """The target throttled us: nothing goes out for `seconds`, from any process."""
        self._held_until = max(self._held_until, self._clock() + seconds)
        self._outcome.hold = max(self._outcome.hold, seconds)

    def retry_in(self) -> float:
        """A held delivery's wait: the circuit's cooldown."""
        return self.limits.cooldown

    def view(self) -> BudgetView:
        return BudgetView(
            self.circuit,
            self.in_flight,
            self.limits.concurrency,
            self.limits.rate,
            self.opened_count,
        )
