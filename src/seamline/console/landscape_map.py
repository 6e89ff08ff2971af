"""The landscape as a map: systems as boxes on an ellipse, integrations as curved arrows from
source to target, laid out here and drawn by `landscape.html` as inline SVG.

Colours are SVG presentation attributes (the CSP allows no inline `style`): an arrow's stroke
is the flow's health now (grey for an integration outside the hub, which is also dashed), its
width and its score label say its risk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from seamline.landscape.risk import Risk

WIDTH, HEIGHT = 960, 560
BOX_W, BOX_H = 170, 46
SPREAD = 26.0
"""How far apart arrows between the same two systems bow."""
COLOURS = {"green": "#1a7f37", "amber": "#9a6700", "red": "#cf222e", "unknown": "#57606a"}
RISK_COLOURS = {"low": "#1a7f37", "medium": "#9a6700", "high": "#cf222e"}
RISK_WIDTHS = {"low": 2, "medium": 3.5, "high": 5}


def risk_level(score: int) -> str:
    """`low`, `medium` or `high`, as the risk assessment names a score."""
    return Risk(score, ()).level


def layout(register: Mapping[str, Any], health: Mapping[str, str]) -> dict[str, Any]:
    """Nodes and edges of the map of `register` (as `export.as_json` gives it)."""
    names = [s["name"] for s in register["systems"]]
    declared = set(names)
    for i in register["integrations"]:
        for end in (i["source"], i["target"]):
            if end not in names:
                names.append(end)  # named only by an integration outside the hub
    centres = _ellipse(len(names))
    at = dict(zip(names, centres, strict=True))
    nodes = [
        {
            "name": name,
            "x": round(x - BOX_W / 2, 1),
            "y": round(y - BOX_H / 2, 1),
            "w": BOX_W,
            "h": BOX_H,
            "cx": round(x, 1),
            "cy": round(y, 1),
            "declared": name in declared,
            "health": health.get(name, "unknown"),
            "stroke": COLOURS.get(health.get(name, "unknown"), COLOURS["unknown"]),
        }
        for name, (x, y) in at.items()
    ]
    seen: dict[tuple[str, str], int] = {}
    edges = []
    for i in register["integrations"]:
        pair = (i["source"], i["target"])
        n = seen.get(pair, 0)
        seen[pair] = n + 1
        level = health.get(i["name"], "unknown") if i["monitored"] else "unknown"
        score = int(i["risk"]["score"])
        path, label = _arrow(at[i["source"]], at[i["target"]], SPREAD * (n + 0.5))
        edges.append(
            {
                "name": i["name"],
                "source": i["source"],
                "target": i["target"],
                "monitored": i["monitored"],
                "health": level,
                "stroke": COLOURS.get(level, COLOURS["unknown"]),
                "width": RISK_WIDTHS[risk_level(score)],
                "risk": risk_level(score),
                "risk_colour": RISK_COLOURS[risk_level(score)],
                "score": score,
                "d": path,
                "lx": label[0],
                "ly": label[1],
            }
        )
    return {"width": WIDTH, "height": HEIGHT, "nodes": nodes, "edges": edges, "colours": COLOURS}


def _ellipse(n: int) -> list[tuple[float, float]]:
    cx, cy = WIDTH / 2, HEIGHT / 2
    if n == 1:
        return [(cx, cy)]
    rx, ry = cx - BOX_W / 2 - 20, cy - BOX_H / 2 - 30
    return [
        (
            cx + rx * math.cos(-math.pi / 2 + 2 * math.pi * k / n),
            cy + ry * math.sin(-math.pi / 2 + 2 * math.pi * k / n),
        )
        for k in range(n)
    ]


def _arrow(
    a: tuple[float, float], b: tuple[float, float], bow: float
) -> tuple[str, tuple[float, float]]:
    """A quadratic curve from box `a` to box `b` bowed to its left by `bow`, ending at the
    boxes' edges; and where its label goes."""
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    length = math.hypot(dx, dy)
    if length < 1:  # from a system to itself: a loop above its box
        top = ay - BOX_H / 2
        d = f"M {ax - 20:.1f} {top:.1f} C {ax - 40:.1f} {top - 60:.1f} {ax + 40:.1f} "
        d += f"{top - 60:.1f} {ax + 20:.1f} {top:.1f}"
        return d, (round(ax, 1), round(top - 50, 1))
    nx, ny = dy / length, -dx / length
    control = ((ax + bx) / 2 + nx * bow * 2, (ay + by) / 2 + ny * bow * 2)
    start = _edge(a, control)
    end = _edge(b, control)
    d = f"M {start[0]:.1f} {start[1]:.1f} Q {control[0]:.1f} {control[1]:.1f} "
    d += f"{end[0]:.1f} {end[1]:.1f}"
    mid = (
        0.25 * start[0] + 0.5 * control[0] + 0.25 * end[0],
        0.25 * start[1] + 0.5 * control[1] + 0.25 * end[1],
    )
    return d, (round(mid[0], 1), round(mid[1], 1))


def _edge(centre: tuple[float, float], toward: tuple[float, float]) -> tuple[float, float]:
    """Where the line from a box's centre toward `toward` leaves the box (with a small gap)."""
    (x, y), (tx, ty) = centre, toward
    dx, dy = tx - x, ty - y
    scale = min(
        (BOX_W / 2 + 4) / abs(dx) if dx else math.inf,
        (BOX_H / 2 + 4) / abs(dy) if dy else math.inf,
    )
    return x + dx * scale, y + dy * scale
