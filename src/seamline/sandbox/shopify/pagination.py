"""Cursor pagination, both kinds: GraphQL Relay connections and REST ``page_info`` links.

GraphQL cursors are what Shopify's look like: base64 of ``{"last_id": ..., "last_value": ...}``
(the sort key of the item). REST ``page_info`` is opaque base64url JSON carrying the position,
the direction and the first request's filters, because a ``page_info`` request may add only
``limit`` (and ``fields``). Items are sorted by ``(value, id)``, so a page boundary survives
records being added; a record whose sort value changes between two pages may move, as on
Shopify.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
Key = tuple[Any, int]


class CursorError(ValueError):
    """A cursor or ``page_info`` that this shop did not issue."""


def encode_cursor(key: Key) -> str:
    raw = json.dumps({"last_id": key[1], "last_value": key[0]}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> Key:
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return data["last_value"], int(data["last_id"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise CursorError(f"Invalid cursor: {cursor}") from exc


def _comparable(key: Key) -> tuple[Any, int]:
    value = key[0]
    return ("" if value is None else value, key[1])


def connection(
    items: Sequence[T],
    key: Callable[[T], Key],
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    reverse: bool = False,
) -> dict[str, Any]:
    """A Relay connection (``edges``, ``nodes``, ``pageInfo``) over ``items``.

    ``items`` are sorted here by ``key`` (descending if ``reverse``); nodes are the items
    themselves, so resolvers below the connection see the same records.
    """
    ordered = sorted(items, key=lambda i: _comparable(key(i)), reverse=reverse)

    def beyond(item: T, cursor: str) -> bool:
        mine, theirs = _comparable(key(item)), _comparable(decode_cursor(cursor))
        try:
            return mine < theirs if reverse else mine > theirs
        except TypeError:  # a cursor of another sort key
            raise CursorError(f"Invalid cursor: {cursor}") from None

    if after is not None:
        ordered = [i for i in ordered if beyond(i, after)]
    if before is not None:
        ordered = [i for i in ordered if not beyond(i, before) and key(i) != decode_cursor(before)]
    has_next = has_previous = False
    if first is not None:
        has_next = len(ordered) > first
        ordered = ordered[:first]
        has_previous = after is not None
    elif last is not None:
        has_previous = len(ordered) > last
        ordered = ordered[-last:] if last else []
        has_next = before is not None
    cursors = [encode_cursor(key(i)) for i in ordered]
    return {
        "edges": [{"cursor": c, "node": i} for c, i in zip(cursors, ordered, strict=True)],
        "nodes": list(ordered),
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def encode_page_info(filters: dict[str, str], last: Sequence[int], direction: str) -> str:
    raw = json.dumps(
        {"filters": filters, "last": list(last), "direction": direction}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_info(page_info: str) -> tuple[dict[str, str], tuple[int, ...], str]:
    """(filters of the first request, sort key the page starts after or before, direction)."""
    try:
        padded = page_info + "=" * (-len(page_info) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        direction = data["direction"]
        if direction not in ("next", "prev"):
            raise ValueError(direction)
        filters = {str(k): str(v) for k, v in data["filters"].items()}
        return filters, tuple(int(v) for v in data["last"]), direction
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise CursorError("Invalid value.") from exc
