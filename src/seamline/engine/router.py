"""Decode and route: each journaled message becomes its deliveries, or is rejected with why.

The source connector decodes the raw bytes into a canonical event; every flow subscribed to
that event (and passing its filter) gets one delivery, carrying its ordering key and the
source version used to skip stale updates. A payload that breaks the source contract is
`rejected`: visible, counted, and replayable after a fix.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from seamline.connectors.base import Event, Source, SparseSource
from seamline.connectors.shape import Shapes
from seamline.engine.mapping import first_field, read_path
from seamline.errors import ContractError
from seamline.journal.base import NewDelivery, NewMessage, Routing, StoredMessage, storable
from seamline.project import HUB_SYSTEM, Flow, Project

log = logging.getLogger("seamline.router")
RECENT_EVENTS = 4096
HUB = HUB_SYSTEM
"""The system name of messages the hub makes itself (heals of a check): their body is a
canonical event, `{"event": ..., "data": ...}`, and their `flow` header names the one flow
they go to. No project system may have this name, and ingest never journals under it."""


def source_version(value: Any) -> float:
    """A sortable number from a source's version: a number, or an ISO-8601 timestamp."""
    if isinstance(value, bool):
        raise ContractError(f"{value!r} is not a version or timestamp")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ContractError(
                f"{value!r} is not a version number or ISO-8601 timestamp"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.timestamp()
    raise ContractError(f"{value!r} is not a version or timestamp")


def _texts(values: Mapping[str, str]) -> dict[str, str]:
    return {storable(k): storable(v) for k, v in values.items()}


def _hub_event(message: StoredMessage) -> Event:
    try:
        decoded = orjson.loads(message.body)
        return Event(str(decoded["event"]), dict(decoded["data"]), dict(decoded.get("keys") or {}))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ContractError(f"a hub message is {{event, data}} JSON ({exc!r})") from None


def headers_of(raw: bytes) -> dict[str, str]:
    decoded = orjson.loads(raw) if raw else {}
    return decoded if isinstance(decoded, dict) else {}


def offline_router(project: Project) -> Router:
    """A router for work outside the hub (flow tests, previews, edits): the project's sources,
    every flow taken as safe to retry (nothing is sent)."""
    sourced = {f.spec.source.system for f in project.flows.values()}
    sources = {
        n: s.connector.source(n, s.options) for n, s in project.systems.items() if n in sourced
    }
    return Router(project, sources, lambda _flow: True)


class Router:
    """Turns stored messages into routings, using the project's sources and flows."""

    def __init__(
        self,
        project: Project,
        sources: Mapping[str, Source],
        sinks_safe: Callable[[Flow], bool],
        *,
        shapes: Shapes | None = None,
        forwards: Callable[[Flow], bool] | None = None,
    ) -> None:
        """`forwards(flow)`: the flow sends its data as received (its worker reads it itself)."""
        self._project = project
        self._fields: dict[str, frozenset[str]] = {}
        self._forwards = forwards
        self._forwarded_only: dict[str, bool] = {}
        self.sources = sources
        self._safe_retry = sinks_safe
        self.shapes = shapes
        """Learns the shape of what each system sends, from sampled messages (vendor drift)."""
        self.drift: dict[str, dict[str, float]] = {}
        """Drift found, per system: the warning's text and when it was first seen."""
        self.keep_events = True
        """Keep routed events for `event` (below); off where another process delivers."""
        # Events just routed, by message id, so the worker that sends them soon after need not
        # decode the same bytes again. Only messages with one delivery (no event is shared
        # between flows), popped on use, bounded: a backlog simply decodes again.
        # (An OrderedDict: a dict emptied from its front scans the holes left there on every
        # `next(iter(...))`, 2.8 us a message at this bound, against 0.35 us.)
        self._recent: OrderedDict[int, Event] = OrderedDict()

    @property
    def project(self) -> Project:
        return self._project

    @project.setter
    def project(self, project: Project) -> None:
        self._project = project
        self._fields = {}
        self._forwarded_only = {}

    def routing_fields(self, system: str) -> frozenset[str]:
        """The top-level fields of a system's event data that routing reads: the ordering
        keys, stale versions and filters of the flows it feeds."""
        known = self._fields.get(system)
        if known is None:
            paths: list[str] = []
            for flow in self._project.flows.values():
                spec = flow.spec
                if spec.source.system != system:
                    continue
                paths.extend(spec.source.filter)
                if spec.ordering is not None:
                    paths.append(spec.ordering.key)
                if spec.stale is not None:
                    paths.append(spec.stale.version)
            known = self._fields[system] = frozenset(first_field(p) for p in paths)
        return known

    def _keeps(self, system: str) -> bool:
        """Whether routing keeps a system's events for the worker in this process: not when
        another process delivers, nor when every flow of the system forwards its data."""
        if not self.keep_events:
            return False
        forwarded = self._forwarded_only.get(system)
        if forwarded is None:
            flows = [f for f in self._project.flows.values() if f.spec.source.system == system]
            forwards = self._forwards
            forwarded = self._forwarded_only[system] = (
                forwards is not None and bool(flows) and all(forwards(f) for f in flows)
            )
        return not forwarded

    def decode(self, message: StoredMessage) -> Event:
        if message.system == HUB:
            return _hub_event(message)
        source = self.sources.get(message.system)
        if source is None:
            raise ContractError(f"system '{message.system}' is not (or no longer) in the project")
        return source.decode(headers_of(message.headers), message.body)

    def route_arriving(self, message: NewMessage) -> Routing:
        """The routing of a message about to be journaled (its `message_id` is 0: the journal
        gives the id). Its event is not kept: the worker that sends it reads it itself."""
        stored = StoredMessage(
            0, message.system, message.source_id, message.received_at, message.headers, message.body
        )
        return self.route(stored, keep=False)

    def route(self, message: StoredMessage, *, keep: bool | None = None) -> Routing:
        """The routing of a journaled message (`keep`: whether to keep its event for a worker
        in this process; by default, as `keep_events` and the system's flows say)."""
        try:
            if keep is None:
                keep = self._keeps(message.system)
            if keep:
                event = self.decode(message)
            else:  # no worker here will use the event: read what routing needs
                sparse = self.sparse_event(message, self.routing_fields(message.system))
                event = sparse[0] if sparse is not None else self.decode(message)
        except ContractError as exc:
            return Routing(message.id, None, rejected=storable(str(exc)))
        except Exception as exc:  # a bug in a decoder must not stop routing of the rest
            log.exception("decoder failed", extra={"message_id": message.id})
            reason = f"decoder failed ({exc!r}); replay after a fix"
            return Routing(message.id, None, rejected=storable(reason))
        if self.shapes is not None and self.shapes.due(message.system, event.name):
            self._sample(message, event.name)
        deliveries = []
        flows = self.project.flows_for(message.system, event.name)
        if message.system == HUB:
            named = self.project.flows.get(headers_of(message.headers).get("flow", ""))
            flows = [named] if named and event.name in named.spec.source.events else []
        try:
            for flow in flows:
                delivery = self.delivery(flow, event)
                if delivery is not None:
                    deliveries.append(delivery)
        except ContractError as exc:
            name, keys = storable(event.name), _texts(event.keys)
            return Routing(message.id, name, keys=keys, rejected=storable(str(exc)))
        if len(deliveries) == 1 and keep:
            self._recent[message.id] = event
            if len(self._recent) > RECENT_EVENTS:
                self._recent.popitem(last=False)
        name, keys = storable(event.name), _texts(event.keys)
        return Routing(message.id, name, keys=keys, deliveries=deliveries)

    def _sample(self, message: StoredMessage, kind: str) -> None:
        assert self.shapes is not None
        try:
            body = orjson.loads(message.body)
        except orjson.JSONDecodeError:
            return  # not JSON (a CSV row source decodes its own way): no shape to learn
        # Routed as it arrived, a message has no id yet: its sender's id says which it was.
        where = f"message {message.id}" if message.id else f"webhook {message.source_id}"
        for drift in self.shapes.observe(message.system, kind, body, where):
            text = drift.text()
            self.drift.setdefault(message.system, {}).setdefault(text, time.time())
            log.warning("vendor drift", extra={"system": message.system, "drift": text})

    def event(self, message: StoredMessage) -> Event:
        """The decoded event of a message about to be sent: from the recent ones, or decoded."""
        event = self._recent.pop(message.id, None)
        return event if event is not None else self.decode(message)

    def sparse_event(
        self, message: StoredMessage, fields: frozenset[str]
    ) -> tuple[Event, bytes] | None:
        """The event with only `fields` of its data decoded, and its data's JSON as received;
        None when the message's source cannot read it so. Raises ContractError."""
        if message.system == HUB:
            return None
        source = self.sources.get(message.system)
        if not hasattr(source, "decode_sparse"):
            return None
        self._recent.pop(message.id, None)
        sparse: SparseSource = source  # type: ignore[assignment]  # checked just above
        return sparse.decode_sparse(headers_of(message.headers), message.body, fields)

    def delivery(self, flow: Flow, event: Event) -> NewDelivery | None:
        """The delivery of `event` for `flow`; None when the flow's filter leaves it out.
        Raises ContractError when the event lacks the ordering key or version the flow needs."""
        spec = flow.spec
        for path, expected in spec.source.filter.items():
            if read_path(event.data, path) != expected:
                return None
        key = None
        if spec.ordering is not None:
            value = read_path(event.data, spec.ordering.key)
            if value is None:
                raise ContractError(
                    f"flow '{flow.name}' orders by '{spec.ordering.key}', which this "
                    f"{event.name} event does not have"
                )
            key = storable(str(value))
        version = None
        if spec.stale is not None:
            raw = read_path(event.data, spec.stale.version)
            if raw is None:
                raise ContractError(
                    f"flow '{flow.name}' skips stale updates by '{spec.stale.version}', which "
                    f"this {event.name} event does not have"
                )
            version = source_version(raw)
        return NewDelivery(
            flow=flow.name,
            flow_version=flow.version,
            target=spec.target.system,
            key=key,
            version=version,
            safe_retry=self._safe_retry(flow),
            coalesce=spec.coalesce,
            waits_for=spec.after,
        )
