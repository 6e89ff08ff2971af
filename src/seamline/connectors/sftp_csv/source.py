"""The 3PL as a source: what the poller journaled from `out_dir`, decoded.

| message (`x-sftp-csv-kind`) | canonical event                                          |
|-----------------------------|----------------------------------------------------------|
| `shipment`                  | `fulfillment.created`: one order, one tracking number    |
| `inventory`                 | `inventory.changed`: one SKU; `inventory_item_id` is the SKU|
| `rejected`                  | a ContractError naming the file and line                 |

The file drop has no item ids, so an InventoryLevel carries the SKU as `inventory_item_id`
too; a target that keys stock by its own item id looks the SKU up (Shopify's `set_inventory`
takes `sku`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from seamline.connectors.base import Event
from seamline.connectors.sftp_csv.connector import SftpCsvOptions
from seamline.connectors.sftp_csv.poller import KIND
from seamline.errors import ContractError, SignatureError
from seamline.model import Fulfillment, InventoryLevel


class SftpCsvSource:
    def __init__(self, name: str, options: SftpCsvOptions) -> None:
        self.name = name
        self.options = options

    def verify(self, raw_headers: Sequence[tuple[bytes, bytes]], body: bytes) -> str:
        raise SignatureError(
            f"{self.name} is a 3PL file drop: it sends files, not webhooks (they are polled)"
        )

    def decode(self, headers: Mapping[str, str], body: bytes) -> Event:
        kind = headers.get(KIND, "")
        try:
            payload: Any = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ContractError(f"{self.name}: the message is not JSON ({exc})") from None
        if not isinstance(payload, dict):
            raise ContractError(f"{self.name}: the message is not a JSON object")
        try:
            if kind == "shipment":
                return self._shipment(payload)
            if kind == "inventory":
                return self._inventory(payload)
        except (KeyError, IndexError, TypeError, ValueError, ValidationError) as exc:
            raise ContractError(
                f"{self.name}: {payload.get('file')}: not a shipment or inventory row as "
                f"the poller writes it ({type(exc).__name__}: {exc})"
            ) from None
        if kind == "rejected":
            text = f" ({payload.get('text')!r})" if payload.get("text") else ""
            raise ContractError(
                f"{payload.get('file')}:{payload.get('line')}: {payload.get('reason')}{text}"
            )
        raise ContractError(f"{self.name}: a message of kind {kind or '(none)'!r}")

    def _shipment(self, payload: dict[str, Any]) -> Event:
        rows: list[dict[str, Any]] = payload["rows"]
        first = rows[0]
        order_id, tracking = str(first["order_id"]), str(first["tracking_number"])
        fulfillment = Fulfillment(
            id=str(first.get("shipment_id") or f"{order_id}:{tracking}"),
            order_id=order_id,
            order_number=first.get("order_number"),
            status="success",
            created_at=first.get("shipped_at"),
            location_id=self.options.location_id or self.name,
            tracking_company=first.get("carrier"),
            tracking_numbers=[tracking],
            tracking_urls=[first["tracking_url"]] if first.get("tracking_url") else [],
            lines=[
                {"line_id": r.get("line_id"), "sku": r["sku"], "quantity": r["quantity"]}
                for r in rows
            ],
        )
        data = fulfillment.model_dump(mode="json")
        keys = {"fulfillment": fulfillment.id, "order_id": order_id, "tracking": tracking}
        return Event("fulfillment.created", data, keys)

    def _inventory(self, payload: dict[str, Any]) -> Event:
        level = InventoryLevel(
            inventory_item_id=payload["sku"],
            location_id=payload["location_id"],
            sku=payload["sku"],
            available=payload["available"],
            updated_at=payload["updated_at"],
        )
        data = level.model_dump(mode="json")
        keys = {
            "inventory_item": level.sku or "",
            "sku": level.sku or "",
            "location": level.location_id,
        }
        version = level.updated_at.timestamp() if level.updated_at else None
        return Event("inventory.changed", data, keys, version)
