"""Real processes on loopback: a hub, a recording sink, and a checker over what they kept.

The checker follows the Jepsen total-queue idea: `acked` (the sender got a 2xx), `effects`
(the sink applied), `dead` (dead letters). Lost = acked - effects - dead must be empty;
duplicated effects (one order applied twice) must be zero.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from seamline.sandbox.project import write_shop_project
from seamline.sandbox.recording_sink import read_records
from seamline.sandbox.webhook_sender import Summary, send_webhooks

ORDER_BASE = 5_000_000_000  # order ids of the sender's default data: ORDER_BASE + index


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Project:
    dir: Path
    hub_port: int
    secret: str
    journal_url: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}/hooks/shop"

    @property
    def journal(self) -> Journal:
        return self.journal_url or self.dir / "journal.db"


Journal = Path | str
"""A SQLite file, or a PostgreSQL URL."""


def write_project(root: Path, *, sink_port: int, failures: int = 5, **options: Any) -> Project:
    """A shop sending orders to a sink that honours Idempotency-Key; identity mapping."""
    hub_port = free_port()
    secret = write_shop_project(
        root,
        hub_port=hub_port,
        sink_port=sink_port,
        failures=failures,
        owner="reliability-tests",
        **options,
    )
    return Project(root, hub_port, secret, options.get("journal"))


class Sink:
    """The recording sink as its own process."""

    def __init__(self, db: Path, port: int) -> None:
        self.db = db
        self.port = port
        self.proc: subprocess.Popen[str] | None = None
        self.control_port = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "seamline.sandbox.recording_sink",
                "--port",
                str(self.port),
                "--control-port",
                "0",
                "--db",
                str(self.db),
                "--key-field",
                "id",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ready = json.loads(self.proc.stdout.readline())
        self.control_port = ready["control_port"]

    async def control(self, **changes: Any) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{self.control_port}/_control", json=changes) as resp,
        ):
            assert resp.status == 200, await resp.text()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Hub:
    """`seamline run` as its own process, restartable."""

    def __init__(
        self, project: Project, log: Path, *, role: str = "all", port: int | None = None
    ) -> None:
        self.project = project
        self.log = log
        self.role = role
        # Workers and schedulers serve health checks on an address of their own.
        self.port = port or (project.hub_port if role in ("all", "ingest") else free_port())
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/shop"

    async def start(self, *, within: float = 20.0, role: str | None = None) -> None:
        role = role or self.role
        ready_before = self._ready_lines()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; nothing here waits
                [
                    sys.executable,
                    "-m",
                    "seamline.cli",
                    "run",
                    str(self.project.dir),
                    "--role",
                    role,
                    "--listen",
                    f"127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                # Roles without HTTP say they are ready in the log, at level info.
                env={**os.environ, "SEAMLINE_LOG_LEVEL": "info"}
                if role in ("worker", "scheduler")
                else None,
            )
        self.starts += 1
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, self.log.read_text()[-3000:]
                if role in ("worker", "scheduler"):
                    if self._ready_lines() > ready_before:
                        return
                else:
                    try:
                        async with session.get(f"http://127.0.0.1:{self.port}/readyz") as r:
                            if r.status == 200:
                                return
                    except aiohttp.ClientError:
                        pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"hub ({role}) did not become ready")

    def _ready_lines(self) -> int:
        if not self.log.exists():
            return 0
        return self.log.read_bytes().count(b'"hub ready"')

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown code runs
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def query(journal: Journal, sql: str) -> list[tuple[Any, ...]]:
    """Read the journal of a running (or stopped) hub, read-only."""
    if isinstance(journal, str):
        import psycopg

        with psycopg.connect(journal, connect_timeout=5) as pg:
            return [tuple(r) for r in pg.execute(sql.encode()).fetchall()]
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def journal_counts(path: Journal) -> dict[str, int]:
    """Deliveries by state, and messages not yet routed, read in one snapshot.

    One statement, not two: between two reads the router can route the last message
    (no longer unrouted) after its delivery was missed (not yet pending), and the
    journal would look drained one message early.
    """
    rows = query(
        path,
        "SELECT state, count(*) FROM delivery GROUP BY state"
        " UNION ALL SELECT 'unrouted', count(*) FROM message WHERE state = 'received'",
    )
    return {str(state): int(n) for state, n in rows}


async def drained(path: Journal, *, within: float) -> dict[str, int]:
    """Wait until nothing is pending, leased or unrouted; return the final counts."""
    deadline = time.monotonic() + within
    while True:
        counts = journal_counts(path)
        if not any(counts.get(s, 0) for s in ("pending", "leased", "unrouted")):
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"not drained after {within:.0f} s: {counts}")
        await asyncio.sleep(0.25)


def acked_indexes(history: Path) -> set[int]:
    acked = set()
    for line in history.read_text().splitlines():
        entry = json.loads(line)
        if entry["op"] == "ok":
            acked.add(int(entry["id"].rsplit("-", 1)[1]))
    return acked


@dataclass
class Verdict:
    acked: set[int]
    effects: Counter[int]
    dead: set[int]

    @property
    def lost(self) -> set[int]:
        return self.acked - set(self.effects) - self.dead

    @property
    def duplicated(self) -> dict[int, int]:
        return {k: n for k, n in self.effects.items() if n > 1}

    def table(self) -> str:
        return (
            f"acked {len(self.acked)}, applied {len(self.effects)}, dead {len(self.dead)}, "
            f"lost {len(self.lost)}, duplicated effects {len(self.duplicated)}"
        )


def verdict(history: Path, sink_db: Path, journal: Journal) -> Verdict:
    effects: Counter[int] = Counter(int(r.key) - ORDER_BASE for r in read_records(sink_db) if r.key)
    dead_ids = query(
        journal,
        "SELECT m.source_id FROM delivery d JOIN message m ON m.id = d.message_id "
        "WHERE d.state = 'dead'",
    )
    dead = {int(str(r[0]).rsplit("-", 1)[1]) for r in dead_ids}
    return Verdict(acked_indexes(history), effects, dead)


def integrity(journal: Path) -> str:
    return str(query(journal, "PRAGMA integrity_check")[0][0])


@dataclass
class Landscape:
    """A recording sink, a project delivering to it, its hub, and the sender's history."""

    sink: Sink
    project: Project
    hub: Hub
    history: Path

    def send(self, **options: Any) -> Coroutine[Any, Any, Summary]:
        return send_webhooks(
            url=self.project.url, secret=self.project.secret, history=self.history, **options
        )

    def verdict(self) -> Verdict:
        return verdict(self.history, self.sink.db, self.project.journal)

    def stop(self) -> None:
        self.hub.stop()
        self.sink.stop()


def landscape(root: Path) -> Landscape:
    sink = Sink(root / "sink.db", free_port())
    sink.start()
    project = write_project(root / "project", sink_port=sink.port)
    return Landscape(sink, project, Hub(project, root / "hub.log"), root / "history.jsonl")
