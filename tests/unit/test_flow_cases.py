"""Flow cases (`seamline test`): the example's cases pass; each way a case fails says how."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from seamline.change.case import run_all
from seamline.engine.router import offline_router
from seamline.project import load_project


@pytest.fixture
def project_dir(demo_project: Path) -> Path:
    return demo_project


def results(root: Path) -> dict[tuple[str, str], tuple[bool, str]]:
    project = load_project(root)
    return {
        (r.flow, r.name): (r.passed, r.detail) for r in run_all(project, offline_router(project))
    }


def test_the_example_cases_pass(project_dir: Path) -> None:
    found = results(project_dir)

    assert len(found) == 5
    assert all(passed for passed, _ in found.values()), found


def edit_json(path: Path, change: Callable[[dict], object]) -> None:  # type: ignore[type-arg]
    data = orjson.loads(path.read_bytes())
    change(data)
    path.write_bytes(orjson.dumps(data))


WAREHOUSE = "tests/orders-to-warehouse"
ERP = "tests/orders-to-erp"

FAILURES = [
    pytest.param(
        lambda root: edit_json(
            root / WAREHOUSE / "web-order.expected.json",
            lambda d: d["body"]["lines"][0].update(quantity=2),
        ),
        ("orders-to-warehouse", "web-order"),
        ['-        "quantity": 2,', '+        "quantity": 1,'],
        id="another body: a diff",
    ),
    pytest.param(
        lambda root: (root / ERP / "marketplace-order.expected.json").write_text(
            '{"rejected": "unknown carrier"}'
        ),
        ("orders-to-erp", "marketplace-order"),
        ["rejected, but for another reason", "lacks 'unknown carrier'"],
        id="rejected for another reason",
    ),
    pytest.param(
        lambda root: edit_json(
            root / ERP / "web-order.input.json", lambda d: d["body"].update(source_name="ebay")
        ),
        ("orders-to-erp", "web-order"),
        ["expected a request, but the flow rejected", "'ebay'"],
        id="a request expected, a rejection given",
    ),
    pytest.param(
        lambda root: (root / ERP / "test-order.expected.json").unlink(),
        ("orders-to-erp", "test-order"),
        ["no test-order.expected.json; the flow gives this now", '"not_routed"'],
        id="no expected file: what the flow gives now",
    ),
    pytest.param(
        lambda root: (root / ERP / "test-order.input.json").write_text("{not json"),
        ("orders-to-erp", "test-order"),
        ["test-order.input.json: not JSON"],
        id="an input that is not JSON",
    ),
    pytest.param(
        lambda root: shutil.copytree(root / ERP, root / "tests" / "orders-to-crm"),
        ("orders-to-crm", "web-order"),
        ["no flow 'orders-to-crm'"],
        id="cases of a flow that does not exist",
    ),
]


@pytest.mark.parametrize(("break_it", "case", "said"), FAILURES)
def test_a_failing_case_says_how(
    project_dir: Path,
    break_it: Callable[[Path], object],
    case: tuple[str, str],
    said: list[str],
) -> None:
    break_it(project_dir)

    passed, detail = results(project_dir)[case]

    assert not passed
    for text in said:
        assert text in detail, detail
