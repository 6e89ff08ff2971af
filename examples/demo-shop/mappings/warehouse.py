"""What the 3PL can ship."""

from __future__ import annotations

from typing import Any

from seamline.errors import Skip


def shippable(event: dict[str, Any], mapped: dict[str, Any]) -> dict[str, Any]:
    """Only lines the 3PL stocks: a SKU, a quantity, and something to ship.

    Tips, gift wrapping and digital goods have no SKU or need no shipping; an order made only
    of those is skipped (with the reason), not sent as an empty file.
    """
    lines = [
        line
        for line, source in zip(mapped["lines"], event["lines"], strict=True)
        if line.get("sku") and line["quantity"] > 0 and source.get("requires_shipping", True)
    ]
    if not lines:
        raise Skip(f"order {event['number']} has nothing the warehouse ships")
    return {**mapped, "lines": lines}
