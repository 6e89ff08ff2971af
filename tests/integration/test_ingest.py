"""Ingest answers 2xx only for journaled messages; forged, stale, oversized are refused."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from seamline.connectors.http.connector import HttpOptions
from seamline.connectors.http.signature import generate_secret, sign
from seamline.connectors.http.source import HttpSource
from seamline.engine.ingest import Ingest
from seamline.journal.sqlite import SqliteJournal
from seamline.settings import Secret

SECRET = generate_secret()
BODY = orjson.dumps({"type": "order.created", "data": {"id": 1}})


def signed(
    body: bytes = BODY, *, msg_id: str = "msg_1", age: float = 0.0, secret: str = SECRET
) -> list[tuple[bytes, bytes]]:
    ts = int(time.time() - age)
    return [
        (b"webhook-id", msg_id.encode()),
        (b"webhook-timestamp", str(ts).encode()),
        (b"webhook-signature", sign(secret, msg_id=msg_id, timestamp=ts, body=body).encode()),
        (b"content-type", b"application/json"),
    ]


async def call(
    app: Ingest,
    path: str,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    method: str = "POST",
) -> tuple[int, dict[str, Any], dict[bytes, bytes]]:
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, body = sent
    return start["status"], orjson.loads(body["body"]), dict(start["headers"])


def rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM message").fetchone()[0])
    finally:
        conn.close()


def make_app(journal: SqliteJournal, *, max_body: int = 4096) -> Ingest:
    source = HttpSource("shop", HttpOptions(secrets=[Secret(SECRET)]))
    app = Ingest(journal, {"shop": source}, max_body=max_body)
    app.ready = True
    return app


# (case, path, headers, body chunks, status, journaled rows after); made when a test runs, as
# a signature's timestamp is good for five minutes
def cases() -> list[tuple[str, str, list[tuple[bytes, bytes]], list[bytes], int, int]]:
    other = generate_secret()
    big = b"x" * 5000
    return [
        ("accepted", "/hooks/shop", signed(), [BODY], 200, 1),
        ("body changed by one byte", "/hooks/shop", signed(), [BODY.replace(b"1", b"2")], 401, 0),
        ("wrong secret", "/hooks/shop", signed(secret=other), [BODY], 401, 0),
        ("stale timestamp", "/hooks/shop", signed(age=301), [BODY], 401, 0),
        ("no signature", "/hooks/shop", signed()[:2], [BODY], 401, 0),
        (
            "declared too large",
            "/hooks/shop",
            [*signed(big), (b"content-length", b"5000")],
            [big],
            413,
            0,
        ),
        ("streamed too large", "/hooks/shop", signed(big), [big[:2500], big[2500:]], 413, 0),
        ("unknown system", "/hooks/erp", signed(), [BODY], 404, 0),
        ("not a POST", "/hooks/shop", signed(), [BODY], 405, 0),
    ]


@pytest.mark.parametrize("case", [c[0] for c in cases()])
def test_ingest_answers(tmp_path: Path, case: str) -> None:
    _, path, headers, chunks, status, kept = next(c for c in cases() if c[0] == case)

    async def go() -> tuple[int, dict[str, Any]]:
        journal = SqliteJournal(tmp_path / "j.db")
        await journal.open()
        try:
            got, body, _ = await call(
                make_app(journal), path, headers, chunks, "GET" if case == "not a POST" else "POST"
            )
            return got, body
        finally:
            await journal.close()

    got, body = asyncio.run(go())
    assert got == status, body
    assert rows(tmp_path / "j.db") == kept
    if status >= 400:
        assert body["error"]  # every refusal says why


def test_a_repeated_webhook_id_is_acknowledged_and_kept_once(tmp_path: Path) -> None:
    async def go() -> list[dict[str, Any]]:
        journal = SqliteJournal(tmp_path / "j.db")
        await journal.open()
        app = make_app(journal)
        answers = [(await call(app, "/hooks/shop", signed(), [BODY]))[1] for _ in range(3)]
        await journal.close()
        return answers

    answers = asyncio.run(go())
    assert [a["status"] for a in answers] == ["accepted", "duplicate", "duplicate"]
    assert rows(tmp_path / "j.db") == 1


def test_while_starting_or_stopping_webhooks_get_503_with_retry_after(tmp_path: Path) -> None:
    async def go() -> tuple[int, dict[bytes, bytes]]:
        journal = SqliteJournal(tmp_path / "j.db")
        await journal.open()
        app = make_app(journal)
        app.ready = False
        status, _, headers = await call(app, "/hooks/shop", signed(), [BODY])
        await journal.close()
        return status, headers

    status, headers = asyncio.run(go())
    assert status == 503 and headers[b"retry-after"] == b"1"
    assert rows(tmp_path / "j.db") == 0


def test_a_full_journal_queue_answers_503_at_once(tmp_path: Path) -> None:
    async def go() -> list[int]:
        journal = SqliteJournal(tmp_path / "j.db", max_pending=5)
        await journal.open()
        app = make_app(journal)
        results = await asyncio.gather(
            *(call(app, "/hooks/shop", signed(msg_id=f"m{i}"), [BODY]) for i in range(200))
        )
        await journal.close()
        return [r[0] for r in results]

    statuses = asyncio.run(go())
    assert set(statuses) <= {200, 503}
    assert 503 in statuses
    assert rows(tmp_path / "j.db") == statuses.count(200)
