"""The recording sink over real sockets: what it applies, what it refuses, what it remembers."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from seamline.connectors.http.signature import generate_secret
from seamline.sandbox.recording_sink import (
    RecordingSink,
    read_records,
    start_recording_sink,
)
from seamline.sandbox.webhook_sender import Summary, send_webhooks

Scenario = Callable[[RecordingSink, aiohttp.ClientSession], Awaitable[None]]


def run_with_sink(tmp_path: Path, scenario: Scenario, **options: Any) -> Path:
    """Run ``scenario`` against a fresh sink on free ports; return the sink's SQLite file."""
    db_path = tmp_path / "sink.db"

    async def main() -> None:
        async with (
            await start_recording_sink(db_path=db_path, **options) as sink,
            aiohttp.ClientSession() as session,
        ):
            await scenario(sink, session)

    asyncio.run(main())
    return db_path


async def post(
    session: aiohttp.ClientSession, url: str, body: Any, **headers: str
) -> tuple[int, dict[str, str], Any]:
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    async with session.post(url, json=body, headers=headers) as response:
        answer = {k.lower(): v for k, v in response.headers.items()}
        return response.status, answer, await response.json()


def test_a_repeated_idempotency_key_is_applied_once_and_answered_alike(tmp_path: Path) -> None:
    answers = []

    async def scenario(sink: RecordingSink, session: aiohttp.ClientSession) -> None:
        # Given an order posted with an idempotency key
        order = {"id": 7, "total": "19.90"}
        answers.append(await post(session, f"{sink.url}/orders", order, Idempotency_Key="k-1"))
        # When the same request is sent again, as a retry after a lost answer would
        answers.append(await post(session, f"{sink.url}/orders", order, Idempotency_Key="k-1"))
        stats = sink.stats()
        assert (stats.applied, stats.duplicates_suppressed) == (1, 1)

    db_path = run_with_sink(tmp_path, scenario)

    # Then both get 200 with the same stored response, the second marked as a replay
    (first_status, _, first_body), (second_status, second_headers, second_body) = answers
    assert first_status == second_status == 200
    assert first_body == second_body == {"id": "r-1", "received": True}
    assert second_headers["idempotent-replayed"] == "true"
    # And only one record exists
    assert [r.idempotency_key for r in read_records(db_path)] == ["k-1"]


def test_concurrent_duplicates_are_applied_once(tmp_path: Path) -> None:
    async def scenario(sink: RecordingSink, session: aiohttp.ClientSession) -> None:
        # Given ten copies of one request in flight at once
        sends = [post(session, sink.url, {"n": 1}, Idempotency_Key="same") for _ in range(10)]
        # When they all arrive before the first is durable
        answers = await asyncio.gather(*sends)
        # Then all succeed with the one stored response
        assert {(status, body["id"]) for status, _, body in answers} == {(200, "r-1")}

    db_path = run_with_sink(tmp_path, scenario)

    assert len(read_records(db_path)) == 1


def test_a_naive_sink_applies_duplicates(tmp_path: Path) -> None:
    async def scenario(sink: RecordingSink, session: aiohttp.ClientSession) -> None:
        # Given a sink that ignores idempotency keys
        # When the same keyed request arrives twice
        first = await post(session, sink.url, {"n": 1}, Idempotency_Key="k")
        second = await post(session, sink.url, {"n": 1}, Idempotency_Key="k")
        # Then both are applied, each with its own id
        assert (first[2]["id"], second[2]["id"]) == ("r-1", "r-2")
        assert sink.stats().duplicates_applied == 1

    db_path = run_with_sink(tmp_path, scenario, naive=True)

    assert [r.idempotency_key for r in read_records(db_path)] == ["k", "k"]


def test_poison_is_refused_until_control_clears_it(tmp_path: Path) -> None:
    async def scenario(sink: RecordingSink, session: aiohttp.ClientSession) -> None:
        # Given a message whose data carries the poison flag
        poisoned = {"type": "order.updated", "data": {"id": 1, "poison": True}}
        # When it is delivered
        status, _, _ = await post(session, sink.url, poisoned, Idempotency_Key="p")
        # Then it is refused with 422 and not applied
        assert status == 422
        # And once the control port clears the poison field, the same delivery is applied
        control = await post(session, f"{sink.control_url}/_control", {"poison_field": None})
        assert control[0] == 200
        assert control[2]["poison_field"] is None
        status, _, _ = await post(session, sink.url, poisoned, Idempotency_Key="p")
        assert status == 200

    db_path = run_with_sink(tmp_path, scenario)

    assert [r.json()["data"]["id"] for r in read_records(db_path)] == [1]


def test_down_refuses_connections_and_ok_accepts_again_on_the_same_port(tmp_path: Path) -> None:
    async def scenario(sink: RecordingSink, session: aiohttp.ClientSession) -> None:
        # Given a client holding a keep-alive connection to the sink
        assert (await post(session, sink.url, {"n": 1}))[0] == 200
        port = sink.port
        # When the control port takes the sink down
        assert (await post(session, f"{sink.control_url}/_control", {"mode": "down"}))[0] == 200
        # Then the open connection is reset and new ones are refused
        with pytest.raises(aiohttp.ClientError):
            await post(session, sink.url, {"n": 2})
        async with aiohttp.ClientSession() as fresh:
            with pytest.raises(aiohttp.ClientConnectorError):
                await post(fresh, sink.url, {"n": 3})
        # And after "ok" the same port accepts again
        await sink.set_mode("ok")
        assert sink.port == port
        assert (await post(session, sink.url, {"n": 4}))[0] == 200

    db_path = run_with_sink(tmp_path, scenario)

    assert [r.json()["n"] for r in read_records(db_path)] == [1, 4]


def test_throttle_answers_429_with_retry_after(tmp_path: Path) -> None:
    async def scenario(sink: RecordingSink, session: aiohttp.ClientSession) -> None:
        # Given a sink told to throttle with a two-second hint
        await sink.set_mode("throttle", retry_after=2)
        # When a delivery arrives
        status, headers, _ = await post(session, sink.url, {"n": 1}, Idempotency_Key="t")
        # Then it is refused with 429 and Retry-After, and not applied
        assert (status, headers["retry-after"]) == (429, "2")
        assert sink.stats().rejected == 1

    db_path = run_with_sink(tmp_path, scenario)

    assert read_records(db_path) == []


def test_slow_mode_applies_before_the_late_answer(tmp_path: Path) -> None:
    async def scenario(sink: RecordingSink, session: aiohttp.ClientSession) -> None:
        # Given a sink that answers half a second late
        await sink.set_mode("slow", slow_seconds=0.5)
        # When a client gives up after a tenth of a second
        with pytest.raises(asyncio.TimeoutError):
            async with session.post(
                sink.url, json={"n": 1}, timeout=aiohttp.ClientTimeout(total=0.1)
            ):
                pass
        # Then the request was applied anyway: the client's outcome is unknown, not failed
        assert sink.stats().applied == 1

    db_path = run_with_sink(tmp_path, scenario)

    assert len(read_records(db_path)) == 1


def test_records_keep_ordering_key_seq_and_body_across_a_restart(tmp_path: Path) -> None:
    fields = {"key_field": "data.customer", "seq_field": "data.version"}

    async def first_run(sink: RecordingSink, session: aiohttp.ClientSession) -> None:
        # Given deliveries with the ordering key in a header or in the body
        body = {"data": {"customer": "c-9", "version": 3}}
        await post(session, f"{sink.url}/a?x=1", body, X_Seamline_Ordering_Key="hdr")
        await post(session, f"{sink.url}/b", body, Idempotency_Key="once")

    async def second_run(sink: RecordingSink, session: aiohttp.ClientSession) -> None:
        # When the sink restarts on the same file and a keyed delivery is retried
        status, _, body = await post(session, sink.url, {"data": {}}, Idempotency_Key="once")
        # Then the stored response comes back: idempotency survives the restart
        assert (status, body["id"]) == (200, "r-2")

    run_with_sink(tmp_path, first_run, **fields)
    db_path = run_with_sink(tmp_path, second_run, **fields)

    # And the file holds exactly the applied requests, fields extracted
    records = read_records(db_path)
    assert [(r.id, r.method, r.path, r.key, r.seq) for r in records] == [
        (1, "POST", "/a?x=1", "hdr", 3),
        (2, "POST", "/b", "c-9", 3),
    ]
    assert records[1].json() == {"data": {"customer": "c-9", "version": 3}}


def test_a_retrying_sender_gets_every_message_through_an_outage(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    summaries: list[Summary] = []

    async def scenario(sink: RecordingSink, session: aiohttp.ClientSession) -> None:
        # Given a sink that is down when the sender starts, and a tenth of messages poisoned
        await sink.set_mode("down")
        async with asyncio.TaskGroup() as tasks:
            sending = tasks.create_task(
                send_webhooks(
                    url=f"{sink.url}/hooks",
                    secret=generate_secret(),
                    count=40,
                    connections=4,
                    history=history,
                    poison_rate=0.1,
                    seed=3,
                    retry_for=20,
                )
            )
            # When it comes back up a moment later
            await asyncio.sleep(0.3)
            await sink.set_mode("ok")
        summaries.append(sending.result())

    db_path = run_with_sink(tmp_path, scenario, key_field="data.id")

    # Then every message ends ok except the poisoned ones, refused for good
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    poisoned = {line["id"] for line in lines if line.get("poison")}
    (summary,) = summaries
    assert (summary.sent, summary.ok, summary.failed, summary.unknown) == (
        40,
        40 - len(poisoned),
        len(poisoned),
        0,
    )
    assert 0 < len(poisoned) < 40
    # And the outage shows in the history as attempts without an answer, later retried
    assert any(line["op"] == "info" for line in lines)
    # And the sink holds each unpoisoned message once
    keys = [record.key for record in read_records(db_path)]
    assert len(keys) == len(set(keys)) == 40 - len(poisoned)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"mode": "sideways"}, "mode is one of"),
        ({"mood": "ok"}, "unknown keys ['mood']"),
        ({"poison_status": 200}, "poison_status"),
        ([1, 2], "JSON object"),
    ],
)
def test_control_rejects_bad_changes(tmp_path: Path, body: Any, complaint: str) -> None:
    async def scenario(sink: RecordingSink, session: aiohttp.ClientSession) -> None:
        # Given a control request the sink cannot honour
        # When it is posted
        status, _, answer = await post(session, f"{sink.control_url}/_control", body)
        # Then it is refused with a reason, and the mode is unchanged
        assert status == 400
        assert complaint in answer["error"]
        assert sink.settings.mode == "ok"

    run_with_sink(tmp_path, scenario)


def test_stats_count_by_outcome(tmp_path: Path) -> None:
    async def scenario(sink: RecordingSink, session: aiohttp.ClientSession) -> None:
        # Given one applied, one replayed and one poisoned delivery
        await post(session, sink.url, {"n": 1}, Idempotency_Key="a")
        await post(session, sink.url, {"n": 1}, Idempotency_Key="a")
        await post(session, sink.url, {"poison": True})
        # When the stats are read over the control port
        async with session.get(f"{sink.control_url}/_stats") as response:
            stats = await response.json()
        # Then each outcome is counted
        assert stats["applied"] == 1
        assert stats["duplicates_suppressed"] == stats["replayed"] == 1
        assert stats["rejected"] == 1
        assert stats["by_status"] == {"200": 2, "422": 1}

    run_with_sink(tmp_path, scenario)


def test_the_cli_reports_ready_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    # Given the sink started as a process on free ports
    command = [sys.executable, "-m", "seamline.sandbox.recording_sink", "--port", "0"]
    command += ["--control-port", "0", "--db", str(tmp_path / "cli.db")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["ready"] is True

        # When a delivery arrives and then SIGTERM
        async def deliver() -> int:
            async with aiohttp.ClientSession() as session:
                return (await post(session, f"http://127.0.0.1:{ready['port']}/", {"n": 1}))[0]

        assert asyncio.run(deliver()) == 200
        process.send_signal(signal.SIGTERM)
        last_line = process.stdout.read().strip().splitlines()[-1]
        # Then it exits 0, having counted and stored the delivery
        assert process.wait(timeout=10) == 0
    assert json.loads(last_line)["applied"] == 1
    assert len(read_records(tmp_path / "cli.db")) == 1
