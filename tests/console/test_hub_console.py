"""The console served by a real hub, on the port of ingest: webhooks and health stay public,
everything else needs a sign-in; an order the OMS refused is fixed and replayed from the API
and delivered by the hub's worker."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.console.landscape import hub_landscape
from tests.console.site import PASSWORD, run


def test_hub_serves_ingest_health_and_the_console_on_one_port(tmp_path: Path) -> None:
    async def go() -> dict[str, object]:
        async with hub_landscape(tmp_path) as land:
            seen: dict[str, object] = {}
            async with aiohttp.ClientSession(
                land.url, cookie_jar=aiohttp.CookieJar(unsafe=True)
            ) as http:
                for path in ("/healthz", "/readyz", "/", "/api/v1/overview"):
                    async with http.get(path, allow_redirects=False) as r:
                        seen[path] = r.status
                async with http.post("/hooks/webshop", data=b"{}") as r:
                    seen["unsigned hook"] = r.status
                seen["signed hook"] = await land.webhook(1001)
                seen["delivered"] = await land.state_of_order(1001, until="delivered")
                async with http.post(
                    "/login",
                    data={"name": "vera", "password": PASSWORD},
                    headers={"Origin": land.url},
                    allow_redirects=False,
                ) as r:
                    seen["login"] = r.status
                async with http.get("/search?q=%231001") as r:
                    page = await r.text()
                    seen["journey"] = "OMS-1001" in page and "delivered" in page
            return seen

    seen = run(go())
    assert seen == {
        "/healthz": 200,
        "/readyz": 200,
        "/": 303,
        "/api/v1/overview": 401,
        "unsigned hook": 401,  # ingest's signature check, not the console's sign-in
        "signed hook": 200,
        "delivered": "delivered",
        "login": 303,
        "journey": True,
    }


def test_a_refused_order_is_fixed_replayed_and_delivered(tmp_path: Path) -> None:
    # Given an order with a line of quantity 0, which the OMS refuses (dead letter)
    async def go() -> tuple[str, str, int]:
        async with hub_landscape(tmp_path) as land:
            bad = {"line_items": [{"sku": "SKU-1", "quantity": 0, "price": "10.00"}]}
            assert await land.webhook(2001, **bad) == 200
            dead = await land.state_of_order(2001, until="dead")
            ops = land.hub.console.site.ops  # type: ignore[union-attr]
            found = await ops.search("#2001")
            delivery = int(found["deliveries"][0]["id"])
            # When an operator fixes the quantity and replays it
            data = await ops.event_data(delivery)
            data["line_items"][0]["quantity"] = 1
            await ops.replay(delivery, actor="olga", payload=data)
            delivered = await land.state_of_order(2001, until="delivered")
            return dead, delivered, land.received[-1]["lines"][0]["quantity"]

    # Then the hub delivers the fixed order
    assert run(go()) == ("dead", "delivered", 1)
