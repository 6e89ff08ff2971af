"""What a heal would send, and what it cannot heal and why."""

from __future__ import annotations

import pytest

from seamline.checks.compare import Finding
from seamline.checks.heal import plan
from seamline.checks.spec import CheckSpec
from seamline.project import Project, load_project
from tests.conftest import DEMO_SHOP


@pytest.fixture
def project(demo_secrets: None) -> Project:
    return load_project(DEMO_SHOP)


def spec(entity: str) -> CheckSpec:
    return CheckSpec.model_validate(
        {"owner": "o", "entity": entity, "left": {"system": "warehouse"},
         "right": {"system": "shop"}, "heal": {"flow": "stock-to-shop"}}
    )  # fmt: skip


CASES = [
    # (entity, finding, flow, healed as (sku, available) or the reason it is not)
    ("stock", Finding("mismatch", ("A",), {"available": 5}, {"available": 7}, ("available",)),
     "stock-to-shop", ("A", 5)),
    ("stock", Finding("missing_left", ("B",), right={"available": 4}), "stock-to-shop", ("B", 0)),
    ("stock", Finding("missing_right", ("C",), left={"available": 2}), "stock-to-shop", ("C", 2)),
    ("stock", Finding("mismatch", ("D",), {"available": None}, {"available": 1}, ("available",)),
     "stock-to-shop", "no readable level"),
    ("stock", Finding("duplicate", ("E",), left={"available": 1}, fields=("left",)),
     "stock-to-shop", "for a person to merge"),
    ("price", Finding("mismatch", ("F",), {"price": "1"}, {"price": "2"}, ("price",)),
     "stock-to-shop", "price are not healed by a value"),
    ("stock", Finding("mismatch", ("G",), {"available": 5}, {"available": 7}, ("available",)),
     "orders-to-erp", "does not take inventory.changed"),
]  # fmt: skip


@pytest.mark.parametrize(("entity", "finding", "flow", "expected"), CASES)
def test_a_heal_plan_sends_the_left_value_or_says_why_not(
    project: Project, entity: str, finding: Finding, flow: str, expected: object
) -> None:
    heals, left_out = plan(spec(entity), project.flows[flow], [finding])

    if isinstance(expected, tuple):
        (heal,) = heals
        assert (heal.data["sku"], heal.data["available"]) == expected
        assert heal.event == "inventory.changed" and heal.flow == flow
        assert left_out == []
    else:
        assert heals == []
        (why,) = left_out
        assert str(expected) in why.why
