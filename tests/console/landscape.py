"""A real hub on loopback, serving ingest and the console on one port, delivering to a small
order system (OMS) that refuses an order line without quantity (422) and takes the rest.

`async with hub_landscape(tmp_path) as land:` gives the hub's URL, signed webhooks in, and the
users `ada` (admin), `olga` (operator) and `vera` (viewer), each with the password `PASSWORD`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from seamline.cli import write_example
from seamline.connectors.http.signature import sign
from seamline.console.access import Access
from seamline.engine.hub import Hub
from seamline.journal.sqlite import SqliteJournal
from seamline.project import load_project
from tests.console.site import PASSWORD, free_socket, order

USERS = {"ada": "admin", "olga": "operator", "vera": "viewer"}


@dataclass
class Landscape:
    url: str
    hub: Hub
    root: Path
    received: list[dict[str, Any]]

    async def webhook(self, number: int, **changes: Any) -> int:
        """A signed `order.created` from the webshop; ingest's status."""
        secret = (self.root / "secrets" / "webshop.secret").read_text().strip()
        body = orjson.dumps({"type": "order.created", "data": order(number, **changes)})
        msg_id, ts = f"msg_{number}_{time.monotonic_ns()}", int(time.time())
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, msg_id=msg_id, timestamp=ts, body=body),
            "content-type": "application/json",
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/hooks/webshop", data=body, headers=headers) as r,
        ):
            return r.status

    async def state_of_order(self, number: int, *, until: str, within: float = 20.0) -> str:
        """The state of the order's delivery, once it is `until` (or when `within` runs out)."""
        deadline = time.monotonic() + within
        state = "missing"
        while time.monotonic() < deadline:
            found = await self.hub.console.site.ops.search(f"#{number}")  # type: ignore[union-attr]
            states = [d["state"] for d in found["deliveries"]]
            state = states[-1] if states else "missing"
            if state == until:
                return state
            await asyncio.sleep(0.05)
        return state


async def _oms(received: list[dict[str, Any]]) -> tuple[web.AppRunner, int]:
    async def put_order(request: web.Request) -> web.Response:
        data = await request.json()
        received.append(data)
        if any(int(line["quantity"]) <= 0 for line in data["lines"]):
            return web.json_response({"error": "quantity must be > 0"}, status=422)
        return web.json_response({"id": f"OMS-{data['number']}"}, status=201)

    app = web.Application()
    app.router.add_put("/orders/{order_id}", put_order)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = free_socket()
    site = web.SockSite(runner, sock)
    await site.start()
    return runner, sock.getsockname()[1]


@contextlib.asynccontextmanager
async def hub_landscape(tmp_path: Path) -> AsyncIterator[Landscape]:
    root = tmp_path / "project"
    write_example(root)
    received: list[dict[str, Any]] = []
    oms, oms_port = await _oms(received)
    system = root / "systems" / "orders-api.yaml"
    system.write_text(
        system.read_text().replace("http://127.0.0.1:8081", f"http://127.0.0.1:{oms_port}")
    )
    project = load_project(root)
    journal = SqliteJournal(project.settings.journal_path(root))
    await journal.open()
    for name, role in USERS.items():
        await Access(journal).add_user(name, role, PASSWORD, actor="test")  # type: ignore[arg-type]
    await journal.close()
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()  # the hub binds the address itself
    hub = Hub(project, listen=("127.0.0.1", port))
    task = asyncio.create_task(hub.run())
    started = asyncio.create_task(hub.started.wait())
    await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        await task  # raises why it could not start
    try:
        yield Landscape(f"http://127.0.0.1:{port}", hub, root, received)
    finally:
        hub.stop()
        await task
        await oms.cleanup()
