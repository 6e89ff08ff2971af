"""What operators do through the API and the pages: search a journey, read a delivery, replay,
edit and replay, discard, bulk replay after a preview, route rejected messages again; each
action audited with its actor, each refused to a viewer."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from seamline.journal.base import NewMessage, Routing, StoredMessage
from tests.conftest import Backend
from tests.console.site import Site, run, served


async def api(site: Site, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    http: aiohttp.ClientSession = site.client()
    kwargs = {} if body is None else {"json": body}
    async with http.request(
        method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
    ) as r:
        return r.status, await r.json()


async def state_of(site: Site, delivery_id: int) -> str:
    detail = await site.journal.delivery_detail(delivery_id)
    assert detail is not None
    return str(detail["delivery"]["state"])


async def audit_actions(site: Site) -> list[tuple[str, str, str]]:
    return [
        (e["actor"], e["action"], e["target"])
        for e in reversed(await site.journal.audit_log(limit=500))
    ]


def test_search_by_order_number_shows_the_journey_across_systems(
    tmp_path: Path, backend: Backend
) -> None:
    # Given order #1001 delivered to the OMS (which calls it OMS-77), a 3PL shipment that names
    # the OMS order, and an unrelated order #1002
    async def go() -> dict[str, Any]:
        async with served(tmp_path, backend) as site:
            shop = await site.receive(1001)
            await site.settle_first(shop, state="delivered", xref=("450790001", "OMS-77"))
            other = await site.receive(1002)
            body = b'{"shipment": "S-9"}'
            mid = await site.journal.append(NewMessage("3pl", "ship-9", time.time(), b"{}", body))
            assert mid is not None
            await site.journal.route(
                [Routing(mid, "fulfillment.created", keys={"order_id": "OMS-77"})]
            )
            token = await site.token("reader", "viewer")
            # When someone searches for "#1001"
            status, found = await api(site, token, "GET", "/api/v1/search?q=%231001")
            assert status == 200
            found["other"] = other
            return found  # type: ignore[no-any-return]

    found = run(go())
    events = found["events"]
    kinds = [e["kind"] for e in events]
    # Then the journey runs in time order: received, delivery, attempt, cross-reference,
    # delivered, then the 3PL shipment found through the cross-reference
    assert kinds == ["message", "delivery", "attempt", "xref", "delivered", "message"]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert "OMS-77" in events[3]["text"]
    assert events[-1]["system"] == "3pl"
    assert "order=1001" in events[0]["keys"]
    # And order #1002 is not part of it
    assert found["other"] not in {e.get("message_id") for e in events}
    assert found["other"] not in {m["id"] for m in found["messages"]}


@pytest.mark.parametrize(
    "query",
    ["1001", "#1001", "customer1001@example.com", "CUSTOMER1001@example.com", "OMS-77"],
)
def test_search_finds_the_order_by_any_of_its_keys(tmp_path: Path, query: str) -> None:
    async def go() -> set[int]:
        async with served(tmp_path) as site:
            mid = await site.receive(1001)
            await site.settle_first(mid, state="delivered", xref=("450790001", "OMS-77"))
            await site.receive(1002)
            found = await site.console.site.ops.search(query)
            return {int(m["id"]) for m in found["messages"]} ^ {mid}

    assert run(go()) == set()  # exactly the order's message


def test_search_by_delivery_id(tmp_path: Path) -> None:
    async def go() -> list[int]:
        async with served(tmp_path) as site:
            dead = await site.dead_delivery(1001)
            await site.receive(1002)
            found = await site.console.site.ops.search(f"d{dead}")
            return [int(d["id"]) for d in found["deliveries"]] + [dead]

    ids = run(go())
    assert ids[:-1] == [ids[-1]]


def test_delivery_detail_has_message_request_attempts_and_flow_version(tmp_path: Path) -> None:
    async def go() -> dict[str, Any]:
        async with served(tmp_path) as site:
            dead = await site.dead_delivery(1001)
            token = await site.token("reader", "viewer")
            status, detail = await api(site, token, "GET", f"/api/v1/deliveries/{dead}")
            assert status == 200
            return detail  # type: ignore[no-any-return]

    detail = run(go())
    assert detail["delivery"]["state"] == "dead"
    assert detail["delivery"]["flow"] == "orders-to-oms"
    assert detail["delivery"]["flow_version"] == detail["delivery"]["live_flow_version"]
    assert '"order_number": 1001' in detail["message"]["body"]
    (attempt,) = detail["attempts"]
    assert attempt["status"] == 422 and attempt["classification"] == "permanent"
    assert "quantity must be > 0" in attempt["response"]
    assert attempt["request"]
    assert {"name": "order", "value": "1001"} in detail["keys"]


def test_replay_and_discard_are_audited_with_the_actor(tmp_path: Path) -> None:
    async def go() -> tuple[list[str], list[tuple[str, str, str]], list[dict[str, Any]]]:
        async with served(tmp_path) as site:
            first = await site.dead_delivery(1001)
            second = await site.dead_delivery(1002)
            token = await site.token("ops-bot", "operator")
            await api(site, token, "POST", f"/api/v1/deliveries/{first}/replay", {})
            status, _ = await api(
                site, token, "POST", f"/api/v1/deliveries/{second}/discard", {"reason": " "}
            )
            assert status == 400  # a reason is required
            await api(
                site,
                token,
                "POST",
                f"/api/v1/deliveries/{second}/discard",
                {"reason": "duplicate order"},
            )
            audit = await audit_actions(site)
            detail = [e["detail"] for e in await site.journal.audit_log()]
            return [await state_of(site, first), await state_of(site, second)], audit, detail

    states, audit, detail = run(go())
    assert states == ["pending", "discarded"]
    assert ("token:ops-bot", "replay", "delivery/1") in audit
    assert ("token:ops-bot", "discard", "delivery/2") in audit
    assert {"reason": "duplicate order"} in detail


def test_edit_and_replay_sends_the_edited_event_data(tmp_path: Path) -> None:
    async def go() -> tuple[dict[str, Any], bytes | None, list[tuple[str, str, str]]]:
        async with served(tmp_path) as site:
            dead = await site.dead_delivery(1001)
            token = await site.token("ops-bot", "operator")
            status, data = await api(site, token, "GET", f"/api/v1/deliveries/{dead}/event")
            assert status == 200
            data["line_items"][0]["quantity"] = 2
            await api(site, token, "POST", f"/api/v1/deliveries/{dead}/replay", {"payload": data})
            found = await site.journal.delivery_source(dead)
            assert found is not None
            return data, found[0], await audit_actions(site)

    data, stored, audit = run(go())
    assert stored is not None and orjson.loads(stored) == data
    assert ("token:ops-bot", "edit-and-replay", "delivery/1") in audit


def test_bulk_replay_replays_what_the_preview_showed(tmp_path: Path) -> None:
    # Given three dead deliveries
    async def go() -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        async with served(tmp_path) as site:
            ids = [await site.dead_delivery(n) for n in (1001, 1002, 1003)]
            token = await site.token("ops-bot", "operator")
            # When an operator previews a bulk replay
            _, preview = await api(
                site, token, "GET", "/api/v1/dead-letters/preview?flow=orders-to-oms"
            )
            # And one more dies before the confirmation
            later = await site.dead_delivery(1004)
            _, done = await api(
                site,
                token,
                "POST",
                "/api/v1/dead-letters/replay",
                {"flow": "orders-to-oms", "through": preview["through"]},
            )
            return preview, done, [await state_of(site, i) for i in [*ids, later]]

    preview, done, states = run(go())
    # Then the preview counted three, with a sample, and exactly those three were replayed
    assert preview["count"] == 3 and len(preview["sample"]) == 3
    assert done == {"replayed": 3, "selected": 3}
    assert states == ["pending", "pending", "pending", "dead"]


def test_rejected_messages_are_grouped_and_routed_again(tmp_path: Path) -> None:
    async def go() -> tuple[dict[str, Any], str, list[tuple[str, str, str]]]:
        async with served(tmp_path) as site:
            mids = []
            for n in range(2):
                body = b"not json"
                mid = await site.journal.append(
                    NewMessage("webshop", f"bad-{n}", time.time(), b"{}", body)
                )
                assert mid is not None
                await site.journal.route(
                    [site.router.route(StoredMessage(mid, "webshop", f"bad-{n}", 0, b"{}", body))]
                )
                mids.append(mid)
            token = await site.token("ops-bot", "operator")
            _, dead = await api(site, token, "GET", "/api/v1/dead-letters")
            await api(site, token, "POST", "/api/v1/rejected/replay", {"message_id": mids[0]})
            rows = await site.journal.rejected()
            still = ",".join(str(r["id"]) for r in rows)
            return dead, still, await audit_actions(site)

    dead, still, audit = run(go())
    (group,) = dead["rejected"]
    assert group["system"] == "webshop" and group["n"] == 2
    assert "not JSON" in group["reason"]
    assert still == "2"
    assert ("token:ops-bot", "replay-rejected", "message/1") in audit


def test_dead_letters_are_grouped_by_flow_and_error_class(tmp_path: Path) -> None:
    async def go() -> list[dict[str, Any]]:
        async with served(tmp_path) as site:
            for n in (1001, 1002):
                await site.dead_delivery(n)
            token = await site.token("reader", "viewer")
            _, dead = await api(site, token, "GET", "/api/v1/dead-letters")
            return dead["deliveries"]  # type: ignore[no-any-return]

    (group,) = run(go())
    assert (group["flow"], group["error_class"], group["n"]) == ("orders-to-oms", "permanent", 2)
    assert "quantity must be > 0" in group["sample_error"]


def test_a_viewer_reads_but_cannot_act(tmp_path: Path) -> None:
    async def go() -> tuple[list[int], str, bool]:
        async with served(tmp_path) as site:
            dead = await site.dead_delivery(1001)
            token = await site.token("reader", "viewer")
            statuses = [
                (await api(site, token, "GET", f"/api/v1/deliveries/{dead}"))[0],
                (await api(site, token, "POST", f"/api/v1/deliveries/{dead}/replay", {}))[0],
                (
                    await api(
                        site, token, "POST", f"/api/v1/deliveries/{dead}/discard", {"reason": "x"}
                    )
                )[0],
            ]
            await site.user("vera", "viewer")
            vera = await site.login("vera")
            _, page = await vera.get(f"/deliveries/{dead}")
            return statuses, await state_of(site, dead), "/replay" in page

    statuses, state, replay_button = run(go())
    assert statuses == [200, 403, 403]
    assert state == "dead"
    assert not replay_button  # the page offers her no action


def test_pages_show_the_overview_dead_letters_and_audit(tmp_path: Path) -> None:
    async def go() -> dict[str, tuple[int, str]]:
        async with served(tmp_path) as site:
            dead = await site.dead_delivery(1001)
            await site.user("olga", "operator")
            olga = await site.login("olga")
            pages = {p: await olga.get(p) for p in ("/", "/dead", "/search?q=1001", "/audit")}
            pages["replay"] = await olga.post(f"/deliveries/{dead}/replay")
            pages["after"] = await olga.get(f"/deliveries/{dead}?note=replayed")
            pages["/audit2"] = await olga.get("/audit")
            return pages

    pages = run(go())
    assert all(status == 200 for p, (status, _) in pages.items() if p != "replay")
    assert "orders-to-oms" in pages["/"][1] and "RED" in pages["/"][1].upper()
    assert "permanent" in pages["/dead"][1]
    assert "journey" in pages["/search?q=1001"][1]
    assert pages["replay"][0] == 303
    assert "pending" in pages["after"][1] and "Replayed" in pages["after"][1]
    assert "olga" in pages["/audit2"][1] and "replay" in pages["/audit2"][1]


def test_a_group_of_rejected_messages_is_routed_again_from_the_page(tmp_path: Path) -> None:
    # Given two messages rejected for one cause and one for another
    async def go() -> list[int]:
        async with served(tmp_path) as site:
            for n, body in enumerate([b"not json", b"not json", b"[1]"]):
                mid = await site.journal.append(
                    NewMessage("webshop", f"bad-{n}", time.time(), b"{}", body)
                )
                assert mid is not None
                await site.journal.route(
                    [site.router.route(StoredMessage(mid, "webshop", f"bad-{n}", 0, b"{}", body))]
                )
            groups = (await site.journal.rejected_groups())[0]
            await site.user("olga", "operator")
            olga = await site.login("olga")
            # When the operator routes the larger group again
            status, _ = await olga.post(
                "/rejected/replay", {"system": "webshop", "reason": groups["reason"]}
            )
            assert status == 303
            return [int(str(r["id"])) for r in await site.journal.rejected()]

    # Then only the other cause's message is still rejected
    assert run(go()) == [3]


def test_the_deliveries_of_one_cause_are_listed_newest_first(tmp_path: Path) -> None:
    async def go() -> tuple[dict[str, Any], list[int], str]:
        async with served(tmp_path) as site:
            ids = [await site.dead_delivery(n) for n in (1001, 1002)]
            token = await site.token("reader", "viewer")
            _, listed = await api(
                site,
                token,
                "GET",
                "/api/v1/dead-letters/deliveries?flow=orders-to-oms&error_class=permanent",
            )
            _, other = await api(
                site, token, "GET", "/api/v1/dead-letters/deliveries?error_class=transient"
            )
            await site.user("vera", "viewer")
            vera = await site.login("vera")
            _, page = await vera.get("/dead/deliveries?flow=orders-to-oms&state=dead")
            assert other["count"] == 0
            return listed, ids, page

    listed, ids, page = run(go())
    assert listed["count"] == 2
    assert [d["id"] for d in listed["deliveries"]] == ids[::-1]
    assert all(f'href="/deliveries/{i}"' in page for i in ids)
    assert "Replay all" not in page  # a viewer is offered no action


def test_charts_count_throughput_and_latency_per_hour(tmp_path: Path, backend: Backend) -> None:
    # Given an order delivered, one dead and one still waiting, all this hour
    async def go() -> tuple[dict[str, Any], str]:
        async with served(tmp_path, backend) as site:
            await site.dead_delivery(1001)
            mid = await site.receive(1002)
            await site.settle_first(mid, state="delivered")
            await site.receive(1003)
            token = await site.token("reader", "viewer")
            _, charts = await api(site, token, "GET", "/api/v1/charts?hours=3")
            await site.user("vera", "viewer")
            vera = await site.login("vera")
            _, page = await vera.get("/charts")
            return charts, page

    charts, page = run(go())
    series = charts["series"]
    # Then the last of three hours counts them, and the hours before are empty
    assert len(series) == 3
    now = series[-1]
    assert (now["received"], now["delivered"], now["failed"]) == (3, 1, 1)
    assert now["latency_mean"] == pytest.approx(0.05)
    assert now["backlog"] == 1  # the one waiting; the settled two are not backlog
    assert all(p["received"] == 0 and p["latency_mean"] is None for p in series[:-1])
    assert all(p["backlog"] == 0 for p in series[:-1])
    assert page.count("<rect") >= 4 * 24
    assert "Backlog at the end of each hour" in page


def test_alerts_are_listed_and_announced_on_the_overview(tmp_path: Path) -> None:
    # Given the alert loop's state in the journal: one alert firing, one resolved
    from seamline.observe.alerts import STATE_CURSOR, Alert, AlertState

    firing = Alert("dead_letters", "flow:orders-to-oms", "critical", "3 dead letters", 100.0)
    done = Alert("circuit", "system:orders-api", "critical", "circuit open", 50.0)
    state = AlertState(firing={firing.key: firing}, resolved=(replace(done, resolved_at=90.0),))

    async def go() -> tuple[dict[str, Any], str, str]:
        async with served(tmp_path) as site:
            await site.journal.set_cursor(STATE_CURSOR, state.dump()[0])
            token = await site.token("reader", "viewer")
            _, listed = await api(site, token, "GET", "/api/v1/alerts")
            await site.user("vera", "viewer")
            vera = await site.login("vera")
            return listed, (await vera.get("/"))[1], (await vera.get("/alerts"))[1]

    listed, overview, page = run(go())
    assert [a["summary"] for a in listed["firing"]] == ["3 dead letters"]
    assert [a["resolved_at"] for a in listed["resolved"]] == [90.0]
    assert "1 alert firing" in overview and "3 dead letters" in overview
    assert "3 dead letters" in page and "circuit open" in page
