"""`console_app`: the console and the REST API as one ASGI app, mounted by the hub behind ingest
on the same port (`Ingest(extra=...)`): `/hooks/*`, `/healthz` and `/readyz` are ingest's, every
other path is the console's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seamline.console import api, pages
from seamline.console.access import Access
from seamline.console.endpoints import Endpoint, Site, guard
from seamline.console.openapi import document
from seamline.console.service import Decode, Operations
from seamline.engine.router import offline_router
from seamline.journal.base import ConsoleJournal
from seamline.project import Project

MAX_BODY = 1024 * 1024


class Console:
    """The console's app and what it is made of (tests reach in for the endpoint table)."""

    def __init__(
        self,
        journal: ConsoleJournal,
        project: Project,
        *,
        decode: Decode | None = None,
        clock: Callable[[], float] = time.time,
        public_url: str | None = None,
    ) -> None:
        self.site = Site(
            Access(journal, clock=clock),
            Operations(journal, project, decode=decode or decoder(project), clock=clock),
            public_url=public_url,
        )
        self.openapi: dict[str, Any] = {}
        self.endpoints: list[Endpoint] = [
            *pages.endpoints(self.site),
            *api.endpoints(self.site, lambda: self.openapi),
        ]
        self.openapi = document(self.endpoints, title=f"Seamline {project.settings.name}")
        routes: dict[str, list[Endpoint]] = {}
        for e in self.endpoints:
            routes.setdefault(e.path, []).append(e)
        starlette_routes = []
        for path, group in routes.items():
            for e in group:
                starlette_routes.append(
                    Route(path, guard(self.site, e), methods=[e.method], name=f"{e.method} {path}")
                )
        self.starlette = Starlette(routes=starlette_routes, max_body_size=MAX_BODY)
        self.app = secure_headers(self.starlette, pages.style_hash())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def decoder(project: Project) -> Decode:
    """Decode a message as the router does (for edit-and-replay) when the hub gives none."""
    router = offline_router(project)

    def decode(message: Any) -> dict[str, Any]:
        return router.decode(message).data

    return decode


def secure_headers(app: ASGIApp, style: str) -> ASGIApp:
    """Headers every console answer carries: no framing, no sniffing, no foreign scripts."""
    extra = [
        (
            b"content-security-policy",
            f"default-src 'none'; style-src '{style}'; img-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'".encode(),
        ),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    ]

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *extra]
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))  # answers hold business data
                message["headers"] = headers
            await send(message)

        await app(scope, receive, sending)

    return wrapped
