"""The canonical events: `entity.verb` names, each carrying one entity.

A connector decodes a vendor payload into `event_model(name)` and a flow subscribes by name. The
verb says what happened; the data is always the entity's whole current state, never a diff.
"""

from __future__ import annotations

import difflib
from typing import Final

from seamline.errors import ContractError
from seamline.model.base import Entity
from seamline.model.catalog import Product
from seamline.model.customer import Customer
from seamline.model.fulfillment import Fulfillment
from seamline.model.inventory import InventoryLevel
from seamline.model.order import Order
from seamline.model.refund import Refund

__all__ = ["EVENTS", "UnknownEventError", "event_model"]

EVENTS: Final[dict[str, type[Entity]]] = {
    "order.created": Order,
    "order.updated": Order,
    "order.paid": Order,
    "order.cancelled": Order,
    "refund.created": Refund,
    "fulfillment.created": Fulfillment,
    "product.created": Product,
    "product.updated": Product,
    "inventory.changed": InventoryLevel,
    "customer.created": Customer,
    "customer.updated": Customer,
}
"""Every canonical event name and the entity its data is."""


class UnknownEventError(ContractError, KeyError):
    """An event name that is not in `EVENTS`; the message lists the known ones."""

    def __init__(self, name: str) -> None:
        self.name = name
        close = difflib.get_close_matches(name, EVENTS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(f"unknown event {name!r}{hint}; known events: {', '.join(sorted(EVENTS))}")

    def __str__(self) -> str:
        # KeyError would print the message quoted, as if it were the missing key itself.
        return str(self.args[0])


def event_model(name: str) -> type[Entity]:
    """The entity an event carries: `event_model("order.paid") is Order`.

    Raises UnknownEventError (a KeyError and a ContractError) for a name not in `EVENTS`.
    """
    try:
        return EVENTS[name]
    except KeyError:
        raise UnknownEventError(name) from None
