"""The landscape: the demo shop's register, its risks in words, and the exports."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from seamline.checks.spec import CheckSpec
from seamline.landscape.export import as_json, as_markdown
from seamline.landscape.external import ExternalSpec
from seamline.landscape.register import Integration, Register, build
from seamline.landscape.risk import Risk, Signals, assess
from seamline.project import load_project

EXAMPLE = Path(__file__).parents[2] / "examples" / "demo-shop"
NOW = datetime.datetime(2026, 11, 29, tzinfo=datetime.UTC).timestamp()
DAY = 86400.0


@pytest.fixture
def register(demo_secrets: None) -> Register:
    project = load_project(EXAMPLE)
    stock = CheckSpec.model_validate(
        {
            "owner": "ops",
            "entity": "stock",
            "left": {"system": "warehouse"},
            "right": {"system": "shop"},
        }
    )
    pim = ExternalSpec(
        source="erp", target="pim", trigger="nightly cron on erp-01", owner="unknown",
        criticality="high", changed=datetime.date(2019, 3, 1),
    )  # fmt: skip
    return build(
        project, externals={"erp-to-pim": pim}, checks={"stock": stock}, changed=lambda p: NOW - DAY
    )


def test_every_flow_and_the_outside_integration_are_in_the_register(register: Register) -> None:
    flows = {n: i for n, i in register.integrations.items() if i.kind == "flow"}
    assert set(flows) == {p.stem for p in (EXAMPLE / "flows").glob("*.yaml")}
    stock = flows["stock-to-shop"]
    assert (stock.source, stock.target) == ("warehouse", "shop")
    assert stock.trigger.startswith("files polled every")
    assert stock.checked_by == ("stock",)
    assert stock.sla is not None and stock.owner
    orders = flows["orders-to-erp"]
    assert orders.trigger.startswith("webhook (order.created)")
    assert orders.criticality == "critical"  # the higher of the shop (critical) and the ERP
    assert orders.contract["value_maps"]["order_types"]["web"] == "WEB"
    assert register.systems["shop"].api_version
    outside = register.integrations["erp-to-pim"]
    assert not outside.monitored and outside.owner is None
    assert register.systems["pim"].kind == "external"


def integration(**changes: object) -> Integration:
    base: dict[str, object] = {
        "name": "i", "kind": "flow", "source": "a", "target": "b", "owner": "ops",
        "criticality": "medium", "trigger": "webhook", "sla": "within 5m", "purpose": "",
        "file": "flows/i.yaml", "changed_at": NOW - DAY, "checked_by": ("c",),
    }  # fmt: skip
    return Integration(**{**base, **changes})  # type: ignore[arg-type]


RISKS = [
    # (integration changes, signals, score, reasons in order)
    pytest.param({}, Signals(), 0, [], id="owned, monitored, promised, checked"),
    pytest.param(
        {"kind": "external", "owner": None, "criticality": "critical"}, Signals(), 100,
        ["runs outside the hub", "no owner"], id="critical, outside and unowned",
    ),
    pytest.param(
        {"sla": None, "checked_by": ()}, Signals(dead=3), 40,
        ["3 dead letters", "no SLA", "no check compares a and b"], id="dead letters first",
    ),
    pytest.param(
        {"criticality": "low"}, Signals(attempts=100, failed=9, drift=37, drift_before=4), 15,
        ["9% of 100 attempts failed", "drift on 37 records, up from 4"], id="failing and drifting",
    ),
    pytest.param(
        {"changed_at": NOW - 3 * 365 * DAY}, Signals(attempts=100, failed=5), 10,
        ["unchanged for 3.0 years"], id="old, 5% failures is not above 5%",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "signals", "score", "reasons"), RISKS)
def test_risk_is_scored_and_explained_in_words(
    changes: dict[str, object], signals: Signals, score: int, reasons: list[str]
) -> None:
    risk = assess(integration(**changes), signals, now=NOW)

    assert risk.score == score
    assert len(risk.reasons) == len(reasons)
    for said, expected in zip(risk.reasons, reasons, strict=True):
        assert said.startswith(expected), risk.reasons


def test_the_exports_carry_every_integration_and_the_top_risks(register: Register) -> None:
    risks: dict[str, Risk] = {
        name: assess(i, Signals(), now=NOW) for name, i in register.integrations.items()
    }

    page = as_markdown(register, risks, title="demo-shop")
    data = json.loads(json.dumps(as_json(register, risks)))

    for name in register.integrations:
        assert f"\n## {name}\n" in page
    top = page.split("## Top risks")[1].splitlines()[2]
    assert top.startswith("1. **erp-to-pim** (100): runs outside the hub")
    assert "unchanged for 7.8 years" in page
    assert {i["name"] for i in data["integrations"]} == set(register.integrations)
    (pim,) = [i for i in data["integrations"] if i["name"] == "erp-to-pim"]
    assert pim["monitored"] is False and pim["changed_at"] == "2019-03-01"
    assert pim["risk"]["score"] == 100
