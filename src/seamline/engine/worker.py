"""Workers: claim due deliveries within the target's budget, map, send, classify, settle.

Each target system gets `loops` claim→deliver→settle loops, so that one loop's journal work
overlaps another's network wait. The outcome of every attempt is classified through the error
tree (see `errors.py`) into a settlement:

| outcome                | delivery becomes                          | attempt | breaker |
|------------------------|-------------------------------------------|---------|---------|
| delivered              | delivered (+ cross-refs, version)         | yes     | success |
| ThrottledError         | pending after Retry-After                 | no      | -       |
| TransientError         | pending on the schedule; dead if spent    | yes     | failure |
| ... and circuit opens  | pending (held), never dead                | no      | failure |
| UnknownOutcomeError    | transient if idempotent target, else review | yes   | failure |
| Permanent / Contract   | dead, with the reason                     | yes     | -       |
| Skip                   | skipped, with the reason                  | no      | -       |
| any other exception    | a bug: pending on the schedule, traceback | yes     | -       |
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from seamline.connectors.base import Exchange, RawSink, Sink
from seamline.connectors.shape import Shapes
from seamline.engine.budget import Budget
from seamline.engine.router import Router
from seamline.errors import (
    ContractError,
    PermanentError,
    SeamlineError,
    Skip,
    ThrottledError,
    TransientError,
    UnknownOutcomeError,
)
from seamline.journal.base import (
    AttemptRecord,
    Claimed,
    DeliveryState,
    Journal,
    Settlement,
    StoredMessage,
    Xref,
    storable,
)
from seamline.observe.metrics import METRICS, FlowCounters, Metrics
from seamline.observe.trace import HEADER as TRACE_HEADER
from seamline.observe.trace import Propagation, Tracer, incoming
from seamline.project import Flow, Project

PROPAGATION = Propagation()
log = logging.getLogger("seamline.worker")
IDLE_POLL = 0.5
DEFAULT_THROTTLE = 1.0


@dataclass
class WorkerStats:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    held: int = 0
    fenced: int = 0


def idempotency_key(claimed: Claimed) -> str:
    """Stable across attempts and replays of one delivery; new only for an edited payload."""
    key = f"sl-{claimed.id}"
    if claimed.payload is not None:
        key += "-" + hashlib.sha256(claimed.payload).hexdigest()[:12]
    return key


def forwarded_fields(flow: Flow, sink: Sink | None) -> frozenset[str] | None:
    """For a flow without mapping to a sink that sends bytes as they are: the top-level
    fields of the data the sink reads itself (a path template). None for every other flow:
    its body is mapped and encoded."""
    if flow.mapping.identity and isinstance(sink, RawSink):
        return sink.raw_fields(flow.spec.target.operation, flow.target_options)
    return None


class TargetWorker:
    """The delivery loops of one target system."""

    def __init__(
        self,
        *,
        target: str,
        project: Project,
        journal: Journal,
        router: Router,
        sink: Sink,
        budget: Budget,
        owner: str,
        batch: int,
        lease: float,
        stats: WorkerStats,
        metrics: Metrics | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.target = target
        self.shapes: Shapes | None = None
        """Learns the shape of the target's answers (vendor drift), when the hub gives one."""
        self.versions: dict[tuple[str, str], Flow] = {
            (f.name, f.version): f for f in project.flows.values()
        }
        """Every flow version this process ran, by (flow, version): shared with the hub."""
        self.tracer = tracer or PROPAGATION
        """Carries an incoming `traceparent` on to the target (and makes spans if enabled)."""
        self.project = project
        self.journal = journal
        self.router = router
        self.sink = sink
        self.raw_sink = sink if isinstance(sink, RawSink) else None
        """The sink, when it can send a flow's data as the bytes received."""
        self._raw_fields: dict[tuple[str, str], frozenset[str] | None] = {}
        self.budget = budget
        self.owner = owner
        self.batch = batch
        self.lease = lease
        self.stats = stats
        self.wake = asyncio.Event()
        self._given_back = asyncio.Event()
        self._given_back_count = 0
        """Times a loop of this process gave requests back to the budget (and set the event)."""
        self.warnings: list[str] = []
        """What the target said that an operator should see (deprecations, versions)."""
        self.recovered = False
        """Set when this target's circuit closed again; the hub then releases held deliveries."""
        self._stopping = False
        self._metrics = metrics or METRICS
        self._attempt_seconds = self._metrics.attempts(target)
        self._counters: dict[str, FlowCounters] = {}

    def stop(self) -> None:
        self._stopping = True
        self.wake.set()
        self._given_back.set()

    async def run_loop(self) -> None:
        while not self._stopping:
            given_back = self._given_back_count
            try:
                grant = await self.budget.acquire(self.batch)
            except Exception:
                log.exception("the budget of %s is out of reach", self.target)
                await self._sleep(1.0)
                continue
            if grant.n == 0:
                if grant.wait == 0 and grant.circuit == "closed":
                    await self._capacity(since=given_back)
                else:
                    await self._sleep(grant.wait or IDLE_POLL)
                continue
            claimed: list[Claimed] = []
            pause = 0.0
            try:
                claimed = await self.journal.claim(
                    target=self.target, owner=self.owner, limit=grant.n, lease=self.lease
                )
                if claimed:
                    await self._deliver_batch(claimed)
                else:
                    pause = IDLE_POLL
            except Exception:
                # Unclaimed: nothing happened. Claimed: the outcomes are not recorded; the leases
                # expire and the deliveries go again (or to review where a repeat is unsafe).
                log.exception("claiming or recording failed", extra={"target": self.target})
                pause = 1.0
            finally:
                await self._return(grant.n, unused=grant.n - len(claimed))
            if pause:
                await self._sleep(pause)

    async def _deliver_batch(self, claimed: list[Claimed]) -> None:
        settlements = await asyncio.gather(*(self.deliver(c) for c in claimed))
        recorded = await self.journal.settle(settlements)
        fenced = recorded.count(False)
        if fenced:
            # This process was paused past its leases; another worker owns them now.
            self.stats.fenced += fenced
            log.warning(
                "outcomes not recorded: the leases were taken over",
                extra={"target": self.target, "deliveries": fenced},
            )
        _log_outcomes(claimed, settlements, recorded)
        self._count(claimed, settlements, recorded)

    def _count(
        self, claimed: list[Claimed], settlements: list[Settlement], recorded: list[bool]
    ) -> None:
        """Bump the metrics for the outcomes the journal recorded."""
        for c, s, kept in zip(claimed, settlements, recorded, strict=True):
            if s.attempt is not None:
                self._attempt_seconds.observe(s.attempt.duration)
            if not kept:
                continue
            counters = self._counters.get(c.flow)
            if counters is None:
                counters = self._counters[c.flow] = self._metrics.flow(c.flow, self.target)
            if s.state == "delivered":
                counters.delivered.inc()
                counters.latency.observe(max(0.0, s.due_at - c.created_at))
            elif s.state == "dead":
                counters.dead.inc()
            elif s.state == "pending" and s.spent:
                counters.retried.inc()

    async def _return(self, n: int, *, unused: int) -> None:
        try:
            if await self.budget.returned(n, unused=unused):
                self.recovered = True
            self._given_back_count += 1
            self._given_back.set()
        except Exception:
            # The grant counts against the concurrency cap until its lease runs out.
            log.exception("the budget of %s is out of reach", self.target)

    async def _capacity(self, *, since: int) -> None:
        """The target's concurrency cap is taken: wait until a loop of this process gives
        requests back (`since`: how often loops had when this one asked), or `IDLE_POLL`
        (other processes give back too). Not for new work: the cap, not a lack of work,
        holds this loop. Woken instead by every notification of new deliveries, each
        held-back loop asked the budget again at once, for nothing: with 4 worker processes
        on PostgreSQL ~290 such transitions a second, each queueing on the budget's row lock
        (bench/README.md, stop 23)."""
        if self._given_back_count != since or self._stopping:
            return  # given back while this loop asked: try again now
        self._given_back.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._given_back.wait(), timeout=IDLE_POLL)

    async def _sleep(self, seconds: float) -> None:
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=max(0.01, min(seconds, IDLE_POLL)))

    async def deliver(self, claimed: Claimed) -> Settlement:
        # A delivery finishes on the flow version it was routed with, also after an apply
        # made a newer one live (the hub keeps the versions it ran in `versions`).
        flow = self.versions.get((claimed.flow, claimed.flow_version)) or self.project.flows.get(
            claimed.flow
        )
        now = time.time()
        if flow is None:
            return self._settle(
                claimed,
                "dead",
                0,
                now,
                "contract",
                f"flow '{claimed.flow}' is no longer in the project",
                None,
            )
        started = time.time()
        raw: bytes | None = None
        try:
            if claimed.payload is not None:
                keys: Mapping[str, str] = {}
                event_data = orjson.loads(claimed.payload)
            else:
                fields = self._forwarded(flow)
                sparse = (
                    None if fields is None else self.router.sparse_event(_stored(claimed), fields)
                )
                if sparse is not None:
                    event, raw = sparse
                else:
                    event = self.router.event(_stored(claimed))
                keys, event_data = event.keys, event.data
            body = event_data if raw is not None else flow.mapping.apply(event_data)
        except Skip as skip:
            return self._settle(claimed, "skipped", 0, now, None, skip.reason, None)
        except ContractError as exc:
            attempt = _attempt(started, None, "contract", str(exc), flow)
            self.stats.dead += 1
            return self._settle(claimed, "dead", 1, now, "contract", str(exc), attempt)
        except Exception as exc:  # a bug in a mapping function or in our code: keep the traceback
            detail = "".join(traceback.format_exception(exc))[-4000:]
            return self._retry(
                claimed, flow, "bug", f"bug: {exc!r}", _attempt(started, None, "bug", detail, flow)
            )

        try:
            with self.tracer.attempt(
                incoming(claimed.headers),
                flow=claimed.flow,
                target=self.target,
                delivery=claimed.id,
                attempt=claimed.attempts + 1,
            ) as span:
                headers = {TRACE_HEADER: span.traceparent}
                operation = flow.spec.target.operation
                if raw is not None and self.raw_sink is not None:
                    exchange = await self.raw_sink.send_raw(
                        operation,
                        raw,
                        body,
                        options=flow.target_options,
                        idempotency_key=idempotency_key(claimed),
                        headers=headers,
                    )
                else:
                    exchange = await self.sink.send(
                        operation,
                        body,
                        options=flow.target_options,
                        idempotency_key=idempotency_key(claimed),
                        headers=headers,
                    )
                outcome = "delivered" if exchange.error is None else type(exchange.error).__name__
                span.outcome(outcome, exchange.status)
        except ContractError as exc:
            attempt = _attempt(started, None, "contract", str(exc), flow)
            self.stats.dead += 1
            return self._settle(claimed, "dead", 1, now, "contract", str(exc), attempt)
        if exchange.warnings:
            self.warnings.extend(w for w in exchange.warnings if w not in self.warnings)
        if self.shapes is not None and exchange.response:
            self._sample_answer(flow.spec.target.operation, exchange.response, claimed.id)
        body_at = None
        if raw is not None and exchange.request.endswith(raw):
            body_at = _span(claimed.body, raw)
        return self._classify(claimed, flow, started, exchange, keys, body_at)

    def _forwarded(self, flow: Flow) -> frozenset[str] | None:
        """For a flow without mapping to a sink that can send bytes: the fields of the data
        the sink reads itself. None for every other flow (its body is mapped and encoded)."""
        version = (flow.name, flow.version)
        if version not in self._raw_fields:
            self._raw_fields[version] = forwarded_fields(flow, self.raw_sink)
        return self._raw_fields[version]

    def _sample_answer(self, operation: str, response: bytes, delivery: int) -> None:
        """Learn the shape of the target's answers (sampled); a change is a vendor warning."""
        assert self.shapes is not None
        kind = f"answers to {operation}"
        if not self.shapes.due(self.target, kind):
            return
        try:
            answer = orjson.loads(response)
        except orjson.JSONDecodeError:
            return  # not one JSON document (several calls, or text): nothing to learn
        for drift in self.shapes.observe(self.target, kind, answer, f"delivery {delivery}"):
            if drift.text() not in self.warnings:
                self.warnings.append(drift.text())

    def _classify(
        self,
        claimed: Claimed,
        flow: Flow,
        started: float,
        ex: Exchange,
        keys: Mapping[str, str],
        span: tuple[int, int] | None = None,
    ) -> Settlement:
        error = ex.error
        now = time.time()
        if error is None:
            self.budget.succeeded()
            self.stats.delivered += 1
            attempt = _attempt(started, ex, "delivered", None, flow, span)
            return Settlement(
                claimed.id,
                claimed.token,
                "delivered",
                1,
                now,
                None,
                None,
                attempt,
                xrefs=self._xrefs(claimed, ex.refs, keys),
                flow=claimed.flow,
                key=claimed.key,
                applied_version=claimed.version,
            )
        if isinstance(error, ThrottledError):
            wait = error.retry_after if error.retry_after is not None else DEFAULT_THROTTLE
            self.budget.hold(wait)
            self.stats.held += 1
            attempt = _attempt(started, ex, "throttled", str(error), flow, span)
            return self._settle(claimed, "pending", 0, now + wait, "throttled", str(error), attempt)
        if isinstance(error, TransientError):
            unsafe = isinstance(error, UnknownOutcomeError) and not self.sink.idempotent(
                flow.spec.target.operation, {}
            )
            tripped = self.budget.failed()
            if unsafe:
                attempt = _attempt(started, ex, "unknown", str(error), flow, span)
                return self._settle(
                    claimed,
                    "review",
                    1,
                    now,
                    "unknown",
                    f"outcome unknown, target is not idempotent: {error}",
                    attempt,
                )
            kind = "unknown" if isinstance(error, UnknownOutcomeError) else "transient"
            if tripped:
                # The circuit is open: this delivery waits out the outage without burning attempts.
                self.stats.held += 1
                attempt = _attempt(started, ex, "held", str(error), flow, span)
                wait = max(self.budget.retry_in(), flow.retry.delay(1))
                return self._settle(claimed, "pending", 0, now + wait, "held", str(error), attempt)
            return self._retry(
                claimed,
                flow,
                kind,
                str(error),
                _attempt(started, ex, kind, str(error), flow, span),
                retry_after=error.retry_after,
            )
        kind = "contract" if isinstance(error, ContractError) else "permanent"
        if not isinstance(error, PermanentError | ContractError | SeamlineError):
            kind = "bug"
        self.stats.dead += 1
        return self._settle(
            claimed,
            "dead",
            1,
            now,
            kind,
            str(error),
            _attempt(started, ex, kind, str(error), flow, span),
        )

    def _retry(
        self,
        claimed: Claimed,
        flow: Flow,
        kind: str,
        error: str,
        attempt: AttemptRecord,
        *,
        retry_after: float | None = None,
    ) -> Settlement:
        now = time.time()
        attempts = claimed.attempts + 1
        exhausted = flow.retry.exhausted(attempts, age=now - claimed.created_at)
        if exhausted:
            self.stats.dead += 1
            return self._settle(claimed, "dead", 1, now, kind, f"{error}; {exhausted}", attempt)
        self.stats.retried += 1
        due = now + flow.retry.delay(attempts, retry_after=retry_after)
        return self._settle(claimed, "pending", 1, due, kind, error, attempt)

    def _settle(
        self,
        claimed: Claimed,
        state: DeliveryState,
        spent: int,
        due_at: float,
        error_class: str | None,
        error: str | None,
        attempt: AttemptRecord | None,
    ) -> Settlement:
        return Settlement(
            claimed.id, claimed.token, state, spent, due_at, error_class, _readable(error), attempt
        )

    def _xrefs(
        self, claimed: Claimed, refs: Mapping[str, str], keys: Mapping[str, str]
    ) -> list[Xref]:
        out = []
        for entity, other in refs.items():
            mine = keys.get(entity, claimed.key)
            if mine is not None:
                out.append(Xref(entity, claimed.system, mine, self.target, other))
        return out


def _log_outcomes(
    claimed: list[Claimed], settlements: list[Settlement], recorded: list[bool]
) -> None:
    """Dead letters, reviews and fenced outcomes are worth a line each; deliveries are not."""
    for c, s, kept in zip(claimed, settlements, recorded, strict=True):
        if not kept:
            log.warning(
                "outcome not recorded: another worker holds the lease",
                extra={"delivery_id": c.id, "message_id": c.message_id, "flow": c.flow},
            )
        elif s.state in ("dead", "review"):
            log.warning(
                f"delivery {'dead' if s.state == 'dead' else 'needs review'}",
                extra={
                    "delivery_id": c.id,
                    "message_id": c.message_id,
                    "flow": c.flow,
                    "error_class": s.error_class,
                    "error": s.error,
                },
            )


def _stored(claimed: Claimed) -> StoredMessage:
    return StoredMessage(claimed.message_id, claimed.system, "", 0.0, claimed.headers, claimed.body)


def _attempt(
    started: float,
    ex: Exchange | None,
    kind: str,
    error: str | None,
    flow: Flow,
    span: tuple[int, int] | None = None,
) -> AttemptRecord:
    request = ex.request if ex else None
    if request is not None and span is not None:  # the body is the message's, kept there
        request = request[: len(request) - (span[1] - span[0])]
    return AttemptRecord(
        started_at=started,
        duration=ex.duration if ex else time.time() - started,
        request=request,
        status=ex.status if ex else None,
        response=ex.response if ex else None,
        classification=kind,
        error=_readable(error),
        flow_version=flow.version,
        body_span=span if request is not None else None,
    )


def _span(body: bytes, part: bytes) -> tuple[int, int] | None:
    """Where `part` lies in `body`. Looked for from the end first: a webhook's data is
    mostly its last field, and a whole search costs ~2 us for 3 KB."""
    start = body.rfind(part[:64])
    if start < 0 or not body.startswith(part, start):
        start = body.find(part)
        if start < 0:
            return None
    return start, start + len(part)


def _readable(error: str | None) -> str | None:
    """An error as journaled (it may quote a UTF-16 error page, NULs and all)."""
    return None if error is None else storable(error)
