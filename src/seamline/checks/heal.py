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
| `orders`  | an order missing on the right: its newest message in the journal, decoded |
|           | again, sent through the flow (`prepare`); a sale that differs is left to a |
|           | person (the flow finds the sale by its reference and would not change it) |
| others    | prices, customers and duplicates are for a person (listed, with why)      |
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from seamline.checks.compare import Finding, Key
from seamline.checks.spec import CheckSpec
from seamline.connectors.base import Event
from seamline.engine.router import HUB, Router
from seamline.errors import ContractError
from seamline.journal.base import ConsoleJournal, Journal, NewMessage
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


async def prepare(
    spec: CheckSpec,
    flow: Flow,
    findings: Iterable[Finding],
    *,
    journal: ConsoleJournal,
    router: Router,
) -> tuple[list[Heal], list[Unhealable]]:
    """`plan`, and for orders the journal's own messages: what healing would send."""
    if spec.entity != "orders":
        return plan(spec, flow, findings)
    heals: list[Heal] = []
    left_out: list[Unhealable] = []
    for finding in findings:
        if finding.kind != "missing_right":
            why = {
                "mismatch": f"{spec.right.system} has a different one: for a person to compare",
                "missing_left": f"{spec.left.system} has no such order to send",
                "duplicate": "a duplicate is for a person to merge",
            }[finding.kind]
            left_out.append(Unhealable(finding.key, why))
            continue
        event = await _journaled(journal, router, flow, finding.key[0])
        if event is None:
            left_out.append(
                Unhealable(
                    finding.key,
                    f"no message of it in the journal to send again (not received, or purged); "
                    f"replay it from {spec.left.system}",
                )
            )
            continue
        heals.append(Heal(finding.key, flow.name, event.name, event.data, finding.describe()))
    return heals, left_out


async def _journaled(
    journal: ConsoleJournal, router: Router, flow: Flow, number: str
) -> Event | None:
    """The newest journaled event of `number` that the flow takes, decoded as the hub does."""
    for message in await journal.messages_with_key(flow.spec.source.system, number):
        try:
            event = router.decode(message)
        except ContractError:
            continue
        if event.name in flow.spec.source.events:
            return event
    return None


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
    if heal.event == STOCK_EVENT:
        return {"sku": heal.key[0]}
    return {"order": heal.key[0]} if heal.event.startswith("order.") else {}
