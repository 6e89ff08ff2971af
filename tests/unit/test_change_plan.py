"""A change rehearsed on recent traffic: what differs is counted and said in words."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import orjson
import pytest

from seamline.change.plan import differences, rehearse
from seamline.engine.router import offline_router
from seamline.journal.base import StoredMessage
from seamline.project import Project, load_project
from seamline.sandbox.shopify import ShopifySimulator

EXAMPLE = Path(__file__).parents[2] / "examples" / "demo-shop"


def recent_orders(count: int) -> list[StoredMessage]:
    async def make() -> list[dict[str, object]]:
        async with ShopifySimulator(seed=21, products=6, time_scale=0.001) as shop:
            return shop.generate_orders(count, test=False)

    headers = orjson.dumps({"x-shopify-topic": "orders/create"})
    return [
        StoredMessage(n, "shop", f"orders/create:{n}", 0.0, headers, orjson.dumps(order))
        for n, order in enumerate(asyncio.run(make()), 1)
    ]


@pytest.fixture
def projects(tmp_path: Path, demo_secrets: None) -> tuple[Project, Project]:
    live, new = tmp_path / "live", tmp_path / "new"
    for folder in (live, new):
        shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("journal.db*", "tests"))
    # The change: web orders become B2C in the ERP, and the 3PL drops the DHL Paket service
    erp = new / "flows" / "orders-to-erp.yaml"
    erp.write_text(erp.read_text().replace("{web: WEB,", "{web: B2C,"))
    warehouse = new / "flows" / "orders-to-warehouse.yaml"
    warehouse.write_text(warehouse.read_text().replace(" DHL Paket: DHL-PKT,", ""))
    return load_project(live), load_project(new)


def test_the_changes_between_two_projects_are_listed(projects: tuple[Project, Project]) -> None:
    live, new = projects

    said = differences(live, new)

    assert said == [
        "~ flow orders-to-erp: value_maps",
        "  value map order_types: web: WEB -> B2C",
        "~ flow orders-to-warehouse: value_maps",
        "  value map shipping_services: - DHL Paket (was DHL-PKT)",
    ]


def test_recent_traffic_shows_what_a_change_would_send_differently(
    projects: tuple[Project, Project],
) -> None:
    live, new = projects
    messages = recent_orders(60)
    routers = offline_router(live), offline_router(new)
    bodies = [orjson.loads(m.body) for m in messages]
    web = sum(1 for b in bodies if b["source_name"] == "web")
    dhl = sum(
        1 for b in bodies if b["shipping_lines"] and b["shipping_lines"][0]["title"] == "DHL Paket"
    )
    assert web and dhl, "the sample has web orders and DHL parcels"

    erp = rehearse(
        "orders-to-erp",
        (live.flows["orders-to-erp"], routers[0]),
        (new.flows["orders-to-erp"], routers[1]),
        messages,
    )
    warehouse = rehearse(
        "orders-to-warehouse",
        (live.flows["orders-to-warehouse"], routers[0]),
        (new.flows["orders-to-warehouse"], routers[1]),
        messages,
    )

    assert erp.messages == 60
    assert {(path, old[:3], now[:3]) for path, old, now in erp.changed} == {
        ("description", "WEB", "B2C")
    }
    assert erp.different == web
    assert (
        erp.summary()[0]
        == f"orders-to-erp: {web} of 60 recent messages would be handled differently:"
    )
    assert erp.summary()[1].startswith(f"  description: changes in {web}, e.g. WEB #")
    # DHL parcels are now refused (one of them was skipped before: nothing to ship)
    assert warehouse.different == dhl
    assert sum(n for (_, now, _), n in warehouse.outcomes.items() if now == "rejected") == dhl
    assert all("'DHL Paket'" in reason for _, _, reason in warehouse.outcomes)
    assert any(" would now be rejected (were sent): field 'shipping_method'" in line
               for line in warehouse.summary())  # fmt: skip
