"""A webhook's trace goes on to the target: `traceparent` carried, spans exported over OTLP."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from seamline.cli import write_example
from seamline.connectors.http.signature import sign
from seamline.engine.hub import Hub
from seamline.project import load_project
from seamline.sandbox.webhook_sender import order_data
from tests.reliability.harness import free_port

pytestmark = pytest.mark.timeout(60)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Target:
    """The order system: answers 200 and keeps the headers of what it got."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.spans: list[Any] = []
        self.arrived = asyncio.Event()

    async def order(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        self.arrived.set()
        return web.json_response({"id": "oms-1"})

    async def traces(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                self.spans.extend(scope.spans)
        return web.Response(status=200)


async def send(url: str, secret: str, headers: dict[str, str]) -> int:
    body = orjson.dumps({"type": "order.created", "data": {**order_data(7), "source_name": "web"}})
    now = int(time.time())
    signed = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, msg_id="msg_1", timestamp=now, body=body),
        "content-type": "application/json",
        **headers,
    }
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=signed) as r:
        return r.status


@pytest.mark.parametrize("spans", [False, True], ids=["propagated", "exported as spans"])
def test_the_trace_of_a_webhook_reaches_the_target(tmp_path: Path, spans: bool) -> None:
    async def case() -> tuple[Target, int]:
        target = Target()
        app = web.Application()
        app.router.add_put("/orders/{order_id}", target.order)
        app.router.add_post("/v1/traces", target.traces)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            root = tmp_path / "p"
            write_example(root)
            api = root / "systems" / "orders-api.yaml"
            api.write_text(
                api.read_text().replace("http://127.0.0.1:8081", f"http://127.0.0.1:{port}")
            )
            if spans:
                settings = root / "seamline.yaml"
                settings.write_text(
                    settings.read_text()
                    + f"telemetry:\n  traces: {{endpoint: 'http://127.0.0.1:{port}'}}\n"
                )
            project = load_project(root)
            secret = (root / "secrets" / "webshop.secret").read_text().strip()
            hub = Hub(project, listen=("127.0.0.1", free_port()))
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(hub.run())
                try:
                    await asyncio.wait_for(hub.started.wait(), 30)
                    status = await send(
                        f"http://127.0.0.1:{hub.listen[1]}/hooks/webshop",
                        secret,
                        {"traceparent": f"00-{TRACE}-{PARENT}-01"},
                    )
                    try:
                        await asyncio.wait_for(target.arrived.wait(), 20)
                    except TimeoutError:
                        counts = await hub.journal.flow_counts()
                        raise AssertionError(f"nothing arrived ({status}): {counts}") from None
                finally:
                    hub.stop()
                    await task  # the tracer is flushed as the hub stops
            return target, status
        finally:
            await runner.cleanup()

    target, status = asyncio.run(case())

    assert status in (200, 202)
    (headers,) = target.seen
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE, "01")
    assert span_id != PARENT and len(span_id) == 16
    if spans:
        (span,) = target.spans
        assert span.name == "deliver orders-to-oms"
        assert span.trace_id.hex() == TRACE and span.parent_span_id.hex() == PARENT
        assert span.span_id.hex() == span_id  # the target's parent is our span
        attributes = {a.key: a.value for a in span.attributes}
        assert attributes["seamline.outcome"].string_value == "delivered"
        assert attributes["seamline.target"].string_value == "orders-api"
    else:
        assert target.spans == []
