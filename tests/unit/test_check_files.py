"""checks/*.yaml and landscape/*.yaml in `seamline check`: each mistake where it is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from seamline.errors import ProjectError
from seamline.project import load_project

STOCK = "checks/stock.yaml"
OUTSIDE = "landscape/accounting-export.yaml"


def replace(file: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        text = (root / file).read_text()
        assert old in text, f"{old!r} not in {file}"
        (root / file).write_text(text.replace(old, new, 1))

    return edit


@pytest.fixture
def project(demo_project: Path) -> Path:
    return demo_project


def test_the_examples_checks_and_outside_integrations_load(project: Path) -> None:
    loaded = load_project(project)

    assert set(loaded.checks) == {"stock", "orders", "customers"}
    assert loaded.checks["stock"].heal is not None
    assert set(loaded.externals) == {"accounting-export"}
    assert loaded.externals["accounting-export"].owner is None  # "unknown" is no owner


CASES = [
    # (edit, file, line, what the problem says)
    (replace(STOCK, "right: {system: shop}", "right: {system: pos}"), STOCK, 9,
     "right system 'pos' is not declared"),
    (replace(STOCK, "entity: stock", "entity: price"), STOCK, 7,
     "system 'warehouse' (sftp_csv) cannot list price"),
    (replace(STOCK, "heal: {flow: stock-to-shop}", "heal: {flow: orders-to-erp}"), STOCK, 13,
     "heal flow 'orders-to-erp' goes shop -> erp, not warehouse -> shop"),
    (replace(STOCK, "heal: {flow: stock-to-shop}", "heal: {flow: nope}"), STOCK, 13,
     "heal flow 'nope' is not in flows/"),
    (replace(STOCK, "schedule: {every: 15m}", "schedule: {every: 10s}"), STOCK, 12,
     "at most once a minute"),
    (replace(STOCK, "fields:", "feilds:"), STOCK, 10, "unknown key 'feilds'"),
    (replace(OUTSIDE, "trigger:", "when:"), OUTSIDE, None, "trigger is required"),
    (replace(OUTSIDE, "criticality: high", "criticality: huge"), OUTSIDE, 7, "criticality"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "file", "line", "said"), CASES)
def test_a_broken_check_or_outside_integration_is_reported_where_it_is(
    project: Path, edit: Callable[[Path], None], file: str, line: int | None, said: str
) -> None:
    edit(project)

    with pytest.raises(ProjectError) as caught:
        load_project(project)

    matching = [p for p in caught.value.problems if p.file == file and said in p.message]
    assert matching, [str(p) for p in caught.value.problems]
    if line is not None:
        assert matching[0].line == line, str(matching[0])
