"""Values every reader writes the same way."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from seamline.checks.entity import (
    customer_key,
    email_text,
    lines_text,
    money_text,
    name_text,
    phone_text,
)

CASES: list[tuple[Callable[..., Any], tuple[Any, ...], Any]] = [
    (email_text, (" Ada@Example.COM ",), "ada@example.com"),
    (email_text, (None,), ""),
    (phone_text, ("+32 (9) 123 45 67",), "+3291234567"),
    (phone_text, ("09/123.45.67",), "091234567"),
    (phone_text, ("+",), ""),
    (name_text, ("  Zoë   ÅNGSTRÖM ",), "zoe angstrom"),
    (name_text, ("Łukasz",), "łukasz"),  # a letter of its own, not an accent: kept
    (customer_key, ("Ada@X.com", "+32 9", "Ada"), ("email:ada@x.com",)),
    (customer_key, (None, "+32 9 12", "Ada"), ("phone:+32912",)),
    (customer_key, ("", "", "Zoë M"), ("name:zoe m",)),
    (lines_text, ([("B", 1), ("A", 2), (None, 1), ("A", Decimal("1.0"))],), "A*3, B*1"),
    (lines_text, ([("A", 0)],), ""),
    (money_text, ("59.7",), "59.70"),
    (money_text, (Decimal("0.005"),), "0.01"),
]


@pytest.mark.parametrize(("function", "args", "expected"), CASES)
def test_values_are_written_alike(
    function: Callable[..., Any], args: tuple[Any, ...], expected: Any
) -> None:
    assert function(*args) == expected
