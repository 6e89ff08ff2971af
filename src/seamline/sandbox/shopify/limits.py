"""Shopify's two rate limiters, both leaky buckets per app and shop.

GraphQL (cost points): the bucket holds ``maximum`` points (default 2000) and refills at
``restore_rate`` points per second (default 100). Before a query runs, its *requested* cost
must be available, else it is throttled and nothing is charged; after it ran, the difference
``requested - actual`` is given back. A single query may not request more than 1000.

REST (requests): 40 requests, leaking 2 per second; every answer says
``X-Shopify-Shop-Api-Call-Limit: used/40``; a request that finds the bucket full gets 429
with ``Retry-After`` (seconds, possibly fractional) and is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

MAX_QUERY_COST: Final = 1000


class LeakyBucket:
    """``used`` units out of ``capacity``, draining at ``leak_rate`` units per second."""

    def __init__(
        self, capacity: float, leak_rate: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.leak_rate = leak_rate
        self._clock = clock
        self._used = 0.0
        self._at = clock()

    @property
    def used(self) -> float:
        now = self._clock()
        self._used = max(0.0, self._used - (now - self._at) * self.leak_rate)
        self._at = now
        return self._used

    @property
    def available(self) -> float:
        return self.capacity - self.used

    def take(self, amount: float) -> bool:
        """Add ``amount`` if it fits; False (nothing added) if it does not."""
        if self.used + amount > self.capacity:
            return False
        self._used += amount
        return True

    def give_back(self, amount: float) -> None:
        self._used = max(0.0, self.used - amount)

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` fits."""
        missing = self.used + amount - self.capacity
        if missing <= 0:
            return 0.0
        return missing / self.leak_rate if self.leak_rate > 0 else float("inf")

    def drain(self) -> None:
        """Fill the bucket completely (used = capacity): a throttled shop."""
        self._used, self._at = self.capacity, self._clock()


@dataclass(frozen=True, slots=True)
class Cost:
    requested: int
    actual: int | None


class CostLimiter:
    """The GraphQL Admin API's cost bucket."""

    def __init__(self, *, maximum: float = 2000.0, restore_rate: float = 100.0) -> None:
        self.bucket = LeakyBucket(maximum, restore_rate)

    def try_charge(self, requested: int) -> bool:
        return self.bucket.take(requested)

    def refund(self, amount: int) -> None:
        if amount > 0:
            self.bucket.give_back(amount)

    def extension(self, cost: Cost, *, exhausted: bool = False) -> dict[str, Any]:
        """``extensions.cost`` of an answer; ``exhausted`` reports an empty bucket."""
        return {
            "requestedQueryCost": cost.requested,
            "actualQueryCost": cost.actual,
            "throttleStatus": self.throttle_status(exhausted=exhausted),
        }

    def throttle_status(self, *, exhausted: bool = False) -> dict[str, Any]:
        return {
            "maximumAvailable": float(self.bucket.capacity),
            "currentlyAvailable": 0 if exhausted else int(self.bucket.available),
            "restoreRate": float(self.bucket.leak_rate),
        }

    def retry_after(self, requested: int) -> float:
        return self.bucket.wait_for(requested)


class RequestLimiter:
    """The REST Admin API's request bucket."""

    def __init__(self, *, size: int = 40, leak_rate: float = 2.0) -> None:
        self.size = size
        self.bucket = LeakyBucket(size, leak_rate)

    def admit(self) -> tuple[bool, str, float]:
        """(admitted, ``X-Shopify-Shop-Api-Call-Limit`` value, seconds to wait if refused)."""
        if self.bucket.take(1):
            return True, self.header(), 0.0
        return False, f"{self.size}/{self.size}", self.bucket.wait_for(1)

    def header(self) -> str:
        return f"{min(self.size, round(self.bucket.used))}/{self.size}"
