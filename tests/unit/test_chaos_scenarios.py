"""Chaos scenarios named on the command line: each parses to what it says, or is refused
with a message that names the mistake."""

from __future__ import annotations

from typing import Any

import pytest

from seamline.sandbox.chaos import Chaos, ScenarioError, parse_scenario

PARSES: list[tuple[str, dict[str, Any]]] = [
    ("erp-down:20s@30s", {"fault": "down", "system": "erp", "length": 20, "start": 30}),
    ("down:erp:20s@30s", {"fault": "down", "system": "erp", "length": 20, "start": 30}),
    ("my-erp-down:5s", {"fault": "down", "system": "my-erp", "length": 5, "start": 0}),
    ("throttle:shop:15s@10s", {"fault": "throttle", "system": "shop", "retry_after": 1.0}),
    ("throttle:shop:15s@10s,retry-after=2s", {"retry_after": 2.0, "length": 15}),
    ("errors:erp:10s@5s,status=502", {"fault": "errors", "status": 502}),
    ("slow:erp:10s@5s", {"fault": "slow", "delay": None, "writes_only": True}),
    ("slow:erp:10s@5s,delay=35s,on=all", {"delay": 35.0, "writes_only": False}),
    ("reset:shop:500ms@1m", {"fault": "reset", "length": 0.5, "start": 60}),
    ("lose-answer:erp:10s@5s", {"fault": "lose-answer", "writes_only": True}),
    ("duplicate:shop:30s@0s,rate=0.5", {"fault": "duplicate", "rate": 0.5}),
    ("reorder:shop:30s", {"fault": "reorder", "rate": 0.3}),
    ("malformed:shop:30s,rate=0.1", {"fault": "malformed", "rate": 0.1, "count": None}),
    ("malformed:shop@5s,count=2", {"fault": "malformed", "count": 2, "length": 0}),
    ("kill-hub@40s", {"fault": "kill-hub", "system": None, "start": 40, "length": 0}),
    ("kill-hub:5s@40s", {"fault": "kill-hub", "length": 5, "end": 45}),
    ("  erp-down:1s@2s  ", {"fault": "down", "system": "erp"}),
]

REFUSED: list[tuple[str, str]] = [
    ("", "empty scenario"),
    ("flood:shop:10s", "unknown fault 'flood'"),
    ("throttle:shop", "throttle needs a length"),
    ("throttle:10s@5s", "throttle needs a system"),
    ("erp-down@5s", "down needs a length"),
    ("erp-down:0s@5s", "a length of 0 plays nothing"),
    ("erp-down:20x@5s", "neither a system nor a length"),
    ("erp-down:20s@soon", "start 'soon' is not a duration"),
    ("erp-down:20s@-5s", "is not a duration"),
    ("down:erp:shop:5s", "two systems"),
    ("down:erp:5s:6s", "two lengths"),
    ("down:5s:erp", "out of place"),
    ("kill-hub:erp@5s", "kill-hub names no system"),
    ("throttle:shop:5s,retry-after", "is not NAME=VALUE"),
    ("throttle:shop:5s,rate=0.5", "throttle has no option 'rate' (it takes: retry-after)"),
    ("erp-down:5s,delay=1s", "down has no option 'delay' (it takes: none)"),
    ("errors:erp:5s,status=200", "status is an HTTP error status"),
    ("duplicate:shop:5s,rate=2", "rate is a share above 0 and at most 1"),
    ("duplicate:shop:5s,rate=often", "rate is a share"),
    ("malformed:shop@5s,count=0", "count is a whole number of at least 1"),
    ("malformed:shop:5s@1s,count=1", "malformed takes count=N or a length with a rate"),
    ("slow:erp:5s,on=reads", "on= is `writes` or `all`"),
    ("reset:shop:5s,rate=1,rate=1", "has no option 'rate'"),
    ("duplicate:shop:5s,rate=0.1,rate=0.2", "option rate given twice"),
]

KINDS = {"shop": "shopify", "erp": "tryton", "warehouse": "sftp_csv", "sink": "http"}

CHECKED: list[tuple[str, str | None]] = [
    ("warehouse-down:5s", None),
    ("throttle:sink:5s", None),
    ("duplicate:shop:5s", None),
    ("pim-down:5s", "no system 'pim' in the project (it has: shop, erp, warehouse, sink)"),
    ("throttle:warehouse:5s", "throttle plays on HTTP answers; warehouse is sftp_csv"),
    ("duplicate:erp:5s", "duplicate plays on webhooks a simulator sends; erp is tryton"),
]


@pytest.mark.parametrize(("text", "expected"), PARSES, ids=[t for t, _ in PARSES])
def test_a_scenario_parses_to_what_it_names(text: str, expected: dict[str, Any]) -> None:
    # When: the scenario is parsed
    scenario = parse_scenario(text)

    # Then: every named field has the value the text gives it
    found = {name: getattr(scenario, name) for name in expected}
    assert found == expected
    assert str(scenario) == text.strip()


@pytest.mark.parametrize(("text", "message"), REFUSED, ids=[t or "empty" for t, _ in REFUSED])
def test_a_wrong_scenario_is_refused_saying_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as refused:
        parse_scenario(text)
    assert message in str(refused.value)


@pytest.mark.parametrize(("text", "message"), CHECKED, ids=[t for t, _ in CHECKED])
def test_a_scenario_is_checked_against_the_project_systems(text: str, message: str | None) -> None:
    chaos = Chaos([parse_scenario(text)])
    if message is None:
        chaos.check(KINDS)
        return
    with pytest.raises(ScenarioError) as refused:
        chaos.check(KINDS)
    assert message in str(refused.value)
