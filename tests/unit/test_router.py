"""What the router makes of a payload is fit to store: no NUL characters, which PostgreSQL's
text columns refuse (a message whose routing cannot be stored would be refused for ever)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from seamline.cli import write_example
from seamline.engine.router import offline_router
from seamline.journal.base import NewMessage, Routing
from seamline.project import load_project
from seamline.sandbox.webhook_sender import order_data

NUL = "\x00"


def order(**changes: Any) -> dict[str, Any]:
    return {"type": "order.created", "data": {**order_data(1), "source_name": "web", **changes}}


# (case, webhook body, what the routing must say)
CASES = [
    (
        "a NUL in the ordering key",
        order(id=f"10{NUL}01"),
        lambda r: r.deliveries[0].key == "10\ufffd01",
    ),
    (
        "a NUL in a business key",
        order(email=f"ada{NUL}@example.com"),
        lambda r: r.keys["email"] == "ada\ufffd@example.com" and r.deliveries,
    ),
    (
        "a NUL in what breaks the contract (an event the shop does not send)",
        {**order(), "type": f"order.{NUL}created"},
        lambda r: r.rejected is not None and "order.\ufffdcreated" in r.rejected,
    ),
]


@pytest.mark.parametrize(("case", "body", "holds"), CASES, ids=[c[0] for c in CASES])
def test_a_routing_holds_no_nul(tmp_path: Path, case: str, body: Any, holds: Any) -> None:
    write_example(tmp_path)
    router = offline_router(load_project(tmp_path))
    routing: Routing = router.route_arriving(
        NewMessage("webshop", "msg_1", 0.0, b"{}", orjson.dumps(body))
    )
    texts = [routing.event or "", routing.rejected or "", *routing.keys.values()]
    texts += [d.key or "" for d in routing.deliveries]
    assert holds(routing), routing
    assert not any(NUL in t for t in texts), routing
