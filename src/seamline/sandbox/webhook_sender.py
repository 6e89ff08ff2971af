"""A load generator that sends signed Standard Webhooks to a hub, and behaves like a real sender.

Each message is ``POST {url}`` with body ``{"type": ..., "timestamp": iso, "data": {...}}``
and the ``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature`` headers. ``connections``
workers share one keep-alive connection pool and take messages until ``count`` are sent or
``duration_limit`` seconds have passed.

Every attempt's outcome is appended to a JSONL history, one line per HTTP attempt::

    {"id": "a1b2c3d4-00000042", "op": "ok", "status": 200, "t": 1718000000.123, "attempt": 1}

``op`` is ``ok`` (2xx), ``fail`` (a definite refusal: 4xx, or 503) or ``info`` (no usable
answer: connection error, timeout, or another 5xx; the message may have been applied).
Failed lines carry ``error`` when there was no status; poisoned messages carry ``"poison": true``.

Like real webhook senders, it retries the *same* webhook id with the same body (and a fresh
timestamp and signature) after 429, 503, other 5xx and ``info`` outcomes: after the
``Retry-After`` hint when given, else after a short jittered backoff, for up to ``retry_for``
seconds from the message's first attempt. So a hub that restarts mid-run still receives every
message, and deduplicates on the webhook id. Other 4xx answers are final.

A message's final outcome is ``ok`` if any attempt was, ``unknown`` if none was and some
attempt got no answer, else ``failed``. Run time is bounded by ``duration_limit`` (no new
message starts after it) plus ``retry_for`` plus one ``request_timeout``.

CLI: ``python -m seamline.sandbox.webhook_sender --url U --secret whsec_... --count N
--connections C --history PATH`` prints one JSON summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Literal

import aiohttp
import orjson

from seamline.connectors.http.signature import secret_key, signed_headers

Outcome = Literal["ok", "failed", "unknown"]
DataFactory = Callable[[int], dict[str, Any]]

_RETRYABLE_REFUSALS: Final = frozenset({408, 425, 429, 503})
_MAX_RETRY_AFTER: Final = 30.0
_FIRST_BACKOFF: Final = 0.05
_MAX_BACKOFF: Final = 2.0
_FLUSH_EVERY: Final = 0.5


@dataclass(frozen=True, slots=True)
class Summary:
    """Final outcomes per message (``sent`` = ``ok + failed + unknown``) and the attempt count."""

    sent: int
    ok: int
    failed: int
    unknown: int
    attempts: int
    elapsed_s: float

    @property
    def rate_per_s(self) -> float:
        """Messages settled per second of run time."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate_per_s": round(self.rate_per_s, 1)}


def order_data(index: int) -> dict[str, Any]:
    """A webshop order of about 3 KB, varied by ``index``: id, order_number, 10 line items."""
    quantities = [1 + (index + line) % 3 for line in range(10)]
    prices = [9.5 + (index * 13 + line * 17) % 90 for line in range(10)]
    address = {
        "address1": f"{1 + index % 200} Harbour Street",
        "city": "Rotterdam",
        "zip": "3011 AA",
        "country_code": "NL",
    }
    line_items = [
        {
            "id": index * 100 + line,
            "variant_id": 40_000_000 + (index * 7 + line) % 997,
            "sku": f"SKU-{(index * 7 + line) % 997:04d}",
            "title": f"Organic cotton tee, style {(index + line) % 31}",
            "vendor": "Seamline Test Goods",
            "quantity": quantities[line],
            "price": f"{prices[line]:.2f}",
            "grams": 180 + line * 5,
            "taxable": True,
            "requires_shipping": True,
            "fulfillment_status": None,
        }
        for line in range(10)
    ]
    return {
        "id": 5_000_000_000 + index,
        "order_number": 1000 + index,
        "updated_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "email": f"customer{index % 5000}@example.com",
        "currency": "EUR",
        "financial_status": "paid",
        "total_price": f"{sum(p * q for p, q in zip(prices, quantities, strict=True)):.2f}",
        "tags": "repeat-customer, newsletter",
        "note": "Please leave the parcel with the neighbours if nobody is home.",
        "customer": {"id": 7_000_000 + index % 5000, "first_name": "Ada", "last_name": "Byron"},
        "shipping_address": address,
        "billing_address": address,
        "line_items": line_items,
    }


async def send_webhooks(
    *,
    url: str | Sequence[str],
    secret: str,
    count: int,
    connections: int = 16,
    history: str | os.PathLike[str] | None = None,
    event_type: str = "order.updated",
    data: DataFactory = order_data,
    rate: float | None = None,
    poison_rate: float = 0.0,
    seed: int | None = None,
    duration_limit: float | None = None,
    retry_for: float = 60.0,
    request_timeout: float = 10.0,
    id_prefix: str | None = None,
) -> Summary:
    """Send ``count`` signed webhooks over ``connections`` keep-alive connections.

    ``url`` may be several ingest addresses (a load balancer's view): requests, retries
    included, go to them in turn.

    ``data(i)`` builds message ``i``'s data (default: `order_data`). ``rate`` caps new
    messages per second (retries not counted); without it, workers send as fast as answered.

    Message ``i`` has webhook id ``f"{id_prefix}-{i:08d}"`` (a random prefix by default, so
    runs do not collide in a hub's dedupe table). With ``seed`` the poisoned messages
    (``data["poison"] = True``, a ``poison_rate`` fraction) are the same on every run.
    ``history`` (appended to) gets one JSONL line per attempt, see the module docstring.
    """
    secret_key(secret)  # a malformed secret fails here, before any traffic
    if count < 0 or connections < 1:
        raise ValueError("count must be >= 0 and connections >= 1")
    if rate is not None and rate <= 0:
        raise ValueError(f"rate is messages per second, above 0; got {rate}")
    if not 0.0 <= poison_rate <= 1.0:
        raise ValueError(f"poison_rate is a fraction in [0, 1], got {poison_rate}")
    messages = _Messages(
        count=count,
        event_type=event_type,
        make_data=data,
        rate=rate,
        poison_rate=poison_rate,
        rng=random.Random(seed),
        id_prefix=id_prefix or secrets.token_hex(4),
        stop_at=None if duration_limit is None else time.monotonic() + duration_limit,
    )
    sender = _Sender(url=url, secret=secret, retry_for=retry_for)
    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    client_timeout = aiohttp.ClientTimeout(total=request_timeout)
    with _History(history) as log:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session,
            asyncio.TaskGroup() as workers,
        ):
            for _ in range(connections):
                workers.create_task(sender.work(session, messages, log))
    return Summary(
        sent=sender.outcomes["ok"] + sender.outcomes["failed"] + sender.outcomes["unknown"],
        ok=sender.outcomes["ok"],
        failed=sender.outcomes["failed"],
        unknown=sender.outcomes["unknown"],
        attempts=sender.attempts,
        elapsed_s=round(time.monotonic() - started, 3),
    )


@dataclass(frozen=True, slots=True)
class _Message:
    msg_id: str
    body: bytes
    poison: bool


class _Messages:
    """Hands out messages in index order, so seeded choices do not depend on timing."""

    def __init__(
        self,
        *,
        count: int,
        event_type: str,
        make_data: DataFactory,
        rate: float | None,
        poison_rate: float,
        rng: random.Random,
        id_prefix: str,
        stop_at: float | None,
    ) -> None:
        self._count = count
        self._event_type = event_type
        self._make_data = make_data
        self._interval = None if rate is None else 1.0 / rate
        self._started = time.monotonic()
        self._poison_rate = poison_rate
        self._rng = rng
        self._id_prefix = id_prefix
        self._stop_at = stop_at
        self._next = 0

    async def take(self) -> _Message | None:
        if self._next >= self._count:
            return None
        if self._stop_at is not None and time.monotonic() >= self._stop_at:
            return None
        index, self._next = self._next, self._next + 1
        poison = self._poison_rate > 0 and self._rng.random() < self._poison_rate
        if self._interval is not None:
            await asyncio.sleep(self._started + index * self._interval - time.monotonic())
        data = self._make_data(index)
        if poison:
            data["poison"] = True
        envelope = {
            "type": self._event_type,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "data": data,
        }
        return _Message(f"{self._id_prefix}-{index:08d}", orjson.dumps(envelope), poison)


class _History:
    """The JSONL history file (or nothing), flushed at least every half second and at exit."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self._path = None if path is None else Path(path)
        self._file: IO[bytes] | None = None
        self._flushed = time.monotonic()

    def __enter__(self) -> _History:
        if self._path is not None:
            self._file = self._path.open("ab")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()

    def append(self, entry: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(orjson.dumps(entry) + b"\n")
        now = time.monotonic()
        if now - self._flushed >= _FLUSH_EVERY:
            self._file.flush()
            self._flushed = now


class _Sender:
    def __init__(self, *, url: str | Sequence[str], secret: str, retry_for: float) -> None:
        self._urls = [url] if isinstance(url, str) else list(url)
        self._turn = 0
        self._secret = secret
        self._retry_for = retry_for
        self.outcomes: dict[Outcome, int] = {"ok": 0, "failed": 0, "unknown": 0}
        self.attempts = 0

    async def work(
        self, session: aiohttp.ClientSession, messages: _Messages, log: _History
    ) -> None:
        while (message := await messages.take()) is not None:
            self.outcomes[await self._deliver(session, message, log)] += 1

    async def _deliver(
        self, session: aiohttp.ClientSession, message: _Message, log: _History
    ) -> Outcome:
        give_up_at = time.monotonic() + self._retry_for
        answered_nothing = False
        attempt = 0
        while True:
            attempt += 1
            op, status, retry_after, error = await self._attempt(session, message)
            self.attempts += 1
            entry: dict[str, Any] = {
                "id": message.msg_id,
                "op": op,
                "status": status,
                "t": time.time(),
                "attempt": attempt,
            }
            if error is not None:
                entry["error"] = error
            if message.poison:
                entry["poison"] = True
            log.append(entry)

            if op == "ok":
                return "ok"
            if op == "info":
                answered_nothing = True
            elif status not in _RETRYABLE_REFUSALS:
                return "unknown" if answered_nothing else "failed"
            delay = retry_after if retry_after is not None else _backoff(attempt)
            if time.monotonic() + delay > give_up_at:
                return "unknown" if answered_nothing else "failed"
            await asyncio.sleep(delay)

    async def _attempt(
        self, session: aiohttp.ClientSession, message: _Message
    ) -> tuple[str, int | None, float | None, str | None]:
        """One POST: ``(op, status, retry_after, error)``."""
        headers = {
            "content-type": "application/json",
            **signed_headers(self._secret, msg_id=message.msg_id, body=message.body),
        }
        try:
            self._turn += 1
            target = self._urls[self._turn % len(self._urls)]
            async with session.post(target, data=message.body, headers=headers) as response:
                await response.read()
                status = response.status
                retry_after = _retry_after(response.headers.get("retry-after"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            return "info", None, None, type(exc).__name__
        if 200 <= status < 300:
            return "ok", status, None, None
        if 400 <= status < 500 or status == 503:
            return "fail", status, retry_after, None
        return "info", status, retry_after, None


def _backoff(attempt: int) -> float:
    # Jitter spreads the retries of many workers after a shared outage; timing only, unseeded.
    ceiling = min(_MAX_BACKOFF, _FIRST_BACKOFF * 2.0 ** (attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; HTTP-dates and nonsense give ``None``."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, _MAX_RETRY_AFTER)


def main(argv: Sequence[str] | None = None) -> None:
    """The CLI: send, then print the summary as one JSON line."""
    parser = argparse.ArgumentParser(
        prog="python -m seamline.sandbox.webhook_sender",
        description="Send signed Standard Webhooks to a hub, retrying like a real sender.",
    )
    parser.add_argument("--url", required=True, help="the hub's webhook endpoint")
    parser.add_argument("--secret", required=True, help="whsec_<base64> shared with the hub")
    parser.add_argument("--count", type=int, required=True, help="messages to send")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--rate", type=float, help="new messages per second (default: no cap)")
    parser.add_argument("--history", help="JSONL file to append every attempt's outcome to")
    parser.add_argument("--event-type", default="order.updated")
    parser.add_argument("--poison-rate", type=float, default=0.0, help="fraction poisoned")
    parser.add_argument("--seed", type=int, help="seed for which messages are poisoned")
    parser.add_argument("--duration-limit", type=float, help="start no message after this (s)")
    parser.add_argument("--retry-for", type=float, default=60.0, help="retry a message (s)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request (s)")
    parser.add_argument("--id-prefix", help="webhook ids are <prefix>-<index>; random if unset")
    args = parser.parse_args(argv)
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # Windows: uvloop is not installed there
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        summary = runner.run(
            send_webhooks(
                url=args.url,
                secret=args.secret,
                count=args.count,
                connections=args.connections,
                history=args.history,
                event_type=args.event_type,
                rate=args.rate,
                poison_rate=args.poison_rate,
                seed=args.seed,
                duration_limit=args.duration_limit,
                retry_for=args.retry_for,
                request_timeout=args.timeout,
                id_prefix=args.id_prefix,
            )
        )
    print(json.dumps(summary.as_json()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
