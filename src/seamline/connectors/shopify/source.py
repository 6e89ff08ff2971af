"""Shopify as a source: webhooks verified at ingest (`webhook.py`), decoded in the router.

A journaled message keeps the webhook's headers; the topic says which resource the body is and
which canonical event it becomes (`connector.TOPICS`). Polled messages (`poller.py`) carry the
same headers and bodies, so they decode the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from seamline.connectors.base import Event
from seamline.connectors.shopify.connector import TOPICS, ShopifyOptions
from seamline.connectors.shopify.payload import Reader
from seamline.connectors.shopify.poller import epoch, version_key
from seamline.connectors.shopify.webhook import ShopifyVerifier
from seamline.errors import ContractError

# topic prefix -> (the key holding the resource in a REST answer, how to read it)
RESOURCES: Mapping[str, str] = {
    "orders": "order",
    "refunds": "refund",
    "fulfillments": "fulfillment",
    "products": "product",
    "inventory_levels": "inventory_level",
    "customers": "customer",
}


class ShopifySource:
    def __init__(self, name: str, options: ShopifyOptions) -> None:
        self.name = name
        self.options = options
        self._verifier = ShopifyVerifier([s.reveal() for s in options.secrets], shop=options.shop)

    def verify(self, raw_headers: Sequence[tuple[bytes, bytes]], body: bytes) -> str:
        return self._verifier.verify(raw_headers, body)

    def decode(self, headers: Mapping[str, str], body: bytes) -> Event:
        topic = headers.get("x-shopify-topic", "")
        name = TOPICS.get(topic)
        if name is None:
            raise ContractError(
                f"topic {topic or '(none)'!r} is not one the Shopify connector decodes "
                f"(it decodes {', '.join(TOPICS)})"
            )
        try:
            payload: Any = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ContractError(f"{topic}: the body is not JSON ({exc})") from None
        if not isinstance(payload, dict):
            raise ContractError(f"{topic}: the body is not a JSON object")
        resource = topic.split("/", 1)[0]
        # A REST answer wraps the resource (`{"order": {...}}`); a webhook body is the resource.
        wrapped = payload.get(RESOURCES[resource])
        if isinstance(wrapped, dict) and len(payload) == 1:
            payload = wrapped
        reader = Reader(topic, self.options.currency)
        try:
            data, keys = DECODERS[resource](reader, payload)
            updated = payload.get("updated_at")
            version = epoch(updated) if isinstance(updated, str) else None
        except ContractError as exc:
            # A value the contract refuses (a time that is not one): say in which topic.
            if str(exc).startswith(f"{topic}:"):
                raise
            raise ContractError(f"{topic}: {exc}") from None
        except (
            TypeError,
            AttributeError,
            KeyError,
            IndexError,
            ValueError,
            ArithmeticError,
        ) as exc:
            # A value of another type where Shopify documents an object, list or number: the
            # payload breaks the contract. Say so, with what was found, instead of crashing.
            raise ContractError(
                f"{topic}: the payload does not have Shopify's documented shape "
                f"({type(exc).__name__}: {exc})"
            ) from None
        return Event(name, data, {k: v for k, v in keys.items() if v}, version)


def _order(reader: Reader, o: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    data = reader.order(o)
    first_sku = next((line["sku"] for line in data["lines"] if line["sku"]), None)
    keys = {
        "order": data["number"],
        "order_id": data["id"],
        "order_version": version_key(data["id"], o["updated_at"]),
        "email": data["email"] or "",
        "sku": first_sku or "",
    }
    return data, keys


def _refund(reader: Reader, r: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    data = reader.refund(r)
    return data, {"refund": data["id"], "order_id": data["order_id"]}


def _fulfillment(reader: Reader, f: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    data = reader.fulfillment(f)
    tracking = data["tracking_numbers"][0] if data["tracking_numbers"] else ""
    return data, {"fulfillment": data["id"], "order_id": data["order_id"], "tracking": tracking}


def _product(reader: Reader, p: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    data = reader.product(p)
    keys = {
        "product": data["id"],
        "sku": next((v["sku"] for v in data["variants"] if v["sku"]), ""),
    }
    if p.get("updated_at"):
        keys["product_version"] = version_key(data["id"], p["updated_at"])
    return data, keys


def _inventory(reader: Reader, level: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    data = reader.inventory(level)
    return data, {"inventory_item": data["inventory_item_id"], "location": data["location_id"]}


def _customer(reader: Reader, c: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    data = reader.customer(c)
    return data, {"customer": data["id"], "email": data["email"] or ""}


Decoder = Callable[[Reader, dict[str, Any]], tuple[dict[str, Any], dict[str, str]]]
DECODERS: Mapping[str, Decoder] = {
    "orders": _order,
    "refunds": _refund,
    "fulfillments": _fulfillment,
    "products": _product,
    "inventory_levels": _inventory,
    "customers": _customer,
}
