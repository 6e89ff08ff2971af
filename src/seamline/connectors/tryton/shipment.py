"""A parcel the warehouse shipped, recorded on the sale's customer shipment in Tryton.

Tryton makes one customer shipment (`stock.shipment.out`, state `waiting`) when a sale is
processed. A 3PL ships it in one or more parcels, each with a tracking number. For a parcel:

1. The shipments of the sale whose `reference` is the tracking number are this parcel's: if
   there are some and all are done, the parcel was recorded before (a retry) and nothing
   happens; if some are half-way (an earlier attempt stopped), they are moved on.
2. Otherwise the parcel's quantities are allocated to the open shipments of the sale (oldest
   first) and written, with the tracking number as `reference` and the ship date as
   `effective_date`, in ONE write per shipment (one transaction in Tryton): the inventory
   moves get the shipped quantities, those of SKUs not in the parcel 0.
3. Each of those shipments is moved on: assigned (forced: the goods have left, whatever
   Tryton's stock says), picked, packed, done. Tryton drops the zero moves at `pick`, and
   when the shipment is done the sale makes a new shipment for what is still to ship (a back
   order), which the next parcel fills. A short-shipped order keeps that back order open in
   Tryton: it is what the customer is still owed.

A parcel with a SKU or quantity the open shipments do not have is refused (PermanentError
naming them): the warehouse shipped something the ERP did not expect, and a person decides.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from seamline.connectors.tryton.client import TrytonClient
from seamline.errors import ContractError, PermanentError

OPEN = ("draft", "waiting", "assigned")
"""Shipment states a parcel can still be written into."""
NEXT = {"waiting": "assign_force", "assigned": "pick", "picked": "pack", "packed": "do"}
"""The button that moves a shipment on from each state, to `done`."""
SHIPPED = ("packed", "shipped", "done")
"""States in which the goods have left (or are about to) the warehouse."""


@dataclass(frozen=True, slots=True)
class Parcel:
    """What one tracking number carried: quantity per SKU."""

    tracking: str
    quantities: Mapping[str, Decimal]
    shipped_on: datetime.date | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Parcel:
        """`{tracking_number, lines: [{sku, quantity}], shipped_at?}` (repeated SKUs add up)."""
        tracking = str(body.get("tracking_number") or "").strip()
        if not tracking:
            raise ContractError("ship_sale needs 'tracking_number' in the mapped body")
        lines = body.get("lines")
        if not isinstance(lines, list) or not lines:
            raise ContractError("ship_sale needs 'lines': a list of {sku, quantity}")
        quantities: dict[str, Decimal] = {}
        for n, line in enumerate(lines):
            sku = str(line.get("sku") or "").strip() if isinstance(line, Mapping) else ""
            if not sku:
                raise ContractError(f"ship_sale: lines.{n} has no 'sku'")
            try:
                quantity = Decimal(str(line.get("quantity")))
            except ArithmeticError:
                raise ContractError(f"ship_sale: lines.{n}.quantity is not a number") from None
            if not quantity.is_finite() or quantity <= 0:
                raise ContractError(f"ship_sale: lines.{n}.quantity must be above 0")
            quantities[sku] = quantities.get(sku, Decimal(0)) + quantity
        return cls(tracking, quantities, _day(body.get("shipped_at")))


async def ship(client: TrytonClient, sale: int, reference: str, parcel: Parcel) -> list[int]:
    """Record `parcel` on the sale's shipments (see the module's docstring); their ids."""
    shipments = await _shipments(client, sale)
    mine: list[Mapping[str, Any]] = [s for s in shipments if s["reference"] == parcel.tracking]
    if not mine:
        mine = await _write(client, reference, parcel, [s for s in shipments if s["state"] in OPEN])
    for shipment in mine:
        state = str(shipment["state"])
        while state in NEXT:
            await client.model("stock.shipment.out", NEXT[state], [shipment["id"]], write=True)
            state = await _state(client, int(shipment["id"]))
        if state != "done":
            raise PermanentError(
                f"{client.name}: shipment {shipment['number']} of sale {reference} is {state} "
                f"in Tryton; parcel {parcel.tracking} cannot be recorded on it"
            )
    return [int(s["id"]) for s in mine]


async def _write(
    client: TrytonClient, reference: str, parcel: Parcel, open_: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    moves = await _moves(client, [m for s in open_ for m in s["inventory_moves"]])
    wanted = dict(parcel.quantities)
    plan: list[tuple[Mapping[str, Any], list[tuple[int, Decimal]]]] = []
    for shipment in open_:
        writes = []
        for move_id in shipment["inventory_moves"]:
            sku, has = moves[int(move_id)]
            take = min(has, wanted.get(sku or "", Decimal(0)))
            if take:
                wanted[sku or ""] -= take
            writes.append((int(move_id), take))
        if any(take for _, take in writes):
            plan.append((shipment, writes))
    missing = {sku: left for sku, left in wanted.items() if left > 0}
    if missing:
        what = ", ".join(f"{left.normalize()} x {sku}" for sku, left in sorted(missing.items()))
        raise PermanentError(
            f"{client.name}: parcel {parcel.tracking} of sale {reference} has {what} more than "
            "the sale's open shipments in Tryton (another SKU, too many, or shipped already)"
        )
    for shipment, writes in plan:
        values: dict[str, Any] = {
            "reference": parcel.tracking,
            "inventory_moves": [
                ["write", [move_id], {"quantity": float(take)}] for move_id, take in writes
            ],
        }
        if parcel.shipped_on is not None:
            values["effective_date"] = parcel.shipped_on
        if shipment["state"] == "assigned":
            # Assigned moves cannot be rewritten; back to waiting first (Tryton's own button).
            await client.model("stock.shipment.out", "wait", [shipment["id"]], write=True)
        await client.model("stock.shipment.out", "write", [shipment["id"]], values, write=True)
    return [{**shipment, "state": "waiting"} for shipment, _ in plan]


async def _shipments(client: TrytonClient, sale: int) -> list[dict[str, Any]]:
    rows = await client.model("sale.sale", "read", [sale], ["shipments"])
    ids = [int(i) for i in rows[0].get("shipments") or []] if rows else []
    if not ids:
        return []
    found = await client.model(
        "stock.shipment.out", "read", ids, ["number", "state", "reference", "inventory_moves"]
    )
    return sorted(found, key=lambda s: int(s["id"]))


async def _moves(client: TrytonClient, ids: Sequence[int]) -> dict[int, tuple[str | None, Decimal]]:
    if not ids:
        return {}
    rows = await client.model("stock.move", "read", list(ids), ["product.code", "quantity"])
    return {
        int(m["id"]): ((m.get("product.") or {}).get("code"), Decimal(str(m["quantity"] or 0)))
        for m in rows
    }


async def _state(client: TrytonClient, shipment: int) -> str:
    rows = await client.model("stock.shipment.out", "read", [shipment], ["state"])
    return str(rows[0]["state"])


def _day(value: Any) -> datetime.date | None:
    if value in (None, ""):
        return None
    try:
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        raise ContractError(f"ship_sale: shipped_at is not an ISO 8601 time: {value!r}") from None
