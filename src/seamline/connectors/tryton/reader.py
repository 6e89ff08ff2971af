"""Reading a Tryton: stock per warehouse and SKU, prices, and the shipments of a sale.

For checks and flows that compare what the ERP holds with what a shop shows. Each function
takes a logged-in (or lazily logging-in) `TrytonClient` and only reads; `TrytonReader` lists
whole entity sets for checks (`connectors.base.Reader`).

| entity  | key      | values                                                            |
|---------|----------|-------------------------------------------------------------------|
| `stock` | `(sku,)` | `available`: forecast at the warehouse (on hand minus what waiting |
|         |          | shipments will take), `on_hand`: quantity there now               |
| `price` | `(sku,)` | `price`: the product's list price (`list_price_used`), `currency`: |
|         |          | the company's                                                     |

Products without a code (SKU) are not listed.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from seamline.checks.compare import Row
from seamline.connectors.tryton.client import TrytonClient
from seamline.connectors.tryton.connector import TrytonOptions
from seamline.errors import ContractError, PermanentError

PAGE = 500


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


class TrytonReader:
    """Whole entity sets of one Tryton, page by page in product id order."""

    entities: Sequence[str] = ("stock", "price")

    def __init__(self, name: str, options: TrytonOptions) -> None:
        self.client = TrytonClient(name, options)

    async def close(self) -> None:
        await self.client.close()

    async def pages(self, entity: str) -> AsyncIterator[list[Row]]:
        if entity not in self.entities:
            raise ContractError(
                f"{self.client.name}: a Tryton lists {', '.join(self.entities)}, not {entity!r}"
            )
        context: dict[str, Any] = {}
        fields = ["code"]
        currency = ""
        if entity == "stock":
            code = self.client.options.warehouse
            context["locations"] = [await warehouse_id(self.client, code)]
            fields += ["quantity", "forecast_quantity"]
        else:
            fields.append("list_price_used")
            if self.client.company is None:
                await self.client.login()  # which learns the user's company
            (company,) = await self.client.model(
                "company.company", "read", [self.client.company], ["currency.code"]
            )
            currency = str((company.get("currency.") or {}).get("code") or "")
        last = 0
        while True:
            rows = await self.client.model(
                "product.product",
                "search_read",
                [["id", ">", last], ["code", "!=", None]],
                0,
                PAGE,
                [["id", "ASC"]],
                fields,
                context=context,
            )
            if not rows:
                return
            last = int(rows[-1]["id"])
            if entity == "stock":
                yield [
                    Row(
                        (str(r["code"]),),
                        {
                            "available": _whole(r.get("forecast_quantity")),
                            "on_hand": _whole(r.get("quantity")),
                        },
                    )
                    for r in rows
                ]
            else:
                yield [
                    Row(
                        (str(r["code"]),),
                        {"price": str(r["list_price_used"]), "currency": currency},
                    )
                    for r in rows
                    if r.get("list_price_used") is not None
                ]
            if len(rows) < PAGE:
                return


def _whole(value: Any) -> int | str:
    """Units as an integer when whole (they are, for goods counted in units), else text."""
    number = _decimal(value)
    return int(number) if number == number.to_integral_value() else str(number)


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)
