"""Vendor drift through a running hub: what a source sends and a target answers changes shape,
and a target announces a deprecation; each is a warning naming system, field and where."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from seamline.cli import write_example
from seamline.connectors.http.signature import sign
from seamline.engine.hub import Hub
from seamline.project import load_project
from seamline.sandbox.webhook_sender import order_data
from tests.reliability.harness import free_port

pytestmark = pytest.mark.timeout(90)
ORDERS = 40
CHANGE_AT = 25


def test_new_and_vanished_fields_and_a_deprecation_become_warnings(tmp_path: Path) -> None:
    async def case() -> tuple[dict[str, float], dict[str, float]]:
        answered = 0
        done = asyncio.Event()

        async def order(request: web.Request) -> web.Response:
            nonlocal answered
            answered += 1
            if answered == ORDERS:
                done.set()
            body = {"id": f"oms-{answered}"}
            if answered <= CHANGE_AT:
                body["status"] = "accepted"  # the OMS stops sending this after a while
            return web.json_response(body, headers={"Deprecation": "@1798761600"})

        app = web.Application()
        app.router.add_put("/orders/{order_id}", order)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        root = tmp_path / "p"
        write_example(root)
        api = root / "systems" / "orders-api.yaml"
        api.write_text(api.read_text().replace("127.0.0.1:8081", f"127.0.0.1:{port}"))
        secret = (root / "secrets" / "webshop.secret").read_text().strip()
        hub = Hub(load_project(root), listen=("127.0.0.1", free_port()))
        hub.shapes.every = 0  # look at every message (a test has no minutes to spare)
        try:
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(hub.run())
                try:
                    await asyncio.wait_for(hub.started.wait(), 30)
                    async with aiohttp.ClientSession() as http:
                        for n in range(1, ORDERS + 1):
                            data = {**order_data(n), "source_name": "web"}
                            if n > CHANGE_AT:
                                data["gift_wrap"] = True  # the shop sends a new field
                            await post(http, hub.listen[1], secret, n, data)
                    await asyncio.wait_for(done.wait(), 30)
                finally:
                    hub.stop()
                    await task  # the warnings are kept as the hub stops
            journal = hub.journal
            await journal.open()
            try:
                shop = orjson.loads(await journal.get_cursor("warnings:webshop") or "{}")
                oms = orjson.loads(await journal.get_cursor("warnings:orders-api") or "{}")
            finally:
                await journal.close()
        finally:
            await runner.cleanup()
        return shop, oms

    shop, oms = asyncio.run(case())

    assert list(shop) == [
        "webshop sends a new field 'data.gift_wrap' in order.created "
        f"(first in message {CHANGE_AT + 1})"
    ]
    assert "orders-api: PUT /orders/{order_id} is deprecated (Deprecation: @1798761600)" in oms
    gone = [w for w in oms if "stopped sending" in w]
    assert gone == [
        "orders-api stopped sending 'status' in answers to request: it came in nearly every one "
        f"before (first missing in delivery {CHANGE_AT + 10})"
    ]


async def post(http: aiohttp.ClientSession, port: int, secret: str, n: int, data: dict) -> None:  # type: ignore[type-arg]
    body = orjson.dumps({"type": "order.created", "data": data})
    now = int(time.time())
    headers = {
        "webhook-id": f"msg_{n}",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, msg_id=f"msg_{n}", timestamp=now, body=body),
    }
    async with http.post(f"http://127.0.0.1:{port}/hooks/webshop", data=body, headers=headers) as r:
        assert r.status in (200, 202), await r.text()
