"""Values every reader writes the same way, so that two systems compare as equals."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from seamline.checks.compare import Row


def lines_text(lines: Iterable[tuple[str | None, int | float | Decimal]]) -> str:
    """`"A*2, B*1"`: quantity per SKU, SKUs in order, lines without a SKU left out (tips,
    shipping, gift wrap: each system books those its own way)."""
    total: dict[str, Decimal] = {}
    for sku, quantity in lines:
        if sku:
            total[sku] = total.get(sku, Decimal(0)) + Decimal(str(quantity))
    return ", ".join(f"{sku}*{total[sku].normalize():f}" for sku in sorted(total) if total[sku])


def money_text(amount: Decimal | str | float | int) -> str:
    """An amount with two decimals (half up, as invoices round), as text: `"59.70"`."""
    return f"{Decimal(str(amount)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):f}"


def email_text(value: str | None) -> str:
    """An e-mail address as systems compare it: trimmed, case folded."""
    return (value or "").strip().casefold()


def phone_text(value: str | None) -> str:
    """A phone number's digits, with its leading `+`: `+32 (9) 123 45 67` is `+3291234567`."""
    text = (value or "").strip()
    digits = "".join(c for c in text if c.isdigit())
    return f"+{digits}" if text.startswith("+") and digits else digits


def name_text(value: str | None) -> str:
    """A person's name as systems compare it: accents dropped (an ERP that keeps ASCII
    only writes Zoe for Zoë), case folded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", value or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def customer_key(email: str | None, phone: str | None, name: str | None) -> tuple[str]:
    """How a customer is matched across systems: by e-mail, else phone, else name."""
    if email_text(email):
        return (f"email:{email_text(email)}",)
    if phone_text(phone):
        return (f"phone:{phone_text(phone)}",)
    return (f"name:{name_text(name)}",)


def customer_row(email: str | None, phone: str | None, name: str | None) -> Row:
    """A customer as every reader lists it: keyed by `customer_key`, values normalised."""
    return Row(
        customer_key(email, phone, name),
        {"name": name_text(name), "email": email_text(email), "phone": phone_text(phone)},
    )
