"""Alerts: rules per flow, judged against the journal's status snapshot, deduplicated, resolved.

Every flow gets these rules, with limits derived from its SLA unless its file's `alerts:`
section says otherwise (see `spec.py` for the keys):

| rule           | subject | fires while                                                | severity |
|----------------|---------|------------------------------------------------------------|----------|
| `dead_letters` | flow    | dead deliveries exist (until replayed or discarded)        | critical |
| `failure_rate` | flow    | over 10% of deliveries settled in the last 15 min are dead | critical |
| `sla`          | flow    | the oldest open delivery waited longer than the SLA        | critical |
| `backlog`      | flow    | over 100 open, more than the recent pace clears in the SLA | warning  |
| `silence`      | flow    | no new deliveries for N minutes within a schedule (opt-in) | warning  |
| `volume`       | flow    | the last hour had < 30% (or > 300%) of that hour's usual   | warning  |
| `circuit`      | system  | the flow's target has its circuit open or half-open        | critical |
| `deprecation`  | system  | the vendor warned (one alert per warning)                  | warning  |
| `rejected`     | system  | messages from the flow's source were rejected              | warning  |

`evaluate(previous, snapshot, now, rules)` is a pure function: from the previous `AlertState`,
the snapshot and the time, it gives the new state and the notifications to send. One alert
fires per rule and subject (`Alert.key`) and stays firing, its summary kept current, without
sending again; when its condition has been clear for a minute (`RESOLVE_AFTER`) it resolves,
once. Rates, silence and
volume are read from the snapshot's cumulative counts (a delivery changes state but is never
removed), sampled at each evaluation and kept in the state, so they see every process's work.

`AlertLoop` evaluates every `interval` seconds on the scheduler (the leader), keeps the state
in the journal (cursors `alerts:state` and `alerts:volume`, read again at each round so a new
leader carries on where the last one stopped) and sends notifications. `current(journal)`
lists the firing alerts, for the console.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from seamline.journal.base import Journal
from seamline.observe.health import duration_text, plural, since_text
from seamline.observe.notify import Notifier, build_notifiers
from seamline.observe.spec import DAYS, AlertsSpec, hours
from seamline.observe.status import FlowStatus, SystemStatus, circuit, snapshot
from seamline.project import Project

log = logging.getLogger("seamline.alerts")

STATE_CURSOR = "alerts:state"
VOLUME_CURSOR = "alerts:volume"
HISTORY = 200
"""Resolved alerts kept, newest first."""
RESOLVE_AFTER = 60.0
"""An alert resolves once its condition stayed clear this long: one that flaps around its
limit stays one alert instead of a notification every round."""
SAMPLE_EVERY = 30.0
"""Seconds between the count samples kept for rates (each evaluation still reads the counts)."""
HOUR = 3600
WEEK = 7 * 24 * HOUR
COVERED = 0.8
"""An hour counts towards `volume` only if evaluations watched this share of it."""
GAP = 300.0
"""A longer pause between evaluations (a stopped hub) does not count as watching."""

Severity = Literal["critical", "warning"]
SEVERITY: dict[str, Severity] = {
    "dead_letters": "critical",
    "failure_rate": "critical",
    "sla": "critical",
    "backlog": "warning",
    "silence": "warning",
    "volume": "warning",
    "circuit": "critical",
    "deprecation": "warning",
    "rejected": "warning",
    "drift": "warning",
    "check_failed": "warning",
}
_NOUNS = {
    "order": "orders",
    "inventory": "inventory updates",
    "product": "product updates",
    "price": "price updates",
    "customer": "customers",
    "shipment": "shipments",
    "fulfillment": "fulfillments",
    "refund": "refunds",
}


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    subject: str
    """`flow:NAME` or `system:NAME`."""
    severity: Severity
    summary: str
    """What holds, in words: "12 dead letters since 21:40"."""
    since: float
    """When it fired."""
    notify: tuple[str, ...] = ()
    """Notifier names."""
    qualifier: str = ""
    """Tells apart alerts of one rule and subject (a vendor's warnings, one alert each)."""
    resolved_at: float | None = None

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.subject}" + (f":{self.qualifier}" if self.qualifier else "")

    @property
    def flow(self) -> str | None:
        kind, _, name = self.subject.partition(":")
        return name if kind == "flow" else None

    @property
    def system(self) -> str | None:
        kind, _, name = self.subject.partition(":")
        return name if kind == "system" else None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "subject": self.subject,
            "severity": self.severity,
            "summary": self.summary,
            "since": self.since,
            "notify": list(self.notify),
            "qualifier": self.qualifier,
            "resolved_at": self.resolved_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        return cls(
            rule=data["rule"],
            subject=data["subject"],
            severity=data["severity"],
            summary=data["summary"],
            since=data["since"],
            notify=tuple(data.get("notify", ())),
            qualifier=data.get("qualifier", ""),
            resolved_at=data.get("resolved_at"),
        )


@dataclass(frozen=True, slots=True)
class Notification:
    event: Literal["firing", "resolved"]
    alert: Alert


@dataclass(frozen=True, slots=True)
class Sample:
    """A flow's cumulative counts at one time."""

    at: float
    total: int
    delivered: int
    dead: int


@dataclass(frozen=True)
class AlertState:
    """Everything evaluation remembers between rounds; JSON in the journal."""

    firing: dict[str, Alert] = field(default_factory=dict)
    resolved: tuple[Alert, ...] = ()
    samples: dict[str, tuple[Sample, ...]] = field(default_factory=dict)
    """Per flow: counts sampled every `SAMPLE_EVERY` s or so, the newest last."""
    last: dict[str, Sample] = field(default_factory=dict)
    """Per flow: the counts at the previous evaluation."""
    last_event: dict[str, float] = field(default_factory=dict)
    """Per flow: when its deliveries last grew in number (first seen, at the least)."""
    hour: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    """Per flow: the current hour (its start), new deliveries in it so far, seconds watched."""
    volume: dict[str, dict[int, int]] = field(default_factory=dict)
    """Per flow: new deliveries in each fully watched past hour (by its start)."""
    clearing: dict[str, float] = field(default_factory=dict)
    """Firing alerts whose condition no longer holds, and since when."""

    def dump(self) -> tuple[str, str]:
        """The two cursors' values: the state, and the (hourly changing) volume history."""
        main = {
            "v": 1,
            "firing": [a.to_json() for a in self.firing.values()],
            "resolved": [a.to_json() for a in self.resolved],
            "samples": {
                f: [[s.at, s.total, s.delivered, s.dead] for s in ss]
                for f, ss in self.samples.items()
            },
            "last": {f: [s.at, s.total, s.delivered, s.dead] for f, s in self.last.items()},
            "last_event": self.last_event,
            "hour": {f: list(h) for f, h in self.hour.items()},
            "clearing": self.clearing,
        }
        volume = {f: {str(h): n for h, n in sorted(hs.items())} for f, hs in self.volume.items()}
        return orjson.dumps(main).decode(), orjson.dumps(volume).decode()

    @classmethod
    def load(cls, main: str | None, volume: str | None = None) -> AlertState:
        data: dict[str, Any] = orjson.loads(main) if main else {}
        history: dict[str, dict[str, int]] = orjson.loads(volume) if volume else {}
        firing = [Alert.from_json(a) for a in data.get("firing", ())]
        return cls(
            firing={a.key: a for a in firing},
            resolved=tuple(Alert.from_json(a) for a in data.get("resolved", ())),
            samples={f: tuple(Sample(*s) for s in ss) for f, ss in data.get("samples", {}).items()},
            last={f: Sample(*s) for f, s in data.get("last", {}).items()},
            last_event=dict(data.get("last_event", {})),
            hour={f: (int(h[0]), int(h[1]), float(h[2])) for f, h in data.get("hour", {}).items()},
            volume={f: {int(h): n for h, n in hs.items()} for f, hs in history.items()},
            clearing=dict(data.get("clearing", {})),
        )


@dataclass(frozen=True, slots=True)
class FlowRules:
    """What evaluation needs to know of one flow: its systems, SLA, rules and notifiers."""

    flow: str
    source: str
    target: str
    events: tuple[str, ...]
    sla: float
    alerts: AlertsSpec = field(default_factory=AlertsSpec)
    notify: tuple[str, ...] = ()

    @classmethod
    def of(cls, project: Project) -> list[FlowRules]:
        everyone = tuple(sorted(project.notifiers))
        return [
            cls(
                flow=name,
                source=flow.spec.source.system,
                target=flow.spec.target.system,
                events=tuple(flow.spec.source.events),
                sla=flow.spec.sla.deliver_within,
                alerts=flow.spec.alerts,
                notify=everyone
                if flow.spec.alerts.notify is None
                else tuple(flow.spec.alerts.notify),
            )
            for name, flow in project.flows.items()
        ]


@dataclass(frozen=True, slots=True)
class CheckStatus:
    """The latest run of a reconciliation check (`checks/NAME.yaml`)."""

    check: str
    found: int
    """Findings of that run (0: no drift)."""
    counts: Mapping[str, int]
    error: str | None
    notify: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    flows: Sequence[FlowStatus]
    systems: Sequence[SystemStatus]
    checks: Sequence[CheckStatus] = ()


@dataclass(frozen=True, slots=True)
class _Holds:
    """A condition that holds now."""

    rule: str
    subject: str
    summary: str
    notify: tuple[str, ...]
    qualifier: str = ""

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.subject}" + (f":{self.qualifier}" if self.qualifier else "")


def evaluate(
    previous: AlertState,
    snap: Snapshot,
    now: float,
    rules: Sequence[FlowRules],
    *,
    resolve_after: float = RESOLVE_AFTER,
) -> tuple[AlertState, list[Notification]]:
    """The new state and what to send, from the previous state, a snapshot and the time.
    A firing alert resolves once its condition has been clear for `resolve_after` seconds."""
    horizons = {r.flow: max(r.alerts.failure_rate.window, r.alerts.backlog.window) for r in rules}
    state = _observe(previous, snap.flows, now, horizons)
    holds: dict[str, _Holds] = {}

    def found(h: _Holds) -> None:
        known = holds.get(h.key)
        if known is None:
            holds[h.key] = h
        else:  # a system rule reached through several flows: notify all of theirs
            merged = tuple(sorted(set(known.notify) | set(h.notify)))
            holds[h.key] = replace(known, notify=merged)

    statuses = {f.flow: f for f in snap.flows}
    systems = {s.system: s for s in snap.systems}
    for r in rules:
        status = statuses.get(r.flow)
        if status is not None:
            for h in _flow_conditions(r, status, state, now):
                found(h)
        for h in _system_conditions(r, systems, now):
            found(h)
    for c in snap.checks:
        for h in _check_conditions(c):
            found(h)

    firing: dict[str, Alert] = {}
    notifications: list[Notification] = []
    for key, h in holds.items():
        was = previous.firing.get(key)
        if was is None:
            alert = Alert(
                h.rule, h.subject, SEVERITY[h.rule], h.summary, now, h.notify, h.qualifier
            )
            notifications.append(Notification("firing", alert))
        else:
            alert = replace(was, summary=h.summary, notify=h.notify)
        firing[key] = alert
    resolved: list[Alert] = []
    clearing: dict[str, float] = {}
    for key, a in previous.firing.items():
        if key in holds:
            continue
        clear_since = previous.clearing.get(key, now)
        if now - clear_since >= resolve_after:
            resolved.append(replace(a, resolved_at=now))
        else:
            firing[key] = a
            clearing[key] = clear_since
    notifications.extend(Notification("resolved", a) for a in resolved)
    history = (*reversed(resolved), *previous.resolved)[:HISTORY]
    return replace(state, firing=firing, resolved=history, clearing=clearing), notifications


# --- what the counts say over time ---------------------------------------------------------------


def _observe(
    previous: AlertState, flows: Iterable[FlowStatus], now: float, horizons: Mapping[str, float]
) -> AlertState:
    """Fold this snapshot's counts into the samples, the last-event times and the hours.
    Samples are kept for the flow's longest window (`horizons`), and one older."""
    samples = dict(previous.samples)
    last = dict(previous.last)
    last_event = dict(previous.last_event)
    hour = dict(previous.hour)
    volume = {f: dict(h) for f, h in previous.volume.items()}
    this_hour = int(now // HOUR) * HOUR
    for status in flows:
        name = status.flow
        sample = Sample(now, status.total, status.count("delivered"), status.count("dead"))
        before = last.get(name)
        new = 0 if before is None else max(0, sample.total - before.total)
        if before is None or new:
            last_event[name] = now
        watched = 0.0 if before is None else now - before.at
        start, count, seen = hour.get(name, (this_hour, 0, 0.0))
        if start != this_hour:
            if seen >= COVERED * HOUR:
                volume.setdefault(name, {})[start] = count
            start, count, seen = this_hour, 0, 0.0
            watched = min(watched, now - this_hour)
        hour[name] = (start, count + new, seen + (watched if 0 < watched <= GAP else 0.0))
        kept = samples.get(name, ())
        if not kept or now - kept[-1].at >= SAMPLE_EVERY:
            kept = (*kept, sample)
        horizon = now - horizons.get(name, 900.0)
        older = [i for i, s in enumerate(kept) if s.at <= horizon]
        samples[name] = kept[older[-1] :] if older else kept
        last[name] = sample
        history = volume.get(name)
        if history:
            volume[name] = {h: n for h, n in history.items() if h >= now - 9 * WEEK}
    return replace(
        previous, samples=samples, last=last, last_event=last_event, hour=hour, volume=volume
    )


def _since(state: AlertState, flow: str, window: float, now: float) -> Sample | None:
    """The newest sample at least `window` old, else the oldest (the window is partly seen)."""
    kept = state.samples.get(flow, ())
    older = [s for s in kept if s.at <= now - window]
    if older:
        return older[-1]
    return kept[0] if kept else None


# --- the rules --------------------------------------------------------------------------------


def _flow_conditions(
    r: FlowRules, status: FlowStatus, state: AlertState, now: float
) -> Iterable[_Holds]:
    a = r.alerts
    subject = f"flow:{r.flow}"
    current = state.last[r.flow]

    dead = status.count("dead")
    if a.dead_letters.enabled and dead:
        summary = f"{plural(dead, 'dead letter')}{since_text(status.dead_since, now)}"
        yield _Holds("dead_letters", subject, summary, r.notify)

    rate = a.failure_rate
    base = _since(state, r.flow, rate.window, now)
    if rate.enabled and base is not None:
        went_dead = max(0, current.dead - base.dead)
        settled = max(0, current.delivered - base.delivered) + went_dead
        if settled >= rate.min_settled and went_dead / settled > rate.above:
            span = duration_text(min(rate.window, now - base.at))
            yield _Holds(
                "failure_rate",
                subject,
                f"failure rate {went_dead / settled:.0%} over {span} "
                f"({went_dead} of {settled} dead)",
                r.notify,
            )

    limit = a.sla.within if a.sla.within is not None else r.sla
    age = status.age(now)
    if a.sla.enabled and age is not None and age > limit:
        summary = f"oldest pending {duration_text(age)}, SLA {duration_text(limit)}"
        yield _Holds("sla", subject, summary, r.notify)

    if a.backlog.enabled:
        text = _backlog(r, status, state, now)
        if text:
            yield _Holds("backlog", subject, text, r.notify)

    if a.silence.enabled:
        text = _silence(r, state, now)
        if text:
            yield _Holds("silence", subject, text, r.notify)

    if a.volume.enabled:
        text = _volume(r, state, now)
        if text:
            yield _Holds("volume", subject, text, r.notify)


def _backlog(r: FlowRules, status: FlowStatus, state: AlertState, now: float) -> str | None:
    rule = r.alerts.backlog
    waiting = status.open
    if rule.above is not None:
        return f"backlog {waiting:,} open, limit {rule.above:,}" if waiting > rule.above else None
    if waiting < rule.min:
        return None
    base = _since(state, r.flow, rule.window, now)
    if base is None or now - base.at < min(rule.window, 60.0):
        return None  # too little seen to know the pace
    span = now - base.at
    pace = max(0, state.last[r.flow].delivered - base.delivered) / span
    if pace <= 0:
        return f"backlog {waiting:,} open, none delivered in {duration_text(span)}"
    clears = waiting / pace
    if clears <= r.sla:
        return None
    return (
        f"backlog {waiting:,} open; at {pace:.1f}/s it clears in {duration_text(clears)}, "
        f"SLA {duration_text(r.sla)}"
    )


def _noun(events: Sequence[str]) -> str:
    entities = {e.partition(".")[0] for e in events}
    if len(entities) != 1:
        return "events"
    entity = entities.pop()
    return _NOUNS.get(entity, f"{entity} events")


def _silence(r: FlowRules, state: AlertState, now: float) -> str | None:
    rule = r.alerts.silence
    zone = ZoneInfo(rule.timezone)
    local = datetime.fromtimestamp(now, zone)
    start, end = hours(rule.hours)
    minute = local.hour * 60 + local.minute
    if DAYS[local.weekday()] not in rule.days or not start <= minute < end:
        return None
    opened = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() + start * 60
    yesterday = DAYS[(local.weekday() - 1) % 7]
    if (start, end) == (0, 24 * 60) and yesterday in rule.days:
        opened = 0.0  # the schedule ran on through midnight: the silence did too
    quiet_since = max(state.last_event.get(r.flow, now), opened)
    quiet = now - quiet_since
    if quiet <= rule.after:
        return None
    always = (start, end) == (0, 24 * 60) and len(set(rule.days)) == 7
    where = f" in {rule.label}" if rule.label else "" if always else " within its schedule"
    return f"no {_noun(r.events)} for {duration_text(quiet)}{where}"


def _volume(r: FlowRules, state: AlertState, now: float) -> str | None:
    """The last completed hour against the same hour of past weeks."""
    rule = r.alerts.volume
    history = state.volume.get(r.flow, {})
    last_hour = int(now // HOUR) * HOUR - HOUR
    if last_hour not in history:
        return None
    past = [history[h] for w in range(1, rule.weeks + 1) if (h := last_hour - w * WEEK) in history]
    if not past:
        return None
    usual = sum(past) / len(past)
    if usual < rule.min:
        return None
    count = history[last_hour]
    share = count / usual
    if share >= rule.below and (rule.above is None or share <= rule.above):
        return None
    ended = time.strftime("%H:%M", time.localtime(last_hour + HOUR))
    return (
        f"{count:,} {_noun(r.events)} in the hour to {ended}, usually {usual:,.0f} "
        f"({share:.0%}, same hour of the last {plural(len(past), 'week')})"
    )


def _system_conditions(
    r: FlowRules, systems: Mapping[str, SystemStatus], now: float
) -> Iterable[_Holds]:
    a = r.alerts
    target = systems.get(r.target)
    if a.circuit.enabled and target is not None:
        state = circuit(target)
        if state == "open":
            yield _Holds(
                "circuit",
                f"system:{r.target}",
                f"circuit open: deliveries to {r.target} are held",
                r.notify,
            )
        elif state == "half-open":
            yield _Holds(
                "circuit",
                f"system:{r.target}",
                f"circuit half-open: probing whether {r.target} is back",
                r.notify,
            )
    if a.deprecation.enabled:
        for name in dict.fromkeys((r.source, r.target)):
            system = systems.get(name)
            for warning in system.warnings if system else ():
                yield _Holds(
                    "deprecation",
                    f"system:{name}",
                    f"{name} warns: {warning}",
                    r.notify,
                    qualifier=hashlib.sha256(warning.encode()).hexdigest()[:10],
                )
    source = systems.get(r.source)
    if a.rejected.enabled and source is not None and source.rejected:
        yield _Holds(
            "rejected",
            f"system:{r.source}",
            f"{plural(source.rejected, 'rejected message')} from {r.source}"
            f"{since_text(source.rejected_since, now)}",
            r.notify,
        )


def _check_conditions(c: CheckStatus) -> Iterable[_Holds]:
    """Drift until a run of the check is clean; a check that cannot run until one can."""
    if c.error:
        yield _Holds(
            "check_failed",
            f"check:{c.check}",
            f"check {c.check} could not run: {c.error}",
            c.notify,
        )
    elif c.found:
        kinds = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in c.counts.items() if n)
        yield _Holds(
            "drift",
            f"check:{c.check}",
            f"check {c.check}: drift on {c.found} keys ({kinds})",
            c.notify,
        )


async def check_statuses(journal: Any, project: Project) -> list[CheckStatus]:
    """The latest run of each of the project's checks (none yet: not in the list)."""
    runs = getattr(journal, "check_runs", None)
    if runs is None or not project.checks:
        return []
    latest: dict[str, dict[str, Any]] = {}
    for row in await runs(None, limit=50 * len(project.checks)):
        latest.setdefault(str(row["check_name"]), row)
    statuses = []
    for name, spec in project.checks.items():
        row = latest.get(name)
        if row is None:
            continue
        counts = {
            k: int(row[k]) for k in ("missing_left", "missing_right", "mismatch", "duplicate")
        }
        statuses.append(
            CheckStatus(name, sum(counts.values()), counts, row["error"], tuple(spec.notify))
        )
    return statuses


# --- in the journal -----------------------------------------------------------------------------


async def load_state(journal: Journal) -> AlertState:
    return AlertState.load(
        await journal.get_cursor(STATE_CURSOR), await journal.get_cursor(VOLUME_CURSOR)
    )


async def current(journal: Journal) -> list[Alert]:
    """The firing alerts, critical first, then the longest firing first."""
    state = await _stored(journal)
    return sorted(state.firing.values(), key=lambda a: (a.severity != "critical", a.since))


async def resolved(journal: Journal) -> list[Alert]:
    """The last resolved alerts (at most `HISTORY`), newest first."""
    return list((await _stored(journal)).resolved)


async def _stored(journal: Journal) -> AlertState:
    try:
        return AlertState.load(await journal.get_cursor(STATE_CURSOR))
    except (ValueError, KeyError, TypeError):
        # A page must show, even if the state is unreadable; the loop logs and rewrites it.
        log.exception("the alert state in the journal cannot be read")
        return AlertState()


class AlertLoop:
    """Evaluate every `interval` seconds, keep the state in the journal, send notifications.

    Nothing raises out of `run()`: a failed round is logged and the next one tries again;
    a notifier that fails is retried with backoff (see `notify.py`), then logged."""

    def __init__(
        self,
        journal: Journal,
        project: Project,
        *,
        interval: float = 15.0,
        notifiers: Mapping[str, Notifier] | None = None,
        clock: Callable[[], float] = time.time,
        leading: asyncio.Event | None = None,
        resolve_after: float = RESOLVE_AFTER,
    ) -> None:
        """`leading`: set while this process is the scheduler; rounds wait for it (on
        PostgreSQL several processes run the loop and only the leader evaluates)."""
        self.journal = journal
        self.project = project
        self.interval = interval
        self.rules = FlowRules.of(project)
        self.notifiers = (
            dict(notifiers)
            if notifiers is not None
            else build_notifiers(project.notifiers, hub=project.settings.name)
        )
        self.clock = clock
        self.leading = leading
        self.resolve_after = resolve_after
        self._volume_written: str | None = None

    async def run(self) -> None:
        try:
            while True:
                if self.leading is not None:
                    await self.leading.wait()
                await self.tick()
                await asyncio.sleep(self.interval)
        finally:
            await self.close()

    async def close(self) -> None:
        """Release the notifiers' connections (`run` does this when it ends)."""
        for notifier in self.notifiers.values():
            with contextlib.suppress(Exception):
                await notifier.close()

    async def tick(self) -> list[Notification]:
        """One round; the notifications it sent (or tried to). Never raises."""
        try:
            notifications = await self._evaluate()
        except Exception:
            log.exception("alert evaluation failed; trying again next round")
            return []
        await self.send(notifications)
        return notifications

    async def _evaluate(self) -> list[Notification]:
        previous = await load_state(self.journal)
        flows, systems = await snapshot(self.journal, self.project)
        checks = await check_statuses(self.journal, self.project)
        state, notifications = evaluate(
            previous,
            Snapshot(flows, systems, checks),
            self.clock(),
            self.rules,
            resolve_after=self.resolve_after,
        )
        main, volume = state.dump()
        # Kept before sending: a restart must not send again what was sent.
        await self.journal.set_cursor(STATE_CURSOR, main)
        if volume != self._volume_written:
            await self.journal.set_cursor(VOLUME_CURSOR, volume)
            self._volume_written = volume
        for n in notifications:
            log.warning(
                f"alert {n.event}",
                extra={
                    "rule": n.alert.rule,
                    "subject": n.alert.subject,
                    "summary": n.alert.summary,
                },
            )
        return notifications

    async def send(self, notifications: Sequence[Notification]) -> None:
        sends = [
            self._send(self.notifiers[name], name, n)
            for n in notifications
            for name in n.alert.notify
            if name in self.notifiers
        ]
        if sends:
            await asyncio.gather(*sends)

    async def _send(self, notifier: Notifier, name: str, n: Notification) -> None:
        try:
            await notifier.deliver(n)
        except Exception:
            log.exception(
                "notifier gave up", extra={"notifier": name, "alert": n.alert.key, "event": n.event}
            )
