"""Shopify's search syntax, the subset the simulator's ``query:`` arguments understand.

``updated_at:>='2026-11-22T10:00:00Z' status:open sku:ABC*`` is a list of terms joined by
AND (an explicit ``AND`` is accepted). A term is ``field:value`` where the value may start
with ``>``, ``>=``, ``<``, ``<=``, may be quoted (``'…'`` or ``"…"``), and ends in ``*`` for a
prefix match; ``-field:value`` or ``NOT field:value`` negates; a bare word searches the
resource's default text. Dates compare as instants (a date alone is midnight UTC).

As on Shopify, a field the resource does not know is ignored and reported as a warning
(``extensions.search``), not an error. ``OR`` and parentheses are not supported: they are
reported the same way and the rest of the query still applies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from seamline.sandbox.shopify.clock import parse as parse_time

_TERM = re.compile(
    r"""(?P<neg>-)?(?:(?P<field>[A-Za-z_]+):)?(?P<op>>=|<=|>|<|=)?"""
    r"""(?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<bare>[^\s'"]+))"""
)
Getter = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Term:
    field: str | None
    op: str
    value: str
    negated: bool


@dataclass(frozen=True, slots=True)
class Search:
    terms: tuple[Term, ...]
    warnings: tuple[str, ...]

    def matches(self, record: Any, fields: Mapping[str, Getter], text: Getter) -> bool:
        return all(
            _match(term, record, fields, text) for term in self.terms if _known(term, fields)
        )

    def unknown_fields(self, fields: Mapping[str, Getter]) -> list[str]:
        return [t.field for t in self.terms if t.field is not None and t.field not in fields]


def _known(term: Term, fields: Mapping[str, Getter]) -> bool:
    return term.field is None or term.field in fields


def parse(query: str | None) -> Search:
    terms, warnings = [], []
    negate_next = False
    for match in _TERM.finditer(query or ""):
        value = match.group("sq") if match.group("sq") is not None else match.group("dq")
        if value is None:
            value = match.group("bare")
        field = match.group("field")
        if field is None and value in ("AND",):
            continue
        if field is None and value == "NOT":
            negate_next = True
            continue
        if field is None and (value == "OR" or value.startswith("(")):
            warnings.append(f"unsupported search syntax ignored: {value}")
            continue
        negated = bool(match.group("neg")) or negate_next
        negate_next = False
        terms.append(Term(field and field.lower(), match.group("op") or "=", value, negated))
    return Search(tuple(terms), tuple(warnings))


def _match(term: Term, record: Any, fields: Mapping[str, Getter], text: Getter) -> bool:
    actual = (fields[term.field] if term.field else text)(record)
    result = _compare(actual, term.op, term.value, free_text=term.field is None)
    return not result if term.negated else result


def _compare(actual: Any, op: str, wanted: str, *, free_text: bool) -> bool:
    if isinstance(actual, (list, tuple)):
        return any(_compare(a, op, wanted, free_text=free_text) for a in actual)
    if actual is None:
        return False
    if isinstance(actual, datetime):
        try:
            return _ordered(actual, op, parse_time(wanted))
        except ValueError:
            return False
    if isinstance(actual, bool):
        return op == "=" and str(actual).lower() == wanted.lower()
    if isinstance(actual, int):
        try:
            return _ordered(actual, op, int(wanted))
        except ValueError:
            return False
    text, wanted_text = str(actual).lower(), wanted.lower()
    if free_text:
        return wanted_text.rstrip("*") in text
    if wanted_text.endswith("*"):
        return text.startswith(wanted_text[:-1])
    return _ordered(text, op, wanted_text)


def _ordered(actual: Any, op: str, wanted: Any) -> bool:
    if op == ">":
        return bool(actual > wanted)
    if op == ">=":
        return bool(actual >= wanted)
    if op == "<":
        return bool(actual < wanted)
    if op == "<=":
        return bool(actual <= wanted)
    return bool(actual == wanted)
