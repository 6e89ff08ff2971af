"""Shopify payloads, as Shopify itself writes them, become canonical events.

The fixtures are vendor-written: Shopify's Python SDK test data (2013-2018 shapes) and the
2026-07 REST reference examples. Both generations must decode; new fields must not matter;
a missing field the model needs is a contract error that names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from seamline.connectors.shopify.connector import ShopifyOptions
from seamline.connectors.shopify.source import ShopifySource
from seamline.errors import ContractError
from seamline.settings import Secret

FIXTURES = Path(__file__).parents[1] / "fixtures/shopify"
OLD, NEW = "shopify_python_api", "shopify-api-ruby_2026-07_docs_examples"
source = ShopifySource(
    "shop", ShopifyOptions(shop="acme.myshopify.com", secrets=[Secret("s")], currency="USD")
)


def resource(path: str) -> dict[str, Any]:
    """The one resource in a fixture (a REST answer wraps it, lists hold it)."""
    data = orjson.loads((FIXTURES / path).read_bytes())
    (value,) = data.values()
    return value[0] if isinstance(value, list) else value


def decode(topic: str, body: dict[str, Any] | bytes) -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return source.decode({"x-shopify-topic": topic}, raw)


CASES = [
    # topic, fixture, event, a path in the canonical data, its value
    ("orders/create", f"{OLD}/order.json", "order.created", ("number",), "#1001"),
    (
        "orders/updated",
        f"{NEW}/orders.json__status=any.GET.response.json",
        "order.updated",
        ("totals", "total", "amount"),
        "598.94",
    ),
    ("orders/paid", f"{OLD}/order.json", "order.paid", ("lines", 0, "sku"), "IPOD2008GREEN"),
    (
        "orders/cancelled",
        f"{NEW}/orders.json__status=any.GET.response.json",
        "order.cancelled",
        ("currency",),
        "USD",
    ),
    ("refunds/create", f"{OLD}/refund.json", "refund.created", ("order_id",), "450789469"),
    (
        "refunds/create",
        f"{NEW}/orders_450789469_refunds_509562969.json.GET.response.json",
        "refund.created",
        ("lines", 0, "subtotal", "amount"),
        "195.66",
    ),
    (
        "fulfillments/create",
        f"{OLD}/fulfillment.json",
        "fulfillment.created",
        ("tracking_numbers", 0),
        "1Z2345",
    ),
    (
        "fulfillments/create",
        f"{NEW}/orders_450789469_fulfillments_255858046.json.GET.response.json",
        "fulfillment.created",
        ("order_id",),
        "450789469",
    ),
    (
        "products/create",
        f"{OLD}/product.json",
        "product.created",
        ("variants", 0, "price", "currency"),
        "USD",
    ),
    (
        "products/update",
        f"{NEW}/products_632910392.json.GET.response.json",
        "product.updated",
        ("variants", 0, "sku"),
        "IPOD2008PINK",
    ),
    (
        "inventory_levels/update",
        f"{OLD}/inventory_level.json",
        "inventory.changed",
        ("location_id",),
        "905684977",
    ),
    (
        "inventory_levels/update",
        f"{NEW}/inventory_levels_set.json.POST.response.json",
        "inventory.changed",
        ("available",),
        42,
    ),
    (
        "customers/create",
        f"{OLD}/customer.json",
        "customer.created",
        ("email",),
        "bob.norman@hostmail.com",
    ),
    (
        "customers/update",
        f"{NEW}/customers_207119551.json.GET.response.json",
        "customer.updated",
        ("id",),
        "207119551",
    ),
]


@pytest.mark.parametrize(
    ("topic", "fixture", "event", "path", "value"),
    CASES,
    ids=[f"{c[0]} {c[1].split('/')[0][:10]}" for c in CASES],
)
def test_vendor_payloads_of_both_generations_decode(
    topic: str, fixture: str, event: str, path: tuple[Any, ...], value: Any
) -> None:
    decoded = decode(topic, resource(fixture))
    assert decoded.name == event
    found: Any = decoded.data
    for step in path:
        found = found[step]
    assert found == value


def test_an_order_carries_its_business_keys_and_its_version() -> None:
    decoded = decode("orders/updated", resource(f"{NEW}/orders.json__status=any.GET.response.json"))
    assert decoded.keys["order"] == "#1001"
    assert decoded.keys["order_version"] == "450789469@1199980800"  # 2008-01-10T11:00:00-05:00
    assert decoded.version == 1199980800.0


def test_money_keeps_the_vendors_digits() -> None:
    order = resource(f"{NEW}/orders.json__status=any.GET.response.json")
    decoded = decode("orders/updated", order)
    assert decoded.data["lines"][0]["unit_price"] == {"amount": "199.00", "currency": "USD"}
    assert decoded.data["totals"]["tax"]["amount"] == order["total_tax"]


def test_new_fields_from_a_later_api_version_change_nothing() -> None:
    order = resource(f"{NEW}/orders.json__status=any.GET.response.json")
    plain = decode("orders/updated", order)
    richer = {
        **order,
        "loyalty_tier": {"name": "gold"},
        "line_items": [{**li, "carbon_offset": True} for li in order["line_items"]],
    }
    assert decode("orders/updated", richer).data == plain.data


def test_an_update_that_changed_nothing_decodes_like_any_update() -> None:
    order = resource(f"{OLD}/order.json")
    assert decode("orders/updated", order).data == decode("orders/updated", dict(order)).data


def test_lines_without_a_sku_have_none() -> None:
    order = resource(f"{OLD}/order.json")
    order["line_items"][0]["sku"] = ""
    assert decode("orders/create", order).data["lines"][0]["sku"] is None


BROKEN = [
    ("orders/create", lambda o: o.pop("line_items"), "line_items"),
    ("orders/create", lambda o: o.pop("id"), "'id'"),
    ("orders/create", lambda o: o.pop("currency"), "'currency'"),
    ("orders/create", lambda o: o["line_items"][0].pop("price"), "'price'"),
    ("orders/create", lambda o: o.update(fulfillment_status="teleported"), "teleported"),
    ("orders/create", lambda o: o["line_items"][0].update(quantity=-1), "quantity"),
]


@pytest.mark.parametrize(("topic", "damage", "named"), BROKEN, ids=[c[2] for c in BROKEN])
def test_a_missing_or_broken_field_is_a_contract_error_naming_it(
    topic: str, damage: Any, named: str
) -> None:
    order = resource(f"{OLD}/order.json")
    damage(order)
    with pytest.raises(ContractError, match=named) as caught:
        decode(topic, order)
    assert topic in str(caught.value)


def test_a_vendor_order_without_its_lines_is_refused_naming_them() -> None:
    # Shopify's own list fixture has an order without line_items (a `fields=` answer)
    with pytest.raises(ContractError, match="orders/paid: the order has no 'line_items'"):
        decode("orders/paid", resource(f"{OLD}/orders.json"))


def test_unknown_topics_and_non_json_bodies_are_contract_errors() -> None:
    with pytest.raises(ContractError, match="orders/delete"):
        decode("orders/delete", {"id": 1})
    with pytest.raises(ContractError, match="not JSON"):
        decode("orders/create", b"{not json")


def test_products_need_the_shops_currency() -> None:
    bare = ShopifySource("shop", ShopifyOptions(shop="acme.myshopify.com", secrets=[Secret("s")]))
    body = orjson.dumps(resource(f"{OLD}/product.json"))
    with pytest.raises(ContractError, match="currency"):
        bare.decode({"x-shopify-topic": "products/update"}, body)
