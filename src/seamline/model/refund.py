"""Refund: money given back on an order, and the items it covers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Self

from pydantic import Field, model_validator

from seamline.model.base import AwareDatetime, CanonicalModel, Entity, Id, Quantity, Sku
from seamline.model.money import Money, check_currency

__all__ = ["Refund", "RefundLine"]


class RefundLine(CanonicalModel):
    """How many of one order line are refunded, and whether they go back to stock."""

    line_id: Id = Field(examples=["466157049"])
    """The refunded order line's `id`."""

    sku: Sku | None = Field(None, examples=["TS-BLK-M"])
    """The refunded line's SKU; null when it has none."""

    quantity: Quantity = Field(examples=[1])
    """How many units are refunded."""

    restock: bool = Field(False, examples=[True])
    """True when the units go back to stock."""

    subtotal: Money
    """The amount refunded for these units."""


class Refund(Entity):
    """A refund on an order. Event: `refund.created`. All its amounts share one currency."""

    entity: ClassVar[str] = "refund"

    id: Id = Field(examples=["509562969"])
    """The refund's id in the source system."""

    order_id: Id = Field(examples=["450789469"])
    """The refunded order's `id`."""

    created_at: AwareDatetime = Field(examples=["2024-05-06T11:00:00+02:00"])
    """When the refund was made."""

    note: str | None = Field(None, examples=["Wrong size"])
    """Why, as the merchant wrote it."""

    lines: list[RefundLine] = Field(default_factory=list)
    """The refunded items; empty for a refund of an amount only."""

    amount: Money
    """The total refunded to the customer (items, shipping and any adjustment)."""

    shipping_refund: Money | None = None
    """The part of `amount` that refunds shipping; null when none."""

    @model_validator(mode="after")
    def _one_currency(self) -> Self:
        check_currency(self.amount.currency, self._amounts())
        return self

    def _amounts(self) -> Iterator[tuple[str, Money | None]]:
        yield "shipping_refund", self.shipping_refund
        for i, line in enumerate(self.lines):
            yield f"lines.{i}.subtotal", line.subtotal
