"""Webhook subscriptions and their deliveries, as Shopify makes them.

Each event (a topic and the REST resource at that moment) is serialized once and delivered
to every subscription of its topic: ``POST`` to the address with the resource as the body and

    Content-Type: application/json
    X-Shopify-Topic: orders/create
    X-Shopify-Hmac-Sha256: base64(HMAC-SHA256(client secret, raw body))
    X-Shopify-Shop-Domain: {shop}.myshopify.com
    X-Shopify-API-Version: the subscription's version
    X-Shopify-Webhook-Id: one uuid per delivery, the same on every retry of it
    X-Shopify-Event-Id: one uuid per event, the same for every subscription and retry
    X-Shopify-Triggered-At: when the event happened, the same on every retry

A delivery succeeds on 2xx within 5 s (1 s to connect); anything else, a redirect included,
fails and is retried 8 times over 4 hours with exponential backoff (60 s, 120 s, ... 7200 s;
``time_scale`` shrinks the schedule for tests). Failed attempts count per subscription,
across its deliveries, and a 2xx resets the count; after ``remove_after_failures`` (8)
consecutive failures the subscription is deleted, as Shopify deletes one created through
the Admin API, and deliveries still waiting for it are abandoned. Shopify's texts say both
"retried 8 times" and "deleted after 8 consecutive failures", so a lone failing delivery
removes its subscription at its 8th attempt (the 7th retry, about 2 hours in); set
``remove_after_failures=9`` to let it use its last retry.

Faults (`faults`) drop, duplicate, hold back or break deliveries. Every attempt and every
such decision is one `Attempt` in ``log``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import aiohttp
import orjson

from seamline.sandbox.shopify.clock import Clock, triggered_at
from seamline.sandbox.shopify.faults import FaultInjector
from seamline.sandbox.shopify.ids import Ids

Json = dict[str, Any]

TOPICS: Final = frozenset(
    {
        "app/uninstalled",
        "bulk_operations/finish",
        "customers/create",
        "customers/delete",
        "customers/update",
        "fulfillments/create",
        "fulfillments/update",
        "inventory_items/create",
        "inventory_items/delete",
        "inventory_items/update",
        "inventory_levels/connect",
        "inventory_levels/disconnect",
        "inventory_levels/update",
        "orders/cancelled",
        "orders/create",
        "orders/delete",
        "orders/edited",
        "orders/fulfilled",
        "orders/paid",
        "orders/partially_fulfilled",
        "orders/updated",
        "products/create",
        "products/delete",
        "products/update",
        "refunds/create",
    }
)
RETRY_DELAYS: Final = (60.0, 120.0, 240.0, 480.0, 900.0, 1800.0, 3600.0, 7200.0)
USER_AGENT: Final = "Shopify-Captain-Hook"


def sign(key: bytes, body: bytes) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value for ``body``."""
    return base64.b64encode(hmac.digest(key, body, hashlib.sha256)).decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryOptions:
    """How deliveries are made; Shopify's values by default."""

    time_scale: float = 1.0
    """Multiplies the retry delays: 0.001 runs the 4-hour schedule in about 15 s."""
    timeout: float = 5.0
    connect_timeout: float = 1.0
    retry_delays: tuple[float, ...] = RETRY_DELAYS
    remove_after_failures: int = 8
    concurrency: int = 8
    """Attempts in flight per subscription; first attempts start in event order."""
    hold_limit: float = 1.0
    """Longest a held-back (reordered) delivery waits for a later one, in seconds."""


@dataclass(slots=True)
class Subscription:
    id: int
    topic: str
    address: str
    api_version: str
    created_at: str
    failures: int = 0

    def rest(self) -> Json:
        """The REST ``webhook`` resource."""
        return {
            "id": self.id,
            "address": self.address,
            "topic": self.topic,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "format": "json",
            "fields": [],
            "metafield_namespaces": [],
            "api_version": self.api_version,
            "private_metafield_namespaces": [],
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """One line of the delivery log.

    ``outcome``: ``delivered`` (2xx), ``failed`` (other status, timeout, connection error;
    ``error`` says which), ``dropped`` (a fault: never sent), ``abandoned`` (its subscription
    was deleted before this retry), ``removed`` (this failure deleted the subscription).
    """

    topic: str
    subscription_id: int
    address: str
    webhook_id: str
    event_id: str
    triggered_at: str
    attempt: int
    outcome: str
    status: int | None = None
    error: str | None = None
    duplicate: bool = False
    malformed: str | None = None
    held: bool = False
    at: float = field(default_factory=time.time)

    def as_json(self) -> Json:
        return asdict(self)


@dataclass(slots=True)
class _Delivery:
    subscription: Subscription
    topic: str
    body: bytes
    webhook_id: str
    event_id: str
    triggered_at: str
    duplicate: bool = False
    malformed: str | None = None
    held: bool = False


class Webhooks:
    """Subscriptions, and the tasks delivering to them; open with `start`, end with `close`."""

    def __init__(
        self,
        *,
        domain: str,
        signing_key: Callable[[], bytes],
        faults: FaultInjector,
        ids: Ids,
        clock: Clock,
        options: DeliveryOptions | None = None,
    ) -> None:
        self.domain = domain
        self.signing_key = signing_key
        self.faults = faults
        self.ids = ids
        self.clock = clock
        self.options = options or DeliveryOptions()
        self.subscriptions: dict[int, Subscription] = {}
        self.log: list[Attempt] = []
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._gates: dict[int, asyncio.Semaphore] = {}
        self._held: dict[int, list[asyncio.Event]] = {}
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100), auto_decompress=True
        )

    async def close(self) -> None:
        """Stop every delivery (retries waiting included) and close the HTTP client."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # subscriptions -----------------------------------------------------------------------

    def subscribe(self, topic: str, address: str, *, api_version: str) -> Subscription:
        """A new subscription; ``ValueError`` with Shopify's reason if it is refused."""
        if topic not in TOPICS:
            raise ValueError(f"Invalid topic specified: {topic}")
        if not address.startswith(("http://", "https://")):
            raise ValueError("Address is invalid")
        if any(s.topic == topic and s.address == address for s in self.subscriptions.values()):
            raise ValueError("Address for this topic has already been taken")
        subscription = Subscription(
            self.ids.next("WebhookSubscription"), topic, address, api_version, self.clock.iso()
        )
        self.subscriptions[subscription.id] = subscription
        return subscription

    def unsubscribe(self, subscription_id: int) -> bool:
        return self.subscriptions.pop(subscription_id, None) is not None

    # events ------------------------------------------------------------------------------

    def publish(self, topic: str, payload: Json, *, body: bytes | None = None) -> None:
        """Deliver ``payload`` (serialized now, or ``body`` as given: a recorded webhook) to
        every subscription of ``topic``."""
        targets = [s for s in self.subscriptions.values() if s.topic == topic]
        if not targets:
            return
        body = orjson.dumps(payload) if body is None else body
        event_id, when = str(uuid.uuid4()), triggered_at()
        for subscription in targets:
            delivery = _Delivery(subscription, topic, body, str(uuid.uuid4()), event_id, when)
            if self.faults.drop():
                self._record(delivery, 0, "dropped")
                continue
            broken = self.faults.malformed()
            if broken is not None:
                delivery.body = _malformed(payload, body, broken)
                delivery.malformed = broken
            delivery.held = self.faults.reorder()
            self._spawn(self._deliver(delivery))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._pending += 1
        self._idle.clear()
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

    async def settle(self) -> None:
        """Wait until no delivery is in flight or waiting to retry (bound it with a timeout)."""
        await self._idle.wait()

    @property
    def pending(self) -> int:
        return self._pending

    # delivery ----------------------------------------------------------------------------

    async def _deliver(self, delivery: _Delivery) -> None:
        subscription = delivery.subscription
        if delivery.held:
            await self._hold(subscription.id)
        gate = self._gates.setdefault(subscription.id, asyncio.Semaphore(self.options.concurrency))
        delays = self.options.retry_delays
        for attempt in range(1, len(delays) + 2):
            if subscription.id not in self.subscriptions:
                self._record(delivery, attempt, "abandoned")
                return
            async with gate:
                status, error = await self._post(delivery)
            if attempt == 1:
                self._release(subscription.id)
            if status is not None and 200 <= status < 300:
                subscription.failures = 0
                self._record(delivery, attempt, "delivered", status)
                if not delivery.duplicate and self.faults.duplicate():
                    self._spawn(self._deliver(self._duplicate_of(delivery)))
                return
            subscription.failures += 1
            if subscription.failures >= self.options.remove_after_failures:
                self.subscriptions.pop(subscription.id, None)
                self._record(delivery, attempt, "removed", status, error)
                return
            self._record(delivery, attempt, "failed", status, error)
            if attempt <= len(delays):
                await asyncio.sleep(delays[attempt - 1] * self.options.time_scale)

    def _duplicate_of(self, delivery: _Delivery) -> _Delivery:
        renew = self.faults.faults.duplicates_renew_webhook_id
        return _Delivery(
            delivery.subscription,
            delivery.topic,
            delivery.body,
            str(uuid.uuid4()) if renew else delivery.webhook_id,
            delivery.event_id,
            delivery.triggered_at,
            duplicate=True,
            malformed=delivery.malformed,
        )

    async def _hold(self, subscription_id: int) -> None:
        """Wait until a later delivery to the subscription was attempted (or ``hold_limit``)."""
        released = asyncio.Event()
        self._held.setdefault(subscription_id, []).append(released)
        # Nothing coming after it within the limit: send it anyway, late.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(released.wait(), self.options.hold_limit)

    def _release(self, subscription_id: int) -> None:
        for released in self._held.pop(subscription_id, []):
            released.set()

    async def _post(self, delivery: _Delivery) -> tuple[int | None, str | None]:
        assert self._session is not None, "Webhooks.start() was not awaited"
        subscription = delivery.subscription
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Shopify-Topic": delivery.topic,
            "X-Shopify-Hmac-Sha256": sign(self.signing_key(), delivery.body),
            "X-Shopify-Shop-Domain": self.domain,
            "X-Shopify-API-Version": subscription.api_version,
            "X-Shopify-Webhook-Id": delivery.webhook_id,
            "X-Shopify-Event-Id": delivery.event_id,
            "X-Shopify-Triggered-At": delivery.triggered_at,
        }
        timeout = aiohttp.ClientTimeout(
            total=self.options.timeout, sock_connect=self.options.connect_timeout
        )
        try:
            async with self._session.post(
                subscription.address,
                data=delivery.body,
                headers=headers,
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                await response.read()
                return response.status, None
        except TimeoutError:
            return None, "timeout"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _record(
        self,
        delivery: _Delivery,
        attempt: int,
        outcome: str,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        self.log.append(
            Attempt(
                delivery.topic,
                delivery.subscription.id,
                delivery.subscription.address,
                delivery.webhook_id,
                delivery.event_id,
                delivery.triggered_at,
                attempt,
                outcome,
                status,
                error,
                delivery.duplicate,
                delivery.malformed,
                delivery.held,
            )
        )


def _malformed(payload: Json, body: bytes, how: str) -> bytes:
    """``payload`` cut in half (not JSON), or without its ``id`` (nested one level if wrapped)."""
    if how == "not_json":
        return body[: max(1, len(body) // 2)]
    if "id" not in payload and len(payload) == 1:
        ((key, inner),) = payload.items()
        if isinstance(inner, dict):
            return orjson.dumps({key: _without_id(inner)})
    return orjson.dumps(_without_id(payload))


def _without_id(record: Json) -> Json:
    return {k: v for k, v in record.items() if k not in ("id", "admin_graphql_api_id")}
