"""The demo landscape (`examples/demo-shop`) end to end, with every system real or simulated.

A Shopify simulator sends orders; a real Tryton books them; a 3PL simulator takes order files
over SFTP, ships them and counts stock. The hub is `seamline run` on the example's own
project files, pointed at the simulators through the variables its README documents. The ERP
goes away in the middle of the run (a cut proxy in front of Tryton): nothing is lost, nothing
is booked twice. Parcels the 3PL ships come back as Shopify fulfillments and as done
shipments in Tryton; an order cancelled in the shop (one the 3PL holds) is called off in
Tryton.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from seamline.connectors.tryton.cancellation import cancelled_in_effect
from seamline.connectors.tryton.connector import TrytonOptions
from seamline.connectors.tryton.sink import TrytonSink
from seamline.sandbox.fault_proxy import FaultProxy
from seamline.sandbox.shopify import ShopifySimulator
from seamline.sandbox.threepl import ThreePLSimulator
from seamline.sandbox.tryton import LocalTryton
from seamline.settings import Secret
from tests.reliability.harness import Hub, Project, drained, free_port, query

EXAMPLE = Path(__file__).parents[2] / "examples" / "demo-shop"
SEED = 7  # the example's `location_id` is this simulator seed's first location
ORDERS = 16


def point_at(project: Path, connection: dict[str, tuple[str, str]]) -> None:
    """In each system file, replace its one literal connection value `old` by `new`."""
    for name, (old, new) in connection.items():
        path = project / "systems" / f"{name}.yaml"
        text = path.read_text()
        assert text.count(old) == 1, f"{path.name} has no single {old!r}"
        path.write_text(text.replace(old, new))


async def until(condition: Callable[[], Any], what: str, *, within: float) -> None:
    deadline = time.monotonic() + within
    while not await _holds(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within:.0f} s for {what}")
        await asyncio.sleep(0.25)


async def _holds(condition: Callable[[], Any]) -> bool:
    result = condition()
    if asyncio.iscoroutine(result):
        result = await result
    return bool(result)


def available(shop: ShopifySimulator, sku: str, location: int) -> int:
    (item,) = [v["inventory_item_id"] for v in shop.store.variants.values() if v["sku"] == sku]
    level: int = shop.store.levels[(item, location)]["available"]
    return level


@pytest.mark.timeout(280)
def test_demo_flows_book_ship_fulfil_and_converge_through_an_erp_outage(
    tmp_path: Path, tryton: LocalTryton, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_dir = tmp_path / "demo-shop"
    shutil.copytree(EXAMPLE, project_dir, ignore=shutil.ignore_patterns("journal.db*"))
    erp = TrytonSink(
        "check",
        TrytonOptions(
            url=tryton.url,
            database=tryton.database,
            username=tryton.user,
            password=Secret(tryton.password),
            timeout=60.0,
        ),
    )

    mine: set[str] = set()
    """This run's order numbers: other tests of the session book sales in the same Tryton."""

    async def sales() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await erp.client.model(
            "sale.sale",
            "search_read",
            [["description", "like", "WEB #%"], ["reference", "in", sorted(mine)]],
            0,
            None,
            None,
            ["reference", "state"],
        )
        return found

    async def scenario() -> Outcome:
        async with (
            ShopifySimulator(seed=SEED, shop="seamline-demo", products=6, time_scale=0.01) as shop,
            ThreePLSimulator(
                tmp_path / "3pl",
                seed=SEED,
                ship_delay=10,
                time_scale=0.1,
                split_rate=0.25,
                short_rate=0.0,
            ) as warehouse,
            FaultProxy(tryton.port) as erp_link,
        ):
            # Given: the shop's SKUs exist in the ERP (through the connector), stock at the 3PL
            skus = sorted({v["sku"] for v in shop.store.variants.values() if v["sku"]})
            for sku in skus:
                await erp.upsert_product({"sku": sku, "name": f"Demo {sku}"})
            warehouse.set_stock(dict.fromkeys(skus, 40))
            location = min(shop.store.locations)
            assert f'location_id: "{location}"' in (project_dir / "systems/shop.yaml").read_text()
            point_at(
                project_dir,
                {
                    "shop": ("http://127.0.0.1:8701", shop.url),
                    "erp": ("http://127.0.0.1:8000", erp_link.url),
                    "warehouse": ("port: 2222", f"port: {warehouse.port}"),
                },
            )
            for name, value in {
                "SHOP_ACCESS_TOKEN": shop.token,
                "SHOP_WEBHOOK_SECRET": shop.secret,
                "ERP_PASSWORD": tryton.password,
                "WAREHOUSE_PASSWORD": warehouse.password,
            }.items():
                monkeypatch.setenv(name, value)
            check = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "seamline.cli", "check", str(project_dir),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            said, _ = await asyncio.wait_for(check.communicate(), timeout=60)
            assert check.returncode == 0, said.decode()
            project = Project(project_dir, free_port(), "")
            hub = Hub(project, tmp_path / "hub.log")
            await hub.start(within=30)
            try:
                shop.subscribe("orders/create", project.url)
                shop.subscribe("orders/cancelled", project.url)
                warehouse.write_inventory_snapshot()
                await until(
                    lambda: all(available(shop, s, location) == 40 for s in skus),
                    "the first snapshot in Shopify",
                    within=30,
                )

                # When: web orders come in, and the ERP goes away while they are booked
                orders = shop.generate_orders(ORDERS, channel="web", test=False)
                references = {str(o["name"]) for o in orders}
                mine.update(references)
                ids = {str(o["id"]) for o in orders}
                held = orders[-1]
                warehouse.plan_order(str(held["id"]), hold=True)

                async def some_booked() -> bool:
                    return len(await sales()) >= 3

                await until(some_booked, "the first sales", within=60)
                await erp_link.cut()
                await asyncio.sleep(8)
                erp_link.restore()

                # Then: a sale for every order, an order file for every order
                async def all_booked() -> bool:
                    return {s["reference"] for s in await sales()} == references

                await until(all_booked, "a sale for every order", within=120)
                await until(
                    lambda: {r.order_id for r in warehouse.orders_received} == ids,
                    "an order file for every order",
                    within=60,
                )

                # and every parcel shipped is a fulfillment with its tracking number in Shopify
                def fulfilled() -> bool:
                    shipped = {(s.order_id, s.tracking_number) for s in warehouse.shipments_written}
                    tracked = {
                        (str(o["id"]), f["tracking_number"])
                        for o in shop.store.orders.values()
                        for f in o["fulfillments"]
                    }
                    shipping = ids - {str(held["id"])}
                    return shipped == tracked and {order for order, _ in shipped} == shipping

                await until(fulfilled, "a fulfillment for every shipment", within=90)

                # and every parcel is a done shipment in Tryton, its tracking number the reference
                trackings = {s.tracking_number for s in warehouse.shipments_written}

                async def shipped_in_erp() -> bool:
                    done = await erp.client.model(
                        "stock.shipment.out", "search_read",
                        [["reference", "in", sorted(trackings)], ["state", "=", "done"]],
                        0, None, None, ["reference"],
                    )  # fmt: skip
                    return {d["reference"] for d in done} == trackings

                await until(shipped_in_erp, "a done shipment in the ERP per parcel", within=90)

                # and the order the 3PL holds, cancelled in the shop, is called off in the ERP
                shop.cancel_order(int(held["id"]))
                (held_sale,) = [s["id"] for s in await sales() if s["reference"] == held["name"]]

                async def called_off() -> bool:
                    return await cancelled_in_effect(erp.client, int(held_sale))

                await until(called_off, "the held order's sale called off", within=60)

                # and the next snapshot (one SKU now sold out at the 3PL) is Shopify's stock
                warehouse.set_stock(skus[0], 0)
                await asyncio.sleep(1.1)  # a snapshot is named by the second it was taken
                warehouse.write_inventory_snapshot()
                await until(
                    lambda: all(
                        available(shop, s, location) == warehouse.stock.get(s, 0) for s in skus
                    ),
                    "Shopify's stock equal to the 3PL's",
                    within=60,
                )
                counts = await drained(project.journal, within=60)
                return Outcome(
                    references=references,
                    sales=await sales(),
                    order_files=Counter(
                        p.name.split("_")[1] for p in (tmp_path / "3pl/in/processed").iterdir()
                    ),
                    ids=ids,
                    counts=counts,
                    refused=erp_link.refused,
                )
            finally:
                hub.stop()
                await erp.close()

    outcome = asyncio.run(scenario())
    assert outcome.refused > 0, "the ERP outage never happened"
    # No sale twice, none missing, each confirmed (Tryton processes a sale as it confirms it;
    # it is done once everything is shipped, or once called off)
    assert Counter(s["reference"] for s in outcome.sales) == Counter(outcome.references)
    assert {s["state"] for s in outcome.sales} <= {"processing", "done"}
    # One order file per order
    assert outcome.order_files == Counter(outcome.ids), outcome.order_files
    # Nothing left for an operator, and the hub did see the ERP fail
    assert not outcome.counts.get("dead") and not outcome.counts.get("review"), outcome.counts
    failed = query(
        project_dir / "journal.db",
        "SELECT count(*) FROM attempt JOIN delivery ON delivery.id = attempt.delivery_id "
        "WHERE delivery.flow = 'orders-to-erp' AND classification != 'delivered'",
    )[0][0]
    assert failed > 0, "no delivery to the ERP failed: the hub never saw the outage"


@dataclass
class Outcome:
    references: set[str]
    sales: list[dict[str, Any]]
    order_files: Counter[str]
    ids: set[str]
    counts: dict[str, int]
    refused: int
