"""Fulfillment: items of an order leaving a location, with their tracking.

"Shipment" names the same thing: `Shipment` is an alias of `Fulfillment`, not another model.
"""

from __future__ import annotations

from typing import ClassVar, Literal, TypeAlias

from pydantic import Field

from seamline.model.base import AwareDatetime, CanonicalModel, Entity, Id, Quantity, Sku

__all__ = ["Fulfillment", "FulfillmentLine", "FulfillmentStatus", "Shipment"]

FulfillmentStatus: TypeAlias = Literal[
    "pending", "open", "success", "cancelled", "error", "failure"
]


class FulfillmentLine(CanonicalModel):
    """How many of one order line this fulfillment ships."""

    line_id: Id | None = Field(None, examples=["466157049"])
    """The order line's `id`, when the source links it."""

    sku: Sku | None = Field(None, examples=["TS-BLK-M"])
    """The SKU shipped."""

    quantity: Quantity = Field(examples=[2])
    """How many units were shipped."""


class Fulfillment(Entity):
    """A shipment of some or all of an order's items (also exported as `Shipment`).
    Event: `fulfillment.created`."""

    entity: ClassVar[str] = "fulfillment"

    id: Id = Field(examples=["255858046"])
    """The fulfillment's id in the source system."""

    order_id: Id = Field(examples=["450789469"])
    """The fulfilled order's `id`."""

    order_number: str | None = Field(None, examples=["#1001"])
    """The fulfilled order's `number`, when the source sends it."""

    status: FulfillmentStatus = Field(examples=["success"])
    """`pending`, `open` (in progress), `success` (shipped), `cancelled`, `error`, `failure`."""

    created_at: AwareDatetime | None = Field(None, examples=["2024-05-03T16:20:00+02:00"])
    """When the fulfillment was created."""

    location_id: Id | None = Field(None, examples=["655441491"])
    """The location it ships from."""

    tracking_company: str | None = Field(None, examples=["bpost"])
    """The carrier."""

    tracking_numbers: list[str] = Field(default_factory=list, examples=[["323155012345678"]])
    """Tracking numbers, one per parcel."""

    tracking_urls: list[str] = Field(
        default_factory=list, examples=[["https://track.bpost.cloud/?itemCode=323155012345678"]]
    )
    """Tracking pages, one per parcel, in the order of `tracking_numbers`."""

    lines: list[FulfillmentLine] = Field(default_factory=list)
    """What is shipped."""


Shipment = Fulfillment
"""A shipment is a fulfillment: the same model under the name logistics people use."""
