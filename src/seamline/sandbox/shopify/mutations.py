"""The mutations the connector sends, with Shopify's payloads and ``userErrors``.

A refused mutation answers HTTP 200 with the reason in its payload's ``userErrors`` (or
``orderCancelUserErrors``) and changes nothing; unknown ids are refusals too. Changes fire
the webhooks Shopify fires (see `Shop`). ``orderCancel`` is asynchronous, as on Shopify:
it answers with a ``Job`` (``done: false``) and the cancellation happens just after the
answer, when ``job(id:) { done }`` turns true and ``orders/cancelled`` is sent.
"""

from __future__ import annotations

import contextlib
from typing import Any, Final

from graphql import GraphQLError

from seamline.sandbox.shopify.ids import gid, parse_gid
from seamline.sandbox.shopify.resolvers import RESOLVERS, Context, resolves
from seamline.sandbox.shopify.shop import LEVEL_QUANTITY_LIMIT, ShopError

Json = dict[str, Any]
MAX_INPUT_ITEMS: Final = 250
QUANTITY_NAMES: Final = ("available", "on_hand")
REASONS: Final = (
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_canceled",
    "movement_created",
    "movement_received",
    "movement_updated",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
)


def _user_error(error: ShopError, *, code: bool = False, prefix: tuple[str, ...] = ()) -> Json:
    found: Json = {
        "field": [*prefix, *error.field] if error.field is not None else None,
        "message": error.message,
    }
    if code:
        found["code"] = error.code
    return found


def _limit(items: list[Any], what: str) -> None:
    if len(items) > MAX_INPUT_ITEMS:
        raise GraphQLError(
            f"The input array size of {len(items)} is greater than the maximum allowed of "
            f"{MAX_INPUT_ITEMS}.",
            extensions={"code": "MAX_INPUT_SIZE_EXCEEDED", "path": [what]},
        )


# inventory -------------------------------------------------------------------------------


@resolves("Mutation", "inventorySetQuantities")
def _set_quantities(_: Any, ctx: Context, input: Json) -> Json:
    """Set absolute quantities, all or none; ``inventoryAdjustmentGroup`` null if none changed."""
    shop = ctx.shop
    quantities = input["quantities"]
    _limit(quantities, "quantities")
    name, reason = input["name"], input["reason"]
    errors: list[Json] = []
    if name not in QUANTITY_NAMES:
        message = "The quantity name must be either 'available' or 'on_hand'."
        errors.append({"field": ["input", "name"], "code": "INVALID_NAME", "message": message})
    if reason not in REASONS:
        message = "The specified reason is invalid."
        errors.append({"field": ["input", "reason"], "code": "INVALID_REASON", "message": message})
    plan: list[tuple[int, int, int]] = []
    seen: set[tuple[int, int]] = set()
    for n, quantity in enumerate(quantities):
        try:
            plan.append(
                _planned(ctx, quantity, name, bool(input.get("ignoreCompareQuantity")), seen)
            )
        except ShopError as error:
            errors.append(_user_error(error, code=True, prefix=("input", "quantities", str(n))))
    if errors:
        return {"inventoryAdjustmentGroup": None, "userErrors": errors}
    changes = []
    for item_id, location_id, available in plan:
        level, delta = shop.set_available(item_id, location_id, available)
        if delta:
            item, location = shop.items[item_id], shop.locations[location_id]
            for quantity_name, after in (
                ("available", level["available"]),
                ("on_hand", shop.on_hand(item_id, location_id)),
            ):
                changes.append(
                    {
                        "name": quantity_name,
                        "delta": delta,
                        "quantity_after_change": after,
                        "item": item,
                        "location": location,
                    }
                )
    if not changes:
        return {"inventoryAdjustmentGroup": None, "userErrors": []}
    group_id = shop.ids.next("InventoryAdjustmentGroup")
    group = {
        "admin_graphql_api_id": gid("InventoryAdjustmentGroup", group_id),
        "created_at": shop.clock.iso(),
        "reason": reason,
        "reference_document_uri": input.get("referenceDocumentUri"),
        "changes": changes,
    }
    return {"inventoryAdjustmentGroup": group, "userErrors": []}


def _planned(
    ctx: Context, quantity: Json, name: str, ignore_compare: bool, seen: set[tuple[int, int]]
) -> tuple[int, int, int]:
    """(item id, location id, the ``available`` to set) for one input, or a `ShopError`."""
    shop = ctx.shop
    item = parse_gid(quantity["inventoryItemId"])
    location = parse_gid(quantity["locationId"])
    if item is None or item[0] != "InventoryItem" or item[1] not in shop.items:
        message = "The specified inventory item could not be found."
        raise ShopError(message, field=["inventoryItemId"], code="INVALID_INVENTORY_ITEM")
    if location is None or location[0] != "Location" or location[1] not in shop.locations:
        message = "The specified location could not be found."
        raise ShopError(message, field=["locationId"], code="INVALID_LOCATION")
    key = (item[1], location[1])
    if key in seen:
        message = "The combination of inventoryItemId and locationId must be unique."
        code = "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR"
        raise ShopError(message, field=["inventoryItemId"], code=code)
    seen.add(key)
    if not ignore_compare:
        compare = quantity.get("changeFromQuantity", quantity.get("compareQuantity"))
        if compare is None:
            message = (
                "The compareQuantity argument must be given to each quantity or ignored "
                "using ignoreCompareQuantity."
            )
            raise ShopError(message, field=["compareQuantity"], code="COMPARE_QUANTITY_REQUIRED")
        if compare != _current(ctx, key, name):
            message = "The compareQuantity argument no longer matches the persisted quantity."
            raise ShopError(message, field=["compareQuantity"], code="COMPARE_QUANTITY_STALE")
    target: int = quantity["quantity"]
    if name == "on_hand":
        target -= shop.committed.get(key, 0)
    if abs(target) >= LEVEL_QUANTITY_LIMIT:
        code = "INVALID_QUANTITY_TOO_HIGH" if target > 0 else "INVALID_QUANTITY_TOO_LOW"
        raise ShopError("The quantity is out of range.", field=["quantity"], code=code)
    return key[0], key[1], target


def _current(ctx: Context, key: tuple[int, int], name: str) -> int:
    level = ctx.shop.levels.get(key)
    available = level["available"] if level else 0
    return available if name == "available" else ctx.shop.on_hand(*key)


@resolves("InventoryAdjustmentGroup", "changes")
def _changes(
    group: Json,
    ctx: Context,
    inventoryItemIds: list[str] | None = None,
    locationIds: list[str] | None = None,
    quantityNames: list[str] | None = None,
) -> list[Json]:
    return [
        c
        for c in group["changes"]
        if (inventoryItemIds is None or c["item"]["admin_graphql_api_id"] in inventoryItemIds)
        and (locationIds is None or c["location"]["admin_graphql_api_id"] in locationIds)
        and (quantityNames is None or c["name"] in quantityNames)
    ]


# fulfillment -----------------------------------------------------------------------------


@resolves("Mutation", "fulfillmentCreate")
def _fulfillment_create(
    _: Any, ctx: Context, fulfillment: Json, message: str | None = None
) -> Json:
    groups = fulfillment["lineItemsByFulfillmentOrder"]
    _limit(groups, "lineItemsByFulfillmentOrder")
    try:
        requests = []
        for n, group in enumerate(groups):
            fo = parse_gid(group["fulfillmentOrderId"])
            if fo is None or fo[0] != "FulfillmentOrder":
                where = ["fulfillment", "lineItemsByFulfillmentOrder", str(n), "fulfillmentOrderId"]
                raise ShopError("Fulfillment order does not exist.", field=where)
            lines = group.get("fulfillmentOrderLineItems")
            wanted: list[tuple[int, int]] | None = None
            if lines is not None:
                wanted = []
                for line in lines:
                    parsed = parse_gid(line["id"])
                    wanted.append((parsed[1] if parsed else -1, line["quantity"]))
            requests.append((fo[1], wanted))
        tracking = fulfillment.get("trackingInfo") or {}
        number = tracking.get("number") or (tracking.get("numbers") or [None])[0]
        url = tracking.get("url") or (tracking.get("urls") or [None])[0]
        done = ctx.shop.fulfill(
            requests, tracking={"number": number, "company": tracking.get("company"), "url": url}
        )
    except ShopError as error:
        return {"fulfillment": None, "userErrors": [_user_error(error)]}
    return {"fulfillment": done, "userErrors": []}


# tags, notes, cancellation ---------------------------------------------------------------


def _tag_target(value: str) -> tuple[str, int]:
    parsed = parse_gid(value)
    if parsed is None:
        raise ShopError(f"Invalid global id '{value}'", field=["id"])
    return parsed


def _tags_change(adding: bool) -> Any:
    def change(_: Any, ctx: Context, id: str, tags: list[str]) -> Json:
        try:
            kind, record_id = _tag_target(id)
            act = ctx.shop.add_tags if adding else ctx.shop.remove_tags
            return {"node": act(kind, record_id, tags), "userErrors": []}
        except ShopError as error:
            return {"node": None, "userErrors": [_user_error(error)]}

    return change


RESOLVERS[("Mutation", "tagsAdd")] = _tags_change(adding=True)
RESOLVERS[("Mutation", "tagsRemove")] = _tags_change(adding=False)


@resolves("Mutation", "orderUpdate")
def _order_update(_: Any, ctx: Context, input: Json) -> Json:
    parsed = parse_gid(input["id"])
    try:
        if parsed is None or parsed[0] != "Order":
            raise ShopError("Order does not exist", field=["id"])
        doc = ctx.shop.update_order(
            parsed[1], note=input.get("note"), email=input.get("email"), tags=input.get("tags")
        )
    except ShopError as error:
        return {"order": None, "userErrors": [_user_error(error)]}
    return {"order": doc, "userErrors": []}


@resolves("Mutation", "orderCancel")
def _order_cancel(
    _: Any,
    ctx: Context,
    orderId: str,
    reason: str,
    restock: bool,
    refund: bool | None = None,
    **_ignored: Any,
) -> Json:
    shop = ctx.shop
    parsed = parse_gid(orderId)
    try:
        if parsed is None or parsed[0] != "Order":
            raise ShopError("Order does not exist", field=["orderId"], code="NOT_FOUND")
        shop.check_cancel(parsed[1])
    except ShopError as error:
        return {
            "job": None,
            "orderCancelUserErrors": [_user_error(error, code=True)],
            "userErrors": [_user_error(error)],
        }
    job_id = shop.new_job()
    order_id = parsed[1]

    def cancel_now() -> None:
        # Another cancellation may have won the race: the job completes all the same.
        with contextlib.suppress(ShopError):
            shop.cancel(order_id, reason=reason, refund=bool(refund), restock=restock)
        shop.jobs[job_id] = True

    ctx.defer(cancel_now)
    job = {"admin_graphql_api_id": f"gid://shopify/Job/{job_id}", "done": False, "query": {}}
    return {"job": job, "orderCancelUserErrors": [], "userErrors": []}
