"""A load run of the demo shop under a chaos mix: nothing lost, nothing doubled, nothing out of
order, and every order's effects at every target.

The landscape is real where it can be (Tryton, SFTP, HTTP on loopback) and simulated where it
must be (Shopify, the 3PL); the hub is `seamline run` in a process of its own, so that it can
be killed with SIGKILL and started again on the same journal.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import sqlite3
from collections import Counter
from contextlib import closing
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
import yaml
from rich.console import Console

from seamline.sandbox.load import Landscape, oracle, run_load
from seamline.sandbox.load.oracle import Verdict
from tests.reliability.harness import query

EXAMPLE = Path(__file__).parents[2] / "examples" / "demo-shop"
CHAOS = [
    "erp-down:4s@5s",  # Tryton unreachable: sales wait, nothing booked twice
    "throttle:shop:8s@7s,retry-after=1s",  # 429 storm on fulfillments and stock levels
    "duplicate:shop:20s@0s,rate=0.3",  # Shopify sends a third of the webhooks twice
    "kill-hub@11s",  # SIGKILL mid-run, restarted on the same journal
]


@pytest.mark.timeout(150)
def test_a_chaos_run_loses_doubles_and_reorders_nothing(tmp_path: Path) -> None:
    # Given: the demo shop, kept in a folder of the test's own
    said = io.StringIO()
    project = tmp_path / "demo-shop"

    # When: 20 s of orders at 1/s under the chaos mix, with every 7th order cancelled
    report = run_load(
        EXAMPLE,
        rate=1.0,
        duration=20,
        drain=90,
        chaos=CHAOS,
        console=Console(file=said, width=200),
        keep=project,
        cancel_every=7,
    )

    # Then: it drained, and the three numbers are zero
    text = said.getvalue()
    assert not report.interrupted, text
    assert report.drained, text
    assert (report.lost, report.duplicated, report.out_of_order) == (0, 0, 0), text
    assert report.held
    assert report.parked == 0, text  # no delivery dead or waiting for review

    # and every fault did play: the ERP refused connections, the shop answered 429s, webhooks
    # came twice, and the hub was started twice
    assert report.faults["erp"].get("refused", 0) > 0, report.faults
    assert report.faults["shop"].get("throttle", 0) > 0, report.faults
    assert report.duplicates_sent > 0
    assert report.hub_starts == 2
    assert [e.what for e in report.chaos if e.scenario == "kill-hub@11s"] == [
        "hub killed (SIGKILL)",
        "hub restarted on the same journal",
    ]

    # and every order has its effects: one sale and one order file each, read from the
    # journal and the 3PL's processed files, not from the report
    orders = report.orders
    assert orders >= 19
    journal = project / "journal.db"
    delivered = dict(
        query(journal, "SELECT flow, count(*) FROM delivery WHERE state = 'delivered' GROUP BY 1")
    )
    assert delivered["orders-to-erp"] == orders, delivered
    assert delivered["orders-to-warehouse"] == orders, delivered
    assert report.cancelled == orders // 7
    assert delivered["cancellations-to-erp"] == report.cancelled, delivered
    assert delivered["shipments-to-shop"] == delivered["shipments-to-erp"] > 0, delivered
    open_or_parked = query(
        journal, "SELECT count(*) FROM delivery WHERE state NOT IN ('delivered', 'skipped')"
    )[0][0]
    assert open_or_parked == 0
    files = Counter(
        p.name.split("_")[1] for p in (project / "sandbox/warehouse/in/processed").iterdir()
    )
    assert len(files) == orders and set(files.values()) == {1}, files
    assert f"orders-to-erp: {orders} keys, one sale each" in report.checked

    # and the report reads as a table and as JSON
    assert "must be zero" in text and "orders-to-erp" in text
    data = json.loads(json.dumps(report.as_json()))
    assert data["held"] is True and data["lost"] == 0
    assert {f["flow"] for f in data["flows"]} >= {"orders-to-erp", "stock-to-shop"}
    assert all(f["p50"] is not None for f in data["flows"] if f["delivered"])

    # and every credential in the project's files is a variable, never a value
    credentials = []
    for path in sorted((project / "systems").glob("*.yaml")):
        connection = yaml.safe_load(path.read_text())["connection"]
        for name in ("password", "access_token", "secrets"):
            value = connection.get(name)
            credentials += value if isinstance(value, list) else [value] if value else []
    assert len(credentials) == 4, credentials
    assert all(re.fullmatch(r"\$\{[A-Z_]+\}", c) for c in credentials), credentials


ANSWERS = [
    "lose-answer:erp:5s@3s",  # Tryton creates, its answer never comes: found by reference
    "errors:erp:3s@10s,status=503",
    "reset:shop:8s@8s",  # connections to the shop's API reset before the request gets there
    "slow:shop:3s@17s",  # a write's answer held past the client's timeout
    "warehouse-down:5s@2s",  # the 3PL's SFTP unreachable: order files wait
    "reorder:shop:15s@0s,rate=0.3",
    "malformed:shop:15s@0s,rate=0.15",  # cut in half or without the order id
]


@pytest.mark.timeout(150)
def test_lost_slow_and_refused_answers_and_broken_webhooks_lose_and_double_nothing(
    tmp_path: Path,
) -> None:
    # Given: the demo shop, the hub in this process
    said = io.StringIO()
    project = tmp_path / "demo-shop"

    # When: 15 s of orders at 1/s while answers are lost, refused, reset or held, the 3PL is
    # unreachable for a while, and the shop's webhooks come out of order or broken
    report = run_load(
        EXAMPLE,
        rate=1.0,
        duration=15,
        drain=90,
        chaos=ANSWERS,
        console=Console(file=said, width=200),
        keep=project,
    )

    # Then: nothing lost, doubled or out of order, and every fault played
    text = said.getvalue()
    assert report.drained and not report.interrupted, text
    assert (report.lost, report.duplicated, report.out_of_order) == (0, 0, 0), text
    assert report.parked == 0, text
    played = report.faults
    assert played["erp"].get("lose_answer", 0) > 0, played
    assert played["erp"].get("fail", 0) > 0, played
    assert played["shop"].get("reset", 0) > 0, played
    assert played["warehouse"].get("refused", 0) > 0, played
    assert report.malformed_sent > 0

    # and each broken webhook was refused, visibly, and every well-formed order booked once
    assert report.rejected == report.malformed_sent, text
    journal = project / "journal.db"
    delivered = dict(
        query(journal, "SELECT flow, count(*) FROM delivery WHERE state = 'delivered' GROUP BY 1")
    )
    booked = report.orders - report.malformed_sent
    assert booked > 0
    assert delivered["orders-to-erp"] == delivered["orders-to-warehouse"] == booked, delivered
    parked = query(journal, "SELECT count(*) FROM delivery WHERE state IN ('dead', 'review')")
    assert parked[0][0] == 0
    unknown = query(journal, "SELECT count(*) FROM attempt WHERE classification = 'unknown'")
    assert unknown[0][0] > 0, "no answer was lost: the fault never reached a write"


def test_the_checker_counts_a_missing_a_doubled_and_a_reordered_effect(tmp_path: Path) -> None:
    # Given: a journal where key k1's second delivery was applied before its first, and a
    # target that holds one order twice and misses another
    journal = tmp_path / "journal.db"
    schema = files("seamline.journal.sql").joinpath("migrations/0001_init.sql").read_text()
    with closing(sqlite3.connect(journal)) as db:
        db.executescript(schema)
        db.execute(
            "INSERT INTO message (id, system, source_id, received_at) VALUES (1, 's', 'a', 0)"
        )
        for delivery, key, done in ((1, "k1", 5.0), (2, "k1", 3.0), (3, "k2", 4.0)):
            db.execute(
                "INSERT INTO delivery (id, message_id, flow, flow_version, target, key, safe_retry,"
                " state, due_at, created_at, updated_at) VALUES (?, 1, 'f', 'v', 't', ?, 1,"
                " 'delivered', 0, 0, 0)",
                (delivery, key),
            )
            db.execute(
                "INSERT INTO attempt (delivery_id, started_at, duration, classification,"
                " flow_version) VALUES (?, ?, 0, 'delivered', 'v')",
                (delivery, done),
            )
        db.commit()
    land = cast(Landscape, SimpleNamespace(journal_path=journal))
    verdict = Verdict()

    # When: the checker looks at the journal and at what the target holds
    oracle._journal_order(land, verdict)
    oracle._once(verdict, "f", "sale", ["#1", "#2", "#3"], Counter({"#1": 1, "#2": 2}))

    # Then: one out of order (k1), one duplicated (#2), one lost (#3), each named
    assert (verdict.lost, verdict.duplicated, verdict.out_of_order) == (1, 1, 1)
    assert {(f.what, f.key) for f in verdict.findings} == {
        ("out_of_order", "k1"),
        ("duplicated", "#2"),
        ("lost", "#3"),
    }


def test_the_report_tells_the_alerts_an_operator_got(tmp_path: Path) -> None:
    from dataclasses import replace

    from seamline.journal.sqlite import SqliteJournal
    from seamline.observe.alerts import STATE_CURSOR, Alert, AlertState
    from seamline.sandbox.load.runner import _alerts

    firing = Alert(
        "circuit", "system:erp", "critical", "circuit open: deliveries to erp are held", 1.0
    )
    done = Alert("rejected", "system:shop", "warning", "1 rejected message from shop", 2.0)
    state = AlertState(firing={firing.key: firing}, resolved=(replace(done, resolved_at=3.0),))

    async def keep() -> None:
        journal = SqliteJournal(tmp_path / "journal.db")
        await journal.open()
        try:
            await journal.set_cursor(STATE_CURSOR, state.dump()[0])
        finally:
            await journal.close()

    asyncio.run(keep())

    assert _alerts(tmp_path / "journal.db") == (
        "critical: circuit open: deliveries to erp are held (still firing)",
        "warning: 1 rejected message from shop (resolved)",
    )
