"""The checker: what the senders were told, what the journal holds, what the targets did.

After the drain, for the Jepsen-style counts of `report.py`:

1. every webhook the hub acknowledged (2xx, well-formed) is a message in the journal;
2. every delivery is settled (delivered, skipped; dead and review are shown as parked);
3. every delivered delivery's effect is at its target, once, per (target kind, operation):

| operation            | the effect, by key                                   |
|----------------------|------------------------------------------------------|
| tryton `create_sale` | one sale whose reference is the order number         |
| tryton `cancel_sale` | that sale called off                                 |
| tryton `ship_sale`   | one done shipment whose reference is the tracking no.|
| sftp_csv `send_order`| one order file for the order id                      |
| shopify `create_fulfillment` | one fulfillment with the tracking number     |
| shopify `set_inventory` | the level of the 3PL's newest snapshot (else out of order) |
| http `request`       | a record per message `id`; each idempotency key applied once |

4. per flow and ordering key, deliveries were applied in journal order.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from seamline.connectors.tryton.cancellation import cancelled_in_effect
from seamline.sandbox.load import journal
from seamline.sandbox.load.landscape import TOPICS, Landscape, flow_sources, flow_targets
from seamline.sandbox.load.report import Finding
from seamline.sandbox.recording_sink import read_records


@dataclass
class Verdict:
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    parked: int = 0
    """Deliveries dead or waiting for review: not lost (an operator sees them), but named."""
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, what: str, flow: str, key: object, detail: str) -> None:
        if what == "lost":
            self.lost += 1
        elif what == "duplicated":
            self.duplicated += 1
        elif what == "parked":
            self.parked += 1
        else:
            self.out_of_order += 1
        self.findings.append(Finding(what=what, flow=flow, key=str(key), detail=detail))


SKIPPED_OR_PARKED = ("skipped", "dead", "review")


async def judge(land: Landscape) -> Verdict:
    verdict = Verdict()
    path = land.journal_path
    acknowledged = _acknowledged(land, verdict)
    _settled(land, verdict)
    sources = flow_sources(land.project_dir)
    for flow, (system, operation) in flow_targets(land.project_dir).items():
        stand = land.stands.get(system)
        if stand is None:
            continue
        check = CHECKS.get((stand.kind, operation))
        if check is None:
            verdict.notes.append(f"{flow}: no effect check for {stand.kind} {operation}")
            continue
        key_of = KEYS[(stand.kind, operation)]
        # Expected: every delivered delivery's effect, and every acknowledged webhook's the
        # flow takes (a message journaled but never given its delivery is lost as well)...
        source, events = sources[flow]
        delivered = [b for _, b in journal.bodies(path, flow, ("delivered",))]
        topics = {TOPICS[e] for e in events if e in TOPICS} | set(events)
        bodies = delivered + [b for topic, b in acknowledged.get(source, []) if topic in topics]
        # ...but not what the flow skipped, saying why (an order with nothing to ship), nor
        # what is parked (dead or in review: counted, and named, as parked).
        unsent = {key_of(_json(b)) for _, b in journal.bodies(path, flow, SKIPPED_OR_PARKED)}
        unsent -= {key_of(_json(b)) for b in delivered}
        keys = [k for b in bodies if (k := key_of(_json(b))) is not None and k not in unsent]
        await check(land, verdict, flow, system, keys)
    _journal_order(land, verdict)
    return verdict


def _json(body: bytes) -> Any:
    with contextlib.suppress(orjson.JSONDecodeError):
        return orjson.loads(body)
    return None


def _acknowledged(land: Landscape, verdict: Verdict) -> dict[str, list[tuple[str, bytes]]]:
    """Per shop, (topic, body) of every webhook it was told 2xx for; one missing is lost."""
    found: dict[str, list[tuple[str, bytes]]] = {}
    for stand in land.stands.values():
        if stand.shop is None:
            continue
        acked = sorted(
            {
                f"{a.topic}:{a.event_id}"
                for a in stand.shop.deliveries
                if a.outcome == "delivered" and a.malformed is None
            }
        )
        held = journal.journaled(land.journal_path, stand.name, acked)
        for source_id in acked:
            if source_id not in held:
                verdict.add("lost", "-", source_id, f"{stand.name} was told 2xx; not journaled")
        found[stand.name] = [(i.partition(":")[0], body) for i, body in held.items()]
        verdict.checked.append(f"{len(acked)} acknowledged {stand.name} webhooks journaled")
    replayer = land.replayer
    for system, events in (replayer.acknowledged if replayer else {}).items():
        held = journal.journaled(land.journal_path, system, sorted(events))
        for source_id in sorted(set(events) - set(held)):
            verdict.add("lost", "-", source_id, f"{system} was told 2xx; not journaled")
        found[system] = [(events[source_id], body) for source_id, body in held.items()]
        verdict.checked.append(f"{len(events)} acknowledged {system} webhooks journaled")
    for unsent in replayer.unsent if replayer else ():
        # Not the hub's loss (it never said yes), but the run did not play what was recorded.
        verdict.add("parked", "-", unsent.source_id, f"{unsent.system} webhook {unsent.why}")
    return found


def _settled(land: Landscape, verdict: Verdict) -> None:
    path = land.journal_path
    for flow, key, state in journal.rows(
        path, "SELECT flow, key, state FROM delivery WHERE state IN ('pending', 'leased')"
    ):
        verdict.add("lost", flow, key, f"still {state} when the drain ended")
    for flow, key, state, error in journal.rows(
        path, "SELECT flow, key, state, last_error FROM delivery WHERE state IN ('dead', 'review')"
    ):
        verdict.add("parked", flow, key, f"{state}: {error}")
    unrouted = journal.messages(path).get("received", 0)
    for _ in range(unrouted):
        verdict.add("lost", "-", "-", "a message journaled but never routed")


def _journal_order(land: Landscape, verdict: Verdict) -> None:
    last: dict[tuple[str, str], journal.Delivered] = {}
    for d in journal.delivered(land.journal_path):
        if d.key is None:
            continue
        before = last.get((d.flow, d.key))
        if before is not None and d.done_at < before.done_at:
            verdict.add(
                "out_of_order",
                d.flow,
                d.key,
                f"delivery {d.delivery} applied before the earlier {before.delivery}",
            )
        if before is None or d.done_at >= before.done_at:
            last[(d.flow, d.key)] = d
    verdict.checked.append("per-key journal order of every delivered delivery")


def _once(verdict: Verdict, flow: str, what: str, keys: list[str], held: Counter[str]) -> None:
    for key in sorted(set(keys)):
        if held[key] == 0:
            verdict.add("lost", flow, key, f"delivered, but no {what} at the target")
    for key, n in sorted(held.items()):
        if n > 1:
            verdict.add("duplicated", flow, key, f"{n} {what}s")
    verdict.checked.append(f"{flow}: {len(set(keys))} keys, one {what} each")


async def _sales(land: Landscape, verdict: Verdict, flow: str, _: str, keys: list[str]) -> None:
    assert land.erp is not None
    sales = await land.erp.client.model(
        "sale.sale", "search_read", [], 0, None, None, ["reference"]
    )
    _once(verdict, flow, "sale", keys, Counter(str(s["reference"]) for s in sales))


async def _cancels(land: Landscape, verdict: Verdict, flow: str, _: str, keys: list[str]) -> None:
    assert land.erp is not None
    client = land.erp.client
    for reference in sorted(set(keys)):
        found = await client.model("sale.sale", "search", [["reference", "=", reference]])
        if len(found) != 1 or not await cancelled_in_effect(client, int(found[0])):
            verdict.add("lost", flow, reference, "delivered, but its sale is not called off")
    verdict.checked.append(f"{flow}: {len(set(keys))} sales called off")


async def _shipped(land: Landscape, verdict: Verdict, flow: str, _: str, keys: list[str]) -> None:
    assert land.erp is not None
    done = await land.erp.client.model(
        "stock.shipment.out", "search_read", [["state", "=", "done"]], 0, None, None, ["reference"]
    )
    _once(verdict, flow, "done shipment", keys, Counter(str(d["reference"]) for d in done))


async def _files(
    land: Landscape, verdict: Verdict, flow: str, system: str, keys: list[str]
) -> None:
    warehouse = land.stands[system].warehouse
    assert warehouse is not None
    _once(verdict, flow, "order file", keys, Counter(o.order_id for o in warehouse.orders_received))


async def _fulfillments(
    land: Landscape, verdict: Verdict, flow: str, system: str, keys: list[str]
) -> None:
    shop = land.shop(system)
    tracked = Counter(
        str(f["tracking_number"])
        for order in shop.store.orders.values()
        for f in order["fulfillments"]
    )
    _once(verdict, flow, "fulfillment", keys, tracked)


async def _levels(land: Landscape, verdict: Verdict, flow: str, system: str, _: list[str]) -> None:
    shop = land.shop(system)
    location = int(min(shop.store.locations))
    for warehouse in land.warehouses:
        newest = _newest_snapshot(warehouse.root, warehouse.snapshots_written)
        if newest is None:
            continue
        for variant in shop.store.variants.values():
            sku = variant["sku"]
            if not sku:
                continue
            level = shop.store.levels.get((variant["inventory_item_id"], location))
            have = None if level is None else level["available"]
            want = newest.get(sku, 0)
            if have != want:
                verdict.add(
                    "out_of_order", flow, sku, f"shop holds {have}, newest snapshot says {want}"
                )
    verdict.checked.append(f"{flow}: every level equals the newest 3PL snapshot")


def _newest_snapshot(root: Any, names: list[str]) -> dict[str, int] | None:
    for name in reversed(names):
        for path in sorted(root.glob(f"out/**/{name}*")):
            levels = {}
            for line in path.read_text().splitlines()[1:]:
                sku, available, *_ = line.split(",")
                levels[sku] = int(available)
            return levels
    return None


async def _records(
    land: Landscape, verdict: Verdict, flow: str, system: str, keys: list[str]
) -> None:
    sink = land.stands[system].sink
    assert sink is not None
    records = read_records(sink.db_path)
    applied = Counter(r.idempotency_key for r in records if r.idempotency_key)
    for key, n in sorted(applied.items()):
        if n > 1:
            verdict.add("duplicated", flow, key, f"idempotency key applied {n} times")
    # A record names its key in the body, or (the worker's `Idempotency-Key` is `sl-<id>`)
    # through the delivery that sent it, whose ordering key and journal order are known.
    sent = {d.delivery: d for d in journal.delivered(land.journal_path) if d.flow == flow}
    held = {r.key for r in records}
    last: dict[str, int] = {}
    for r in records:
        d = sent.get(_delivery_id(r.idempotency_key) or 0)
        if d is not None and d.key is not None:
            held.add(d.key)
            if d.delivery < last.get(d.key, d.delivery):
                verdict.add(
                    "out_of_order", flow, d.key, f"delivery {d.delivery} after {last[d.key]}"
                )
            last[d.key] = max(d.delivery, last.get(d.key, d.delivery))
    for key in sorted(set(keys) - held):
        verdict.add("lost", flow, key, "delivered, but the sink holds no record with this key")
    seqs: dict[str, int] = {}
    for r in records:
        if r.key is None or r.seq is None:
            continue
        if r.seq < seqs.get(r.key, r.seq):
            verdict.add("out_of_order", flow, r.key, f"seq {r.seq} after {seqs[r.key]}")
        seqs[r.key] = max(r.seq, seqs.get(r.key, r.seq))
    verdict.checked.append(f"{flow}: {len(records)} records, each key once, in sequence")


def _delivery_id(idempotency_key: str | None) -> int | None:
    prefix, _, number = (idempotency_key or "").partition("-")
    return int(number) if prefix == "sl" and number.isdigit() else None


Check = Callable[[Landscape, Verdict, str, str, list[str]], Any]
CHECKS: dict[tuple[str, str], Check] = {
    ("tryton", "create_sale"): _sales,
    ("tryton", "cancel_sale"): _cancels,
    ("tryton", "ship_sale"): _shipped,
    ("sftp_csv", "send_order"): _files,
    ("shopify", "create_fulfillment"): _fulfillments,
    ("shopify", "set_inventory"): _levels,
    ("http", "request"): _records,
}


def _order_name(body: Any) -> str | None:
    return str(body["name"]) if isinstance(body, dict) and "name" in body else None


def _order_id(body: Any) -> str | None:
    if isinstance(body, dict) and "id" not in body and isinstance(body.get("data"), dict):
        body = body["data"]  # a Standard Webhooks message: the order is its data
    return str(body["id"]) if isinstance(body, dict) and "id" in body else None


def _tracking(body: Any) -> str | None:
    if isinstance(body, dict) and body.get("rows"):
        return str(body["rows"][0]["tracking_number"])
    return None


def _sku(body: Any) -> str | None:
    return str(body["sku"]) if isinstance(body, dict) and "sku" in body else None


KEYS: dict[tuple[str, str], Callable[[Any], str | None]] = {
    ("tryton", "create_sale"): _order_name,
    ("tryton", "cancel_sale"): _order_name,
    ("tryton", "ship_sale"): _tracking,
    ("sftp_csv", "send_order"): _order_id,
    ("shopify", "create_fulfillment"): _tracking,
    ("shopify", "set_inventory"): _sku,
    ("http", "request"): _order_id,
}
