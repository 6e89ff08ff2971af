"""The REST Admin API resources the connector reads and writes (webhook-shaped JSON).

Lists paginate with cursors like Shopify's: ``limit`` (default 50, at most 250) and, when
there are more, a ``Link`` header ``<...?limit=N&page_info=X>; rel="next"`` (and
``rel="previous"`` after the first page). A ``page_info`` request may add only ``limit`` and
``fields``: its filters are the first request's, carried inside ``page_info``. ``fields``
trims each record to the named keys. ``orders.json`` lists only open orders unless
``status`` says otherwise, newest first (ascending ids with ``since_id``); other lists are
in ascending id order.

Errors have Shopify's shapes: 404 ``{"errors": "Not Found"}``; 400 for a missing or invalid
parameter; 422 ``{"errors": {...}}`` for a refused change.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import web

from seamline.sandbox.shopify.clock import parse as parse_time
from seamline.sandbox.shopify.pagination import CursorError, decode_page_info, encode_page_info
from seamline.sandbox.shopify.shop import ShopError

if TYPE_CHECKING:
    from seamline.sandbox.shopify.simulator import ShopifySimulator

Json = dict[str, Any]
Filter = Callable[[Json, dict[str, str]], bool]
SortKey = Callable[[Json], tuple[int, ...]]
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 250
NOT_FOUND: Final = {"errors": "Not Found"}
API_VERSION: Final = web.RequestKey("api_version", str)
"""The version answering the request (after falling forward), set by the server."""


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _by_id(record: Json) -> tuple[int, ...]:
    return (record["id"],)


def _ids(text: str) -> set[int]:
    return {int(part) for part in text.split(",") if part.strip().isdigit()}


def _time(record: Json, name: str) -> datetime:
    return parse_time(record[name])


def _time_filters(record: Json, filters: dict[str, str], names: Sequence[str]) -> bool:
    for name in names:
        low, high = filters.get(f"{name}_min"), filters.get(f"{name}_max")
        if low is not None and _time(record, name) < parse_time(low):
            return False
        if high is not None and _time(record, name) > parse_time(high):
            return False
    return True


def _common(record: Json, filters: dict[str, str]) -> bool:
    if "ids" in filters and record["id"] not in _ids(filters["ids"]):
        return False
    if "since_id" in filters and record["id"] <= int(filters["since_id"] or 0):
        return False
    return _time_filters(record, filters, ("created_at", "updated_at"))


def _order_filter(order: Json, filters: dict[str, str]) -> bool:
    if not _common(order, filters) or not _time_filters(order, filters, ("processed_at",)):
        return False
    status = filters.get("status", "open")
    if status == "open" and (order["closed_at"] or order["cancelled_at"]):
        return False
    if status == "closed" and not order["closed_at"]:
        return False
    if status == "cancelled" and not order["cancelled_at"]:
        return False
    financial = filters.get("financial_status", "any")
    if financial == "unpaid":
        financial_ok = order["financial_status"] in ("pending", "authorized", "partially_paid")
    else:
        financial_ok = financial == "any" or order["financial_status"] == financial
    fulfillment = filters.get("fulfillment_status", "any")
    wanted = {
        "shipped": ("fulfilled",),
        "partial": ("partial",),
        "unshipped": (None,),
        "unfulfilled": (None, "partial"),
    }.get(fulfillment)
    fulfillment_ok = wanted is None or order["fulfillment_status"] in wanted
    name = filters.get("name")
    return financial_ok and fulfillment_ok and (name is None or order["name"] in (name, f"#{name}"))


def _product_filter(product: Json, filters: dict[str, str]) -> bool:
    if not _common(product, filters):
        return False
    return all(
        filters[key] == product[key]
        for key in ("title", "vendor", "product_type", "status", "handle")
        if key in filters
    )


def _level_filter(level: Json, filters: dict[str, str]) -> bool:
    if "inventory_item_ids" in filters and level["inventory_item_id"] not in _ids(
        filters["inventory_item_ids"]
    ):
        return False
    if "location_ids" in filters and level["location_id"] not in _ids(filters["location_ids"]):
        return False
    return _time_filters(level, filters, ("updated_at",))


class RestApi:
    """Handlers for ``/admin/api/{version}/...json``; auth and limits are the server's."""

    def __init__(self, sim: ShopifySimulator) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        base = "/admin/api/{version}"
        number = r"{id:\d+}"
        return [
            web.get(f"{base}/orders.json", self.orders),
            web.get(f"{base}/orders/count.json", self.orders_count),
            web.get(f"{base}/orders/{number}.json", self.order),
            web.get(f"{base}/orders/{number}/fulfillments.json", self.fulfillments),
            web.get(f"{base}/orders/{number}/refunds.json", self.refunds),
            web.get(f"{base}/products.json", self.products),
            web.get(f"{base}/products/count.json", self.products_count),
            web.get(f"{base}/products/{number}.json", self.product),
            web.get(f"{base}/variants/{number}.json", self.variant),
            web.get(f"{base}/customers.json", self.customers),
            web.get(f"{base}/customers/{number}.json", self.customer),
            web.get(f"{base}/locations.json", self.locations),
            web.get(f"{base}/locations/{number}.json", self.location),
            web.get(f"{base}/inventory_levels.json", self.inventory_levels),
            web.post(f"{base}/inventory_levels/set.json", self.set_level),
            web.post(f"{base}/inventory_levels/adjust.json", self.adjust_level),
            web.get(f"{base}/webhooks.json", self.webhooks),
            web.post(f"{base}/webhooks.json", self.create_webhook),
            web.get(f"{base}/webhooks/{number}.json", self.webhook),
            web.delete(f"{base}/webhooks/{number}.json", self.delete_webhook),
        ]

    # lists -------------------------------------------------------------------------------

    def _list(
        self,
        request: web.Request,
        resource: str,
        records: Sequence[Json],
        keep: Filter,
        *,
        newest_first: bool = False,
        key: SortKey = _by_id,
    ) -> web.Response:
        query = request.query
        try:
            limit = min(MAX_LIMIT, max(1, int(query.get("limit", DEFAULT_LIMIT))))
        except ValueError:
            return json_response({"errors": {"limit": "Invalid value."}}, 400)
        marker: tuple[tuple[int, ...], str] | None = None
        if "page_info" in query:
            extra = sorted(set(query) - {"page_info", "limit", "fields"})
            if extra:
                message = f"Parameters cannot be used with page_info: {', '.join(extra)}"
                return json_response({"errors": {"page_info": message}}, 400)
            try:
                filters, last, direction = decode_page_info(query["page_info"])
            except CursorError:
                return json_response({"errors": {"page_info": "Invalid value."}}, 400)
            marker = (last, direction)
        else:
            filters = {k: v for k, v in query.items() if k not in ("limit", "fields")}
        try:
            found = [r for r in records if keep(r, filters)]
        except ValueError as exc:
            return json_response({"errors": {"base": [f"Invalid filter: {exc}"]}}, 400)
        descending = newest_first and "since_id" not in filters
        found.sort(key=key, reverse=descending)
        first = 0
        page = found[:limit]
        if marker is not None:
            last, direction = marker
            # The list is sorted, so records before the boundary are a prefix, those
            # beyond it a suffix; the boundary record itself may have left the list.
            before = sum(1 for r in found if (key(r) > last if descending else key(r) < last))
            beyond = sum(1 for r in found if (key(r) < last if descending else key(r) > last))
            if direction == "next":
                first = len(found) - beyond
                page = found[first : first + limit]
            else:
                first = max(0, before - limit)
                page = found[first:before]
        links = []
        if page and first > 0:
            links.append(self._link(request, resource, filters, limit, key(page[0]), "prev"))
        if page and first + len(page) < len(found):
            links.append(self._link(request, resource, filters, limit, key(page[-1]), "next"))
        headers = {"Link": ", ".join(links)} if links else None
        return json_response({resource: _trim(page, query.get("fields"))}, headers=headers)

    def _link(
        self,
        request: web.Request,
        resource: str,
        filters: dict[str, str],
        limit: int,
        boundary: tuple[int, ...],
        direction: str,
    ) -> str:
        page_info = encode_page_info(filters, boundary, direction)
        params = urllib.parse.urlencode({"limit": limit, "page_info": page_info})
        version = request.match_info["version"]
        url = f"{request.scheme}://{request.host}/admin/api/{version}/{resource}.json?{params}"
        rel = "next" if direction == "next" else "previous"
        return f'<{url}>; rel="{rel}"'

    async def orders(self, request: web.Request) -> web.Response:
        orders = list(self.sim.store.orders.values())
        return self._list(request, "orders", orders, _order_filter, newest_first=True)

    async def orders_count(self, request: web.Request) -> web.Response:
        filters = dict(request.query)
        return json_response(
            {"count": sum(1 for o in self.sim.store.orders.values() if _order_filter(o, filters))}
        )

    async def products(self, request: web.Request) -> web.Response:
        return self._list(
            request, "products", list(self.sim.store.products.values()), _product_filter
        )

    async def products_count(self, request: web.Request) -> web.Response:
        filters = dict(request.query)
        return json_response(
            {
                "count": sum(
                    1 for p in self.sim.store.products.values() if _product_filter(p, filters)
                )
            }
        )

    async def customers(self, request: web.Request) -> web.Response:
        return self._list(request, "customers", list(self.sim.store.customers.values()), _common)

    async def locations(self, request: web.Request) -> web.Response:
        return self._list(
            request, "locations", list(self.sim.store.locations.values()), lambda r, f: True
        )

    async def inventory_levels(self, request: web.Request) -> web.Response:
        query = request.query
        if "page_info" not in query and not ({"inventory_item_ids", "location_ids"} & set(query)):
            message = "One of inventory_item_ids or location_ids is required"
            return json_response({"errors": {"base": [message]}}, 422)
        levels = list(self.sim.store.levels.values())
        return self._list(
            request,
            "inventory_levels",
            levels,
            _level_filter,
            key=lambda lv: (lv["inventory_item_id"], lv["location_id"]),
        )

    async def webhooks(self, request: web.Request) -> web.Response:
        subscriptions = [s.rest() for s in self.sim.webhooks.subscriptions.values()]

        def keep(record: Json, filters: dict[str, str]) -> bool:
            return _common(record, filters) and all(
                filters[k] == record[k] for k in ("topic", "address") if k in filters
            )

        return self._list(request, "webhooks", subscriptions, keep)

    # single records ----------------------------------------------------------------------

    def _one(self, name: str, record: Json | None, request: web.Request) -> web.Response:
        if record is None:
            return json_response(NOT_FOUND, 404)
        return json_response({name: _trim([record], request.query.get("fields"))[0]})

    async def order(self, request: web.Request) -> web.Response:
        return self._one("order", self.sim.store.orders.get(int(request.match_info["id"])), request)

    async def fulfillments(self, request: web.Request) -> web.Response:
        order = self.sim.store.orders.get(int(request.match_info["id"]))
        if order is None:
            return json_response(NOT_FOUND, 404)
        return json_response({"fulfillments": order["fulfillments"]})

    async def refunds(self, request: web.Request) -> web.Response:
        order = self.sim.store.orders.get(int(request.match_info["id"]))
        if order is None:
            return json_response(NOT_FOUND, 404)
        return json_response(
            {"refunds": [self.sim.store.refunds[r["id"]] for r in order["refunds"]]}
        )

    async def product(self, request: web.Request) -> web.Response:
        return self._one(
            "product", self.sim.store.products.get(int(request.match_info["id"])), request
        )

    async def variant(self, request: web.Request) -> web.Response:
        return self._one(
            "variant", self.sim.store.variants.get(int(request.match_info["id"])), request
        )

    async def customer(self, request: web.Request) -> web.Response:
        return self._one(
            "customer", self.sim.store.customers.get(int(request.match_info["id"])), request
        )

    async def location(self, request: web.Request) -> web.Response:
        return self._one(
            "location", self.sim.store.locations.get(int(request.match_info["id"])), request
        )

    async def webhook(self, request: web.Request) -> web.Response:
        subscription = self.sim.webhooks.subscriptions.get(int(request.match_info["id"]))
        return self._one("webhook", subscription.rest() if subscription else None, request)

    # changes -----------------------------------------------------------------------------

    async def _body(self, request: web.Request, wrapper: str | None = None) -> Json | web.Response:
        try:
            body = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            return json_response({"errors": "Invalid JSON in request body"}, 400)
        if wrapper is not None:
            body = body.get(wrapper) if isinstance(body, dict) else None
        if not isinstance(body, dict):
            return json_response(
                {"errors": {wrapper or "body": "Required parameter missing or invalid"}}, 400
            )
        return body

    async def set_level(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        return self._level_change(body, "available")

    async def adjust_level(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        return self._level_change(body, "available_adjustment")

    def _level_change(self, body: Json, amount: str) -> web.Response:
        for name in ("location_id", "inventory_item_id", amount):
            if not isinstance(body.get(name), int) or isinstance(body.get(name), bool):
                return json_response(
                    {"errors": {name: "Required parameter missing or invalid"}}, 400
                )
        store = self.sim.store
        item_id, location_id = body["inventory_item_id"], body["location_id"]
        try:
            store.check_level(item_id, location_id)
            level = store.levels.get((item_id, location_id))
            current = level["available"] if level else 0
            target = body[amount] if amount == "available" else current + body[amount]
            level, _ = store.set_available(item_id, location_id, target)
        except ShopError as error:
            return json_response({"errors": [error.message]}, 422)
        return json_response({"inventory_level": level})

    async def create_webhook(self, request: web.Request) -> web.Response:
        body = await self._body(request, "webhook")
        if isinstance(body, web.Response):
            return body
        topic, address = body.get("topic"), body.get("address")
        if body.get("format", "json") != "json":
            return json_response({"errors": {"format": ["is not supported: only json"]}}, 422)
        if not isinstance(topic, str) or not isinstance(address, str):
            return json_response(
                {"errors": {"topic": ["can't be blank"], "address": ["can't be blank"]}}, 422
            )
        try:
            subscription = self.sim.webhooks.subscribe(
                topic, address, api_version=request[API_VERSION]
            )
        except ValueError as exc:
            field = "address" if "ddress" in str(exc) else "topic"
            return json_response({"errors": {field: [str(exc)]}}, 422)
        return json_response({"webhook": subscription.rest()}, 201)

    async def delete_webhook(self, request: web.Request) -> web.Response:
        if not self.sim.webhooks.unsubscribe(int(request.match_info["id"])):
            return json_response(NOT_FOUND, 404)
        return json_response({})


def _trim(records: Sequence[Json], fields: str | None) -> list[Json]:
    if not fields:
        return list(records)
    wanted = [f.strip() for f in fields.split(",") if f.strip()]
    return [{k: r[k] for k in wanted if k in r} for r in records]
