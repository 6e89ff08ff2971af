"""The landscape map's layout: every system a box inside the picture, every integration its
own arrow from the edge of its source's box to the edge of its target's."""

from __future__ import annotations

import re
from typing import Any

import pytest

from seamline.console.landscape_map import BOX_H, BOX_W, COLOURS, HEIGHT, WIDTH, layout


def register(*pairs: tuple[str, str, bool], systems: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "systems": [{"name": s} for s in systems],
        "integrations": [
            {"name": f"i{n}", "source": a, "target": b, "monitored": inside,
             "risk": {"score": 10 * n}}
            for n, (a, b, inside) in enumerate(pairs)
        ],
    }  # fmt: skip


CASES = {
    "one flow": register(("shop", "erp", True), systems=("shop", "erp")),
    "both ways": register(("shop", "erp", True), ("erp", "shop", True), systems=("shop", "erp")),
    "twice one way": register(("a", "b", True), ("a", "b", True), systems=("a", "b")),
    "outside, to an undeclared system": register(("erp", "accountant", False), systems=("erp",)),
    "to itself": register(("erp", "erp", True), systems=("erp",)),
    "many": register(*((f"s{n}", f"s{(n + 1) % 7}", n % 2 == 0) for n in range(7))),
}


def ends(d: str) -> tuple[tuple[float, float], tuple[float, float]]:
    numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", d)]
    return (numbers[0], numbers[1]), (numbers[-2], numbers[-1])


def on_box_edge(point: tuple[float, float], node: dict[str, Any]) -> bool:
    x, y = point
    dx, dy = abs(x - node["cx"]), abs(y - node["cy"])
    inside = dx <= BOX_W / 2 + 5 and dy <= BOX_H / 2 + 5
    return inside and (dx >= BOX_W / 2 - 1 or dy >= BOX_H / 2 - 1)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_system_is_a_box_and_each_integration_its_own_arrow(case: dict[str, Any]) -> None:
    drawn = layout(case, {"i0": "red"})
    named = {s["name"] for s in case["systems"]}
    named |= {e for i in case["integrations"] for e in (i["source"], i["target"])}
    nodes = {n["name"]: n for n in drawn["nodes"]}
    assert set(nodes) == named and len(drawn["nodes"]) == len(named)
    for n in nodes.values():
        assert 0 <= n["x"] <= WIDTH - n["w"] and 0 <= n["y"] <= HEIGHT - n["h"]
        assert n["declared"] == (n["name"] in {s["name"] for s in case["systems"]})
    assert [e["name"] for e in drawn["edges"]] == [i["name"] for i in case["integrations"]]
    assert len({e["d"] for e in drawn["edges"]}) == len(drawn["edges"])  # none drawn twice
    for e in drawn["edges"]:
        if e["source"] != e["target"]:
            start, end = ends(e["d"])
            assert on_box_edge(start, nodes[e["source"]]), e
            assert on_box_edge(end, nodes[e["target"]]), e
        if not e["monitored"]:
            assert (e["health"], e["stroke"]) == ("unknown", COLOURS["unknown"])
    first = drawn["edges"][0]
    if first["monitored"]:
        assert first["stroke"] == COLOURS["red"]
