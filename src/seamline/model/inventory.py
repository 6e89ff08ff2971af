"""InventoryLevel: how many of one item are available at one location."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from seamline.model.base import AwareDatetime, Count, Entity, Id, Sku

__all__ = ["InventoryLevel"]


class InventoryLevel(Entity):
    """The available stock of one inventory item at one location. Event: `inventory.changed`
    (its entity name is `inventory`). A state, not a change: a newer level supersedes older
    ones."""

    entity: ClassVar[str] = "inventory"

    inventory_item_id: Id = Field(examples=["808950810"])
    """The stocked item's id in the source system (Variant's `inventory_item_id`)."""

    location_id: Id = Field(examples=["655441491"])
    """The location's (warehouse, shop) id in the source system."""

    sku: Sku | None = Field(None, examples=["TS-BLK-M"])
    """The item's SKU, when the source sends it or the connector looked it up."""

    available: Count = Field(examples=[12])
    """Units available to sell; negative when oversold."""

    updated_at: AwareDatetime | None = Field(None, examples=["2024-05-02T10:05:00+02:00"])
    """When the level last changed in the source system."""
