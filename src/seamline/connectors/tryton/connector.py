"""The `tryton` kind: what a project's `systems/NAME.yaml` says about a Tryton ERP, and the
operations flows may call on it.

```yaml
kind: tryton
connection:
  url: http://127.0.0.1:8000
  database: shop
  username: seamline
  password: ${TRYTON_PASSWORD}
  warehouse: WH                 # code of the stock.location (warehouse) sales ship from
budget:                         # Tryton confirms about 2 sales/s, slower beyond 2 clients
  rate: 2
  concurrency: 2
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from seamline.connectors.base import Poller, Reader, Sink, Source
from seamline.settings import Duration, SecretRef, Strict

RECOMMENDED_RATE = 2.0
"""Sales Tryton confirms per second on a 2-core machine; the system's `budget.rate`."""
RECOMMENDED_CONCURRENCY = 2
"""Beyond 2 concurrent clients a SQLite/GIL-bound trytond gets slower, not faster."""


class TrytonOptions(Strict):
    """`connection:` of a `tryton` system."""

    model_config = Strict.model_config | {"arbitrary_types_allowed": True}

    url: str
    """Where trytond listens, `http(s)://host:port` (the database is a path under it)."""
    database: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: SecretRef | None = None
    company: int | None = Field(default=None, ge=1)
    """The company id put in every call's context; default: the user's current company."""
    warehouse: str = "WH"
    """Code of the warehouse (`stock.location`) sales ship from and stock is read at."""
    timeout: Duration = Field(default=30.0, gt=0)
    """Per request. Confirming a sale takes 0.4-0.8 s on an idle server, seconds under load."""
    language: str = "en"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value.rstrip("/")


# --- operations: `target.options` of a flow whose target is a Tryton ------------------------


class UpsertCustomer(Strict):
    """A party found by email (else by name), created if missing, with the address added if
    Tryton has no such one. Body: a canonical Customer (`email`, names, `default_address` or
    `addresses`)."""


class UpsertProduct(Strict):
    """A product found by SKU (`product.product.code`), created if missing, its name and list
    price updated otherwise. Body: `{sku, name, list_price: Money | decimal string}`."""

    category: str = "Goods"
    """Name of the account category new products go in (it gives their revenue account)."""


class CreateSale(Strict):
    """A sale from a canonical Order, found by `reference` (the shop's order `number`) before
    anything is created, then quoted and confirmed. Body: a canonical Order."""

    confirm: bool = True
    """Quote and confirm (which also makes the shipment and the draft invoice); else quote."""
    create_products: bool = False
    """Create a product for an unknown SKU from the line's title and price, instead of
    refusing the order."""
    category: str = "Goods"


class CancelSale(Strict):
    """Cancel the sale with this reference, unless it is cancelled already. Body:
    `{reference}` (or a canonical Order: its `number`). A processed sale is called off by
    cancelling its shipment and invoice and ignoring them (it ends `done`, nothing shipped or
    invoiced); one with goods shipped or an invoice posted is refused (PermanentError). No
    sale with the reference is a TransientError: the order may still be on its way."""


class ShipSale(Strict):
    """Record a parcel the warehouse shipped: the sale's customer shipment(s) done with the
    parcel's quantities, the tracking number as their reference; what is left to ship stays
    open in Tryton as a back order. Body: `{reference, tracking_number, shipped_at?, lines:
    [{sku, quantity}]}`. Repeating a parcel (same tracking number) changes nothing."""


OPERATIONS: Mapping[str, type[BaseModel]] = {
    "upsert_customer": UpsertCustomer,
    "upsert_product": UpsertProduct,
    "create_sale": CreateSale,
    "cancel_sale": CancelSale,
    "ship_sale": ShipSale,
}


class TrytonConnector:
    kind: ClassVar[str] = "tryton"
    options: ClassVar[type[BaseModel]] = TrytonOptions
    operations: ClassVar[Mapping[str, type[BaseModel]]] = OPERATIONS
    default_budget: ClassVar[Mapping[str, Any]] = {
        "rate": RECOMMENDED_RATE,
        "concurrency": RECOMMENDED_CONCURRENCY,
    }

    def enumerations(self, options: BaseModel) -> Mapping[str, Sequence[str]]:
        return {}

    def source(self, name: str, options: BaseModel) -> Source:
        raise NotImplementedError("a tryton system is a target only: it sends no webhooks")

    def sink(self, name: str, options: BaseModel) -> Sink:
        from seamline.connectors.tryton.sink import TrytonSink

        assert isinstance(options, TrytonOptions)
        return TrytonSink(name, options)

    def poller(self, name: str, options: BaseModel) -> Poller | None:
        return None

    def reader(self, name: str, options: BaseModel) -> Reader | None:
        from seamline.connectors.tryton.reader import TrytonReader

        assert isinstance(options, TrytonOptions)
        return TrytonReader(name, options)

    def check(
        self, options: BaseModel, *, role: Literal["source", "target"]
    ) -> list[tuple[str, str]]:
        assert isinstance(options, TrytonOptions)
        if role == "source":
            return [
                (
                    "which is a Tryton ERP and sends no events",
                    "use it as a flow's target; read its stock and shipments with a check",
                )
            ]
        if options.password is None:
            return [
                (
                    "which has no password",
                    "add connection.password: ${VARIABLE} with the Tryton user's password",
                )
            ]
        return []
