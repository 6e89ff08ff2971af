"""What the ERP sale needs beyond the order itself."""

from __future__ import annotations

from typing import Any


def sale(event: dict[str, Any], mapped: dict[str, Any]) -> dict[str, Any]:
    """The canonical order, its reference prefixed with the order type: `WEB-1001`.

    Tryton finds a sale by this reference before it creates one, so the prefix also keeps two
    channels (or shops) with the same number from landing on one sale.
    """
    number = str(event["number"]).lstrip("#")
    return {**event, "number": f"{mapped['order_type']}-{number}"}
