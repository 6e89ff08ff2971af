"""Operations on a shop through the GraphQL Admin API, each safe to repeat.

| operation            | idempotent because                                                   |
|----------------------|----------------------------------------------------------------------|
| `set_inventory`      | it sets an absolute quantity (`inventorySetQuantities`), never adds  |
| `create_fulfillment` | it reads the order first: a fulfillment with the same tracking number |
|                      | means done; otherwise only quantities still open are fulfilled        |
| `add_tags`           | adding a tag the order has changes nothing (`tagsAdd`)               |
| `set_note`           | it replaces the note with the same text (`orderUpdate`)              |
| `cancel_order`       | it reads `cancelledAt` first and cancels only an open order          |

So every operation is retried after an unknown outcome (a timeout after sending) instead of
waiting for review. One attempt may take two calls (read, then write); the attempt records
both, in order.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from seamline.connectors.base import Exchange
from seamline.connectors.shopify.client import Answer, ShopifyClient, gid, legacy_id, user_errors
from seamline.connectors.shopify.connector import (
    OPERATIONS,
    CancelOrder,
    CreateFulfillment,
    ShopifyOptions,
)
from seamline.errors import ContractError, PermanentError, SeamlineError

# Nested connections multiply in Shopify's cost: 5 fulfillment orders x 50 lines costs about
# 520 points, inside the 1,000 a single query may request (20 x 100 would be 4,065: refused).
ORDER_STATE = """
query OrderState($id: ID!) {
  order(id: $id) {
    id name cancelledAt tags note
    fulfillments { id status trackingInfo { number company url } }
    fulfillmentOrders(first: 5) { nodes { id status
      lineItems(first: 50) { nodes { id remainingQuantity totalQuantity lineItem { id sku } } } } }
  }
}"""

VARIANT_BY_SKU = """
query VariantBySku($query: String!) {
  productVariants(first: 2, query: $query) { nodes { id sku inventoryItem { id } } }
}"""

SET_QUANTITIES = """
mutation SetQuantities($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } }
    userErrors { field message code }
  }
}"""

FULFILL = """
mutation Fulfill($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status trackingInfo { number company url } }
    userErrors { field message }
  }
}"""

TAG = """
mutation Tag($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } }
}"""

NOTE = """
mutation Note($input: OrderInput!) {
  orderUpdate(input: $input) { order { id note } userErrors { field message } }
}"""

CANCEL = """
mutation Cancel($orderId: ID!, $reason: OrderCancelReason!, $refund: Boolean!,
                $restock: Boolean!, $notifyCustomer: Boolean) {
  orderCancel(orderId: $orderId, reason: $reason, refund: $refund, restock: $restock,
              notifyCustomer: $notifyCustomer) {
    job { id done } orderCancelUserErrors { field message code }
  }
}"""


class _Attempt:
    """The calls of one operation, recorded in order; the first failure decides."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.refs: dict[str, str] = {}

    def add(self, answer: Answer) -> Answer:
        self.answers.append(answer)
        return answer

    @property
    def failed(self) -> bool:
        return any(a.error is not None for a in self.answers)

    def exchange(
        self, error: SeamlineError | None = None, warnings: tuple[str, ...] = ()
    ) -> Exchange:
        failure = error or next((a.error for a in self.answers if a.error is not None), None)
        last = self.answers[-1] if self.answers else None
        return Exchange(
            b"\n\n".join(a.request for a in self.answers),
            last.status if last else None,
            b"\n\n".join(a.body for a in self.answers),
            sum(a.duration for a in self.answers),
            failure,
            self.refs,
            warnings,
        )


class ShopifySink:
    def __init__(self, name: str, options: ShopifyOptions) -> None:
        self.name = name
        self.options = options
        self.client = ShopifyClient(name, options)
        self._told: set[str] = set()

    def idempotent(self, operation: str, options: Mapping[str, Any]) -> bool:
        return operation in OPERATIONS

    async def close(self) -> None:
        await self.client.close()

    async def send(
        self,
        operation: str,
        body: dict[str, Any],
        *,
        options: Mapping[str, Any],
        idempotency_key: str,
        headers: Mapping[str, str] | None = None,
    ) -> Exchange:
        attempt = _Attempt()
        started = time.time()
        try:
            if operation == "set_inventory":
                await self._set_inventory(attempt, body)
            elif operation == "create_fulfillment":
                await self._fulfil(attempt, body, CreateFulfillment.model_validate(options or {}))
            elif operation == "add_tags":
                await self._add_tags(attempt, body)
            elif operation == "set_note":
                await self._set_note(attempt, body)
            elif operation == "cancel_order":
                await self._cancel(attempt, body, CancelOrder.model_validate(options or {}))
            else:
                raise ContractError(
                    f"{self.name}: no operation '{operation}' (known: {', '.join(OPERATIONS)})"
                )
        except SeamlineError as exc:
            return attempt.exchange(exc, self._news())
        if not attempt.answers:
            attempt.answers.append(Answer(b"", None, b"", time.time() - started))
        return attempt.exchange(warnings=self._news())

    def _news(self) -> tuple[str, ...]:
        """Warnings the client learnt since the last attempt reported them."""
        fresh = tuple(w for w in self.client.warnings if w not in self._told)
        self._told.update(fresh)
        return fresh

    # --- operations ---------------------------------------------------------------------

    async def _set_inventory(self, attempt: _Attempt, body: Mapping[str, Any]) -> None:
        available = _required(body, "available", "set_inventory")
        if not isinstance(available, int) or isinstance(available, bool):
            raise ContractError(
                f"set_inventory: 'available' must be a whole number, not {available!r}"
            )
        location = body.get("location_id") or self.options.location_id
        if not location:
            raise ContractError(
                "set_inventory needs 'location_id' in the mapped body, or `location_id` in the "
                "system's connection"
            )
        item = body.get("inventory_item_id")
        if not item:
            sku = _required(body, "sku", "set_inventory (without inventory_item_id)")
            item = await self._inventory_item(attempt, str(sku))
            if item is None:
                return
        answer = attempt.add(
            await self.client.graphql(
                SET_QUANTITIES,
                {
                    "input": {
                        "name": "available",
                        "reason": "correction",
                        "ignoreCompareQuantity": True,
                        "quantities": [
                            {
                                "inventoryItemId": gid("InventoryItem", item),
                                "locationId": gid("Location", location),
                                "quantity": available,
                            }
                        ],
                    }
                },
                mutation=True,
            )
        )
        self._refuse_on_user_errors(answer, "inventorySetQuantities")

    async def _inventory_item(self, attempt: _Attempt, sku: str) -> str | None:
        answer = attempt.add(
            await self.client.graphql(VARIANT_BY_SKU, {"query": f"sku:'{_quoted(sku)}'"})
        )
        if answer.error is not None:
            return None
        nodes = ((answer.data or {}).get("productVariants") or {}).get("nodes") or []
        matching = [n for n in nodes if n.get("sku") == sku]
        if not matching:
            raise PermanentError(f"{self.name}: no variant with SKU {sku!r} in the shop")
        if len(matching) > 1:
            raise PermanentError(
                f"{self.name}: SKU {sku!r} is on more than one variant; give inventory_item_id"
            )
        return str(matching[0]["inventoryItem"]["id"])

    async def _order(self, attempt: _Attempt, body: Mapping[str, Any], operation: str) -> Any:
        order_id = gid("Order", _required(body, "order_id", operation))
        answer = attempt.add(await self.client.graphql(ORDER_STATE, {"id": order_id}))
        if answer.error is not None:
            return None
        order = (answer.data or {}).get("order")
        if order is None:
            raise PermanentError(f"{self.name}: no order {legacy_id(order_id)} in the shop")
        attempt.refs["order"] = legacy_id(order["id"])
        return order

    async def _fulfil(
        self, attempt: _Attempt, body: Mapping[str, Any], op: CreateFulfillment
    ) -> None:
        tracking = str(_required(body, "tracking_number", "create_fulfillment"))
        order = await self._order(attempt, body, "create_fulfillment")
        if order is None:
            return
        for done in order.get("fulfillments") or []:
            numbers = [t.get("number") for t in done.get("trackingInfo") or []]
            if tracking in numbers and done.get("status") not in ("CANCELLED", "ERROR", "FAILURE"):
                attempt.refs["fulfillment"] = legacy_id(done["id"])
                return  # done before (a repeat after an unknown outcome): nothing to send
        wanted = _wanted_lines(body)
        groups = []
        for fo in (order.get("fulfillmentOrders") or {}).get("nodes") or []:
            if fo.get("status") not in ("OPEN", "IN_PROGRESS"):
                continue
            lines = []
            for item in (fo.get("lineItems") or {}).get("nodes") or []:
                open_qty = int(item.get("remainingQuantity") or 0)
                line = item.get("lineItem") or {}
                quantity = open_qty if wanted is None else _take(wanted, line, open_qty)
                if quantity > 0:
                    lines.append({"id": item["id"], "quantity": quantity})
            if lines:
                groups.append({"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": lines})
        if wanted:
            left = ", ".join(f"{k} x{v}" for k, v in wanted.items() if v > 0)
            if left:
                raise PermanentError(
                    f"{self.name}: order {order.get('name')} has nothing open for {left}"
                )
        if not groups:
            raise PermanentError(
                f"{self.name}: order {order.get('name')} has no open lines to fulfil"
            )
        tracking_info = {"number": tracking}
        for field, key in (("tracking_company", "company"), ("tracking_url", "url")):
            if body.get(field):
                tracking_info[key] = str(body[field])
        answer = attempt.add(
            await self.client.graphql(
                FULFILL,
                {
                    "fulfillment": {
                        "lineItemsByFulfillmentOrder": groups,
                        "trackingInfo": tracking_info,
                        "notifyCustomer": op.notify_customer,
                    }
                },
                mutation=True,
            )
        )
        payload = self._refuse_on_user_errors(answer, "fulfillmentCreate")
        made = (payload or {}).get("fulfillment")
        if made:
            attempt.refs["fulfillment"] = legacy_id(made["id"])

    async def _add_tags(self, attempt: _Attempt, body: Mapping[str, Any]) -> None:
        raw = _required(body, "tags", "add_tags")
        tags = [t.strip() for t in (raw.split(",") if isinstance(raw, str) else raw)]
        tags = [t for t in tags if t]
        if not tags:
            raise ContractError("add_tags: 'tags' is empty")
        order_id = gid("Order", _required(body, "order_id", "add_tags"))
        answer = attempt.add(
            await self.client.graphql(TAG, {"id": order_id, "tags": tags}, mutation=True)
        )
        self._refuse_on_user_errors(answer, "tagsAdd")
        attempt.refs["order"] = legacy_id(order_id)

    async def _set_note(self, attempt: _Attempt, body: Mapping[str, Any]) -> None:
        order_id = gid("Order", _required(body, "order_id", "set_note"))
        note = _required(body, "note", "set_note")
        answer = attempt.add(
            await self.client.graphql(
                NOTE, {"input": {"id": order_id, "note": str(note)}}, mutation=True
            )
        )
        self._refuse_on_user_errors(answer, "orderUpdate")
        attempt.refs["order"] = legacy_id(order_id)

    async def _cancel(self, attempt: _Attempt, body: Mapping[str, Any], op: CancelOrder) -> None:
        order = await self._order(attempt, body, "cancel_order")
        if order is None or order.get("cancelledAt"):
            return  # cancelled already: a repeat changes nothing
        reason = str(body.get("reason") or op.reason).upper()
        answer = attempt.add(
            await self.client.graphql(
                CANCEL,
                {
                    "orderId": order["id"],
                    "reason": reason,
                    "refund": op.refund,
                    "restock": op.restock,
                    "notifyCustomer": op.notify_customer,
                },
                mutation=True,
            )
        )
        if answer.error is None and _already_cancelled((answer.data or {}).get("orderCancel")):
            return  # the first try's cancel job finished meanwhile: done
        self._refuse_on_user_errors(answer, "orderCancel")

    def _refuse_on_user_errors(self, answer: Answer, field: str) -> Any:
        """The mutation's payload; a PermanentError with Shopify's messages if it refused."""
        if answer.error is not None:
            return None
        payload = (answer.data or {}).get(field)
        refused = user_errors(payload)
        if refused:
            raise PermanentError(f"{self.name}: Shopify refused {field}: {refused}")
        return payload


def _required(body: Mapping[str, Any], name: str, operation: str) -> Any:
    value = body.get(name)
    if value is None or value == "":
        raise ContractError(f"{operation} needs '{name}' in the mapped body")
    return value


def _wanted_lines(body: Mapping[str, Any]) -> dict[str, int] | None:
    """`lines: [{sku | line_id, quantity}]` as {"sku:X" | "line:N": quantity}; None = all."""
    lines = body.get("lines")
    if lines is None:
        return None
    if not isinstance(lines, list):
        raise ContractError(
            "create_fulfillment: 'lines' must be a list of {sku | line_id, quantity}"
        )
    wanted: dict[str, int] = {}
    for n, line in enumerate(lines):
        if not isinstance(line, dict) or not isinstance(line.get("quantity"), int):
            raise ContractError(f"create_fulfillment: lines[{n}] needs a whole-number 'quantity'")
        if line.get("line_id"):
            key = f"line:{legacy_id(line['line_id'])}"
        elif line.get("sku"):
            key = f"sku:{line['sku']}"
        else:
            raise ContractError(f"create_fulfillment: lines[{n}] needs 'sku' or 'line_id'")
        wanted[key] = wanted.get(key, 0) + int(line["quantity"])
    return wanted


def _take(wanted: dict[str, int], line: Mapping[str, Any], open_qty: int) -> int:
    """How much of an open fulfillment-order line the wanted lines ask for (and count it)."""
    for key in (f"line:{legacy_id(line.get('id', ''))}", f"sku:{line.get('sku')}"):
        if wanted.get(key, 0) > 0:
            quantity = min(open_qty, wanted[key])
            wanted[key] -= quantity
            return quantity
    return 0


def _already_cancelled(payload: Any) -> bool:
    """orderCancel works in a background job: a repeat before `cancelledAt` shows is refused
    as already cancelled, which means the first one did it."""
    for error in (payload or {}).get("orderCancelUserErrors") or []:
        if (
            "already" in str(error.get("message", "")).lower()
            and "cancel" in str(error.get("message", "")).lower()
        ):
            return True
    return False


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
