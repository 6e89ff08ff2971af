"""Reading a shop for checks: stock at the shop's location and prices, per SKU (GraphQL).

| entity  | key      | values                                                         |
|---------|----------|----------------------------------------------------------------|
| `stock` | `(sku,)` | `available` at the system's `location_id` (not listed: not stocked there) |
| `price` | `(sku,)` | `price` of the variant, `currency`: the shop's                 |
| `orders`| `(name,)`| `lines`, `net` (total minus tax), `currency`, `cancelled`      |
| `customers` | `customer_key` | `name`, `email`, `phone` (as `checks.entity` writes them) |

Test orders are left out.

One pass over `productVariants` (ID order, 100 a page: cost about 300 of the 1000 a query
may ask), stock read through each variant's inventory item at the location. Orders: those
created within the window's days in the shop's own time zone, 10 a page with 50 lines each
(cost about 520), more lines of an order read after. Variants without
a SKU are not listed. A THROTTLED answer waits what Shopify's cost figures say and asks again;
a transient failure is asked again a few times with a growing pause, then raised.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from seamline.checks.compare import Row
from seamline.checks.entity import customer_row, lines_text, money_text
from seamline.connectors.base import Window
from seamline.connectors.shopify.client import Answer, ShopifyClient, gid
from seamline.connectors.shopify.connector import ShopifyOptions
from seamline.errors import ContractError, ThrottledError, TransientError

PAGE = 100
ATTEMPTS = 5

VARIANTS = """
query Variants($first: Int!, $after: String%s) {
  productVariants(first: $first, after: $after) {
    nodes { sku price%s }
    pageInfo { hasNextPage endCursor }
  }
}
"""
ORDER_PAGE = 10
ORDERS = """
query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query) {
    nodes {
      id name test cancelledAt currencyCode
      totalPriceSet { shopMoney { amount } }
      totalTaxSet { shopMoney { amount } }
      lineItems(first: 50) { nodes { sku quantity } pageInfo { hasNextPage endCursor } }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
MORE_LINES = """
query Lines($id: ID!, $after: String) {
  order(id: $id) {
    lineItems(first: 250, after: $after) {
      nodes { sku quantity } pageInfo { hasNextPage endCursor }
    }
  }
}
"""
CUSTOMERS = """
query Customers($first: Int!, $after: String) {
  customers(first: $first, after: $after) {
    nodes { email phone firstName lastName }
    pageInfo { hasNextPage endCursor }
  }
}
"""
STOCK = """ inventoryItem { inventoryLevel(locationId: $location) {
      quantities(names: ["available"]) { name quantity } } }"""


class ShopifyReader:
    entities: Sequence[str] = ("stock", "price", "orders", "customers")

    def __init__(self, name: str, options: ShopifyOptions) -> None:
        self.name = name
        self.options = options
        self.client = ShopifyClient(name, options)

    async def close(self) -> None:
        await self.client.close()

    async def pages(self, entity: str, window: Window | None = None) -> AsyncIterator[list[Row]]:
        if entity not in self.entities:
            raise ContractError(
                f"{self.name}: a shop lists {', '.join(self.entities)}, not {entity!r}"
            )
        if entity == "orders":
            async for page in self._orders(window):
                yield page
            return
        if entity == "customers":
            async for page in self._customers():
                yield page
            return
        variables: dict[str, Any] = {"first": PAGE, "after": None}
        if entity == "stock":
            if not self.options.location_id:
                raise ContractError(
                    f"{self.name}: reading stock needs the shop's `location_id` in "
                    f"systems/{self.name}.yaml (connection)"
                )
            query = VARIANTS % (", $location: ID!", STOCK)
            variables["location"] = gid("Location", self.options.location_id)
        else:
            query = VARIANTS % ("", "")
            shop = await self._ask("{ shop { currencyCode } }", {})
            currency = str(shop["shop"]["currencyCode"])
        while True:
            data = await self._ask(query, variables)
            page = data["productVariants"]
            nodes = [n for n in page["nodes"] if n.get("sku")]
            if entity == "stock":
                levels = ((n["sku"], _available(n)) for n in nodes)
                yield [Row((str(s),), {"available": a}) for s, a in levels if a is not None]
            else:
                yield [
                    Row((str(n["sku"]),), {"price": str(n["price"]), "currency": currency})
                    for n in nodes
                ]
            if not page["pageInfo"]["hasNextPage"]:
                return
            variables["after"] = page["pageInfo"]["endCursor"]

    async def _customers(self) -> AsyncIterator[list[Row]]:
        variables: dict[str, Any] = {"first": PAGE, "after": None}
        while True:
            page = (await self._ask(CUSTOMERS, variables))["customers"]
            rows = []
            for c in page["nodes"]:
                name = " ".join(p for p in (c.get("firstName"), c.get("lastName")) if p)
                rows.append(customer_row(c.get("email"), c.get("phone"), name))
            yield rows
            if not page["pageInfo"]["hasNextPage"]:
                return
            variables["after"] = page["pageInfo"]["endCursor"]

    async def _orders(self, window: Window | None) -> AsyncIterator[list[Row]]:
        if window is None:
            raise ContractError(f"{self.name}: reading orders needs a window of days")
        shop = await self._ask("{ shop { ianaTimezone } }", {})
        zone = ZoneInfo(str(shop["shop"]["ianaTimezone"]))
        since = datetime.datetime.combine(window.first, datetime.time(), zone)
        until = datetime.datetime.combine(
            window.last + datetime.timedelta(days=1), datetime.time(), zone
        )
        search = f"created_at:>='{since.isoformat()}' created_at:<'{until.isoformat()}'"
        variables: dict[str, Any] = {"first": ORDER_PAGE, "after": None, "query": search}
        while True:
            page = (await self._ask(ORDERS, variables))["orders"]
            rows = []
            for order in page["nodes"]:
                if order["test"]:
                    continue
                items = order["lineItems"]
                lines = [(i["sku"], i["quantity"]) for i in items["nodes"]]
                after = items["pageInfo"]["endCursor"]
                while items["pageInfo"]["hasNextPage"]:
                    more = await self._ask(MORE_LINES, {"id": order["id"], "after": after})
                    items = more["order"]["lineItems"]
                    lines += [(i["sku"], i["quantity"]) for i in items["nodes"]]
                    after = items["pageInfo"]["endCursor"]
                total = Decimal(order["totalPriceSet"]["shopMoney"]["amount"])
                tax = Decimal(
                    (order.get("totalTaxSet") or {}).get("shopMoney", {}).get("amount") or 0
                )
                rows.append(
                    Row(
                        (str(order["name"]),),
                        {
                            "lines": lines_text(lines),
                            "net": money_text(total - tax),
                            "currency": order["currencyCode"],
                            "cancelled": order["cancelledAt"] is not None,
                        },
                    )
                )
            yield rows
            if not page["pageInfo"]["hasNextPage"]:
                return
            variables["after"] = page["pageInfo"]["endCursor"]

    async def _ask(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        pause = 0.5
        for attempt in range(1, ATTEMPTS + 1):
            answer: Answer = await self.client.graphql(query, variables)
            error = answer.error
            if error is None:
                data: dict[str, Any] = answer.data or {}
                return data
            if isinstance(error, ThrottledError):
                await asyncio.sleep(error.retry_after or pause)
            elif isinstance(error, TransientError) and attempt < ATTEMPTS:
                await asyncio.sleep(error.retry_after or pause)
                pause *= 2
            else:
                raise error
        raise TransientError(f"{self.name}: Shopify kept throttling the read ({ATTEMPTS} tries)")


def _available(node: Mapping[str, Any]) -> int | None:
    level = (node.get("inventoryItem") or {}).get("inventoryLevel")
    if not level:
        return None
    for quantity in level.get("quantities") or []:
        if quantity.get("name") == "available":
            return int(quantity["quantity"])
    return None
