"""Customer: a person or company who buys, with their addresses."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from seamline.model.address import Address
from seamline.model.base import AwareDatetime, Entity, Id

__all__ = ["Customer"]


class Customer(Entity):
    """A customer as the source system knows it. Events: `customer.created`,
    `customer.updated`; an Order carries one in `customer` (or null for a guest)."""

    entity: ClassVar[str] = "customer"

    id: Id = Field(examples=["207119551"])
    """The customer's id in the source system."""

    email: str | None = Field(None, examples=["zoe@example.com"])
    """Email address, as the vendor holds it (not validated)."""

    phone: str | None = Field(None, examples=["+32470123456"])
    """Phone number, as the vendor holds it."""

    first_name: str | None = Field(None, examples=["Zoë"])
    """Given name."""

    last_name: str | None = Field(None, examples=["Martens"])
    """Family name."""

    created_at: AwareDatetime | None = Field(None, examples=["2024-03-01T09:15:00+01:00"])
    """When the customer was created in the source system."""

    updated_at: AwareDatetime | None = Field(None, examples=["2024-05-02T14:00:00+02:00"])
    """When the customer was last changed in the source system."""

    default_address: Address | None = None
    """The address the customer marked as default."""

    addresses: list[Address] = Field(default_factory=list)
    """Every address the customer has saved (may include the default one)."""

    tags: list[str] = Field(default_factory=list, examples=[["vip", "wholesale"]])
    """The source system's tags on the customer."""

    accepts_marketing: bool | None = Field(None, examples=[True])
    """Whether the customer agreed to receive marketing email; null when unknown."""

    note: str | None = Field(None, examples=["Prefers delivery after 5pm"])
    """Free-text note about the customer."""
