"""The Journal protocol and the records that cross it.

Every method that changes the journal returns only after the change is durably committed.
The SQLite journal (`sqlite.py`) and the PostgreSQL journal implement the same verbs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

DeliveryState = Literal["pending", "leased", "delivered", "dead", "review", "skipped", "discarded"]


@dataclass(frozen=True, slots=True)
class NewMessage:
    system: str
    source_id: str
    received_at: float
    headers: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    system: str
    source_id: str
    received_at: float
    headers: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class NewDelivery:
    flow: str
    flow_version: str
    target: str
    key: str | None
    version: float | None
    safe_retry: bool
    coalesce: bool = False


@dataclass(frozen=True, slots=True)
class Routing:
    """The router's verdict on one message: its deliveries, or why it was rejected."""

    message_id: int
    event: str | None
    keys: dict[str, str] = field(default_factory=dict)
    deliveries: Sequence[NewDelivery] = ()
    rejected: str | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A leased delivery with what a worker needs to send it."""

    id: int
    message_id: int
    flow: str
    flow_version: str
    key: str | None
    version: float | None
    attempts: int
    token: int
    created_at: float
    payload: bytes | None
    system: str
    headers: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    started_at: float
    duration: float
    request: bytes | None
    status: int | None
    response: bytes | None
    classification: str
    error: str | None
    flow_version: str


@dataclass(frozen=True, slots=True)
class Xref:
    entity: str
    system: str
    key: str
    other_system: str
    other_key: str


@dataclass(frozen=True, slots=True)
class Settlement:
    """A claimed delivery's outcome. Recorded only if `token` is still the delivery's lease."""

    delivery_id: int
    token: int
    state: DeliveryState
    spent: int
    due_at: float
    error_class: str | None
    error: str | None
    attempt: AttemptRecord | None
    xrefs: Sequence[Xref] = ()
    flow: str | None = None
    key: str | None = None
    applied_version: float | None = None


@dataclass(frozen=True, slots=True)
class FlowCount:
    flow: str
    state: str
    count: int
    oldest: float | None


@dataclass(frozen=True, slots=True)
class Selection:
    """Deliveries an operator acts on: by ids, or by a filter."""

    ids: Sequence[int] = ()
    flow: str | None = None
    states: Sequence[str] = ("dead",)
    error_class: str | None = None
    since: float | None = None
    until: float | None = None


class Journal(Protocol):
    """The durable store behind ingest, router, workers and operators."""

    reachable: bool
    """False after the store was lost (a server away) until a commit succeeds again."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    def on_append(self, callback: Callable[[list[StoredMessage]], None]) -> None:
        """Call `callback` in the event loop with each committed group of new messages."""
        ...

    async def append(self, message: NewMessage) -> int | None:
        """Journal a received message durably; its id, or None if the source id was seen."""
        ...

    async def unrouted(self, limit: int, *, before: float = ...) -> list[StoredMessage]:
        """Messages journaled but not routed, received before `before` (default: all)."""
        ...

    async def route(self, routings: Sequence[Routing]) -> None: ...
    async def claim(
        self, *, target: str, owner: str, limit: int, lease: float
    ) -> list[Claimed]: ...
    async def settle(self, settlements: Sequence[Settlement]) -> list[bool]: ...
    async def expire_leases(self) -> list[int]:
        """Leases past their time: back to pending, or to review where a repeat is unsafe."""
        ...

    async def expire_all_leases(self) -> list[int]:
        """At start of the only worker on this journal: every lease belongs to a dead process."""
        ...

    async def release_held(self, target: str) -> int:
        """A target recovered: its deliveries waiting out the outage are due now."""
        ...

    async def purge(self, *, before: float) -> int: ...
    async def flow_counts(self) -> list[FlowCount]: ...
    async def rejected_counts(self) -> list[tuple[str, int, float]]:
        """Per system: rejected messages and the time of the oldest."""
        ...

    async def rejected(
        self, ids: Sequence[int] = (), system: str | None = None
    ) -> list[dict[str, object]]: ...
    async def select(self, selection: Selection) -> list[dict[str, object]]: ...
    async def delivery_source(self, delivery_id: int) -> tuple[bytes | None, StoredMessage] | None:
        """A delivery's edited payload (if any) and the message it was routed from."""
        ...

    async def replay(
        self,
        ids: Sequence[int],
        *,
        actor: str,
        flow_versions: dict[str, str],
        payload: bytes | None = None,
    ) -> int: ...
    async def discard(self, ids: Sequence[int], *, actor: str, reason: str) -> int: ...
    async def replay_rejected(self, ids: Sequence[int], *, actor: str) -> int: ...
    async def audit(
        self, *, actor: str, action: str, target: str, detail: dict[str, Any]
    ) -> None: ...
    async def known_keys(self, name: str, values: Sequence[str]) -> set[str]:
        """Which of `values` some routed message already carries as business key `name`."""
        ...

    async def get_cursor(self, name: str) -> str | None: ...
    async def set_cursor(self, name: str, value: str) -> None:
        """Named cursors: pollers' positions, the budgets a running hub publishes."""
        ...
