"""GraphQL field resolvers over the shop's REST documents.

The default resolver reads a field from a document by its snake_case name (``updatedAt`` →
``updated_at``), turns REST times into UTC ``DateTime``s, ``id`` into the document's
``admin_graphql_api_id`` and ``legacyResourceId`` into the numeric id as a string. The
functions here cover everything else: lookups by gid, connections, searches, enums.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from graphql import GraphQLError, GraphQLResolveInfo, get_named_type

from seamline.sandbox.shopify.clock import parse as parse_time
from seamline.sandbox.shopify.clock import utc_z
from seamline.sandbox.shopify.ids import parse_gid
from seamline.sandbox.shopify.pagination import CursorError, Key, connection
from seamline.sandbox.shopify.search import Getter
from seamline.sandbox.shopify.search import parse as parse_search
from seamline.sandbox.shopify.shop import Shop

Json = dict[str, Any]
Resolver = Callable[..., Any]


@dataclass(slots=True)
class Context:
    """What resolvers see: the shop, a way to run work after the answer, search warnings."""

    shop: Shop
    defer: Callable[[Callable[[], None]], None]
    search: list[Json] = field(default_factory=list)


RESOLVERS: dict[tuple[str, str], Resolver] = {}


def resolves(type_name: str, field_name: str) -> Callable[[Resolver], Resolver]:
    def register(function: Resolver) -> Resolver:
        RESOLVERS[(type_name, field_name)] = function
        return function

    return register


_CAMEL: Final = re.compile(r"(?<!^)(?=[A-Z])")


def resolve_field(source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
    """graphql-core's field resolver: a registered function, else the document's field."""
    function = RESOLVERS.get((info.parent_type.name, info.field_name))
    if function is not None:
        return function(source, info.context, **args)
    if not isinstance(source, dict):
        return None
    name = info.field_name
    if name == "id":
        return source.get("admin_graphql_api_id", source.get("id"))
    if name == "legacyResourceId":
        return str(source["id"])
    value = source[name] if name in source else source.get(_CAMEL.sub("_", name).lower())
    if value is not None and get_named_type(info.return_type).name == "DateTime":
        return utc_z(value)
    return value


def resolve_type(value: Any, info: GraphQLResolveInfo[Any], abstract: Any) -> str | None:
    """The concrete type of a ``Node``: the kind in its gid."""
    parsed = parse_gid(value.get("admin_graphql_api_id")) if isinstance(value, dict) else None
    return parsed[0] if parsed else None


def node_id(value: Any, kind: str | None = None) -> int | None:
    """The numeric id of a gid of ``kind``; None for another kind; an error if no gid at all."""
    parsed = parse_gid(value)
    if parsed is None:
        raise GraphQLError(f"Invalid global id '{value}'")
    return parsed[1] if kind is None or parsed[0] == kind else None


def find(shop: Shop, gid_text: Any) -> Json | None:
    """Any record by gid; None if the shop has none."""
    parsed = parse_gid(gid_text)
    if parsed is None:
        raise GraphQLError(f"Invalid global id '{gid_text}'")
    kind, record_id = parsed
    tables: dict[str, dict[int, Json]] = {
        "Order": shop.orders,
        "Product": shop.products,
        "ProductVariant": shop.variants,
        "InventoryItem": shop.items,
        "Location": shop.locations,
        "Customer": shop.customers,
        "FulfillmentOrder": shop.fulfillment_orders,
    }
    if kind in tables:
        record: Json | None = tables[kind].get(record_id)
        return record
    if kind == "InventoryLevel":
        match = re.search(r"inventory_item_id=(\d+)", str(gid_text))
        return shop.levels.get((int(match.group(1)), record_id)) if match else None
    for doc in shop.orders.values():
        nested = {
            "Fulfillment": doc["fulfillments"],
            "LineItem": doc["line_items"],
            "Refund": doc["refunds"],
        }.get(kind, [])
        for record in nested:
            if record["id"] == record_id:
                return record
    if kind == "FulfillmentOrderLineItem":
        for fo in shop.fulfillment_orders.values():
            for line in fo["line_items"]:
                if line["id"] == record_id:
                    return line  # type: ignore[no-any-return]  # a fulfillment order's line
    return None


def _page(items: Sequence[Json], key: Callable[[Json], Key], **args: Any) -> Json:
    try:
        return connection(
            items,
            key,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            reverse=bool(args.get("reverse")),
        )
    except CursorError as exc:
        raise GraphQLError(str(exc)) from None


def _by_id(record: Json) -> Key:
    return record["id"], record["id"]


def _time_key(name: str) -> Callable[[Json], Key]:
    return lambda record: (utc_z(record[name]), record["id"])


def _searched(
    ctx: Context,
    path: str,
    records: Sequence[Json],
    query: str | None,
    fields: dict[str, Getter],
    text: Getter,
) -> list[Json]:
    search = parse_search(query)
    unknown = search.unknown_fields(fields)
    if unknown or search.warnings:
        ctx.search.append(
            {
                "path": [path],
                "query": query,
                "warnings": [
                    {"field": f, "message": "Invalid search field for this query."} for f in unknown
                ]
                + [{"field": None, "message": w} for w in search.warnings],
            }
        )
    return [r for r in records if search.matches(r, fields, text)]


def _tags(record: Json) -> list[str]:
    return [t.strip() for t in record["tags"].split(",") if t.strip()]


def _first(records: list[Json], first: int | None) -> list[Json]:
    return records if first is None else records[:first]


@resolves("Order", "fulfillments")
def _fulfillments(order: Json, ctx: Context, first: int | None = None) -> list[Json]:
    return _first(order["fulfillments"], first)


@resolves("Order", "refunds")
def _refunds(order: Json, ctx: Context, first: int | None = None) -> list[Json]:
    return _first(order["refunds"], first)


def _bag(money_set: Json | None) -> Json | None:
    if money_set is None:
        return None
    return {
        "shopMoney": _money(money_set["shop_money"]),
        "presentmentMoney": _money(money_set["presentment_money"]),
    }


def _money(money: Json) -> Json:
    return {"amount": money["amount"], "currencyCode": money["currency_code"]}


# roots -----------------------------------------------------------------------------------


@resolves("QueryRoot", "node")
def _node(_: Any, ctx: Context, id: str) -> Json | None:
    return find(ctx.shop, id)


@resolves("QueryRoot", "nodes")
def _nodes(_: Any, ctx: Context, ids: list[str]) -> list[Json | None]:
    return [find(ctx.shop, i) for i in ids]


@resolves("QueryRoot", "shop")
def _shop(_: Any, ctx: Context) -> Json:
    shop = ctx.shop
    offset = shop.clock.zone.utcoffset(None)
    hours = -int(offset.total_seconds() // 3600)
    return {
        "admin_graphql_api_id": f"gid://shopify/Shop/{zlib.crc32(shop.domain.encode())}",
        "name": shop.domain.removesuffix(".myshopify.com"),
        "myshopifyDomain": shop.domain,
        "currencyCode": shop.currency,
        "ianaTimezone": "Etc/UTC" if hours == 0 else f"Etc/GMT{hours:+d}",
    }


@resolves("QueryRoot", "job")
def _job(_: Any, ctx: Context, id: str) -> Json | None:
    job_id = id.rsplit("/", 1)[-1]
    if job_id not in ctx.shop.jobs:
        return None
    return {"admin_graphql_api_id": id, "done": ctx.shop.jobs[job_id], "query": {}}


def _typed(kind: str, table: Callable[[Shop], dict[int, Json]]) -> Resolver:
    def lookup(_: Any, ctx: Context, id: str | None = None) -> Json | None:
        if id is None:
            return None
        record_id = node_id(id, kind)
        return None if record_id is None else table(ctx.shop).get(record_id)

    return lookup


for _kind, _field, _table in (
    ("Order", "order", lambda s: s.orders),
    ("Customer", "customer", lambda s: s.customers),
    ("Product", "product", lambda s: s.products),
    ("ProductVariant", "productVariant", lambda s: s.variants),
    ("InventoryItem", "inventoryItem", lambda s: s.items),
):
    RESOLVERS[("QueryRoot", _field)] = _typed(_kind, _table)


@resolves("QueryRoot", "location")
def _location(_: Any, ctx: Context, id: str | None = None) -> Json | None:
    if id is None:
        return ctx.shop.locations[min(ctx.shop.locations)]
    record_id = node_id(id, "Location")
    return None if record_id is None else ctx.shop.locations.get(record_id)


@resolves("QueryRoot", "inventoryLevel")
def _inventory_level(_: Any, ctx: Context, id: str) -> Json | None:
    return find(ctx.shop, id)


@resolves("QueryRoot", "locations")
def _locations(_: Any, ctx: Context, **args: Any) -> Json:
    return _page(list(ctx.shop.locations.values()), _by_id, **args)


def _order_status(doc: Json) -> list[str]:
    if doc["cancelled_at"]:
        return ["cancelled", "closed"] if doc["closed_at"] else ["cancelled"]
    return ["closed"] if doc["closed_at"] else ["open"]


ORDER_SEARCH: Final[dict[str, Getter]] = {
    "updated_at": lambda o: parse_time(o["updated_at"]),
    "created_at": lambda o: parse_time(o["created_at"]),
    "processed_at": lambda o: parse_time(o["processed_at"]),
    "id": lambda o: o["id"],
    "name": lambda o: [o["name"], o["name"].lstrip("#")],
    "email": lambda o: o["email"],
    "financial_status": lambda o: o["financial_status"],
    "fulfillment_status": lambda o: o["fulfillment_status"] or "unfulfilled",
    "status": _order_status,
    "test": lambda o: o["test"],
    "tag": _tags,
    "sku": lambda o: [li["sku"] for li in o["line_items"] if li["sku"]],
    "source_name": lambda o: o["source_name"],
}
ORDER_KEYS: Final[dict[str, Callable[[Json], Key]]] = {
    "ID": _by_id,
    "RELEVANCE": _by_id,
    "CREATED_AT": _time_key("created_at"),
    "UPDATED_AT": _time_key("updated_at"),
    "PROCESSED_AT": _time_key("processed_at"),
    "ORDER_NUMBER": lambda o: (o["order_number"], o["id"]),
}


def _order_text(order: Json) -> str:
    return f"{order['name']} {order['email']} {order['note'] or ''}"


@resolves("QueryRoot", "orders")
def _orders(
    _: Any, ctx: Context, query: str | None = None, sortKey: str = "ID", **args: Any
) -> Json:
    orders = list(ctx.shop.orders.values())
    found = _searched(ctx, "orders", orders, query, ORDER_SEARCH, _order_text)
    return _page(found, ORDER_KEYS[sortKey], **args)


PRODUCT_SEARCH: Final[dict[str, Getter]] = {
    "updated_at": lambda p: parse_time(p["updated_at"]),
    "created_at": lambda p: parse_time(p["created_at"]),
    "id": lambda p: p["id"],
    "title": lambda p: p["title"],
    "handle": lambda p: p["handle"],
    "vendor": lambda p: p["vendor"],
    "product_type": lambda p: p["product_type"],
    "status": lambda p: p["status"],
    "tag": _tags,
    "sku": lambda p: [v["sku"] for v in p["variants"] if v["sku"]],
}
PRODUCT_KEYS: Final[dict[str, Callable[[Json], Key]]] = {
    "ID": _by_id,
    "RELEVANCE": _by_id,
    "CREATED_AT": _time_key("created_at"),
    "UPDATED_AT": _time_key("updated_at"),
    "TITLE": lambda p: (p["title"].lower(), p["id"]),
}


def _product_text(product: Json) -> str:
    return str(product["title"])


@resolves("QueryRoot", "products")
def _products(
    _: Any, ctx: Context, query: str | None = None, sortKey: str = "ID", **args: Any
) -> Json:
    products = list(ctx.shop.products.values())
    found = _searched(ctx, "products", products, query, PRODUCT_SEARCH, _product_text)
    return _page(found, PRODUCT_KEYS[sortKey], **args)


CUSTOMER_SEARCH: Final[dict[str, Getter]] = {
    "id": lambda c: c["id"],
    "email": lambda c: c["email"],
    "phone": lambda c: c["phone"],
    "created_at": lambda c: parse_time(c["created_at"]),
    "updated_at": lambda c: parse_time(c["updated_at"]),
}
CUSTOMER_KEYS: Final[dict[str, Callable[[Json], Key]]] = {
    "ID": _by_id,
    "RELEVANCE": _by_id,
    "CREATED_AT": _time_key("created_at"),
    "UPDATED_AT": _time_key("updated_at"),
}


def _customer_text(customer: Json) -> str:
    return " ".join(str(customer.get(k) or "") for k in ("first_name", "last_name", "email"))


@resolves("QueryRoot", "customers")
def _customers(
    _: Any, ctx: Context, query: str | None = None, sortKey: str = "ID", **args: Any
) -> Json:
    customers = list(ctx.shop.customers.values())
    found = _searched(ctx, "customers", customers, query, CUSTOMER_SEARCH, _customer_text)
    return _page(found, CUSTOMER_KEYS[sortKey], **args)


VARIANT_SEARCH: Final[dict[str, Getter]] = {
    "sku": lambda v: v["sku"],
    "barcode": lambda v: v["barcode"],
    "title": lambda v: v["title"],
    "id": lambda v: v["id"],
    "product_id": lambda v: v["product_id"],
    "updated_at": lambda v: parse_time(v["updated_at"]),
    "inventory_item_id": lambda v: v["inventory_item_id"],
}
VARIANT_KEYS: Final[dict[str, Callable[[Json], Key]]] = {
    "ID": _by_id,
    "RELEVANCE": _by_id,
    "SKU": lambda v: (v["sku"] or "", v["id"]),
    "TITLE": lambda v: (v["title"].lower(), v["id"]),
    "POSITION": lambda v: (v["position"], v["id"]),
}


def _variant_text(variant: Json) -> str:
    return f"{variant['title']} {variant['sku'] or ''}"


@resolves("QueryRoot", "productVariants")
def _variants(
    _: Any, ctx: Context, query: str | None = None, sortKey: str = "ID", **args: Any
) -> Json:
    variants = list(ctx.shop.variants.values())
    found = _searched(ctx, "productVariants", variants, query, VARIANT_SEARCH, _variant_text)
    return _page(found, VARIANT_KEYS[sortKey], **args)


# orders ----------------------------------------------------------------------------------

_FULFILLMENT_DISPLAY: Final = {
    None: "UNFULFILLED",
    "partial": "PARTIALLY_FULFILLED",
    "fulfilled": "FULFILLED",
    "restocked": "RESTOCKED",
}

RESOLVERS.update(
    {
        ("Order", "tags"): lambda o, ctx: _tags(o),
        ("Order", "closed"): lambda o, ctx: o["closed_at"] is not None,
        ("Order", "cancelReason"): lambda o, ctx: (o["cancel_reason"] or "").upper() or None,
        ("Order", "currencyCode"): lambda o, ctx: o["currency"],
        ("Order", "presentmentCurrencyCode"): lambda o, ctx: o["presentment_currency"],
        ("Order", "displayFinancialStatus"): lambda o, ctx: o["financial_status"].upper(),
        ("Order", "displayFulfillmentStatus"): lambda o, ctx: _FULFILLMENT_DISPLAY[
            o["fulfillment_status"]
        ],
        ("Order", "totalPriceSet"): lambda o, ctx: _bag(o["total_price_set"]),
        ("Order", "currentTotalPriceSet"): lambda o, ctx: _bag(o["current_total_price_set"]),
        ("Order", "subtotalPriceSet"): lambda o, ctx: _bag(o["subtotal_price_set"]),
        ("Order", "totalTaxSet"): lambda o, ctx: _bag(o["total_tax_set"]),
        ("Order", "customer"): lambda o, ctx: ctx.shop.customers.get(
            (o["customer"] or {}).get("id")
        ),
        ("Order", "lineItems"): lambda o, ctx, **a: _page(o["line_items"], _by_id, **a),
        ("Order", "fulfillmentOrders"): lambda o, ctx, **a: _page(
            ctx.shop.order_fulfillment_orders(o["id"]), _by_id, **a
        ),
        ("LineItem", "unfulfilledQuantity"): lambda li, ctx: li["fulfillable_quantity"],
        ("LineItem", "originalUnitPriceSet"): lambda li, ctx: _bag(li["price_set"]),
        ("LineItem", "variant"): lambda li, ctx: ctx.shop.variants.get(li["variant_id"]),
        ("LineItem", "product"): lambda li, ctx: ctx.shop.products.get(li["product_id"]),
        ("Customer", "displayName"): lambda c, ctx: f"{c['first_name']} {c['last_name']}".strip(),
        ("Customer", "tags"): lambda c, ctx: _tags(c),
        ("Customer", "numberOfOrders"): lambda c, ctx: str(c["orders_count"]),
    }
)


@resolves("Refund", "totalRefundedSet")
def _refunded(refund: Json, ctx: Context) -> Json | None:
    """What the refund's transactions paid back, in the order's two currencies."""
    doc = ctx.shop.orders[refund["order_id"]]
    shop_total, presentment_total = Decimal(0), Decimal(0)
    for line in refund["refund_line_items"]:
        parts = (
            [line["subtotal_set"]]
            if doc["taxes_included"]
            else [line["subtotal_set"], line["total_tax_set"]]
        )
        for part in parts:
            shop_total += Decimal(part["shop_money"]["amount"])
            presentment_total += Decimal(part["presentment_money"]["amount"])
    for adjustment in refund["order_adjustments"]:
        parts = (
            [adjustment["amount_set"]]
            if doc["taxes_included"]
            else [adjustment["amount_set"], adjustment["tax_amount_set"]]
        )
        for part in parts:
            shop_total -= Decimal(part["shop_money"]["amount"])
            presentment_total -= Decimal(part["presentment_money"]["amount"])
    return {
        "shopMoney": {"amount": f"{shop_total:.2f}", "currencyCode": doc["currency"]},
        "presentmentMoney": {
            "amount": f"{presentment_total:.2f}",
            "currencyCode": doc["presentment_currency"],
        },
    }


# fulfillment -----------------------------------------------------------------------------


@resolves("Fulfillment", "trackingInfo")
def _tracking(fulfillment: Json, ctx: Context, first: int | None = None) -> list[Json]:
    numbers = fulfillment["tracking_numbers"] or [None]
    urls = fulfillment["tracking_urls"]
    infos = [
        {
            "company": fulfillment["tracking_company"],
            "number": number,
            "url": urls[i] if i < len(urls) else None,
        }
        for i, number in enumerate(numbers)
    ]
    if infos == [{"company": None, "number": None, "url": None}]:
        infos = []
    return infos[:first]


RESOLVERS.update(
    {
        ("Fulfillment", "status"): lambda f, ctx: f["status"].upper(),
        ("Fulfillment", "totalQuantity"): lambda f, ctx: sum(
            li["quantity"] for li in f["line_items"]
        ),
        ("Fulfillment", "location"): lambda f, ctx: ctx.shop.locations.get(f["location_id"]),
        ("Fulfillment", "order"): lambda f, ctx: ctx.shop.orders.get(f["order_id"]),
        ("FulfillmentOrder", "orderId"): lambda fo, ctx: f"gid://shopify/Order/{fo['order_id']}",
        ("FulfillmentOrder", "orderName"): lambda fo, ctx: ctx.shop.orders[fo["order_id"]]["name"],
        ("FulfillmentOrder", "assignedLocation"): lambda fo, ctx: _assigned(ctx, fo),
        ("FulfillmentOrder", "lineItems"): lambda fo, ctx, **a: _page(
            fo["line_items"], _by_id, **a
        ),
        ("FulfillmentOrderLineItem", "lineItem"): lambda fl, ctx: ctx.shop.line(
            ctx.shop.orders[fl["order_id"]], fl["line_item_id"]
        ),
        ("FulfillmentOrderLineItem", "sku"): lambda fl, ctx: ctx.shop.line(
            ctx.shop.orders[fl["order_id"]], fl["line_item_id"]
        )["sku"],
        ("FulfillmentOrderLineItem", "variant"): lambda fl, ctx: ctx.shop.variants.get(
            ctx.shop.line(ctx.shop.orders[fl["order_id"]], fl["line_item_id"])["variant_id"]
        ),
    }
)


def _assigned(ctx: Context, fo: Json) -> Json:
    location = ctx.shop.locations[fo["assigned_location_id"]]
    return {"name": location["name"], "countryCode": location["country_code"], "location": location}


# catalogue and inventory -----------------------------------------------------------------

QUANTITY_NAMES: Final = (
    "available",
    "on_hand",
    "committed",
    "incoming",
    "reserved",
    "damaged",
    "safety_stock",
    "quality_control",
)


@resolves("InventoryLevel", "quantities")
def _quantities(level: Json, ctx: Context, names: list[str]) -> list[Json]:
    item_id, location_id = level["inventory_item_id"], level["location_id"]
    values = {
        "available": level["available"],
        "on_hand": ctx.shop.on_hand(item_id, location_id),
        "committed": ctx.shop.committed.get((item_id, location_id), 0),
    }
    unknown = [n for n in names if n not in QUANTITY_NAMES]
    if unknown:
        raise GraphQLError(f"Invalid quantity names: {', '.join(unknown)}")
    return [
        {"name": n, "quantity": values.get(n, 0), "updated_at": level["updated_at"]} for n in names
    ]


@resolves("InventoryItem", "inventoryLevel")
def _item_level(item: Json, ctx: Context, locationId: str) -> Json | None:
    location_id = node_id(locationId, "Location")
    return None if location_id is None else ctx.shop.levels.get((item["id"], location_id))


@resolves("InventoryItem", "inventoryLevels")
def _item_levels(item: Json, ctx: Context, **args: Any) -> Json:
    levels = [lv for (item_id, _), lv in ctx.shop.levels.items() if item_id == item["id"]]
    return _page(levels, lambda lv: (lv["location_id"], lv["location_id"]), **args)


RESOLVERS.update(
    {
        ("Product", "tags"): lambda p, ctx: _tags(p),
        ("Product", "status"): lambda p, ctx: p["status"].upper(),
        ("Product", "totalInventory"): lambda p, ctx: sum(
            v["inventory_quantity"] for v in p["variants"]
        ),
        ("Product", "variants"): lambda p, ctx, **a: _page(
            p["variants"], lambda v: (v["position"], v["id"]), **a
        ),
        ("ProductVariant", "displayName"): lambda v, ctx: (
            f"{ctx.shop.products[v['product_id']]['title']} - {v['title']}"
        ),
        ("ProductVariant", "product"): lambda v, ctx: ctx.shop.products[v["product_id"]],
        ("ProductVariant", "inventoryItem"): lambda v, ctx: ctx.shop.items[v["inventory_item_id"]],
        ("InventoryItem", "variant"): lambda i, ctx: ctx.shop.variant_of_item(i["id"]),
        ("InventoryLevel", "item"): lambda lv, ctx: ctx.shop.items[lv["inventory_item_id"]],
        ("InventoryLevel", "location"): lambda lv, ctx: ctx.shop.locations[lv["location_id"]],
        ("Location", "isActive"): lambda loc, ctx: loc["active"],
        ("Location", "fulfillsOnlineOrders"): lambda loc, ctx: True,
        ("Job", "query"): lambda job, ctx: {},
    }
)
