"""``/_sim/``: drive the simulator over HTTP (tests in other processes, the demo, load runs).

No authentication: the server listens on 127.0.0.1 only. Bodies and answers are JSON;
a refused request answers 400 (bad input), 404 (unknown record) or 422 (the shop refused the
change) with ``{"error": "..."}``.

| route                               | body                                                  |
|-------------------------------------|-------------------------------------------------------|
| ``POST /_sim/orders``               | ``count``, `OrderOptions` fields, and ``cancel``,     |
|                                     | ``refund``, ``edit``, ``fulfill``: how many of them    |
| ``POST /_sim/orders/{id}/edit``     | ``add: [{variant_id, quantity}]``,                    |
|                                     | ``remove: [{line_item_id, quantity}]``; none: random  |
| ``POST /_sim/orders/{id}/refund``   | ``lines: [{line_item_id, quantity}]``, ``restock``,    |
|                                     | ``note``, ``shipping``; no lines: a random partial one |
| ``POST /_sim/orders/{id}/cancel``   | ``reason``, ``refund``, ``restock``                     |
| ``POST /_sim/orders/{id}/fulfill``  | ``tracking: {number, company, url}``                  |
| ``POST /_sim/orders/{id}/pay``      |                                                       |
| ``POST /_sim/inventory``            | ``inventory_item_id``, ``location_id`` (default: the  |
|                                     | first), ``available`` or ``adjust``                   |
| ``POST /_sim/products``             | ``title``, ``variants``: a new product                |
| ``POST /_sim/products/{id}``        | ``title``, ``price``, ``tags``                          |
| ``POST /_sim/webhooks``             | ``topic``, ``address``, ``api_version``                 |
| ``GET|POST /_sim/faults``           | any `Faults` switches                                  |
| ``POST /_sim/secret``               | ``secret`` (default: new), ``grace_seconds``           |
| ``GET /_sim/state``                 | counts, buckets, faults, deliveries by outcome        |
| ``GET /_sim/deliveries``            | ``?topic=&outcome=``: the delivery log                 |
| ``POST /_sim/settle``               | ``timeout``: wait until no delivery is pending        |
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from seamline.sandbox.shopify.rest import json_response
from seamline.sandbox.shopify.shop import ShopError

if TYPE_CHECKING:
    from seamline.sandbox.shopify.simulator import ShopifySimulator

Json = dict[str, Any]
Action = Callable[[web.Request, Json], Awaitable[Any]]


def summary(order: Json) -> Json:
    """The fields of an order a test or an operator looks at first."""
    keys = (
        "id",
        "admin_graphql_api_id",
        "name",
        "source_name",
        "test",
        "currency",
        "presentment_currency",
        "financial_status",
        "fulfillment_status",
        "cancelled_at",
        "total_price",
        "current_total_price",
        "updated_at",
    )
    return {k: order[k] for k in keys}


class Control:
    def __init__(self, sim: ShopifySimulator) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        order = r"/_sim/orders/{id:\d+}"
        return [
            web.post("/_sim/orders", self._wrap(self.orders)),
            web.post(f"{order}/edit", self._wrap(self.edit)),
            web.post(f"{order}/refund", self._wrap(self.refund)),
            web.post(f"{order}/cancel", self._wrap(self.cancel)),
            web.post(f"{order}/fulfill", self._wrap(self.fulfill)),
            web.post(f"{order}/pay", self._wrap(self.pay)),
            web.post("/_sim/inventory", self._wrap(self.inventory)),
            web.post("/_sim/products", self._wrap(self.create_product)),
            web.post(r"/_sim/products/{id:\d+}", self._wrap(self.update_product)),
            web.post("/_sim/webhooks", self._wrap(self.subscribe)),
            web.get("/_sim/faults", self._wrap(self.faults)),
            web.post("/_sim/faults", self._wrap(self.set_faults)),
            web.post("/_sim/secret", self._wrap(self.secret)),
            web.get("/_sim/state", self._wrap(self.state)),
            web.get("/_sim/deliveries", self._wrap(self.deliveries)),
            web.post("/_sim/settle", self._wrap(self.settle)),
        ]

    def _wrap(self, action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            raw = await request.read()
            try:
                body = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError:
                return json_response({"error": "the body is not JSON"}, 400)
            if not isinstance(body, dict):
                return json_response({"error": "the body is a JSON object"}, 400)
            try:
                return json_response(await action(request, body))
            except ShopError as error:
                status = 404 if error.code == "NOT_FOUND" else 422
                return json_response({"error": error.message}, status)
            except (ValueError, TypeError, KeyError, InvalidOperation) as exc:
                return json_response({"error": f"{type(exc).__name__}: {exc}"}, 400)

        return handle

    @staticmethod
    def _id(request: web.Request) -> int:
        return int(request.match_info["id"])

    async def orders(self, request: web.Request, body: Json) -> Json:
        count = int(body.pop("count", body.pop("n", 1)))
        made = self.sim.generate_orders(count, **body)
        return {"orders": [summary(o) for o in made]}

    async def edit(self, request: web.Request, body: Json) -> Json:
        add = [(int(a["variant_id"]), int(a.get("quantity", 1))) for a in body.get("add", [])]
        remove = [
            (int(r["line_item_id"]), int(r.get("quantity", 1))) for r in body.get("remove", [])
        ]
        return {
            "order_edit": self.sim.edit_order(
                self._id(request), add=add or None, remove=remove or None
            )
        }

    async def refund(self, request: web.Request, body: Json) -> Json:
        lines = [
            (int(li["line_item_id"]), int(li.get("quantity", 1))) for li in body.get("lines", [])
        ]
        refund = self.sim.refund_order(
            self._id(request),
            lines=lines or None,
            restock=bool(body.get("restock", True)),
            note=body.get("note"),
            shipping=bool(body.get("shipping", False)),
        )
        return {"refund": refund}

    async def cancel(self, request: web.Request, body: Json) -> Json:
        order = self.sim.cancel_order(
            self._id(request),
            reason=str(body.get("reason", "customer")),
            refund=bool(body.get("refund", True)),
            restock=bool(body.get("restock", True)),
        )
        return {"order": summary(order)}

    async def fulfill(self, request: web.Request, body: Json) -> Json:
        return {
            "fulfillment": self.sim.fulfill_order(self._id(request), tracking=body.get("tracking"))
        }

    async def pay(self, request: web.Request, body: Json) -> Json:
        return {"order": summary(self.sim.pay_order(self._id(request)))}

    async def inventory(self, request: web.Request, body: Json) -> Json:
        item_id = int(body["inventory_item_id"])
        location_id = int(body.get("location_id") or min(self.sim.store.locations))
        if "available" in body:
            level = self.sim.set_inventory(item_id, location_id, int(body["available"]))
        else:
            level = self.sim.adjust_inventory(item_id, location_id, int(body["adjust"]))
        return {"inventory_level": level}

    async def create_product(self, request: web.Request, body: Json) -> Json:
        product = self.sim.create_product(
            title=body.get("title"), variants=int(body.get("variants", 2))
        )
        return {"product": product}

    async def update_product(self, request: web.Request, body: Json) -> Json:
        price = Decimal(str(body["price"])) if "price" in body else None
        product = self.sim.update_product(
            self._id(request), title=body.get("title"), price=price, tags=body.get("tags")
        )
        return {"product": product}

    async def subscribe(self, request: web.Request, body: Json) -> Json:
        webhook = self.sim.subscribe(
            str(body["topic"]), str(body["address"]), api_version=body.get("api_version")
        )
        return {"webhook": webhook}

    async def faults(self, request: web.Request, body: Json) -> Json:
        return self.sim.fault_injector.state()

    async def set_faults(self, request: web.Request, body: Json) -> Json:
        self.sim.set_faults(**body)
        return self.sim.fault_injector.state()

    async def secret(self, request: web.Request, body: Json) -> Json:
        grace = body.get("grace_seconds")
        secret = self.sim.rotate_secret(
            new_secret=body.get("secret"), grace_seconds=None if grace is None else float(grace)
        )
        return {"secret": secret, "previous_secret": self.sim.previous_secret}

    async def state(self, request: web.Request, body: Json) -> Json:
        return self.sim.state

    async def deliveries(self, request: web.Request, body: Json) -> Json:
        topic, outcome = request.query.get("topic"), request.query.get("outcome")
        log = [
            a.as_json()
            for a in self.sim.deliveries
            if (topic is None or a.topic == topic) and (outcome is None or a.outcome == outcome)
        ]
        return {"deliveries": log}

    async def settle(self, request: web.Request, body: Json) -> Json:
        try:
            async with asyncio.timeout(float(body.get("timeout", 5.0))):
                await self.sim.settle()
        except TimeoutError:
            return {"settled": False, "pending": self.sim.webhooks.pending}
        return {"settled": True, "pending": 0}
