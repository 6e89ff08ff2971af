"""A worker's verdict on each outcome: what the delivery becomes, attempts burnt, breaker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from seamline.connectors.fake import FakeSink, answer
from seamline.engine.budget import Budget, Limits, MemoryLedger
from seamline.errors import (
    PermanentError,
    ThrottledError,
    TransientError,
    UnknownOutcomeError,
)
from tests.conftest import Backend
from tests.integration.rig import attempt_once, order, receive, rig

# (case, what the target answers, idempotent target?, state, attempts spent, error class)
OUTCOMES = [
    ("delivered", answer(200), True, "delivered", 1, None),
    (
        "server error is retried",
        answer(503, error=TransientError("server error 503")),
        True,
        "pending",
        1,
        "transient",
    ),
    (
        "throttled waits without burning an attempt",
        answer(429, error=ThrottledError("429", retry_after=7.0)),
        True,
        "pending",
        0,
        "throttled",
    ),
    (
        "unknown outcome, idempotent target: retried",
        answer(None, error=UnknownOutcomeError("timeout")),
        True,
        "pending",
        1,
        "unknown",
    ),
    (
        "unknown outcome, not idempotent: review",
        answer(None, error=UnknownOutcomeError("timeout")),
        False,
        "review",
        1,
        "unknown",
    ),
    (
        "refused as invalid: dead letter",
        answer(422, error=PermanentError("refused with 422")),
        True,
        "dead",
        1,
        "permanent",
    ),
]


@pytest.mark.parametrize(
    ("case", "reply", "safe", "state", "spent", "error_class"),
    OUTCOMES,
    ids=[c[0] for c in OUTCOMES],
)
def test_outcome_classification(
    tmp_path: Path,
    backend: Backend,
    case: str,
    reply: Any,
    safe: bool,
    state: str,
    spent: int,
    error_class: str | None,
) -> None:
    async def go() -> None:
        r = await rig(tmp_path / "p", FakeSink(script=[reply], safe=safe), backend=backend)
        await receive(r, order())
        settlement = await attempt_once(r)
        assert (settlement.state, settlement.spent, settlement.error_class) == (
            state,
            spent,
            error_class,
        )
        assert settlement.attempt is not None  # every attempt is recorded
        if case.startswith("throttled"):
            assert settlement.due_at >= time.time() + 6.0
            assert (
                await r.budget.acquire(10)
            ).n == 0  # the whole target is held, not just this delivery
        await r.journal.close()

    asyncio.run(go())


def test_unmapped_value_is_a_dead_letter_naming_the_value_and_nothing_is_sent(
    tmp_path: Path,
    backend: Backend,
) -> None:
    async def go() -> None:
        r = await rig(tmp_path / "p", FakeSink(), backend=backend)
        await receive(r, order(source_name="tiktok"))
        settlement = await attempt_once(r)
        assert settlement.state == "dead" and settlement.error_class == "contract"
        assert "tiktok" in (settlement.error or "") and "channels" in (settlement.error or "")
        assert r.sink.sent == []
        await r.journal.close()

    asyncio.run(go())


def test_once_the_circuit_opens_failures_hold_without_burning_attempts(
    tmp_path: Path, backend: Backend
) -> None:
    async def go() -> None:
        down = answer(None, error=TransientError("cannot connect"))
        r = await rig(tmp_path / "p", FakeSink(default=down), failures=2, backend=backend)
        await receive(r, order(id=1), 1)
        await receive(r, order(id=2), 2)
        claimed = await r.journal.claim(target="orders-api", owner="test", limit=10, lease=30.0)
        first, second = [await r.worker.deliver(c) for c in claimed]
        assert (first.state, first.spent, first.error_class) == ("pending", 1, "transient")
        assert (second.state, second.spent, second.error_class) == ("pending", 0, "held")
        assert r.budget.circuit == "open"
        await r.journal.close()

    asyncio.run(go())


def test_retries_end_in_a_dead_letter_when_attempts_are_spent(
    tmp_path: Path, backend: Backend
) -> None:
    async def go() -> None:
        failing = answer(503, error=TransientError("server error 503"))
        r = await rig(tmp_path / "p", FakeSink(default=failing), failures=100, backend=backend)
        await receive(r, order())
        states = []
        for _ in range(10):
            await r.journal._write(lambda c: c.execute("UPDATE delivery SET due_at = 0"))
            states.append((await attempt_once(r)).state)
        assert states == ["pending"] * 9 + ["dead"]
        (row,) = [x for x in await r.journal.select(_dead()) if x["state"] == "dead"]
        assert "gave up after 10 attempts" in str(row["last_error"])
        await r.journal.close()

    asyncio.run(go())


def test_idempotency_key_is_stable_across_attempts(tmp_path: Path, backend: Backend) -> None:
    async def go() -> None:
        r = await rig(
            tmp_path / "p",
            FakeSink(script=[answer(503, error=TransientError("x"))]),
            backend=backend,
        )
        await receive(r, order())
        await attempt_once(r)
        await r.journal._write(lambda c: c.execute("UPDATE delivery SET due_at = 0"))
        await attempt_once(r)
        keys = {key for _op, _body, key in r.sink.sent}
        assert len(r.sink.sent) == 2 and len(keys) == 1
        await r.journal.close()

    asyncio.run(go())


def _dead() -> Any:
    from seamline.journal.base import Selection

    return Selection(states=("dead",))


class _SlowSink(FakeSink):
    """Answers each request after `delay` seconds."""

    delay = 0.3

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(self.delay)
        return await super().send(*args, **kwargs)


class _CountingLedger(MemoryLedger):
    def __init__(self) -> None:
        super().__init__()
        self.grants = 0

    async def grant(self, *args: Any, **kwargs: Any) -> Any:
        self.grants += 1
        return await super().grant(*args, **kwargs)


def test_a_loop_held_back_by_the_concurrency_cap_waits_for_capacity_not_for_new_work(
    tmp_path: Path,
) -> None:
    # Given a target that takes one request at a time and answers after 0.3 s, two loops, and
    # two orders to deliver
    async def go() -> tuple[int, int]:
        sink = _SlowSink()
        r = await rig(tmp_path, sink)
        ledger = _CountingLedger()
        r.worker.budget = Budget("orders-api", Limits(concurrency=1), ledger)
        await receive(r, order(id=1, order_number=1001), 1)
        await receive(r, order(id=2, order_number=1002), 2)
        loops = [asyncio.create_task(r.worker.run_loop()) for _ in range(2)]
        # When new deliveries are announced every 10 ms meanwhile
        deadline = time.monotonic() + 5
        while len(sink.sent) < 2 and time.monotonic() < deadline:
            r.worker.wake.set()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.35)  # the second answer
        r.worker.stop()
        await asyncio.gather(*loops)
        await r.journal.close()
        return len(sink.sent), ledger.grants

    sent, grants = asyncio.run(go())
    # Then both are delivered, and the loop held back asked the budget again when the other
    # gave its request back, not at each announcement (~60 of them)
    assert sent == 2
    assert grants < 12, f"{grants} grants for 2 deliveries"
