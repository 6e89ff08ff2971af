"""Money: an exact amount in one currency, and the arithmetic that keeps it honest.

In JSON a Money is `{"amount": "19.99", "currency": "EUR"}`: the amount is a decimal string in
plain notation keeping the source's scale, never a float. Amounts of different currencies are
never added or compared: that raises `CurrencyMismatchError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated, Final

from pydantic import AfterValidator, Field, WithJsonSchema

from seamline.errors import ContractError
from seamline.model.base import CanonicalModel, ExactDecimal

__all__ = ["CurrencyCode", "CurrencyMismatchError", "Money", "check_currency"]

_CURRENCY: Final = re.compile(r"[A-Z]{3}")


def _currency(value: str) -> str:
    if not _CURRENCY.fullmatch(value):
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (3 upper-case letters: EUR)")
    return value


CurrencyCode = Annotated[
    str,
    AfterValidator(_currency),
    WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$"}),
]
"""An ISO 4217 alphabetic currency code: three upper-case ASCII letters ("EUR", "USD")."""


class CurrencyMismatchError(ContractError, ValueError):
    """Two amounts in different currencies met in one sum, comparison or document."""


class Money(CanonicalModel):
    """An exact amount in one currency. In JSON: `{"amount": "19.99", "currency": "EUR"}`."""

    amount: ExactDecimal = Field(examples=["19.99"])
    """The amount, exact. In JSON a decimal string keeping its scale ("0.10" stays "0.10")."""

    currency: CurrencyCode = Field(examples=["EUR"])
    """ISO 4217 currency code, three upper-case letters."""

    @classmethod
    def zero(cls, currency: str) -> Money:
        """No money, in `currency`."""
        return cls(amount=Decimal(0), currency=currency)

    @classmethod
    def total(cls, amounts: Iterable[Money], *, currency: str) -> Money:
        """The sum of `amounts`, which must all be in `currency` (zero when there are none)."""
        result = cls.zero(currency)
        for amount in amounts:
            result = result + amount
        return result

    def __add__(self, other: Money) -> Money:
        return Money(amount=self.amount + self._same(other, "add").amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(
            amount=self.amount - self._same(other, "subtract").amount, currency=self.currency
        )

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int | Decimal):
            return NotImplemented
        return Money(amount=self.amount * factor, currency=self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same(other, "compare").amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same(other, "compare").amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same(other, "compare").amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same(other, "compare").amount

    def __str__(self) -> str:
        return f"{self.amount:f} {self.currency}"

    def _same(self, other: Money, verb: str) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {verb} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatchError(
                f"cannot {verb} {self.currency} and {other.currency} amounts ({self} and {other})"
            )
        return other


def check_currency(currency: str, amounts: Iterable[tuple[str, Money | None]]) -> None:
    """Raise CurrencyMismatchError naming the first `(path, amount)` not in `currency`."""
    for path, money in amounts:
        if money is not None and money.currency != currency:
            raise CurrencyMismatchError(
                f"{path} is in {money.currency}, but this document's currency is {currency}"
            )
