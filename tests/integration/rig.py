"""A worker wired to the example project, a real journal file and a `FakeSink`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from seamline.cli import write_example
from seamline.connectors.fake import FakeSink
from seamline.engine.budget import Budget, Limits, MemoryLedger
from seamline.engine.router import Router
from seamline.engine.worker import TargetWorker, WorkerStats
from seamline.journal.base import NewMessage, Settlement, StoredMessage
from seamline.journal.group_commit import GroupCommitJournal
from seamline.journal.sqlite import SqliteJournal
from seamline.project import load_project
from tests.conftest import Backend


def order(**changes: Any) -> dict[str, Any]:
    data = {
        "id": 450789469,
        "order_number": 1001,
        "source_name": "web",
        "total_price": "10.00",
        "updated_at": "2026-11-22T10:00:00Z",
        "line_items": [{"sku": "A-1", "quantity": 1, "price": "10.00"}],
    }
    data.update(changes)
    return data


@dataclass
class Rig:
    journal: GroupCommitJournal
    worker: TargetWorker
    router: Router
    sink: FakeSink
    budget: Budget


async def rig(
    root: Path, sink: FakeSink, *, failures: int = 5, backend: Backend | None = None
) -> Rig:
    """The rig on `backend`'s journal (SQLite in `root` when not given)."""
    write_example(root)
    project = load_project(root)
    journal = backend.make() if backend else SqliteJournal(root / "journal.db")
    await journal.open()
    shop = project.systems["webshop"]
    router = Router(
        project, {"webshop": shop.connector.source("webshop", shop.options)}, lambda f: sink.safe
    )
    budget = Budget("orders-api", Limits(concurrency=10, failures=failures), MemoryLedger())
    worker = TargetWorker(
        target="orders-api",
        project=project,
        journal=journal,
        router=router,
        sink=sink,
        budget=budget,
        owner="test",
        batch=10,
        lease=30.0,
        stats=WorkerStats(),
    )
    return Rig(journal, worker, router, sink, budget)


async def receive(r: Rig, data: dict[str, Any], n: int = 0) -> None:
    body = orjson.dumps({"type": "order.created", "data": data})
    mid = await r.journal.append(NewMessage("webshop", f"m{n}", time.time(), b"{}", body))
    assert mid is not None
    await r.journal.route(
        [r.router.route(StoredMessage(mid, "webshop", f"m{n}", 0.0, b"{}", body))]
    )


async def attempt_once(r: Rig) -> Settlement:
    (claimed,) = await r.journal.claim(target="orders-api", owner="test", limit=1, lease=30.0)
    settlement = await r.worker.deliver(claimed)
    assert await r.journal.settle([settlement]) == [True]
    return settlement
