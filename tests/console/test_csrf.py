"""R24: every state-changing route refuses a session request without this session's anti-CSRF
token or from another origin, and changes nothing; the same request done right changes state
(so each refusal is one that could have failed)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from seamline.journal.base import NewMessage, StoredMessage
from tests.console.site import (
    Browser,
    Site,
    add_stock_check,
    journal_path,
    order,
    run,
    served,
)
from tests.console.test_access_control import ROLE_MATRIX

TABLES = (
    "message",
    "message_key",
    "delivery",
    "attempt",
    "xref",
    "audit",
    "app_user",
    "session",
    "api_token",
    "login_failure",
    "check_run",
    "check_finding",
)


@dataclass
class World:
    dead: int
    rejected: int
    token: int


async def world(site: Site) -> World:
    dead = await site.dead_delivery()
    body = b"not json"
    mid = await site.journal.append(NewMessage("webshop", "broken-1", time.time(), b"{}", body))
    assert mid is not None
    await site.journal.route(
        [site.router.route(StoredMessage(mid, "webshop", "broken-1", 0.0, b"{}", body))]
    )
    await site.user("victim", "viewer")
    _, _secret = await site.console.site.access.add_token("bot", "viewer", actor="test")
    tokens = await site.journal.tokens()
    return World(dead, mid, int(tokens[0]["id"]))


def request_for(method: str, path: str, w: World) -> tuple[str, dict[str, Any]]:
    """The path and the body that make this route do its work."""
    path = (
        path.replace("/checks/{name}", "/checks/stock")
        .replace("{delivery_id:int}", str(w.dead))
        .replace("{name}", "victim")
        .replace("{token_id:int}", str(w.token))
    )
    edited = orjson.dumps(order(1001)).decode()
    bodies: dict[str, dict[str, Any]] = {
        f"/deliveries/{w.dead}/edit": {"payload": edited},
        f"/deliveries/{w.dead}/discard": {"reason": "customer cancelled"},
        "/dead/replay": {"flow": "orders-to-oms", "state": "dead", "through": str(w.dead)},
        "/rejected/replay": {"message_id": str(w.rejected)},
        "/access/users": {"name": "newbie", "role": "viewer", "password": "a long password here"},
        "/access/tokens": {"name": "new-bot", "role": "viewer"},
        f"/api/v1/deliveries/{w.dead}/discard": {"reason": "customer cancelled"},
        "/api/v1/dead-letters/replay": {"through": w.dead},
        "/api/v1/rejected/replay": {"message_id": w.rejected},
        "/api/v1/users": {"name": "newbie", "role": "viewer", "password": "a long password here"},
        "/api/v1/tokens": {"name": "new-bot", "role": "viewer"},
    }
    return path, bodies.get(path, {})


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {t: sorted(map(tuple, conn.execute(f"SELECT * FROM {t}"))) for t in TABLES}
    finally:
        conn.close()


async def send(
    browser: Browser,
    method: str,
    path: str,
    body: dict[str, Any],
    *,
    token: str | None,
    origin: str | None,
    referer: str | None = None,
) -> int:
    headers: dict[str, str] = {}
    if origin is not None:
        headers["Origin"] = origin
    if referer is not None:
        headers["Referer"] = referer
    if path.startswith(("/api/", "/metrics")):
        if token is not None:
            headers["X-CSRF-Token"] = token
        kwargs: dict[str, Any] = {"json": body} if method != "DELETE" else {}
    else:
        kwargs = {"data": {**body, **({"csrf": token} if token is not None else {})}}
    async with browser.http.request(
        method, path, headers=headers, allow_redirects=False, **kwargs
    ) as r:
        return r.status


CHANGING = [(m, p) for m, p, role in ROLE_MATRIX if m != "GET" and role is not None]


@pytest.mark.parametrize(("method", "path"), CHANGING)
def test_csrf_is_refused_with_no_state_change(tmp_path: Path, method: str, path: str) -> None:
    # Given an admin signed in, and another admin's session elsewhere
    async def go() -> tuple[list[tuple[str, int]], bool, int, bool]:
        add_stock_check(tmp_path / "project")  # a check to run (its runs fail to read)
        async with served(tmp_path) as site:
            w = await world(site)
            await site.user("alice", "admin")
            await site.user("bob", "admin")
            alice = await site.login("alice")
            bob = await site.login("bob")
            url, body = request_for(method, path, w)
            before = dump(journal_path(tmp_path))
            cases = {
                "no token": {"token": None, "origin": site.url},
                "another session's token": {"token": bob.csrf, "origin": site.url},
                "foreign origin": {"token": alice.csrf, "origin": "http://evil.example"},
                "foreign referer": {
                    "token": alice.csrf,
                    "origin": None,
                    "referer": "http://evil.example/page",
                },
                "no origin or referer": {"token": alice.csrf, "origin": None},
                "null origin": {"token": alice.csrf, "origin": "null"},
            }
            refused = []
            for name, case in cases.items():
                status = await send(alice, method, url, body, **case)
                refused.append((name, status))
            unchanged = dump(journal_path(tmp_path)) == before
            # When the same request is sent right
            status = await send(alice, method, url, body, token=alice.csrf, origin=site.url)
            changed = dump(journal_path(tmp_path)) != before
            return refused, unchanged, status, changed

    refused, unchanged, status, changed = run(go())
    # Then every forged one is refused and changed nothing; the right one did its work
    assert [s for _, s in refused] == [403] * len(refused), refused
    assert unchanged
    assert status in (200, 201, 303), status
    assert changed


def test_a_bearer_token_needs_no_csrf_token(tmp_path: Path) -> None:
    async def go() -> tuple[int, str]:
        async with served(tmp_path) as site:
            dead = await site.dead_delivery()
            token = await site.token("ops-bot", "operator")
            async with site.client().post(
                f"/api/v1/deliveries/{dead}/replay",
                json={},
                headers={"Authorization": f"Bearer {token}"},
            ) as r:
                status = r.status
            detail = await site.journal.delivery_detail(dead)
            assert detail is not None
            return status, detail["delivery"]["state"]

    assert run(go()) == (200, "pending")
