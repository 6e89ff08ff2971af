"""A hub delivering from worker processes of its own (`worker.processes`).

On SQLite (one worker process): kill -9 of the worker process, twice, and of the hub, mid-load:
the hub starts a new worker process each time; a worker process whose hub died finishes its
batch and exits, while the restarted hub's worker process waits for it; every acknowledged
webhook is applied, none twice, and the journal passes `PRAGMA integrity_check`.

On PostgreSQL (two worker processes): kill -9 of one mid-load while its requests wait for the
target's answers (applied, not yet answered); the hub starts it again, the other delivers
meanwhile, the dead one's leases run out and are taken over; every acknowledged webhook is
applied, none twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from tests.reliability.harness import (
    Hub,
    Landscape,
    Sink,
    drained,
    free_port,
    integrity,
    query,
    write_project,
)

pytestmark = pytest.mark.slow


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


async def worker_process(hub: Hub, *, besides: set[int], within: float = 20.0) -> int:
    """The hub's worker process, once one runs that is not in `besides`."""
    assert hub.proc is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        new = children(hub.proc.pid) - besides
        if new:
            return new.pop()
        await asyncio.sleep(0.05)
    raise AssertionError("the hub started no worker process")


async def leasing(journal: str, pids: set[int], *, within: float = 20.0) -> int:
    """One of `pids` once it holds leases: deliveries it has sent and not yet recorded."""
    deadline = time.monotonic() + within
    leased = "SELECT DISTINCT lease_owner FROM delivery WHERE state = 'leased'"
    while time.monotonic() < deadline:
        owners = {int(str(r[0]).rsplit(":", 1)[1]) for r in query(journal, leased)}
        if owners & pids:
            return (owners & pids).pop()
        await asyncio.sleep(0.05)
    raise AssertionError("no worker process took a lease")


def running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited; nobody has reaped it yet


async def gone(pid: int, *, within: float) -> None:
    deadline = time.monotonic() + within
    while running(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still runs {within:.0f} s after its hub died")
        await asyncio.sleep(0.05)


@pytest.mark.timeout(300)
def test_killed_worker_processes_and_hub_lose_nothing_acknowledged_and_apply_nothing_twice(
    tmp_path: Path,
) -> None:
    sink = Sink(tmp_path / "sink.db", free_port())
    sink.start()
    project = write_project(tmp_path / "project", sink_port=sink.port, processes=1)
    land = Landscape(sink, project, Hub(project, tmp_path / "hub.log"), tmp_path / "hist.jsonl")

    async def go() -> int:
        await land.hub.start()
        sender = asyncio.create_task(
            land.send(
                count=4000,
                connections=16,
                id_prefix="w",
                rate=600,
                retry_for=90.0,
                request_timeout=5.0,
            )
        )
        # Given a hub under load delivering from its worker process, when that process is
        # killed with SIGKILL twice
        killed: set[int] = set()
        for _ in range(2):
            await asyncio.sleep(1.5)
            pid = await worker_process(land.hub, besides=killed)
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        # and then the hub itself, started again at once
        await asyncio.sleep(1.5)
        orphan = await worker_process(land.hub, besides=killed)
        land.hub.kill()
        await land.hub.start()
        # Then the worker process left behind finishes its batch and exits by itself, while
        # the new hub's worker process waits for it before it takes over what is leased
        await gone(orphan, within=30)
        summary = await sender
        assert summary.ok == 4000, summary
        await drained(project.journal, within=90)
        return await worker_process(land.hub, besides=killed | {orphan})

    try:
        last = asyncio.run(go())
    finally:
        land.stop()
    # And the hub, stopped, stopped its worker process before it exited
    assert not running(last)
    # And every acknowledged webhook was applied, none twice
    result = land.verdict()
    assert not result.lost, result.table()
    assert not result.duplicated, result.table()
    assert len(result.acked) == 4000
    assert isinstance(project.journal, Path)
    assert integrity(project.journal) == "ok"
    # And the hub said each time that it started its worker process again
    log = (tmp_path / "hub.log").read_text()
    assert log.count("starting it again") == 2, log[-3000:]


@pytest.mark.timeout(300)
def test_worker_processes_on_postgresql_apply_every_acknowledged_webhook_once(
    tmp_path: Path, postgres_url: str
) -> None:
    sink = Sink(tmp_path / "sink.db", free_port())
    sink.start()
    project = write_project(
        tmp_path / "project", sink_port=sink.port, processes=2, journal=postgres_url
    )
    land = Landscape(sink, project, Hub(project, tmp_path / "hub.log"), tmp_path / "hist.jsonl")

    async def go() -> tuple[set[int], int]:
        await land.hub.start()
        sender = asyncio.create_task(
            land.send(
                count=3000,
                connections=16,
                id_prefix="p",
                rate=400,
                retry_for=90.0,
                request_timeout=5.0,
            )
        )
        # Given a hub under load on PostgreSQL, delivering from two worker processes
        first = await worker_process(land.hub, besides=set())
        second = await worker_process(land.hub, besides={first})
        # When one of them is killed with SIGKILL while the target has applied what it sent
        # and not answered yet (the load goes on for 7.5 s: a slow start of the worker
        # processes still finds deliveries to lease)
        await land.sink.control(mode="slow", slow_seconds=1.0)
        killed = await leasing(postgres_url, {first, second})
        await asyncio.sleep(0.2)
        os.kill(killed, signal.SIGKILL)
        await land.sink.control(mode="ok")
        summary = await sender
        assert summary.ok == 3000, summary
        await drained(project.journal, within=120)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{land.sink.control_port}/_stats") as stats,
        ):
            suppressed = int((await stats.json())["duplicates_suppressed"])
        survivor = ({first, second} - {killed}).pop()
        restarted = await worker_process(land.hub, besides={first, second})
        return {restarted, survivor}, suppressed

    try:
        last, suppressed = asyncio.run(go())
    finally:
        land.stop()
    # Then every acknowledged webhook was applied, none twice
    result = land.verdict()
    assert not result.lost, result.table()
    assert not result.duplicated, result.table()
    assert len(result.acked) == 3000
    # (what the killed one had sent was sent again, and the target applied it once)
    assert suppressed > 0
    # And the hub took the killed one's leases back, started it again, and stopped both
    # before it exited
    log = (tmp_path / "hub.log").read_text()
    assert "leases expired" in log, log[-3000:]
    assert log.count("starting it again") == 1, log[-3000:]
    assert not any(running(pid) for pid in last)


def test_a_worker_process_refuses_a_project_the_hub_does_not_run(tmp_path: Path) -> None:
    from seamline.engine.hub import Hub as HubProcess
    from seamline.engine.worker_process import fingerprint
    from seamline.errors import SeamlineError
    from seamline.project import load_project

    write_project(tmp_path / "project", sink_port=free_port(), processes=1)
    running = load_project(tmp_path / "project")
    # Given a hub running the project, and its flow edited on disk and not applied
    flow = tmp_path / "project" / "flows" / "orders.yaml"
    flow.write_text(flow.read_text().replace("method: PUT", "method: POST"))
    edited = load_project(tmp_path / "project")
    # When a worker process of that hub starts, it refuses and says why
    with pytest.raises(SeamlineError, match="not the one the hub runs"):
        HubProcess(edited, role="worker", worker_of=f"{os.getpid()}:{fingerprint(running)}")
    # And it runs the project the hub runs
    HubProcess(running, role="worker", worker_of=f"{os.getpid()}:{fingerprint(running)}")
