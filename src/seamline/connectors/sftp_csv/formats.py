"""The CSV files of the file drop: names, the order file we write, the rows we read.

Files are UTF-8 (a BOM is accepted), comma-separated, with a header row; a row is checked on
its own, so one bad row is rejected with its file and line while the others go through.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from seamline.connectors.sftp_csv.connector import (
    InventoryColumns,
    OrderColumns,
    ShipmentColumns,
)
from seamline.errors import ContractError

SNAPSHOT = re.compile(r"^inv_(?P<version>.+)_(?P<ts>\d{14}|\d{12})\.csv$")
_SAFE = re.compile(r"[A-Za-z0-9-]")


def order_file_prefix(order_id: str) -> str:
    """`ord_<order>_`: characters other than letters, digits and `-` are written `~XX`, so
    the name is safe on any server and two orders never share a prefix."""
    encoded = "".join(
        c if _SAFE.fullmatch(c) else "".join(f"~{b:02X}" for b in c.encode()) for c in order_id
    )
    return f"ord_{encoded}_"


def order_file_name(order_id: str, when: dt.datetime) -> str:
    return f"{order_file_prefix(order_id)}{when.strftime('%Y%m%d%H%M')}.csv"


def is_order_file_of(name: str, prefix: str) -> bool:
    """An order file of this prefix in `in_dir`, or one the 3PL moved aside (any suffix)."""
    return name.startswith(prefix) and re.match(r"\d{12}\.csv", name[len(prefix) :]) is not None


def snapshot_key(name: str) -> tuple[str, dt.datetime] | None:
    """An inventory file's place in time: `<ts>:<version>`, sortable, and its time (UTC)."""
    match = SNAPSHOT.match(name)
    if match is None:
        return None
    ts = match["ts"].ljust(14, "0")
    try:
        when = dt.datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    version = match["version"]
    return f"{ts}:{version.zfill(20) if version.isdigit() else version}", when


# --- writing orders -------------------------------------------------------------------------

_SHIP_TO = ("name", "company", "line1", "line2", "city", "region", "postal_code")
_SHIP_TO_ALL = (*_SHIP_TO, "country_code", "phone", "email")
_LINE = ("sku", "quantity", "line_id", "title")
_ORDER = ("order_id", "order_number", "ship_to", "shipping_method", "lines")


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ContractError(f"send_order: '{where}' must be text, not {value!r}")
    return str(value)


def order_csv(body: Mapping[str, Any], columns: OrderColumns) -> tuple[str, bytes]:
    """The order id and the file's bytes: one row per line, the order columns repeated."""
    unknown = sorted(set(body) - set(_ORDER))
    if unknown:
        raise ContractError(f"send_order: unknown keys {unknown} (it takes {', '.join(_ORDER)})")
    order_id = _text(body.get("order_id"), "order_id")
    if not order_id:
        raise ContractError("send_order needs 'order_id' in the mapped body")
    ship_to = body.get("ship_to") or {}
    if not isinstance(ship_to, Mapping):
        raise ContractError("send_order: 'ship_to' must be an object")
    unknown = sorted(set(ship_to) - set(_SHIP_TO_ALL))
    if unknown:
        raise ContractError(
            f"send_order: unknown ship_to keys {unknown} (it takes {', '.join(_SHIP_TO_ALL)})"
        )
    lines = body.get("lines")
    if not isinstance(lines, list) or not lines:
        raise ContractError("send_order needs 'lines': a non-empty list of {sku, quantity}")
    head = {
        "order_id": order_id,
        "order_number": _text(body.get("order_number"), "order_number"),
        **{k: _text(ship_to.get(k), f"ship_to.{k}") for k in _SHIP_TO_ALL},
        "shipping_method": _text(body.get("shipping_method"), "shipping_method"),
    }
    names = list(OrderColumns.model_fields)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([getattr(columns, n) for n in names])
    for n, line in enumerate(lines):
        if not isinstance(line, Mapping):
            raise ContractError(f"send_order: lines[{n}] must be an object")
        unknown = sorted(set(line) - set(_LINE))
        if unknown:
            raise ContractError(
                f"send_order: unknown keys {unknown} in lines[{n}] (it takes {', '.join(_LINE)})"
            )
        sku = _text(line.get("sku"), f"lines[{n}].sku")
        quantity = line.get("quantity")
        if not sku:
            raise ContractError(f"send_order: lines[{n}] needs a 'sku'")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            raise ContractError(f"send_order: lines[{n}].quantity must be a whole number > 0")
        row = {
            **head,
            "line_id": _text(line.get("line_id"), f"lines[{n}].line_id"),
            "sku": sku,
            "quantity": str(quantity),
            "title": _text(line.get("title"), f"lines[{n}].title"),
        }
        if any("\n" in v or "\r" in v for v in row.values()):
            raise ContractError(f"send_order: lines[{n}] has a line break in a value")
        writer.writerow([row[k] for k in names])
    return order_id, out.getvalue().encode()


# --- reading shipments and snapshots --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bad:
    """A row that breaks the format: its line in the file, its text and why."""

    line: int
    text: str
    reason: str


@dataclass(slots=True)
class Parsed:
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    bad: list[Bad] = field(default_factory=list)
    unreadable: str | None = None
    """Why no row of the file can be read (no header, a required column missing)."""
    named: set[str] = field(default_factory=set)
    """Keys (SKUs) that bad rows still name: present in a snapshot, level unknown."""


def _rows(
    data: bytes, columns: BaseModel, required: Sequence[str], truncated: bool
) -> tuple[Parsed, list[tuple[int, str, dict[str, str]]]]:
    parsed = Parsed()
    text = data.decode("utf-8-sig", errors="replace")
    lines = text.splitlines()
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        parsed.unreadable = "no header row"
        return parsed, []
    wanted = {name: getattr(columns, name) for name in type(columns).model_fields}
    index = {h.strip(): i for i, h in enumerate(header)}
    missing = [wanted[n] for n in required if wanted[n] not in index]
    if missing:
        parsed.unreadable = f"the header lacks {', '.join(missing)}"
        return parsed, []
    raw: list[tuple[int, str, dict[str, str]]] = []
    last = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            parsed.bad.append(Bad(last + 1, "\n".join(lines[last : reader.line_num]), str(exc)))
            last = reader.line_num
            continue
        start, last = last + 1, reader.line_num
        row_text = "\n".join(lines[start - 1 : last])
        if not any(v.strip() for v in values):
            continue
        if truncated and last >= len(lines):
            parsed.bad.append(Bad(start, row_text, "the file ends inside this row (cut off)"))
            continue
        if len(values) != len(header):
            parsed.bad.append(
                Bad(start, row_text, f"{len(values)} fields where the header has {len(header)}")
            )
            continue
        if "\ufffd" in row_text:
            parsed.bad.append(Bad(start, row_text, "not UTF-8"))
            continue
        raw.append(
            (
                start,
                row_text,
                {n: values[index[h]].strip() for n, h in wanted.items() if h in index},
            )
        )
    return parsed, raw


def _quantity(value: str, name: str, *, negative: bool = False) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a whole number") from None
    if number < 0 and not negative:
        raise ValueError(f"{name} {value!r} is negative")
    return number


def _aware(value: str) -> str | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"shipped_at {value!r} is not an ISO-8601 time") from None
    if when.tzinfo is None:
        raise ValueError(f"shipped_at {value!r} has no UTC offset")
    return value


def parse_shipments(data: bytes, columns: ShipmentColumns, *, truncated: bool = False) -> Parsed:
    """Rows of a `shp_` file as `{order_id, tracking_number, sku, quantity, ...}`."""
    parsed, raw = _rows(
        data, columns, ("order_id", "tracking_number", "sku", "quantity"), truncated
    )
    for line, text, v in raw:
        try:
            for name in ("order_id", "tracking_number", "sku"):
                if not v.get(name):
                    raise ValueError(f"{getattr(columns, name)} is empty")
            row: dict[str, Any] = {k: (v.get(k) or None) for k in type(columns).model_fields}
            row["quantity"] = _quantity(v["quantity"], columns.quantity)
            row["shipped_at"] = _aware(v.get("shipped_at", ""))
        except ValueError as exc:
            parsed.bad.append(Bad(line, text, str(exc)))
            continue
        parsed.rows.append((line, row))
    parsed.bad.sort(key=lambda b: b.line)
    return parsed


def parse_snapshot(data: bytes, columns: InventoryColumns, *, truncated: bool = False) -> Parsed:
    """Rows of an `inv_` file as `{sku, available, location}`; a SKU twice is a bad row."""
    parsed, raw = _rows(data, columns, ("sku", "available"), truncated)
    seen: set[tuple[str, str | None]] = set()
    for line, text, v in raw:
        sku = v.get("sku", "")
        try:
            if not sku:
                raise ValueError(f"{columns.sku} is empty")
            available = _quantity(v["available"], columns.available, negative=True)
            where = (sku, v.get("location") or None)
            if where in seen:
                raise ValueError(f"SKU {sku!r} is listed twice")
            seen.add(where)
        except ValueError as exc:
            parsed.bad.append(Bad(line, text, str(exc)))
            if sku:
                parsed.named.add(sku)
            continue
        parsed.rows.append(
            (line, {"sku": sku, "available": available, "location": v.get("location") or None})
        )
    parsed.bad.sort(key=lambda b: b.line)
    return parsed
