"""Order arithmetic on REST documents: line items, discounts, taxes, shipping and totals.

The order document is the truth; totals are recomputed from it after every change:

- original totals (``total_price``, ``subtotal_price``, ...) use each line's ``quantity``;
- current totals (``current_total_price``, ...) use ``current_quantity``, which edits,
  refunds and cancellations lower, and leave out shipping once it was refunded.

``subtotal_price = total_line_items_price - line discounts``;
``total_price = subtotal_price + discounted shipping (+ total_tax unless taxes_included)``.
Discounts and taxes are allocated per line and rounded per currency, as Shopify does; a
line's share of a partial quantity is its amount scaled and rounded, and refunds are the
difference before and after, so refunds and current totals always add up to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from seamline.sandbox.shopify.ids import Ids, gid
from seamline.sandbox.shopify.money import ZERO, Bag, Currencies, cents, text, total

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TaxRule:
    title: str
    rate: Decimal


@dataclass(frozen=True, slots=True)
class Taxes:
    """The taxes charged on an order shipped to one country."""

    rules: tuple[TaxRule, ...]
    included: bool
    on_shipping: bool


def _vat(title: str, rate: str) -> Taxes:
    return Taxes((TaxRule(title, Decimal(rate)),), included=True, on_shipping=True)


TAXES: Final = {
    "DE": _vat("MwSt", "0.19"),
    "FR": _vat("TVA", "0.2"),
    "NL": _vat("BTW", "0.21"),
    "ES": _vat("IVA", "0.21"),
    "PL": _vat("VAT", "0.23"),
    "SE": _vat("Moms", "0.25"),
    "DK": _vat("Moms", "0.25"),
    "IE": _vat("VAT", "0.23"),
    "GR": _vat("ΦΠΑ", "0.24"),
    "GB": _vat("VAT", "0.2"),
    "CH": _vat("MWST", "0.081"),
    "US": Taxes(
        (TaxRule("State Tax", Decimal("0.04")), TaxRule("County Tax", Decimal("0.045"))),
        included=False,
        on_shipping=False,
    ),
    "CA": Taxes(
        (TaxRule("GST", Decimal("0.05")), TaxRule("QST", Decimal("0.09975"))),
        included=False,
        on_shipping=True,
    ),
}
NO_TAX: Final = Taxes((), included=False, on_shipping=False)


def line_item(
    ids: Ids,
    cur: Currencies,
    *,
    title: str,
    variant_title: str | None,
    unit_price: Decimal,
    quantity: int,
    sku: str | None,
    variant_id: int | None,
    product_id: int | None,
    vendor: str | None,
    grams: int,
    inventory_management: str | None,
    properties: list[Json] | None = None,
) -> Json:
    """A REST line item, keys as in the 2026-07 order example; taxes and discounts added later."""
    line_id = ids.next("LineItem")
    shown_variant = variant_title if variant_title not in (None, "Default Title") else None
    return {
        "id": line_id,
        "admin_graphql_api_id": gid("LineItem", line_id),
        "attributed_staffs": [],
        "current_quantity": quantity,
        "fulfillable_quantity": quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": False,
        "grams": grams,
        "name": f"{title} - {shown_variant}" if shown_variant else title,
        "price": text(unit_price),
        "price_set": cur.money_set(cur.bag(unit_price)),
        "product_exists": product_id is not None,
        "product_id": product_id,
        "properties": properties or [],
        "quantity": quantity,
        "requires_shipping": True,
        "sku": sku,
        "taxable": True,
        "title": title,
        "total_discount": "0.00",
        "total_discount_set": cur.money_set(Bag()),
        "variant_id": variant_id,
        "variant_inventory_management": inventory_management,
        "variant_title": variant_title,
        "vendor": vendor,
        "tax_lines": [],
        "duties": [],
        "discount_allocations": [],
    }


def shipping_line(ids: Ids, cur: Currencies, *, title: str, price: Decimal) -> Json:
    shipping_id = ids.next("ShippingLine")
    bag = cur.bag(price)
    return {
        "id": shipping_id,
        "carrier_identifier": None,
        "code": title,
        "discounted_price": text(bag.shop),
        "discounted_price_set": cur.money_set(bag),
        "is_removed": False,
        "phone": None,
        "price": text(bag.shop),
        "price_set": cur.money_set(bag),
        "requested_fulfillment_service_id": None,
        "source": "shopify",
        "title": title,
        "tax_lines": [],
        "discount_allocations": [],
    }


def _allocate(line: Json, cur: Currencies, bag: Bag, index: int) -> None:
    line["discount_allocations"].append(
        {
            "amount": text(bag.shop),
            "amount_set": cur.money_set(bag),
            "discount_application_index": index,
        }
    )


def _split(amount: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """``amount`` spread over ``weights`` proportionally, rounding left to the last share."""
    whole = sum(weights, ZERO)
    shares = [cents(amount * w / whole) if whole else ZERO for w in weights]
    if shares:
        shares[-1] = amount - sum(shares[:-1], ZERO)
    return shares


def discount_lines(
    lines: list[Json],
    cur: Currencies,
    *,
    index: int,
    percentage: Decimal | None = None,
    amount: Decimal | None = None,
) -> None:
    """Allocate a percentage, or a fixed shop-currency ``amount`` across ``lines``."""
    gross = [Bag.read(line["price_set"]).times(line["quantity"]) for line in lines]
    if percentage is not None:
        for line, bag in zip(lines, gross, strict=True):
            _allocate(line, cur, bag.times(percentage / 100), index)
        return
    assert amount is not None
    fixed = cur.bag(min(amount, sum((b.shop for b in gross), ZERO)))
    shop = _split(fixed.shop, [b.shop for b in gross])
    presentment = _split(fixed.presentment, [b.presentment for b in gross])
    for line, s, p in zip(lines, shop, presentment, strict=True):
        _allocate(line, cur, Bag(s, p), index)


def discount_shipping(shipping: Json, cur: Currencies, *, index: int) -> None:
    """A free-shipping discount: the whole price allocated to the shipping line."""
    price = Bag.read(shipping["price_set"])
    _allocate(shipping, cur, price, index)
    shipping["discounted_price"] = "0.00"
    shipping["discounted_price_set"] = cur.money_set(Bag())


def _tax_line(cur: Currencies, rule: TaxRule, bag: Bag) -> Json:
    return {
        "channel_liable": False,
        "price": text(bag.shop),
        "price_set": cur.money_set(bag),
        "rate": float(rule.rate),
        "title": rule.title,
    }


def _tax(base: Bag, rule: TaxRule, taxes: Taxes) -> Bag:
    if taxes.included:
        whole = Decimal(1) + sum((r.rate for r in taxes.rules), ZERO)
        return Bag(
            cents(base.shop * rule.rate / whole), cents(base.presentment * rule.rate / whole)
        )
    return base.times(rule.rate)


def apply_taxes(lines: list[Json], shipping: list[Json], cur: Currencies, taxes: Taxes) -> None:
    """Set each line's and shipping line's ``tax_lines`` from its discounted amount."""
    for line in lines:
        if line["taxable"]:
            base = line_amounts(line, line["quantity"])[0]
            line["tax_lines"] = [_tax_line(cur, r, _tax(base, r, taxes)) for r in taxes.rules]
    for ship in shipping:
        if taxes.on_shipping:
            base = Bag.read(ship["discounted_price_set"])
            ship["tax_lines"] = [_tax_line(cur, r, _tax(base, r, taxes)) for r in taxes.rules]


def _allocated(record: Json) -> Bag:
    return total(Bag.read(a["amount_set"]) for a in record["discount_allocations"])


def _taxed(record: Json) -> Bag:
    return total(Bag.read(t["price_set"]) for t in record["tax_lines"])


def line_amounts(line: Json, quantity: int) -> tuple[Bag, Bag, Bag]:
    """(discounted amount, discount, tax) of ``quantity`` units of ``line``."""
    ordered = line["quantity"]
    share = Decimal(quantity) / Decimal(ordered) if ordered else Decimal(0)
    gross = Bag.read(line["price_set"]).times(quantity)
    discount = _allocated(line).times(share)
    tax = _taxed(line).times(share) if line["tax_lines"] else Bag()
    return gross - discount, discount, tax


@dataclass(frozen=True, slots=True)
class Money:
    """What an order was paid and refunded, in both currencies; not part of the document."""

    paid: Bag = field(default_factory=Bag)
    refunded: Bag = field(default_factory=Bag)


def settle(order: Json, cur: Currencies, money: Money, *, shipping_refunded: bool) -> None:
    """Recompute every total of ``order`` from its lines and shipping lines."""
    lines, shipping = order["line_items"], order["shipping_lines"]
    included = order["taxes_included"]
    gross = total(Bag.read(li["price_set"]).times(li["quantity"]) for li in lines)
    original = [line_amounts(li, li["quantity"]) for li in lines]
    current = [line_amounts(li, li["current_quantity"]) for li in lines]
    ship_price = total(Bag.read(s["price_set"]) for s in shipping)
    ship_paid = total(Bag.read(s["discounted_price_set"]) for s in shipping)
    ship_discount = total(_allocated(s) for s in shipping)
    ship_tax = total(_taxed(s) for s in shipping)
    kept = Bag() if shipping_refunded else ship_paid

    subtotal = total(a for a, _, _ in original)
    tax = total(t for _, _, t in original) + ship_tax
    price = subtotal + ship_paid + (Bag() if included else tax)
    current_subtotal = total(a for a, _, _ in current)
    current_tax = total(t for _, _, t in current) + (Bag() if shipping_refunded else ship_tax)
    current_price = current_subtotal + kept + (Bag() if included else current_tax)
    current_discounts = total(d for _, d, _ in current) + (
        Bag() if shipping_refunded else ship_discount
    )

    def put(name: str, bag: Bag) -> None:
        order[name] = text(bag.shop)
        order[f"{name}_set"] = cur.money_set(bag)

    put("total_line_items_price", gross)
    put("total_discounts", total(d for _, d, _ in original) + ship_discount)
    put("subtotal_price", subtotal)
    put("total_tax", tax)
    put("total_price", price)
    put("current_subtotal_price", current_subtotal)
    put("current_total_discounts", current_discounts)
    put("current_total_tax", current_tax)
    put("current_total_price", current_price)
    order["total_shipping_price_set"] = cur.money_set(ship_price)
    outstanding = current_price.shop - (money.paid.shop - money.refunded.shop)
    order["total_outstanding"] = text(max(outstanding, ZERO))
    order["total_weight"] = sum(li["grams"] * li["quantity"] for li in lines)
    order["tax_lines"] = _order_tax_lines(lines + shipping, cur)
    for line in lines:
        line["total_discount_set"] = cur.money_set(Bag())


def _order_tax_lines(records: list[Json], cur: Currencies) -> list[Json]:
    sums: dict[tuple[str, float], Bag] = {}
    for record in records:
        for t in record["tax_lines"]:
            key = (t["title"], t["rate"])
            sums[key] = sums.get(key, Bag()) + Bag.read(t["price_set"])
    return [
        {
            "price": text(bag.shop),
            "rate": rate,
            "title": title,
            "price_set": cur.money_set(bag),
            "channel_liable": False,
        }
        for (title, rate), bag in sums.items()
    ]


def shipping_amounts(order: Json) -> tuple[Bag, Bag]:
    """(discounted shipping, shipping tax) of ``order``."""
    shipping = order["shipping_lines"]
    return (
        total(Bag.read(s["discounted_price_set"]) for s in shipping),
        total(_taxed(s) for s in shipping),
    )


def fulfillment_status(order: Json) -> str | None:
    """REST ``fulfillment_status``: None, ``partial`` or ``fulfilled``."""
    open_lines = [li for li in order["line_items"] if li["current_quantity"] > 0]
    fulfilled = [li for li in order["line_items"] if li["fulfillment_status"] is not None]
    if open_lines and all(li["fulfillable_quantity"] == 0 for li in open_lines):
        return "fulfilled"
    return "partial" if fulfilled else None
