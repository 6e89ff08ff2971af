"""Healing drift: the authoritative value sent again through the flow that owns it.

A check's `left` side is the truth; its `heal.flow` carries values from that system to the
right one. For every finding that a value can settle, the heal makes a hub message (system
`seamline`, see `engine/router.py`) holding the canonical event the flow takes, addressed to
that one flow: the hub routes and delivers it like any other, with the flow's mapping,
ordering, coalescing, retries and budget, so it shows in the journal, the console and the
metrics as an ordinary delivery. `plan` first (the dry run: what would be sent, and what
cannot be healed and why), then `apply`, which journals them and audits the heal.

| entity    | healed by                                                                 |
|-----------|---------------------------------------------------------------------------|
| `stock`   | `inventory.changed` with the left level (a SKU the left does not list: 0) |
| others    | not by a value: an order is replayed from the journal, a price or a       |
|           | duplicate customer is for a person (listed as unhealable, with why)       |
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from seamline.checks.compare import Finding, Key
from seamline.checks.spec import CheckSpec
from seamline.engine.router import HUB
from seamline.errors import ContractError
from seamline.journal.base import Journal, NewMessage
from seamline.model.event import event_model
from seamline.project import Flow

STOCK_EVENT = "inventory.changed"


@dataclass(frozen=True, slots=True)
class Heal:
    key: Key
    flow: str
    event: str
    data: dict[str, Any]
    why: str
    """The finding it settles, in words."""


@dataclass(frozen=True, slots=True)
class Unhealable:
    key: Key
    why: str


def plan(
    spec: CheckSpec, flow: Flow, findings: Iterable[Finding]
) -> tuple[list[Heal], list[Unhealable]]:
    """What healing these findings would send through `flow`; nothing is sent."""
    heals: list[Heal] = []
    left_out: list[Unhealable] = []
    for finding in findings:
        if finding.kind == "duplicate":
            left_out.append(Unhealable(finding.key, "a duplicate is for a person to merge"))
            continue
        if spec.entity != "stock":
            left_out.append(
                Unhealable(finding.key, f"{spec.entity} are not healed by a value (yet)")
            )
            continue
        if STOCK_EVENT not in flow.spec.source.events:
            left_out.append(
                Unhealable(finding.key, f"flow '{flow.name}' does not take {STOCK_EVENT}")
            )
            continue
        available = (finding.left or {}).get("available", 0)
        if available is None:
            left_out.append(Unhealable(finding.key, f"{spec.left.system} has no readable level"))
            continue
        sku = finding.key[0]
        data = {
            "inventory_item_id": sku,
            "location_id": spec.left.system,
            "sku": sku,
            "available": int(available),
        }
        try:
            event_model(STOCK_EVENT).model_validate(data)
        except (ContractError, ValueError) as exc:
            left_out.append(Unhealable(finding.key, f"not a valid {STOCK_EVENT}: {exc}"))
            continue
        heals.append(Heal(finding.key, flow.name, STOCK_EVENT, data, finding.describe()))
    return heals, left_out


async def apply(
    journal: Journal, heals: Iterable[Heal], *, check: str, run: str, actor: str
) -> int:
    """Journal one hub message per heal (once per run and key: a repeat is not journaled
    again) and audit the heal; the number journaled."""
    now = time.time()
    journaled = 0
    flows: set[str] = set()
    for heal in heals:
        body = orjson.dumps({"event": heal.event, "data": heal.data, "keys": _keys(heal)})
        headers = orjson.dumps({"flow": heal.flow, "check": check, "run": run, "actor": actor})
        source_id = f"heal:{check}:{run}:{'/'.join(heal.key)}"
        if await journal.append(NewMessage(HUB, source_id, now, headers, body)) is not None:
            journaled += 1
            flows.add(heal.flow)
    await journal.audit(
        actor=actor,
        action="heal",
        target=f"check {check}",
        detail={"run": run, "journaled": journaled, "flows": sorted(flows)},
    )
    return journaled


def _keys(heal: Heal) -> Mapping[str, str]:
    return {"sku": heal.key[0]} if heal.event == STOCK_EVENT else {}
