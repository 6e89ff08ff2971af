"""`seamline check`: every problem in a project, each with its file, line and a fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from seamline.cli import write_example
from seamline.errors import ProjectError
from seamline.project import load_project

Edit = Callable[[Path], None]


def replace(file: str, old: str, new: str) -> Edit:
    def edit(root: Path) -> None:
        path = root / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new, 1))

    return edit


def remove(file: str) -> Edit:
    return lambda root: (root / file).unlink()


def copy(file: str, to: str) -> Edit:
    return lambda root: (root / to).write_text((root / file).read_text())


def edits(*each: Edit) -> Edit:
    def edit(root: Path) -> None:
        for one in each:
            one(root)

    return edit


FLOW = "flows/orders-to-oms.yaml"
SHOP = "systems/webshop.yaml"
OMS = "systems/orders-api.yaml"

# (case, edit, file, line, fragment of the message)
CASES = [
    (
        "two worker processes on a SQLite journal",
        replace("seamline.yaml", "  processes: 0", "  processes: 2"),
        "seamline.yaml",
        None,
        "a SQLite journal takes at most 1",
    ),
    ("unknown key in a flow", replace(FLOW, "owner:", "ownr:"), FLOW, 2, "unknown key 'ownr'"),
    (
        "unknown key in a system",
        replace(OMS, "  timeout: 10s", "  timeout: 10s\n  colour: blue"),
        OMS,
        9,
        "unknown key 'colour' in connection",
    ),
    (
        "unknown target system",
        replace(FLOW, "system: orders-api", "system: erp"),
        FLOW,
        8,
        "target system 'erp' is not declared",
    ),
    (
        "unknown source system",
        replace(FLOW, "system: webshop", "system: shop"),
        FLOW,
        5,
        "source system 'shop' is not declared",
    ),
    (
        "unknown operation",
        replace(FLOW, "operation: request", "operation: post"),
        FLOW,
        9,
        "no operation 'post'",
    ),
    (
        "event the source does not send",
        replace(FLOW, "events: [order.created, order.updated]", "events: [order.deleted]"),
        FLOW,
        6,
        "does not send 'order.deleted'",
    ),
    ("missing secret file", remove("secrets/webshop.secret"), SHOP, 8, "secret is missing"),
    (
        "missing secret variable",
        replace(SHOP, "{file: secrets/webshop.secret}", "${NO_SUCH_SECRET_VARIABLE}"),
        SHOP,
        8,
        "NO_SUCH_SECRET_VARIABLE is not set",
    ),
    (
        "secret written as text",
        replace(
            OMS, "Authorization: {file: secrets/orders-api.token}", "Authorization: Bearer abc"
        ),
        OMS,
        10,
        "Authorization carries credentials",
    ),
    (
        "malformed retry schedule",
        replace(FLOW, "schedule: [1s, 5s, 30s, 2m, 10m, 30m]", "schedule: [1s, soon]"),
        FLOW,
        36,
        "'soon' is not a duration",
    ),
    (
        "empty retry schedule",
        replace(FLOW, "schedule: [1s, 5s, 30s, 2m, 10m, 30m]", "schedule: []"),
        FLOW,
        36,
        "retry schedule is empty",
    ),
    (
        "value map missing a declared value",
        replace(FLOW, "marketplace: MARKETPLACE", "other: X"),
        FLOW,
        30,
        "does not cover 'marketplace'",
    ),
    (
        "value map naming an unknown map",
        replace(FLOW, "map: channels", "map: chanels"),
        FLOW,
        19,
        "chanels",
    ),
    ("unknown kind", replace(OMS, "kind: http", "kind: ftp"), OMS, 2, "unknown kind 'ftp'"),
    (
        "a system named like the hub's own messages",
        copy(OMS, "systems/seamline.yaml"),
        "systems/seamline.yaml",
        None,
        "'seamline' is the name of the hub's own messages",
    ),
    ("broken YAML", replace(FLOW, "purpose:", "purpose: [unclosed"), FLOW, None, "not valid YAML"),
    (
        "coalesce without an ordering key",
        replace(FLOW, "ordering:\n  key: id", "coalesce: true"),
        FLOW,
        None,
        "coalesce needs ordering.key",
    ),
    (
        "ordered after an unknown flow",
        edits(
            replace(FLOW, "marketplace: MARKETPLACE}", "marketplace: MARKETPLACE, after: LATE}"),
            replace(FLOW, "  key: id ", "  after: refunds\n  key: id "),
        ),
        FLOW,
        32,
        "ordering.after: 'refunds' is not a flow of this project",
    ),
    (
        "ordered after a pattern, not a name",
        replace(FLOW, "  key: id ", "  after: order*\n  key: id "),
        FLOW,
        32,
        "ordering.after: 'order*' is not a flow of this project",
    ),
    (
        "ordered after itself",
        replace(FLOW, "  key: id ", "  key: id\n  after: orders-to-oms "),
        FLOW,
        33,
        "'orders-to-oms' is the flow itself",
    ),
    (
        "ordered after a flow without a key",
        edits(
            copy(FLOW, "flows/refunds.yaml"),
            replace("flows/refunds.yaml", "ordering:\n  key: id", "coalesce: false\n "),
            replace(FLOW, "  key: id ", "  after: refunds\n  key: id "),
        ),
        FLOW,
        32,
        "'refunds' has no ordering.key",
    ),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_example(tmp_path / "p")
    return tmp_path / "p"


def test_the_example_project_is_valid(project: Path) -> None:
    loaded = load_project(project)
    assert set(loaded.flows) == {"orders-to-oms"}
    assert set(loaded.systems) == {"webshop", "orders-api"}


@pytest.mark.parametrize(
    ("case", "edit", "file", "line", "fragment"), CASES, ids=[c[0] for c in CASES]
)
def test_a_broken_project_reports_the_problem_where_it_is(
    project: Path, case: str, edit: Edit, file: str, line: int | None, fragment: str | None
) -> None:
    # Given the example project with one thing broken
    edit(project)
    # When it is checked
    with pytest.raises(ProjectError) as caught:
        load_project(project)
    # Then the problem names the file (and the line, where there is one) and says what is wrong
    matching = [
        p
        for p in caught.value.problems
        if p.file == file and (fragment is None or fragment in p.message)
    ]
    assert matching, f"{case}: got {[str(p) for p in caught.value.problems]}"
    if line is not None:
        assert matching[0].line == line, str(matching[0])


def test_every_problem_is_reported_in_one_pass(project: Path) -> None:
    # Given six independent mistakes in three files
    chosen = [
        "unknown key in a flow",
        "missing secret file",
        "unknown operation",
        "event the source does not send",
        "malformed retry schedule",
        "value map missing a declared value",
    ]
    for case, edit, *_ in CASES:
        if case in chosen:
            edit(project)
    # When the project is checked once
    with pytest.raises(ProjectError) as caught:
        load_project(project)
    # Then all six are reported
    assert len(caught.value.problems) == 6, [str(p) for p in caught.value.problems]


def test_secrets_never_appear_in_problems(project: Path) -> None:
    secret = (project / "secrets" / "webshop.secret").read_text().strip()
    replace(FLOW, "operation: request", "operation: post")(project)
    replace(SHOP, "  keys:", "  tolerance: soon\n  keys:")(project)
    with pytest.raises(ProjectError) as caught:
        load_project(project)
    assert secret not in str(caught.value)
    assert secret[6:] not in repr(caught.value.problems)


BUDGETS = [
    # what the system file says, the budget the hub uses (rate, concurrency)
    ("", (2.0, 2)),
    ("budget: {concurrency: 1}\n", (2.0, 1)),
    ("budget: {rate: 5, concurrency: 3}\n", (5.0, 3)),
]


@pytest.mark.parametrize(("written", "used"), BUDGETS, ids=["none", "concurrency only", "both"])
def test_a_system_without_a_budget_gets_what_its_vendor_can_take(
    project: Path, monkeypatch: pytest.MonkeyPatch, written: str, used: tuple[float, int]
) -> None:
    monkeypatch.setenv("ERP_PASSWORD", "x")
    (project / "systems" / "erp.yaml").write_text(
        "kind: tryton\nconnection:\n  url: http://127.0.0.1:8000\n  database: shop\n"
        "  username: admin\n  password: ${ERP_PASSWORD}\n" + written
    )
    budget = load_project(project).systems["erp"].spec.budget
    assert (budget.rate, budget.concurrency) == used


def test_addresses_may_come_from_the_environment_and_stay_plain_text(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERP_URL", "http://127.0.0.1:8123")
    monkeypatch.setenv("ERP_PASSWORD", "hush")
    (project / "systems" / "erp.yaml").write_text(
        "kind: tryton\nconnection:\n  url: ${ERP_URL}\n  database: shop\n"
        "  username: admin\n  password: ${ERP_PASSWORD}\n"
    )
    options = load_project(project).systems["erp"].options
    assert options.url == "http://127.0.0.1:8123"  # type: ignore[attr-defined]
    assert repr(options.password) == "Secret('***')"  # type: ignore[attr-defined]
