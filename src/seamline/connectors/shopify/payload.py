"""Shopify's REST resources (what webhooks carry) as canonical models.

Only the fields the canonical model needs are read, so fields Shopify adds never break
decoding. Each reader takes the plain fields first, which every shape since 2013 has (old
payloads lack the `*_set` money bags and `current_*` totals), and the shop-currency money
bag where a plain amount is a JSON number (exact digits matter: `195.66` as a float is not
`"195.66"`). A field the model requires that is missing is a `ContractError` naming the
resource and the field.

Departures, on purpose:
- Order totals and lines are the order as placed (`total_price`, `quantity`), not as edited
  (`current_*`): refunds arrive as their own `refund.created` events, and an edited order is
  decoded again from its `orders/updated` with its new lines.
- Money is in the shop's currency (`currency`); the presentment currency is kept as a name.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ValidationError

from seamline.errors import ContractError
from seamline.model import (
    Customer,
    Fulfillment,
    InventoryLevel,
    Order,
    Product,
    Refund,
)

Json = Mapping[str, Any]

CHANNELS = {"web": "web", "pos": "pos", "shopify_draft_order": "draft", "iphone": "mobile"}
DISCOUNT_KINDS = {
    "fixed_amount": "fixed_amount",
    "percentage": "percentage",
    "shipping": "shipping",
}
FINANCIAL = {
    "pending",
    "authorized",
    "partially_paid",
    "paid",
    "partially_refunded",
    "refunded",
    "voided",
    "expired",
}
FULFILLMENT = {
    None: "unfulfilled",
    "fulfilled": "fulfilled",
    "partial": "partial",
    "restocked": "restocked",
}
FULFILLMENT_STATES = {"pending", "open", "success", "cancelled", "error", "failure"}


class Reader:
    """Reads one resource of one topic, naming both in every complaint."""

    def __init__(self, topic: str, currency: str | None = None) -> None:
        self.topic = topic
        self.currency = currency

    def need(self, obj: Json, field: str, what: str) -> Any:
        value = obj.get(field)
        if value is None or value == "":
            raise ContractError(
                f"{self.topic}: the {what} has no '{field}', which the canonical model needs"
            )
        return value

    def build(self, model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
        try:
            return model.model_validate(data).model_dump(mode="json")
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
            )
            raise ContractError(
                f"{self.topic}: does not fit the canonical {model.__name__.lower()}: {problems}"
            ) from None

    # --- money ------------------------------------------------------------------------

    def amount(self, obj: Json, field: str, *, default: str | None = None) -> str:
        """An exact decimal text from `field`, preferring its shop-money bag `{field}_set`."""
        bag = ((obj.get(f"{field}_set") or {}).get("shop_money") or {}).get("amount")
        value = bag if bag is not None else obj.get(field)
        if value is None or value == "":
            if default is not None:
                return default
            raise ContractError(f"{self.topic}: no amount in '{field}'")
        return exact(value, f"{self.topic}: '{field}'")

    def money(
        self, obj: Json, field: str, currency: str, *, default: str | None = None
    ) -> dict[str, str]:
        return {"amount": self.amount(obj, field, default=default), "currency": currency}

    def taxes(self, lines: Any, currency: str) -> list[dict[str, Any]]:
        return [
            {
                "title": str(t.get("title") or "tax"),
                "rate": exact(t.get("rate") or 0, f"{self.topic}: tax rate"),
                "amount": self.money(t, "price", currency, default="0"),
            }
            for t in lines or []
        ]

    # --- resources ----------------------------------------------------------------------

    def order(self, o: Json) -> dict[str, Any]:
        currency = str(self.need(o, "currency", "order"))
        lines = o.get("line_items")
        if not isinstance(lines, list):
            raise ContractError(f"{self.topic}: the order has no 'line_items' list")
        shipping = [
            {
                "id": s.get("id"),
                "title": str(s.get("title") or s.get("code") or "shipping"),
                "code": s.get("code") or None,
                "carrier": s.get("carrier_identifier") or s.get("source") or None,
                "price": self.money(s, "price", currency, default="0"),
                "taxes": self.taxes(s.get("tax_lines"), currency),
            }
            for s in o.get("shipping_lines") or []
        ]
        shipping_total = sum((Decimal(s["price"]["amount"]) for s in shipping), start=Decimal(0))
        status = o.get("financial_status")
        fulfillment = o.get("fulfillment_status")
        if fulfillment not in FULFILLMENT:
            raise ContractError(f"{self.topic}: unknown fulfillment_status {fulfillment!r}")
        number = o.get("name") or (f"#{o['order_number']}" if o.get("order_number") else None)
        data = {
            "id": self.need(o, "id", "order"),
            "number": number or self.need(o, "name", "order"),
            "created_at": self.need(o, "created_at", "order"),
            "updated_at": self.need(o, "updated_at", "order"),
            "processed_at": o.get("processed_at"),
            "cancelled_at": o.get("cancelled_at"),
            "cancel_reason": o.get("cancel_reason"),
            "channel": CHANNELS.get(str(o.get("source_name")), str(o.get("source_name") or "web")),
            "test": bool(o.get("test")),
            "currency": currency,
            "presentment_currency": o.get("presentment_currency") or None,
            "taxes_included": bool(o.get("taxes_included")),
            "email": o.get("email") or o.get("contact_email") or None,
            "phone": o.get("phone") or None,
            "customer": self.customer_data(o["customer"]) if o.get("customer") else None,
            "billing_address": address(o.get("billing_address")),
            "shipping_address": address(o.get("shipping_address")),
            "lines": [self.line(li, currency) for li in lines],
            "shipping_lines": shipping,
            "discounts": [
                {
                    "code": d.get("code") or None,
                    "kind": DISCOUNT_KINDS.get(str(d.get("type")), "other"),
                    "amount": self.money(d, "amount", currency, default="0"),
                }
                for d in o.get("discount_codes") or []
                if Decimal(self.amount(d, "amount", default="0")) > 0
            ],
            "taxes": self.taxes(o.get("tax_lines"), currency),
            "totals": {
                "subtotal": self.money(
                    o,
                    "total_line_items_price",
                    currency,
                    default=self.amount(o, "subtotal_price", default="0"),
                ),
                "discounts": self.money(o, "total_discounts", currency, default="0"),
                "shipping": self.money(
                    o, "total_shipping_price", currency, default=str(shipping_total)
                ),
                "tax": self.money(o, "total_tax", currency, default="0"),
                "total": self.money(o, "total_price", currency),
            },
            "financial_status": status if status in FINANCIAL else "unknown",
            "fulfillment_status": FULFILLMENT[fulfillment],
            "tags": split_tags(o.get("tags")),
            "note": o.get("note") or None,
            "attributes": pairs(o.get("note_attributes")),
        }
        return self.build(Order, data)

    def line(self, li: Json, currency: str) -> dict[str, Any]:
        discount = self.amount(li, "total_discount", default="")
        if discount == "":
            allocated = [
                Decimal(self.amount(a, "amount", default="0"))
                for a in li.get("discount_allocations") or []
            ]
            discount = str(sum(allocated, start=Decimal(0)))
        return {
            "id": self.need(li, "id", "line item"),
            "sku": li.get("sku") or None,
            "variant_id": li.get("variant_id"),
            "product_id": li.get("product_id"),
            "title": str(li.get("title") or li.get("name") or ""),
            "variant_title": li.get("variant_title") or None,
            "quantity": self.need(li, "quantity", "line item"),
            "unit_price": self.money(li, "price", currency),
            "discount": {"amount": discount, "currency": currency},
            "taxes": self.taxes(li.get("tax_lines"), currency),
            "requires_shipping": bool(li.get("requires_shipping", True)),
            "fulfillable_quantity": li.get("fulfillable_quantity"),
            "properties": pairs(li.get("properties")),
        }

    def customer_data(self, c: Json) -> dict[str, Any]:
        consent = (c.get("email_marketing_consent") or {}).get("state")
        marketing = c.get("accepts_marketing")
        if consent is not None:
            marketing = consent == "subscribed"
        addresses = [a for a in (address(x) for x in c.get("addresses") or []) if a]
        return {
            "id": self.need(c, "id", "customer"),
            "email": c.get("email") or None,
            "phone": c.get("phone") or None,
            "first_name": c.get("first_name") or None,
            "last_name": c.get("last_name") or None,
            "created_at": c.get("created_at"),
            "updated_at": c.get("updated_at"),
            "default_address": address(c.get("default_address")),
            "addresses": addresses,
            "tags": split_tags(c.get("tags")),
            "accepts_marketing": marketing,
            "note": c.get("note") or None,
        }

    def customer(self, c: Json) -> dict[str, Any]:
        return self.build(Customer, self.customer_data(c))

    def product(self, p: Json) -> dict[str, Any]:
        if self.currency is None:
            raise ContractError(
                f"{self.topic}: product prices carry no currency; set `currency` (the shop's "
                "currency) in the system's connection"
            )
        variants = p.get("variants")
        if not isinstance(variants, list):
            raise ContractError(f"{self.topic}: the product has no 'variants' list")
        names = [str(o.get("name")) for o in p.get("options") or [] if isinstance(o, dict)]
        status = p.get("status") or ("active" if p.get("published_at") else "draft")
        data = {
            "id": self.need(p, "id", "product"),
            "title": str(self.need(p, "title", "product")),
            "handle": p.get("handle") or None,
            "vendor": p.get("vendor") or None,
            "product_type": p.get("product_type") or None,
            "status": status,
            "tags": split_tags(p.get("tags")),
            "variants": [self.variant(v, p, names) for v in variants],
            "created_at": p.get("created_at"),
            "updated_at": p.get("updated_at"),
        }
        return self.build(Product, data)

    def variant(self, v: Json, p: Json, names: list[str]) -> dict[str, Any]:
        assert self.currency is not None
        options = {}
        for n, name in enumerate(names[:3], start=1):
            value = v.get(f"option{n}")
            if value is not None:
                options[name] = str(value)
        compare = v.get("compare_at_price")
        weight = v.get("weight")
        return {
            "id": self.need(v, "id", "variant"),
            "product_id": v.get("product_id") or p.get("id"),
            "sku": v.get("sku") or None,
            "barcode": v.get("barcode") or None,
            "title": str(v.get("title") or ""),
            "price": self.money(v, "price", self.currency),
            "compare_at_price": self.money(v, "compare_at_price", self.currency)
            if compare not in (None, "")
            else None,
            "inventory_item_id": v.get("inventory_item_id"),
            "weight": exact(weight, f"{self.topic}: weight") if weight is not None else None,
            "weight_unit": v.get("weight_unit") or None,
            "options": options,
        }

    def inventory(self, level: Json) -> dict[str, Any]:
        available = level.get("available")
        data = {
            "inventory_item_id": self.need(level, "inventory_item_id", "inventory level"),
            "location_id": self.need(level, "location_id", "inventory level"),
            "available": 0 if available is None else available,
            "updated_at": level.get("updated_at"),
        }
        return self.build(InventoryLevel, data)

    def fulfillment(self, f: Json) -> dict[str, Any]:
        numbers = f.get("tracking_numbers") or (
            [f["tracking_number"]] if f.get("tracking_number") else []
        )
        urls = f.get("tracking_urls") or ([f["tracking_url"]] if f.get("tracking_url") else [])
        status = f.get("status")
        data = {
            "id": self.need(f, "id", "fulfillment"),
            "order_id": self.need(f, "order_id", "fulfillment"),
            "status": status if status in FULFILLMENT_STATES else "pending",
            "created_at": f.get("created_at"),
            "location_id": f.get("location_id"),
            "tracking_company": f.get("tracking_company") or None,
            "tracking_numbers": [str(n) for n in numbers],
            "tracking_urls": [str(u) for u in urls],
            "lines": [
                {
                    "line_id": li.get("id"),
                    "sku": li.get("sku") or None,
                    "quantity": li.get("quantity", 0),
                }
                for li in f.get("line_items") or []
            ],
        }
        return self.build(Fulfillment, data)

    def refund(self, r: Json) -> dict[str, Any]:
        currency = self.refund_currency(r)
        lines = []
        total = Decimal(0)
        for item in r.get("refund_line_items") or []:
            subtotal = self.amount(item, "subtotal", default="0")
            lines.append(
                {
                    "line_id": self.need(item, "line_item_id", "refund line"),
                    "sku": (item.get("line_item") or {}).get("sku") or None,
                    "quantity": item.get("quantity", 0),
                    "restock": item.get("restock_type") not in (None, "no_restock"),
                    "subtotal": {"amount": subtotal, "currency": currency},
                }
            )
        paid = [
            Decimal(self.amount(t, "amount", default="0"))
            for t in r.get("transactions") or []
            if t.get("kind") == "refund" and t.get("status") in (None, "success")
        ]
        if paid:
            total = sum(paid, start=Decimal(0))
        else:
            total = sum((Decimal(line["subtotal"]["amount"]) for line in lines), start=Decimal(0))
        shipping = [
            -Decimal(self.amount(a, "amount", default="0"))
            for a in r.get("order_adjustments") or []
            if a.get("kind") == "shipping_refund"
        ]
        data = {
            "id": self.need(r, "id", "refund"),
            "order_id": self.need(r, "order_id", "refund"),
            "created_at": r.get("created_at") or self.need(r, "processed_at", "refund"),
            "note": r.get("note") or None,
            "lines": lines,
            "amount": {"amount": str(total), "currency": currency},
            "shipping_refund": {"amount": str(sum(shipping)), "currency": currency}
            if shipping
            else None,
        }
        return self.build(Refund, data)

    def refund_currency(self, r: Json) -> str:
        for t in r.get("transactions") or []:
            if t.get("currency"):
                return str(t["currency"])
        for item in r.get("refund_line_items") or []:
            code = ((item.get("subtotal_set") or {}).get("shop_money") or {}).get("currency_code")
            if code:
                return str(code)
        if self.currency:
            return self.currency
        raise ContractError(f"{self.topic}: the refund names no currency")


def exact(value: Any, where: str) -> str:
    """Decimal text of a vendor number: a string as given, a JSON number by its digits."""
    if isinstance(value, bool):
        raise ContractError(f"{where}: {value!r} is not a number")
    text = repr(value) if isinstance(value, float) else str(value)
    try:
        Decimal(text)
    except InvalidOperation:
        raise ContractError(f"{where}: {value!r} is not a number") from None
    return text


def address(a: Any) -> dict[str, Any] | None:
    if not isinstance(a, dict) or not any(a.values()):
        return None
    code = a.get("country_code") or None
    return {
        "name": a.get("name") or None,
        "first_name": a.get("first_name") or None,
        "last_name": a.get("last_name") or None,
        "company": a.get("company") or None,
        "line1": a.get("address1") or None,
        "line2": a.get("address2") or None,
        "city": a.get("city") or None,
        "region": a.get("province") or None,
        "region_code": a.get("province_code") or None,
        "postal_code": a.get("zip") or None,
        "country": a.get("country") or None,
        "country_code": code.upper() if isinstance(code, str) else None,
        "phone": a.get("phone") or None,
    }


def split_tags(tags: Any) -> list[str]:
    if isinstance(tags, list):
        return [str(t).strip() for t in tags if str(t).strip()]
    if isinstance(tags, str):
        return [t.strip() for t in tags.split(",") if t.strip()]
    return []


def pairs(items: Any) -> dict[str, str]:
    """Shopify's `[{name, value}]` lists (note attributes, line properties) as a mapping."""
    out: dict[str, str] = {}
    for item in items or []:
        if isinstance(item, dict) and item.get("name") is not None:
            out[str(item["name"])] = "" if item.get("value") is None else str(item["value"])
    return out
