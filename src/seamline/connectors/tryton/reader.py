"""Reading a Tryton: stock per warehouse and SKU, and the shipments of a sale.

For checks and flows that compare what the ERP holds with what a shop shows. Each function
takes a logged-in (or lazily logging-in) `TrytonClient` and only reads.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from seamline.connectors.tryton.client import TrytonClient
from seamline.errors import PermanentError


@dataclass(frozen=True, slots=True)
class StockLevel:
    """A product's stock at a warehouse: `quantity` on hand, `forecast` after planned moves
    (a confirmed sale lowers the forecast at once, the quantity when its shipment is done)."""

    sku: str
    warehouse: str
    quantity: Decimal
    forecast: Decimal


@dataclass(frozen=True, slots=True)
class ShipmentLine:
    sku: str | None
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Shipment:
    """A customer shipment (`stock.shipment.out`) of a sale."""

    id: int
    number: str | None
    state: str
    """draft, waiting, assigned, picked, packed, shipped, done or cancelled."""
    effective_date: datetime.date | None
    lines: tuple[ShipmentLine, ...]


async def warehouse_id(client: TrytonClient, code: str) -> int:
    ids = await client.model(
        "stock.location", "search", [["code", "=", code], ["type", "=", "warehouse"]], 0, 1, None
    )
    if not ids:
        raise PermanentError(f"{client.name}: Tryton has no warehouse with code {code!r}")
    return int(ids[0])


async def stock(
    client: TrytonClient, skus: Sequence[str], *, warehouse: str | None = None
) -> dict[str, StockLevel]:
    """Stock of each SKU at the warehouse (the connection's by default); unknown SKUs absent."""
    code = warehouse or client.options.warehouse
    location = await warehouse_id(client, code)
    rows = await client.model(
        "product.product",
        "search_read",
        [["code", "in", list(skus)]],
        0,
        None,
        None,
        ["code", "quantity", "forecast_quantity"],
        context={"locations": [location]},
    )
    return {
        str(row["code"]): StockLevel(
            str(row["code"]),
            code,
            _decimal(row.get("quantity")),
            _decimal(row.get("forecast_quantity")),
        )
        for row in rows
    }


async def shipments(client: TrytonClient, reference: str) -> list[Shipment]:
    """The customer shipments of the sale with this reference (none if there is no sale)."""
    sales = await client.model(
        "sale.sale", "search_read", [["reference", "=", reference]], 0, 1, None, ["shipments"]
    )
    ids = [int(i) for sale in sales for i in sale.get("shipments") or []]
    if not ids:
        return []
    rows = await client.model(
        "stock.shipment.out", "read", ids, ["number", "state", "effective_date", "outgoing_moves"]
    )
    move_ids = [int(m) for row in rows for m in row.get("outgoing_moves") or []]
    moves: dict[int, Any] = {}
    if move_ids:
        read = await client.model("stock.move", "read", move_ids, ["product.code", "quantity"])
        moves = {int(m["id"]): m for m in read}
    result = []
    for row in rows:
        lines = []
        for move_id in row.get("outgoing_moves") or []:
            move = moves.get(int(move_id)) or {}
            product = move.get("product.") or {}
            lines.append(ShipmentLine(product.get("code"), _decimal(move.get("quantity"))))
        result.append(
            Shipment(
                int(row["id"]),
                row.get("number"),
                str(row.get("state")),
                row.get("effective_date"),
                tuple(lines),
            )
        )
    return result


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)
