"""A check file (`checks/NAME.yaml`): what to compare between two systems, and how closely.

```yaml
owner: operations@demo-shop.example
purpose: The shop sells what the warehouse has.
entity: stock                      # stock | price (what the systems' readers list)
left: {system: warehouse}          # the side that is right: heals copy from it
right: {system: shop}
fields:                            # compared fields, each with its tolerance
  available: {absolute: 0}
schedule: {every: 1h}              # optional: run by the scheduler; else on demand
heal: {flow: stock-to-shop}        # optional: re-send left values through this flow
days: 2                            # orders: today and the day before (each system's days)
duplicates_by: [phone]             # customers: two records sharing a phone are probably one
```
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from seamline.checks.compare import Tolerance
from seamline.connectors.base import Window
from seamline.settings import parse_duration

ENTITIES = ("stock", "price", "orders", "customers")
DEFAULT_FIELDS: dict[str, dict[str, str]] = {
    "stock": {"available": "exact"},
    "price": {"price": "exact"},
    "orders": {"lines": "exact", "net": "exact"},
    "customers": {"name": "exact"},
}
ABSENT: dict[str, dict[str, object] | None] = {
    "stock": {"available": 0},
    "price": None,
    "orders": None,
    "customers": None,
}
"""What a row missing on one side stands for: stock not listed is stock at 0."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SideSpec(Strict):
    system: str
    """A system in `systems/` whose connector can read the entity."""


class FieldSpec(Strict):
    """How far the two values may differ and still agree (numbers); text is compared as is,
    or with `fold_case`."""

    absolute: Decimal = Decimal(0)
    relative: Decimal = Field(Decimal(0), ge=0, le=1)
    """A fraction of the larger value: 0.01 is 1%."""
    fold_case: bool = False

    def tolerance(self) -> Tolerance:
        return Tolerance(self.absolute, self.relative, self.fold_case)


class ScheduleSpec(Strict):
    every: float
    """Seconds between runs (`15m`, `1h`, `1d` in the file)."""

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        seconds = parse_duration(value)
        if seconds < 60:
            raise ValueError("a check runs at most once a minute (`every: 1m` or more)")
        return seconds


class HealSpec(Strict):
    flow: str
    """The flow that owns the right side's value: heals go through it as deliveries."""


class CheckSpec(Strict):
    owner: str
    purpose: str = ""
    entity: Literal["stock", "price", "orders", "customers"]
    left: SideSpec
    right: SideSpec
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    schedule: ScheduleSpec | None = None
    heal: HealSpec | None = None
    days: int = Field(2, ge=1, le=366)
    """For `orders`: the window is today and the `days - 1` days before."""
    notify: list[str] = Field(default_factory=list)
    """Notifiers (in seamline.yaml) told when the check finds drift or cannot run."""
    duplicates_by: list[Literal["phone", "name", "email"]] = Field(default_factory=list)
    """For `customers`: fields two records of one system share when they are one person."""

    def window(self, today: datetime.date) -> Window | None:
        """The days an `orders` check reads (None for the other entities)."""
        if self.entity != "orders":
            return None
        return Window(today - datetime.timedelta(days=self.days - 1), today)

    def tolerances(self) -> dict[str, Tolerance]:
        """The compared fields: those of the file, else the entity's usual one, exact."""
        if self.fields:
            return {name: spec.tolerance() for name, spec in self.fields.items()}
        return {name: Tolerance() for name in DEFAULT_FIELDS[self.entity]}
