"""The 3PL connector against the 3PL simulator, over real SFTP on loopback.

Orders go in as files once; shipments and inventory snapshots come back as files, are
journaled once however often the 3PL writes them, and are moved aside.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncssh
import orjson
import pytest

from seamline.connectors.base import Event
from seamline.connectors.sftp_csv.connector import PollOptions, SftpCsvOptions
from seamline.connectors.sftp_csv.poller import SftpCsvPoller
from seamline.connectors.sftp_csv.sink import SftpCsvSink
from seamline.connectors.sftp_csv.source import SftpCsvSource
from seamline.errors import ContractError, PermanentError, SignatureError, UnknownOutcomeError
from seamline.journal.base import Routing, StoredMessage
from seamline.journal.sqlite import SqliteJournal
from seamline.sandbox.threepl import ThreePLSimulator
from seamline.settings import Secret


def options(sim: ThreePLSimulator, **changes: Any) -> SftpCsvOptions:
    settings: dict[str, Any] = {
        "host": sim.host,
        "port": sim.port,
        "username": sim.username,
        "password": Secret(sim.password),
        "known_host_key": sim.host_key,
        "poll": PollOptions(interval=1, settle=0),
    }
    return SftpCsvOptions(**{**settings, **changes})


def order(order_id: str, *lines: tuple[str, int]) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "order_number": f"#{order_id}",
        "ship_to": {"name": "Zoë Martens", "line1": "Veldstraat 12", "city": "Gent",
                    "postal_code": "9000", "country_code": "BE"},
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
    }  # fmt: skip


async def until(condition: Callable[[], bool], what: str, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"waited {within} s for {what}")
        await asyncio.sleep(0.01)


class Hub:
    """What the hub does with the file drop: a sink, a poller, a journal, the decoder."""

    def __init__(self, sim: ThreePLSimulator, journal: SqliteJournal, **changes: Any) -> None:
        self.sim = sim
        self.journal = journal
        self.sink = SftpCsvSink("3pl", options(sim, **changes))
        self.poller = SftpCsvPoller("3pl", options(sim, **changes))
        self.source = SftpCsvSource("3pl", options(sim, **changes))

    async def send(self, body: dict[str, Any]) -> Any:
        return await self.sink.send("send_order", body, options={}, idempotency_key="k")

    async def poll(self) -> list[StoredMessage]:
        """One poll round; the messages it journaled (marked routed, so the next is fresh)."""
        await self.poller.poll(self.journal)
        fresh = await self.journal.unrouted(1000)
        await self.journal.route([Routing(m.id, None, rejected="seen") for m in fresh])
        return fresh

    def decode(self, message: StoredMessage) -> Event:
        return self.source.decode(orjson.loads(message.headers), message.body)


@asynccontextmanager
async def hub(tmp_path: Path, **settings: Any) -> AsyncIterator[Hub]:
    settings = {"seed": 3, "time_scale": 0.001, "ship_delay": 1.0, "scan_interval": 5.0} | settings
    async with ThreePLSimulator(tmp_path / "3pl", **settings) as sim:
        journal = SqliteJournal(tmp_path / "journal.db")
        await journal.open()
        h = Hub(sim, journal)
        try:
            yield h
        finally:
            await h.sink.close()
            await h.poller.close()
            await journal.close()


def run(case: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(case(), 15))


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def test_an_order_sent_twice_is_one_file_written_by_rename_and_a_changed_one_is_refused(
    tmp_path: Path,
) -> None:
    async def case() -> None:
        async with hub(tmp_path, scan_interval=10_000) as h:
            root = h.sim.root
            # Given an order sent to the 3PL
            first = await h.send(order("1001", ("TS-BLK-M", 2), ("MUG-01", 1)))
            assert first.error is None, first.error
            assert files(root / "in") == [Path(first.refs["file"]).name]
            assert re.fullmatch(r"ord_1001_\d{12}\.csv", files(root / "in")[0])
            # When it is sent again (a retry after a lost answer): nothing new is written
            again = await h.send(order("1001", ("TS-BLK-M", 2), ("MUG-01", 1)))
            assert again.error is None and again.refs["file"] == first.refs["file"]
            # and once the 3PL took it, a third send finds it among the processed files
            await h.sim.scan()
            third = await h.send(order("1001", ("TS-BLK-M", 2), ("MUG-01", 1)))
            assert third.error is None and "/in/processed/" in third.refs["file"]
            assert [o.order_id for o in h.sim.orders_received] == ["1001"]
            assert h.sim.orders_received[0].lines == {"TS-BLK-M": 2, "MUG-01": 1}
            assert h.sim.rejected_files == [] and files(root / "in") == []
            # Then the same order with other lines is refused, not sent as a second order
            changed = await h.send(order("1001", ("TS-BLK-M", 3)))
            assert isinstance(changed.error, PermanentError)
            assert "other content" in str(changed.error)
            # and a body without lines is the flow's mistake
            empty = await h.send({"order_id": "1002", "lines": []})
            assert isinstance(empty.error, ContractError)

    run(case)


def test_shipments_decode_to_fulfillments_with_split_and_short_shipments_visible(
    tmp_path: Path,
) -> None:
    async def case() -> None:
        async with hub(tmp_path, scan_interval=1.0, split_rate=0.0, short_rate=0.0) as h:
            # Given one order the 3PL splits and one it ships short
            h.sim.plan_order("2001", split=True)
            h.sim.plan_order("2002", short=True)
            for body in (
                order("2001", ("TS-BLK-M", 2), ("MUG-01", 1)),
                order("2002", ("CAP-RED", 3)),
            ):
                assert (await h.send(body)).error is None
            await until(lambda: len(h.sim.shipments_written) == 3, "three shipment files")
            # When the poller reads /out
            events = [h.decode(m) for m in await h.poll()]
            # Then each shipment is one fulfillment with its tracking and lines
            assert {e.name for e in events} == {"fulfillment.created"}
            by_order: dict[str, list[dict[str, Any]]] = {}
            for e in events:
                by_order.setdefault(e.data["order_id"], []).append(e.data)
            split = by_order["2001"]
            assert len(split) == 2
            assert len({f["tracking_numbers"][0] for f in split}) == 2
            shipped = {(line["sku"], line["quantity"]) for f in split for line in f["lines"]}
            assert shipped == {("TS-BLK-M", 2), ("MUG-01", 1)}
            [short] = by_order["2002"]
            assert short["lines"] == [{"line_id": None, "sku": "CAP-RED", "quantity": 2}]
            assert short["status"] == "success" and short["tracking_company"]
            # and the files are moved aside with a timestamp suffix
            out = h.sim.root / "out"
            assert [n for n in files(out) if n.startswith("shp_")] == []
            moved = files(out / "processed")
            assert len(moved) == 3
            assert all(re.fullmatch(r"shp_\w+\.csv\.\d{14}(-\d+)?", n) for n in moved)
            # and a second poll finds nothing
            assert await h.poll() == []

    run(case)


def test_an_inventory_snapshot_gives_zero_for_an_absent_sku_and_a_late_one_changes_nothing(
    tmp_path: Path,
) -> None:
    async def case() -> None:
        async with hub(tmp_path) as h:
            # Given a snapshot with two SKUs
            h.sim.set_stock({"A-1": 5, "B-2": 3})
            h.sim.write_inventory_snapshot()
            levels = {e.data["sku"]: e.data["available"] for e in map(h.decode, await h.poll())}
            assert levels == {"A-1": 5, "B-2": 3}
            # and one held back by the 3PL, written before B-2 ran out
            h.sim.write_inventory_snapshot(hold=True)
            # When the next snapshot no longer lists B-2
            h.sim.set_stock("B-2", 0)
            h.sim.write_inventory_snapshot()
            events = [h.decode(m) for m in await h.poll()]
            # Then B-2 is at 0, and the SKU stands in as the inventory item id
            levels = {e.data["sku"]: e.data["available"] for e in events}
            assert levels == {"A-1": 5, "B-2": 0}
            b2 = next(e for e in events if e.data["sku"] == "B-2")
            assert b2.name == "inventory.changed"
            assert b2.data["inventory_item_id"] == "B-2" and b2.data["location_id"] == "WH1"
            # When the held snapshot arrives late, it changes nothing
            assert h.sim.release_held()
            assert await h.poll() == []
            assert [n for n in files(h.sim.root / "out") if n.startswith("inv_")] == []
            assert len(files(h.sim.root / "out" / "processed")) == 3

    run(case)


def test_a_malformed_row_is_rejected_with_file_and_line_and_the_rest_goes_through(
    tmp_path: Path,
) -> None:
    async def case() -> None:
        async with hub(tmp_path, scan_interval=1.0, split_rate=0.0, short_rate=0.0) as h:
            # Given a shipment file whose last row is broken, written twice by the 3PL
            h.sim.fault_next("malformed", "duplicate")
            body = order("3001", ("A-1", 1), ("B-2", 2), ("C-3", 3))
            assert (await h.send(body)).error is None
            await until(lambda: len(h.sim.shipments_written) == 1, "a shipment file")
            name = h.sim.shipments_written[0].file
            # When the poller reads both copies
            messages = await h.poll()
            # Then the good rows are one fulfillment and the bad row one rejection, once
            assert len(messages) == 2
            outcomes: list[Event | ContractError] = []
            for m in messages:
                try:
                    outcomes.append(h.decode(m))
                except ContractError as exc:
                    outcomes.append(exc)
            [fulfillment] = [o for o in outcomes if isinstance(o, Event)]
            [rejected] = [o for o in outcomes if isinstance(o, ContractError)]
            assert [(x["sku"], x["quantity"]) for x in fulfillment.data["lines"]] == [
                ("A-1", 1),
                ("B-2", 2),
            ]
            assert re.match(rf"shp_d?{re.escape(name[4:])}:4: ", str(rejected)), rejected
            assert "'two' is not a whole number" in str(rejected)
            assert len(files(h.sim.root / "out" / "processed")) == 2

    run(case)


def test_late_duplicate_and_partial_files_make_no_second_effect(tmp_path: Path) -> None:
    async def case() -> None:
        async with hub(tmp_path, scan_interval=1.0, split_rate=0.0, short_rate=0.0) as h:
            # Given a shipment whose copy comes now and whose original comes late
            h.sim.fault_next("late", "duplicate")
            assert (await h.send(order("4001", ("A-1", 1)))).error is None
            await until(lambda: len(h.sim.shipments_written) == 1, "a shipment")
            assert len(await h.poll()) == 1
            # When the late original arrives, it is read and moved aside, and journals nothing
            assert h.sim.release_held()
            assert await h.poll() == []
            assert [n for n in files(h.sim.root / "out") if n.startswith("shp_")] == []
            # Given a shipment file the 3PL writes in place, still cut mid-row
            h.sim.fault_next("partial")
            assert (await h.send(order("4002", ("B-2", 2)))).error is None
            await until(lambda: len(h.sim.shipments_written) == 2, "a second shipment")
            await until(lambda: bool(files(h.sim.root / "out")), "the partial file")
            # Then it is left alone until complete
            assert await h.poll() == []
            assert len(files(h.sim.root / "out")) == 1
            h.sim.complete_partials()
            [message] = await h.poll()
            assert h.decode(message).data["lines"] == [
                {"line_id": None, "sku": "B-2", "quantity": 2}
            ]

    run(case)


def test_a_rename_whose_answer_is_lost_is_an_unknown_outcome_and_the_retry_finds_it_done(
    tmp_path: Path,
) -> None:
    async def case() -> None:
        async with hub(tmp_path, scan_interval=10_000) as h:
            # Given the server renames the order file but the connection dies before it answers
            h.sim.lose_next_rename_answer()
            first = await h.send(order("5001", ("A-1", 1)))
            # Then the attempt is an unknown outcome, which the sink says it may retry
            assert isinstance(first.error, UnknownOutcomeError), first.error
            assert h.sink.idempotent("send_order", {})
            # and the retry reconnects, finds the file and writes nothing more
            retry = await h.send(order("5001", ("A-1", 1)))
            assert retry.error is None, retry.error
            assert [n for n in files(h.sim.root / "in")] == [Path(retry.refs["file"]).name]
            assert not [p for p in (h.sim.root / "in").iterdir() if p.name.startswith(".")]

    run(case)


def test_a_file_cut_for_good_is_read_after_give_up_with_its_last_row_rejected(
    tmp_path: Path,
) -> None:
    async def case() -> None:
        async with hub(tmp_path) as h:
            # Given a shipment file that stays cut mid-row
            out = h.sim.root / "out"
            (out / "shp_9_20261129120000.csv").write_bytes(
                b"order_id,tracking_number,item_sku,item_quantity\n6001,TR1,A-1,1\n6001,TR1,B-"
            )
            poller = SftpCsvPoller("3pl", options(h.sim, poll=PollOptions(settle=0, give_up=0.05)))
            try:
                assert await poller.poll(h.journal) == 0  # first seen: maybe still written
                await asyncio.sleep(0.1)
                # When it has not changed for give_up, it is read as it is
                assert await poller.poll(h.journal) == 2
            finally:
                await poller.close()
            messages = await h.journal.unrouted(10)
            outcomes = []
            for m in messages:
                try:
                    outcomes.append(h.decode(m).data["lines"])
                except ContractError as exc:
                    outcomes.append(str(exc))
            assert [{"line_id": None, "sku": "A-1", "quantity": 1}] in outcomes
            assert any("shp_9_20261129120000.csv:3: " in str(o) and "cut off" in str(o)
                       for o in outcomes)  # fmt: skip

    run(case)


def test_logins_by_key_work_and_a_wrong_host_key_or_password_is_permanent(
    tmp_path: Path,
) -> None:
    async def case() -> None:
        async with hub(tmp_path, scan_interval=10_000) as h:
            with pytest.raises(SignatureError, match="files, not webhooks"):
                h.source.verify([], b"{}")
            by_key = SftpCsvSink(
                "3pl", options(h.sim, password=None, private_key=Secret(h.sim.client_private_key))
            )
            other_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
            wrong = {
                "refused the login": SftpCsvSink("3pl", options(h.sim, password=Secret("nope"))),
                "host key": SftpCsvSink("3pl", options(h.sim, known_host_key=other_key)),
            }
            try:
                sent = await by_key.send("send_order", order("7001", ("A-1", 1)), options={},
                                         idempotency_key="k")  # fmt: skip
                assert sent.error is None, sent.error
                for says, sink in wrong.items():
                    refused = await sink.send("send_order", order("7002", ("A-1", 1)),
                                              options={}, idempotency_key="k")  # fmt: skip
                    assert isinstance(refused.error, PermanentError), refused.error
                    assert says in str(refused.error)
            finally:
                for sink in (by_key, *wrong.values()):
                    await sink.close()
            # and after the server drops every session, the next send reconnects
            await h.sim.drop_connections()
            exchange = await h.send(order("7003", ("A-1", 1)))
            if exchange.error is not None:  # the drop may be noticed by this first call
                exchange = await h.send(order("7003", ("A-1", 1)))
            assert exchange.error is None, exchange.error

    run(case)


def test_the_simulator_runs_as_a_process_and_prints_one_ready_line(tmp_path: Path) -> None:
    async def case() -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "seamline.sandbox.threepl", "--root", str(tmp_path / "3pl"),
            "--port", "0", "--ship-delay", "0",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            ready = json.loads(await asyncio.wait_for(process.stdout.readline(), 10))
            assert ready["ready"] is True and ready["host"] == "127.0.0.1"
            settings = {
                "host": ready["host"],
                "port": ready["port"],
                "username": ready["username"],
                "password": Secret(ready["password"]),
                "known_host_key": ready["host_key"],
            }
            sink = SftpCsvSink("3pl", SftpCsvOptions(**settings))
            try:
                sent = await sink.send("send_order", order("8001", ("A-1", 1)), options={},
                                       idempotency_key="k")  # fmt: skip
                assert sent.error is None, sent.error
            finally:
                await sink.close()
        finally:
            process.terminate()
            assert await asyncio.wait_for(process.wait(), 10) == 0

    run(case)
