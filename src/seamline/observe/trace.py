"""Traces across systems: W3C `traceparent` carried in and out, OpenTelemetry spans when enabled.

A webhook that arrives with a `traceparent` header keeps it in the journal with the message.
When a delivery of that message is sent, the request carries a `traceparent` of its own: the
same trace id, a new span id, so the target's traces join the sender's. That much always
happens, with no setting.

With `telemetry: {traces: {endpoint: http://collector:4318}}` in `seamline.yaml`, each
attempt is also an OpenTelemetry span (`deliver <flow>`, a child of the incoming trace, or a
trace of its own), with the flow, target, delivery id, attempt and outcome as attributes,
exported over OTLP/HTTP in batches by a background thread; the outgoing `traceparent` is then
that span's. An unreachable collector loses spans, never deliveries.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from random import getrandbits
from typing import Any, Protocol

import orjson

log = logging.getLogger("seamline.trace")
HEADER = "traceparent"
_FORMAT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse(value: str | None) -> TraceContext | None:
    """A valid version-00 `traceparent`, else None (all-zero ids are invalid, per W3C)."""
    match = _FORMAT.match((value or "").strip().lower())
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceContext(trace_id, span_id, flags)


def incoming(headers: bytes) -> TraceContext | None:
    """The trace context journaled with a message (its headers, as JSON), if any."""
    if b"traceparent" not in headers:  # most messages: no JSON decoding on the hot path
        return None
    try:
        kept = orjson.loads(headers)
    except orjson.JSONDecodeError:
        return None
    return parse(kept.get(HEADER)) if isinstance(kept, dict) else None


class Span(Protocol):
    """One attempt's span: what to send as `traceparent`, and its outcome when known."""

    traceparent: str

    def outcome(self, classification: str, status: int | None) -> None: ...


class Tracer(Protocol):
    def attempt(
        self, parent: TraceContext | None, *, flow: str, target: str, delivery: int, attempt: int
    ) -> contextlib.AbstractContextManager[Span]: ...

    def close(self) -> None: ...


class _Propagated:
    """A span that is only its `traceparent`: its own context manager (no generator)."""

    __slots__ = ("traceparent",)

    def __init__(self, traceparent: str) -> None:
        self.traceparent = traceparent

    def outcome(self, classification: str, status: int | None) -> None:
        return None

    def __enter__(self) -> _Propagated:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class Propagation:
    """No spans: the trace id goes on with a new span id (a new trace when none came in)."""

    def attempt(
        self, parent: TraceContext | None, *, flow: str, target: str, delivery: int, attempt: int
    ) -> contextlib.AbstractContextManager[Span]:
        # Unique, not secret: ids from a fast generator, as OpenTelemetry's own generator
        # makes them (os.urandom cost a system call per attempt). All zeros is invalid.
        trace_id = parent.trace_id if parent else f"{getrandbits(128) or 1:032x}"
        flags = parent.flags if parent else "01"
        return _Propagated(TraceContext(trace_id, f"{getrandbits(64) or 1:016x}", flags).header())

    def close(self) -> None:
        return None


class OtelTracer:
    """Spans exported over OTLP/HTTP (the OpenTelemetry SDK's batch processor)."""

    def __init__(self, endpoint: str, *, service: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self._provider = TracerProvider(resource=Resource.create({"service.name": service}))
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=5)
        self._provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
        self._tracer = self._provider.get_tracer("seamline")

    @contextlib.contextmanager
    def attempt(
        self, parent: TraceContext | None, *, flow: str, target: str, delivery: int, attempt: int
    ) -> Iterator[Span]:
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

        context = None
        if parent is not None:
            remote = SpanContext(
                int(parent.trace_id, 16),
                int(parent.span_id, 16),
                is_remote=True,
                trace_flags=TraceFlags(int(parent.flags, 16)),
            )
            context = trace.set_span_in_context(NonRecordingSpan(remote))
        attributes: Mapping[str, Any] = {
            "seamline.flow": flow,
            "seamline.target": target,
            "seamline.delivery": delivery,
            "seamline.attempt": attempt,
        }
        with self._tracer.start_as_current_span(
            f"deliver {flow}", context=context, kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            own = span.get_span_context()
            header = TraceContext(
                f"{own.trace_id:032x}", f"{own.span_id:016x}", f"{int(own.trace_flags):02x}"
            ).header()
            yield _OtelSpan(header, span)

    def close(self) -> None:
        self._provider.shutdown()  # flushes what is batched


@dataclass(slots=True)
class _OtelSpan:
    traceparent: str
    span: Any

    def outcome(self, classification: str, status: int | None) -> None:
        from opentelemetry.trace import Status, StatusCode

        self.span.set_attribute("seamline.outcome", classification)
        if status is not None:
            self.span.set_attribute("http.response.status_code", status)
        if classification != "delivered":
            self.span.set_status(Status(StatusCode.ERROR, classification))


def tracer(endpoint: str | None, *, service: str) -> Tracer:
    """Spans to `endpoint` when one is set, else propagation only."""
    if endpoint:
        return OtelTracer(endpoint, service=service)
    return Propagation()
