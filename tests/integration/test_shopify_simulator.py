"""The Shopify simulator over real loopback HTTP: the Admin API, webhooks, faults, control.

Every test starts its own simulator (and, when it needs one, a webhook receiver) on free
ports of 127.0.0.1; waits are bounded by timeouts, never asserted on.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from seamline.connectors.shopify.poller import CHANGED
from seamline.connectors.shopify.sink import (
    CANCEL,
    FULFILL,
    NOTE,
    ORDER_STATE,
    SET_QUANTITIES,
    TAG,
    VARIANT_BY_SKU,
)
from seamline.sandbox.shopify import DeliveryOptions, ShopifySimulator

Json = dict[str, Any]
LINK = re.compile(r'<([^<]+)>; rel="([^"]+)"')  # Shopify's own parser (shopify-app-js)
UNAUTHORIZED = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}
FAST = DeliveryOptions(time_scale=0.0001, timeout=0.3, connect_timeout=0.3, hold_limit=0.5)

# The documents the connector sends, imported so the simulator is tested on exactly them.
ORDER_STATE_5_50 = ORDER_STATE
# The same query at the sizes a naive connector would ask for: over Shopify's cost limit.
ORDER_STATE_20_100 = ORDER_STATE.replace("first: 5)", "first: 20)").replace(
    "first: 50)", "first: 100)"
)
JOB = "query Job($id: ID!) { job(id: $id) { id done } }"


# --- harness ------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def topic(self) -> str:
        return self.headers["x-shopify-topic"]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint: answers from ``script`` (a status, or "slow"), then 200."""

    script: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received({k.lower(): v for k, v in request.headers.items()}, body))
        action = self.script.pop(0) if self.script else 200
        if action == "slow":
            await asyncio.sleep(1.0)
            return web.Response(status=200)
        status = int(action)
        headers = {"Location": "http://127.0.0.1:1/elsewhere"} if 300 <= status < 400 else None
        return web.Response(status=status, headers=headers)

    def topics(self) -> list[str]:
        return [r.topic for r in self.received]


@asynccontextmanager
async def receiver(*script: int | str) -> AsyncIterator[Receiver]:
    hook = Receiver(list(script))
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield hook
    finally:
        await runner.cleanup()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


class Admin:
    """The Admin API of one simulator, as a connector calls it."""

    def __init__(self, sim: ShopifySimulator, http: aiohttp.ClientSession) -> None:
        self.sim, self.http = sim, http
        self.headers = {"X-Shopify-Access-Token": sim.token}

    async def call(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Answer:
        sent = self.headers if headers is None else headers
        async with self.http.request(method, url, headers=sent, **kwargs) as r:
            text = await r.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = text
            return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, body)

    async def rest(self, method: str, path: str, **kwargs: Any) -> Answer:
        url = path if path.startswith("http") else f"{self.sim.admin_url()}/{path}"
        return await self.call(method, url, **kwargs)

    async def graphql(self, document: str, /, **variables: Any) -> Answer:
        url = f"{self.sim.admin_url()}/graphql.json"
        return await self.call("POST", url, json={"query": document, "variables": variables})

    async def control(self, method: str, path: str, body: Json | None = None) -> Answer:
        return await self.call(method, f"{self.sim.url}/_sim/{path}", headers={}, json=body)


Scenario = Callable[[ShopifySimulator, Admin], Awaitable[None]]


def run(scenario: Scenario, **options: Any) -> None:
    """Run ``scenario`` against a fresh simulator (seed 1 unless given)."""

    async def main() -> None:
        options.setdefault("seed", 1)
        options.setdefault("delivery", FAST)
        async with ShopifySimulator(**options) as sim, aiohttp.ClientSession() as http:
            await scenario(sim, Admin(sim, http))

    asyncio.run(main())


async def settle(sim: ShopifySimulator, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        await sim.settle()


def is_json_with_id(body: bytes) -> bool:
    try:
        return "id" in json.loads(body)
    except ValueError:
        return False


def signed(secret: str, received: Received) -> bool:
    digest = hmac.digest(secret.encode(), received.body, hashlib.sha256)
    return hmac.compare_digest(
        base64.b64encode(digest).decode(), received.headers["x-shopify-hmac-sha256"]
    )


async def job_done(admin: Admin, job_id: str, polls: int = 500) -> bool:
    """Poll ``job(id:) { done }`` as a client would, at most ``polls`` times."""
    for _ in range(polls):
        if (await admin.graphql(JOB, id=job_id)).body["data"]["job"]["done"]:
            return True
        await asyncio.sleep(0.01)
    return False


def open_web_order(sim: ShopifySimulator, **options: Any) -> Json:
    (order,) = sim.generate_orders(1, channel="web", financial_status="paid", **options)
    return order


# --- access, versions, REST -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "status"), [(None, 401), ("shpat_wrong", 401), ("", 401), ("right", 200)]
)
def test_the_access_token_header_is_required(token: str | None, status: int) -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        headers = (
            {}
            if token is None
            else {"X-Shopify-Access-Token": sim.token if token == "right" else token}
        )
        rest = await admin.rest("GET", "locations.json", headers=headers)
        graphql = await admin.call(
            "POST",
            f"{sim.admin_url()}/graphql.json",
            headers=headers,
            json={"query": "{ shop { name } }"},
        )
        assert (rest.status, graphql.status) == (status, status)
        if status == 401:
            assert rest.body == graphql.body == UNAUTHORIZED

    run(scenario)


@pytest.mark.parametrize(
    ("requested", "status", "answered"),
    [
        ("2026-07", 200, "2026-07"),
        ("2025-10", 200, "2025-10"),
        ("2024-04", 200, "2025-07"),  # no longer supported: falls forward to the oldest
        ("unstable", 200, "unstable"),
        ("2025-08", 404, None),  # no such release
        ("2027-01", 404, None),  # not released yet
    ],
)
def test_an_unsupported_version_falls_forward(
    requested: str, status: int, answered: str | None
) -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        answer = await admin.rest("GET", f"{sim.url}/admin/api/{requested}/locations.json")
        assert answer.status == status
        assert answer.headers.get("x-shopify-api-version") == answered
        if status == 200:
            assert len(answer.body["locations"]) == 3

    run(scenario)


def test_orders_page_by_link_header_and_page_info_takes_only_limit() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        # Given 7 orders, one of them cancelled (hidden by the default status=open)
        made = sim.generate_orders(7, cancel=1)
        # When the connector pages through status=any three at a time
        seen, url, pages = [], "orders.json?status=any&limit=3", 0
        while url:
            answer = await admin.rest("GET", url)
            assert answer.status == 200 and answer.headers["x-shopify-shop-api-call-limit"]
            seen += [o["id"] for o in answer.body["orders"]]
            links = dict((rel, u) for u, rel in LINK.findall(answer.headers.get("link", "")))
            assert ("previous" in links) == (pages > 0)
            url, pages = links.get("next", ""), pages + 1
        # Then every order came once, newest first, in three pages
        assert seen == sorted((o["id"] for o in made), reverse=True) and pages == 3
        # And a page_info request may not add filters
        first = await admin.rest("GET", "orders.json?status=any&limit=3")
        next_url = LINK.findall(first.headers["link"])[0][0]
        refused = await admin.rest("GET", next_url + "&status=any")
        assert refused.status == 400 and "page_info" in refused.body["errors"]
        # And without status only open orders are listed (not cancelled, not archived)
        default = await admin.rest("GET", "orders.json?limit=250")
        still_open = [o for o in sim.store.orders.values() if not o["closed_at"]]
        assert 0 < len(default.body["orders"]) == len(still_open) < 7

    run(scenario)


def test_rest_reads_by_ids_and_by_id() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        made = sim.generate_orders(4)
        wanted = [made[0]["id"], made[2]["id"]]
        listed = await admin.rest(
            "GET", f"orders.json?ids={wanted[0]},{wanted[1]}&status=any&limit=250"
        )
        assert sorted(o["id"] for o in listed.body["orders"]) == sorted(wanted)
        one = await admin.rest("GET", f"orders/{wanted[0]}.json")
        by_id = {o["id"]: o for o in listed.body["orders"]}
        assert one.body["order"] == by_id[wanted[0]] == sim.store.orders[wanted[0]]
        missing = await admin.rest("GET", "orders/1.json")
        assert (missing.status, missing.body) == (404, {"errors": "Not Found"})
        product_id = made[0]["line_items"][0]["product_id"] or next(iter(sim.store.products))
        product = await admin.rest("GET", f"products/{product_id}.json")
        assert product.body["product"]["variants"]
        customer_id = next(iter(sim.store.customers))
        customer = await admin.rest("GET", f"customers/{customer_id}.json?fields=id,email")
        assert set(customer.body["customer"]) == {"id", "email"}

    run(scenario)


def test_the_rest_bucket_refuses_the_41st_call_with_retry_after() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        answers = [await admin.rest("GET", "locations.json") for _ in range(41)]
        used = [a.headers["x-shopify-shop-api-call-limit"] for a in answers]
        assert used[0] == "1/40" and used[39] == "40/40"
        assert [a.status for a in answers] == [200] * 40 + [429]
        assert float(answers[40].headers["retry-after"]) > 0
        assert "Exceeded 2 calls per second" in answers[40].body["errors"]

    # A leak so slow that 41 calls always overflow it, however slow the machine
    run(scenario, rest_bucket=(40, 0.001))


def test_inventory_levels_can_be_read_and_set() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        item_id = next(iter(sim.store.items))
        location_id = min(sim.store.locations)
        listed = await admin.rest(
            "GET", f"inventory_levels.json?inventory_item_ids={item_id}&location_ids={location_id}"
        )
        assert [lv["location_id"] for lv in listed.body["inventory_levels"]] == [location_id]
        body = {"location_id": location_id, "inventory_item_id": item_id, "available": 42}
        answer = await admin.rest("POST", "inventory_levels/set.json", json=body)
        assert answer.status == 200 and answer.body["inventory_level"]["available"] == 42
        bad = await admin.rest(
            "POST", "inventory_levels/set.json", json={**body, "inventory_item_id": 5}
        )
        assert bad.status == 422
        required = await admin.rest("GET", "inventory_levels.json")
        assert required.status == 422

    run(scenario)


# --- GraphQL -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "query", "variables", "requested", "error"),
    [
        ("orders changed, 10", CHANGED % "orders", {"first": 10}, 12, None),
        ("products changed, 250", CHANGED % "products", {"first": 250}, 252, None),
        ("variant by sku", VARIANT_BY_SKU, {"query": "sku:'X'"}, 6, None),
        ("order state, 5 x 50", ORDER_STATE_5_50, {"id": "gid://shopify/Order/1"}, 520, None),
        # 1 + 2 + (2 + 20 * (1 + 2 + 100 * 2)): nested connections multiply, as on Shopify
        (
            "order state, 20 x 100",
            ORDER_STATE_20_100,
            {"id": "gid://shopify/Order/1"},
            4065,
            "MAX_COST_EXCEEDED",
        ),
        ("a mutation", TAG, {"id": "gid://shopify/Order/1", "tags": ["x"]}, 10, None),
        (
            "edges instead of nodes",
            "{ products(first: 4) { edges { cursor node { id } } } }",
            {},
            6,
            None,
        ),
        (
            "a fragment",
            "{ orders(first: 3) { nodes { ...F } } } "
            "fragment F on Order { id lineItems(first: 2) { nodes { id } } }",
            {},
            17,
            None,
        ),
        (
            "no first or last",
            "{ orders { nodes { id } } }",
            {},
            0,
            "you must provide one of first or last",
        ),
        (
            "first over 250",
            "{ orders(first: 251) { nodes { id } } }",
            {},
            0,
            "less than or equal to 250",
        ),
    ],
)
def test_graphql_costs_are_calculated_before_running(
    name: str, query: str, variables: Json, requested: int, error: str | None
) -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        answer = await admin.graphql(query, **variables)
        assert answer.status == 200, name
        cost = answer.body["extensions"]["cost"]
        assert cost["requestedQueryCost"] == requested, name
        assert cost["throttleStatus"]["maximumAvailable"] == 2000.0
        assert cost["throttleStatus"]["restoreRate"] == 100.0
        if error is None:
            assert "errors" not in answer.body, answer.body
            assert 0 <= cost["actualQueryCost"] <= requested
        else:
            (found,) = answer.body["errors"]
            code = found.get("extensions", {}).get("code")
            assert code == error or error in found["message"], found
            assert answer.body.get("data") is None

    run(scenario, orders=3)


def test_an_empty_cost_bucket_throttles_with_200_or_429() -> None:
    query = "{ products(first: 10) { nodes { id } } }"  # 12 points, all of them used

    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        answers = [await admin.graphql(query) for _ in range(5)]
        assert [a.status for a in answers] == [200] * 5
        assert all("errors" not in a.body for a in answers[:4])
        throttled = answers[4].body
        assert throttled["errors"] == [
            {"message": "Throttled", "extensions": {"code": "THROTTLED"}}
        ]
        assert throttled.get("data") is None
        assert throttled["extensions"]["cost"]["actualQueryCost"] is None
        assert throttled["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 12
        sim.set_faults(http_429_for_graphql=True)
        as_429 = await admin.graphql(query)
        assert as_429.status == 429 and float(as_429.headers["retry-after"]) > 0
        assert as_429.body["errors"][0]["extensions"]["code"] == "THROTTLED"

    run(scenario, graphql_bucket=(50.0, 0.001))


def test_changed_finds_what_changed_since_a_time_page_by_page() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        made = sim.generate_orders(6)
        for order in sim.store.orders.values():  # as if they were all made a year ago
            order["updated_at"] = "2025-11-01T10:00:00-05:00"
        # When one order is tagged, and the poller asks what changed since then
        tagged = await admin.graphql(TAG, id=made[3]["admin_graphql_api_id"], tags=["ERP"])
        assert tagged.body["data"]["tagsAdd"]["userErrors"] == []
        since = "updated_at:>='2025-11-01T15:00:01Z'"
        changed = await admin.graphql(CHANGED % "orders", first=50, query=since)
        nodes = changed.body["data"]["orders"]["nodes"]
        # Then only that order comes back, with legacyResourceId as a string
        assert [n["legacyResourceId"] for n in nodes] == [str(made[3]["id"])]
        # And paging everything two at a time visits each order once
        ids, after = [], None
        while True:
            page = await admin.graphql(
                CHANGED % "orders", first=2, after=after, query="updated_at:>='2020-01-01'"
            )
            data = page.body["data"]["orders"]
            ids += [n["id"] for n in data["nodes"]]
            if not data["pageInfo"]["hasNextPage"]:
                break
            after = data["pageInfo"]["endCursor"]
        assert sorted(ids) == sorted(o["admin_graphql_api_id"] for o in made) and len(ids) == 6
        unknown = await admin.graphql(CHANGED % "orders", first=5, query="colour:green")
        assert unknown.body["extensions"]["search"][0]["warnings"][0]["field"] == "colour"

    run(scenario)


def test_variant_by_sku_finds_the_inventory_item() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        variant = next(v for v in sim.store.variants.values() if v["sku"])
        answer = await admin.graphql(VARIANT_BY_SKU, query=f"sku:'{variant['sku']}'")
        (node,) = answer.body["data"]["productVariants"]["nodes"]
        assert (
            node["inventoryItem"]["id"]
            == f"gid://shopify/InventoryItem/{variant['inventory_item_id']}"
        )

    run(scenario)


def test_set_quantities_changes_stock_and_fires_inventory_levels_update() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        async with receiver() as hook:
            sim.subscribe("inventory_levels/update", hook.url)
            item_id, location_id = next(iter(sim.store.levels))
            quantity = {
                "inventoryItemId": f"gid://shopify/InventoryItem/{item_id}",
                "locationId": f"gid://shopify/Location/{location_id}",
                "quantity": 77,
            }
            change = {
                "name": "available",
                "reason": "correction",
                "ignoreCompareQuantity": True,
                "quantities": [quantity],
            }
            # When the quantity is set
            done = (await admin.graphql(SET_QUANTITIES, input=change)).body["data"]
            group = done["inventorySetQuantities"]["inventoryAdjustmentGroup"]
            assert done["inventorySetQuantities"]["userErrors"] == []
            assert {c["name"]: c["quantityAfterChange"] for c in group["changes"]}[
                "available"
            ] == 77
            # Then REST shows it and one webhook carries the level
            level = await admin.rest("GET", f"inventory_levels.json?inventory_item_ids={item_id}")
            assert {lv["location_id"]: lv["available"] for lv in level.body["inventory_levels"]}[
                location_id
            ] == 77
            await settle(sim)
            assert [r.json()["available"] for r in hook.received] == [77]
            # And setting the same value again changes nothing
            again = (await admin.graphql(SET_QUANTITIES, input=change)).body["data"]
            assert again["inventorySetQuantities"]["inventoryAdjustmentGroup"] is None
            # And an unknown item is a userError, not an HTTP error, and changes nothing
            bad = {
                **change,
                "quantities": [{**quantity, "inventoryItemId": "gid://shopify/InventoryItem/1"}],
            }
            refused = await admin.graphql(SET_QUANTITIES, input=bad)
            (error,) = refused.body["data"]["inventorySetQuantities"]["userErrors"]
            assert refused.status == 200 and error["code"] == "INVALID_INVENTORY_ITEM"
            assert error["field"] == ["input", "quantities", "0", "inventoryItemId"]
            stale = {
                **change,
                "ignoreCompareQuantity": False,
                "quantities": [{**quantity, "compareQuantity": 1}],
            }
            refused = await admin.graphql(SET_QUANTITIES, input=stale)
            assert (
                refused.body["data"]["inventorySetQuantities"]["userErrors"][0]["code"]
                == "COMPARE_QUANTITY_STALE"
            )
            await settle(sim)
            assert len(hook.received) == 1

    run(scenario)


def test_fulfillment_create_fulfils_and_fires_its_webhooks() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        async with receiver() as hook:
            for topic in (
                "fulfillments/create",
                "orders/updated",
                "orders/fulfilled",
                "orders/partially_fulfilled",
            ):
                sim.subscribe(topic, hook.url)
            order = open_web_order(sim, lines=2)
            state = await admin.graphql(ORDER_STATE_5_50, id=order["admin_graphql_api_id"])
            (fo,) = state.body["data"]["order"]["fulfillmentOrders"]["nodes"]
            first = fo["lineItems"]["nodes"][0]
            assert fo["status"] == "OPEN" and first["remainingQuantity"] == first["totalQuantity"]
            # When one line is fulfilled with tracking
            fulfillment = {
                "lineItemsByFulfillmentOrder": [
                    {
                        "fulfillmentOrderId": fo["id"],
                        "fulfillmentOrderLineItems": [
                            {"id": first["id"], "quantity": first["remainingQuantity"]}
                        ],
                    }
                ],
                "trackingInfo": {
                    "number": "00340434161094042557",
                    "company": "DHL",
                    "url": "https://t.example/1",
                },
                "notifyCustomer": False,
            }
            done = (await admin.graphql(FULFILL, fulfillment=fulfillment)).body["data"][
                "fulfillmentCreate"
            ]
            # Then the fulfillment is there, the line is no longer open, and webhooks went out
            assert done["userErrors"] == [] and done["fulfillment"]["status"] == "SUCCESS"
            assert done["fulfillment"]["trackingInfo"] == [
                {"number": "00340434161094042557", "company": "DHL", "url": "https://t.example/1"}
            ]
            after = await admin.graphql(ORDER_STATE_5_50, id=order["admin_graphql_api_id"])
            lines = after.body["data"]["order"]["fulfillmentOrders"]["nodes"][0]["lineItems"][
                "nodes"
            ]
            assert lines[0]["remainingQuantity"] == 0 and lines[1]["remainingQuantity"] > 0
            await settle(sim)
            # (one subscription per topic: Shopify does not order deliveries across them)
            by_topic = {r.topic: r.json() for r in hook.received}
            assert sorted(hook.topics()) == sorted(
                ["fulfillments/create", "orders/updated", "orders/partially_fulfilled"]
            )
            assert by_topic["fulfillments/create"]["tracking_number"] == "00340434161094042557"
            assert by_topic["orders/updated"]["fulfillment_status"] == "partial"
            # And fulfilling the same units again is a userError
            again = (await admin.graphql(FULFILL, fulfillment=fulfillment)).body["data"][
                "fulfillmentCreate"
            ]
            assert again["fulfillment"] is None and "quantity" in again["userErrors"][0]["message"]

    run(scenario)


def test_tags_and_notes_update_the_order_and_fire_orders_updated() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        async with receiver() as hook:
            sim.subscribe("orders/updated", hook.url)
            order = open_web_order(sim)
            gid = order["admin_graphql_api_id"]
            await admin.graphql(TAG, id=gid, tags=["ERP-synced", "Lieferung ✓"])
            noted = await admin.graphql(NOTE, input={"id": gid, "note": "Rechnung RE-2026-0042"})
            assert noted.body["data"]["orderUpdate"]["order"]["note"] == "Rechnung RE-2026-0042"
            await settle(sim)
            # Two changes, two deliveries (in either order: no ordering guarantee)
            updates = sorted((r.json() for r in hook.received), key=lambda o: o["note"] or "")
            assert len(updates) == 2 and updates[-1]["note"] == "Rechnung RE-2026-0042"
            assert all("ERP-synced" in o["tags"] for o in updates)
            unknown = await admin.graphql(NOTE, input={"id": "gid://shopify/Order/1", "note": "x"})
            assert unknown.body["data"]["orderUpdate"]["order"] is None
            assert unknown.body["data"]["orderUpdate"]["userErrors"][0]["field"] == ["id"]
            missing = await admin.graphql(ORDER_STATE_5_50, id="gid://shopify/Order/1")
            assert missing.body["data"] == {"order": None}

    run(scenario)


def test_order_cancel_answers_with_a_job_and_cancels_just_after() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        async with receiver() as hook:
            sim.subscribe("orders/cancelled", hook.url)
            order = open_web_order(sim)
            variables = {
                "orderId": order["admin_graphql_api_id"],
                "reason": "CUSTOMER",
                "refund": True,
                "restock": True,
                "notifyCustomer": False,
            }
            answer = (await admin.graphql(CANCEL, **variables)).body["data"]["orderCancel"]
            assert answer["orderCancelUserErrors"] == [] and answer["job"]["done"] is False
            assert await job_done(admin, answer["job"]["id"])
            await settle(sim)
            (cancelled,) = [r.json() for r in hook.received]
            assert (
                cancelled["cancel_reason"] == "customer"
                and cancelled["financial_status"] == "refunded"
            )
            again = (await admin.graphql(CANCEL, **variables)).body["data"]["orderCancel"]
            assert again["job"] is None and again["orderCancelUserErrors"][0]["code"] == "INVALID"
            unknown = await admin.graphql(
                CANCEL, **{**variables, "orderId": "gid://shopify/Order/1"}
            )
            assert (
                unknown.body["data"]["orderCancel"]["orderCancelUserErrors"][0]["code"]
                == "NOT_FOUND"
            )

    run(scenario)


# --- webhooks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("webhook", "status", "error_field"),
    [
        ({"topic": "orders/create", "address": "ADDRESS", "format": "json"}, 201, None),
        ({"topic": "orders/created", "address": "ADDRESS", "format": "json"}, 422, "topic"),
        ({"topic": "orders/create", "address": "ftp://example.com/x"}, 422, "address"),
        ({"topic": "orders/create", "address": "ADDRESS", "format": "xml"}, 422, "format"),
    ],
)
def test_webhook_subscriptions_over_rest(
    webhook: Json, status: int, error_field: str | None
) -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        body = {k: v.replace("ADDRESS", "http://127.0.0.1:9/hook") for k, v in webhook.items()}
        created = await admin.rest("POST", "webhooks.json", json={"webhook": body})
        assert created.status == status, created.body
        if error_field is not None:
            assert list(created.body["errors"]) == [error_field]
            return
        resource = created.body["webhook"]
        assert list(resource) == [
            "id", "address", "topic", "created_at", "updated_at", "format", "fields",
            "metafield_namespaces", "api_version", "private_metafield_namespaces",
        ]  # fmt: skip
        taken = await admin.rest("POST", "webhooks.json", json={"webhook": body})
        assert taken.status == 422 and "already been taken" in taken.body["errors"]["address"][0]
        listed = await admin.rest("GET", "webhooks.json?topic=orders/create")
        assert [w["id"] for w in listed.body["webhooks"]] == [resource["id"]]
        deleted = await admin.rest("DELETE", f"webhooks/{resource['id']}.json")
        gone = await admin.rest("GET", f"webhooks/{resource['id']}.json")
        assert (deleted.status, gone.status) == (200, 404)

    run(scenario)


def test_webhooks_carry_shopifys_headers_and_a_valid_hmac() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        async with receiver() as first, receiver() as second:
            created = await admin.rest(
                "POST",
                "webhooks.json",
                json={
                    "webhook": {"topic": "orders/create", "address": first.url, "format": "json"}
                },
            )
            assert created.status == 201 and created.body["webhook"]["api_version"] == "2026-07"
            sim.subscribe("orders/create", second.url, api_version="2025-10")
            (order,) = sim.generate_orders(1)
            await settle(sim)
            (a,), (b,) = first.received, second.received
            for got, version in ((a, "2026-07"), (b, "2025-10")):
                assert got.headers["content-type"] == "application/json"
                assert got.headers["x-shopify-topic"] == "orders/create"
                assert got.headers["x-shopify-shop-domain"] == sim.shop
                assert got.headers["x-shopify-api-version"] == version
                assert got.headers["x-shopify-triggered-at"].endswith("Z")
                assert signed(sim.secret, got)
                assert got.json()["id"] == order["id"]
            # One event, two subscriptions: the same event id, two webhook ids
            assert a.headers["x-shopify-event-id"] == b.headers["x-shopify-event-id"]
            assert a.headers["x-shopify-webhook-id"] != b.headers["x-shopify-webhook-id"]

    run(scenario)


@pytest.mark.parametrize(
    ("failure", "error"),
    [(500, None), (503, None), (302, None), (404, None), ("slow", "timeout")],
)
def test_a_failed_delivery_is_retried_with_the_same_ids_and_body(
    failure: int | str, error: str | None
) -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        async with receiver(failure, failure) as hook:
            sim.subscribe("orders/create", hook.url)
            sim.generate_orders(1)
            await settle(sim)
            assert len(hook.received) == 3
            for name in ("x-shopify-webhook-id", "x-shopify-event-id", "x-shopify-triggered-at"):
                assert len({r.headers[name] for r in hook.received}) == 1, name
            assert len({r.body for r in hook.received}) == 1
            log = sim.deliveries
            assert [(a.attempt, a.outcome) for a in log] == [
                (1, "failed"),
                (2, "failed"),
                (3, "delivered"),
            ]
            assert log[0].error == error
            assert sim.webhooks.subscriptions, "two failures do not remove a subscription"

    run(scenario)


def test_a_subscription_is_deleted_after_eight_consecutive_failures() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        async with receiver(*[500] * 20) as hook:
            sim.subscribe("orders/create", hook.url)
            sim.generate_orders(1)
            await settle(sim)
            # Then the 8th consecutive failure removed the subscription
            assert len(hook.received) == 8
            assert [a.outcome for a in sim.deliveries] == ["failed"] * 7 + ["removed"]
            listed = await admin.rest("GET", "webhooks.json")
            assert listed.body == {"webhooks": []}
            sim.generate_orders(1)
            await settle(sim)
            assert len(hook.received) == 8

    run(scenario)


def test_a_success_resets_the_failure_count() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        async with receiver(*[500] * 7, 200, *[500] * 7, 200) as hook:
            sim.subscribe("orders/create", hook.url)
            for _ in range(2):  # each delivery fails 7 times, then succeeds
                sim.generate_orders(1)
                await settle(sim)
            assert len(hook.received) == 16 and sim.webhooks.subscriptions
            assert [a.outcome for a in sim.deliveries].count("delivered") == 2

    run(scenario)


def test_the_retry_schedule_spans_four_hours_unscaled() -> None:
    assert sum(DeliveryOptions().retry_delays) == 4 * 3600
    assert len(DeliveryOptions().retry_delays) == 8
    assert DeliveryOptions().timeout == 5.0 and DeliveryOptions().connect_timeout == 1.0


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (
            "drop_rate",
            lambda hook, log: hook.received == [] and [a.outcome for a in log] == ["dropped"],
        ),
        (
            "duplicate_rate",
            lambda hook, log: (
                len(hook.received) == 2
                and len({r.headers["x-shopify-webhook-id"] for r in hook.received}) == 1
                and [a.duplicate for a in log] == [False, True]
            ),
        ),
        (
            "malformed_rate",
            lambda hook, log: len(hook.received) == 1 and log[0].malformed is not None,
        ),
    ],
)
def test_webhook_faults_drop_duplicate_and_break_deliveries(fault: str, check: Any) -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        async with receiver() as hook:
            sim.subscribe("orders/create", hook.url)
            sim.set_faults(**{fault: 1.0})
            sim.generate_orders(1)
            await settle(sim)
            assert check(hook, sim.deliveries), [a.as_json() for a in sim.deliveries]
            for got in hook.received:
                assert signed(sim.secret, got)  # even a broken body is correctly signed
            if fault == "malformed_rate":
                assert not is_json_with_id(hook.received[0].body)

    run(scenario)


def test_a_held_back_delivery_arrives_after_a_later_one() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        async with receiver() as hook:
            sim.subscribe("orders/create", hook.url)
            sim.set_faults(reorder_rate=1.0)
            (early,) = sim.generate_orders(1)
            sim.set_faults(reorder_rate=0.0)
            (late,) = sim.generate_orders(1)
            await settle(sim)
            assert [r.json()["id"] for r in hook.received] == [late["id"], early["id"]]

    run(scenario)


def test_after_a_secret_rotation_the_old_secret_signs_for_the_grace_period() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        async with receiver() as hook:
            sim.subscribe("orders/create", hook.url)
            old = sim.secret
            new = sim.rotate_secret(grace_seconds=3600)
            sim.generate_orders(1)
            await settle(sim)
            assert signed(old, hook.received[0]) and not signed(new, hook.received[0])
            rotated = await admin.control("POST", "secret", {"grace_seconds": 0})
            sim.generate_orders(1)
            await settle(sim)
            assert signed(rotated.body["secret"], hook.received[1])
            assert sim.secret == rotated.body["secret"] != new

    run(scenario)


# --- faults --------------------------------------------------------------------------------


def test_a_5xx_burst_fails_the_next_calls_then_ends() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        sim.set_faults(error_burst=3)
        statuses = [(await admin.rest("GET", "locations.json")).status for _ in range(4)]
        assert all(500 <= s <= 599 for s in statuses[:3]) and statuses[3] == 200
        sim.set_faults(error_burst=1, error_statuses=[503])
        assert (await admin.graphql("{ shop { name } }")).status == 503
        sim.set_faults(error_rate=1.0, error_statuses=[502])
        assert (await admin.rest("GET", "locations.json")).status == 502
        sim.set_faults(error_rate=0.0)
        assert (await admin.rest("GET", "locations.json")).status == 200
        assert sim.fault_injector.state()["fired"] == {"error_burst": 4, "error_rate": 1}

    run(scenario)


def test_a_forced_throttle_refuses_rest_and_graphql_until_lifted() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        await admin.control("POST", "faults", {"throttle_seconds": 60})
        rest = await admin.rest("GET", "locations.json")
        graphql = await admin.graphql("{ shop { name } }")
        assert rest.status == 429 and float(rest.headers["retry-after"]) > 1
        assert (
            graphql.status == 200 and graphql.body["errors"][0]["extensions"]["code"] == "THROTTLED"
        )
        assert graphql.body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0
        await admin.control("POST", "faults", {"throttle_seconds": 0})
        assert (await admin.rest("GET", "locations.json")).status == 200

    run(scenario)


def test_the_deprecation_header_is_a_switch() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        before = await admin.rest("GET", "locations.json")
        sim.set_faults(deprecated=True)
        after = await admin.rest("GET", "locations.json")
        assert "x-shopify-api-deprecated-reason" not in before.headers
        assert after.headers["x-shopify-api-deprecated-reason"].startswith("https://shopify.dev/")

    run(scenario)


# --- control API and process -----------------------------------------------------------------


def test_the_control_api_drives_the_shop() -> None:
    async def scenario(sim: ShopifySimulator, admin: Admin) -> None:
        async with receiver() as hook:
            await admin.control(
                "POST", "webhooks", {"topic": "refunds/create", "address": hook.url}
            )
            made = await admin.control(
                "POST",
                "orders",
                {
                    "count": 3,
                    "currency": "USD",
                    "channel": "web",
                    "test": True,
                    "financial_status": "paid",
                },
            )
            orders = made.body["orders"]
            assert [(o["presentment_currency"], o["source_name"], o["test"]) for o in orders] == [
                ("USD", "web", True)
            ] * 3
            refund = await admin.control("POST", f"orders/{orders[0]['id']}/refund", {})
            assert refund.status == 200 and refund.body["refund"]["refund_line_items"]
            cancel = await admin.control(
                "POST", f"orders/{orders[1]['id']}/cancel", {"reason": "fraud"}
            )
            assert cancel.body["order"]["cancelled_at"] is not None
            again = await admin.control("POST", f"orders/{orders[1]['id']}/cancel", {})
            assert again.status == 422
            missing = await admin.control("POST", "orders/1/cancel", {})
            assert missing.status == 404
            bad = await admin.control("POST", "faults", {"no_such_fault": 1})
            assert bad.status == 400
            settled = await admin.control("POST", "settle", {"timeout": 5})
            assert settled.body == {"settled": True, "pending": 0}
            state = (await admin.control("GET", "state")).body
            assert state["counts"]["orders"] == 3 and state["counts"]["cancelled_orders"] == 1
            deliveries = (await admin.control("GET", "deliveries?topic=refunds/create")).body[
                "deliveries"
            ]
            assert {d["outcome"] for d in deliveries} == {"delivered"} and len(deliveries) == 2
            assert len(hook.received) == 2

    run(scenario)


def test_the_simulator_runs_as_a_process_until_sigterm() -> None:
    async def main() -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "seamline.sandbox.shopify",
            "--port",
            "0",
            "--seed",
            "3",
            "--orders",
            "2",
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(20):
                ready = json.loads(await process.stdout.readline())  # type: ignore[union-attr]
            assert ready["ready"] is True and ready["api_version"] == "2026-07"
            assert ready["shop"] == "seamline-sim-3.myshopify.com"
            base = f"http://127.0.0.1:{ready['port']}/admin/api/2026-07"
            async with aiohttp.ClientSession() as http:
                headers = {"X-Shopify-Access-Token": ready["token"]}
                async with http.get(f"{base}/orders.json?status=any", headers=headers) as r:
                    assert r.status == 200 and len((await r.json())["orders"]) == 2
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    asyncio.run(main())
