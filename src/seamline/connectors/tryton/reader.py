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
| `orders`| `(reference,)` | the sales dated within the window: `lines` (product code and    |
|         |          | quantity), `net` (untaxed amount), `currency`, `cancelled` (cancelled,|
|         |          | or every shipment of it cancelled: called off after processing)   |

| `customers` | `customer_key` | parties with an e-mail or phone: `name`, `email`, `phone` |

Products without a code (SKU) are not listed. A sale without a reference is keyed
`sale <number>`: typed into the ERP by hand, no shop order can match it.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from seamline.checks.compare import Row
from seamline.checks.entity import customer_row, lines_text, money_text
from seamline.connectors.base import Window
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

    entities: Sequence[str] = ("stock", "price", "orders", "customers")

    def __init__(self, name: str, options: TrytonOptions) -> None:
        self.client = TrytonClient(name, options)

    async def close(self) -> None:
        await self.client.close()

    async def pages(self, entity: str, window: Window | None = None) -> AsyncIterator[list[Row]]:
        if entity not in self.entities:
            raise ContractError(
                f"{self.client.name}: a Tryton lists {', '.join(self.entities)}, not {entity!r}"
            )
        if entity == "orders":
            async for page in self._orders(window):
                yield page
            return
        if entity == "customers":
            async for page in self._customers():
                yield page
            return
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

    async def _orders(self, window: Window | None) -> AsyncIterator[list[Row]]:
        if window is None:
            raise ContractError(f"{self.client.name}: reading orders needs a window of days")
        last = 0
        while True:
            sales = await self.client.model(
                "sale.sale",
                "search_read",
                [
                    ["id", ">", last],
                    ["sale_date", ">=", window.first],
                    ["sale_date", "<=", window.last],
                ],
                0,
                PAGE,
                [["id", "ASC"]],
                ["reference", "number", "state", "untaxed_amount", "currency.code", "lines",
                 "shipments"],
            )  # fmt: skip
            if not sales:
                return
            last = int(sales[-1]["id"])
            line_ids = [int(i) for sale in sales for i in sale.get("lines") or []]
            shipment_ids = [int(i) for sale in sales for i in sale.get("shipments") or []]
            lines = {
                int(r["id"]): r
                for r in await self._read(
                    "sale.line", line_ids, ["type", "product.code", "quantity"]
                )
            }
            shipped = {
                int(r["id"]): r["state"]
                for r in await self._read("stock.shipment.out", shipment_ids, ["state"])
            }
            rows = []
            for sale in sales:
                own = [lines[int(i)] for i in sale.get("lines") or []]
                states = [shipped[int(i)] for i in sale.get("shipments") or []]
                called_off = bool(states) and all(state == "cancelled" for state in states)
                rows.append(
                    Row(
                        (str(sale.get("reference") or f"sale {sale.get('number')}"),),
                        {
                            "lines": lines_text(
                                ((r.get("product.") or {}).get("code"), r.get("quantity") or 0)
                                for r in own
                                if r.get("type") == "line"
                            ),
                            "net": money_text(sale.get("untaxed_amount") or 0),
                            "currency": (sale.get("currency.") or {}).get("code"),
                            "cancelled": sale["state"] == "cancelled" or called_off,
                        },
                    )
                )
            yield rows
            if len(sales) < PAGE:
                return

    async def _customers(self) -> AsyncIterator[list[Row]]:
        last = 0
        while True:
            parties = await self.client.model(
                "party.party",
                "search_read",
                [["id", ">", last]],
                0,
                PAGE,
                [["id", "ASC"]],
                ["name", "contact_mechanisms"],
            )
            if not parties:
                return
            last = int(parties[-1]["id"])
            ids = [int(i) for p in parties for i in p.get("contact_mechanisms") or []]
            contacts = {
                int(c["id"]): c
                for c in await self._read("party.contact_mechanism", ids, ["type", "value"])
            }
            rows = []
            for party in parties:
                own = [contacts[int(i)] for i in party.get("contact_mechanisms") or []]
                email = next((c["value"] for c in own if c["type"] == "email"), None)
                phone = next((c["value"] for c in own if c["type"] in ("phone", "mobile")), None)
                if not email and not phone:
                    continue  # the company itself, suppliers without contacts: not customers
                rows.append(customer_row(email, phone, str(party.get("name") or "")))
            yield rows
            if len(parties) < PAGE:
                return

    async def _read(self, model: str, ids: list[int], fields: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        rows: list[dict[str, Any]] = await self.client.model(model, "read", ids, fields)
        return rows


def _whole(value: Any) -> int | str:
    """Units as an integer when whole (they are, for goods counted in units), else text."""
    number = _decimal(value)
    return int(number) if number == number.to_integral_value() else str(number)


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)
