"""`ShopifySimulator`: a stateful shop on 127.0.0.1, driven in-process or over ``/_sim/``.

    async with ShopifySimulator(seed=1, time_scale=0.001) as sim:
        sim.subscribe("orders/create", "http://127.0.0.1:8080/webhooks/shopify")
        orders = sim.generate_orders(5, currency="USD", refund=1)
        # the connector talks to sim.url with sim.token; webhooks are signed with sim.secret
        async with asyncio.timeout(5):
            await sim.settle()
        assert [a.outcome for a in sim.deliveries] == ["delivered"] * 5

Everything is seeded from ``seed``: the catalogue, ids, orders and fault decisions, so two
runs with the same calls produce the same shop (times and uuids aside). Methods that change
the shop are plain functions that must run on the simulator's event loop; the webhooks they
fire are delivered by tasks the simulator owns and cancels on `close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from seamline.sandbox.shopify import versions
from seamline.sandbox.shopify.clock import Clock
from seamline.sandbox.shopify.faults import FaultInjector, Faults
from seamline.sandbox.shopify.generator import OrderGenerator, OrderOptions
from seamline.sandbox.shopify.graphql import GraphQLApi
from seamline.sandbox.shopify.limits import CostLimiter, RequestLimiter
from seamline.sandbox.shopify.money import RATES
from seamline.sandbox.shopify.server import build_app
from seamline.sandbox.shopify.shop import Shop, ShopError
from seamline.sandbox.shopify.webhooks import Attempt, DeliveryOptions, Webhooks

Json = dict[str, Any]
HOST = "127.0.0.1"


def _derived(seed: int, purpose: str, prefix: str) -> str:
    return prefix + hashlib.sha256(f"seamline-sim:{seed}:{purpose}".encode()).hexdigest()[:32]


class ShopifySimulator:
    """One simulated shop with its HTTP server; use ``async with`` (or `start`/`close`)."""

    def __init__(
        self,
        *,
        seed: int = 1,
        port: int = 0,
        shop: str | None = None,
        token: str | None = None,
        secret: str | None = None,
        currency: str = "EUR",
        utc_offset_hours: float = -5.0,
        api_version: str = versions.LATEST,
        products: int = 20,
        customers: int = 10,
        orders: int = 0,
        faults: Faults | None = None,
        delivery: DeliveryOptions | None = None,
        time_scale: float | None = None,
        graphql_bucket: tuple[float, float] = (2000.0, 100.0),
        rest_bucket: tuple[int, float] = (40, 2.0),
        secret_grace_seconds: float = 3600.0,
    ) -> None:
        if currency not in RATES:
            raise ValueError(f"currency is one of {', '.join(RATES)}")
        if versions.resolve(api_version) is None:
            raise ValueError(f"no API version {api_version!r}")
        self.seed = seed
        self.shop = f"{shop or f'seamline-sim-{seed}'}.myshopify.com"
        self.token = token or _derived(seed, "token", "shpat_")
        self._secret = secret or _derived(seed, "secret", "shpss_")
        self._previous_secret: str | None = None
        self._previous_until = 0.0
        self.secret_grace_seconds = secret_grace_seconds
        self.api_version = versions.resolve(api_version) or versions.LATEST
        self._port = port
        self._initial_orders = orders
        self.clock = Clock(timedelta(hours=utc_offset_hours))
        self.fault_injector = FaultInjector(faults, seed=seed)
        self.graphql_limiter = CostLimiter(
            maximum=graphql_bucket[0], restore_rate=graphql_bucket[1]
        )
        self.rest_limiter = RequestLimiter(size=rest_bucket[0], leak_rate=rest_bucket[1])
        options = delivery or DeliveryOptions()
        if time_scale is not None:
            options = replace(options, time_scale=time_scale)
        self.store = Shop(
            seed=seed,
            domain=self.shop,
            currency=currency,
            clock=self.clock,
            emit=self._emit,
            products=products,
            customers=customers,
        )
        self.webhooks = Webhooks(
            domain=self.shop,
            signing_key=self._signing_key,
            faults=self.fault_injector,
            ids=self.store.ids,
            clock=self.clock,
            options=options,
        )
        self.generator = OrderGenerator(self.store, seed=seed)
        self.graphql = GraphQLApi(self.store, self.graphql_limiter, defer=self._defer)
        self._runner: web.AppRunner | None = None
        self._socket: socket.socket | None = None
        self._deferred: set[asyncio.Handle] = set()

    # lifecycle ---------------------------------------------------------------------------

    async def start(self) -> ShopifySimulator:
        """Listen on 127.0.0.1 and be ready for requests when this returns."""
        for _ in range(self._initial_orders):
            self.generator.order()
        await self.webhooks.start()
        try:
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((HOST, self._port))
            self._runner = web.AppRunner(build_app(self), access_log=None, shutdown_timeout=1.0)
            await self._runner.setup()
            await web.SockSite(self._runner, self._socket).start()
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        """Stop serving, cancel every pending delivery, close sockets."""
        for handle in self._deferred:
            handle.cancel()
        self._deferred.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        await self.webhooks.close()

    async def __aenter__(self) -> ShopifySimulator:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the simulator is not started")
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:{port}``; the Admin API is under ``/admin/api/{version}/``."""
        return f"http://{HOST}:{self.port}"

    def admin_url(self, version: str | None = None) -> str:
        return f"{self.url}/admin/api/{version or self.api_version}"

    # secrets -----------------------------------------------------------------------------

    @property
    def secret(self) -> str:
        """The app's current client secret (webhooks are signed with it after any grace)."""
        return self._secret

    @property
    def previous_secret(self) -> str | None:
        """The secret before the last rotation while it still signs, else None."""
        return self._previous_secret if time.monotonic() < self._previous_until else None

    def rotate_secret(
        self, *, new_secret: str | None = None, grace_seconds: float | None = None
    ) -> str:
        """A new client secret; for ``grace_seconds`` (default: one hour, as Shopify says) webhooks
        are still signed with the old one, so a receiver must accept both meanwhile."""
        self._previous_secret = self._secret
        grace = self.secret_grace_seconds if grace_seconds is None else grace_seconds
        self._previous_until = time.monotonic() + grace
        self._secret = new_secret or _derived(self.seed, f"secret-{time.time_ns()}", "shpss_")
        return self._secret

    def _signing_key(self) -> bytes:
        return (self.previous_secret or self._secret).encode()

    # the shop ----------------------------------------------------------------------------

    def _emit(self, topic: str, payload: Json) -> None:
        self.webhooks.publish(topic, payload)

    def _defer(self, work: Callable[[], None]) -> None:
        def run() -> None:
            self._deferred.discard(handle)
            work()

        handle = asyncio.get_running_loop().call_soon(run)
        self._deferred.add(handle)

    def generate_orders(
        self,
        count: int = 1,
        *,
        cancel: int = 0,
        refund: int = 0,
        edit: int = 0,
        fulfill: int = 0,
        **options: Any,
    ) -> list[Json]:
        """``count`` new orders (`OrderOptions` fields fix details); then ``cancel``,
        ``refund``, ``edit`` and ``fulfill`` that many of them (those eligible), in that
        order of choice. Returns copies of the orders as they are at the end."""
        order_options = OrderOptions(**options)
        made = [self.generator.order(order_options) for _ in range(count)]
        rng = self.generator.rng
        busy: set[int] = set()

        def pick(number: int, eligible: Callable[[Json], bool]) -> list[int]:
            candidates = [o["id"] for o in made if o["id"] not in busy and eligible(o)]
            chosen = rng.sample(candidates, min(number, len(candidates)))
            busy.update(chosen)
            return chosen

        books = self.store.books
        for order_id in pick(cancel, lambda o: not any(books[o["id"]].fulfilled.values())):
            self.generator.cancel(order_id)
        for order_id in pick(
            refund, lambda o: o["financial_status"] in ("paid", "partially_refunded")
        ):
            self.generator.refund(order_id)
        for order_id in pick(edit, lambda o: o["cancelled_at"] is None):
            self.generator.edit(order_id)
        for order_id in pick(fulfill, lambda o: o["fulfillment_status"] != "fulfilled"):
            self.generator.fulfill(order_id)
        return [copy.deepcopy(o) for o in made]

    def replay(self, topic: str, body: bytes, *, address: str) -> None:
        """Send a recorded webhook body, byte for byte, to ``address`` (subscribed for
        ``topic`` if it is not yet); an order it carries becomes the shop's own first, so the
        fulfilments and cancellations that follow find it. Chaos plays on it as on any."""
        if not any(
            s.topic == topic and s.address == address for s in self.webhooks.subscriptions.values()
        ):
            self.subscribe(topic, address)
        payload: Any = None
        with contextlib.suppress(orjson.JSONDecodeError):
            payload = orjson.loads(body)
        if not isinstance(payload, dict):
            payload = {}
        elif topic.startswith("orders/") and "id" in payload and "line_items" in payload:
            self.store.adopt(payload)
        self.webhooks.publish(topic, payload, body=body)

    def edit_order(
        self,
        order_id: int,
        *,
        add: Sequence[tuple[int, int]] | None = None,
        remove: Sequence[tuple[int, int]] | None = None,
    ) -> Json:
        """Add ``(variant id, quantity)`` / remove ``(line item id, quantity)``; neither: random."""
        if add is None and remove is None:
            return copy.deepcopy(self.generator.edit(order_id))
        return copy.deepcopy(self.store.edit(order_id, add=add or (), remove=remove or ()))

    def refund_order(
        self,
        order_id: int,
        *,
        lines: Sequence[tuple[int, int]] | None = None,
        restock: bool = True,
        note: str | None = None,
        shipping: bool = False,
    ) -> Json:
        """Refund ``(line item id, quantity)`` pairs; no lines: a random partial refund."""
        if lines is None and not shipping:
            return copy.deepcopy(self.generator.refund(order_id))
        refund = self.store.refund(
            order_id, lines or (), restock=restock, note=note, shipping=shipping
        )
        return copy.deepcopy(refund)

    def cancel_order(
        self, order_id: int, *, reason: str = "customer", refund: bool = True, restock: bool = True
    ) -> Json:
        return copy.deepcopy(
            self.store.cancel(order_id, reason=reason, refund=refund, restock=restock)
        )

    def fulfill_order(self, order_id: int, *, tracking: Json | None = None) -> Json:
        return copy.deepcopy(self.store.fulfill_order(order_id, tracking=tracking))

    def pay_order(self, order_id: int) -> Json:
        return copy.deepcopy(self.store.pay(order_id))

    def set_inventory(self, inventory_item_id: int, location_id: int, available: int) -> Json:
        level, _ = self.store.set_available(inventory_item_id, location_id, available)
        return copy.deepcopy(level)

    def adjust_inventory(self, inventory_item_id: int, location_id: int, delta: int) -> Json:
        level = self.store.levels.get((inventory_item_id, location_id))
        if level is None:
            raise ShopError("Inventory level does not exist", code="NOT_FOUND")
        return self.set_inventory(inventory_item_id, location_id, level["available"] + delta)

    def create_product(self, *, title: str | None = None, variants: int = 2) -> Json:
        return copy.deepcopy(self.store.create_product(title=title, variants=variants))

    def update_product(
        self,
        product_id: int,
        *,
        title: str | None = None,
        price: Decimal | None = None,
        tags: str | None = None,
    ) -> Json:
        return copy.deepcopy(
            self.store.update_product(product_id, title=title, price=price, tags=tags)
        )

    # webhooks and faults -----------------------------------------------------------------

    def subscribe(self, topic: str, address: str, *, api_version: str | None = None) -> Json:
        """A webhook subscription (as ``POST webhooks.json`` makes); ``ValueError`` if refused."""
        version = versions.resolve(api_version or self.api_version)
        if version is None:
            raise ValueError(f"no API version {api_version!r}")
        return self.webhooks.subscribe(topic, address, api_version=version).rest()

    def unsubscribe(self, subscription_id: int) -> bool:
        return self.webhooks.unsubscribe(subscription_id)

    @property
    def deliveries(self) -> list[Attempt]:
        """The delivery log, oldest first."""
        return list(self.webhooks.log)

    async def settle(self) -> None:
        """Wait until every webhook was delivered or given up, retries included.

        Bound the wait: ``async with asyncio.timeout(5): await sim.settle()``.
        """
        await self.webhooks.settle()

    def set_faults(self, **changes: Any) -> Faults:
        """Switch faults on or off (see `Faults`); returns them all."""
        return self.fault_injector.set(**changes)

    @property
    def faults(self) -> Faults:
        return self.fault_injector.faults

    @property
    def state(self) -> Json:
        """Counts of everything, the buckets, the faults and the deliveries by outcome."""
        outcomes = Counter(a.outcome for a in self.webhooks.log)
        return {
            "shop": self.shop,
            "api_version": self.api_version,
            "counts": self.store.counts(),
            "subscriptions": len(self.webhooks.subscriptions),
            "deliveries": dict(outcomes),
            "pending_deliveries": self.webhooks.pending,
            "graphql_bucket": self.graphql_limiter.throttle_status(),
            "rest_bucket": self.rest_limiter.header(),
            "faults": self.fault_injector.state(),
            "previous_secret_signing": self.previous_secret is not None,
        }
