"""The checks pages, the landscape map and flow versions, over real HTTP on loopback: what a
viewer reads, what an operator runs, and that the API answers what the CLI writes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from seamline.cli import app, version_text, write_example
from seamline.landscape import export, signals
from seamline.landscape.register import build
from seamline.project import load_project
from seamline.sandbox.shopify import ShopifySimulator
from seamline.sandbox.threepl import ThreePLSimulator
from tests.console.site import FLOW, Site, add_stock_check, run, served

runner = CliRunner()
EXAMPLE = Path(__file__).parents[2] / "examples" / "demo-shop"

# (kind, key, fields, left values, right values): the newest run of the stock check
FINDINGS = [
    ("mismatch", ("SKU-1", "WH1"), ("available",), {"available": 3}, {"available": 10}),
    ("missing_left", ("SKU-9", "WH1"), (), None, {"available": 4}),
    ("missing_right", ("SKU-7", "WH1"), (), {"available": 2}, None),
]


def demo(tmp_path: Path, demo_project: Path) -> None:
    """The demo shop where `served` looks for the project."""
    shutil.copytree(demo_project, tmp_path / "project")


async def stock_runs(site: Site) -> tuple[int, int]:
    """Two runs of the demo's stock check: one mismatch, then the three FINDINGS."""
    first = await site.journal.record_check_run(
        "stock",
        started_at=site.clock.now - 3600,
        seconds=1.5,
        counts={"left": 10, "right": 10, "agreed": 9, "mismatch": 1},
        findings=[FINDINGS[0]],
        actor="scheduler",
    )
    second = await site.journal.record_check_run(
        "stock",
        started_at=site.clock.now - 60,
        seconds=2.0,
        counts={"left": 11, "right": 11, "agreed": 8, "mismatch": 1, "missing_left": 1,
                "missing_right": 1},
        findings=FINDINGS,
        actor="ada",
    )  # fmt: skip
    return first, second


async def api(site: Site, path: str, token: str, method: str = "GET") -> tuple[int, Any]:
    async with site.client().request(
        method, path, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        return r.status, await r.json()


# --- checks ---------------------------------------------------------------------------------


def test_a_viewer_reads_the_checks_their_trend_runs_and_findings(
    tmp_path: Path, demo_project: Path
) -> None:
    # Given the demo shop's checks, the stock check run twice with more drift the second time
    demo(tmp_path, demo_project)

    async def go() -> tuple[str, str, Any, Any]:
        async with served(tmp_path) as site:
            first, second = await stock_runs(site)
            await site.user("vera", "viewer")
            vera = await site.login("vera")
            token = await site.token("reader", "viewer")
            # When a viewer opens the checks and the stock check, and asks the API
            listing_status, listing = await vera.get("/checks")
            detail_status, detail = await vera.get("/checks/stock")
            assert (listing_status, detail_status) == (200, 200)
            _, every = await api(site, "/api/v1/checks", token)
            _, one = await api(site, "/api/v1/checks/stock", token)
            assert [r["id"] for r in one["runs"]] == [second, first]
            return listing, detail, every, one

    listing, detail, every, one = run(go())
    # Then every check is listed; stock with its latest drift and the CLI's trend wording
    for name in ("stock", "orders", "customers"):
        assert f'href="/checks/{name}"' in listing
    assert "drift on 3 keys, up from 1 on the run before" in listing
    assert "never run" in listing
    # And the stock page shows its runs newest first and the latest run's findings
    assert detail.index("<td>scheduler</td>") > detail.index("<td>ada</td>")
    for what, left, right in (
        ("SKU-1/WH1: available 3 vs 10", "available: 3", "available: 10"),
        ("SKU-9/WH1: only on the right", "-", "available: 4"),
        ("SKU-7/WH1: only on the left", "available: 2", "-"),
    ):
        row = re.search(rf"<td>{re.escape(what)}</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", detail)
        assert row is not None, what
        assert row.groups() == (left, right)
    assert "Run now" not in detail  # a viewer may not
    # And the API says the same
    stock = next(c for c in every["checks"] if c["name"] == "stock")
    assert stock["trend"] == "drift on 3 keys, up from 1 on the run before"
    assert stock["latest"]["drift"] == 3
    assert {(f["kind"], f["key"], tuple(f["fields"])) for f in one["findings"]} == {
        (kind, "/".join(key), fields) for kind, key, fields, _, _ in FINDINGS
    }


@pytest.mark.parametrize(
    ("who", "via", "status"),
    [
        ("olga", "page", 303),
        ("olga", "api", 200),
        ("vera", "page", 403),
        ("vera", "api", 403),
    ],
)
def test_run_now_is_for_operators_kept_and_audited(
    tmp_path: Path, who: str, via: str, status: int
) -> None:
    # Given a check whose systems do not answer, an operator and a viewer
    add_stock_check(tmp_path / "project")

    async def go() -> tuple[int, str, list[dict[str, Any]], list[dict[str, Any]]]:
        async with served(tmp_path) as site:
            await site.user("olga", "operator")
            await site.user("vera", "viewer")
            browser = await site.login(who)
            # When they run it now from the page or the API (on their session)
            if via == "page":
                answer, _ = await browser.post("/checks/stock/run")
                location = ""
            else:
                async with browser.http.post(
                    "/api/v1/checks/stock/run",
                    headers={"X-CSRF-Token": browser.csrf, "Origin": site.url},
                    allow_redirects=False,
                ) as r:
                    answer, location = r.status, await r.text()
            runs = await site.journal.check_runs("stock")
            audit = [a for a in await site.journal.audit_log() if a["action"] == "check-run"]
            return answer, location, runs, audit

    answer, body, runs, audit = run(go())
    assert answer == status
    if status == 403:
        # Then a viewer is refused, and nothing ran
        assert (runs, audit) == ([], [])
        return
    # Then the run is kept with why it could not read, and the audit log says who ran it
    (kept,) = runs
    assert kept["actor"] == who and kept["error"]
    (entry,) = audit
    assert (entry["actor"], entry["target"]) == (who, "check/stock")
    detail = entry["detail"] if isinstance(entry["detail"], dict) else orjson.loads(entry["detail"])
    assert detail["run"] == kept["id"] and "Error" in detail["error"]
    if via == "api":
        assert orjson.loads(body)["run"] == kept["id"]


def test_an_unknown_check_is_not_found(tmp_path: Path) -> None:
    async def go() -> list[int]:
        async with served(tmp_path) as site:
            token = await site.token("ops", "operator")
            found = []
            for method, path in (
                ("GET", "/api/v1/checks/nope"),
                ("POST", "/api/v1/checks/nope/run"),
                ("GET", "/api/v1/flows/nope/versions"),
            ):
                status, _ = await api(site, path, token, method)
                found.append(status)
            return found

    assert run(go()) == [404, 404, 404]


# --- landscape ------------------------------------------------------------------------------


def test_the_landscape_page_draws_every_system_and_integration(
    tmp_path: Path, demo_project: Path
) -> None:
    # Given the demo shop: six flows in the hub, one integration outside it
    demo(tmp_path, demo_project)

    async def go() -> tuple[int, str, dict[str, str]]:
        async with served(tmp_path) as site:
            await stock_runs(site)
            await site.user("vera", "viewer")
            vera = await site.login("vera")
            async with vera.http.get("/landscape") as r:
                return r.status, await r.text(), {k.lower(): v for k, v in r.headers.items()}

    # When a viewer opens the landscape
    status, page, headers = run(go())
    project = load_project(tmp_path / "project")
    register = build(project, externals=project.externals, checks=project.checks)
    ends = {e for i in register.integrations.values() for e in (i.source, i.target)}
    systems = set(register.systems) | ends
    assert status == 200
    # Then the map is inline SVG, with one box per system and one arrow per integration
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert sorted(re.findall(r'<g class="node" data-system="([^"]+)"', svg)) == sorted(systems)
    edges = dict(re.findall(r'<g class="edge (flow|external)" data-integration="([^"]+)"', svg))
    drawn = re.findall(r'<g class="edge (\w+)" data-integration="([^"]+)">(.*?)</g>', svg, re.S)
    assert sorted(name for _, name, _ in drawn) == sorted(register.integrations)
    assert edges  # the pattern matched at all
    for kind, name, body in drawn:
        # And the one outside the hub is dashed, the flows are not
        assert kind == ("flow" if register.integrations[name].monitored else "external")
        assert ("stroke-dasharray" in body) == (kind == "external"), name
    assert {name for kind, name, _ in drawn if kind == "external"} == {"accounting-export"}
    # And the top risk is in words, with each integration's contract
    assert "accounting-export</a> (100): runs outside the hub: nobody is told when it fails" in page
    for name in register.integrations:
        assert f'<section id="{name}" class="contract">' in page
    assert "drift on 3 records, up from 1" in page  # the stock check's drift is a risk
    # And nothing breaks the CSP: no inline style attribute, no script
    assert " style=" not in page and "<script" not in page
    assert "script-src" not in headers["content-security-policy"]


def test_the_landscape_api_answers_what_seamline_landscape_writes(
    tmp_path: Path, demo_project: Path
) -> None:
    # Given the demo shop with its stock check drifting
    demo(tmp_path, demo_project)

    async def go() -> tuple[Any, Any]:
        async with served(tmp_path) as site:
            await stock_runs(site)
            token = await site.token("reader", "viewer")
            # When the API is asked for the landscape
            status, answer = await api(site, "/api/v1/landscape", token)
            assert status == 200
            register = build(
                site.project, externals=site.project.externals, checks=site.project.checks
            )
            found = await signals.read(site.journal, register, now=site.clock.now)
            expected = export.as_json(register, signals.risks(register, found, now=site.clock.now))
            return answer, orjson.loads(orjson.dumps(expected))

    answer, expected = run(go())
    # Then it is export.as_json of the same register and signals
    assert answer == expected
    # And `seamline landscape --json` on the same journal writes the same
    written = tmp_path / "map.json"
    result = runner.invoke(app, ["landscape", str(tmp_path / "project"), "--json", str(written)])
    assert result.exit_code == 0, result.output
    assert json.loads(written.read_text()) == answer
    stock = [i for i in answer["integrations"] if "stock" in i["checked_by"]]
    assert stock and all("drift on 3 records, up from 1" in i["risk"]["reasons"] for i in stock)


# --- flow versions --------------------------------------------------------------------------

OLD = "0123456789ab"


def test_flow_versions_on_the_overview_the_flow_page_and_the_delivery(tmp_path: Path) -> None:
    # Given a flow that went live in an older version, then in the one on disk, and a delivery
    async def go() -> tuple[str, str, str, str, Any]:
        async with served(tmp_path) as site:
            now = site.clock.now
            disk = site.project.flows[FLOW].version
            await site.journal.record_flow_versions(
                [(FLOW, OLD, b"old")], actor="ada", now=now - 86400
            )
            await site.journal.record_flow_versions([(FLOW, disk, b"new")], actor="bob", now=now)
            dead = await site.dead_delivery()
            await site.user("vera", "viewer")
            vera = await site.login("vera")
            token = await site.token("reader", "viewer")
            _, overview = await vera.get("/")
            _, flow = await vera.get(f"/flows/{FLOW}")
            _, delivery = await vera.get(f"/deliveries/{dead}")
            _, versions = await api(site, f"/api/v1/flows/{FLOW}/versions", token)
            return disk, overview, flow, delivery, versions

    disk, overview, flow, delivery, versions = run(go())
    # Then the overview names the version, the flow page its history newest first with who
    assert f'<a href="/flows/{FLOW}">{FLOW}</a>' in overview and disk in overview
    assert flow.index(disk) < flow.index(OLD)
    assert "<td>bob</td>" in flow and "<td>ada</td>" in flow
    # And the delivery says which version it used
    assert f"(version <code>{disk}</code>" in delivery
    # And the API the same
    assert versions["loaded"] == versions["live"] == disk
    assert [(v["version"], v["deployed_by"]) for v in versions["versions"]] == [
        (disk, "bob"),
        (OLD, "ada"),
    ]


def test_the_overview_says_when_the_live_version_is_not_the_loaded_one(tmp_path: Path) -> None:
    async def go() -> tuple[str, Any]:
        async with served(tmp_path) as site:
            await site.journal.record_flow_versions(
                [(FLOW, OLD, b"old")], actor="ada", now=site.clock.now
            )
            token = await site.token("reader", "viewer")
            _, overview = await api(site, "/api/v1/overview", token)
            await site.user("vera", "viewer")
            _, page = await (await site.login("vera")).get("/")
            return page, overview

    page, overview = run(go())
    (row,) = overview["flows"]
    assert row["live_version"] == OLD and row["version"] != OLD
    assert f"live: <code>{OLD}</code>" in page


@pytest.mark.parametrize(
    ("kept", "shown"),
    [
        ([], "disk {disk}, not live yet"),
        (["{disk}"], "{disk}"),
        ([OLD], "disk {disk}, live " + OLD),
        ([OLD, "{disk}"], "{disk}"),  # the newest kept is the live one
    ],
)
def test_seamline_status_shows_each_flows_version(
    tmp_path: Path, kept: list[str], shown: str
) -> None:
    # Given the example project and the versions the journal kept, oldest first
    async def go() -> str:
        async with served(tmp_path) as site:
            disk = site.project.flows[FLOW].version
            for n, version in enumerate(kept):
                await site.journal.record_flow_versions(
                    [(FLOW, version.format(disk=disk), b"")], actor="ada", now=1000.0 + n
                )
            return disk

    disk = run(go())
    # When `seamline status` runs, as tables and as JSON
    table = runner.invoke(app, ["status", str(tmp_path / "project")], env={"COLUMNS": "200"})
    as_json = runner.invoke(app, ["status", str(tmp_path / "project"), "--json"])
    assert table.exit_code == 0 and as_json.exit_code == 0, table.output + as_json.output
    # Then it shows the version on disk, and the live one when it differs
    expected = shown.format(disk=disk)
    assert version_text(disk, kept[-1].format(disk=disk) if kept else None) == expected
    assert re.search(rf"{FLOW}\s+{re.escape(expected)}\s*$", table.output, re.M), table.output
    live = kept[-1].format(disk=disk) if kept else None
    assert orjson.loads(as_json.output)["versions"] == {FLOW: {"disk": disk, "live": live}}


def test_run_now_finds_the_drift_between_the_simulated_shop_and_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the shop and the 3PL simulated, the 3PL holding 3 of a SKU the shop sells 10 of
    async def go() -> tuple[int, str, str]:
        async with (
            ShopifySimulator(seed=41, products=3, time_scale=0.001) as shop,
            ThreePLSimulator(tmp_path / "3pl", seed=41) as warehouse,
        ):
            root = tmp_path / "project"
            write_example(root)
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
            (root / "checks").mkdir()
            shutil.copy(EXAMPLE / "checks" / "stock.yaml", root / "checks")
            (root / "checks" / "stock.yaml").write_text(
                (root / "checks" / "stock.yaml")
                .read_text()
                .replace("heal: {flow: stock-to-shop}", "")
            )
            items = {v["sku"]: v["inventory_item_id"] for v in shop.store.variants.values()}
            skus = sorted(s for s in items if s)
            for n, sku in enumerate(skus):
                shop.set_inventory(items[sku], location, 10 + n)
            warehouse.set_stock({sku: 10 + n for n, sku in enumerate(skus)} | {skus[0]: 3})
            warehouse.write_inventory_snapshot()
            monkeypatch.setenv("T", shop.token)
            monkeypatch.setenv("P", warehouse.password)
            async with served(tmp_path) as site:
                await site.user("olga", "operator")
                olga = await site.login("olga")
                # When an operator runs the check now
                status, _ = await olga.post("/checks/stock/run")
                _, page = await olga.get("/checks/stock")
                return status, page, skus[0]

    status, page, sku = run(go())
    # Then the page shows the run and its one finding, in the words `seamline reconcile` uses
    assert status == 303
    assert "drift on 1 keys (first run)" in page
    assert f"<td>{sku}: available 3 vs 10</td>" in page
    assert "<td>olga</td>" in page
