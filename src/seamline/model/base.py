"""The base of every canonical model, and the field types they share.

Canonical models are produced by our own connectors, so they are strict where a mistake would
travel: unknown fields are rejected, instances are frozen, datetimes must carry a timezone,
exact numbers never come from floats, quantities are whole and never negative. Strings are kept
exactly as the vendor sent them (no stripping, no case folding).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, ClassVar, Final

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

__all__ = [
    "MODEL_VERSION",
    "AwareDatetime",
    "CanonicalModel",
    "Count",
    "Entity",
    "ExactDecimal",
    "Id",
    "Quantity",
    "Sku",
]

MODEL_VERSION: Final = 1
"""The canonical model's version: bumped when a field is removed, renamed or changes meaning;
adding an optional field keeps it."""

_PLAIN_DECIMAL: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class CanonicalModel(BaseModel):
    """A part of the canonical model: strict, frozen, documented field by field."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Entity(CanonicalModel):
    """A canonical entity: it has its own JSON Schema (`<entity>.json`) and may carry events."""

    entity: ClassVar[str]
    """The entity's name: the first half of its event names and its schema file's name."""


def _exact(value: object) -> object:
    # A float has already lost the vendor's digits (0.1 is 0.1000000000000000055...): refuse it
    # rather than guess, and let the connector pass the vendor's text or a Decimal instead.
    if isinstance(value, bool | float):
        raise ValueError(
            f"an exact decimal cannot come from a {type(value).__name__} ({value!r}); "
            "pass a string such as '19.99', an int or a Decimal"
        )
    if isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value):
        raise ValueError(f"{value!r} is not a decimal in plain notation such as '19.99' or '-5'")
    return value


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _vendor_id(value: object) -> object:
    # Vendors number things with ints (Shopify, WooCommerce, Tryton): keep them as their text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value == "":
        raise ValueError("an id cannot be empty")
    return value


def _sku(value: object) -> object:
    if value == "":
        raise ValueError("an empty SKU is not a SKU: pass None when there is none")
    return value


ExactDecimal = Annotated[
    Decimal,
    BeforeValidator(_exact),
    PlainSerializer(_plain, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}),
]
"""An exact decimal: from a str in plain notation, an int or a Decimal, never a float; in JSON a
string in plain notation keeping its scale ("0.10" stays "0.10")."""

Id = Annotated[str, BeforeValidator(_vendor_id), StringConstraints(min_length=1)]
"""A vendor's identifier, always text: an int is accepted and becomes its decimal string."""

Sku = Annotated[str, BeforeValidator(_sku), StringConstraints(min_length=1)]
"""A stock-keeping unit: non-empty text; no SKU is None, never ''."""

Quantity = Annotated[int, Field(strict=True, ge=0)]
"""A count of items: a whole number, never negative (a bool or "2" is refused)."""

Count = Annotated[int, Field(strict=True)]
"""A whole number that may be negative (stock can be oversold)."""
