"""The canonical commerce model: what connectors decode vendor data into, and mappings read.

A connector builds models with `Order.model_validate(data)` and hands them on as
`order.model_dump(mode="json")`; `docs/model.md` is the page a mapping author reads.

    from seamline.model import EVENTS, Money, Order, OrderLine, event_model

Versioning: `MODEL_VERSION` changes when a field is removed, renamed or changes meaning; adding
an optional field keeps it. The JSON Schemas (`schema/<entity>.json`) carry it in their `$id`.
"""

from __future__ import annotations

from seamline.model.address import Address, CountryCode
from seamline.model.base import MODEL_VERSION, CanonicalModel, Entity
from seamline.model.catalog import Price, Product, ProductStatus, Variant, WeightUnit
from seamline.model.customer import Customer
from seamline.model.event import EVENTS, UnknownEventError, event_model
from seamline.model.fulfillment import Fulfillment, FulfillmentLine, FulfillmentStatus, Shipment
from seamline.model.inventory import InventoryLevel
from seamline.model.money import CurrencyCode, CurrencyMismatchError, Money
from seamline.model.order import (
    Discount,
    DiscountKind,
    FinancialStatus,
    Order,
    OrderFulfillmentStatus,
    OrderLine,
    OrderTotals,
    ShippingLine,
    TaxLine,
)
from seamline.model.refund import Refund, RefundLine

__all__ = [
    "EVENTS",
    "MODEL_VERSION",
    "Address",
    "CanonicalModel",
    "CountryCode",
    "CurrencyCode",
    "CurrencyMismatchError",
    "Customer",
    "Discount",
    "DiscountKind",
    "Entity",
    "FinancialStatus",
    "Fulfillment",
    "FulfillmentLine",
    "FulfillmentStatus",
    "InventoryLevel",
    "Money",
    "Order",
    "OrderFulfillmentStatus",
    "OrderLine",
    "OrderTotals",
    "Price",
    "Product",
    "ProductStatus",
    "Refund",
    "RefundLine",
    "Shipment",
    "ShippingLine",
    "TaxLine",
    "UnknownEventError",
    "Variant",
    "WeightUnit",
    "event_model",
]
