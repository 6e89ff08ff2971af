"""The contract every HTTP target connector keeps, under faults played by a proxy.

Each connector's sink sends one idempotent write to its real target (the recording sink,
the Shopify simulator, a real Tryton) through `HttpFaultProxy`; every fault must come back
as the error class that carries the right decision, and after an unknown outcome the retry
must leave exactly one effect:

| fault                                  | error                                  |
|----------------------------------------|----------------------------------------|
| 429 with Retry-After                   | ThrottledError, with the wait          |
| 503                                    | TransientError (a known failure)       |
| 400                                    | PermanentError                         |
| the write applied, its answer lost     | UnknownOutcomeError; retry: one effect |
| the write applied, answer past timeout | UnknownOutcomeError; retry: one effect |
| connection reset                       | TransientError                         |
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from seamline.connectors.base import Sink
from seamline.connectors.http.connector import HttpOptions
from seamline.connectors.registry import connector
from seamline.connectors.shopify.connector import ShopifyOptions
from seamline.connectors.tryton.connector import TrytonOptions
from seamline.errors import (
    PermanentError,
    SeamlineError,
    ThrottledError,
    TransientError,
    UnknownOutcomeError,
)
from seamline.sandbox.http_faults import HttpFaultProxy
from seamline.sandbox.recording_sink import read_records, start_recording_sink
from seamline.sandbox.shopify import ShopifySimulator
from seamline.settings import Secret

pytestmark = pytest.mark.timeout(120)


@dataclass
class Rig:
    operation: str
    body: dict[str, Any]
    write: bytes
    """Bytes only the operation's write request holds."""
    effects: Callable[[], Awaitable[int]]
    """How many times the write took effect (an absolute set: 1 once it holds)."""
    port: int
    """Where the real target listens (the proxy forwards there)."""
    shop: str = ""
    token: str = ""
    timeout: float = 1.5
    """The client's timeout: a `slow` answer comes after twice this."""


@asynccontextmanager
async def http_rig(tmp: Path, _: TrytonOptions | None) -> AsyncIterator[Rig]:
    db = tmp / "sink.db"

    async def effects() -> int:
        return len(read_records(db))

    async with await start_recording_sink(db_path=db) as target:
        yield Rig("request", {"order": "1001"}, b"POST", effects, target.port)


@asynccontextmanager
async def shopify_rig(tmp: Path, _: TrytonOptions | None) -> AsyncIterator[Rig]:
    async with ShopifySimulator(seed=31, products=1, time_scale=0.001) as shop:
        location = min(shop.store.locations)
        variant = next(v for v in shop.store.variants.values() if v["sku"])

        async def effects() -> int:
            level = shop.store.levels[(variant["inventory_item_id"], location)]["available"]
            return 1 if level == 17 else 0

        yield Rig(
            "set_inventory",
            {"sku": variant["sku"], "location_id": str(location), "available": 17},
            b"inventorySetQuantities",
            effects,
            shop.port,
            shop=shop.shop,
            token=shop.token,
        )


@asynccontextmanager
async def tryton_rig(tmp: Path, options: TrytonOptions | None) -> AsyncIterator[Rig]:
    assert options is not None
    sku = f"FAULT-{uuid.uuid4().hex[:8]}"
    reader = connector("tryton").sink("check", options)

    async def effects() -> int:
        client = reader.client  # type: ignore[attr-defined]
        return len(await client.model("product.product", "search", [["code", "=", sku]]))

    try:
        yield Rig(
            "upsert_product",
            {"sku": sku, "name": sku, "list_price": {"amount": "9.90"}},
            b'"method":"model.product.template.create"',
            effects,
            int(options.url.rsplit(":", 1)[1]),
            timeout=5.0,  # a login hashes the password: slower than a shop's answer
        )
    finally:
        await reader.close()


def through(kind: str, url: str, tryton: TrytonOptions | None, rig: Rig) -> Sink:
    """The connector's sink, its target reached through the proxy at `url`."""
    if kind == "http":
        options: Any = HttpOptions(base_url=url, timeout=rig.timeout, idempotent=True)
    elif kind == "shopify":
        options = ShopifyOptions(
            shop=rig.shop, base_url=url, access_token=Secret(rig.token), timeout=rig.timeout
        )
    else:
        assert tryton is not None
        options = tryton.model_copy(update={"url": url, "timeout": rig.timeout})
    return connector(kind).sink(kind, options)  # type: ignore[union-attr]


RIGS = {"http": http_rig, "shopify": shopify_rig, "tryton": tryton_rig}
FAULTS = [
    # (fault, its arguments, the error expected, a retry leaves one effect)
    pytest.param("throttle", {"retry_after": 2}, ThrottledError, False, id="429"),
    pytest.param("fail", {"status": 503}, TransientError, False, id="503"),
    pytest.param("fail", {"status": 400}, PermanentError, False, id="400"),
    pytest.param("lose_answer", {"on_write": True}, UnknownOutcomeError, True, id="answer lost"),
    pytest.param("slow", {"on_write": True}, UnknownOutcomeError, True, id="too slow"),
    pytest.param("reset", {}, TransientError, False, id="reset"),
]


@pytest.mark.parametrize("kind", sorted(RIGS))
@pytest.mark.parametrize(("fault", "arguments", "expected", "retried"), FAULTS)
def test_a_fault_comes_back_as_the_error_that_carries_the_decision(
    kind: str,
    fault: str,
    arguments: dict[str, Any],
    expected: type[SeamlineError],
    retried: bool,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    tryton = request.getfixturevalue("tryton_options") if kind == "tryton" else None

    async def case() -> None:
        async with RIGS[kind](tmp_path, tryton) as rig, HttpFaultProxy(rig.port) as proxy:
            sink = through(kind, proxy.url, tryton, rig)
            try:
                settings = dict(arguments)
                match = rig.write if settings.pop("on_write", False) else None
                if fault == "slow":
                    settings["delay"] = rig.timeout * 2
                proxy.inject(fault, count=1, match=match, **settings)  # type: ignore[arg-type]

                first = await sink.send(rig.operation, rig.body, options={}, idempotency_key="k1")

                said = f"{kind} {fault}: {first.error!r}"
                if fault == "reset":  # the client cannot know whether the request got there
                    assert isinstance(first.error, TransientError), said
                elif expected is TransientError:  # a known failure: not a wait, not unknown
                    assert isinstance(first.error, TransientError), said
                    assert not isinstance(first.error, ThrottledError | UnknownOutcomeError), said
                else:
                    assert type(first.error) is expected, said
                if fault == "throttle":
                    assert first.error.retry_after == 2  # type: ignore[union-attr]
                assert proxy.stats.faults[fault] == 1
                if retried:
                    await asyncio.sleep(rig.timeout * 2.2 if fault == "slow" else 0)
                    again = await sink.send(
                        rig.operation, rig.body, options={}, idempotency_key="k1"
                    )
                    assert again.error is None, again.error
                    assert await rig.effects() == 1
            finally:
                await sink.close()

    asyncio.run(case())
