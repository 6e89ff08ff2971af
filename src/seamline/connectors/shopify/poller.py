"""Catch-up polling: what changed in the shop that no webhook brought.

Webhooks get lost: Shopify gives up on an endpoint after 8 failed tries, deletes the
subscription, or never sends (a dropped delivery). Every `poll.interval` the active scheduler
asks the GraphQL Admin API for orders and products changed since the last change it saw
(`updated_at`, sorted, paginated), minus an overlap for clocks and late commits.

For each changed record it journals what a webhook would have brought, once:
- versions already journaled are skipped: every decoded order and product carries the
  business key `order_version` / `product_version` = `{id}@{updated_at}`, so a version that
  came by webhook is not journaled again;
- the rest are fetched in their REST shape (`orders.json?ids=...`), the shape webhooks
  carry, so one decoder serves both, and journaled as `orders/updated` / `products/update`
  with the source id `poll:{topic}:{id}@{updated_at}` (a second poll of the same version is a
  duplicate the journal drops).

The position (`updated_at` of the newest change seen) is a journal cursor per system and
resource, advanced only after a whole round succeeded.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

import orjson

from seamline.connectors.base import PollJournal
from seamline.connectors.shopify.client import ShopifyClient, legacy_id
from seamline.connectors.shopify.connector import PollOptions, ShopifyOptions
from seamline.errors import ContractError
from seamline.journal.base import NewMessage

CHANGED = """
query Changed($first: Int!, $after: String, $query: String) {
  %s(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { id legacyResourceId updatedAt }
  }
}"""

RESOURCES = (
    # resource, webhook topic it stands for, business key of a version
    ("orders", "orders/updated", "order_version"),
    ("products", "products/update", "product_version"),
)


def epoch(value: Any) -> float:
    """Seconds since the epoch of an ISO-8601 time as Shopify writes it (`Z` or an offset)."""
    if not isinstance(value, str):
        raise ContractError(f"not a time: {value!r}")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ContractError(f"not an ISO-8601 time: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def version_key(record_id: Any, updated_at: Any) -> str:
    """`{id}@{updated_at as whole seconds}`: one version of one record, however it arrived."""
    return f"{legacy_id(record_id)}@{int(epoch(updated_at))}"


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ShopifyPoller:
    def __init__(self, name: str, options: ShopifyOptions) -> None:
        assert options.poll is not None
        self.name = name
        self.options = options
        self.poll_options: PollOptions = options.poll
        self.interval = self.poll_options.interval
        self.client = ShopifyClient(name, options)

    @property
    def warnings(self) -> Sequence[str]:
        return list(self.client.warnings)

    async def close(self) -> None:
        await self.client.close()

    async def poll(self, journal: PollJournal) -> int:
        journaled = 0
        for resource, topic, key in RESOURCES:
            if getattr(self.poll_options, resource):
                journaled += await self._catch_up(journal, resource, topic, key)
        return journaled

    async def _catch_up(self, journal: PollJournal, resource: str, topic: str, key: str) -> int:
        cursor = f"poll:{self.name}:{resource}"
        saved = await journal.get_cursor(cursor)
        since = float(saved) if saved else time.time() - self.poll_options.start
        query = f"updated_at:>='{iso(since - self.poll_options.overlap)}'"
        newest, after, journaled = since, None, 0
        while True:
            answer = await self.client.graphql(
                CHANGED % resource,
                {"first": self.poll_options.page_size, "after": after, "query": query},
            )
            if answer.error is not None:
                raise answer.error
            page = (answer.data or {}).get(resource) or {}
            nodes = page.get("nodes") or []
            versions = {
                version_key(n["legacyResourceId"] or n["id"], n["updatedAt"]) for n in nodes
            }
            known = await journal.known_keys(key, sorted(versions))
            todo = sorted({v.split("@", 1)[0] for v in versions - known})
            if todo:
                journaled += await self._journal(journal, resource, topic, key, todo, known)
            for n in nodes:
                newest = max(newest, epoch(n["updatedAt"]))
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            after = info.get("endCursor")
        await journal.set_cursor(cursor, repr(newest))
        return journaled

    async def _journal(
        self,
        journal: PollJournal,
        resource: str,
        topic: str,
        key: str,
        ids: list[str],
        known: set[str],
    ) -> int:
        params = {"ids": ",".join(ids), "limit": 250}
        if resource == "orders":
            params["status"] = "any"
        answer = await self.client.rest("GET", f"{resource}.json", params)
        if answer.error is not None:
            raise answer.error
        records = (answer.data or {}).get(resource)
        if not isinstance(records, list):
            raise ContractError(f"{self.name}: {resource}.json did not answer with a list")
        headers = orjson.dumps(
            {
                "x-shopify-topic": topic,
                "x-shopify-shop-domain": self.options.shop,
                "x-shopify-api-version": self.client.version,
                "x-seamline-poll": "1",
            }
        )
        journaled = 0
        for record in records:
            version = version_key(record.get("id"), record.get("updated_at"))
            if version in known:
                continue
            message = NewMessage(
                self.name, f"poll:{topic}:{version}", time.time(), headers, orjson.dumps(record)
            )
            if await journal.append(message) is not None:
                journaled += 1
        return journaled
