"""Fault switches: what can go wrong between the connector and the shop, on purpose.

Admin API (REST and GraphQL):
- ``latency_ms``: added before every answer.
- ``error_rate``: chance that a call answers 5xx (one of ``error_statuses``);
  ``error_burst``: the next N calls answer 5xx.
- ``throttle_seconds``: for that long every GraphQL call is ``THROTTLED`` and every REST call
  429, whatever the buckets hold; ``http_429_for_graphql``: throttled GraphQL answers are HTTP
  429 (with ``Retry-After``) instead of Shopify's usual 200.
- ``deprecated``: REST answers carry ``X-Shopify-API-Deprecated-Reason``.

Webhooks, decided per delivery:
- ``drop_rate``: never sent (the poller must find the change);
- ``duplicate_rate``: sent again after it was delivered (same webhook and event id, or a new
  webhook id with ``duplicates_renew_webhook_id``);
- ``reorder_rate``: held back until a later delivery to the same address was attempted;
- ``malformed_rate``: a body that is not JSON, or lacks ``id``, still correctly signed.

Chance is a generator seeded from the simulator's seed, so a run repeats; ``fired`` counts
each fault that fired.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Final

DEPRECATION_REASON: Final = "https://shopify.dev/api/usage/versioning#deprecation-practices"
_RATES: Final = ("error_rate", "drop_rate", "duplicate_rate", "reorder_rate", "malformed_rate")


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """The switches; all off by default."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_burst: int = 0
    error_statuses: tuple[int, ...] = (500, 502, 503, 504)
    throttle_seconds: float = 0.0
    http_429_for_graphql: bool = False
    deprecated: bool = False
    deprecated_reason: str = DEPRECATION_REASON
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    malformed_rate: float = 0.0
    duplicates_renew_webhook_id: bool = False

    def __post_init__(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability between 0 and 1, not {value!r}")
        if self.latency_ms < 0 or self.throttle_seconds < 0 or self.error_burst < 0:
            raise ValueError("latency_ms, throttle_seconds and error_burst are not negative")
        if not self.error_statuses or any(not 500 <= s <= 599 for s in self.error_statuses):
            raise ValueError("error_statuses are 5xx statuses")

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


FAULT_NAMES: Final = frozenset(f.name for f in fields(Faults))


class FaultInjector:
    """The current `Faults` and the state they started: a 5xx countdown, a throttle window."""

    def __init__(self, faults: Faults | None = None, *, seed: int = 1) -> None:
        self.faults = Faults()
        self.rng = random.Random(f"{seed}:faults")
        self.fired: Counter[str] = Counter()
        self._burst_left = 0
        self._throttle_until = 0.0
        self.set(**(asdict(faults) if faults else {}))

    def set(self, **changes: Any) -> Faults:
        """Change some switches (others keep their value); unknown names are a ValueError.

        Giving ``error_burst`` starts a new burst of that many calls; giving
        ``throttle_seconds`` starts a throttle window of that length from now.
        """
        unknown = set(changes) - FAULT_NAMES
        if unknown:
            known = ", ".join(sorted(FAULT_NAMES))
            raise ValueError(f"unknown fault {', '.join(sorted(unknown))}; known: {known}")
        if "error_statuses" in changes:
            changes["error_statuses"] = tuple(changes["error_statuses"])
        self.faults = replace(self.faults, **changes)
        if "error_burst" in changes:
            self._burst_left = self.faults.error_burst
        if "throttle_seconds" in changes:
            self._throttle_until = time.monotonic() + self.faults.throttle_seconds
        return self.faults

    def state(self) -> dict[str, Any]:
        return {
            **self.faults.as_json(),
            "error_burst_left": self._burst_left,
            "throttled_for": round(self.throttled_for(), 3),
            "fired": dict(self.fired),
        }

    def _chance(self, name: str) -> bool:
        rate: float = getattr(self.faults, name)
        if rate > 0 and self.rng.random() < rate:
            self.fired[name] += 1
            return True
        return False

    def latency(self) -> float:
        """Seconds to wait before answering an Admin API call."""
        return self.faults.latency_ms / 1000.0

    def server_error(self) -> int | None:
        """A 5xx status this Admin API call must answer with, or None."""
        if self._burst_left > 0:
            self._burst_left -= 1
            self.fired["error_burst"] += 1
            return self.rng.choice(self.faults.error_statuses)
        if self._chance("error_rate"):
            return self.rng.choice(self.faults.error_statuses)
        return None

    def throttled_for(self) -> float:
        """Seconds left of a forced throttle, 0 when none."""
        return max(0.0, self._throttle_until - time.monotonic())

    def throttle(self) -> float:
        left = self.throttled_for()
        if left > 0:
            self.fired["throttle"] += 1
        return left

    def drop(self) -> bool:
        return self._chance("drop_rate")

    def duplicate(self) -> bool:
        return self._chance("duplicate_rate")

    def reorder(self) -> bool:
        return self._chance("reorder_rate")

    def malformed(self) -> str | None:
        """``"not_json"`` or ``"missing_fields"`` when this delivery's body is to be broken."""
        if self._chance("malformed_rate"):
            return self.rng.choice(("not_json", "missing_fields"))
        return None
