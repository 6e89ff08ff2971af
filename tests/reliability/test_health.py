"""Every role answers health checks where it is told to listen, and says when it cannot work."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from seamline.sandbox.postgres import LocalPostgres
from tests.reliability.harness import Hub, free_port, write_project


@pytest.mark.timeout(120)
def test_a_worker_answers_health_checks_and_is_not_ready_while_the_journal_is_away(
    tmp_path: Path, own_postgres: LocalPostgres
) -> None:
    url = own_postgres.create_database("hub")
    project = write_project(tmp_path / "project", sink_port=free_port(), journal=url)
    worker = Hub(project, tmp_path / "worker.log", role="worker")

    async def status(session: aiohttp.ClientSession, method: str, path: str) -> tuple[int, str]:
        async with session.request(method, f"http://127.0.0.1:{worker.port}{path}") as r:
            return r.status, await r.text()

    async def readiness_becomes(session: aiohttp.ClientSession, expected: int) -> None:
        deadline = time.monotonic() + 20
        while (await status(session, "GET", "/readyz"))[0] != expected:
            assert time.monotonic() < deadline, f"/readyz never answered {expected}"
            await asyncio.sleep(0.2)

    async def go() -> None:
        await worker.start(within=30)
        async with aiohttp.ClientSession() as session:
            assert (await status(session, "GET", "/healthz"))[0] == 200
            assert (await status(session, "GET", "/readyz"))[0] == 200
            # A webhook sent to a worker is refused with the reason, not journaled
            code, body = await status(session, "POST", "/hooks/shop")
            assert code == 404 and "does not take webhooks (role worker)" in body
            # While the server is away the worker is alive but not ready; then ready again
            own_postgres.crash()
            await readiness_becomes(session, 503)
            assert (await status(session, "GET", "/healthz"))[0] == 200
            own_postgres.start()
            await readiness_becomes(session, 200)

    try:
        asyncio.run(go())
    finally:
        worker.stop()
