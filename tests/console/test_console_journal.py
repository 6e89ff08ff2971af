"""The console's journal verbs on both journals (SQLite on a file, PostgreSQL on a server):
users, sessions, tokens, throttling, and searches that use an index rather than a scan."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seamline.journal.group_commit import GroupCommitJournal
from seamline.journal.queries import queries
from tests.conftest import Backend


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def opened(backend: Backend) -> GroupCommitJournal:
    journal = backend.make()
    await journal.open()
    return journal


def test_users_sessions_and_their_audit(backend: Backend) -> None:
    async def go() -> dict[str, Any]:
        j = await opened(backend)
        try:
            first = await j.add_user(
                "alice", role="admin", password_hash="h1", actor="root", now=1.0
            )
            again = await j.add_user(
                "alice", role="viewer", password_hash="h2", actor="root", now=2.0
            )
            await j.start_session("s1", user="alice", csrf="c1", now=10.0, replaces=None)
            await j.start_session("s2", user="alice", csrf="c2", now=20.0, replaces="s1")
            rotated = (await j.session("s1"), await j.session("s2"))
            await j.touch_session("s2", now=80.0)
            touched = await j.session("s2")
            removed = await j.remove_user("alice", actor="root")
            gone = await j.session("s2")
            audit = [(e["actor"], e["action"]) for e in reversed(await j.audit_log())]
            return {
                "added": (first, again),
                "rotated": rotated,
                "touched": touched,
                "removed": removed,
                "gone": gone,
                "audit": audit,
            }
        finally:
            await j.close()

    r = run(go())
    assert r["added"] == (True, False)
    old, new = r["rotated"]
    assert old is None and new is not None and new.role == "admin" and new.csrf == "c2"
    assert r["touched"].last_seen == 80.0
    assert r["removed"] is True and r["gone"] is None
    assert r["audit"] == [
        ("root", "user-add"),
        ("alice", "login"),
        ("alice", "login"),
        ("root", "user-remove"),
    ]


def test_login_failures_count_within_their_window(backend: Backend) -> None:
    async def go() -> tuple[int, int, int, set[tuple[str, str]]]:
        j = await opened(backend)
        try:
            for t in (0.0, 10.0, 3000.0):
                await j.login_failed("bob", now=t, window=3600.0)
            within = await j.login_failures("bob", since=3000.0 - 3600.0)
            later = await j.login_failures("bob", since=3700.0 - 3600.0)
            await j.login_failed("bob", now=7000.0, window=3600.0)  # forgets the old ones
            rows = len(backend.rows("SELECT * FROM login_failure"))
            return within, later, rows
        finally:
            await j.close()

    assert run(go()) == (3, 1, 1)


def test_tokens_revoke_and_list(backend: Backend) -> None:
    async def go() -> tuple[Any, Any, bool, bool, list[Any]]:
        j = await opened(backend)
        try:
            tid = await j.add_token("ci", role="operator", token_hash="th", actor="root", now=1.0)
            live = await j.token("th")
            await j.touch_token(tid, now=5.0)
            revoked = await j.revoke_token(tid, actor="root", now=6.0)
            twice = await j.revoke_token(tid, actor="root", now=7.0)
            return live, await j.token("th"), revoked, twice, await j.tokens()
        finally:
            await j.close()

    live, after, revoked, twice, listed = run(go())
    assert live.name == "ci" and live.role == "operator"
    assert (after, revoked, twice) == (None, True, False)
    assert listed[0]["last_used"] == 5.0 and listed[0]["revoked_at"] == 6.0
    assert "token_hash" not in listed[0]


SEARCHES = [
    ("messages_by_key", {"value": "#1001", "limit": 10}, "message_key_value"),
    # through UNIQUE (system, source_id), once per system: the walk over `systems` is no table
    (
        "messages_by_source_id",
        {"value": "msg-1", "limit": 10},
        {"sqlite": "sqlite_autoindex_message_1", "postgres": "message_system_source_id_key"},
    ),
    ("deliveries_by_xref", {"value": "OMS-1", "limit": 10}, "xref_"),
    ("audit_page", {"before": 100, "limit": 10}, ""),
]
CTES = {"CONSTANT", "s", "systems"}
"""What a plan may SCAN: constants and the common table expressions of the queries."""


@pytest.mark.parametrize(("name", "params", "index"), SEARCHES)
def test_searches_use_an_index(
    backend: Backend, tmp_path: Path, name: str, params: dict[str, Any], index: str | dict[str, str]
) -> None:
    # Given the migrated schema
    run(_open_close(backend))
    sql = queries(backend.name)[name]
    if backend.name == "sqlite":
        import sqlite3

        conn = sqlite3.connect(tmp_path / "journal.db")
        plan = " ".join(str(r) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        conn.close()
        assert set(re.findall(r"SCAN (\w+)", plan)) <= CTES, plan
    else:
        url = backend.make().url  # type: ignore[attr-defined]
        with psycopg.connect(url) as conn:
            # Tiny tables are read whole whatever the indexes; forbid that to see the plan's index.
            conn.execute("SET enable_seqscan = off")
            plan = " ".join(r[0] for r in conn.execute(f"EXPLAIN {sql}".encode(), params))
        assert "Seq Scan" not in plan, plan
    if isinstance(index, dict):
        index = index[backend.name]
    if index:
        assert index in plan, plan


async def _open_close(backend: Backend) -> None:
    j = await opened(backend)
    await j.close()


def test_journey_follows_cross_references_of_one_object_but_not_of_a_shared_key(
    backend: Backend,
) -> None:
    # Given 25 orders sharing a SKU, each delivered with its own OMS id, and for each a 3PL
    # message naming that OMS id
    from seamline.journal.base import NewDelivery, NewMessage, Routing, Settlement, Xref

    async def go() -> tuple[int, int, int, set[tuple[str, str]]]:
        j = await opened(backend)
        try:
            for n in range(25):
                mid = await j.append(NewMessage("shop", f"o{n}", float(n), b"{}", b"{}"))
                assert mid is not None
                await j.route(
                    [
                        Routing(
                            mid,
                            "order.created",
                            keys={"order": f"#{n}", "sku": "S-1"},
                            deliveries=[NewDelivery("f", "v1", "oms", None, None, True)],
                        )
                    ]
                )
                (c,) = await j.claim(target="oms", owner="t", limit=1, lease=30)
                xref = Xref("order", "shop", f"shop-{n}", "oms", f"OMS-{n}")
                await j.settle(
                    [Settlement(c.id, c.token, "delivered", 1, 0.0, None, None, None, [xref])]
                )
                third = await j.append(NewMessage("3pl", f"s{n}", float(n), b"{}", b"{}"))
                assert third is not None
                await j.route([Routing(third, "fulfillment.created", keys={"ref": f"OMS-{n}"})])
            one = await j.journey(["#7"])
            shared = await j.journey(["S-1"])
            # the ids the sources gave, in two systems
            by_id = await j.journey(["s7", "o3"])
            found = {(str(m["system"]), str(m["source_id"])) for m in by_id["messages"]}
            return len(one["messages"]), len(shared["messages"]), len(shared["xrefs"]), found
        finally:
            await j.close()

    one, shared, xrefs, by_id = run(go())
    # Then one order's journey includes its 3PL message; the SKU's lists the 25 orders only
    assert one == 2
    assert (shared, xrefs) == (25, 25)
    # and a source's own id finds its message whichever system it came from
    assert {("3pl", "s7"), ("shop", "o3")} <= by_id
