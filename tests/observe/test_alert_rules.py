"""Alert rules as a table: each case is a run of snapshots and what each round sends.

Every case shows the rule firing on its condition, staying quiet while it keeps holding (one
alert per rule and subject), and resolving once when the condition clears. Time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from seamline.observe.alerts import (
    HISTORY,
    HOUR,
    WEEK,
    AlertState,
    FlowRules,
    Snapshot,
    evaluate,
)
from seamline.observe.spec import AlertsSpec
from seamline.observe.status import FlowStatus, SystemStatus

T0 = datetime(2026, 11, 27, 21, 0).timestamp()  # local time, as summaries are written
MIN = 60.0
ONLY = {"dead_letters": False, "failure_rate": False, "sla": False, "backlog": False}
"""Rules switched off in cases about another rule, so that each case watches one."""


@dataclass
class Step:
    at: float
    flow: dict[str, Any] = field(default_factory=dict)
    systems: dict[str, dict[str, Any]] = field(default_factory=dict)
    sends: list[tuple[str, str, str]] = field(default_factory=list)
    """(event, rule, summary) of each notification this round sends."""


def rules(alerts: dict[str, Any], *, notify: tuple[str, ...] = ("ops",)) -> FlowRules:
    return FlowRules(
        flow="orders",
        source="shop",
        target="erp",
        events=("order.created", "order.updated"),
        sla=300.0,
        alerts=AlertsSpec.model_validate(alerts),
        notify=notify,
    )


def snap(step: Step) -> Snapshot:
    systems = [SystemStatus(name, **given) for name, given in step.systems.items()]
    return Snapshot([FlowStatus("orders", **step.flow)], systems)


def counts(**n: int) -> dict[str, Any]:
    return {"counts": n}


CASES: list[tuple[str, dict[str, Any], list[Step]]] = [
    (
        "dead letters",
        {},
        [
            Step(T0, counts(delivered=10)),
            Step(
                T0 + MIN,
                {"counts": {"delivered": 10, "dead": 2}, "dead_since": T0 + 40},
                sends=[("firing", "dead_letters", "2 dead letters since 21:00")],
            ),
            Step(T0 + 2 * MIN, {"counts": {"delivered": 10, "dead": 3}, "dead_since": T0 + 40}),
            Step(
                T0 + 3 * MIN,
                counts(delivered=13),
                sends=[("resolved", "dead_letters", "3 dead letters since 21:00")],
            ),
        ],
    ),
    (
        "failure rate",
        {**ONLY, "failure_rate": {"above": "10%", "window": "15m", "min_settled": 10}},
        [
            Step(T0, counts(delivered=0)),
            Step(
                T0 + MIN,
                counts(delivered=30, dead=10),
                sends=[("firing", "failure_rate", "failure rate 25% over 60 s (10 of 40 dead)")],
            ),
            Step(T0 + 2 * MIN, counts(delivered=40, dead=10)),
            Step(
                T0 + 20 * MIN,
                counts(delivered=200, dead=10),
                sends=[("resolved", "failure_rate", "failure rate 20% over 2 min (10 of 50 dead)")],
            ),
        ],
    ),
    (
        "too few settled for a rate",
        {**ONLY, "failure_rate": {"min_settled": 10}},
        [Step(T0, counts()), Step(T0 + MIN, counts(delivered=3, dead=5))],
    ),
    (
        "oldest open past the SLA",
        {**ONLY, "sla": True},
        [
            Step(T0, {"counts": {"pending": 2}, "oldest_open": T0 - 4 * MIN}),
            Step(
                T0 + 2 * MIN,
                {"counts": {"pending": 2}, "oldest_open": T0 - 4 * MIN},
                sends=[("firing", "sla", "oldest pending 6 min, SLA 5 min")],
            ),
            Step(T0 + 3 * MIN, {"counts": {"pending": 2}, "oldest_open": T0 - 4 * MIN}),
            Step(
                T0 + 4 * MIN,
                counts(delivered=2),
                sends=[("resolved", "sla", "oldest pending 7 min, SLA 5 min")],
            ),
        ],
    ),
    (
        "a flow's own latency limit",
        {**ONLY, "sla": {"within": "1m"}},
        [
            Step(
                T0,
                {"counts": {"pending": 1}, "oldest_open": T0 - 2 * MIN},
                sends=[("firing", "sla", "oldest pending 2 min, SLA 60 s")],
            ),
        ],
    ),
    (
        "backlog over a fixed limit",
        {**ONLY, "backlog": {"above": 50}},
        [
            Step(T0, counts(pending=50)),
            Step(
                T0 + MIN,
                counts(pending=60, retrying=2),
                sends=[("firing", "backlog", "backlog 62 open, limit 50")],
            ),
            Step(T0 + 2 * MIN, counts(pending=70)),
            Step(
                T0 + 3 * MIN,
                counts(pending=10, delivered=60),
                sends=[("resolved", "backlog", "backlog 70 open, limit 50")],
            ),
        ],
    ),
    (
        "backlog the recent pace does not clear within the SLA",
        {**ONLY, "backlog": True},
        [
            Step(T0, counts(delivered=0)),
            Step(
                T0 + 10 * MIN,
                counts(pending=1000, delivered=60),
                sends=[
                    (
                        "firing",
                        "backlog",
                        "backlog 1,000 open; at 0.1/s it clears in 2 h 47 min, SLA 5 min",
                    )
                ],
            ),
            Step(
                T0 + 11 * MIN,
                counts(pending=200, delivered=1000),
                sends=[
                    (
                        "resolved",
                        "backlog",
                        "backlog 1,000 open; at 0.1/s it clears in 2 h 47 min, SLA 5 min",
                    )
                ],
            ),
        ],
    ),
    (
        "circuit open, then half-open, then closed",
        {**ONLY},
        [
            Step(T0, systems={"erp": {"budget": {"circuit": "closed"}}}),
            Step(
                T0 + MIN,
                systems={"erp": {"budget": {"circuit": "open"}}},
                sends=[("firing", "circuit", "circuit open: deliveries to erp are held")],
            ),
            Step(T0 + 2 * MIN, systems={"erp": {"budget": {"circuit": "half-open"}}}),
            Step(
                T0 + 3 * MIN,
                systems={"erp": {"budget": {"circuit": "closed"}}},
                sends=[("resolved", "circuit", "circuit half-open: probing whether erp is back")],
            ),
        ],
    ),
    (
        "a vendor's deprecation warnings, one alert each",
        {**ONLY},
        [
            Step(
                T0,
                systems={"erp": {"warnings": {"API 5.0 is deprecated": T0}}},
                sends=[("firing", "deprecation", "erp warns: API 5.0 is deprecated")],
            ),
            Step(
                T0 + MIN,
                systems={"erp": {"warnings": {"API 5.0 is deprecated": T0, "sunset: 2027": T0}}},
                sends=[("firing", "deprecation", "erp warns: sunset: 2027")],
            ),
            Step(
                T0 + 2 * MIN,
                systems={"erp": {"warnings": {"sunset: 2027": T0}}},
                sends=[("resolved", "deprecation", "erp warns: API 5.0 is deprecated")],
            ),
        ],
    ),
    (
        "rejected messages from the source",
        {**ONLY},
        [
            Step(
                T0,
                systems={"shop": {"rejected": 3, "rejected_since": T0 - 5 * MIN}},
                sends=[("firing", "rejected", "3 rejected messages from shop since 20:55")],
            ),
            Step(T0 + MIN, systems={"shop": {"rejected": 4, "rejected_since": T0 - 5 * MIN}}),
            Step(
                T0 + 2 * MIN,
                systems={"shop": {"rejected": 0}},
                sends=[("resolved", "rejected", "4 rejected messages from shop since 20:55")],
            ),
        ],
    ),
    (
        "a rule switched off never fires",
        {"dead_letters": False},
        [Step(T0, {"counts": {"dead": 5}, "dead_since": T0})],
    ),
    (
        "all rules switched off",
        {"circuit": False, "deprecation": False, "rejected": False, **ONLY, "volume": False},
        [
            Step(
                T0,
                {"counts": {"dead": 5, "pending": 500}, "oldest_open": T0 - HOUR},
                systems={"erp": {"budget": {"circuit": "open"}}, "shop": {"rejected": 2}},
            )
        ],
    ),
]


@pytest.mark.parametrize(("alerts", "steps"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_fires_once_and_resolves(alerts: dict[str, Any], steps: list[Step]) -> None:
    state = AlertState()
    flow = rules(alerts)
    for i, step in enumerate(steps):
        state, sent = evaluate(state, snap(step), step.at, [flow], resolve_after=0)
        assert [(n.event, n.alert.rule, n.alert.summary) for n in sent] == step.sends, f"step {i}"
        assert all(n.alert.notify == ("ops",) for n in sent)
        # One firing alert per rule and subject, whatever the number of rounds it held
        assert len(state.firing) == len({a.key for a in state.firing.values()})


# --- silence in a schedule ----------------------------------------------------------------------

AMS = ZoneInfo("Europe/Amsterdam")
TRADING = {
    **ONLY,
    "silence": {
        "after": "25m",
        "days": "mon-fri",
        "hours": "08:00-20:00",
        "timezone": "Europe/Amsterdam",
        "label": "trading hours",
    },
}


def amsterdam(day: int, hour: int, minute: int = 0) -> float:
    """A time in November 2026 in Amsterdam (25 Nov is a Wednesday)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=AMS).timestamp()


def test_silence_in_trading_hours_fires_then_resolves_on_the_next_order() -> None:
    flow = rules(TRADING)
    rounds = [
        (amsterdam(25, 10, 0), 5, []),
        (amsterdam(25, 10, 10), 5, []),
        (
            amsterdam(25, 10, 26),
            5,
            [("firing", "silence", "no orders for 26 min in trading hours")],
        ),
        (amsterdam(25, 10, 27), 5, []),
        (
            amsterdam(25, 10, 30),
            6,
            [("resolved", "silence", "no orders for 27 min in trading hours")],
        ),
    ]
    state = AlertState()
    for at, total, sends in rounds:
        snapshot = Snapshot([FlowStatus("orders", counts={"delivered": total})], [])
        state, sent = evaluate(state, snapshot, at, [flow], resolve_after=0)
        assert [(n.event, n.alert.rule, n.alert.summary) for n in sent] == sends


@pytest.mark.parametrize(
    ("case", "at", "fires"),
    [
        ("wednesday night", amsterdam(25, 22, 0), False),
        ("saturday noon", amsterdam(28, 12, 0), False),
        ("monday 08:20, quiet since friday: counted from opening", amsterdam(30, 8, 20), False),
        ("monday 08:30, quiet since friday", amsterdam(30, 8, 30), True),
    ],
)
def test_silence_counts_only_within_the_schedule(case: str, at: float, fires: bool) -> None:
    # Given a flow last heard on Friday evening
    flow = rules(TRADING)
    state, _ = evaluate(
        AlertState(), Snapshot([FlowStatus("orders")], []), amsterdam(27, 19, 0), [flow]
    )
    # When it is judged later, nothing new having come
    _, sent = evaluate(state, Snapshot([FlowStatus("orders")], []), at, [flow], resolve_after=0)
    # Then it fires only when 25 minutes of the schedule passed in silence
    assert [n.alert.rule for n in sent] == (["silence"] if fires else []), case


@pytest.mark.parametrize(
    ("case", "at", "fires"),
    [
        ("saturday 00:10, quiet since 23:50", amsterdam(28, 0, 10), False),
        ("saturday 00:30, quiet since 23:50", amsterdam(28, 0, 30), True),
    ],
)
def test_an_all_day_schedule_runs_on_through_midnight(case: str, at: float, fires: bool) -> None:
    flow = rules({**ONLY, "silence": {"after": "25m", "timezone": "Europe/Amsterdam"}})
    state, _ = evaluate(
        AlertState(), Snapshot([FlowStatus("orders")], []), amsterdam(27, 23, 50), [flow]
    )
    _, sent = evaluate(state, Snapshot([FlowStatus("orders")], []), at, [flow], resolve_after=0)
    assert [n.alert.summary for n in sent] == (["no orders for 40 min"] if fires else []), case


# --- volume against the same hour of past weeks --------------------------------------------------


def watch_hour(
    state: AlertState, flow: FlowRules, start: float, total: int, per_hour: int
) -> tuple[AlertState, int, list[tuple[str, str, str]]]:
    """Evaluate every 5 minutes through one hour while `per_hour` deliveries arrive."""
    sends: list[tuple[str, str, str]] = []
    for i in range(12):
        total += per_hour // 12
        state, sent = evaluate(
            state,
            Snapshot([FlowStatus("orders", counts={"delivered": total})], []),
            start + i * 300 + 1,
            [flow],
            resolve_after=0,
        )
        sends += [(n.event, n.alert.rule, n.alert.summary) for n in sent]
    return state, total, sends


def test_volume_far_below_the_same_hour_of_past_weeks_fires_and_resolves() -> None:
    flow = rules({**ONLY, "volume": {"below": "30%", "weeks": 2, "min": 20}})
    hour = int(T0 // HOUR) * HOUR
    # Given the hour from `hour` had 120 and 96 orders in the two weeks before
    state = AlertState(volume={"orders": {hour - WEEK: 120, hour - 2 * WEEK: 96}})
    # When this week's hour has 24 (22% of the usual 108)
    state, total, sends = watch_hour(state, flow, hour - 5 * 60, 0, 0)
    state, total, sends = watch_hour(state, flow, hour, total, 24)
    assert sends == []  # judged once the hour is over
    state, total, sends = watch_hour(state, flow, hour + HOUR, total, 108)
    ended = datetime.fromtimestamp(hour + HOUR).strftime("%H:%M")
    summary = f"24 orders in the hour to {ended}, usually 108 (22%, same hour of the last 2 weeks)"
    # Then it fires after the hour, once, and resolves when the next hour looks as usual
    assert sends == [("firing", "volume", summary)]
    state, total, sends = watch_hour(state, flow, hour + 2 * HOUR, total, 108)
    assert sends == [("resolved", "volume", summary)]


def test_volume_without_history_or_with_a_half_watched_hour_says_nothing() -> None:
    flow = rules({**ONLY, "volume": True})
    hour = int(T0 // HOUR) * HOUR
    # No past weeks: nothing to compare with
    state, total, _ = watch_hour(AlertState(), flow, hour, 0, 0)
    state, total, sends = watch_hour(state, flow, hour + HOUR, total, 0)
    assert sends == []
    # A past week, but this hour was watched for only 20 minutes (the hub was stopped)
    state = AlertState(volume={"orders": {hour - WEEK + 2 * HOUR: 500}})
    for at in (hour + 2 * HOUR + 40 * MIN, hour + 2 * HOUR + 50 * MIN, hour + 2 * HOUR + 59 * MIN):
        state, _ = evaluate(
            state, Snapshot([FlowStatus("orders")], []), at, [flow], resolve_after=0
        )
    state, sent = evaluate(
        state, Snapshot([FlowStatus("orders")], []), hour + 3 * HOUR + 1, [flow], resolve_after=0
    )
    assert sent == []
    assert hour + 2 * HOUR not in state.volume.get("orders", {})


# --- notifiers and system alerts shared by flows -------------------------------------------------


def test_a_system_alert_reached_through_two_flows_is_one_alert_to_both_flows_notifiers() -> None:
    a = rules({}, notify=("ops",))
    b = FlowRules("refunds", "shop", "erp", ("refund.created",), 300.0, AlertsSpec(), ("mail",))
    snapshot = Snapshot(
        [FlowStatus("orders"), FlowStatus("refunds")],
        [SystemStatus("erp", budget={"circuit": "open"})],
    )
    _, sent = evaluate(AlertState(), snapshot, T0, [a, b])
    assert [(n.alert.key, n.alert.notify) for n in sent] == [
        ("circuit:system:erp", ("mail", "ops"))
    ]


def test_resolved_alerts_are_kept_newest_first_up_to_the_limit() -> None:
    state = AlertState()
    flow = rules({})
    for i in range(HISTORY + 5):
        at = T0 + i * MIN
        dead = {"counts": {"dead": 1}, "dead_since": at} if i % 2 == 0 else {}
        state, _ = evaluate(
            state, Snapshot([FlowStatus("orders", **dead)], []), at, [flow], resolve_after=0
        )
    for i in range(HISTORY + 5, 2 * HISTORY + 10):
        at = T0 + i * MIN
        dead = {"counts": {"dead": 1}, "dead_since": at} if i % 2 == 0 else {}
        state, _ = evaluate(
            state, Snapshot([FlowStatus("orders", **dead)], []), at, [flow], resolve_after=0
        )
    assert len(state.resolved) == HISTORY
    times = [a.resolved_at for a in state.resolved]
    assert times == sorted(times, reverse=True)


def test_the_state_survives_its_json() -> None:
    flow = rules({})
    state, _ = evaluate(
        AlertState(volume={"orders": {int(T0 // HOUR) * HOUR - WEEK: 10}}),
        Snapshot(
            [FlowStatus("orders", counts={"dead": 2}, dead_since=T0)],
            [SystemStatus("erp", budget={"circuit": "open"})],
        ),
        T0,
        [flow],
    )
    again = AlertState.load(*state.dump())
    assert again == state


def test_samples_are_kept_for_the_longest_window_only() -> None:
    flow = rules({"failure_rate": {"window": "15m"}, "backlog": {"window": "10m"}})
    state = AlertState()
    for i in range(200):  # every 30 s for 100 minutes
        state, _ = evaluate(
            state, Snapshot([FlowStatus("orders")], []), T0 + i * 30, [flow], resolve_after=0
        )
    kept = state.samples["orders"]
    assert kept[0].at <= T0 + 199 * 30 - 15 * MIN < kept[1].at
    assert len(kept) <= 32


def test_an_alert_flapping_around_its_limit_stays_one_alert_until_clear_for_a_minute() -> None:
    flow = rules({**ONLY, "backlog": {"above": 50}})
    state = AlertState()
    sends = []
    # The backlog goes over, under, over, under its limit every 20 s, then stays under
    for i, pending in enumerate([60, 40, 60, 40, 60, 40, 40, 40, 40, 40]):
        state, sent = evaluate(
            state,
            Snapshot([FlowStatus("orders", counts={"pending": pending})], []),
            T0 + i * 20,
            [flow],
        )
        sends += [(i, n.event) for n in sent]
    # One firing, and one resolution a minute after it last held
    assert sends == [(0, "firing"), (8, "resolved")]
