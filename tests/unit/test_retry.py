"""Retry policy: when the next attempt is due, and when there is none."""

from __future__ import annotations

import random

import pytest

from seamline.engine.retry import RetryPolicy, exponential

SCHEDULE = (1.0, 5.0, 30.0)


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(1, 1.0), (2, 5.0), (3, 30.0), (4, 30.0), (9, 30.0)],
)
def test_schedule_without_jitter_follows_the_list_and_repeats_the_last(
    attempts: int, expected: float
) -> None:
    policy = RetryPolicy(schedule=SCHEDULE, jitter=0.0)
    assert policy.delay(attempts) == expected


def test_jitter_stays_within_its_band_and_varies() -> None:
    # Given a 20% jitter on a 10 s wait
    policy = RetryPolicy(schedule=(10.0,), jitter=0.2, rng=random.Random(1))
    # When many delays are drawn
    waits = [policy.delay(1) for _ in range(500)]
    # Then every one is within 8-12 s, and they are spread out, not all the same
    assert all(8.0 <= w <= 12.0 for w in waits)
    assert max(waits) - min(waits) > 2.0


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(None, 5.0), (2.0, 5.0), (60.0, 60.0)],
)
def test_retry_after_wins_only_when_it_asks_for_longer(
    retry_after: float | None, expected: float
) -> None:
    policy = RetryPolicy(schedule=SCHEDULE, jitter=0.0)
    assert policy.delay(2, retry_after=retry_after) == expected


@pytest.mark.parametrize(
    ("attempts", "age", "gives_up"),
    [(9, 10.0, None), (10, 10.0, "max_attempts"), (3, 86400.0, "max_age"), (3, 100.0, None)],
)
def test_exhausted_by_attempts_or_age(attempts: int, age: float, gives_up: str | None) -> None:
    policy = RetryPolicy(max_attempts=10, max_age=86400.0)
    reason = policy.exhausted(attempts, age=age)
    if gives_up is None:
        assert reason is None
    else:
        assert reason is not None and gives_up in reason


def test_exponential_schedule_grows_to_its_cap() -> None:
    assert exponential(1.0, 2.0, 10.0) == (1.0, 2.0, 4.0, 8.0, 10.0)
