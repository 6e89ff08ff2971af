"""A hub between the Shopify simulator and real targets, as separate processes.

Shopify does what it documents: duplicate deliveries, no order between them, deliveries that
never come, a cost limit that answers THROTTLED. The hub must turn that into one effect per
order version at the target, find what was dropped, and land every stock update.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from seamline.connectors.http.signature import generate_secret
from seamline.sandbox.recording_sink import read_records
from seamline.sandbox.shopify import ShopifySimulator
from seamline.sandbox.shopify.faults import Faults
from seamline.sandbox.webhook_sender import send_webhooks
from tests.reliability.harness import Hub, Project, Sink, drained, free_port, query

ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled")


def write_project(
    root: Path, sim: ShopifySimulator, *, sink_port: int, poll: str = "", api_version: str = ""
) -> Project:
    """Shop orders to a recording sink; stock from an ERP (Standard Webhooks) to the shop."""
    for folder in ("systems", "flows", "secrets"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "secrets" / "token").write_text(sim.token)
    (root / "secrets" / "shop").write_text(sim.secret)
    erp_secret = generate_secret()
    (root / "secrets" / "erp").write_text(erp_secret)
    hub_port = free_port()
    (root / "seamline.yaml").write_text(
        f"listen: 127.0.0.1:{hub_port}\nworker: {{batch: 50, lease: 10s}}\nlog_level: info\n"
    )
    (root / "systems" / "shop.yaml").write_text(
        "kind: shopify\nconnection:\n"
        f"  shop: {sim.shop}\n  base_url: {sim.url}\n"
        f"  api_version: '{api_version or sim.api_version}'\n"
        f"  currency: {sim.store.currency}\n"
        "  access_token: {file: secrets/token}\n  secrets: [{file: secrets/shop}]\n"
        + (f"  poll: {poll}\n" if poll else "")
        + "budget: {concurrency: 4}\n"
    )
    (root / "systems" / "sink.yaml").write_text(
        f"kind: http\nconnection:\n  base_url: http://127.0.0.1:{sink_port}\n  idempotent: true\n"
    )
    (root / "systems" / "erp.yaml").write_text(
        "kind: http\nconnection:\n  secrets: [{file: secrets/erp}]\n"
    )
    (root / "flows" / "orders.yaml").write_text(
        "owner: tests\n"
        "source:\n  system: shop\n"
        "  events: [order.created, order.updated, order.paid, order.cancelled]\n"
        "target: {system: sink, operation: request, options: {method: PUT, path: '/orders/{id}'}}\n"
        "ordering: {key: id}\nstale: {version: updated_at}\n"
        "retry: {schedule: [0.2s, 0.5s, 1s], max_attempts: 20}\n"
    )
    (root / "flows" / "stock.yaml").write_text(
        "owner: tests\nsource: {system: erp, events: [stock.changed]}\n"
        "target: {system: shop, operation: set_inventory}\n"
        "mapping:\n  fields:\n    inventory_item_id: item\n    location_id: location\n"
        "    available: {from: qty, type: int}\n"
        "ordering: {key: item}\nretry: {schedule: [0.2s, 0.5s, 1s], max_attempts: 5}\n"
    )
    return Project(root, hub_port, erp_secret)


def seconds(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def applied_versions(sink_db: Path) -> dict[str, list[str]]:
    """Per order id, the `updated_at` of each version the sink applied, in order."""
    versions: dict[str, list[str]] = defaultdict(list)
    for record in read_records(sink_db):
        order = record.json()
        versions[order["id"]].append(order["updated_at"])
    return versions


def landscape(
    tmp_path: Path,
    faults: Faults,
    scenario: Callable[[ShopifySimulator, Project], Any],
    *,
    poll: str = "",
    api_version: str = "",
    graphql_bucket: tuple[float, float] = (2000.0, 100.0),
) -> tuple[Sink, Project, dict[int, str]]:
    """Run `scenario` with a simulator, a hub and a sink; the sim's final order versions."""
    sink = Sink(tmp_path / "sink.db", free_port())
    sink.start()
    final: dict[int, str] = {}

    async def go() -> Project:
        async with ShopifySimulator(
            seed=11, time_scale=0.001, faults=faults, graphql_bucket=graphql_bucket
        ) as sim:
            project = write_project(
                tmp_path / "project", sim, sink_port=sink.port, poll=poll, api_version=api_version
            )
            hub = Hub(project, tmp_path / "hub.log")
            await hub.start(within=30)
            try:
                for topic in ORDER_TOPICS:
                    sim.subscribe(topic, f"http://127.0.0.1:{project.hub_port}/hooks/shop")
                await scenario(sim, project)
                await sim.settle()
                final.update({oid: o["updated_at"] for oid, o in sim.store.orders.items()})
            finally:
                hub.stop()
            return project

    try:
        project = asyncio.run(go())
    finally:
        sink.stop()
    return sink, project, final


@pytest.mark.timeout(180)
def test_duplicated_and_reordered_webhooks_make_one_effect_per_order_version(
    tmp_path: Path,
) -> None:
    sent: Counter[str] = Counter()

    async def scenario(sim: ShopifySimulator, project: Project) -> None:
        sim.generate_orders(30, channel="web", edit=8, cancel=4, refund=4)
        await sim.settle()
        await drained(project.dir / "journal.db", within=60)
        sent.update(a.event_id for a in sim.deliveries if a.outcome == "delivered")

    faults = Faults(duplicate_rate=0.3, reorder_rate=0.3)
    sink, project, final = landscape(tmp_path, faults, scenario)
    # Shopify really did repeat itself
    assert any(n > 1 for n in sent.values()), "the simulator sent no duplicates"
    versions = applied_versions(sink.db)
    assert set(versions) == {str(oid) for oid in final}
    for order_id, applied in versions.items():
        # never the same version twice, never an older one after a newer one
        times = [seconds(v) for v in applied]
        assert times == sorted(set(times)), f"order {order_id}: {applied}"
        # and the last version Shopify has is the one the target has
        assert applied[-1] == final[int(order_id)], order_id
    skipped = query(
        project.dir / "journal.db",
        "SELECT count(*) FROM delivery WHERE state = 'skipped' AND last_error LIKE 'stale%'",
    )[0][0]
    assert skipped > 0, "no stale update was skipped: the reordering never happened"


@pytest.mark.timeout(180)
def test_dropped_webhooks_are_found_by_the_poller(tmp_path: Path) -> None:
    async def scenario(sim: ShopifySimulator, project: Project) -> None:
        sim.generate_orders(20, channel="web", edit=5)
        await sim.settle()
        expected = {str(oid): o["updated_at"] for oid, o in sim.store.orders.items()}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (tmp_path / "sink.db").exists():
                latest = {oid: v[-1] for oid, v in applied_versions(tmp_path / "sink.db").items()}
                if latest == expected:
                    return
            await asyncio.sleep(0.5)
        raise AssertionError("the poller did not bring every dropped order")

    # The project pins a version Shopify no longer serves, and Shopify marks REST deprecated
    faults = Faults(drop_rate=0.5, deprecated=True)
    _sink, project, final = landscape(
        tmp_path,
        faults,
        scenario,
        poll="{interval: 1s, start: 1h, overlap: 5s}",
        api_version="2025-01",
    )
    polled = query(
        project.dir / "journal.db", "SELECT count(*) FROM message WHERE source_id LIKE 'poll:%'"
    )
    assert polled[0][0] > 0
    assert len(final) == 20
    # Both reach the operator: on the system in `seamline status`
    status = subprocess.run(
        [sys.executable, "-m", "seamline.cli", "status", str(project.dir), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    (shop,) = [s for s in json.loads(status.stdout)["systems"] if s["system"] == "shop"]
    said = " | ".join(shop["warnings"])
    assert "asked for API version 2025-01, Shopify answered with 2025-07" in said
    assert "deprecated call" in said


@pytest.mark.timeout(180)
def test_stock_updates_under_shopify_throttling_all_land_and_none_dead(tmp_path: Path) -> None:
    last: dict[tuple[int, int], int] = {}

    async def scenario(sim: ShopifySimulator, project: Project) -> None:
        levels = sorted(sim.store.levels)[:6]

        def data(i: int) -> dict[str, Any]:
            item, location = levels[i % len(levels)]
            last[(item, location)] = 100 + i
            return {"item": item, "location": location, "qty": 100 + i}

        summary = await send_webhooks(
            url=f"http://127.0.0.1:{project.hub_port}/hooks/erp",
            secret=project.secret,
            count=60,
            connections=4,
            event_type="stock.changed",
            data=data,
        )
        assert summary.ok == 60, summary
        await drained(project.dir / "journal.db", within=90)
        for (item, location), qty in last.items():
            assert sim.store.levels[(item, location)]["available"] == qty

    # A 40-point bucket restoring 20 points/s: an inventory update costs about 10
    _sink, project, _final = landscape(tmp_path, Faults(), scenario, graphql_bucket=(40.0, 20.0))
    journal = project.dir / "journal.db"
    states = dict(
        query(journal, "SELECT state, count(*) FROM delivery WHERE flow = 'stock' GROUP BY state")
    )
    assert states == {"delivered": 60}, states
    throttled = query(journal, "SELECT count(*) FROM attempt WHERE classification = 'throttled'")[
        0
    ][0]
    assert throttled > 0, "Shopify never throttled: the test proved nothing"
