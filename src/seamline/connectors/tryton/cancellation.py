"""Cancelling a sale that Tryton is already processing, the way a Tryton user does it.

Tryton's `cancel` button exists only for draft and quotation sales (a confirmed one goes back
to draft first). Once processed, a sale has a customer shipment and a draft invoice, and
Tryton's own procedure to call it off is: cancel the shipment, cancel the invoice, then answer
the sale's two exceptions ("handle shipment exception", "handle invoice exception") by
ignoring the cancelled moves and invoice. The sale is then `done` with nothing shipped and
nothing invoiced; `cancelled_in_effect` tells such a sale from one that was delivered.

What is refused (PermanentError, for a person to decide in Tryton): a sale with goods on
their way or delivered (a shipment packed, shipped or done: that needs a return) or with a
posted or paid invoice (that needs a credit note).

Each step looks at the state first, so a retry after any step finishes the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seamline.connectors.tryton.client import TrytonClient
from seamline.connectors.tryton.shipment import SHIPPED
from seamline.errors import PermanentError

CANCELLABLE_INVOICES = ("draft", "validated")
BOOKED_INVOICES = ("posted", "paid")


async def cancel_processing(client: TrytonClient, sale: int, reference: str) -> None:
    """Call off a processing (or done-but-untouched) sale: see the module's docstring."""
    shipments, invoices = await _documents(client, sale)
    gone = [s for s in shipments if s["state"] in SHIPPED]
    if gone:
        raise PermanentError(
            f"{client.name}: sale {reference} has shipped goods (shipment "
            f"{gone[0]['number']} is {gone[0]['state']}): Tryton needs a customer return, "
            "not a cancellation"
        )
    booked = [i for i in invoices if i["state"] in BOOKED_INVOICES]
    if booked:
        raise PermanentError(
            f"{client.name}: sale {reference} has invoice {booked[0]['number']} "
            f"{booked[0]['state']}: Tryton needs a credit note, not a cancellation"
        )
    open_shipments = [int(s["id"]) for s in shipments if s["state"] != "cancelled"]
    if open_shipments:
        await client.model("stock.shipment.out", "cancel", open_shipments, write=True)
    open_invoices = [int(i["id"]) for i in invoices if i["state"] in CANCELLABLE_INVOICES]
    if open_invoices:
        await client.model("account.invoice", "cancel", open_invoices, write=True)
    states = await _sale(client, sale, ["shipment_state", "invoice_state"])
    if states["shipment_state"] == "exception":
        await _ignore(client, "sale.handle.shipment.exception", sale, "moves")
    if states["invoice_state"] == "exception":
        await _ignore(client, "sale.handle.invoice.exception", sale, "invoices")


async def cancelled_in_effect(client: TrytonClient, sale: int) -> bool:
    """Nothing goes out: a sale Tryton cancelled (before it was processed), or a processed
    one whose shipments and invoices are all cancelled. Either way, no document is open."""
    state = (await _sale(client, sale, ["state"]))["state"]
    shipments, invoices = await _documents(client, sale)
    if not all(d["state"] == "cancelled" for d in [*shipments, *invoices]):
        return False
    return state == "cancelled" or bool(shipments)


async def _documents(
    client: TrytonClient, sale: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    row = await _sale(client, sale, ["shipments", "invoices"])
    shipments: list[dict[str, Any]] = []
    invoices: list[dict[str, Any]] = []
    if row.get("shipments"):
        shipments = await client.model(
            "stock.shipment.out", "read", list(row["shipments"]), ["number", "state"]
        )
    if row.get("invoices"):
        invoices = await client.model(
            "account.invoice", "read", list(row["invoices"]), ["number", "state"]
        )
    return shipments, invoices


async def _sale(client: TrytonClient, sale: int, fields: Sequence[str]) -> Mapping[str, Any]:
    rows = await client.model("sale.sale", "read", [sale], list(fields))
    if not rows:
        raise PermanentError(f"{client.name}: sale {sale} is gone from Tryton")
    return dict(rows[0])


async def _ignore(client: TrytonClient, wizard: str, sale: int, what: str) -> None:
    """Run one of the sale's exception wizards, ignoring every cancelled `what` it offers."""
    context = {
        "company": client.company,
        "active_model": "sale.sale",
        "active_id": sale,
        "active_ids": [sale],
    }
    session, start, _end = await client.call(f"wizard.{wizard}.create", context=context)
    try:
        shown = await client.call(f"wizard.{wizard}.execute", session, {}, start, context=context)
        offered = list(shown["view"]["defaults"].get(f"domain_{what}") or [])
        answer = {
            start: {
                f"domain_{what}": offered,
                f"ignore_{what}": offered,
                f"recreate_{what}": [],
            }
        }
        await client.call(
            f"wizard.{wizard}.execute", session, answer, "handle", context=context, write=True
        )
    finally:
        await client.call(f"wizard.{wizard}.delete", session, context=context)
