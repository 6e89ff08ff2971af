"""Values every reader writes the same way, so that two systems compare as equals."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal


def lines_text(lines: Iterable[tuple[str | None, int | float | Decimal]]) -> str:
    """`"A*2, B*1"`: quantity per SKU, SKUs in order, lines without a SKU left out (tips,
    shipping, gift wrap: each system books those its own way)."""
    total: dict[str, Decimal] = {}
    for sku, quantity in lines:
        if sku:
            total[sku] = total.get(sku, Decimal(0)) + Decimal(str(quantity))
    return ", ".join(f"{sku}*{total[sku].normalize():f}" for sku in sorted(total) if total[sku])


def money_text(amount: Decimal | str | float | int) -> str:
    """An amount with two decimals, as text: `"59.70"`."""
    return f"{Decimal(str(amount)).quantize(Decimal('0.01')):f}"
