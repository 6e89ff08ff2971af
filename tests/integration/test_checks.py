"""Checks against the simulators and a real Tryton: every injected drift found, nothing else.

Stock: the 3PL's snapshot (left, the truth) against the shop's available quantity at its
location. Prices: the ERP's list prices (left) against the shop's variant prices.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from seamline.checks import heal
from seamline.checks.compare import Tolerance
from seamline.checks.entity import phone_text
from seamline.checks.run import Outcome, run
from seamline.checks.spec import ABSENT, CheckSpec
from seamline.connectors.base import Event, Window
from seamline.connectors.registry import connector
from seamline.connectors.sftp_csv.connector import PollOptions, SftpCsvOptions
from seamline.connectors.shopify.connector import ShopifyOptions
from seamline.connectors.tryton.connector import TrytonOptions
from seamline.connectors.tryton.sink import TrytonSink
from seamline.engine.hub import Hub
from seamline.engine.router import offline_router
from seamline.errors import ContractError, TransientError
from seamline.journal.base import NewMessage
from seamline.journal.location import journal_for
from seamline.observe import alerts
from seamline.project import load_project
from seamline.sandbox.shopify import ShopifySimulator
from seamline.sandbox.threepl import ThreePLSimulator
from seamline.settings import Secret
from tests.reliability.harness import free_port

pytestmark = pytest.mark.timeout(240)
EXAMPLE = Path(__file__).parents[2] / "examples" / "demo-shop"


def shop_options(sim: ShopifySimulator, location: int | None) -> ShopifyOptions:
    return ShopifyOptions(
        shop=sim.shop,
        base_url=sim.url,
        api_version=sim.api_version,
        access_token=Secret(sim.token),
        secrets=[Secret(sim.secret)],
        location_id=str(location) if location else None,
    )


def warehouse_options(sim: ThreePLSimulator) -> SftpCsvOptions:
    return SftpCsvOptions(
        host=sim.host,
        port=sim.port,
        username=sim.username,
        password=Secret(sim.password),
        known_host_key=sim.host_key,
        poll=PollOptions(interval=1, settle=0),
    )


def shop_zone(sim: ShopifySimulator) -> str:
    hours = -int(sim.store.clock.zone.utcoffset(None).total_seconds() // 3600)
    return "Etc/UTC" if hours == 0 else f"Etc/GMT{hours:+d}"


def variants(sim: ShopifySimulator) -> list[dict[str, Any]]:
    return [v for v in sim.store.variants.values() if v["sku"]]


def found(outcome: Outcome) -> set[tuple[str, str]]:
    return {(f.kind, f.key[0]) for f in outcome.findings}


async def compare(
    entity: str, left: Any, right: Any, *, window: Window | None = None, **fields: Tolerance
) -> Outcome:
    seen: list[str] = []
    try:
        outcome = await run(
            entity,
            left,
            right,
            fields or {"available": Tolerance()},
            absent=ABSENT[entity],
            window=window,
            progress=lambda p: seen.append(p.phase),
        )
    finally:
        await left.close()
        await right.close()
    assert seen[-1] == "done" and "comparing" in seen
    return outcome


def test_stock_drift_between_3pl_and_shop_is_found_exactly(tmp_path: Path) -> None:
    async def case() -> None:
        async with (
            ShopifySimulator(seed=11, products=8, time_scale=0.001) as shop,
            ThreePLSimulator(tmp_path / "3pl", seed=11) as warehouse,
        ):
            location = min(shop.store.locations)
            skus = [v["sku"] for v in variants(shop)]
            items = {v["sku"]: v["inventory_item_id"] for v in variants(shop)}
            # Given both systems agree on every SKU...
            truth = {sku: 10 + n for n, sku in enumerate(skus)}
            for sku, units in truth.items():
                shop.set_inventory(items[sku], location, units)
            # ...except: one level differs, one SKU the 3PL no longer lists (sold out there,
            # still 4 in the shop), one the 3PL has that the shop does not stock, one at 0 in
            # the shop that the 3PL does not list (no drift)
            differs, gone, zero = skus[0], skus[1], skus[2]
            shop.set_inventory(items[differs], location, truth[differs] + 3)
            shop.set_inventory(items[gone], location, 4)
            shop.set_inventory(items[zero], location, 0)
            stock = {**truth, gone: 0, zero: 0, "ONLY-AT-3PL": 7}
            warehouse.set_stock(stock)
            warehouse.write_inventory_snapshot()

            outcome = await compare(
                "stock",
                connector("sftp_csv").reader("warehouse", warehouse_options(warehouse)),  # type: ignore[union-attr]
                connector("shopify").reader("shop", shop_options(shop, location)),  # type: ignore[union-attr]
            )

            assert found(outcome) == {
                ("mismatch", differs),
                ("missing_left", gone),
                ("missing_right", "ONLY-AT-3PL"),
            }
            (mismatch,) = [f for f in outcome.findings if f.kind == "mismatch"]
            assert (mismatch.left, mismatch.right) == (
                {"available": truth[differs]},
                {"available": truth[differs] + 3},
            )
            assert outcome.tally.agreed == len(skus) - 2  # `zero` agrees by absence

            # and once the shop is healed by hand, a rerun is clean
            shop.set_inventory(items[differs], location, truth[differs])
            shop.set_inventory(items[gone], location, 0)
            warehouse.set_stock("ONLY-AT-3PL", 0)
            await asyncio.sleep(1.1)  # snapshots are named by the second
            warehouse.write_inventory_snapshot()
            again = await compare(
                "stock",
                connector("sftp_csv").reader("warehouse", warehouse_options(warehouse)),  # type: ignore[union-attr]
                connector("shopify").reader("shop", shop_options(shop, location)),  # type: ignore[union-attr]
            )
            assert again.clean, again.summary()

    asyncio.run(case())


def test_price_drift_between_erp_and_shop_is_found_exactly(
    tryton_options: TrytonOptions,
) -> None:
    async def case() -> None:
        erp = TrytonSink("erp", tryton_options)
        try:
            async with ShopifySimulator(seed=12, products=4, time_scale=0.001) as shop:
                # Given the ERP holds the shop's SKUs, each under a fresh prefix, at its price
                tag = uuid.uuid4().hex[:6].upper()
                for v in variants(shop):
                    v["sku"] = f"{tag}-{v['sku']}"
                listed = {v["sku"]: Decimal(v["price"]) for v in variants(shop)}
                drifted, missing = sorted(listed)[:2]
                for sku, price in listed.items():
                    if sku == missing:
                        continue
                    erp_price = price + Decimal("1.00") if sku == drifted else price
                    await erp.upsert_product(
                        {"sku": sku, "name": sku, "list_price": {"amount": str(erp_price)}}
                    )
                outcome = await compare(
                    "price",
                    connector("tryton").reader("erp", tryton_options),  # type: ignore[union-attr]
                    connector("shopify").reader("shop", shop_options(shop, None)),  # type: ignore[union-attr]
                    price=Tolerance(absolute=Decimal("0.005")),
                )

            # Then among the shop's SKUs exactly the injected drift is found; the ERP's other
            # products (other tests', the demo's) are only on the left
            mine = {(kind, sku) for kind, sku in found(outcome) if sku.startswith(tag)}
            assert mine == {("mismatch", drifted), ("missing_left", missing)}
            others = {(kind, sku) for kind, sku in found(outcome) if not sku.startswith(tag)}
            assert {kind for kind, _ in others} <= {"missing_right"}
            assert outcome.tally.agreed == len(listed) - 2
        finally:
            await erp.close()

    asyncio.run(case())


def test_readers_refuse_what_they_cannot_list(tmp_path: Path) -> None:
    async def case() -> None:
        async with (
            ShopifySimulator(seed=13, products=1, time_scale=0.001) as shop,
            ThreePLSimulator(tmp_path / "3pl", seed=13) as warehouse,
        ):
            no_location = connector("shopify").reader("shop", shop_options(shop, None))  # type: ignore[union-attr]
            empty = connector("sftp_csv").reader("warehouse", warehouse_options(warehouse))  # type: ignore[union-attr]
            try:
                with pytest.raises(ContractError, match="location_id"):
                    await anext(no_location.pages("stock"))
                with pytest.raises(ContractError, match="not 'price'"):
                    await anext(empty.pages("price"))
                with pytest.raises(TransientError, match="no inventory snapshot"):
                    await anext(empty.pages("stock"))
            finally:
                await no_location.close()
                await empty.close()

    asyncio.run(case())


@dataclass
class Orders:
    """Today's web orders in the shop, booked in the ERP except one (never booked) and one
    (booked a unit short)."""

    orders: list[dict[str, Any]]
    events: list[Event]
    missing: Event
    short: Event

    @property
    def names(self) -> set[str]:
        return {str(o["name"]) for o in self.orders}


async def book_orders(shop: ShopifySimulator, erp: TrytonSink) -> Orders:
    shop.store.order_count = 50_000 + uuid.uuid4().int % 40_000  # apart from other tests'
    orders = shop.generate_orders(6, channel="web", test=False, currency="EUR")
    source = connector("shopify").source("shop", shop_options(shop, None))  # type: ignore[union-attr]
    for v in variants(shop):
        await erp.upsert_product({"sku": v["sku"], "name": v["sku"]})
    events = [source.decode({"x-shopify-topic": "orders/create"}, orjson.dumps(o)) for o in orders]
    missing, short = events[0], events[1]
    for event in events[1:]:
        data = dict(event.data)
        if event is short:
            lines = [dict(line) for line in data["lines"]]
            lines[0]["quantity"] += 1
            data["lines"] = lines
        await erp.create_sale(data)
    return Orders(orders, events, missing, short)


async def compare_orders(shop: ShopifySimulator, tryton_options: TrytonOptions) -> Outcome:
    today = datetime.datetime.now(ZoneInfo(shop_zone(shop))).date()
    return await compare(
        "orders",
        connector("shopify").reader("shop", shop_options(shop, None)),  # type: ignore[union-attr]
        connector("tryton").reader("erp", tryton_options),  # type: ignore[union-attr]
        window=Window(today - datetime.timedelta(days=1), today),
        lines=Tolerance(),
        net=Tolerance(absolute=Decimal("0.02")),
    )


def test_order_drift_between_shop_and_erp_is_found_exactly(tryton_options: TrytonOptions) -> None:
    async def case() -> tuple[Orders, Outcome]:
        erp = TrytonSink("erp", tryton_options)
        try:
            async with ShopifySimulator(seed=15, products=4, time_scale=0.001) as shop:
                booked = await book_orders(shop, erp)
                return booked, await compare_orders(shop, tryton_options)
        finally:
            await erp.close()

    booked, outcome = asyncio.run(case())

    # Then exactly those two are found; every other order agrees to the cent, lines and net
    # amount (tax-inclusive prices and a whole-order discount code among them)
    assert any(e.data["taxes_included"] for e in booked.events[2:])
    assert any(e.data["discounts"] for e in booked.events[2:])
    mine = {(kind, key) for kind, key in found(outcome) if key in booked.names}
    assert mine == {
        ("missing_right", booked.missing.data["number"]),
        ("mismatch", booked.short.data["number"]),
    }, [f.describe() for f in outcome.findings if f.key[0] in booked.names]
    (mismatch,) = [f for f in outcome.findings if f.key[0] == booked.short.data["number"]]
    assert mismatch.fields == ("lines", "net")  # a unit more costs more


def order_project(root: Path, shop: ShopifySimulator, tryton: TrytonOptions) -> Path:
    """The shop's orders to the ERP, and the orders check healed through that flow."""
    for folder in ("systems", "flows", "mappings", "checks"):
        (root / folder).mkdir(parents=True)
    (root / "seamline.yaml").write_text("name: orders\njournal: journal.db\n")
    (root / "systems" / "shop.yaml").write_text(
        f"kind: shopify\nconnection:\n  shop: {shop.shop}\n  base_url: {shop.url}\n"
        f"  api_version: '{shop.api_version}'\n  access_token: ${{HEAL_SHOP_TOKEN}}\n"
        f"  secrets: ['${{HEAL_SHOP_SECRET}}']\n"
    )
    (root / "systems" / "erp.yaml").write_text(
        f"kind: tryton\nconnection:\n  url: {tryton.url}\n  database: {tryton.database}\n"
        f"  username: {tryton.username}\n  password: ${{HEAL_ERP_PASSWORD}}\n"
    )
    shutil.copy(EXAMPLE / "flows" / "orders-to-erp.yaml", root / "flows")
    shutil.copy(EXAMPLE / "mappings" / "erp.py", root / "mappings")
    (root / "checks" / "orders.yaml").write_text(
        "owner: finance\nentity: orders\nleft: {system: shop}\nright: {system: erp}\n"
        "heal: {flow: orders-to-erp}\n"
    )
    return root


def test_an_order_missing_in_the_erp_is_healed_from_the_journal(
    tryton_options: TrytonOptions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def case() -> tuple[Orders, list[heal.Heal], list[heal.Unhealable], Outcome, int]:
        erp = TrytonSink("erp", tryton_options)
        try:
            async with ShopifySimulator(seed=19, products=4, time_scale=0.001) as shop:
                booked = await book_orders(shop, erp)
                first = await compare_orders(shop, tryton_options)
                monkeypatch.setenv("HEAL_SHOP_TOKEN", shop.token)
                monkeypatch.setenv("HEAL_SHOP_SECRET", shop.secret)
                monkeypatch.setenv("HEAL_ERP_PASSWORD", tryton_options.password.reveal())  # type: ignore[union-attr]
                project = load_project(order_project(tmp_path / "p", shop, tryton_options))
                router = offline_router(project)
                # The hub received every order (its delivery to the ERP since gone)
                journal = journal_for(project)
                await journal.open()
                try:
                    headers = orjson.dumps({"x-shopify-topic": "orders/create"})
                    for n, order in enumerate(booked.orders):
                        body = orjson.dumps(order)
                        await journal.append(
                            NewMessage("shop", f"o{n}", time.time(), headers, body)
                        )
                    for message in await journal.unrouted(100):
                        routed = router.route(message)
                        await journal.route([replace(routed, deliveries=[])])
                    mine = [f for f in first.findings if f.key[0] in booked.names]
                    spec = project.checks["orders"]
                    heals, left_out = await heal.prepare(
                        spec, project.flows["orders-to-erp"], mine, journal=journal, router=router
                    )
                finally:
                    await journal.close()
                hub = Hub(project, listen=("127.0.0.1", free_port()))
                async with asyncio.TaskGroup() as tg:
                    task = tg.create_task(hub.run())
                    try:
                        await asyncio.wait_for(hub.started.wait(), 30)
                        await heal.apply(hub.journal, heals, check="orders", run="1", actor="t")
                        delivered = 0
                        deadline = time.monotonic() + 60
                        while time.monotonic() < deadline and not delivered:
                            counts = {r.state: r.count for r in await hub.journal.flow_counts()}
                            delivered = counts.get("delivered", 0)
                            await asyncio.sleep(0.3)
                    finally:
                        hub.stop()
                        await task
                return (
                    booked,
                    heals,
                    left_out,
                    await compare_orders(shop, tryton_options),
                    delivered,
                )
        finally:
            await erp.close()

    booked, heals, left_out, rerun, delivered = asyncio.run(case())

    # The missing order went again through orders-to-erp; the differing sale is for a person
    assert [h.key[0] for h in heals] == [booked.missing.data["number"]]
    assert heals[0].event == "order.created" and heals[0].flow == "orders-to-erp"
    assert [(u.key[0], "for a person" in u.why) for u in left_out] == [
        (booked.short.data["number"], True)
    ]
    assert delivered == 1
    mine = {(kind, key) for kind, key in found(rerun) if key in booked.names}
    assert mine == {("mismatch", booked.short.data["number"])}


def test_customer_drift_and_duplicates_are_found(tryton_options: TrytonOptions) -> None:
    async def case() -> None:
        erp = TrytonSink("erp", tryton_options)
        try:
            async with ShopifySimulator(seed=16, customers=5, time_scale=0.001) as shop:
                # Given the shop's customers, with e-mails and phones of this test only...
                tag = uuid.uuid4().hex[:8]
                number = f"{int(tag, 16) % 10**6:06d}"
                customers = sorted(shop.store.customers.values(), key=lambda c: c["id"])
                for n, c in enumerate(customers):
                    c["email"] = f"{tag}.{n}@Example.com"
                    c["phone"] = f"+32 470 {number[:3]} {number[3:]} {n}"
                never, renamed, twice = customers[0], customers[1], customers[2]
                # ...in the ERP too, except one never synced, one renamed there, and one
                # entered a second time under another address (same phone)
                for c in customers[1:]:
                    name = "Someone Else" if c is renamed else None
                    await erp.upsert_customer(
                        {
                            "email": c["email"].lower(),
                            "first_name": name or c["first_name"],
                            "last_name": "" if name else c["last_name"],
                            "phone": c["phone"],
                        }
                    )
                await erp.upsert_customer(
                    {"email": f"{tag}.again@example.com", "first_name": twice["first_name"],
                     "last_name": twice["last_name"], "phone": twice["phone"]}
                )  # fmt: skip
                outcome = await run(
                    "customers",
                    connector("shopify").reader("shop", shop_options(shop, None)),  # type: ignore[union-attr]
                    connector("tryton").reader("erp", tryton_options),  # type: ignore[union-attr]
                    {"name": Tolerance()},
                    duplicates_by=("phone",),
                )

            def email(c: dict[str, Any]) -> str:
                return f"email:{c['email'].lower()}"

            mine = {
                (f.kind, f.key[0], f.fields)
                for f in outcome.findings
                if tag in f.key[0] or f.key[0].startswith(f"phone:+32470{number}")
            }
            assert mine == {
                ("missing_right", email(never), ()),
                ("mismatch", email(renamed), ("name",)),
                ("missing_left", f"email:{tag}.again@example.com", ()),
                ("duplicate", f"phone:{phone_text(twice['phone'])}", ("right", "phone")),
            }
        finally:
            await erp.close()

    asyncio.run(case())


def heal_project(root: Path, shop: ShopifySimulator, warehouse: ThreePLSimulator) -> Path:
    """The 3PL's stock to the shop (its files are read hourly: the test's heals are alone)."""
    (root / "systems").mkdir(parents=True)
    (root / "flows").mkdir()
    (root / "seamline.yaml").write_text("name: heal\njournal: journal.db\n")
    (root / "systems" / "shop.yaml").write_text(
        f"kind: shopify\nowner: shop@x\nconnection:\n  shop: {shop.shop}\n"
        f"  base_url: {shop.url}\n  api_version: '{shop.api_version}'\n"
        f"  access_token: ${{HEAL_SHOP_TOKEN}}\n"
        f"  location_id: '{min(shop.store.locations)}'\n"
    )
    (root / "systems" / "warehouse.yaml").write_text(
        f"kind: sftp_csv\nowner: ops@x\nconnection:\n  host: 127.0.0.1\n"
        f"  port: {warehouse.port}\n  username: {warehouse.username}\n"
        f"  password: ${{HEAL_3PL_PASSWORD}}\n  insecure_accept_any_host_key: true\n"
        "  poll: {interval: 1h}\n"
    )
    shutil.copy(EXAMPLE / "flows" / "stock-to-shop.yaml", root / "flows")
    return root


def test_a_heal_sends_the_left_value_through_its_flow_and_the_rerun_is_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def case() -> None:
        async with (
            ShopifySimulator(seed=17, products=3, time_scale=0.001) as shop,
            ThreePLSimulator(tmp_path / "3pl", seed=17) as warehouse,
        ):
            monkeypatch.setenv("HEAL_SHOP_TOKEN", shop.token)
            monkeypatch.setenv("HEAL_3PL_PASSWORD", warehouse.password)
            project = load_project(heal_project(tmp_path / "p", shop, warehouse))
            location = min(shop.store.locations)
            items = {v["sku"]: v["inventory_item_id"] for v in variants(shop)}
            skus = sorted(items)
            # Given drift: one level differs, one SKU the 3PL no longer lists is 4 in the shop
            truth = {sku: 20 + n for n, sku in enumerate(skus)}
            for sku, units in truth.items():
                shop.set_inventory(items[sku], location, units)
            shop.set_inventory(items[skus[0]], location, 99)
            warehouse.set_stock({**truth, skus[1]: 0})
            # a snapshot the hub read long ago (moved aside), the shop drifted since
            name = warehouse.write_inventory_snapshot()
            done = tmp_path / "3pl" / "out" / "processed"
            done.mkdir(exist_ok=True)
            (tmp_path / "3pl" / "out" / name).rename(done / f"{name}.20261129000000")
            spec = CheckSpec.model_validate(
                {"owner": "ops", "entity": "stock", "left": {"system": "warehouse"},
                 "right": {"system": "shop"}, "heal": {"flow": "stock-to-shop"}}
            )  # fmt: skip

            async def check() -> Outcome:
                return await compare(
                    "stock",
                    connector("sftp_csv").reader("warehouse", project.systems["warehouse"].options),  # type: ignore[union-attr]
                    connector("shopify").reader("shop", project.systems["shop"].options),  # type: ignore[union-attr]
                )

            first = await check()
            heals, left_out = heal.plan(spec, project.flows["stock-to-shop"], first.findings)

            # Then the dry run says what would be sent: the 3PL's level, 0 where it lists none
            assert {(h.key[0], h.data["available"]) for h in heals} == {
                (skus[0], truth[skus[0]]),
                (skus[1], 0),
            }
            assert left_out == []
            assert shop.store.levels[(items[skus[0]], location)]["available"] == 99

            # When the heal is applied through a running hub
            hub = Hub(project, listen=("127.0.0.1", free_port()))
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(hub.run())
                try:
                    await asyncio.wait_for(hub.started.wait(), 30)
                    sent = await heal.apply(hub.journal, heals, check="stock", run="r1", actor="t")
                    again = await heal.apply(hub.journal, heals, check="stock", run="r1", actor="t")
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline:
                        counts = {r.state: r.count for r in await hub.journal.flow_counts()}
                        if counts.get("delivered", 0) >= 2:
                            break
                        await asyncio.sleep(0.2)
                    audit = [a for a in await hub.journal.audit_log() if a["action"] == "heal"]
                finally:
                    hub.stop()
                    await task

            # Then each went as an ordinary delivery, once, audited, and the rerun is clean
            assert (sent, again) == (2, 0)
            assert counts == {"delivered": 2}, counts
            assert len(audit) == 2
            rerun = await check()
            assert rerun.clean, rerun.summary()

    asyncio.run(case())


def test_a_scheduled_check_runs_in_the_hub_and_its_drift_raises_an_alert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def case() -> tuple[list[dict[str, Any]], list[Any]]:
        async with (
            ShopifySimulator(seed=18, products=2, time_scale=0.001) as shop,
            ThreePLSimulator(tmp_path / "3pl", seed=18) as warehouse,
        ):
            monkeypatch.setenv("HEAL_SHOP_TOKEN", shop.token)
            monkeypatch.setenv("HEAL_3PL_PASSWORD", warehouse.password)
            root = heal_project(tmp_path / "p", shop, warehouse)
            (root / "checks").mkdir()
            (root / "checks" / "stock.yaml").write_text(
                "owner: ops\nentity: stock\nleft: {system: warehouse}\n"
                "right: {system: shop}\nschedule: {every: 1h}\n"
            )
            project = load_project(root)
            location = min(shop.store.locations)
            levels = sorted((v["sku"], v["inventory_item_id"]) for v in variants(shop))
            for n, (_, item) in enumerate(levels):
                shop.set_inventory(item, location, 5 + n)
            warehouse.set_stock({s: 5 + n for n, (s, _) in enumerate(levels)} | {levels[0][0]: 8})
            name = warehouse.write_inventory_snapshot()
            done = tmp_path / "3pl" / "out" / "processed"
            done.mkdir(exist_ok=True)
            (tmp_path / "3pl" / "out" / name).rename(done / f"{name}.20261129000000")
            hub = Hub(project, listen=("127.0.0.1", free_port()))
            hub.check_grace = 0  # no minutes to spare for a starting hub to settle
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(hub.run())
                try:
                    await asyncio.wait_for(hub.started.wait(), 30)
                    deadline = time.monotonic() + 60
                    runs: list[dict[str, Any]] = []
                    firing: list[Any] = []
                    while time.monotonic() < deadline and not firing:
                        runs = await hub.journal.check_runs("stock")
                        firing = [a for a in await alerts.current(hub.journal) if a.rule == "drift"]
                        await asyncio.sleep(0.5)
                finally:
                    hub.stop()
                    await task
            return runs, firing

    runs, firing = asyncio.run(case())

    assert len(runs) == 1 and runs[0]["actor"] == "scheduler" and runs[0]["mismatch"] == 1
    (alert,) = firing
    assert alert.summary == "check stock: drift on 1 keys (1 mismatch)"
