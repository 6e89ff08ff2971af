"""On PostgreSQL, an ingest process routes each webhook as it arrives: its deliveries (or its
rejection) are in the journal when the sender is answered, with no scheduler running, and a
`seamline apply` changes how the next ones are routed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from seamline.cli import write_example
from seamline.engine.hub import Hub
from seamline.project import load_project
from seamline.sandbox.webhook_sender import order_data
from tests.integration.test_apply import seamline, until, webhook
from tests.reliability.harness import free_port

pytestmark = pytest.mark.timeout(120)
FLOW = "orders-to-oms"


@pytest.fixture
def root(tmp_path: Path, postgres_url: str) -> Path:
    """The example project, journaling in a PostgreSQL database of its own."""
    root = tmp_path / "p"
    write_example(root)
    with (root / "seamline.yaml").open("a") as f:
        f.write(f"\njournal: {postgres_url}\n")
    return root


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(sql.encode(), params)]


def test_an_ingest_process_routes_as_webhooks_arrive_and_as_the_applied_flows_say(
    root: Path, postgres_url: str
) -> None:
    flow = root / "flows" / f"{FLOW}.yaml"
    secret = (root / "secrets" / "webshop.secret").read_text().strip()
    deliveries = (
        "SELECT m.state, d.flow_version, d.key, d.state FROM message m "
        "JOIN delivery d ON d.message_id = m.id WHERE m.id = %s"
    )

    async def case() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        # Given only an ingest process on the journal: no scheduler, no worker
        hub = Hub(load_project(root), listen=("127.0.0.1", free_port()), role="ingest")
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(hub.run())
            try:
                await asyncio.wait_for(hub.started.wait(), 30)
                port = hub.listen[1]
                # When an order arrives, and a body that breaks the source's contract
                first = await webhook(port, secret, 1)
                seen["first"] = rows(postgres_url, deliveries, first["id"])
                bad = await webhook(port, secret, 2, b'{"kind": "order.created"}')
                seen["bad"] = rows(
                    postgres_url, "SELECT state, reason FROM message WHERE id = %s", bad["id"]
                )
                # and a changed flow is applied, and the next order arrives
                old = hub.project
                flow.write_text(flow.read_text().replace("web: ONLINE", "web: WEB"))
                # (no scheduler here to record it live: the command does not wait for one)
                seen["apply"] = await seamline("apply", str(root), "--no-wait")
                await until(lambda: hub.project is not old)
                third = await webhook(port, secret, 3)
                seen["third"] = rows(postgres_url, deliveries, third["id"])
            finally:
                hub.stop()
                await task
        seen["versions"] = [v.version for v in (old.flows[FLOW], hub.project.flows[FLOW])]
        return seen

    seen = asyncio.run(case())
    # Then each order had its delivery by the time it was acknowledged
    v1, v2 = seen["versions"]
    assert seen["first"] == [("routed", v1, str(order_data(1)["id"]), "pending")]
    # the broken body was acknowledged and stored rejected, with why
    [(state, reason)] = seen["bad"]
    assert state == "rejected" and "type" in reason, reason
    # and after the apply, the next order went to the new version of the flow
    assert seen["apply"][0] == 0, seen["apply"][1]
    assert v1 != v2
    assert seen["third"] == [("routed", v2, str(order_data(3)["id"]), "pending")]


def test_what_each_process_heard_and_learned_is_kept_beside_the_others(root: Path) -> None:

    async def case() -> tuple[dict[str, float], dict[str, Any]]:
        # Given two ingest processes: one heard a deprecation and a field gone, and learned
        # orders from many webhooks; the other heard the deprecation earlier and a new field,
        # from few webhooks
        hubs = [Hub(load_project(root), role="ingest") for _ in range(2)]
        for hub in hubs:
            await hub.journal.open()
        busy, quiet = hubs
        busy.warnings = {"webshop": {"deprecated": 20.0, "field gone": 40.0}}
        quiet.warnings = {"webshop": {"deprecated": 10.0, "new field": 30.0}}
        for n, shapes in ((30, busy.shapes), (2, quiet.shapes)):
            for i in range(n):
                shapes.observe("webshop", "order.created", order_data(i), f"message {i}")
        try:
            # When each keeps what it has, the busy one first
            for hub in hubs:
                await hub._publish_warnings()
            warnings = await busy.journal.get_cursor("warnings:webshop")
            shapes = await busy.journal.get_cursor("shapes")
        finally:
            for hub in hubs:
                await hub.journal.close()
        assert warnings is not None and shapes is not None
        return orjson.loads(warnings), orjson.loads(shapes)

    warnings, shapes = asyncio.run(case())
    # Then every warning is kept, each since it was first heard, and the orders' shape is the
    # one learned from 30 webhooks
    assert warnings == {"deprecated": 10.0, "new field": 30.0, "field gone": 40.0}
    assert shapes["webshop\torder.created"]["samples"] == 30
