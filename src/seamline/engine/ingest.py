"""Ingest: `POST /hooks/{system}` → verify → bound → journal → 2xx only after the commit.

A bare ASGI app, because it is the hot path: no framework, no JSON parsing, no network call.
Where given `route` (hub processes on PostgreSQL), each message is routed as it arrives and
journaled with its deliveries in the same commit, so no scheduler reads it back to route it.
Answers, each with a JSON body saying what happened:

| status | when                                                                    |
|--------|-------------------------------------------------------------------------|
| 200    | journaled now (`accepted`) or already journaled (`duplicate`)            |
| 401    | signature missing, forged or stale: nothing journaled                   |
| 404    | no such system                                                          |
| 405    | not a POST                                                              |
| 413    | body over the limit (checked on Content-Length, then while reading)     |
| 503    | starting, stopping, or the journal is busy or failing: `Retry-After`    |
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import orjson

from seamline.connectors.base import Source
from seamline.errors import JournalBusy, JournalError, SignatureError
from seamline.journal.base import Journal, NewMessage, Routing
from seamline.observe.metrics import METRICS, Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("seamline.ingest")

# Headers not worth keeping: the signature is checked already, the rest are hop-by-hop.
_DROPPED = frozenset(
    {
        b"webhook-signature",
        b"authorization",
        b"cookie",
        b"connection",
        b"content-length",
        b"x-shopify-hmac-sha256",
        b"accept-encoding",
        b"user-agent",
        b"host",
    }
)
_JSON = [(b"content-type", b"application/json")]
_RETRY = [(b"content-type", b"application/json"), (b"retry-after", b"1")]


class IngestStats:
    __slots__ = ("accepted", "busy", "duplicates", "forged", "rejected", "too_large")

    def __init__(self) -> None:
        self.accepted = 0
        self.rejected = 0
        """Of those accepted, routed as they arrived and rejected by their source's contract."""
        self.duplicates = 0
        self.forged = 0
        self.too_large = 0
        self.busy = 0


class Ingest:
    """The ASGI app. `ready` is False while starting and stopping: then every POST gets 503."""

    def __init__(
        self,
        journal: Journal,
        sources: Mapping[str, Source],
        *,
        max_body: int,
        extra: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None,
        refuse_hooks: str | None = None,
        metrics: Metrics | None = None,
        route: Callable[[NewMessage], Routing] | None = None,
    ) -> None:
        """`refuse_hooks`: this process serves health only, and says why to webhook senders.
        `route`: route each message as it arrives (the router's `route_arriving`)."""
        self.route = route
        self.journal = journal
        self.sources = dict(sources)
        self.max_body = max_body
        self.ready = False
        self.stats = IngestStats()
        self._extra = extra
        self._refusal = None if refuse_hooks is None else _error(refuse_hooks)
        metrics = metrics or METRICS
        self._received = {name: metrics.received(name) for name in self.sources}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/hooks/"):
            if self._refusal is not None:
                await _answer(send, 404, self._refusal)
            else:
                await self._hook(scope, receive, send, path[7:])
        elif path == "/healthz":
            await _answer(send, 200, b'{"status":"ok"}')
        elif path == "/readyz":
            ready = self.ready and self.journal.reachable
            await _answer(
                send,
                200 if ready else 503,
                b'{"ready":true}' if ready else b'{"ready":false}',
            )
        elif self._extra is not None:
            await self._extra(scope, receive, send)
        else:
            await _answer(send, 404, b'{"error":"not found"}')

    async def _hook(self, scope: Scope, receive: Receive, send: Send, system: str) -> None:
        if scope["method"] != "POST":
            await _answer(send, 405, b'{"error":"webhooks are POSTed"}')
            return
        source = self.sources.get(system)
        if source is None:
            await _answer(send, 404, _error(f"no system '{system}' receives webhooks here"))
            return
        if not self.ready:
            self.stats.busy += 1
            await _answer(send, 503, b'{"error":"starting or stopping; retry"}', _RETRY)
            return
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        # One pass: the declared length is checked before the body is read, and the headers
        # worth keeping are gathered on the way (wasted only on a refused request).
        kept: dict[str, str] = {}
        for name, value in raw_headers:
            if name not in _DROPPED:
                kept[name.decode("latin-1")] = value.decode("latin-1")
            elif name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                self.stats.too_large += 1
                await _answer(send, 413, _error(f"body over {self.max_body} bytes"))
                return
        body = await _read_body(receive, self.max_body)
        if body is _GONE:
            return  # the client left mid-body: nothing to answer, nothing journaled
        if body is None:
            self.stats.too_large += 1
            await _answer(send, 413, _error(f"body over {self.max_body} bytes"))
            return
        try:
            source_id = source.verify(raw_headers, body)
        except SignatureError as exc:
            self.stats.forged += 1
            await _answer(send, 401, _error(str(exc)))
            return
        message = NewMessage(system, source_id, time.time(), orjson.dumps(kept), body)
        routing = None
        if self.route is not None:
            try:
                routing = self.route(message)
            except Exception:  # the router's own failure: the scheduler routes it instead
                log.exception("routing as it arrived failed", extra={"system": system})
        try:
            # The journal answers JournalBusy when its queue is full or this message has waited
            # longer than its ack timeout, so nothing here waits forever.
            fresh = await self.journal.append(message, routing)
        except JournalBusy:
            self.stats.busy += 1
            await _answer(send, 503, b'{"error":"busy; retry"}', _RETRY)
            return
        except JournalError as exc:
            log.error("journal refused a message from %s: %s", system, exc)
            await _answer(send, 503, b'{"error":"journal unavailable; retry"}', _RETRY)
            return
        if fresh is None:
            self.stats.duplicates += 1
            await _answer(send, 200, b'{"status":"duplicate"}')
        else:
            self.stats.accepted += 1
            self._received[system].inc()
            if routing is not None and routing.rejected is not None:
                # Accepted all the same: the sender did its part; an operator fixes and replays.
                self.stats.rejected += 1
                log.warning(
                    "message rejected", extra={"message_id": fresh, "reason": routing.rejected}
                )
            await _answer(send, 200, b'{"status":"accepted","id":%d}' % fresh)


_GONE = b"\x00gone"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body; None if over `limit`; `_GONE` (by identity) if the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _GONE
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = _JSON
) -> None:
    # With its length given, the server writes the body as it is, not as chunks.
    length = (b"content-length", b"%d" % len(body))
    await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
    await send({"type": "http.response.body", "body": body})


def _error(text: str) -> bytes:
    return orjson.dumps({"error": text})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
