"""The Shopify connector against the Shopify simulator, over real HTTP on loopback.

Operations are repeated to show they apply once; limits are provoked to show they become
holds, not failures; the poller journals what webhooks did not bring, once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from seamline.connectors.base import Exchange
from seamline.connectors.shopify.connector import PollOptions, ShopifyOptions
from seamline.connectors.shopify.poller import ShopifyPoller
from seamline.connectors.shopify.sink import ShopifySink
from seamline.connectors.shopify.source import ShopifySource
from seamline.errors import ContractError, PermanentError, ThrottledError
from seamline.journal.base import NewMessage, Routing
from seamline.journal.sqlite import SqliteJournal
from seamline.sandbox.shopify import ShopifySimulator
from seamline.sandbox.shopify.faults import Faults
from seamline.settings import Secret


def options(sim: ShopifySimulator, **changes: Any) -> ShopifyOptions:
    settings: dict[str, Any] = {
        "shop": sim.shop,
        "base_url": sim.url,
        "api_version": sim.api_version,
        "access_token": Secret(sim.token),
        "secrets": [Secret(sim.secret)],
        "currency": sim.store.currency,
    }
    return ShopifyOptions(**{**settings, **changes})


@asynccontextmanager
async def shop(**settings: Any) -> AsyncIterator[tuple[ShopifySimulator, ShopifySink]]:
    async with ShopifySimulator(seed=7, time_scale=0.001, **settings) as sim:
        sink = ShopifySink("shop", options(sim))
        try:
            yield sim, sink
        finally:
            await sink.close()


def run(case: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(case())


def an_item(sim: ShopifySimulator) -> tuple[int, int, str]:
    """An inventory item with a SKU, and a location it is stocked at."""
    for (item, location), _level in sorted(sim.store.levels.items()):
        variant = sim.store.variant_of_item(item)
        if variant is not None and variant.get("sku"):
            return item, location, str(variant["sku"])
    raise AssertionError("the simulated catalogue has no SKU with stock")


async def send(sink: ShopifySink, operation: str, body: dict[str, Any], **options: Any) -> Exchange:
    return await sink.send(operation, body, options=options, idempotency_key="sl-1")


def test_setting_stock_is_absolute_by_item_or_by_sku_and_a_repeat_changes_nothing() -> None:
    async def case() -> None:
        async with shop() as (sim, sink):
            item, location, sku = an_item(sim)
            for body in (
                {"inventory_item_id": item, "location_id": location, "available": 17},
                {"sku": sku, "location_id": location, "available": 17},  # the same, by SKU
            ):
                exchange = await send(sink, "set_inventory", body)
                assert exchange.error is None, exchange.error
                assert sim.store.levels[(item, location)]["available"] == 17
            assert sink.idempotent("set_inventory", {})

    run(case)


def test_a_fulfillment_is_created_once_however_often_it_is_sent() -> None:
    async def case() -> None:
        async with shop() as (sim, sink):
            (order,) = sim.generate_orders(1, financial_status="paid", channel="web")
            body = {"order_id": order["id"], "tracking_number": "1Z999", "tracking_company": "UPS"}
            first = await send(sink, "create_fulfillment", body)
            assert first.error is None, first.error
            again = await send(sink, "create_fulfillment", body)  # a retry after a timeout
            assert again.error is None and again.refs["fulfillment"] == first.refs["fulfillment"]
            fulfilled = sim.store.get_order(order["id"])["fulfillments"]
            assert [f["tracking_number"] for f in fulfilled] == ["1Z999"]
            # A second parcel for nothing left open is refused with the reason
            other = await send(sink, "create_fulfillment", {**body, "tracking_number": "1Z000"})
            assert isinstance(other.error, PermanentError) and "no open lines" in str(other.error)

    run(case)


def test_tags_note_and_cancel_apply_once() -> None:
    async def case() -> None:
        async with shop() as (sim, sink):
            (order,) = sim.generate_orders(1, financial_status="paid", channel="web")
            oid = order["id"]
            for _ in range(2):
                assert (
                    await send(sink, "add_tags", {"order_id": oid, "tags": "erp, synced"})
                ).error is None
                assert (
                    await send(sink, "set_note", {"order_id": oid, "note": "ERP SO-1"})
                ).error is None
            doc = sim.store.get_order(oid)
            assert sorted(t.strip() for t in doc["tags"].split(",") if t.strip()).count("erp") == 1
            assert doc["note"] == "ERP SO-1"
            for _ in range(3):  # the cancel job may still be running on the repeat
                exchange = await send(sink, "cancel_order", {"order_id": oid}, reason="customer")
                assert exchange.error is None, exchange.error
            await sim.settle()
            assert sim.store.get_order(oid)["cancelled_at"] is not None

    run(case)


REFUSALS = [
    (
        "set_inventory",
        {"sku": "NO-SUCH-SKU", "location_id": 1, "available": 1},
        PermanentError,
        "no variant with SKU",
    ),
    (
        "set_inventory",
        {"inventory_item_id": 1, "location_id": 1, "available": "many"},
        ContractError,
        "whole number",
    ),
    ("add_tags", {"tags": "x"}, ContractError, "order_id"),
    ("set_note", {"order_id": 1, "note": "x"}, PermanentError, "Shopify refused orderUpdate"),
    ("create_fulfillment", {"order_id": 1}, ContractError, "tracking_number"),
    ("refund_everything", {}, ContractError, "no operation"),
]


@pytest.mark.parametrize(
    ("operation", "body", "error", "says"), REFUSALS, ids=[f"{c[0]}: {c[3]}" for c in REFUSALS]
)
def test_refusals_carry_the_reason_and_the_right_decision(
    operation: str, body: dict[str, Any], error: type[Exception], says: str
) -> None:
    async def case() -> None:
        async with shop() as (_sim, sink):
            exchange = await send(sink, operation, body)
            assert isinstance(exchange.error, error), exchange.error
            assert says in str(exchange.error)

    run(case)


@pytest.mark.parametrize("as_429", [False, True], ids=["200 THROTTLED", "429"])
def test_a_throttled_call_is_a_hold_with_the_wait_shopify_implies(as_429: bool) -> None:
    async def case() -> None:
        faults = Faults(throttle_seconds=30, http_429_for_graphql=as_429)
        async with shop(faults=faults) as (sim, sink):
            item, location, _sku = an_item(sim)
            before = sim.store.levels[(item, location)]["available"]
            body = {"inventory_item_id": item, "location_id": location, "available": before + 5}
            exchange = await send(sink, "set_inventory", body)
            assert isinstance(exchange.error, ThrottledError)
            assert exchange.error.retry_after is not None and exchange.error.retry_after > 0
            assert sim.store.levels[(item, location)]["available"] == before  # nothing applied

    run(case)


def test_the_cost_bucket_is_read_and_a_drained_bucket_holds_for_the_shortfall() -> None:
    async def case() -> None:
        async with shop(graphql_bucket=(50.0, 10.0)) as (sim, sink):
            item, location, _sku = an_item(sim)
            throttled = None
            for n in range(20):
                body = {"inventory_item_id": item, "location_id": location, "available": n}
                exchange = await send(sink, "set_inventory", body)
                if exchange.error is not None:
                    throttled = exchange.error
                    break
            assert isinstance(throttled, ThrottledError), "the 50-point bucket never ran dry"
            status = sink.client.throttle
            assert status is not None and status.maximum == 50.0 and status.restore_rate == 10.0
            # the wait is the shortfall at the restore rate: seconds, not a blind default
            assert throttled.retry_after is not None and 0 < throttled.retry_after <= 5

    run(case)


def test_deprecations_and_a_fallen_forward_version_become_warnings() -> None:
    async def case() -> None:
        async with ShopifySimulator(seed=7, faults=Faults(deprecated=True)) as sim:
            poller = ShopifyPoller("shop", options(sim, api_version="2023-01", poll=PollOptions()))
            try:
                answer = await poller.client.rest(
                    "GET", "orders.json", {"limit": 1, "status": "any"}
                )
                assert answer.error is None
                said = " | ".join(poller.warnings)
                assert "asked for API version 2023-01" in said
                assert "deprecated call" in said
            finally:
                await poller.close()

    run(case)


def test_the_poller_journals_what_no_webhook_brought_once(tmp_path: Path) -> None:
    async def case() -> None:
        async with ShopifySimulator(seed=7, time_scale=0.001) as sim:
            made = sim.generate_orders(4, financial_status="paid", channel="web")
            await sim.settle()
            journal = SqliteJournal(tmp_path / "journal.db")
            await journal.open()
            source = ShopifySource("shop", options(sim))
            # Given the first order came by webhook (journaled and routed with its keys)
            body = orjson.dumps(sim.store.get_order(made[0]["id"]))
            headers = {"x-shopify-topic": "orders/create"}
            mid = await journal.append(
                NewMessage("shop", "orders/create:e1", time.time(), orjson.dumps(headers), body)
            )
            assert mid is not None
            event = source.decode(headers, body)
            await journal.route([Routing(mid, event.name, keys=event.keys)])
            poller = ShopifyPoller("shop", options(sim, poll=PollOptions(interval=1, start=3600)))
            try:
                # When the poller runs, it journals the other three, not the first
                assert await poller.poll(journal) == 3
                # and a second round finds nothing new
                assert await poller.poll(journal) == 0
                # A change after that is found on the next round
                await asyncio.sleep(1.1)  # Shopify's times have whole seconds
                sim.store.add_tags("Order", made[2]["id"], ["late"])
                assert await poller.poll(journal) == 1
            finally:
                await poller.close()
                await journal.close()

    run(case)
