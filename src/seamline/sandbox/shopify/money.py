"""Money as Shopify writes it: decimal strings, and ``*_set`` bags in two currencies.

An order is priced in the shop's currency and in the buyer's presentment currency. Every
amount is computed in both, each rounded to cents on its own (as Shopify does), so a `Bag`
carries the pair through the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

CENT: Final = Decimal("0.01")
ZERO: Final = Decimal("0.00")

# Fixed demo rates, per 1 EUR. Real shops use daily rates plus rounding rules.
RATES: Final = {
    "EUR": Decimal("1"),
    "USD": Decimal("1.08"),
    "GBP": Decimal("0.85"),
    "CHF": Decimal("0.95"),
    "SEK": Decimal("11.40"),
    "DKK": Decimal("7.46"),
    "PLN": Decimal("4.30"),
    "CAD": Decimal("1.47"),
}


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def text(value: Decimal) -> str:
    """``"19.90"``: how REST writes an amount."""
    return f"{cents(value):.2f}"


def rate(shop_currency: str, presentment_currency: str) -> Decimal:
    return RATES[presentment_currency] / RATES[shop_currency]


@dataclass(frozen=True, slots=True)
class Bag:
    """One amount in shop and presentment currency (Shopify's ``MoneyBag``)."""

    shop: Decimal = ZERO
    presentment: Decimal = ZERO

    @classmethod
    def read(cls, money_set: Any) -> Bag:
        """The amounts of a ``*_set`` JSON object."""
        return cls(
            Decimal(money_set["shop_money"]["amount"]),
            Decimal(money_set["presentment_money"]["amount"]),
        )

    def __add__(self, other: Bag) -> Bag:
        return Bag(self.shop + other.shop, self.presentment + other.presentment)

    def __sub__(self, other: Bag) -> Bag:
        return Bag(self.shop - other.shop, self.presentment - other.presentment)

    def times(self, factor: Decimal | int) -> Bag:
        """Each side multiplied by ``factor`` and rounded to cents."""
        return Bag(cents(self.shop * factor), cents(self.presentment * factor))

    def negated(self) -> Bag:
        return Bag(-self.shop, -self.presentment)

    def is_zero(self) -> bool:
        return self.shop == 0 and self.presentment == 0


def total(bags: Any) -> Bag:
    result = Bag()
    for bag in bags:
        result = result + bag
    return result


@dataclass(frozen=True, slots=True)
class Currencies:
    """An order's two currencies and the rate between them."""

    shop: str
    presentment: str

    def bag(self, shop_amount: Decimal) -> Bag:
        """A shop-currency amount with its presentment conversion."""
        return Bag(cents(shop_amount), cents(shop_amount * rate(self.shop, self.presentment)))

    def money_set(self, bag: Bag) -> dict[str, Any]:
        return {
            "shop_money": {"amount": text(bag.shop), "currency_code": self.shop},
            "presentment_money": {
                "amount": text(bag.presentment),
                "currency_code": self.presentment,
            },
        }
