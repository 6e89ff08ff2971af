"""Resource ids as Shopify issues them: int64, increasing, with gaps; and their gids.

Newer records have larger ids (``since_id`` relies on it), but ids are not dense: each is
the previous plus a seeded random gap. Bases resemble present-day Shopify ids and stay below
2**53, so JavaScript clients read them exactly.
"""

from __future__ import annotations

import random
import re
from typing import Final

_BASES: Final = {
    "Checkout": 36_000_000_000_000,
    "Customer": 7_800_000_000_000,
    "CustomerAddress": 9_400_000_000_000,
    "Fulfillment": 5_200_000_000_000,
    "FulfillmentOrder": 6_700_000_000_000,
    "FulfillmentOrderLineItem": 13_900_000_000_000,
    "InventoryAdjustmentGroup": 40_000_000_000_000,
    "InventoryItem": 48_000_000_000_000,
    "LineItem": 14_800_000_000_000,
    "Location": 70_000_000_000,
    "Order": 5_900_000_000_000,
    "OrderAdjustment": 300_000_000_000,
    "OrderEdit": 180_000_000_000,
    "OrderTransaction": 7_100_000_000_000,
    "Product": 8_900_000_000_000,
    "ProductOption": 11_000_000_000_000,
    "ProductVariant": 46_000_000_000_000,
    "Refund": 960_000_000_000,
    "RefundLineItem": 560_000_000_000,
    "ShippingLine": 4_900_000_000_000,
    "User": 110_000_000_000,
    "WebhookSubscription": 1_500_000_000_000,
}
_GID = re.compile(r"^gid://shopify/([A-Za-z]+)/(\d+)(?:\?.*)?$")


class Ids:
    """One increasing sequence per resource kind, from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._last: dict[str, int] = {}

    def next(self, kind: str) -> int:
        last = self._last.get(kind, _BASES[kind])
        value = last + self._rng.randint(1, 4096)
        self._last[kind] = value
        return value


def gid(kind: str, value: int) -> str:
    return f"gid://shopify/{kind}/{value}"


def parse_gid(text: object) -> tuple[str, int] | None:
    """``("Order", 123)`` from ``gid://shopify/Order/123`` (query part ignored), else None."""
    if not isinstance(text, str):
        return None
    match = _GID.match(text)
    return (match.group(1), int(match.group(2))) if match else None
