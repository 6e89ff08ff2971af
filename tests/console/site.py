"""A console served over real HTTP on loopback, on a real journal, with a clock the test turns.

`async with served(tmp_path, backend) as site:` writes the example project (unless one is in
`tmp_path/project` already, e.g. the demo shop copied there), opens the journal,
serves `Ingest(extra=Console(...))` (as the hub does) with uvicorn on 127.0.0.1 and an ephemeral
port, and hands back helpers to sign people in and to make tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvicorn

from seamline.cli import write_example
from seamline.console import Console
from seamline.console.access import Access
from seamline.engine.ingest import Ingest
from seamline.engine.router import Router
from seamline.journal.base import (
    AttemptRecord,
    NewMessage,
    Role,
    Settlement,
    StoredMessage,
    Xref,
)
from seamline.journal.group_commit import GroupCommitJournal
from seamline.journal.sqlite import SqliteJournal
from seamline.project import Project, load_project
from tests.conftest import Backend

PASSWORD = "correct horse battery staple"
FLOW = "orders-to-oms"
TARGET = "orders-api"


class Clock:
    """Time as the console sees it; only the test moves it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Site:
    url: str
    journal: GroupCommitJournal
    project: Project
    console: Console
    clock: Clock
    host: str
    router: Router
    _sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return self.url

    async def user(self, name: str, role: Role) -> None:
        await Access(self.journal).add_user(name, role, PASSWORD, actor="test")

    async def token(self, name: str, role: Role) -> str:
        _id, secret = await Access(self.journal).add_token(name, role, actor="test")
        return secret

    def client(self) -> aiohttp.ClientSession:
        """A browser-like client: keeps cookies (also for 127.0.0.1), follows no redirect."""
        session = aiohttp.ClientSession(
            self.url, cookie_jar=aiohttp.CookieJar(unsafe=True), auto_decompress=True
        )
        self._sessions.append(session)
        return session

    async def login(
        self, name: str, password: str = PASSWORD, client: aiohttp.ClientSession | None = None
    ) -> Browser:
        browser = Browser(self, client or self.client())
        status, _ = await browser.login(name, password)
        assert status == 303, f"login of {name} answered {status}"
        return browser

    async def close(self) -> None:
        for s in self._sessions:
            await s.close()

    async def dead_delivery(self, number: int = 1001, **changes: Any) -> int:
        """A webshop order routed to the OMS flow, tried once and dead (422); its id."""
        mid = await self.receive(number, **changes)
        return await self.settle_first(mid, state="dead")

    async def receive(self, number: int = 1001, **changes: Any) -> int:
        data = order(number, **changes)
        body = orjson.dumps({"type": "order.created", "data": data})
        source_id = f"msg-{number}-{time.monotonic_ns()}"
        mid = await self.journal.append(NewMessage("webshop", source_id, time.time(), b"{}", body))
        assert mid is not None
        await self.journal.route(
            [self.router.route(StoredMessage(mid, "webshop", source_id, 0.0, b"{}", body))]
        )
        return mid

    async def settle_first(
        self, message_id: int, *, state: str, xref: tuple[str, str] | None = None
    ) -> int:
        claimed = await self.journal.claim(target=TARGET, owner="test", limit=100, lease=30)
        mine = [c for c in claimed if c.message_id == message_id]
        assert mine, "the message got no delivery"
        c = mine[0]
        delivered = state == "delivered"
        attempt = AttemptRecord(
            started_at=time.time(),
            duration=0.05,
            request=b'{"order_id": "%d"}' % c.message_id,
            status=200 if delivered else 422,
            response=b'{"id": "OMS-1"}' if delivered else b'{"error": "quantity must be > 0"}',
            classification="delivered" if delivered else "permanent",
            error=None if delivered else "OMS answered 422: quantity must be > 0",
            flow_version=c.flow_version,
        )
        xrefs = [Xref("order", "webshop", xref[0], TARGET, xref[1])] if xref else []
        ok = await self.journal.settle(
            [
                Settlement(
                    c.id,
                    c.token,
                    state,  # type: ignore[arg-type]
                    1,
                    time.time(),
                    None if delivered else "permanent",
                    None if delivered else "OMS answered 422: quantity must be > 0",
                    attempt,
                    xrefs,
                )
            ]
        )
        assert ok == [True]
        for other in claimed:  # give back what this test did not mean to settle
            if other is not c:
                await self.journal.settle(
                    [Settlement(other.id, other.token, "pending", 0, 0.0, None, None, None)]
                )
        return c.id


class Browser:
    """One signed-in (or not) browser: its cookies and the CSRF token of its session."""

    def __init__(self, site: Site, client: aiohttp.ClientSession) -> None:
        self.site = site
        self.http = client
        self.csrf = ""

    async def login(self, name: str, password: str) -> tuple[int, str]:
        async with self.http.post(
            "/login",
            data={"name": name, "password": password, "next": "/"},
            headers={"Origin": self.site.origin},
            allow_redirects=False,
        ) as r:
            text = await r.text()
            status = r.status
        if status == 303:
            async with self.http.get("/api/v1/me") as me:
                self.csrf = (await me.json())["csrf"]
        return status, text

    def cookie(self) -> str | None:
        for c in self.http.cookie_jar:
            if c.key in ("seamline_session", "__Host-seamline"):
                return c.value
        return None

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, origin: str | None = "same"
    ) -> tuple[int, str]:
        """A form POST as the console's own pages send it (token in the form)."""
        form = {"csrf": self.csrf, **(data or {})}
        headers = (
            {} if origin is None else {"Origin": self.site.origin if origin == "same" else origin}
        )
        async with self.http.post(path, data=form, headers=headers, allow_redirects=False) as r:
            return r.status, await r.text()

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(path, allow_redirects=False) as r:
            return r.status, await r.text()


def order(number: int = 1001, **changes: Any) -> dict[str, Any]:
    data = {
        "id": 450789000 + number,
        "order_number": number,
        "email": f"customer{number}@example.com",
        "source_name": "web",
        "total_price": "10.00",
        "updated_at": "2026-11-22T10:00:00Z",
        "line_items": [{"sku": f"SKU-{number}", "quantity": 1, "price": "10.00"}],
    }
    data.update(changes)
    return data


def free_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def served(
    tmp_path: Path,
    backend: Backend | None = None,
    *,
    public_url: str | None = None,
) -> AsyncIterator[Site]:
    root = tmp_path / "project"
    if not root.exists():
        write_example(root)
    project = load_project(root)
    journal = backend.make() if backend else SqliteJournal(journal_path(tmp_path))
    await journal.open()
    clock = Clock()
    console = Console(journal, project, clock=clock, public_url=public_url)
    ingest = Ingest(journal, {}, max_body=1 << 20, extra=console)
    ingest.ready = True
    sock = free_socket()
    port = sock.getsockname()[1]
    server = _Server(
        uvicorn.Config(ingest, loop="none", lifespan="off", log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.01)
    shop = project.systems.get("webshop")  # the example's (another project may have none)
    sources = {"webshop": shop.connector.source("webshop", shop.options)} if shop else {}
    router = Router(project, sources, lambda f: True)
    site = Site(
        f"http://127.0.0.1:{port}", journal, project, console, clock, f"127.0.0.1:{port}", router
    )
    try:
        yield site
    finally:
        await site.close()
        server.should_exit = True
        await task
        sock.close()
        await journal.close()


def journal_path(tmp_path: Path) -> Path:
    """The SQLite journal of the project `served` makes in `tmp_path` (the CLI's too)."""
    root = tmp_path / "project"
    return load_project(root).settings.journal_path(root)


def concrete(path: str) -> str:
    """A route's path with its parameters filled in."""
    return re.sub(
        r"\{[a-z_]+(?::int)?\}", lambda m: "999999" if ":int" in m.group(0) else "nobody", path
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def closed_port() -> int:
    """A loopback port nothing listens on (connecting is refused at once)."""
    sock = free_socket()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def add_stock_check(root: Path) -> None:
    """Give the example project at `root` a shop and a warehouse that nothing answers for, and
    a `stock` check between them: it can be run, and each run fails to read and is kept."""
    if not root.exists():
        write_example(root)
    (root / "systems" / "shop.yaml").write_text(
        "kind: shopify\nowner: e-commerce@example.com\nconnection:\n"
        "  shop: test.myshopify.com\n"
        f"  base_url: http://127.0.0.1:{closed_port()}\n"
        "  api_version: '2026-07'\n  access_token: {file: secrets/shop.token}\n"
        "  location_id: '1'\n"
    )
    (root / "systems" / "warehouse.yaml").write_text(
        "kind: sftp_csv\nowner: operations@example.com\nconnection:\n"
        f"  host: 127.0.0.1\n  port: {closed_port()}\n  username: u\n"
        "  password: {file: secrets/warehouse.password}\n"
        "  insecure_accept_any_host_key: true\n  poll: {interval: 1h}\n"
    )
    for secret in ("shop.token", "warehouse.password"):
        (root / "secrets" / secret).write_text("not-a-real-secret\n")
        (root / "secrets" / secret).chmod(0o600)
    (root / "checks").mkdir(exist_ok=True)
    (root / "checks" / "stock.yaml").write_text(
        "owner: operations@example.com\npurpose: The shop sells what the warehouse holds.\n"
        "entity: stock\nleft: {system: warehouse}\nright: {system: shop}\n"
        "fields:\n  available: {absolute: 0}\n"
    )
