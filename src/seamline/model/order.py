"""Order: what a customer bought, for how much, shipped where, and where it stands.

Every amount in an order is in the order's `currency` (the shop's currency); a connector that
receives several currencies (Shopify's shop and presentment money) takes the shop's. An order
holding another currency anywhere is refused with the path of the offending amount.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar, Literal, Self, TypeAlias

from pydantic import Field, model_validator

from seamline.model.address import Address
from seamline.model.base import (
    AwareDatetime,
    CanonicalModel,
    Entity,
    ExactDecimal,
    Id,
    Quantity,
    Sku,
)
from seamline.model.customer import Customer
from seamline.model.money import CurrencyCode, Money, check_currency

__all__ = [
    "Discount",
    "DiscountKind",
    "FinancialStatus",
    "Order",
    "OrderFulfillmentStatus",
    "OrderLine",
    "OrderTotals",
    "ShippingLine",
    "TaxLine",
]

FinancialStatus: TypeAlias = Literal[
    "pending",
    "authorized",
    "partially_paid",
    "paid",
    "partially_refunded",
    "refunded",
    "voided",
    "expired",
    "unknown",
]
OrderFulfillmentStatus: TypeAlias = Literal["unfulfilled", "partial", "fulfilled", "restocked"]
DiscountKind: TypeAlias = Literal["fixed_amount", "percentage", "shipping", "other"]

_Rate = Annotated[ExactDecimal, Field(ge=0)]


class TaxLine(CanonicalModel):
    """One tax charged: on a line, on a shipping line, or summed for the whole order."""

    title: str = Field(examples=["BTW 21%"])
    """The tax's name as the source shows it."""

    rate: _Rate = Field(examples=["0.21"])
    """The rate as a fraction: "0.21" is 21 %."""

    amount: Money
    """The tax amount charged."""


class Discount(CanonicalModel):
    """A discount applied to the order: a code the customer entered, or an automatic one."""

    code: str | None = Field(None, examples=["SPRING10"])
    """The discount code as entered; null for an automatic discount."""

    title: str | None = Field(None, examples=["Spring sale"])
    """The discount's name, when the source gives one."""

    kind: DiscountKind = Field(examples=["percentage"])
    """How it is computed: `fixed_amount`, `percentage`, `shipping` (on shipping), `other`."""

    amount: Money
    """The amount it took off the order, positive."""


class OrderLine(CanonicalModel):
    """One line of an order: an item (or a custom charge such as a tip) and its quantity."""

    id: Id = Field(examples=["466157049"])
    """The line's id in the source system; refunds and fulfillments refer to it."""

    sku: Sku | None = Field(examples=["TS-BLK-M"])
    """The SKU; null for lines without one (custom items, tips, gift wrapping). Never ''."""

    variant_id: Id | None = Field(None, examples=["39072856"])
    """The ordered variant's id in the source system."""

    product_id: Id | None = Field(None, examples=["632910392"])
    """The ordered product's id in the source system."""

    title: str = Field(examples=["T-shirt"])
    """The product title as ordered."""

    variant_title: str | None = Field(None, examples=["Black / M"])
    """The variant's title as ordered."""

    quantity: Quantity = Field(examples=[2])
    """How many were ordered."""

    unit_price: Money
    """Price of one unit before discounts (tax included when the order's `taxes_included`)."""

    discount: Money
    """Total discount on this line (all units), positive; zero when none."""

    taxes: list[TaxLine] = Field(default_factory=list)
    """Taxes charged on this line."""

    requires_shipping: bool = Field(True, examples=[True])
    """Whether this line is shipped (false for digital goods, gift cards, tips)."""

    fulfillable_quantity: Quantity | None = Field(None, examples=[2])
    """How many are still to be fulfilled, when the source says."""

    properties: dict[str, str] = Field(default_factory=dict, examples=[{"Engraving": "Zoë"}])
    """Custom properties the customer entered for this line (name to value)."""


class ShippingLine(CanonicalModel):
    """One shipping method charged on the order."""

    id: Id | None = Field(None, examples=["369256396"])
    """The shipping line's id in the source system."""

    title: str = Field(examples=["Standard shipping"])
    """The shipping method's name as the customer saw it."""

    code: str | None = Field(None, examples=["standard"])
    """The shipping method's code in the source system."""

    carrier: str | None = Field(None, examples=["bpost"])
    """The carrier or service that provides the rate."""

    price: Money
    """What was charged for shipping, before shipping discounts."""

    taxes: list[TaxLine] = Field(default_factory=list)
    """Taxes charged on shipping."""


class OrderTotals(CanonicalModel):
    """The order's amounts, all in the order's currency."""

    subtotal: Money
    """Sum of the lines' `unit_price` times `quantity`, before any discount."""

    discounts: Money
    """Total of all discounts (line, order and shipping discounts), positive."""

    shipping: Money
    """Total shipping charged, before shipping discounts."""

    tax: Money
    """Total tax (included in the prices when the order's `taxes_included`)."""

    total: Money
    """What the customer pays: the grand total."""


class Order(Entity):
    """An order placed in a shop. Events: `order.created`, `order.updated`, `order.paid`,
    `order.cancelled`. Every amount in it is in `currency`."""

    entity: ClassVar[str] = "order"

    id: Id = Field(examples=["450789469"])
    """The order's id in the source system."""

    number: Id = Field(examples=["#1001"])
    """The order number as the shop shows it to the customer."""

    created_at: AwareDatetime = Field(examples=["2024-05-02T10:00:00+02:00"])
    """When the order was created in the source system."""

    updated_at: AwareDatetime = Field(examples=["2024-05-02T10:05:00+02:00"])
    """When the order was last changed; the version that stale-update checks compare."""

    processed_at: AwareDatetime | None = Field(None, examples=["2024-05-02T10:00:00+02:00"])
    """When the order was placed or imported (may be earlier than `created_at`)."""

    cancelled_at: AwareDatetime | None = Field(None, examples=["2024-05-03T09:00:00+02:00"])
    """When the order was cancelled; null while it is not."""

    cancel_reason: str | None = Field(None, examples=["customer"])
    """Why it was cancelled, as the source says (`customer`, `fraud`, `inventory`, ...)."""

    channel: str = Field(examples=["web"])
    """Where the order came from: `web`, `pos`, `draft`, an app's name, as the source says."""

    test: bool = Field(False, examples=[False])
    """True for a test order that must not reach real systems."""

    currency: CurrencyCode = Field(examples=["EUR"])
    """The shop currency: every Money in this order is in it."""

    presentment_currency: CurrencyCode | None = Field(None, examples=["USD"])
    """The currency the customer saw at checkout, when different from `currency`."""

    taxes_included: bool = Field(False, examples=[True])
    """True when line and shipping prices include tax (common in the EU)."""

    email: str | None = Field(None, examples=["zoe@example.com"])
    """Email address given with the order."""

    phone: str | None = Field(None, examples=["+32470123456"])
    """Phone number given with the order."""

    customer: Customer | None = None
    """The customer who placed the order; null for a guest checkout without one."""

    billing_address: Address | None = None
    """The billing address."""

    shipping_address: Address | None = None
    """The address to ship to; null when nothing is shipped."""

    lines: list[OrderLine]
    """The order's lines, in the order the source lists them."""

    shipping_lines: list[ShippingLine] = Field(default_factory=list)
    """The shipping methods charged."""

    discounts: list[Discount] = Field(default_factory=list)
    """The discounts applied."""

    taxes: list[TaxLine] = Field(default_factory=list)
    """The order's taxes, summed per tax over lines and shipping."""

    totals: OrderTotals
    """The order's amounts: subtotal, discounts, shipping, tax, total."""

    financial_status: FinancialStatus = Field(examples=["paid"])
    """Where payment stands."""

    fulfillment_status: OrderFulfillmentStatus = Field(examples=["unfulfilled"])
    """Where shipping stands."""

    tags: list[str] = Field(default_factory=list, examples=[["gift", "priority"]])
    """The source system's tags on the order."""

    note: str | None = Field(None, examples=["Please leave at the back door"])
    """The customer's note on the order."""

    attributes: dict[str, str] = Field(default_factory=dict, examples=[{"gift_wrap": "yes"}])
    """Extra order attributes from checkout (name to value)."""

    @model_validator(mode="after")
    def _one_currency(self) -> Self:
        check_currency(self.currency, self._amounts())
        return self

    def _amounts(self) -> Iterator[tuple[str, Money | None]]:
        for name in OrderTotals.model_fields:
            yield f"totals.{name}", getattr(self.totals, name)
        for i, line in enumerate(self.lines):
            yield f"lines.{i}.unit_price", line.unit_price
            yield f"lines.{i}.discount", line.discount
            yield from _taxes(line.taxes, f"lines.{i}.taxes")
        for i, shipping in enumerate(self.shipping_lines):
            yield f"shipping_lines.{i}.price", shipping.price
            yield from _taxes(shipping.taxes, f"shipping_lines.{i}.taxes")
        for i, discount in enumerate(self.discounts):
            yield f"discounts.{i}.amount", discount.amount
        yield from _taxes(self.taxes, "taxes")


def _taxes(taxes: list[TaxLine], path: str) -> Iterator[tuple[str, Money]]:
    for i, tax in enumerate(taxes):
        yield f"{path}.{i}.amount", tax.amount
