"""The `seamline` command as an operator uses it: check, status, replay, discard."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from seamline.cli import app, write_example
from seamline.connectors.fake import FakeSink, answer
from seamline.errors import PermanentError
from seamline.journal.base import NewMessage, StoredMessage
from seamline.project import load_project
from tests.integration.rig import order, rig

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The example project with one delivered, one dead and one rejected message."""
    root = tmp_path / "p"

    async def fill() -> None:
        r = await rig(
            root,
            FakeSink(
                script=[
                    answer(201, refs={"order": "OMS-9"}),
                    answer(422, error=PermanentError("refused with 422")),
                ]
            ),
        )
        for n, data in enumerate([order(id=1, order_number=1001), order(id=2, order_number=1002)]):
            body = orjson.dumps({"type": "order.created", "data": data})
            mid = await r.journal.append(NewMessage("webshop", f"m{n}", time.time(), b"{}", body))
            assert mid is not None
            await r.journal.route(
                [r.router.route(StoredMessage(mid, "webshop", "", 0.0, b"{}", body))]
            )
        claimed = await r.journal.claim(target="orders-api", owner="t", limit=10, lease=30)
        await r.journal.settle([await r.worker.deliver(c) for c in claimed])
        bad = await r.journal.append(
            NewMessage("webshop", "m-bad", time.time(), b"{}", b"not json")
        )
        assert bad is not None
        await r.journal.route(
            [r.router.route(StoredMessage(bad, "webshop", "", 0.0, b"{}", b"not json"))]
        )
        await r.journal.close()

    asyncio.run(fill())
    return root


def query(root: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(root / "journal.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_check_passes_a_good_project_and_fails_a_broken_one_with_exit_2(tmp_path: Path) -> None:
    write_example(tmp_path / "good")
    assert runner.invoke(app, ["check", str(tmp_path / "good")]).exit_code == 0
    flow = tmp_path / "good" / "flows" / "orders-to-oms.yaml"
    flow.write_text(flow.read_text().replace("operation: request", "operation: post"))
    result = runner.invoke(app, ["check", str(tmp_path / "good")])
    assert result.exit_code == 2
    assert "flows/orders-to-oms.yaml:9" in result.output


def test_status_counts_deliveries_per_state(project: Path) -> None:
    result = runner.invoke(app, ["status", str(project), "--json"])
    assert result.exit_code == 0, result.output
    status = orjson.loads(result.output)
    (flow,) = status["flows"]
    assert flow["counts"] == {"delivered": 1, "dead": 1}
    shop = next(s for s in status["systems"] if s["system"] == "webshop")
    assert shop["rejected"] == 1


def test_delivery_learns_the_cross_reference_from_the_response(project: Path) -> None:
    assert query(project, "SELECT entity, system, key, other_system, other_key FROM xref") == [
        ("order", "webshop", "1001", "orders-api", "OMS-9")
    ]


def test_dry_run_changes_nothing(project: Path) -> None:
    result = runner.invoke(app, ["replay", str(project), "--dry-run"])
    assert result.exit_code == 0 and "1 deliveries would be replayed" in result.output
    assert query(project, "SELECT state FROM delivery ORDER BY id") == [("delivered",), ("dead",)]
    assert query(project, "SELECT count(*) FROM audit") == [(0,)]


def test_edit_and_replay_sends_the_edited_data_and_is_audited(
    project: Path, tmp_path: Path
) -> None:
    edited = tmp_path / "fixed.json"
    edited.write_bytes(orjson.dumps(order(id=2, order_number=1002, source_name="pos")))
    result = runner.invoke(
        app, ["replay", str(project), "-d", "2", "--payload", str(edited), "--yes"]
    )
    assert result.exit_code == 0, result.output
    state, attempts, payload = query(
        project, "SELECT state, attempts, payload FROM delivery WHERE id = 2"
    )[0]
    assert (state, attempts) == ("pending", 0)
    assert orjson.loads(payload)["source_name"] == "pos"  # type: ignore[arg-type]
    assert query(project, "SELECT action, target FROM audit") == [("edit-and-replay", "delivery/2")]


def test_edit_opens_the_decoded_event_and_replays_it_unchanged_when_saved_as_is(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An editor that saves the file as it was opened: the decoded event data
    monkeypatch.setenv("EDITOR", "true")
    monkeypatch.delenv("VISUAL", raising=False)
    result = runner.invoke(app, ["replay", str(project), "-d", "2", "--edit", "--yes"])
    assert result.exit_code == 0, result.output
    (payload,) = query(project, "SELECT payload FROM delivery WHERE id = 2")[0]
    assert orjson.loads(payload)["order_number"] == 1002  # type: ignore[arg-type]


def test_discard_needs_a_reason_and_records_it(project: Path) -> None:
    result = runner.invoke(
        app, ["replay", str(project), "-d", "2", "--discard", "order cancelled by support", "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert query(project, "SELECT state, last_error FROM delivery WHERE id = 2") == [
        ("discarded", "order cancelled by support")
    ]
    (detail,) = query(project, "SELECT detail FROM audit WHERE action = 'discard'")[0]
    assert "order cancelled by support" in str(detail)


def test_rejected_messages_can_be_routed_again(project: Path) -> None:
    result = runner.invoke(app, ["replay", str(project), "--rejected", "--yes"])
    assert result.exit_code == 0, result.output
    assert query(project, "SELECT state FROM message WHERE source_id = 'm-bad'") == [("received",)]
    assert query(project, "SELECT action FROM audit") == [("replay-rejected",)]


def test_nothing_matches_is_said_plainly(project: Path) -> None:
    result = runner.invoke(app, ["replay", str(project), "--flow", "no-such-flow"])
    assert result.exit_code == 0 and "nothing matches" in result.output


def test_init_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    assert runner.invoke(app, ["init", str(tmp_path / "x")]).exit_code == 2
    assert load_project is not None
