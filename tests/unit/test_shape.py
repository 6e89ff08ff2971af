"""Vendor drift: new and vanished fields found from sampled traffic, optional ones ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from seamline.cli import write_example
from seamline.connectors.shape import Shapes, paths
from seamline.engine.router import offline_router
from seamline.journal.base import NewMessage
from seamline.project import load_project
from seamline.sandbox.webhook_sender import order_data


def order(n: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": n,
        "email": f"c{n}@example.com",
        "line_items": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2, "tip": True}],
        **extra,
    }
    if n % 3 == 0:
        body["discount_codes"] = [{"code": "TEN"}]  # optional: a third of the orders
    return body


def test_paths_merge_list_items_and_name_nested_fields() -> None:
    assert paths(order(1)) == {
        "id", "email", "line_items", "line_items[].sku", "line_items[].quantity",
        "line_items[].tip",
    }  # fmt: skip


def feed(shapes: Shapes, bodies: list[dict[str, Any]], start: int = 0) -> list[str]:
    said = []
    for n, body in enumerate(bodies, start):
        said += [d.text() for d in shapes.observe("shop", "orders/create", body, f"message {n}")]
    return said


def test_a_new_field_is_reported_once_after_warm_up() -> None:
    shapes = Shapes(warm_up=20)
    assert feed(shapes, [order(n) for n in range(30)]) == []

    said = feed(shapes, [order(n, source_identifier="x") for n in range(30, 35)], start=30)

    assert said == [
        "shop sends a new field 'source_identifier' in orders/create (first in message 30)"
    ]


def test_a_common_field_that_stops_coming_is_reported_once_optional_ones_never() -> None:
    shapes = Shapes(warm_up=20, gone_after=5)
    feed(shapes, [order(n) for n in range(40)])
    without_email = [{k: v for k, v in order(n).items() if k != "email"} for n in range(40, 60)]

    said = feed(shapes, without_email, start=40)

    assert said == [
        "shop stopped sending 'email' in orders/create: it came in nearly every one before "
        "(first missing in message 44)"
    ]


def test_what_was_learned_survives_a_restart() -> None:
    first = Shapes(warm_up=10)
    feed(first, [order(n) for n in range(15)])
    second = Shapes(warm_up=10)
    second.load(first.state())

    said = feed(second, [order(15, gift=True)], start=15)

    assert said == ["shop sends a new field 'gift' in orders/create (first in message 15)"]


@pytest.mark.parametrize(("times", "sampled"), [([0, 1, 5, 10, 10.5, 21], [0, 10, 21])])
def test_sampling_looks_at_one_message_per_interval(
    times: list[float], sampled: list[float]
) -> None:
    clock = iter(times)
    now = [0.0]

    def tick() -> float:
        now[0] = next(clock)
        return now[0]

    shapes = Shapes(every=10, clock=tick)
    taken = [now[0] for _ in times if shapes.due("shop", "orders/create")]

    assert taken == sampled


def test_drift_in_a_message_routed_as_it_arrived_names_its_sender_s_id(tmp_path: Path) -> None:
    # Given a router that samples every message, routing webhooks before they have an id
    write_example(tmp_path)
    router = offline_router(load_project(tmp_path))
    router.shapes = Shapes(every=0, warm_up=3)
    for n in range(1, 6):
        data = {**order_data(n), "source_name": "web", **({"gift_wrap": True} if n == 5 else {})}
        body = orjson.dumps({"type": "order.created", "data": data})
        router.route_arriving(NewMessage("webshop", f"msg_{n}", 0.0, b"{}", body))
    # Then the drift names the webhook by the id its sender gave it
    assert list(router.drift["webshop"]) == [
        "webshop sends a new field 'data.gift_wrap' in order.created (first in webhook msg_5)"
    ]


def test_what_several_processes_learned_is_kept_per_type_from_the_most_samples() -> None:
    # Given an ingest process that learned orders from 30 samples, and a scheduler that saw
    # 2 orders before it started polling refunds
    ingest, scheduler = Shapes(), Shapes()
    feed(ingest, [order(n) for n in range(30)])
    feed(scheduler, [order(n) for n in range(2)])
    scheduler.observe("shop", "refunds/create", {"id": 1, "amount": "3.00"}, "message 1")
    # When both keep what they learned, the scheduler last
    kept = Shapes.merged(Shapes.merged({}, ingest.state()), scheduler.state())
    # Then orders are known from the 30 samples, and refunds from the scheduler's one
    assert kept["shop\torders/create"]["samples"] == 30
    assert kept["shop\trefunds/create"]["samples"] == 1
