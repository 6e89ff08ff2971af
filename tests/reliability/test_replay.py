"""A load run that plays a slice of real traffic, time-compressed, instead of generated orders.

The "real traffic" is what a hub journaled from a shop that is not the sandbox's: a bigger
catalogue (SKUs the load shop has never sold), orders over ten minutes, some cancelled later.
The run plays it 30 times faster, and every recorded order must be booked, sent to the 3PL and
(where the recording cancels it) called off, with the bodies the hub receives byte for byte
the recorded ones.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import random
import shutil
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from rich.console import Console
from typer.testing import CliRunner

from seamline.cli import app
from seamline.errors import SeamlineError
from seamline.journal.base import NewMessage
from seamline.journal.sqlite import SqliteJournal
from seamline.sandbox.load import run_load
from seamline.sandbox.load.recording import (
    Recorded,
    Recording,
    WebhookReplay,
    read_recording,
)
from seamline.sandbox.load.runner import copy_project
from seamline.sandbox.recording_sink import read_records
from seamline.sandbox.shopify import ShopifySimulator
from seamline.sandbox.webhook_sender import order_data
from tests.conftest import DEMO_SECRETS, DEMO_SHOP, Backend
from tests.reliability.harness import query

MINUTE = 60.0


def recorded_traffic(orders: int, cancel: int) -> list[tuple[float, str, bytes]]:
    """(seconds after the first, topic, body) from a shop of 20 products, as Shopify sent it:
    an order every 40 s; the first `cancel` of them cancelled a minute after."""
    shop = ShopifySimulator(seed=41, shop="recorded-shop", products=20)
    made = shop.generate_orders(orders, channel="web", test=False)
    traffic = [(i * 40.0, "orders/create", orjson.dumps(o)) for i, o in enumerate(made)]
    for i, order in enumerate(made[:cancel]):
        cancelled = shop.cancel_order(int(order["id"]))
        traffic.append((i * 40.0 + MINUTE, "orders/cancelled", orjson.dumps(cancelled)))
    return sorted(traffic, key=lambda t: t[0])


async def journal_traffic(
    journal: SqliteJournal, start: float, traffic: list[tuple[float, str, bytes]]
) -> None:
    for n, (offset, topic, body) in enumerate(traffic):
        headers = orjson.dumps({"x-shopify-topic": topic, "x-shopify-shop-domain": "x"})
        message = NewMessage("shop", f"{topic}:{n}", start + offset, headers, body)
        await journal.append(message)


def test_read_recording_takes_the_window_in_order_and_says_what_is_wrong(
    backend: Backend,
) -> None:
    # Given: a journal holding six messages over ten minutes, two of another system
    start = time.time() - 600

    async def go() -> tuple[Recording, list[str]]:
        journal = backend.make()
        await journal.open()
        try:
            for n, (offset, system) in enumerate(
                [
                    (0, "shop"),
                    (100, "shop"),
                    (150, "crm"),
                    (200, "shop"),
                    (400, "shop"),
                    (500, "erp"),
                ]
            ):
                body = orjson.dumps({"id": n, "line_items": []})
                headers = orjson.dumps({"x-shopify-topic": "orders/create"})
                await journal.append(NewMessage(system, f"m{n}", start + offset, headers, body))
            # When: the window from 50 s to 450 s is read, for the shop and the crm
            recording = await read_recording(
                journal,
                {"shop": "shopify", "crm": "http", "erp": "tryton"},
                since=start + 50,
                until=start + 450,
            )
            refusals = []
            for since, until, limit in ((start - 900, start - 700, 100), (start, start + 600, 2)):
                try:
                    await read_recording(
                        journal, {"shop": "shopify"}, since=since, until=until, limit=limit
                    )
                except SeamlineError as exc:
                    refusals.append(str(exc))
            return recording, refusals
        finally:
            await journal.close()

    recording, refusals = asyncio.run(go())

    # Then: the four messages inside it, oldest first, timed from the first, with topics
    assert [(m.system, m.source_id, round(m.at)) for m in recording.messages] == [
        ("shop", "m1", 0),
        ("crm", "m2", 50),
        ("shop", "m3", 100),
        ("shop", "m4", 300),
    ]
    assert recording.messages[0].topic == "orders/create"
    assert recording.span == pytest.approx(300, abs=0.01)
    assert [m.source_id for m in recording.due(100)] == ["m1", "m2", "m3"]
    assert [m.source_id for m in recording.due(100)] == []
    assert [m.source_id for m in recording.due(1e9)] == ["m4"] and recording.done

    # and an empty window and an oversized one are refused, saying what to do
    assert "no message with its body between" in refusals[0]
    assert "retention" in refusals[0]
    assert "holds more than 2 messages; choose a shorter one" in refusals[1]


@pytest.mark.timeout(180)
def test_recorded_traffic_played_thirty_times_faster_is_booked_once_each(
    tmp_path: Path, demo_project: Path
) -> None:
    # Given: a journal of the demo project holding ten minutes of a real shop's orders
    # (12, the first 3 cancelled a minute later), none of its SKUs known to the sandbox shop
    traffic = recorded_traffic(12, cancel=3)
    start = time.time() - 900

    async def record() -> Recording:
        journal = SqliteJournal(demo_project / "journal.db")
        await journal.open()
        try:
            await journal_traffic(journal, start, traffic)
            # and one of a topic the simulator never sends (a newer API's, say)
            odd = NewMessage(
                "shop", "odd:1", start + 5, b'{"x-shopify-topic":"orders/teleported"}', b"{}"
            )
            await journal.append(odd)
            return await read_recording(
                journal, {"shop": "shopify"}, since=start - 1, until=time.time()
            )
        finally:
            await journal.close()

    recording = asyncio.run(record())
    said = io.StringIO()
    run = tmp_path / "run"

    # When: it plays 30 times faster against the sandbox
    report = run_load(
        demo_project,
        rate=1.0,
        duration=1,
        drain=90,
        console=Console(file=said, width=200),
        keep=run,
        recording=recording,
        speed=30,
    )

    # Then: the traffic lasted the recording's span / 30, and every guarantee held
    text = said.getvalue()
    assert report.duration == pytest.approx(recording.span / 30, abs=1), text
    assert report.drained and not report.interrupted, text
    assert (report.lost, report.duplicated, report.out_of_order) == (0, 0, 0), text
    assert report.parked == 0, text
    assert report.replayed is not None and "16 recorded messages of shop" in report.replayed
    assert (
        "1 recorded shop orders/teleported messages left out: the simulator does not send "
        "that topic" in report.notes
    ), report.notes

    # and the hub received the recorded bodies byte for byte, each once (beside what its
    # poller read back from the shop, the safety net for lost webhooks)
    journal = run / "journal.db"
    sql = "SELECT body FROM message WHERE system = 'shop' AND source_id NOT LIKE 'poll:%'"
    received = sorted(bytes(b) for (b,) in query(journal, sql))
    assert received == sorted(body for _, _, body in traffic)

    # and every recorded order was booked and sent to the 3PL, the 3 cancelled called off
    delivered = dict(
        query(journal, "SELECT flow, count(*) FROM delivery WHERE state = 'delivered' GROUP BY 1")
    )
    assert delivered["orders-to-erp"] == delivered["orders-to-warehouse"] == 12, delivered
    assert delivered["cancellations-to-erp"] == 3, delivered
    assert "orders-to-erp: 12 keys, one sale each" in report.checked, report.checked
    assert "cancellations-to-erp: 3 sales called off" in report.checked, report.checked

    # and the recorded SKUs the sandbox shop lacked were made its own (so the 3PL stocked
    # them and Tryton knew them): every order file lists only those
    recorded_skus = {
        line["sku"]
        for _, topic, body in traffic
        if topic == "orders/create"
        for line in orjson.loads(body)["line_items"]
        if line["sku"]
    }
    files = list((run / "sandbox/warehouse/in/processed").iterdir())
    assert len(files) == 12
    in_files = {
        row["item_sku"] for f in files for row in csv.DictReader(io.StringIO(f.read_text()))
    }
    assert in_files and in_files <= recorded_skus, (in_files, recorded_skus)


def test_load_replay_of_an_empty_window_is_refused_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: the demo shop, none of its secrets set (a load run brings its own credentials)
    project = tmp_path / "demo-shop"
    shutil.copytree(DEMO_SHOP, project, ignore=shutil.ignore_patterns("journal.db*"))
    for name in DEMO_SECRETS:
        monkeypatch.delenv(name, raising=False)

    replay = ["load", str(project), "--replay", "1h", "--speed", "60"]

    # When: the last hour is to be replayed before the hub ever ran, and after, with
    # nothing received
    before = CliRunner().invoke(app, replay)
    made = (project / "journal.db").exists()

    async def make_journal() -> None:
        journal = SqliteJournal(project / "journal.db")
        await journal.open()
        await journal.close()

    asyncio.run(make_journal())
    empty = CliRunner().invoke(app, replay)

    # Then: both are refused before anything starts, saying why and what to do (and no
    # journal is made in the project)
    assert before.exit_code == 2, before.output
    assert "has no journal at" in before.output and not made
    assert empty.exit_code == 2, empty.output
    assert "no message with its body between" in empty.output
    assert "secret is missing" not in before.output + empty.output


def test_recorded_standard_webhooks_are_signed_again_and_applied_once_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: the project `seamline init` writes (a webshop sending Standard Webhooks to an
    # order API), whose journal recorded 6 orders, each created then updated twice
    project = tmp_path / "shop"
    assert CliRunner().invoke(app, ["init", str(project)]).exit_code == 0
    start = time.time() - 300
    sent = []
    for step in range(3):
        for index in range(6):
            data = order_data(index)
            data["updated_at"] = f"2026-11-29T10:{step:02d}:{index:02d}Z"
            data["source_name"] = "web"
            kind = "order.created" if step == 0 else "order.updated"
            body = orjson.dumps({"type": kind, "timestamp": data["updated_at"], "data": data})
            sent.append((step * 60.0 + index * 5, f"msg_{step}_{index}", body))

    async def record() -> Recording:
        journal = SqliteJournal(project / "journal.db")
        await journal.open()
        try:
            for offset, webhook_id, body in sent:
                headers = orjson.dumps({"webhook-id": webhook_id})
                await journal.append(
                    NewMessage("webshop", webhook_id, start + offset, headers, body)
                )
            return await read_recording(
                journal, {"webshop": "http"}, since=start - 1, until=time.time()
            )
        finally:
            await journal.close()

    recording = asyncio.run(record())
    # and the project runs on PostgreSQL in production, the variable naming yet another journal
    settings = project / "seamline.yaml"
    settings.write_text(
        settings.read_text().replace("journal: journal.db", "journal: postgresql://x@127.0.0.1:1/x")
    )
    assert "postgresql://" in settings.read_text()
    elsewhere = tmp_path / "elsewhere.db"
    monkeypatch.setenv("SEAMLINE_JOURNAL_URL", str(elsewhere))
    said = io.StringIO()

    # When: it plays 20 times faster (about 7 s) while the order API drops answers
    report = run_load(
        project,
        rate=1.0,
        duration=1,
        drain=60,
        chaos=["lose-answer:orders-api:3s@1s"],
        console=Console(file=said, width=200),
        keep=tmp_path / "run",
        recording=recording,
        speed=20,
    )

    # Then: all 18 were acknowledged and journaled under their recorded ids, and the order
    # API holds each order once per update, in the order recorded
    text = said.getvalue()
    assert report.held and report.parked == 0, text
    assert "18 acknowledged webshop webhooks journaled" in report.checked, report.checked
    journal = tmp_path / "run" / "journal.db"
    ids = sorted(i for (i,) in query(journal, "SELECT source_id FROM message"))
    assert ids == sorted(i for _, i, _ in sent)
    records = read_records(tmp_path / "run" / "sandbox" / "orders-api.db")
    assert len(records) == 18, records
    assert {r.path for r in records} == {f"/orders/{order_data(i)['id']}" for i in range(6)}
    for path in {r.path for r in records}:
        sent_as = [int(str(r.idempotency_key)[3:]) for r in records if r.path == path]
        assert sent_as == sorted(sent_as), (path, sent_as)  # journal order per order
    assert "orders-to-oms: " in " ".join(report.checked)
    assert report.faults["orders-api"].get("lose_answer", 0) > 0, report.faults

    # and the run journaled in its own copy, saying so, and nowhere else
    assert not elsewhere.exists()
    assert any("PostgreSQL journal was not touched" in n for n in report.notes), report.notes


def test_recorded_webhooks_of_a_system_go_in_order_and_refusals_are_told(tmp_path: Path) -> None:
    # Given: a receiver that takes 0-5 ms per request, refuses one webhook (401) and answers
    # another 503 once
    seen: list[str] = []
    answered_503: set[str] = set()

    async def hook(request: web.Request) -> web.Response:
        webhook_id = request.headers["webhook-id"]
        seen.append(webhook_id)
        await asyncio.sleep(random.random() * 0.005)
        if webhook_id == "m_bad":
            return web.Response(status=401, text="signature does not match")
        if webhook_id == "m_flaky" and webhook_id not in answered_503:
            answered_503.add(webhook_id)
            return web.Response(status=503, headers={"retry-after": "0.05"})
        return web.Response(status=200)

    ids = [f"m_{n:02d}" for n in range(20)]
    ids[5], ids[9] = "m_bad", "m_flaky"
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()

    async def go() -> WebhookReplay:
        app_ = web.Application()
        app_.router.add_post("/hooks/{system}", hook)
        runner = web.AppRunner(app_)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        replay = WebhookReplay({"crm": secret}, f"http://127.0.0.1:{port}", retry_for=5)
        try:
            # When: all 20 are due at once (one tick of a fast replay)
            for webhook_id in ids:
                replay.send(Recorded(0.0, "crm", webhook_id, "order.created", b"{}"))
            await asyncio.wait_for(replay.idle(), 20)
        finally:
            await replay.close()
            await runner.cleanup()
        return replay

    replay = asyncio.run(go())

    # Then: they arrived in recorded order (the 503 one offered again before the next), all
    # but the refused one were acknowledged, and the refusal is told with the answer
    assert [i for i in seen if i != "m_flaky"] == [i for i in ids if i != "m_flaky"]
    assert seen.index("m_flaky") < seen.index(ids[10]) and seen.count("m_flaky") == 2
    assert set(replay.acknowledged["crm"]) == set(ids) - {"m_bad"}
    assert [(u.source_id, u.why) for u in replay.unsent] == [
        ("m_bad", "refused: 401 signature does not match")
    ]


def test_a_broken_answer_is_offered_again_and_what_is_left_at_the_end_is_told() -> None:
    # Given: a receiver whose first answer is a 503 cut short (the hub killed mid-answer),
    # then 200s; and one that answers nothing but 503
    attempts: Counter[str] = Counter()

    async def flaky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        attempts["flaky"] += 1
        if attempts["flaky"] == 1:
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 100\r\n\r\nbusy")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def busy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(b"HTTP/1.1 503 Busy\r\nretry-after: 0.05\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()

    async def go() -> tuple[WebhookReplay, WebhookReplay]:
        servers = [await asyncio.start_server(h, "127.0.0.1", 0) for h in (flaky, busy)]
        urls = [f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}" for s in servers]
        first = WebhookReplay({"crm": secret}, urls[0], retry_for=5)
        second = WebhookReplay({"crm": secret}, urls[1], retry_for=60)
        try:
            # When: one message to the first; three to the second, which the run then ends
            first.send(Recorded(0.0, "crm", "m_1", "order.created", b"{}"))
            await asyncio.wait_for(first.idle(), 10)
            for n in range(3):
                second.send(Recorded(0.0, "crm", f"m_{n}", "order.created", b"{}"))
            await asyncio.sleep(0.3)
        finally:
            await first.close()
            await second.close()
            for server in servers:
                server.close()
        return first, second

    first, second = asyncio.run(go())

    # Then: the cut-short 503 was offered again and acknowledged; the three left are told,
    # the one being offered and the two still queued
    assert attempts["flaky"] == 2
    assert first.acknowledged == {"crm": {"m_1": "order.created"}} and not first.unsent
    assert [(u.source_id, u.why) for u in second.unsent] == [
        ("m_0", "still being offered when the run ended"),
        ("m_1", "still queued when the run ended"),
        ("m_2", "still queued when the run ended"),
    ]
    assert second.pending == 0


def test_a_relative_keep_folder_is_used_as_an_absolute_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hub resolves a relative journal against the project folder, the checker against
    # the working directory: the run's copy is absolute, so both read the same file.
    monkeypatch.chdir(tmp_path)
    copy = copy_project(DEMO_SHOP, Path("run1"))
    assert copy == (tmp_path / "run1").resolve()
    assert (copy / "seamline.yaml").exists()


def test_a_later_recorded_state_of_an_adopted_order_still_fulfils() -> None:
    # Given: a sandbox shop holding a recorded order of an older API version (no
    # `current_quantity`), then its later recorded state
    recorded = ShopifySimulator(seed=41, shop="recorded-shop", products=5)
    (order,) = recorded.generate_orders(1, channel="web", test=False)
    for line in order["line_items"]:
        line.pop("current_quantity", None)
    sandbox = ShopifySimulator(seed=7, products=3)
    sandbox.store.adopt_skus(order["line_items"])
    sandbox.store.adopt(order)
    later = {**order, "tags": "vip", "line_items": [dict(li) for li in order["line_items"]]}
    sandbox.store.adopt(later)

    # When: the hub fulfils it through the sandbox
    fulfillment = sandbox.fulfill_order(int(order["id"]))

    # Then: it is fulfilled, and the later state's fields are the order's
    held = sandbox.store.orders[order["id"]]
    assert fulfillment["order_id"] == order["id"]
    assert held["fulfillment_status"] == "fulfilled"
    assert held["tags"] == "vip"
    quantities = [li["quantity"] for li in order["line_items"]]
    assert [li["current_quantity"] for li in held["line_items"]] == quantities


@pytest.mark.parametrize("speed", [0, -1, 200_000])
def test_a_replay_speed_out_of_range_is_refused_before_anything_starts(speed: float) -> None:
    recording = Recording([Recorded(0.0, "shop", "m", "orders/create", b"{}")], 0.0, 1.0)
    with pytest.raises(SeamlineError, match="speed is a factor above 0"):
        run_load(
            DEMO_SHOP,
            rate=1,
            duration=1,
            drain=1,
            console=Console(file=io.StringIO()),
            recording=recording,
            speed=speed,
        )
