"""The budget's state machine: token bucket, concurrency cap, circuit breaker, throttle holds.

`BudgetState` is pure (time is an argument), so each case walks it through time by hand. The
ledgers that keep it, in memory and in PostgreSQL, are tested in
`tests/integration/test_budget_ledger.py`.
"""

from __future__ import annotations

import pytest

from seamline.engine.budget import BudgetState, Limits, Outcome

T0 = 1000.0


def test_bucket_refills_at_its_rate_up_to_the_burst() -> None:
    limits = Limits(concurrency=100, rate=2.0, burst=4)
    s = BudgetState.fresh(limits, T0)
    assert s.grant(T0, 100, 0, limits).n == 4
    assert s.grant(T0, 100, 0, limits).n == 0
    assert s.grant(T0 + 1.0, 100, 0, limits).n == 2
    assert s.grant(T0 + 101.0, 100, 0, limits).n == 4


def test_an_empty_bucket_says_how_long_until_the_next_token() -> None:
    limits = Limits(concurrency=100, rate=4.0, burst=1)
    s = BudgetState.fresh(limits, T0)
    s.grant(T0, 1, 0, limits)
    grant = s.grant(T0, 1, 0, limits)
    assert (grant.n, grant.wait) == (0, 0.25)


def test_no_rate_means_only_the_concurrency_cap_counts() -> None:
    limits = Limits(concurrency=3)
    s = BudgetState.fresh(limits, T0)
    assert s.grant(T0, 100, 0, limits).n == 3
    assert s.grant(T0, 100, 2, limits).n == 1  # two in flight somewhere
    assert s.grant(T0, 100, 3, limits).n == 0
    assert s.grant(T0, 2, 0, limits).n == 2  # never more than asked


def test_unused_grants_give_their_tokens_back() -> None:
    limits = Limits(concurrency=100, rate=1.0, burst=5)
    s = BudgetState.fresh(limits, T0)
    assert s.grant(T0, 5, 0, limits).n == 5
    s.returned(T0, 5, Outcome(), limits)
    assert s.grant(T0, 5, 0, limits).n == 5


def test_consecutive_failures_open_the_circuit_and_a_success_resets_the_count() -> None:
    limits = Limits(concurrency=10, failures=3, cooldown=10.0)
    s = BudgetState.fresh(limits, T0)
    s.returned(T0, 0, Outcome(failures=2), limits)
    s.returned(T0, 0, Outcome(successes=1), limits)
    s.returned(T0, 0, Outcome(failures=2), limits)
    assert s.circuit(T0) == "closed"
    s.returned(T0, 0, Outcome(failures=1), limits)
    assert s.circuit(T0) == "open" and s.opened_count == 1
    grant = s.grant(T0 + 1, 10, 0, limits)
    assert (grant.n, grant.circuit, grant.wait) == (0, "open", 9.0)


def test_after_the_cooldown_exactly_one_probe_goes_out() -> None:
    limits = Limits(concurrency=10, failures=1, cooldown=10.0)
    s = BudgetState.fresh(limits, T0)
    s.returned(T0, 0, Outcome(failures=1), limits)
    probe = s.grant(T0 + 10, 10, 0, limits)
    assert (probe.n, probe.circuit) == (1, "half-open")
    assert s.grant(T0 + 10, 10, 1, limits).n == 0  # the probe holds the slot


def test_a_failed_probe_reopens_with_a_doubled_cooldown_up_to_the_maximum() -> None:
    limits = Limits(concurrency=10, failures=1, cooldown=10.0, max_cooldown=25.0)
    s = BudgetState.fresh(limits, T0)
    s.returned(T0, 0, Outcome(failures=1), limits)
    assert s.grant(T0 + 10, 10, 0, limits).n == 1
    s.returned(T0 + 10, 0, Outcome(failures=1), limits)
    assert s.circuit(T0 + 29) == "open"  # 20 s now
    assert s.grant(T0 + 30, 10, 0, limits).n == 1
    s.returned(T0 + 30, 0, Outcome(failures=1), limits)
    assert s.circuit(T0 + 54) == "open"
    assert s.circuit(T0 + 55) == "half-open"  # capped at 25 s


def test_a_good_probe_closes_the_circuit_and_says_so() -> None:
    limits = Limits(concurrency=10, failures=1, cooldown=10.0)
    s = BudgetState.fresh(limits, T0)
    s.returned(T0, 0, Outcome(failures=1), limits)
    s.grant(T0 + 10, 10, 0, limits)
    assert s.returned(T0 + 10, 0, Outcome(successes=1), limits) is True
    grant = s.grant(T0 + 10, 10, 0, limits)
    assert (grant.n, grant.circuit) == (10, "closed")
    assert s.returned(T0 + 10, 0, Outcome(successes=1), limits) is False


def test_an_abandoned_probe_frees_the_slot() -> None:
    limits = Limits(concurrency=10, failures=1, cooldown=5.0)
    s = BudgetState.fresh(limits, T0)
    s.returned(T0, 0, Outcome(failures=1), limits)
    assert s.grant(T0 + 5, 10, 0, limits).n == 1
    s.returned(T0 + 5, 1, Outcome(), limits)  # nothing was due: the probe was never sent
    assert s.grant(T0 + 5, 10, 0, limits).n == 1


def test_a_throttle_hold_stops_grants_until_retry_after_and_drains_the_bucket() -> None:
    limits = Limits(concurrency=10, rate=10.0, burst=10)
    s = BudgetState.fresh(limits, T0)
    s.returned(T0, 0, Outcome(hold=3.0), limits)
    grant = s.grant(T0 + 1, 10, 0, limits)
    assert grant.n == 0
    assert grant.wait == pytest.approx(2.1)  # the hold, then the first token
    assert s.grant(T0 + 3, 10, 0, limits).n == 0  # no tokens saved up during the hold
    assert s.grant(T0 + 4, 10, 0, limits).n == 10
