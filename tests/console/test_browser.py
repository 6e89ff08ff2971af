"""The console in a real browser (Debian's Chromium driven by Playwright) against a real hub:
sign in, search an order and see its journey, fix a dead letter's payload and see it delivered;
a viewer cannot replay; a page on another origin cannot make a signed-in browser act.
Screenshots are kept in `$SEAMLINE_ARTIFACTS/browser` (else in the test's tmp folder)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from tests.console.landscape import Landscape, hub_landscape
from tests.console.site import PASSWORD, free_socket, run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="Debian's chromium is not installed (./dev test installs it with apt)",
)


def artifacts(tmp_path: Path) -> Path:
    base = os.environ.get("SEAMLINE_ARTIFACTS")
    folder = (Path(base) if base else tmp_path) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@asynccontextmanager
async def chromium() -> AsyncIterator[playwright.Browser]:
    async with playwright.async_playwright() as p:
        # Root in a container has no user namespaces for Chromium's sandbox.
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


async def sign_in(browser: playwright.Browser, land: Landscape, name: str) -> playwright.Page:
    context = await browser.new_context(base_url=land.url)
    page = await context.new_page()
    await page.goto("/")
    assert "/login" in page.url
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{land.url}/")
    return page


def test_operator_searches_fixes_and_replays_a_dead_letter(tmp_path: Path) -> None:
    shots = artifacts(tmp_path)

    async def go() -> None:
        async with hub_landscape(tmp_path) as land, chromium() as browser:
            assert await land.webhook(1001) == 200
            bad = {"line_items": [{"sku": "SKU-9", "quantity": 0, "price": "10.00"}]}
            assert await land.webhook(1002, **bad) == 200
            assert await land.state_of_order(1001, until="delivered") == "delivered"
            assert await land.state_of_order(1002, until="dead") == "dead"

            page = await sign_in(browser, land, "olga")
            expect = playwright.expect
            await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            await expect(page.locator("main")).to_contain_text("1 dead letter")
            await page.screenshot(path=shots / "overview.png", full_page=True)

            # Search an order number with the keyboard and see its journey
            await page.keyboard.press("Tab")  # the first stop is the skip link
            await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
            await page.locator("#q-head").fill("#1001")
            await page.locator("#q-head").press("Enter")
            journey = page.get_by_role("table", name="journey")
            await expect(journey).to_contain_text("order.created received from webshop")
            await expect(journey).to_contain_text("OMS-1001")
            await expect(journey).to_contain_text("delivered")
            await page.screenshot(path=shots / "journey.png", full_page=True)

            # Open the dead letter, fix its payload, replay it, see it delivered
            await page.get_by_role("link", name="Dead letters").click()
            await page.get_by_role("link", name="delivery").first.click()
            await expect(page.get_by_role("heading", level=1)).to_contain_text("dead")
            await page.get_by_role("link", name="Edit and replay").click()
            editor = page.get_by_label("Event data (JSON)")
            text = await editor.input_value()
            assert '"quantity": 0' in text
            await editor.fill(text.replace('"quantity": 0', '"quantity": 3'))
            await page.screenshot(path=shots / "edit.png", full_page=True)
            await page.get_by_role("button", name="Replay with this data").click()
            await expect(page.get_by_role("status")).to_contain_text("Replayed")
            assert await land.state_of_order(1002, until="delivered") == "delivered"
            await page.reload()
            await expect(page.get_by_role("heading", level=1)).to_contain_text("delivered")
            await page.screenshot(path=shots / "delivered.png", full_page=True)
            assert land.received[-1]["lines"][0]["quantity"] == 3

            # And the hour's throughput is drawn: three attempts, two delivered, one failed
            await page.get_by_role("link", name="Charts").click()
            chart = page.get_by_role("img", name="Deliveries made, attempts delivered and failed")
            await expect(chart.locator("rect title").last).to_contain_text("failed: 1")
            await page.screenshot(path=shots / "charts.png", full_page=True)

    run(go())


def test_a_viewer_sees_no_replay_and_cannot_force_one(tmp_path: Path) -> None:
    shots = artifacts(tmp_path)

    async def go() -> tuple[int, int, str]:
        async with hub_landscape(tmp_path) as land, chromium() as browser:
            bad = {"line_items": [{"sku": "SKU-9", "quantity": 0, "price": "10.00"}]}
            await land.webhook(3001, **bad)
            await land.state_of_order(3001, until="dead")
            found = await land.hub.console.site.ops.search("#3001")  # type: ignore[union-attr]
            delivery = int(found["deliveries"][0]["id"])
            page = await sign_in(browser, land, "vera")
            await page.goto(f"/deliveries/{delivery}")
            await page.screenshot(path=shots / "viewer.png", full_page=True)
            buttons = await page.get_by_role("button", name="Replay").count()
            # Her browser, with her session and her page's own anti-CSRF token, posts anyway
            csrf = await page.locator("input[name=csrf]").first.input_value()
            answer = await page.context.request.post(
                f"/deliveries/{delivery}/replay",
                form={"csrf": csrf},
                headers={"Origin": land.url},
                max_redirects=0,
            )
            return buttons, answer.status, await land.state_of_order(3001, until="dead")

    assert run(go()) == (0, 403, "dead")


@asynccontextmanager
async def attacker_site(target: str) -> AsyncIterator[str]:
    """A page on another origin that submits a replay form to the console as soon as it loads."""
    page = (
        "<!doctype html><title>win a prize</title>"
        f'<form id="f" method="post" action="{target}">'
        '<input name="reason" value="pwned"></form>'
        "<script>document.getElementById('f').submit()</script>"
    )

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = free_socket()
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("action", ["replay", "discard"])
def test_a_page_on_another_origin_cannot_act_through_a_signed_in_browser(
    tmp_path: Path, action: str
) -> None:
    # Given an operator signed in, and a dead letter
    async def go() -> tuple[int | None, str, int]:
        async with hub_landscape(tmp_path) as land, chromium() as browser:
            bad = {"line_items": [{"sku": "SKU-9", "quantity": 0, "price": "10.00"}]}
            await land.webhook(4001, **bad)
            await land.state_of_order(4001, until="dead")
            found = await land.hub.console.site.ops.search("#4001")  # type: ignore[union-attr]
            delivery = int(found["deliveries"][0]["id"])
            page = await sign_in(browser, land, "olga")
            audit_before = len(await land.hub.journal.audit_log(limit=500))
            # When she opens a page elsewhere (same host, another port: same site, other origin)
            target = f"{land.url}/deliveries/{delivery}/{action}"
            async with attacker_site(target) as evil:
                async with page.expect_response(target) as answered:
                    await page.goto(evil)
                status = (await answered.value).status
            await page.screenshot(path=artifacts(tmp_path) / f"csrf-{action}.png")
            audit_after = len(await land.hub.journal.audit_log(limit=500))
            state = await land.state_of_order(4001, until="dead")
            return status, state, audit_after - audit_before

    # Then the console refused it and nothing changed
    assert run(go()) == (403, "dead", 0)
