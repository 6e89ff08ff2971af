"""`Operations`: what the console's pages and the REST API do, once for both.

Every function returns plain data (dicts, lists, numbers, text) that the API sends as JSON and
the pages render; every action takes the actor for the audit log.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from seamline.checks.compare import Finding
from seamline.checks.run import drift_in, run_check, trend_text
from seamline.journal.base import ConsoleJournal, Selection, StoredMessage
from seamline.landscape import export, signals
from seamline.landscape.register import build
from seamline.observe import alerts
from seamline.observe.health import flow_health, system_health
from seamline.observe.status import circuit, snapshot
from seamline.project import Project

Decode = Callable[[StoredMessage], dict[str, Any]]
SAMPLE = 10
LISTED = 200
RUNS = 50
FINDINGS = 1000
SHOWN_BODY = 64 * 1024
_DELIVERY_REF = re.compile(r"^(?:d|delivery)\s*[:#]?\s*(\d+)$", re.IGNORECASE)
_ACTIONABLE = ("dead", "review")


class NotFound(LookupError):
    """What was asked for does not exist (404)."""


class Refused(ValueError):
    """The request cannot be done as asked; the message says why (400/409)."""


@dataclass(frozen=True, slots=True)
class Filter:
    """Dead deliveries an operator acts on in bulk."""

    flow: str | None = None
    error_class: str | None = None
    state: str = "dead"

    def selection(self) -> Selection:
        if self.state not in _ACTIONABLE:
            raise Refused(f"bulk actions take dead or review deliveries, not {self.state!r}")
        return Selection(flow=self.flow or None, states=(self.state,), error_class=self.error_class)


class Operations:
    def __init__(
        self,
        journal: ConsoleJournal,
        project: Project,
        *,
        decode: Decode,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self.project = project
        self.decode = decode
        self.clock = clock

    # --- overview -------------------------------------------------------------------------------

    async def overview(self) -> dict[str, Any]:
        now = self.clock()
        flows, systems = await snapshot(self.journal, self.project)
        flow_rows = []
        for f in flows:
            health = flow_health(f, now)
            flow_rows.append(
                {
                    "flow": f.flow,
                    "counts": {
                        state: f.count(state)
                        for state in (
                            "pending",
                            "retrying",
                            "leased",
                            "delivered",
                            "dead",
                            "review",
                            "skipped",
                            "discarded",
                        )
                    },
                    "oldest_open_age": f.age(now),
                    "sla": f.sla,
                    "health": {"level": health.level, "reasons": list(health.reasons)},
                    **await self._version_of(f.flow),
                }
            )
        system_rows = []
        for s in systems:
            health = system_health(s, now)
            budget = s.budget or {}
            system_rows.append(
                {
                    "system": s.system,
                    "circuit": circuit(s),
                    "in_flight": budget.get("in_flight"),
                    "concurrency": budget.get("concurrency"),
                    "rate": budget.get("rate"),
                    "last_contact": budget.get("at"),
                    "rejected": s.rejected,
                    "warnings": sorted(s.warnings),
                    "health": {"level": health.level, "reasons": list(health.reasons)},
                }
            )
        firing = [a.to_json() for a in await alerts.current(self.journal)]
        return {"at": now, "alerts": firing, "flows": flow_rows, "systems": system_rows}

    async def _version_of(self, flow: str) -> dict[str, str | None]:
        """The version of `flow` this hub loaded, and the newest one that went live."""
        loaded = self.project.flows.get(flow)
        kept = await self.journal.flow_versions(flow, limit=1)
        return {
            "version": loaded.version if loaded else None,
            "live_version": kept[0]["version"] if kept else None,
        }

    async def alerts(self) -> dict[str, Any]:
        """Alerts firing now (critical first, longest first) and the last resolved ones."""
        return {
            "firing": [a.to_json() for a in await alerts.current(self.journal)],
            "resolved": [a.to_json() for a in (await alerts.resolved(self.journal))[:100]],
        }

    async def charts(self, *, hours: int = 24) -> dict[str, Any]:
        """Throughput, latency and backlog per hour over the last `hours`: deliveries made,
        attempts delivered and failed, how long attempts took (mean and longest), and how many
        deliveries were open (pending, retrying, in flight) at the end of each hour."""
        hours = max(1, min(hours, 24 * 14))
        bucket = 3600
        now = self.clock()
        first = int(now // bucket) - hours + 1
        found = await self.journal.activity(since=first * bucket, bucket=bucket)
        series: dict[int, dict[str, Any]] = {
            b: {
                "at": float(b * bucket),
                "received": 0,
                "delivered": 0,
                "failed": 0,
                "latency_mean": None,
                "latency_max": None,
                "backlog": 0,
            }
            for b in range(first, first + hours)
        }
        # Open at the end of an hour: made by then, and not settled by then.
        for r in found.get("backlog", []):
            born, gone, n = int(r["born"]), r["gone"], int(r["n"])
            for b, point in series.items():
                if born <= b and (gone is None or int(gone) > b):
                    point["backlog"] += n
        spent: dict[int, tuple[float, int]] = {}
        for r in found["received"]:
            if int(r["bucket"]) in series:
                series[int(r["bucket"])]["received"] = int(r["n"])
        for r in found["attempts"]:
            row = series.get(int(r["bucket"]))
            if row is None:
                continue
            n = int(r["n"])
            outcome = "delivered" if r["classification"] == "delivered" else "failed"
            row[outcome] += n
            total, count = spent.get(int(r["bucket"]), (0.0, 0))
            spent[int(r["bucket"])] = (total + float(r["mean"]) * n, count + n)
            longest = float(r["longest"])
            row["latency_max"] = max(longest, row["latency_max"] or 0.0)
        for b, (total, count) in spent.items():
            series[b]["latency_mean"] = total / count
        return {"bucket": bucket, "series": list(series.values())}

    # --- search ---------------------------------------------------------------------------------

    async def search(self, text: str) -> dict[str, Any]:
        """The journey of the business object `text` names, in time order."""
        text = text.strip()[:200]
        if not text:
            return {"query": "", "events": [], "messages": [], "deliveries": []}
        values = [text]
        delivery_ids: list[int] = []
        ref = _DELIVERY_REF.match(text)
        if ref:
            delivery_ids.append(int(ref.group(1)))
        if text.startswith("#"):
            values.append(text[1:])
        elif text.isdigit():
            values.append(f"#{text}")
        if "@" in text:
            values.append(text.lower())
        found = await self.journal.journey(values, delivery_ids=delivery_ids)
        return {
            "query": text,
            "events": journey_events(found),
            "messages": found["messages"],
            "deliveries": found["deliveries"],
        }

    # --- deliveries -----------------------------------------------------------------------------

    async def delivery(self, delivery_id: int) -> dict[str, Any]:
        found = await self.journal.delivery_detail(delivery_id)
        if found is None:
            raise NotFound(f"there is no delivery {delivery_id}")
        d = found["delivery"]
        flow = self.project.flows.get(d["flow"])
        d["payload"] = _text(d["payload"])
        d["safe_retry"] = bool(d["safe_retry"])
        d["live_flow_version"] = flow.version if flow else None
        message = found["message"]
        if message is not None:
            message["headers"] = _text(message["headers"])
            message["body"] = _text(message["body"])
        for a in found["attempts"]:
            a["request"] = _text(a["request"])
            a["response"] = _text(a["response"])
        found["actions"] = {
            "replay": d["state"] in ("dead", "review", "skipped", "discarded"),
            "discard": d["state"] in ("dead", "review", "pending"),
        }
        return found

    async def event_data(self, delivery_id: int) -> dict[str, Any]:
        """What a delivery sends: its edited payload, or its message decoded as the router does."""
        found = await self.journal.delivery_source(delivery_id)
        if found is None:
            raise NotFound(f"there is no delivery {delivery_id}")
        payload, message = found
        if payload is not None:
            data: dict[str, Any] = orjson.loads(payload)
            return data
        try:
            return self.decode(message)
        except Exception as exc:
            raise Refused(f"the message cannot be decoded: {exc}") from None

    async def replay(
        self, delivery_id: int, *, actor: str, payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        detail = await self.delivery(delivery_id)
        if not detail["actions"]["replay"]:
            raise Refused(
                f"delivery {delivery_id} is {detail['delivery']['state']}; only dead, review, "
                "skipped or discarded deliveries are replayed"
            )
        body = None if payload is None else orjson.dumps(payload)
        done = await self.journal.replay(
            [delivery_id], actor=actor, flow_versions=self._versions(), payload=body
        )
        return {"replayed": done}

    async def discard(self, delivery_id: int, *, actor: str, reason: str) -> dict[str, Any]:
        reason = reason.strip()
        if not reason:
            raise Refused("say why the delivery is discarded")
        detail = await self.delivery(delivery_id)
        if not detail["actions"]["discard"]:
            raise Refused(f"delivery {delivery_id} is {detail['delivery']['state']}")
        done = await self.journal.discard([delivery_id], actor=actor, reason=reason[:500])
        return {"discarded": done}

    def _versions(self) -> dict[str, str]:
        return {name: f.version for name, f in self.project.flows.items()}

    # --- dead letters ---------------------------------------------------------------------------

    async def dead_letters(self) -> dict[str, Any]:
        return {
            "deliveries": await self.journal.dead_groups(),
            "rejected": await self.journal.rejected_groups(),
        }

    async def deliveries(self, selected: Filter, *, limit: int = LISTED) -> dict[str, Any]:
        """Dead (or review) deliveries matching `selected`, newest first, at most `limit`."""
        rows = await self.journal.select(selected.selection())
        rows.reverse()
        return {"count": len(rows), "deliveries": rows[:limit]}

    async def preview(self, selected: Filter) -> dict[str, Any]:
        """What a bulk replay of `selected` would send: how many, a sample, and the newest id
        (`through`), so that the replay confirmed is the one previewed."""
        rows = await self.journal.select(selected.selection())
        return {
            "count": len(rows),
            "sample": rows[:SAMPLE],
            "through": max((int(str(r["id"])) for r in rows), default=0),
        }

    async def bulk_replay(self, selected: Filter, *, through: int, actor: str) -> dict[str, Any]:
        rows = await self.journal.select(selected.selection())
        ids = [int(str(r["id"])) for r in rows if int(str(r["id"])) <= through]
        done = 0
        for start in range(0, len(ids), 500):
            done += await self.journal.replay(
                ids[start : start + 500], actor=actor, flow_versions=self._versions()
            )
        await self.journal.audit(
            actor=actor,
            action="bulk-replay",
            target=f"flow/{selected.flow or '*'}",
            detail={
                "error_class": selected.error_class,
                "state": selected.state,
                "through": through,
                "replayed": done,
            },
        )
        return {"replayed": done, "selected": len(ids)}

    async def replay_rejected(
        self,
        *,
        actor: str,
        message_id: int | None = None,
        system: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Route rejected messages again (after a fix): one, or every one from `system` (with
        this `reason`, when given: one group of the dead-letters page)."""
        if message_id is None and not system:
            raise Refused("give a message id or a system")
        rows = await self.journal.rejected(
            ids=() if message_id is None else (message_id,), system=system
        )
        if reason is not None:
            rows = [r for r in rows if (r["reason"] or "") == reason]
        if message_id is not None and not rows:
            raise NotFound(f"message {message_id} is not rejected")
        done = await self.journal.replay_rejected([int(str(r["id"])) for r in rows], actor=actor)
        return {"replayed": done}

    # --- checks ---------------------------------------------------------------------------------

    async def checks(self) -> dict[str, Any]:
        """Every check of the project with its latest run and the trend against the one before."""
        rows = []
        for name, spec in sorted(self.project.checks.items()):
            runs = await self.journal.check_runs(name, limit=2)
            rows.append(
                {
                    "name": name,
                    "entity": spec.entity,
                    "left": spec.left.system,
                    "right": spec.right.system,
                    "owner": spec.owner,
                    "purpose": spec.purpose.strip(),
                    "every": spec.schedule.every if spec.schedule else None,
                    "latest": _run_row(runs[0]) if runs else None,
                    "trend": _trend(runs),
                }
            )
        return {"checks": rows}

    async def check(self, name: str, *, runs: int = RUNS) -> dict[str, Any]:
        """One check: its runs, newest first, and what the latest run found."""
        spec = self.project.checks.get(name)
        if spec is None:
            raise NotFound(f"there is no check {name!r}")
        kept = await self.journal.check_runs(name, limit=max(1, min(runs, 500)))
        findings = (
            [
                _finding_row(f)
                for f in await self.journal.check_findings(int(kept[0]["id"]), limit=FINDINGS)
            ]
            if kept
            else []
        )
        return {
            "name": name,
            "entity": spec.entity,
            "left": spec.left.system,
            "right": spec.right.system,
            "owner": spec.owner,
            "purpose": spec.purpose.strip(),
            "every": spec.schedule.every if spec.schedule else None,
            "heal": spec.heal.flow if spec.heal else None,
            "trend": _trend(kept[:2]),
            "runs": [_run_row(r) for r in kept],
            "findings": findings,
        }

    async def run_check(self, name: str, *, actor: str) -> dict[str, Any]:
        """Run the check now (the run is kept, also when it cannot read a system) and audit it."""
        if name not in self.project.checks:
            raise NotFound(f"there is no check {name!r}")
        try:
            recorded = await run_check(self.project, name, self.journal, actor=actor)
        except Exception as exc:
            # A reader may fail in any way (network, credentials, a vendor's answer): run_check
            # kept the run with the error, and the check's page shows it.
            latest = await self.journal.check_runs(name, limit=1)
            done: dict[str, Any] = {
                "run": int(latest[0]["id"]) if latest else None,
                "summary": None,
                "trend": None,
                "error": _reason(exc),
            }
        else:
            done = {
                "run": recorded.run_id,
                "summary": recorded.outcome.summary(),
                "trend": recorded.trend(),
                "error": None,
            }
        await self.journal.audit(
            actor=actor, action="check-run", target=f"check/{name}", detail=done
        )
        return done

    # --- landscape ------------------------------------------------------------------------------

    async def landscape(self) -> dict[str, Any]:
        """The register with each integration's risk (as `seamline landscape --json` writes it),
        the top risks, and the health of each flow and system now."""
        now = self.clock()
        # `build` asks git when each file last changed: off the event loop.
        register = await asyncio.to_thread(
            build, self.project, externals=self.project.externals, checks=self.project.checks
        )
        found = await signals.read(self.journal, register, now=now)
        data = export.as_json(register, signals.risks(register, found, now=now))
        ranked = sorted(data["integrations"], key=lambda i: -int(i["risk"]["score"]))
        overview = await self.overview()
        return {
            "register": data,
            "top": [i for i in ranked if i["risk"]["reasons"]][: export.TOP],
            "health": {
                **{s["system"]: s["health"]["level"] for s in overview["systems"]},
                **{f["flow"]: f["health"]["level"] for f in overview["flows"]},
            },
        }

    # --- flow versions --------------------------------------------------------------------------

    async def versions(self, flow: str, *, limit: int = RUNS) -> dict[str, Any]:
        """The versions of `flow` that went live, newest first, and the one this hub loaded."""
        loaded = self.project.flows.get(flow)
        kept = await self.journal.flow_versions(flow, limit=max(1, min(limit, 500)))
        if loaded is None and not kept:
            raise NotFound(f"there is no flow {flow!r}")
        return {
            "flow": flow,
            "loaded": loaded.version if loaded else None,
            "live": kept[0]["version"] if kept else None,
            "versions": kept,
        }

    async def audit(self, *, before: int | None = None, limit: int = 100) -> dict[str, Any]:
        rows = await self.journal.audit_log(limit=max(1, min(limit, 500)), before=before)
        return {"entries": rows, "next": rows[-1]["id"] if len(rows) == limit else None}


def _run_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "drift": drift_in(row)}


def _trend(runs: list[dict[str, Any]]) -> str:
    """The latest run's drift against the run before it, in the words `seamline reconcile`
    prints."""
    if not runs:
        return "never run"
    if runs[0]["error"]:
        return f"could not run: {runs[0]['error']}"
    return trend_text(drift_in(runs[0]), runs[1] if len(runs) > 1 else None)


def _reason(exc: BaseException) -> str:
    """What went wrong, in the words of the first error inside any task group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def _finding_row(row: dict[str, Any]) -> dict[str, Any]:
    fields = tuple(f for f in (row["fields"] or "").split(",") if f)
    finding = Finding(
        row["kind"], tuple(row["key"].split("/")), row["left_values"], row["right_values"], fields
    )
    return {**row, "fields": list(fields), "what": finding.describe()}


def journey_events(found: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Messages, deliveries, attempts and cross-references as one story, oldest first."""
    events: list[tuple[float, int, dict[str, Any]]] = []
    keys: dict[int, list[str]] = {}
    for k in found["keys"]:
        keys.setdefault(int(k["message_id"]), []).append(f"{k['name']}={k['value']}")
    for m in found["messages"]:
        what = m["event"] or "message"
        text = f"{what} received from {m['system']} (source id {m['source_id']})"
        events.append(
            (
                m["received_at"],
                0,
                {
                    "at": m["received_at"],
                    "kind": "message",
                    "system": m["system"],
                    "message_id": m["id"],
                    "text": text,
                    "keys": sorted(keys.get(int(m["id"]), [])),
                },
            )
        )
        if m["state"] == "rejected":
            events.append(
                (
                    m["received_at"],
                    1,
                    {
                        "at": m["received_at"],
                        "kind": "rejected",
                        "system": m["system"],
                        "message_id": m["id"],
                        "text": f"rejected: {m['reason']}",
                    },
                )
            )
    for d in found["deliveries"]:
        events.append(
            (
                d["created_at"],
                2,
                {
                    "at": d["created_at"],
                    "kind": "delivery",
                    "system": d["target"],
                    "delivery_id": d["id"],
                    "message_id": d["message_id"],
                    "text": f"flow {d['flow']} (version {d['flow_version']}) to {d['target']}",
                },
            )
        )
        if d["state"] not in ("pending", "leased"):
            why = f": {d['last_error']}" if d["last_error"] else ""
            events.append(
                (
                    d["updated_at"],
                    5,
                    {
                        "at": d["updated_at"],
                        "kind": d["state"],
                        "system": d["target"],
                        "delivery_id": d["id"],
                        "text": f"{d['state']} after {d['attempts']} attempt(s){why}",
                    },
                )
            )
    for a in found["attempts"]:
        status = a["status"] if a["status"] is not None else "no answer"
        why = f": {a['error']}" if a["error"] else ""
        events.append(
            (
                a["started_at"],
                3,
                {
                    "at": a["started_at"],
                    "kind": "attempt",
                    "delivery_id": a["delivery_id"],
                    "text": f"attempt {a['classification']} ({status}){why}",
                },
            )
        )
    for x in found["xrefs"]:
        events.append(
            (
                x["created_at"],
                4,
                {
                    "at": x["created_at"],
                    "kind": "xref",
                    "delivery_id": x["delivery_id"],
                    "text": f"{x['entity']}: {x['system']} {x['key']} = "
                    f"{x['other_system']} {x['other_key']}",
                },
            )
        )
    events.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in events]


def _text(value: Any) -> str | None:
    """A stored body for reading: JSON indented, other text as it is, cut at 64 KiB."""
    if value is None:
        return None
    raw = bytes(value)
    try:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()[:SHOWN_BODY]
    except orjson.JSONDecodeError:
        return raw[:SHOWN_BODY].decode("utf-8", "replace")
