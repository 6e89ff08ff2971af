"""Budgets of a target system: token bucket, concurrency cap, circuit breaker, throttle holds."""

from __future__ import annotations

from seamline.engine.budget import Budget, CircuitBreaker, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_its_rate_up_to_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(2.0, burst=4, clock=clock)
    assert bucket.available() == 4
    bucket.take(4)
    assert bucket.available() == 0
    clock.now += 1.0
    assert bucket.available() == 2
    clock.now += 100.0
    assert bucket.available() == 4


def test_unlimited_bucket_never_runs_out() -> None:
    bucket = TokenBucket(None)
    bucket.take(10_000)
    assert bucket.available() > 10_000


def test_capacity_is_the_least_of_batch_concurrency_and_tokens() -> None:
    clock = Clock()
    budget = Budget(concurrency=3, rate=10.0, burst=10, clock=clock)
    assert budget.capacity(100) == 3
    budget.reserve(3)
    assert budget.capacity(100) == 0
    budget.release(3)
    assert budget.capacity(2) == 2
    # tokens: 10 - 3 taken = 7
    budget.concurrency = 100
    assert budget.capacity(100) == 7


def test_unused_reservations_give_their_tokens_back() -> None:
    clock = Clock()
    budget = Budget(concurrency=100, rate=1.0, burst=5, clock=clock)
    budget.reserve(5)
    budget.release(5, unused=5)
    assert budget.capacity(100) == 5


def test_breaker_opens_after_consecutive_failures_and_probes_after_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown=10.0, clock=clock)
    # Given two failures, then a success: the count starts again
    assert breaker.failure() is False
    assert breaker.failure() is False
    breaker.success()
    assert breaker.failure() is False
    assert breaker.failure() is False
    # When the third consecutive failure comes, it opens
    assert breaker.failure() is True
    assert breaker.state == "open"
    assert breaker.allowed() == 0
    # Then after the cooldown exactly one probe is allowed
    clock.now += 10.0
    assert breaker.state == "half-open"
    assert breaker.allowed() == 1
    breaker.start_probe()
    assert breaker.allowed() == 0


def test_failed_probe_reopens_with_a_longer_cooldown_and_a_good_probe_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown=10.0, max_cooldown=25.0, clock=clock)
    breaker.failure()
    clock.now += 10.0
    breaker.start_probe()
    assert breaker.failure() is True
    assert breaker.state == "open"
    clock.now += 10.0
    assert breaker.state == "open"  # cooldown doubled to 20 s
    clock.now += 10.0
    breaker.start_probe()
    breaker.failure()
    clock.now += 25.0  # capped at max_cooldown
    assert breaker.state == "half-open"
    breaker.start_probe()
    assert breaker.success() is True
    assert breaker.state == "closed"
    assert breaker.allowed() == -1


def test_open_circuit_gives_no_capacity_and_an_abandoned_probe_frees_the_slot() -> None:
    clock = Clock()
    budget = Budget(
        concurrency=10, breaker=CircuitBreaker(failures=1, cooldown=5.0, clock=clock), clock=clock
    )
    budget.breaker.failure()
    assert budget.capacity(100) == 0
    assert budget.wait_time() == 5.0
    clock.now += 5.0
    assert budget.capacity(100) == 1
    budget.reserve(1)
    assert budget.capacity(100) == 0
    budget.release(1, unused=1)  # nothing was due: the probe was never sent
    assert budget.capacity(100) == 1


def test_throttle_hold_stops_claims_until_retry_after() -> None:
    clock = Clock()
    budget = Budget(concurrency=10, clock=clock)
    budget.hold(3.0)
    assert budget.capacity(10) == 0
    clock.now += 3.0
    assert budget.capacity(10) == 10
