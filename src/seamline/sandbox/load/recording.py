"""A recorded slice of real traffic, played again time-compressed in a load run.

    recording = await read_recording(journal, {"shop": "shopify"}, since=t0, until=t1)
    recording.span                       # seconds from its first message to its last
    recording.due(elapsed * speed)       # the messages whose recorded time has come, once

The slice is what the hub journaled from its sources (the bodies retention has not purged
yet), so a run meets the shapes, SKUs, bursts and duplicates of a real day rather than the
generator's. Each body is sent again byte for byte: a Shopify one through the shop simulator
(which takes the order as its own first, so the fulfilments and cancellations that follow
find it) and its webhook sender, so the chaos of dropped, duplicated and reordered webhooks
plays on it too; a generic `http` one by `WebhookReplay`, signed afresh with the sandbox's
secret under its recorded webhook id.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from seamline.connectors.http.signature import signed_headers
from seamline.errors import SeamlineError
from seamline.journal.base import ConsoleJournal, StoredMessage

MAX_MESSAGES = 100_000
"""A run holds its recording in memory; a slice above this is refused (choose a shorter one)."""
REPLAYABLE = ("shopify", "http")
RETRY_FOR = 120.0
"""Seconds a recorded http webhook is offered again (429, 503, no answer) before it is lost."""


@dataclass(frozen=True, slots=True)
class Recorded:
    at: float
    """Seconds after the recording's first message."""
    system: str
    source_id: str
    topic: str
    """Shopify's `X-Shopify-Topic`; an http source's event name, read from the body."""
    body: bytes


@dataclass
class Recording:
    messages: list[Recorded]
    since: float
    until: float
    _next: int = field(default=0, repr=False)

    @property
    def span(self) -> float:
        return self.messages[-1].at if self.messages else 0.0

    @property
    def done(self) -> bool:
        return self._next >= len(self.messages)

    @property
    def played(self) -> int:
        return self._next

    def due(self, at: float) -> list[Recorded]:
        """The messages recorded up to `at` seconds after the first, each returned once."""
        start = self._next
        while self._next < len(self.messages) and self.messages[self._next].at <= at:
            self._next += 1
        return self.messages[start : self._next]

    def order_lines(self, system: str) -> Iterator[dict[str, Any]]:
        """The line items of `system`'s recorded orders (their SKUs must exist in the sandbox)."""
        for message in self.messages:
            if message.system != system or not message.topic.startswith("orders/"):
                continue
            with contextlib.suppress(orjson.JSONDecodeError):
                body = orjson.loads(message.body)
                lines = body.get("line_items") if isinstance(body, dict) else None
                for line in lines if isinstance(lines, list) else ():
                    if isinstance(line, dict):
                        yield line

    def cancelled_orders(self) -> list[str]:
        """The ids of the orders the recording cancels (Shopify's `orders/cancelled`)."""
        found: list[str] = []
        for message in self.messages:
            if message.topic == "orders/cancelled":
                with contextlib.suppress(orjson.JSONDecodeError):
                    body = orjson.loads(message.body)
                    if isinstance(body, dict) and body.get("id") is not None:
                        found.append(str(body["id"]))
        return found

    def describe(self, speed: float) -> str:
        systems = sorted({m.system for m in self.messages})
        return (
            f"{len(self.messages)} recorded messages of {', '.join(systems)} "
            f"({_clock(self.since)} to {_clock(self.until)}) played {speed:g}x faster"
        )


async def read_recording(
    journal: ConsoleJournal,
    systems: Mapping[str, str],
    *,
    since: float,
    until: float,
    limit: int = MAX_MESSAGES,
    event_fields: Mapping[str, str] | None = None,
) -> Recording:
    """The messages `systems` (name -> kind; sources the run can play) sent in [since, until),
    in the order received. Refuses an empty slice and one above `limit`, saying what to do.
    `event_fields`: where a generic webhook source's body names its event (default `type`)."""
    stored: list[StoredMessage] = []
    for name, kind in sorted(systems.items()):
        if kind not in REPLAYABLE:
            continue
        rows = await journal.recorded_messages(name, since=since, until=until, limit=limit + 1)
        stored.extend(rows)
        if len(stored) > limit:
            raise SeamlineError(
                f"the window {_clock(since)} to {_clock(until)} holds more than {limit} "
                "messages; choose a shorter one (--replay 1h, or --replay-until)"
            )
    if not stored:
        raise SeamlineError(
            f"no message with its body between {_clock(since)} and {_clock(until)} from "
            f"{', '.join(sorted(systems)) or 'no source'}: retention purges bodies after its "
            "window (retention.payloads in seamline.yaml); choose a window the hub has received in"
        )
    stored.sort(key=lambda m: (m.received_at, m.id))
    first = stored[0].received_at
    return Recording(
        [
            Recorded(
                m.received_at - first,
                m.system,
                m.source_id,
                _topic(m, systems, (event_fields or {}).get(m.system, "type")),
                m.body,
            )
            for m in stored
        ],
        since,
        until,
    )


def _topic(message: StoredMessage, systems: Mapping[str, str], event_field: str) -> str:
    headers: Any = {}
    with contextlib.suppress(orjson.JSONDecodeError):
        headers = orjson.loads(message.headers or b"{}")
    if systems[message.system] == "shopify":
        return str(headers.get("x-shopify-topic", "")) if isinstance(headers, dict) else ""
    with contextlib.suppress(orjson.JSONDecodeError):
        body = orjson.loads(message.body)
        if isinstance(body, dict) and isinstance(body.get(event_field), str):
            return str(body[event_field])
    return ""


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class Unsent:
    """A recorded webhook the hub never acknowledged: refused, or given up on."""

    system: str
    source_id: str
    why: str


class WebhookReplay:
    """Recorded Standard Webhooks sent to the hub under their recorded `webhook-id`, signed
    with the sandbox secret of their system, one system's in recorded order (the next waits
    for the one before), each offered again after 429, 503, 5xx or no answer (as a real
    sender does) for `retry_for` seconds. `acknowledged` per system (webhook id -> event) is
    what the hub answered 2xx for, which the checker then looks for in the journal; `unsent`
    what it refused or never answered."""

    def __init__(
        self, secrets: Mapping[str, str], hub_url: str, *, retry_for: float = RETRY_FOR
    ) -> None:
        self.secrets = dict(secrets)
        self.hub_url = hub_url
        self.retry_for = retry_for
        self.acknowledged: dict[str, dict[str, str]] = {}
        self.unsent: list[Unsent] = []
        self._queues: dict[str, asyncio.Queue[Recorded]] = {}
        self._senders: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._rng = random.Random(7)
        self._open = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def pending(self) -> int:
        """Messages given to `send` and not yet acknowledged, refused or given up on."""
        return self._open

    def send(self, message: Recorded) -> None:
        if message.system not in self.secrets:
            raise SeamlineError(f"{message.system} has no webhook secret in the sandbox")
        queue = self._queues.get(message.system)
        if queue is None:
            queue = self._queues[message.system] = asyncio.Queue()
            self._senders.append(
                asyncio.get_running_loop().create_task(self._sender(queue), name="replay")
            )
        queue.put_nowait(message)
        self._open += 1
        self._idle.clear()

    async def close(self) -> None:
        """Stop sending: what is still queued or being offered is `unsent`, said so."""
        for task in self._senders:
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        self._senders.clear()
        for queue in self._queues.values():
            while not queue.empty():
                message = queue.get_nowait()
                self.unsent.append(
                    Unsent(message.system, message.source_id, "still queued when the run ended")
                )
                self._open -= 1
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _sender(self, queue: asyncio.Queue[Recorded]) -> None:
        while True:
            message = await queue.get()
            try:
                await self._deliver(message)
            except asyncio.CancelledError:
                why = "still being offered when the run ended"
                self.unsent.append(Unsent(message.system, message.source_id, why))
                raise
            except Exception as exc:  # the next messages must still go; this one is told
                why = f"not sent: {type(exc).__name__}: {exc}"
                self.unsent.append(Unsent(message.system, message.source_id, why))
            finally:
                self._open -= 1
                if not self._open:
                    self._idle.set()

    async def idle(self) -> None:
        """Return once every message given to `send` has its outcome."""
        await self._idle.wait()

    async def _deliver(self, message: Recorded) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        url = f"{self.hub_url}/hooks/{message.system}"
        give_up = time.monotonic() + self.retry_for
        pause, last = 0.1, "no answer"
        while time.monotonic() < give_up:
            headers = {
                "content-type": "application/json",
                **signed_headers(
                    self.secrets[message.system], msg_id=message.source_id, body=message.body
                ),
            }
            status: int | None = None
            wait: float | None = None
            answer = ""
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                async with self._session.post(url, data=message.body, headers=headers) as r:
                    status = r.status
                    answer = (await r.read())[:200].decode("utf-8", "replace")
                    with contextlib.suppress(TypeError, ValueError):
                        wait = float(r.headers.get("retry-after", ""))
            if status is not None and 200 <= status < 300:
                self.acknowledged.setdefault(message.system, {})[message.source_id] = message.topic
                return
            if status is not None and status < 500 and status not in (408, 425, 429):
                # A definite refusal, as for a real sender: not offered again.
                why = f"refused: {status} {answer}"
                self.unsent.append(Unsent(message.system, message.source_id, why))
                return
            last = "no answer" if status is None else f"{status} {answer}"
            await asyncio.sleep(min(wait if wait is not None else pause, 10.0))
            pause = min(pause * 2, 2.0) * (0.5 + self._rng.random())
        why = f"given up after {self.retry_for:g} s (last: {last})"
        self.unsent.append(Unsent(message.system, message.source_id, why))
