"""Flow cases: `tests/FLOW/NAME.input.json` in, `NAME.expected.json` is what the flow gives.

An input is what arrives, in one of two forms:

```json
{"headers": {"X-Shopify-Topic": "orders/create"}, "body": {"id": 820982911946154508}}
{"event": "order.created", "data": {"id": "1", "number": "#1001"}}
```

The first is the vendor's own payload (a webhook as it came, or a file row as the poller
journals it), decoded by the flow's source connector, so the case tests the decoder too; the
second is a canonical event. The expected file is the request the target's connector would
get, or the outcome when nothing is sent:

```json
{"operation": "create_sale", "body": {"number": "#1001"}}
{"rejected": "unmapped value 'marketplace'"}
{"skipped": "nothing the warehouse ships"}
{"not_routed": "filter"}
```

A body must be equal; a reason must contain the expected text. A case without an expected
file fails, and says what the flow gives now (to review, then save as the expected file).
Everything runs offline: nothing is sent, nothing journaled.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from seamline.connectors.base import Event
from seamline.engine.preview import Preview, preview
from seamline.engine.router import Router
from seamline.errors import ContractError
from seamline.project import Flow, Project

PRETTY = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


@dataclass(frozen=True, slots=True)
class Result:
    flow: str
    name: str
    passed: bool
    detail: str = ""
    """Why it failed: a diff of expected and actual, or what is wrong with the case."""


def cases(project: Project) -> Iterator[tuple[str, Path]]:
    """(flow folder name, input file) of every case in the project, in name order."""
    root = project.dir / "tests"
    if not root.is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.input.json")):
            yield folder.name, path


def run_all(project: Project, router: Router) -> list[Result]:
    return [run_case(project, router, flow, path) for flow, path in cases(project)]


def run_case(project: Project, router: Router, flow_name: str, path: Path) -> Result:
    name = path.name.removesuffix(".input.json")
    flow = project.flows.get(flow_name)
    if flow is None:
        known = ", ".join(sorted(project.flows)) or "none"
        return Result(flow_name, name, False, f"no flow '{flow_name}' (flows: {known})")
    try:
        event = _event(project, router, flow, _json(path))
    except (ValueError, ContractError) as exc:
        return Result(flow_name, name, False, f"{path.name}: {exc}")
    actual = preview(flow, router, event)
    expected_path = path.with_name(f"{name}.expected.json")
    if not expected_path.exists():
        now = orjson.dumps(_plain(actual.as_json()), option=PRETTY).decode()
        return Result(
            flow_name, name, False,
            f"no {expected_path.name}; the flow gives this now (review it, then save it):\n{now}",
        )  # fmt: skip
    try:
        expected = _json(expected_path)
    except ValueError as exc:
        return Result(flow_name, name, False, f"{expected_path.name}: {exc}")
    problem = _compare(expected, actual)
    return Result(flow_name, name, problem is None, problem or "")


def _event(project: Project, router: Router, flow: Flow, data: Any) -> Event:
    if not isinstance(data, dict):
        raise ValueError("an input is a JSON object: {headers, body} or {event, data}")
    if "event" in data:
        if not isinstance(data.get("data"), dict):
            raise ValueError("a canonical input needs 'data': the event's fields")
        return Event(str(data["event"]), data["data"])
    if "body" not in data:
        raise ValueError("an input has 'body' (with 'headers') or 'event' (with 'data')")
    system = flow.spec.source.system
    source = router.sources.get(system)
    if source is None:
        raise ValueError(f"system '{system}' has no source to decode with")
    headers = {str(k).lower(): str(v) for k, v in (data.get("headers") or {}).items()}
    body = data["body"]
    raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
    return source.decode(headers, raw)


def _compare(expected: Any, actual: Preview) -> str | None:
    if not isinstance(expected, dict) or not expected:
        return "the expected file is a JSON object: {operation, body} or {rejected: reason}"
    got = _plain(actual.as_json())
    if "operation" in expected:
        if actual.outcome != "send":
            return f"expected a request, but the flow {actual.outcome}: {actual.reason}"
        if {k: expected.get(k) for k in ("operation", "body")} == got:
            return None
        return _diff(expected, got)
    (outcome, reason), *more = expected.items()
    if more or outcome not in ("rejected", "skipped", "not_routed"):
        return "an expected outcome is one of {rejected|skipped|not_routed: reason}"
    if actual.outcome != outcome:
        said = "sends a request" if actual.outcome == "send" else f"{actual.outcome}"
        return f"expected {outcome} ({reason}), but the flow {said}: " + (
            actual.reason or orjson.dumps(got, option=PRETTY).decode()
        )
    if str(reason) not in (actual.reason or ""):
        return f"{outcome}, but for another reason: {actual.reason!r} lacks {reason!r}"
    return None


def _diff(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> str:
    a = orjson.dumps(_plain(dict(expected)), option=PRETTY).decode().splitlines()
    b = orjson.dumps(actual, option=PRETTY).decode().splitlines()
    return "\n".join(difflib.unified_diff(a, b, "expected", "actual", lineterm=""))


def _plain(value: Any) -> Any:
    """As JSON would carry it (decimals and dates as text)."""
    return orjson.loads(orjson.dumps(value, default=str))


def _json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
