"""W3C trace context as the hub passes it on when no spans are exported."""

from __future__ import annotations

from seamline.observe.trace import Propagation, TraceContext, parse


def attempt(parent: TraceContext | None) -> str:
    with Propagation().attempt(parent, flow="f", target="t", delivery=1, attempt=1) as span:
        return span.traceparent


def test_a_message_without_a_trace_starts_a_new_valid_one_each_time() -> None:
    made = [parse(attempt(None)) for _ in range(200)]
    assert all(m is not None and m.flags == "01" for m in made)
    assert len({m.trace_id for m in made if m}) == 200
    assert len({m.span_id for m in made if m}) == 200


def test_a_message_with_a_trace_keeps_its_id_and_flags_under_a_new_span() -> None:
    parent = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "00")
    child = parse(attempt(parent))
    assert child is not None
    assert (child.trace_id, child.flags) == (parent.trace_id, "00")
    assert child.span_id != parent.span_id
