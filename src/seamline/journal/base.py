"""The Journal protocol and the records that cross it.

Every method that changes the journal returns only after the change is durably committed.
The SQLite journal (`sqlite.py`) and the PostgreSQL journal implement the same verbs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

DeliveryState = Literal["pending", "leased", "delivered", "dead", "review", "skipped", "discarded"]
SETTLED: frozenset[str] = frozenset({"delivered", "skipped", "discarded"})
"""States a delivery ends in, counted by flow in `delivery_tally` (the others by index)."""


def storable(text: str) -> str:
    """Text from a payload or an answer, fit for a text column: PostgreSQL's text cannot hold
    a NUL character (nor can SQLite's JSON functions, which end a text there), so each becomes
    U+FFFD. Where a NUL reached the journal, the write was refused, at every retry."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


class NewMessage(NamedTuple):
    """A message as received, before the journal gives it an id.

    A named tuple, not a frozen dataclass: one is made for every webhook, and a frozen
    dataclass sets each field through `object.__setattr__` (0.56 against 0.24 us)."""

    system: str
    source_id: str
    received_at: float
    headers: bytes
    body: bytes


class StoredMessage(NamedTuple):
    """A journaled message (a named tuple for the reason `NewMessage` is one)."""

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
    waits_for: str | None = None
    """A flow whose open deliveries of the same key and lower id this one waits for."""


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
    body_span: tuple[int, int] | None = None
    """Where the request's body lies in the message's body (a flow forwarding the data as
    received): `request` then holds what precedes the body, and the journal adds the body
    back when it is read."""


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

    async def append(self, message: NewMessage, routing: Routing | None = None) -> int | None:
        """Journal a received message durably; its id, or None if the source id was seen.

        With `routing` (the router's verdict, made as the message arrived; its `message_id`
        is not used), the message is stored routed or rejected, with its keys and deliveries,
        in the same commit; `on_append` listeners do not hear of it. Without, it waits
        `received` for the router."""
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

    async def order_after(self, after: Mapping[str, str | None]) -> int:
        """Each flow's deliveries not yet delivered wait for the flow named (its live
        `ordering.after`, None for none); how many changed. At start and at each apply, so a
        replay or a changed flow never waits on what the live flows no longer say."""
        ...

    async def dead_without_target(self, targets: Collection[str]) -> dict[str, int]:
        """Pending deliveries to a target system not in `targets` (those the project's flows
        deliver to) become dead letters, as no worker would ever take them; how many, by
        target."""
        ...

    async def release_held(self, target: str) -> int:
        """A target recovered: its deliveries waiting out the outage are due now."""
        ...

    async def purge(self, *, before: float) -> int:
        """Retention: payloads received or sent before `before` are dropped (ids, keys and
        outcomes stay); the count dropped. Also the journal's housekeeping."""
        ...

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


Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
"""Each role may do what the ones before it may."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    password_hash: str
    created_at: float


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A signed-in browser. Its id is known only to the browser; the journal keeps a hash."""

    user: str
    role: Role
    csrf: str
    created_at: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A live API token; its secret was shown once and only its hash is kept."""

    id: int
    name: str
    role: Role
    last_used: float | None


class ConsoleJournal(Journal, Protocol):
    """The journal as the console and the REST API use it: people, sessions, tokens, and what
    operators look at. Times are passed in (`now`), so callers may run on a clock of their own."""

    async def add_user(
        self, name: str, *, role: Role, password_hash: str, actor: str, now: float
    ) -> bool:
        """Add a user; False if the name is taken."""
        ...

    async def remove_user(self, name: str, *, actor: str) -> bool:
        """Remove a user and end their sessions; False if there was none."""
        ...

    async def user(self, name: str) -> User | None: ...
    async def users(self) -> list[dict[str, Any]]: ...
    async def login_failures(self, name: str, *, since: float) -> int: ...
    async def login_failed(self, name: str, *, now: float, window: float) -> None:
        """Count a failed login for `name` (a user or not) and forget failures past `window`."""
        ...

    async def start_session(
        self, id_hash: str, *, user: str, csrf: str, now: float, replaces: str | None
    ) -> None:
        """Sign `user` in under a new session id; the session it `replaces` ends (rotation)."""
        ...

    async def session(self, id_hash: str) -> SessionRecord | None: ...
    async def touch_session(self, id_hash: str, *, now: float) -> None: ...
    async def end_session(self, id_hash: str, *, actor: str | None) -> None:
        """Sign out (audited when `actor` is given) or drop an expired session."""
        ...

    async def purge_sessions(self, *, idle_before: float, born_before: float) -> int:
        """End sessions last seen before `idle_before` or begun before `born_before`."""
        ...

    async def add_token(
        self, name: str, *, role: Role, token_hash: str, actor: str, now: float
    ) -> int: ...
    async def token(self, token_hash: str) -> TokenRecord | None: ...
    async def touch_token(self, token_id: int, *, now: float) -> None: ...
    async def revoke_token(self, token_id: int, *, actor: str, now: float) -> bool: ...
    async def tokens(self) -> list[dict[str, Any]]: ...
    async def audit_log(
        self, *, limit: int = 100, before: int | None = None
    ) -> list[dict[str, Any]]: ...
    async def journey(
        self, values: Sequence[str], *, delivery_ids: Sequence[int] = (), limit: int = 200
    ) -> dict[str, list[dict[str, Any]]]:
        """Everything the journal knows about the business objects behind `values` (business
        keys, source ids, cross-referenced keys) and `delivery_ids`: messages with their keys,
        their deliveries, attempts (without bodies) and cross-references."""
        ...

    async def record_check_run(
        self,
        check: str,
        *,
        started_at: float,
        seconds: float,
        counts: Mapping[str, int],
        findings: Iterable[tuple[str, Sequence[str], Sequence[str], Any, Any]],
        actor: str,
        error: str | None = None,
    ) -> int:
        """Keep a reconciliation run: its counts and its first findings; the run's id."""
        ...

    async def check_runs(
        self, check: str | None = None, *, limit: int = 20
    ) -> list[dict[str, Any]]: ...
    async def check_findings(self, run_id: int, *, limit: int = 1000) -> list[dict[str, Any]]: ...
    async def record_flow_versions(
        self, versions: Iterable[tuple[str, str, bytes]], *, actor: str, now: float
    ) -> int:
        """Each (flow, version, files) goes live now (kept once, `last_live` moved on)."""
        ...

    async def flow_versions(
        self, flow: str | None = None, *, limit: int = 50
    ) -> list[dict[str, Any]]: ...
    async def flow_version_content(self, flow: str, version: str) -> bytes | None: ...
    async def recent_messages(self, system: str, *, limit: int = 500) -> list[StoredMessage]:
        """The newest routed messages of `system` still holding their body, newest first."""
        ...

    async def flow_attempts(self, *, since: float) -> dict[str, tuple[int, int]]:
        """Per flow: (attempts, failed attempts) since `since`."""
        ...

    async def recorded_messages(
        self, system: str, *, since: float, until: float, limit: int
    ) -> list[StoredMessage]:
        """`system`'s messages received in [since, until) still holding their body, oldest
        first."""
        ...

    async def messages_with_key(
        self, system: str, value: str, *, limit: int = 20
    ) -> list[StoredMessage]:
        """`system`'s messages carrying the business key `value`, newest first."""
        ...

    async def delivery_detail(self, delivery_id: int) -> dict[str, Any] | None:
        """A delivery with its message, keys, attempts (with bodies) and cross-references."""
        ...

    async def activity(self, *, since: float, bucket: int) -> dict[str, list[dict[str, Any]]]:
        """Per time bucket (`bucket` seconds, numbered from the epoch) since `since`: deliveries
        made (`received`), and attempts by classification with their mean and longest duration."""
        ...

    async def dead_groups(self) -> list[dict[str, Any]]: ...
    async def rejected_groups(self) -> list[dict[str, Any]]: ...
