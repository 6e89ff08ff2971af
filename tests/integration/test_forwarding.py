"""A flow without mapping forwards the source's data as the bytes it sent, over real HTTP; a hub
whose deliveries run elsewhere routes on the few fields it needs, with the same verdicts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from seamline.engine.budget import Budget, Limits, MemoryLedger
from seamline.engine.router import Router
from seamline.engine.worker import TargetWorker, WorkerStats
from seamline.journal.base import NewMessage, StoredMessage
from seamline.journal.console_verbs import PURGED_BODY
from seamline.project import Project, load_project
from seamline.sandbox.project import write_shop_project
from seamline.sandbox.recording_sink import read_records, start_recording_sink
from tests.conftest import Backend

# The shop project's flow `orders`: PUT /orders/{id}, ordered by id, no mapping. A second flow
# filters, orders by a nested key and skips stale updates, so routing reads more fields.
PAID_FLOW = """\
owner: tests
source: {system: shop, events: [order.updated], filter: {financial_status: paid}}
target: {system: sink, operation: request, options: {method: POST, path: /paid}}
ordering: {key: customer.id}
stale: {version: updated_at}
"""


def shop(root: Path, sink_port: int) -> Project:
    write_shop_project(root, hub_port=1, sink_port=sink_port)
    (root / "flows" / "paid.yaml").write_text(PAID_FLOW)
    return load_project(root)


def router(project: Project, *, keep_events: bool, forwarding: bool = False) -> Router:
    """`keep_events`: a worker in this process will send (the hub's `--role all`, no worker
    processes); `forwarding`: the router is told which flows forward their data."""
    system = project.systems["shop"]
    source = system.connector.source("shop", system.options)
    forwards = (lambda flow: flow.mapping.identity) if forwarding else None
    r = Router(project, {"shop": source}, lambda f: True, forwards=forwards)
    r.keep_events = keep_events
    return r


# (case, keep_events, forwarding)
ROUTERS = [
    ("another process delivers", False, False),
    ("this process delivers, the event kept for it", True, False),
    ("this process delivers, told the flows forward", True, True),
]


@pytest.mark.parametrize(
    ("case", "keep_events", "forwarding"), ROUTERS, ids=[c[0] for c in ROUTERS]
)
def test_a_flow_without_mapping_sends_the_data_as_the_source_wrote_it(
    tmp_path: Path, backend: Backend, case: str, keep_events: bool, forwarding: bool
) -> None:
    # Spaces, key order, 12.50 and 1E2 would all change if the data were decoded and encoded.
    data = '{"id": 7,  "note": "Café", "total": 12.50, "x": 1E2, "lines": [ ]}'.encode()
    body = b'{"type": "order.updated", "data": ' + data + b', "timestamp": "2026-11-30"}'

    async def go() -> tuple[bytes, str, bytes]:
        async with await start_recording_sink(db_path=tmp_path / "sink.db") as sink:
            project = shop(tmp_path / "p", sink.port)
            journal = backend.make()
            await journal.open()
            r = router(project, keep_events=keep_events, forwarding=forwarding)
            received = time.time() - 100  # before the retention cut below, the attempt after
            mid = await journal.append(NewMessage("shop", "m1", received, b"{}", body))
            assert mid is not None
            await journal.route([r.route(StoredMessage(mid, "shop", "m1", 0.0, b"{}", body))])
            system = project.systems["sink"]
            worker = TargetWorker(
                target="sink",
                project=project,
                journal=journal,
                router=r,
                sink=system.connector.sink("sink", system.options),
                budget=Budget("sink", Limits(concurrency=4), MemoryLedger()),
                owner="test",
                batch=10,
                lease=30.0,
                stats=WorkerStats(),
            )
            (claimed,) = await journal.claim(target="sink", owner="test", limit=10, lease=30.0)
            settlement = await worker.deliver(claimed)
            assert settlement.state == "delivered"
            assert await journal.settle([settlement]) == [True]
            detail = await journal.delivery_detail(claimed.id)
            await journal.purge(before=received + 50)  # the message's body goes, not the attempt's
            purged = await journal.delivery_detail(claimed.id)
            await journal.close()
        assert detail is not None and purged is not None
        (attempt,) = detail["attempts"]
        (after_retention,) = purged["attempts"]
        assert after_retention["request"] == attempt["request"][: -len(data)] + PURGED_BODY
        (record,) = read_records(tmp_path / "sink.db")
        return record.body, record.path, attempt["request"]

    sent, path, journaled = asyncio.run(go())
    assert sent == data
    assert path == "/orders/7"
    assert journaled.startswith(b"PUT http://127.0.0.1:")
    assert journaled.endswith(b"/orders/7\n" + data)  # the attempt reads as what was sent
    # ... while the journal wrote the body once, in the message: the attempt keeps the head.
    ((stored,),) = backend.rows("SELECT request FROM attempt")
    assert bytes(stored) == journaled[: -len(data)]


PAID = '"financial_status": "paid", "customer": {"id": 5}, "updated_at": "2026-11-22T10:00:00Z"'
# (case, the data of an order.updated webhook)
ROUTED = [
    ("both flows", '{"id": 1, ' + PAID + "}"),
    ("not paid: one flow", '{"id": 1, "financial_status": "pending"}'),
    ("no id: rejected", "{" + PAID + "}"),
    ("no customer: rejected", '{"id": 1, "financial_status": "paid", "updated_at": 1}'),
    ("a version that is no time: rejected", '{"id": 1, ' + PAID.replace("2026-11-22T", "") + "}"),
    ("an id only inside the lines: rejected", '{"lines": [{"id": 1}], "financial_status": "no"}'),
]


@pytest.mark.parametrize(("case", "data"), ROUTED, ids=[c[0] for c in ROUTED])
def test_routing_on_the_needed_fields_reaches_the_whole_decodes_verdict(
    tmp_path: Path, case: str, data: str
) -> None:
    project = shop(tmp_path, sink_port=1)
    body = ('{"type": "order.updated", "data": ' + data + "}").encode()
    message = StoredMessage(1, "shop", "m1", 0.0, b"{}", body)
    whole = router(project, keep_events=True).route(message)
    assert router(project, keep_events=False).route(message) == whole
    assert router(project, keep_events=True, forwarding=True).route(message) == whole
    assert (whole.rejected is not None) == case.endswith("rejected")
