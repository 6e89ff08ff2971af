"""The seams between the engine and a vendor: Source, Sink, and the Connector that makes them.

A connector is the code for one *kind* of system. It declares its options (a pydantic model,
which drives `seamline check`), the operations it offers as a target, the events it produces
and the enumerations in them, and builds a `Source` (verify + decode) and a `Sink` (send).

`error_for_status` is the one place an HTTP status becomes a decision (see `errors.py`).
"""

from __future__ import annotations

import datetime
import email.utils
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from seamline.checks.compare import Row
from seamline.errors import (
    PermanentError,
    SeamlineError,
    ThrottledError,
    TransientError,
)
from seamline.journal.base import NewMessage


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded message: canonical event name, its data, business keys, and source version.

    `version` orders updates of one entity (the source's `updated_at` as epoch seconds, or
    its version number); `None` means the source gives no order.
    """

    name: str
    data: dict[str, Any]
    keys: dict[str, str] = field(default_factory=dict)
    version: float | None = None


@dataclass(frozen=True, slots=True)
class Exchange:
    """One attempt as it happened on the wire. `error is None` means delivered."""

    request: bytes
    status: int | None
    response: bytes
    duration: float
    error: SeamlineError | None = None
    refs: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    """What the vendor said that an operator should see: a deprecated call, another version."""


class Source(Protocol):
    """What ingest and the router need from a system that sends us messages."""

    def verify(self, raw_headers: Sequence[tuple[bytes, bytes]], body: bytes) -> str:
        """Authenticate a webhook on its raw bytes; return the source's delivery id.

        Raises `SignatureError`; nothing here parses the body.
        """
        ...

    def decode(self, headers: Mapping[str, str], body: bytes) -> Event:
        """Turn a journaled message into a canonical event; raises `ContractError`."""
        ...


class SparseSource(Source, Protocol):
    """A source that can decode only part of a message's data (routing reads a few fields;
    a flow that forwards the data unchanged sends the bytes received)."""

    def decode_sparse(
        self, headers: Mapping[str, str], body: bytes, fields: frozenset[str]
    ) -> tuple[Event, bytes]:
        """The event with only `fields` (top-level names) and the source's keys in its data,
        and the data's JSON as received. Raises `ContractError` where `decode` would."""
        ...


class Sink(Protocol):
    """What a worker needs from a target system."""

    def idempotent(self, operation: str, options: Mapping[str, Any]) -> bool:
        """True if a repeat of the same request (same idempotency key) is applied once."""
        ...

    async def send(
        self,
        operation: str,
        body: dict[str, Any],
        *,
        options: Mapping[str, Any],
        idempotency_key: str,
        headers: Mapping[str, str] | None = None,
    ) -> Exchange: ...

    async def close(self) -> None: ...


@runtime_checkable
class RawSink(Sink, Protocol):
    """A sink that can send an event's data as the JSON bytes the source sent (a flow
    without mapping): nothing decoded and encoded again, numbers kept as written."""

    def raw_fields(self, operation: str, options: Any) -> frozenset[str]:
        """The top-level fields of the body the operation reads itself (a path template)."""
        ...

    async def send_raw(
        self,
        operation: str,
        body: bytes,
        fields: Mapping[str, Any],
        *,
        options: Any,
        idempotency_key: str,
        headers: Mapping[str, str] | None = None,
    ) -> Exchange:
        """As `send`, with `body` sent as it is; `fields` holds those `raw_fields` names."""
        ...


class PollJournal(Protocol):
    """What a poller may do with the journal: append what it found, keep its place."""

    async def append(self, message: NewMessage) -> int | None: ...
    async def get_cursor(self, name: str) -> str | None: ...
    async def set_cursor(self, name: str, value: str) -> None: ...
    async def known_keys(self, name: str, values: Sequence[str]) -> set[str]:
        """Which of `values` some routed message already carries as business key `name`."""
        ...


class Poller(Protocol):
    """Asks a system what changed, to journal what its webhooks did not bring.

    Run by the active scheduler every `interval` seconds. What it journals goes through the
    same decode and routing as a webhook; it dedupes against messages already journaled, so
    a change that came by webhook is not journaled again.
    """

    interval: float

    async def poll(self, journal: PollJournal) -> int:
        """One round; the number of messages journaled. Raises `SeamlineError` on failure."""
        ...

    @property
    def warnings(self) -> Sequence[str]:
        """What the vendor said that an operator should see (deprecations, versions)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Window:
    """Whole days, first and last included, each system reading them in its own time zone
    (an order placed at 23:30 shop time belongs to that day in the shop and in the ERP)."""

    first: datetime.date
    last: datetime.date


class Reader(Protocol):
    """Lists what a system holds of one entity set, for reconciliation checks (`checks/`).

    Entities and their rows (`seamline.checks.compare.Row`; values in canonical terms):

    | entity   | key          | values                                                  |
    |----------|--------------|---------------------------------------------------------|
    | `stock`  | `(sku,)`     | `available`: units that may be sold at the system's location |
    | `price`  | `(sku,)`     | `price`: decimal string, `currency`                      |
    | `orders` | `(number,)`  | `lines`: `"SKU*qty, ..."` (SKU order, lines without SKU left out), |
    |          |              | `net`: total before tax, `currency`, `cancelled`: bool  |

    `orders` needs a `window` (the orders placed in it); the other entities ignore it. Rows
    come page by page in the system's own order (a check spools them); a page may be empty.
    Errors are `SeamlineError`s, raised once the reader has retried what it can.
    """

    entities: Sequence[str]

    def pages(self, entity: str, window: Window | None = None) -> AsyncIterator[list[Row]]: ...

    async def close(self) -> None: ...


class Connector(Protocol):
    """One kind of system. Class attributes are the declaration `seamline check` reads."""

    kind: ClassVar[str]
    options: ClassVar[type[BaseModel]]
    operations: ClassVar[Mapping[str, type[BaseModel]]]
    default_budget: ClassVar[Mapping[str, Any]]
    """What the vendor can take (`budget:` keys), for systems whose file does not say."""

    def enumerations(self, options: BaseModel) -> Mapping[str, Sequence[str]]:
        """Closed value sets in this system's events, by source path (`line_items[].status`)."""
        ...

    def source(self, name: str, options: BaseModel) -> Source: ...

    def sink(self, name: str, options: BaseModel) -> Sink: ...

    def poller(self, name: str, options: BaseModel) -> Poller | None:
        """The catch-up poller of a system configured to poll, else None."""
        ...

    def reader(self, name: str, options: BaseModel) -> Reader | None:
        """What reads this system for checks, or None if it cannot be read."""
        ...

    def check(
        self, options: BaseModel, *, role: Literal["source", "target"]
    ) -> list[tuple[str, str]]:
        """What the connection lacks to serve as a flow's source or target: (problem, fix)."""
        ...


RETRYABLE = frozenset({408, 425, 500, 502, 503, 504})


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds, possibly fractional, or HTTP-date)."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:  # "inf" and "nan" read as floats too; they are no time to wait
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_for_status(status: int, headers: Mapping[str, str], summary: str) -> SeamlineError | None:
    """The decision for an HTTP answer: None for 2xx, else the error class that carries it."""
    if 200 <= status < 300:
        return None
    hint = retry_after(headers)
    if status == 429:
        return ThrottledError(f"throttled (429): {summary}", retry_after=hint)
    if status in RETRYABLE or status >= 500:
        return TransientError(f"server error {status}: {summary}", retry_after=hint)
    return PermanentError(f"refused with {status}: {summary}")
