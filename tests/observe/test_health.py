"""Health levels and reasons as a table: each row a flow or system state, and what one reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from seamline.observe.alerts import Alert
from seamline.observe.health import Health, duration_text, flow_health, system_health
from seamline.observe.status import FlowStatus, SystemStatus

NOW = datetime(2026, 11, 27, 22, 0).timestamp()  # local time, as the reasons are written
MIN = 60.0

FLOWS: list[tuple[str, dict[str, Any], Health]] = [
    ("nothing at all", {}, Health("green")),
    ("only delivered", {"counts": {"delivered": 40}}, Health("green")),
    (
        "pending, well within the SLA",
        {"counts": {"pending": 3}, "oldest_open": NOW - 1 * MIN},
        Health("green"),
    ),
    (
        "oldest past half the SLA",
        {"counts": {"pending": 3}, "oldest_open": NOW - 3 * MIN},
        Health("amber", ("oldest pending 3 min, SLA 5 min",)),
    ),
    (
        "oldest past the SLA",
        {"counts": {"pending": 3}, "oldest_open": NOW - 18 * MIN},
        Health("red", ("oldest pending 18 min, SLA 5 min",)),
    ),
    (
        "retrying within the SLA",
        {"counts": {"retrying": 3}, "oldest_open": NOW - 10},
        Health("amber", ("3 retrying",)),
    ),
    (
        "dead letters since 21:40",
        {"counts": {"dead": 12, "delivered": 5}, "dead_since": NOW - 20 * MIN},
        Health("red", ("12 dead letters since 21:40",)),
    ),
    (
        "one dead letter from yesterday",
        {"counts": {"dead": 1}, "dead_since": NOW - 24 * 60 * MIN},
        Health("red", ("1 dead letter since 26 Nov 22:00",)),
    ),
    (
        "review waits for a person",
        {"counts": {"review": 2}},
        Health("amber", ("2 need review",)),
    ),
    (
        "everything at once: worst first",
        {
            "counts": {"retrying": 2, "dead": 3, "pending": 1},
            "oldest_open": NOW - 3 * MIN,
            "dead_since": NOW - 5 * MIN,
        },
        Health(
            "red", ("3 dead letters since 21:55", "oldest pending 3 min, SLA 5 min", "2 retrying")
        ),
    ),
    (
        "a 30 s SLA",
        {"counts": {"pending": 1}, "oldest_open": NOW - 45, "sla": 30.0},
        Health("red", ("oldest pending 45 s, SLA 30 s",)),
    ),
]


@pytest.mark.parametrize(
    ("given", "expected"), [(g, e) for _, g, e in FLOWS], ids=[name for name, _, _ in FLOWS]
)
def test_flow_health(given: dict[str, Any], expected: Health) -> None:
    assert flow_health(FlowStatus("orders", **given), NOW) == expected


SYSTEMS: list[tuple[str, dict[str, Any], Health]] = [
    ("never published", {}, Health("green")),
    ("circuit closed", {"budget": {"circuit": "closed"}}, Health("green")),
    (
        "circuit open",
        {"budget": {"circuit": "open"}},
        Health("red", ("circuit open: deliveries held",)),
    ),
    (
        "circuit half-open",
        {"budget": {"circuit": "half-open"}},
        Health("amber", ("circuit half-open: probing",)),
    ),
    (
        "rejected messages",
        {"rejected": 4, "rejected_since": NOW - 20 * MIN},
        Health("amber", ("4 rejected messages since 21:40",)),
    ),
    (
        "a vendor warning, and the circuit open",
        {"budget": {"circuit": "open"}, "warnings": {"API 2024-01 is deprecated": NOW}},
        Health("red", ("circuit open: deliveries held", "vendor warns: API 2024-01 is deprecated")),
    ),
]


@pytest.mark.parametrize(
    ("given", "expected"), [(g, e) for _, g, e in SYSTEMS], ids=[name for name, _, _ in SYSTEMS]
)
def test_system_health(given: dict[str, Any], expected: Health) -> None:
    assert system_health(SystemStatus("erp", **given), NOW) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (89, "89 s"),
        (300, "5 min"),
        (7200, "2 h"),
        (7500, "2 h 5 min"),
        (3 * 86400 + 4 * 3600, "3 d 4 h"),
    ],
)
def test_durations_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_firing_alerts_add_what_one_snapshot_cannot_see() -> None:
    silence = Alert(
        "silence", "flow:orders", "warning", "no orders for 25 min in trading hours", NOW
    )
    failing = Alert("failure_rate", "flow:orders", "critical", "failure rate 30% over 15 min", NOW)
    dead = Alert("dead_letters", "flow:orders", "critical", "said by health itself", NOW)
    other = Alert("silence", "flow:refunds", "warning", "no refunds for 2 h", NOW)
    status = FlowStatus("orders", counts={"retrying": 1})
    assert flow_health(status, NOW, alerts=[silence, other]) == Health(
        "amber", ("1 retrying", "no orders for 25 min in trading hours")
    )
    assert flow_health(status, NOW, alerts=[failing, dead]).level == "red"
    assert "said by health itself" not in flow_health(status, NOW, alerts=[dead]).reasons
