"""`seamline test`, `reconcile`, `landscape` and `plan` as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import orjson
import pytest

from seamline.change import version
from seamline.engine.router import offline_router
from seamline.journal.base import NewMessage
from seamline.journal.location import journal_for
from seamline.project import load_project
from seamline.sandbox.shopify import ShopifySimulator
from seamline.sandbox.threepl import ThreePLSimulator

EXAMPLE = Path(__file__).parents[2] / "examples" / "demo-shop"
pytestmark = pytest.mark.timeout(180)


async def seamline(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "seamline.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )  # fmt: skip
    said, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, said.decode()


@pytest.fixture
def project(demo_project: Path) -> Path:
    return demo_project


def test_flow_cases_pass_and_a_broken_one_fails_with_its_diff(project: Path) -> None:
    ok, said = asyncio.run(seamline("test", str(project)))
    expected = project / "tests" / "orders-to-warehouse" / "web-order.expected.json"
    expected.write_text(expected.read_text().replace('"quantity": 1', '"quantity": 3', 1))
    failed, diff = asyncio.run(seamline("test", str(project)))

    assert ok == 0, said
    assert "5 of 5 cases pass" in said
    assert failed == 1
    assert "FAIL orders-to-warehouse/web-order" in diff
    assert '-        "quantity": 3,' in diff and '+        "quantity": 1,' in diff


def test_a_new_project_has_flow_cases_that_pass_and_catch_an_unmapped_value(
    tmp_path: Path,
) -> None:
    # Given: the project `seamline init` writes, its two cases passing
    project = tmp_path / "new"
    made, _ = asyncio.run(seamline("init", str(project)))
    ok, said = asyncio.run(seamline("test", str(project)))

    # When: the shop starts sending orders from a new channel the value map does not know
    case = project / "tests" / "orders-to-oms" / "web-order.input.json"
    case.write_text(case.read_text().replace('"source_name": "web"', '"source_name": "app"'))
    failed, diff = asyncio.run(seamline("test", str(project)))

    # Then: that case fails, naming the value and the map, and the run exits non-zero
    assert made == 0 and ok == 0, said
    assert "2 of 2 cases pass" in said
    assert failed == 1
    assert "FAIL orders-to-oms/web-order" in diff
    assert "value 'app' at 'source_name' is not in value map 'channels'" in diff


def test_the_landscape_is_written_as_markdown_and_json(project: Path, tmp_path: Path) -> None:
    code, said = asyncio.run(
        seamline("landscape", str(project), "--json", str(tmp_path / "map.json"))
    )

    assert code == 0, said
    assert "1. **accounting-export** (100): runs outside the hub" in said
    data = json.loads((tmp_path / "map.json").read_text())
    names = {i["name"] for i in data["integrations"]}
    assert names == {p.stem for p in (project / "flows").glob("*.yaml")} | {"accounting-export"}


def test_reconcile_shows_drift_keeps_the_run_and_heals_through_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def case() -> list[tuple[int, str]]:
        async with (
            ShopifySimulator(seed=41, products=3, time_scale=0.001) as shop,
            ThreePLSimulator(tmp_path / "3pl", seed=41) as warehouse,
        ):
            root = tmp_path / "p"
            (root / "systems").mkdir(parents=True)
            (root / "flows").mkdir()
            (root / "checks").mkdir()
            (root / "seamline.yaml").write_text("name: cli\njournal: journal.db\n")
            location = min(shop.store.locations)
            (root / "systems" / "shop.yaml").write_text(
                f"kind: shopify\nconnection:\n  shop: {shop.shop}\n  base_url: {shop.url}\n"
                f"  api_version: '{shop.api_version}'\n  access_token: ${{T}}\n"
                f"  location_id: '{location}'\n"
            )
            (root / "systems" / "warehouse.yaml").write_text(
                f"kind: sftp_csv\nconnection:\n  host: 127.0.0.1\n  port: {warehouse.port}\n"
                f"  username: {warehouse.username}\n  password: ${{P}}\n"
                "  insecure_accept_any_host_key: true\n  poll: {interval: 1h}\n"
            )
            shutil.copy(EXAMPLE / "flows" / "stock-to-shop.yaml", root / "flows")
            shutil.copy(EXAMPLE / "checks" / "stock.yaml", root / "checks")
            items = {v["sku"]: v["inventory_item_id"] for v in shop.store.variants.values()}
            skus = sorted(s for s in items if s)
            for n, sku in enumerate(skus):
                shop.set_inventory(items[sku], location, 10 + n)
            warehouse.set_stock({sku: 10 + n for n, sku in enumerate(skus)} | {skus[0]: 3})
            warehouse.write_inventory_snapshot()
            for name, value in {"T": shop.token, "P": warehouse.password}.items():
                monkeypatch.setenv(name, value)
            monkeypatch.setenv("SEAMLINE_ACTOR", "ada")
            first = await seamline("reconcile", "stock", str(root))
            second = await seamline("reconcile", "stock", str(root), "--heal", "--yes")
            journal = journal_for(load_project(root))
            await journal.open()
            try:
                runs = await journal.check_runs("stock")
                heals = [a for a in await journal.audit_log() if a["action"] == "heal"]
            finally:
                await journal.close()
            return [first, second, (len(runs), str(runs[0]["actor"])), (len(heals), "")]

    (code, said), (again, healed), (runs, actor), (heals, _) = asyncio.run(case())

    assert code == 3, said
    assert "1 mismatch" in said and "drift on 1 keys (first run)" in said
    assert "available 3 vs 10" in said
    assert again == 3, healed
    assert "drift on 1 keys, as on the run before" in healed
    assert "journaled 1 heals" in healed
    assert (runs, actor, heals) == (2, "ada", 1)


def test_plan_rehearses_a_changed_flow_on_recent_traffic(project: Path) -> None:
    async def case() -> tuple[int, str]:
        # Given the hub ran the project (versions kept) and routed some recent orders
        loaded = load_project(project)
        journal = journal_for(loaded)
        await journal.open()
        try:
            await journal.record_flow_versions(version.live(loaded), actor="hub", now=1.0)
            async with ShopifySimulator(seed=42, products=4, time_scale=0.001) as shop:
                orders = shop.generate_orders(12, channel="web", test=False)
            router = offline_router(loaded)
            headers = orjson.dumps({"x-shopify-topic": "orders/create"})
            for n, order in enumerate(orders):
                body = orjson.dumps(order)
                mid = await journal.append(NewMessage("shop", f"o{n}", 2.0 + n, headers, body))
                assert mid is not None
                stored = (await journal.unrouted(100))[-1]
                await journal.route([router.route(stored)])
        finally:
            await journal.close()
        # When web orders become B2C in the flow on disk
        flow = project / "flows" / "orders-to-erp.yaml"
        flow.write_text(flow.read_text().replace("{web: WEB,", "{web: B2C,"))
        return await seamline("plan", str(project))

    code, said = asyncio.run(case())

    assert code == 0, said
    assert "~ flow orders-to-erp:" in said
    assert "orders-to-erp: 12 of 12 recent messages would be handled differently" in said
    assert "description: changes in 12, e.g. WEB #" in said
    assert "orders-to-warehouse" not in said  # unchanged: not rehearsed


def test_chaos_refuses_a_fault_the_system_cannot_play_before_starting_anything(
    project: Path,
) -> None:
    code, said = asyncio.run(seamline("chaos", "throttle:warehouse:5s", "-p", str(project)))

    assert code == 2, said
    assert "throttle plays on HTTP answers; warehouse is sftp_csv" in said
