"""`seamline demo --landscape`: the whole demo shop runs, delivers to every system, and stops.

Tryton comes from the cache the session's `tryton` fixture fills (`~/.cache/seamline`), so it
starts in seconds; on a cold cache this test installs it first.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
from pathlib import Path

import pytest
from rich.console import Console

from seamline.demo_landscape import Plan, run_landscape
from seamline.journal.sqlite import SqliteJournal


def children() -> set[int]:
    """The PIDs whose parent is this process."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == os.getpid():
            found.add(int(stat.parent.name))
    return found


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.timeout(240)
def test_the_landscape_delivers_to_every_system_through_faults_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    # Given: no child process of ours, and a folder for the project
    before = children()
    said = io.StringIO()

    # When: the landscape runs for 15 s, with the ERP cut for 8 s of them
    outcome = run_landscape(
        plan=Plan(duration=15, drain=45),
        keep=tmp_path / "demo-shop",
        console=Console(file=said, width=250),
    )

    # Then: every system got something, and the faults did happen
    assert not outcome.interrupted, said.getvalue()
    assert outcome.orders >= 15
    assert outcome.sales > 0, said.getvalue()
    assert outcome.order_files > 0 and outcome.shipment_files > 0
    assert outcome.fulfillments > 0
    assert outcome.erp_shipped > 0, said.getvalue()
    assert outcome.cancelled >= 1 and outcome.erp_cancelled >= 1, said.getvalue()
    assert outcome.flows["stock-to-shop"].get("delivered", 0) > 0, outcome.flows
    flows = (
        "orders-to-erp",
        "orders-to-warehouse",
        "shipments-to-shop",
        "shipments-to-erp",
        "cancellations-to-erp",
    )
    for flow in flows:
        assert outcome.flows[flow].get("delivered", 0) > 0, outcome.flows
        assert not outcome.flows[flow].get("dead"), outcome.flows
    assert outcome.erp_refused > 0, "the ERP outage never happened"
    assert outcome.malformed == 1

    # and everything it started is gone: Tryton by its PID, every port it listened on
    assert outcome.tryton_pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(outcome.tryton_pid, 0)
    assert children() <= before
    assert outcome.ports and not any(listening(p) for p in outcome.ports)

    # and it says where to look
    text = said.getvalue()
    assert f"seamline status {outcome.project}" in text
    assert (outcome.project / "journal.db").exists()
    # and an operator for the console, whose password (made for this run) it printed
    assert outcome.console_password and f"password {outcome.console_password}" in text
    assert "(user demo, password" in text
    users = asyncio.run(demo_users(outcome.project / "journal.db"))
    assert users == [("demo", "operator")]


async def demo_users(path: Path) -> list[tuple[str, str]]:
    journal = SqliteJournal(path)
    await journal.open()
    try:
        return [(u["name"], u["role"]) for u in await journal.users()]
    finally:
        await journal.close()
