"""The simulator's shop and order generator, in process: shapes, arithmetic, variety, changes.

Key lists are the 2026-07 REST examples' (shopify-api-ruby ``test/rest/2026_07``), in order.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from seamline.sandbox.shopify.clock import Clock
from seamline.sandbox.shopify.generator import OrderGenerator, OrderOptions
from seamline.sandbox.shopify.shop import Shop, ShopError

ORDER_KEYS = [
    "id", "admin_graphql_api_id", "app_id", "browser_ip", "buyer_accepts_marketing",
    "cancel_reason", "cancelled_at", "cart_token", "checkout_id", "checkout_token",
    "client_details", "closed_at", "confirmation_number", "confirmed", "contact_email",
    "created_at", "currency", "current_subtotal_price", "current_subtotal_price_set",
    "current_total_additional_fees_set", "current_total_discounts",
    "current_total_discounts_set", "current_total_duties_set", "current_total_price",
    "current_total_price_set", "current_total_tax", "current_total_tax_set", "customer_locale",
    "device_id", "discount_codes", "duties_included", "email", "estimated_taxes",
    "financial_status", "fulfillment_status", "landing_site", "landing_site_ref", "location_id",
    "merchant_business_entity_id", "merchant_of_record_app_id", "name", "note",
    "note_attributes", "number", "order_number", "order_status_url",
    "original_total_additional_fees_set", "original_total_duties_set", "payment_gateway_names",
    "phone", "po_number", "presentment_currency", "processed_at", "reference", "referring_site",
    "source_identifier", "source_name", "source_url", "subtotal_price", "subtotal_price_set",
    "tags", "tax_exempt", "tax_lines", "taxes_included", "test", "token",
    "total_cash_rounding_payment_adjustment_set", "total_cash_rounding_refund_adjustment_set",
    "total_discounts", "total_discounts_set", "total_line_items_price",
    "total_line_items_price_set", "total_outstanding", "total_price", "total_price_set",
    "total_shipping_price_set", "total_tax", "total_tax_set", "total_tip_received",
    "total_weight", "updated_at", "user_id", "billing_address", "customer",
    "discount_applications", "fulfillments", "line_items", "payment_terms", "refunds",
    "shipping_address", "shipping_lines",
]  # fmt: skip
LINE_KEYS = [
    "id", "admin_graphql_api_id", "attributed_staffs", "current_quantity",
    "fulfillable_quantity", "fulfillment_service", "fulfillment_status", "gift_card", "grams",
    "name", "price", "price_set", "product_exists", "product_id", "properties", "quantity",
    "requires_shipping", "sku", "taxable", "title", "total_discount", "total_discount_set",
    "variant_id", "variant_inventory_management", "variant_title", "vendor", "tax_lines",
    "duties", "discount_allocations",
]  # fmt: skip
SHIPPING_KEYS = [
    "id", "carrier_identifier", "code", "discounted_price", "discounted_price_set", "is_removed",
    "phone", "price", "price_set", "requested_fulfillment_service_id", "source", "title",
    "tax_lines", "discount_allocations",
]  # fmt: skip
EMBEDDED_REFUND_KEYS = [
    "id", "admin_graphql_api_id", "created_at", "note", "order_id", "processed_at", "restock",
    "total_additional_fees_set", "total_duties_set", "user_id", "order_adjustments",
    "transactions", "refund_line_items", "duties", "additional_fees",
]  # fmt: skip
REFUND_KEYS = [
    "id", "order_id", "created_at", "note", "user_id", "processed_at", "duties",
    "total_duties_set", "return", "restock", "additional_fees", "total_additional_fees_set",
    "refund_shipping_lines", "admin_graphql_api_id", "order_adjustments", "refund_line_items",
    "transactions",
]  # fmt: skip
TRANSACTION_KEYS = {
    "id", "order_id", "kind", "gateway", "status", "message", "created_at", "test",
    "authorization", "location_id", "user_id", "parent_id", "processed_at", "device_id",
    "error_code", "source_name", "receipt", "amount", "currency", "payment_id",
    "total_unsettled_set", "manual_payment_gateway", "amount_rounding", "admin_graphql_api_id",
}  # fmt: skip
FULFILLMENT_KEYS = [
    "id", "admin_graphql_api_id", "created_at", "location_id", "name", "order_id",
    "origin_address", "receipt", "service", "shipment_status", "status", "tracking_company",
    "tracking_number", "tracking_numbers", "tracking_url", "tracking_urls", "updated_at",
    "line_items",
]  # fmt: skip
EMBEDDED_CUSTOMER_KEYS = [
    "id", "email", "created_at", "updated_at", "first_name", "last_name", "state", "note",
    "verified_email", "multipass_identifier", "tax_exempt", "phone", "email_marketing_consent",
    "sms_marketing_consent", "tags", "currency", "tax_exemptions", "admin_graphql_api_id",
    "default_address",
]  # fmt: skip
ADDRESS_KEYS = [
    "first_name", "address1", "phone", "city", "zip", "province", "country", "last_name",
    "address2", "company", "latitude", "longitude", "name", "country_code", "province_code",
]  # fmt: skip
PRODUCT_KEYS = [
    "id", "title", "body_html", "vendor", "product_type", "created_at", "handle", "updated_at",
    "published_at", "template_suffix", "published_scope", "tags", "status",
    "admin_graphql_api_id", "variants", "options", "images", "image",
]  # fmt: skip
VARIANT_KEYS = [
    "id", "product_id", "title", "price", "position", "inventory_policy", "compare_at_price",
    "option1", "option2", "option3", "created_at", "updated_at", "taxable", "barcode",
    "fulfillment_service", "grams", "inventory_management", "requires_shipping", "sku",
    "weight", "weight_unit", "inventory_item_id", "inventory_quantity",
    "old_inventory_quantity", "presentment_prices", "admin_graphql_api_id", "image_id",
]  # fmt: skip
CUSTOMER_KEYS = [
    "id", "email", "created_at", "updated_at", "first_name", "last_name", "orders_count",
    "state", "total_spent", "last_order_id", "note", "verified_email", "multipass_identifier",
    "tax_exempt", "tags", "last_order_name", "currency", "phone", "addresses",
    "tax_exemptions", "email_marketing_consent", "sms_marketing_consent",
    "admin_graphql_api_id", "default_address",
]  # fmt: skip
LEVEL_KEYS = ["inventory_item_id", "location_id", "available", "updated_at", "admin_graphql_api_id"]
TIMES = {
    "created_at",
    "updated_at",
    "processed_at",
    "closed_at",
    "cancelled_at",
    "published_at",
    "consent_updated_at",
}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, topic: str, payload: dict[str, Any]) -> None:
        self.events.append((topic, payload))

    def topics(self) -> list[str]:
        return [topic for topic, _ in self.events]


def make_shop(seed: int = 7) -> tuple[Shop, OrderGenerator, Recorder]:
    recorder = Recorder()
    shop = Shop(
        seed=seed, domain="unit.myshopify.com", currency="EUR", clock=Clock(), emit=recorder
    )
    return shop, OrderGenerator(shop, seed=seed), recorder


def without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def money(value: str) -> Decimal:
    return Decimal(value)


@pytest.fixture(scope="module")
def varied_orders() -> list[dict[str, Any]]:
    """300 orders of one seeded shop."""
    _, generator, _ = make_shop(seed=11)
    return [generator.order() for _ in range(300)]


def first_order_with(generator: OrderGenerator, wanted: Any) -> tuple[dict[str, Any], Any]:
    """The first generated paid web order with a line for which ``wanted(line)`` holds."""
    for _ in range(200):
        order = generator.order(OrderOptions(channel="web", financial_status="paid"))
        for line in order["line_items"]:
            if wanted(line):
                return order, line
    raise AssertionError("the generator never made such an order")


def test_orders_have_the_keys_of_the_2026_07_example_in_its_order() -> None:
    shop, generator, _ = make_shop()
    for _ in range(60):
        generator.order()
    for order in shop.orders.values():
        assert list(order) == ORDER_KEYS
        for line in order["line_items"]:
            assert list(line) == LINE_KEYS
        for shipping in order["shipping_lines"]:
            assert list(shipping) == SHIPPING_KEYS
        for address in (order["billing_address"], order["shipping_address"]):
            assert address is None or list(address) == ADDRESS_KEYS
        assert order["customer"] is None or list(order["customer"]) == EMBEDDED_CUSTOMER_KEYS
        assert order["admin_graphql_api_id"] == f"gid://shopify/Order/{order['id']}"
        assert order["name"] == f"#{order['order_number']}" and order["order_number"] > 1000


def test_catalogue_records_have_the_example_keys() -> None:
    shop, _, _ = make_shop()
    assert 18 <= len(shop.products) <= 22
    for product in shop.products.values():
        assert list(product) == PRODUCT_KEYS
        assert 1 <= len(product["variants"]) <= 4
        for variant in product["variants"]:
            assert list(variant) == VARIANT_KEYS
    for customer in shop.customers.values():
        assert list(customer) == CUSTOMER_KEYS
    for level in shop.levels.values():
        assert list(level) == LEVEL_KEYS
    assert any(v["sku"] in (None, "") for v in shop.variants.values()), "some variants lack a SKU"


def test_refunds_and_fulfillments_have_the_example_keys() -> None:
    shop, generator, recorder = make_shop()
    order = generator.order(OrderOptions(channel="web", financial_status="paid", lines=2))
    line = order["line_items"][0]
    refund = shop.refund(order["id"], [(line["id"], 1)], restock=True)
    fulfillment = shop.fulfill_order(order["id"], tracking={"number": "1Z", "company": "UPS"})
    assert list(refund) == REFUND_KEYS
    assert set(refund["transactions"][0]) == TRANSACTION_KEYS
    assert "current_quantity" not in refund["refund_line_items"][0]["line_item"]
    assert list(order["refunds"][0]) == EMBEDDED_REFUND_KEYS
    assert list(fulfillment) == FULFILLMENT_KEYS
    assert ("refunds/create", refund) in recorder.events


def test_the_same_seed_makes_the_same_orders() -> None:
    runs = []
    for _ in range(2):
        _, generator, _ = make_shop(seed=42)
        runs.append([without_times(generator.order()) for _ in range(25)])
    assert runs[0] == runs[1]
    _, other, _ = make_shop(seed=43)
    assert without_times(other.order()) != runs[0][0]


def amount(record: dict[str, Any], name: str, side: str) -> Decimal:
    return money(record[f"{name}_set"][side]["amount"])


def test_totals_add_up_in_both_currencies() -> None:
    _, generator, _ = make_shop()
    for _ in range(200):
        order = generator.order()
        lines, shipping = order["line_items"], order["shipping_lines"]
        for side in ("shop_money", "presentment_money"):
            gross = sum((amount(li, "price", side) * li["quantity"] for li in lines), Decimal(0))
            allocations = [a for li in lines for a in li["discount_allocations"]]
            discounts = sum((amount(a, "amount", side) for a in allocations), Decimal(0))
            freight = sum((amount(s, "discounted_price", side) for s in shipping), Decimal(0))
            tax = Decimal(0) if order["taxes_included"] else amount(order, "total_tax", side)
            assert amount(order, "total_line_items_price", side) == gross
            assert amount(order, "subtotal_price", side) == gross - discounts
            assert amount(order, "total_price", side) == gross - discounts + freight + tax
            assert amount(order, "current_total_price", side) == amount(order, "total_price", side)
        assert order["total_price"] == order["total_price_set"]["shop_money"]["amount"]


def lines_of(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for order in orders for line in order["line_items"]]


Orders = list[dict[str, Any]]
VARIETY: dict[str, Any] = {
    "web, POS and draft orders": lambda os: (
        {o["source_name"] for o in os} >= {"web", "pos", "shopify_draft_order"}
    ),
    "test orders among real ones": lambda os: 0 < sum(o["test"] for o in os) < len(os),
    "several presentment currencies": lambda os: len({o["presentment_currency"] for o in os}) >= 4,
    "lines with sku null or empty": lambda os: any(li["sku"] in (None, "") for li in lines_of(os)),
    "custom lines without a variant": lambda os: any(
        li["variant_id"] is None for li in lines_of(os)
    ),
    "multi-line orders": lambda os: any(len(o["line_items"]) >= 3 for o in os),
    "percentage and fixed discount codes": lambda os: (
        {d["type"] for o in os for d in o["discount_codes"]} >= {"percentage", "fixed_amount"}
    ),
    "manual discounts": lambda os: any(
        a["type"] == "manual" for o in os for a in o["discount_applications"]
    ),
    "shipping lines": lambda os: any(o["shipping_lines"] for o in os),
    "taxes included and added": lambda os: {o["taxes_included"] for o in os} == {True, False},
    "unicode names": lambda os: any(
        not o["billing_address"]["name"].isascii() for o in os if o["billing_address"]
    ),
    "guest POS sales": lambda os: any(o["customer"] is None for o in os),
    "paid, pending and authorized": lambda os: (
        {o["financial_status"] for o in os} >= {"paid", "pending", "authorized"}
    ),
}


@pytest.mark.parametrize("feature", list(VARIETY))
def test_generated_orders_vary_like_a_real_shop(feature: str, varied_orders: Orders) -> None:
    assert VARIETY[feature](varied_orders), feature


def test_options_fix_what_they_name() -> None:
    _, generator, _ = make_shop()
    order = generator.order(OrderOptions(currency="USD", channel="draft", test=True, lines=3))
    assert order["presentment_currency"] == "USD" and order["currency"] == "EUR"
    assert order["source_name"] == "shopify_draft_order" and order["test"] is True
    assert len(order["line_items"]) == 3
    assert order["total_price_set"]["presentment_money"]["currency_code"] == "USD"
    with pytest.raises(ValueError, match="currency"):
        OrderOptions(currency="XYZ")


def test_a_partial_refund_lowers_current_totals_and_restocks() -> None:
    shop, generator, recorder = make_shop()
    order, line = first_order_with(
        generator,
        lambda li: li["quantity"] >= 2 and li["variant_inventory_management"] == "shopify",
    )
    variant = shop.variants[line["variant_id"]]
    level = shop.levels[(variant["inventory_item_id"], shop.books[order["id"]].location_id)]
    available = level["available"]
    current = amount(order, "current_total_price", "presentment_money")
    recorder.events.clear()

    refund = shop.refund(order["id"], [(line["id"], 1)], restock=True, note="zu groß")

    refunded = money(refund["transactions"][0]["amount"])
    assert refunded > 0
    assert amount(order, "current_total_price", "presentment_money") == current - refunded
    assert line["current_quantity"] == line["quantity"] - 1
    assert order["financial_status"] == "partially_refunded"
    assert refund["refund_line_items"][0]["restock_type"] == "cancel"
    assert level["available"] == available + 1
    assert recorder.topics() == ["inventory_levels/update", "refunds/create", "orders/updated"]


def test_refunding_everything_makes_the_order_refunded() -> None:
    shop, generator, _ = make_shop()
    order = generator.order(OrderOptions(channel="web", financial_status="paid"))
    lines = [(li["id"], li["current_quantity"]) for li in order["line_items"]]
    shop.refund(order["id"], lines, restock=True, shipping=True)
    assert order["financial_status"] == "refunded"
    assert order["current_total_price"] == "0.00"
    refunded = sum(money(r["transactions"][0]["amount"]) for r in order["refunds"])
    assert refunded == money(order["total_price_set"]["presentment_money"]["amount"])


@pytest.mark.parametrize(
    ("financial_status", "refund", "expected"),
    [("paid", True, "refunded"), ("paid", False, "paid"), ("pending", True, "voided"),
     ("authorized", False, "voided")],
)  # fmt: skip
def test_cancelling_settles_the_payment_as_shopify_does(
    financial_status: str, refund: bool, expected: str
) -> None:
    shop, generator, recorder = make_shop()
    options = OrderOptions(channel="web", financial_status=financial_status)  # type: ignore[arg-type]
    order = generator.order(options)
    recorder.events.clear()
    shop.cancel(order["id"], reason="CUSTOMER", refund=refund, restock=True)
    assert order["financial_status"] == expected
    assert order["cancel_reason"] == "customer" and order["cancelled_at"] and order["closed_at"]
    assert all(li["fulfillable_quantity"] == 0 for li in order["line_items"])
    assert {"orders/cancelled", "orders/updated"} <= set(recorder.topics())
    assert all(fo["status"] == "CLOSED" for fo in shop.order_fulfillment_orders(order["id"]))
    with pytest.raises(ShopError, match="already cancelled"):
        shop.check_cancel(order["id"])


def test_an_edit_that_adds_items_leaves_an_amount_outstanding() -> None:
    shop, generator, recorder = make_shop()
    order = generator.order(OrderOptions(channel="web", financial_status="paid"))
    variant_id = next(iter(shop.variants))
    recorder.events.clear()
    edit = shop.edit(order["id"], add=[(variant_id, 2)])
    assert money(order["total_outstanding"]) > 0
    assert order["financial_status"] == "partially_paid"
    assert order["line_items"][-1]["variant_id"] == variant_id
    assert edit["line_items"]["additions"][0]["delta"] == 2
    assert recorder.topics()[-2:] == ["orders/edited", "orders/updated"]


def test_fulfilling_part_then_all_moves_the_statuses() -> None:
    shop, generator, recorder = make_shop()
    order = generator.order(OrderOptions(channel="web", financial_status="paid", lines=2))
    (fo,) = shop.order_fulfillment_orders(order["id"])
    first = fo["line_items"][0]
    recorder.events.clear()
    shop.fulfill([(fo["id"], [(first["id"], first["remaining_quantity"])])])
    assert order["fulfillment_status"] == "partial" and fo["status"] == "IN_PROGRESS"
    assert recorder.topics() == [
        "fulfillments/create",
        "orders/updated",
        "orders/partially_fulfilled",
    ]
    shop.fulfill([(fo["id"], None)], tracking={"number": "JJD0099", "company": "DHL"})
    assert order["fulfillment_status"] == "fulfilled" and fo["status"] == "CLOSED"
    assert order["closed_at"] is not None
    assert recorder.topics()[-1] == "orders/fulfilled"
    with pytest.raises(ShopError, match="unfulfillable status"):
        shop.fulfill([(fo["id"], None)])


def test_pos_orders_are_fulfilled_at_the_counter() -> None:
    _, generator, _ = make_shop()
    order = generator.order(OrderOptions(channel="pos"))
    assert order["fulfillment_status"] == "fulfilled" and order["location_id"] is not None
    assert order["shipping_lines"] == [] and order["shipping_address"] is None


def test_stock_is_reserved_by_orders() -> None:
    shop, generator, _ = make_shop()
    tracked = [v for v in shop.variants.values() if v["inventory_management"] == "shopify"]
    before = Counter({v["id"]: v["inventory_quantity"] for v in tracked})
    orders = [generator.order(OrderOptions(channel="web")) for _ in range(30)]
    sold = Counter()
    for order in orders:
        for line in order["line_items"]:
            if line["variant_id"] in before:
                sold[line["variant_id"]] += line["quantity"]
    for variant in tracked:
        assert variant["inventory_quantity"] == before[variant["id"]] - sold[variant["id"]]
