"""`seamline apply` and `rollback` on a running hub: deliveries in flight keep their version;
deliveries not yet delivered wait as the live flows say (`ordering.after`)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from seamline.cli import write_example
from seamline.connectors.http.signature import sign
from seamline.engine.hub import Hub
from seamline.journal.base import NewDelivery, NewMessage, Routing, Selection
from seamline.journal.sqlite import SqliteJournal
from seamline.project import load_project
from seamline.sandbox.webhook_sender import order_data
from tests.reliability.harness import free_port

pytestmark = pytest.mark.timeout(120)
FLOW = "orders-to-oms"


class OrderSystem:
    """Refuses (503) until opened; then keeps what it is sent."""

    def __init__(self) -> None:
        self.open = False
        self.got: list[dict[str, Any]] = []

    async def order(self, request: web.Request) -> web.Response:
        if not self.open:
            return web.json_response({"error": "down"}, status=503)
        self.got.append(await request.json())
        return web.json_response({"id": f"oms-{len(self.got)}"})


def web_order(n: int) -> bytes:
    return orjson.dumps({"type": "order.created", "data": {**order_data(n), "source_name": "web"}})


async def webhook(port: int, secret: str, n: int, body: bytes | None = None) -> dict[str, Any]:
    """POST webhook `msg_{n}` (by default web order `n`) to the webshop's hook; the answer."""
    body = web_order(n) if body is None else body
    now = int(time.time())
    headers = {
        "webhook-id": f"msg_{n}",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, msg_id=f"msg_{n}", timestamp=now, body=body),
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/hooks/webshop", data=body, headers=headers) as r,
    ):
        assert r.status in (200, 202), await r.text()
        answer: dict[str, Any] = await r.json()
        return answer


async def seamline(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "seamline.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SEAMLINE_ACTOR": "ada", "COLUMNS": "200"},
    )  # fmt: skip
    said, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, said.decode()


def test_apply_routes_new_messages_with_the_new_version_and_rollback_takes_it_back(
    tmp_path: Path,
) -> None:
    async def case() -> tuple[OrderSystem, list[tuple[int, str]], list[dict[str, Any]]]:
        target = OrderSystem()
        app = web.Application()
        app.router.add_put("/orders/{order_id}", target.order)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        root = tmp_path / "p"
        write_example(root)
        api = root / "systems" / "orders-api.yaml"
        api.write_text(api.read_text().replace("127.0.0.1:8081", f"127.0.0.1:{port}"))
        flow = root / "flows" / f"{FLOW}.yaml"
        flow.write_text(flow.read_text().replace("schedule: [1s, 5s, 30s", "schedule: [1s, 1s, 1s"))
        secret = (root / "secrets" / "webshop.secret").read_text().strip()
        hub = Hub(load_project(root), listen=("127.0.0.1", free_port()))
        said = []
        try:
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(hub.run())
                try:
                    await asyncio.wait_for(hub.started.wait(), 30)
                    hub_port = hub.listen[1]
                    # Given order 1 is in flight (the order system is down) on version 1
                    await webhook(hub_port, secret, 1)
                    # When web orders become WEB instead of ONLINE, and that is applied
                    flow.write_text(flow.read_text().replace("web: ONLINE", "web: WEB"))
                    said.append(await seamline("apply", str(root)))
                    # and order 2 comes, and the order system is back
                    await webhook(hub_port, secret, 2)
                    target.open = True
                    await until(lambda: len(target.got) == 2)
                    # When the flow is rolled back, order 3 goes with version 1 again
                    said.append(await seamline("rollback", FLOW, str(root), "--yes"))
                    await webhook(hub_port, secret, 3)
                    await until(lambda: len(target.got) == 3)
                    rows = await hub.journal.flow_versions(FLOW)
                finally:
                    hub.stop()
                    await task
        finally:
            await runner.cleanup()
        return target, said, rows

    target, said, versions = asyncio.run(case())

    (applied, apply_out), (rolled, rollback_out) = said
    assert applied == 0, apply_out
    assert "every flow runs the version on disk" in apply_out
    assert rolled == 0, rollback_out
    channels = {body["number"]: body["channel"] for body in target.got}
    # order 1 was in flight across the apply: it kept version 1
    assert channels == {1001: "ONLINE", 1002: "WEB", 1003: "ONLINE"}, channels
    # version 1 is kept once, though it went live twice; version 2 was deployed by ada's apply
    assert len(versions) == 2
    live, second = versions
    assert live["last_live"] > second["last_live"]
    assert second["deployed_by"] == "ada" and live["deployed_by"] != "ada"


async def until(condition: Any, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("waited too long")
        await asyncio.sleep(0.2)


def test_a_starting_hub_has_open_deliveries_wait_as_its_live_flows_say(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_example(root)

    async def case() -> list[Any]:
        # Given a delivery routed while its flow was ordered after a flow since removed
        journal = SqliteJournal(root / "journal.db")
        await journal.open()
        mid = await journal.append(NewMessage("webshop", "msg_1", time.time(), b"{}", b"{}"))
        assert mid is not None
        stale = NewDelivery(FLOW, "v0", "orders-api", "1", None, True, waits_for="refunds")
        await journal.route([Routing(mid, "order.created", deliveries=[stale])])
        await journal.close()
        # When a hub starts on the journal
        hub = Hub(load_project(root), listen=("127.0.0.1", free_port()))
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(hub.run())
            try:
                await asyncio.wait_for(hub.started.wait(), 30)
                rows = await hub.journal._query("SELECT flow, waits_for FROM delivery")
            finally:
                hub.stop()
                await task
        return [tuple(r) for r in rows]

    # Then the delivery waits for nothing: the live flow has no ordering.after
    assert asyncio.run(case()) == [(FLOW, None)]


def test_a_hub_makes_deliveries_to_a_target_no_flow_has_dead_letters(tmp_path: Path) -> None:
    async def case() -> None:
        root = tmp_path / "p"
        write_example(root)
        # Given a journal holding a delivery to a system a flow delivered to before
        journal = SqliteJournal(root / "journal.db")
        await journal.open()
        mid = await journal.append(NewMessage("webshop", "m-1", time.time(), b"{}", b"{}"))
        assert mid is not None
        gone = NewDelivery(FLOW, "v0", "old-erp", "1", None, True, False)
        await journal.route([Routing(mid, "order.created", deliveries=[gone])])
        await journal.close()
        # When the hub starts with a project whose flows deliver elsewhere
        hub = Hub(load_project(root), listen=("127.0.0.1", free_port()))
        task = asyncio.create_task(hub.run())
        try:
            await asyncio.wait_for(hub.started.wait(), 30)
            dead = await hub.journal.select(Selection(states=("dead",)))
        finally:
            hub.stop()
            await task
        # Then it is a dead letter, which an operator can replay or discard, not a wait for ever
        assert [d["target"] for d in dead] == ["old-erp"]

    asyncio.run(case())


def test_deliveries_to_a_target_whose_last_flow_an_apply_removed_are_still_served(
    tmp_path: Path,
) -> None:
    async def case() -> None:
        root = tmp_path / "p"
        write_example(root)
        # Given a hub started with a flow to orders-api, and a delivery to it waiting
        hub = Hub(load_project(root), listen=("127.0.0.1", free_port()))
        await hub.journal.open()
        try:
            mid = await hub.journal.append(NewMessage("webshop", "m-1", time.time(), b"{}", b"{}"))
            assert mid is not None
            waiting = NewDelivery(FLOW, "v0", "orders-api", "1", None, True, False)
            await hub.journal.route([Routing(mid, "order.created", deliveries=[waiting])])
            # When an apply takes the flow away (the hub's worker for orders-api stays)
            (root / "flows" / f"{FLOW}.yaml").unlink()
            hub.project = load_project(root)
            assert not hub.project.flows
            await hub._dead_without_target()
            # Then the delivery still waits for that worker, not a dead letter
            pending = await hub.journal.select(Selection(states=("pending",)))
        finally:
            await hub.journal.close()
        assert [d["target"] for d in pending] == ["orders-api"]

    asyncio.run(case())
