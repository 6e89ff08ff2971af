"""The `shopify` kind: what a project's `systems/NAME.yaml` says about a shop, and the
operations flows may call on it.

```yaml
kind: shopify
connection:
  shop: acme.myshopify.com
  api_version: "2026-07"            # pinned; Shopify answers with the version it really used
  access_token: ${SHOPIFY_TOKEN}     # Admin API token (custom app)
  secrets: ["${SHOPIFY_SECRET}"]     # the app's client secret; add the old one while rotating
  poll: {interval: 60s}              # catch-up polling of orders and products (optional)
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from seamline.connectors.base import Poller, Reader, Sink, Source
from seamline.settings import Duration, SecretRef, Strict

API_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
SHOP = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")


class PollOptions(Strict):
    """Catch-up polling: finds what webhooks missed (dropped, or sent while the hub was away)."""

    interval: Duration = Field(default=60.0, gt=0)
    orders: bool = True
    products: bool = True
    page_size: int = Field(default=100, ge=1, le=250)
    overlap: Duration = Field(default=300.0, ge=0)
    """Each poll looks back this far before the last change it saw: clocks and commits race."""
    start: Duration = Field(default=86400.0, ge=0)
    """How far back the very first poll looks."""


class ShopifyOptions(Strict):
    """`connection:` of a `shopify` system."""

    model_config = Strict.model_config | {"arbitrary_types_allowed": True}

    shop: str
    """The shop's permanent domain, `NAME.myshopify.com`."""
    base_url: str | None = None
    """Where the Admin API is; defaults to `https://{shop}` (the simulator sets its own)."""
    api_version: str = "2026-07"
    access_token: SecretRef | None = None
    secrets: list[SecretRef] = Field(default_factory=list)
    """Webhook signing keys: the app's client secret, and the previous one during a rotation."""
    timeout: Duration = 10.0
    poll: PollOptions | None = None
    location_id: str | None = None
    """The location operations use when a flow gives none (fulfillments, inventory)."""
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    """The shop's currency: product webhooks carry prices without it."""

    @field_validator("shop")
    @classmethod
    def _shop(cls, value: str) -> str:
        if not SHOP.match(value):
            raise ValueError("shop is the permanent domain, like acme.myshopify.com")
        return value

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not API_VERSION.match(value):
            raise ValueError(
                "api_version is a quarterly release like 2026-07 (January, April, July or "
                "October) or 'unstable'"
            )
        return value

    @model_validator(mode="after")
    def _url(self) -> ShopifyOptions:
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return self

    @property
    def url(self) -> str:
        return (self.base_url or f"https://{self.shop}").rstrip("/")


# --- operations: `target.options` of a flow whose target is a shop ------------------------


class SetInventory(Strict):
    """Set the available quantity of an inventory item at a location (an absolute value, so a
    repeat changes nothing). Body: `{inventory_item_id | sku, location_id?, available}`."""


class CreateFulfillment(Strict):
    """Fulfil an order's open lines with tracking. Body: `{order_id, tracking_number,
    tracking_company?, tracking_url?, lines?: [{sku | line_id, quantity}]}`; without `lines`,
    everything still open. A fulfillment with the same tracking number already on the order
    means it was done: nothing is sent again."""

    notify_customer: bool = False


class AddTags(Strict):
    """Add tags to an order (adding a tag it has is a no-op). Body: `{order_id, tags}`."""


class SetNote(Strict):
    """Replace an order's note. Body: `{order_id, note}`."""


class CancelOrder(Strict):
    """Cancel an order, unless it is cancelled already. Body: `{order_id, reason?}`."""

    reason: Literal["customer", "declined", "fraud", "inventory", "staff", "other"] = "other"
    restock: bool = True
    refund: bool = False
    notify_customer: bool = False


OPERATIONS: Mapping[str, type[BaseModel]] = {
    "set_inventory": SetInventory,
    "create_fulfillment": CreateFulfillment,
    "add_tags": AddTags,
    "set_note": SetNote,
    "cancel_order": CancelOrder,
}

TOPICS: Mapping[str, str] = {
    "orders/create": "order.created",
    "orders/updated": "order.updated",
    "orders/paid": "order.paid",
    "orders/cancelled": "order.cancelled",
    "refunds/create": "refund.created",
    "fulfillments/create": "fulfillment.created",
    "products/create": "product.created",
    "products/update": "product.updated",
    "inventory_levels/update": "inventory.changed",
    "customers/create": "customer.created",
    "customers/update": "customer.updated",
}
"""Webhook topics the connector decodes, and the canonical event each becomes."""

ENUMERATIONS: Mapping[str, Sequence[str]] = {
    "financial_status": (
        "pending",
        "authorized",
        "partially_paid",
        "paid",
        "partially_refunded",
        "refunded",
        "voided",
        "expired",
        "unknown",
    ),
    "fulfillment_status": ("unfulfilled", "partial", "fulfilled", "restocked"),
    "cancel_reason": ("customer", "declined", "fraud", "inventory", "staff", "other"),
}
"""Closed value sets in the canonical events this connector produces (value maps must cover)."""


class ShopifyConnector:
    kind: ClassVar[str] = "shopify"
    options: ClassVar[type[BaseModel]] = ShopifyOptions
    operations: ClassVar[Mapping[str, type[BaseModel]]] = OPERATIONS
    # a standard shop restores 100 cost points/s
    default_budget: ClassVar[Mapping[str, Any]] = {"concurrency": 8}

    def enumerations(self, options: BaseModel) -> Mapping[str, Sequence[str]]:
        return ENUMERATIONS

    def source(self, name: str, options: BaseModel) -> Source:
        from seamline.connectors.shopify.source import ShopifySource

        assert isinstance(options, ShopifyOptions)
        return ShopifySource(name, options)

    def sink(self, name: str, options: BaseModel) -> Sink:
        from seamline.connectors.shopify.sink import ShopifySink

        assert isinstance(options, ShopifyOptions)
        return ShopifySink(name, options)

    def poller(self, name: str, options: BaseModel) -> Poller | None:
        from seamline.connectors.shopify.poller import ShopifyPoller

        assert isinstance(options, ShopifyOptions)
        return ShopifyPoller(name, options) if options.poll is not None else None

    def reader(self, name: str, options: BaseModel) -> Reader | None:
        from seamline.connectors.shopify.reader import ShopifyReader

        assert isinstance(options, ShopifyOptions)
        return ShopifyReader(name, options)

    def check(
        self, options: BaseModel, *, role: Literal["source", "target"]
    ) -> list[tuple[str, str]]:
        assert isinstance(options, ShopifyOptions)
        if role == "source" and not options.secrets:
            return [
                (
                    "which has no webhook secrets",
                    'add connection.secrets: ["${VARIABLE}"] with the app\'s client secret',
                )
            ]
        if role == "target" and options.access_token is None:
            return [
                (
                    "which has no access token",
                    "add connection.access_token: ${VARIABLE} with the Admin API token",
                )
            ]
        return []
