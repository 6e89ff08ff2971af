"""What the ERP sale needs beyond the order itself."""

from __future__ import annotations

from typing import Any


def sale(event: dict[str, Any], mapped: dict[str, Any]) -> dict[str, Any]:
    """The canonical order, with the ERP order type in the sale's description: `WEB #1001`.

    The sale's reference stays the shop's order number (`#1001`), the one number the shop,
    the 3PL's shipment files and a cancellation all carry, so the flows that follow the order
    (shipments, cancellations) find the sale by it without a value map of their own.
    """
    return {**event, "description": f"{mapped['order_type']} {event['number']}"}
