"""`ConsoleVerbs`: the console's and the REST API's verbs, shared by both journals.

People (users, sessions, API tokens, failed logins) and what operators look at (journeys of
business objects, delivery details, dead letters by cause, the audit log). Written in terms of
the named queries and the writer (`_write`) and readers (`_query_dicts`) a `GroupCommitJournal`
provides, so SQLite and PostgreSQL run the same code. Changes made on someone's behalf are
audited in the same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar, cast

import orjson

from seamline.journal.base import Role, SessionRecord, TokenRecord, User

T = TypeVar("T")
JOURNEY_HOPS = 1
"""Cross-references followed from what was found: the ERP sale behind a shop order, the 3PL
shipment that names it."""
HOP_WHEN_AT_MOST = 20
"""Follow cross-references only from a search that found one business object's few messages,
not from a key that thousands of orders share."""
HOP_VALUES = 50


class ConsoleVerbs:
    """Mixed into `GroupCommitJournal`, which provides what is declared here."""

    q: dict[str, str]
    marker: ClassVar[str]

    async def _write(self, op: Callable[[Any], T]) -> T:
        raise NotImplementedError

    async def _query_dicts(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _audit(
        self, conn: Any, actor: str, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    async def _rows(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        return await self._query_dicts(self.q[query], params)

    # --- users ----------------------------------------------------------------------------------

    async def add_user(
        self, name: str, *, role: Role, password_hash: str, actor: str, now: float
    ) -> bool:
        q = self.q

        def op(conn: Any) -> bool:
            added = conn.execute(
                q["insert_user"],
                {"name": name, "role": role, "password_hash": password_hash, "now": now},
            ).rowcount
            if added:
                self._audit(conn, actor, "user-add", f"user/{name}", {"role": role})
            return bool(added)

        return await self._write(op)

    async def remove_user(self, name: str, *, actor: str) -> bool:
        q = self.q

        def op(conn: Any) -> bool:
            conn.execute(q["delete_user_sessions"], {"name": name})
            removed = conn.execute(q["delete_user"], {"name": name}).rowcount
            if removed:
                self._audit(conn, actor, "user-remove", f"user/{name}", {})
            return bool(removed)

        return await self._write(op)

    async def user(self, name: str) -> User | None:
        rows = await self._rows("get_user", name=name)
        if not rows:
            return None
        r = rows[0]
        return User(r["name"], r["role"], r["password_hash"], float(r["created_at"]))

    async def users(self) -> list[dict[str, Any]]:
        return await self._rows("list_users")

    async def login_failures(self, name: str, *, since: float) -> int:
        rows = await self._query_dicts(
            self.q["count_login_failures"], {"name": name, "since": since}
        )
        return int(next(iter(rows[0].values()))) if rows else 0

    async def login_failed(self, name: str, *, now: float, window: float) -> None:
        q = self.q

        def op(conn: Any) -> None:
            conn.execute(q["prune_login_failures"], {"before": now - window})
            conn.execute(q["insert_login_failure"], {"name": name, "at": now})
            self._audit(conn, name, "login-refused", f"user/{name}", {})

        await self._write(op)

    # --- sessions -------------------------------------------------------------------------------

    async def start_session(
        self, id_hash: str, *, user: str, csrf: str, now: float, replaces: str | None
    ) -> None:
        q = self.q

        def op(conn: Any) -> None:
            if replaces is not None:
                conn.execute(q["delete_session"], {"id_hash": replaces})
            conn.execute(q["clear_login_failures"], {"name": user})
            conn.execute(
                q["insert_session"],
                {"id_hash": id_hash, "user_name": user, "csrf": csrf, "now": now},
            )
            self._audit(conn, user, "login", f"user/{user}", {})

        await self._write(op)

    async def session(self, id_hash: str) -> SessionRecord | None:
        rows = await self._rows("get_session", id_hash=id_hash)
        if not rows:
            return None
        r = rows[0]
        return SessionRecord(
            r["user_name"], r["role"], r["csrf"], float(r["created_at"]), float(r["last_seen"])
        )

    async def touch_session(self, id_hash: str, *, now: float) -> None:
        q = self.q
        await self._write(
            lambda conn: conn.execute(q["touch_session"], {"id_hash": id_hash, "now": now})
        )

    async def end_session(self, id_hash: str, *, actor: str | None) -> None:
        q = self.q

        def op(conn: Any) -> None:
            ended = conn.execute(q["delete_session"], {"id_hash": id_hash}).rowcount
            if ended and actor is not None:
                self._audit(conn, actor, "logout", f"user/{actor}", {})

        await self._write(op)

    async def purge_sessions(self, *, idle_before: float, born_before: float) -> int:
        q = self.q

        def op(conn: Any) -> int:
            cur = conn.execute(
                q["purge_sessions"], {"idle_before": idle_before, "born_before": born_before}
            )
            return int(cur.rowcount)

        return await self._write(op)

    # --- API tokens -----------------------------------------------------------------------------

    async def add_token(
        self, name: str, *, role: Role, token_hash: str, actor: str, now: float
    ) -> int:
        q = self.q

        def op(conn: Any) -> int:
            row = conn.execute(
                q["insert_token"],
                {"name": name, "role": role, "token_hash": token_hash, "now": now, "actor": actor},
            ).fetchone()
            token_id = int(row[0])
            self._audit(conn, actor, "token-add", f"token/{token_id}", {"name": name, "role": role})
            return token_id

        return await self._write(op)

    async def token(self, token_hash: str) -> TokenRecord | None:
        rows = await self._rows("get_token", token_hash=token_hash)
        if not rows:
            return None
        r = rows[0]
        last = r["last_used"]
        return TokenRecord(int(r["id"]), r["name"], r["role"], None if last is None else last)

    async def touch_token(self, token_id: int, *, now: float) -> None:
        q = self.q
        await self._write(lambda conn: conn.execute(q["touch_token"], {"id": token_id, "now": now}))

    async def revoke_token(self, token_id: int, *, actor: str, now: float) -> bool:
        q = self.q

        def op(conn: Any) -> bool:
            revoked = conn.execute(q["revoke_token"], {"id": token_id, "now": now}).rowcount
            if revoked:
                self._audit(conn, actor, "token-revoke", f"token/{token_id}", {})
            return bool(revoked)

        return await self._write(op)

    async def tokens(self) -> list[dict[str, Any]]:
        return await self._rows("list_tokens")

    # --- what operators look at -----------------------------------------------------------------

    async def audit_log(
        self, *, limit: int = 100, before: int | None = None
    ) -> list[dict[str, Any]]:
        rows = await self._rows("audit_page", limit=limit, before=before or 2**62)
        for r in rows:
            r["detail"] = orjson.loads(r["detail"]) if r["detail"] else {}
        return rows

    async def journey(
        self, values: Sequence[str], *, delivery_ids: Sequence[int] = (), limit: int = 200
    ) -> dict[str, list[dict[str, Any]]]:
        message_ids: set[int] = set()
        seen_values: set[str] = set()
        deliveries_found: set[int] = set(delivery_ids)
        wanted = [v for v in dict.fromkeys(values) if v]
        for _hop in range(JOURNEY_HOPS + 1):
            fresh = [v for v in wanted if v not in seen_values]
            seen_values.update(fresh)
            for value in fresh:
                for r in await self._rows("messages_by_key", value=value, limit=limit):
                    message_ids.add(int(r["message_id"]))
                for r in await self._rows("messages_by_source_id", value=value, limit=limit):
                    message_ids.add(int(r["id"]))
                for r in await self._rows("deliveries_by_xref", value=value, limit=limit):
                    deliveries_found.add(int(r["delivery_id"]))
            if deliveries_found:
                for r in await self._among(
                    "SELECT message_id FROM delivery WHERE id", sorted(deliveries_found)
                ):
                    message_ids.add(int(r["message_id"]))
            if not message_ids or len(message_ids) > HOP_WHEN_AT_MOST:
                break  # nothing found, or a key many objects share (a SKU): no hop
            # One hop along what the deliveries learnt: the keys other systems gave the object.
            xrefs = await self._xrefs_of_messages(sorted(message_ids))
            hop = [str(x["key"]) for x in xrefs] + [str(x["other_key"]) for x in xrefs]
            wanted = list(dict.fromkeys(hop))[:HOP_VALUES]
        ids = sorted(message_ids)[:limit]
        if not ids:
            return {"messages": [], "keys": [], "deliveries": [], "attempts": [], "xrefs": []}
        messages = await self._among(
            "SELECT id, system, source_id, received_at, state, event, reason FROM message WHERE id",
            ids,
        )
        keys = await self._among(
            "SELECT message_id, name, value FROM message_key WHERE message_id", ids
        )
        deliveries = await self._among(
            "SELECT id, message_id, flow, flow_version, target, key, state, attempts, "
            "created_at, updated_at, error_class, last_error, replays FROM delivery "
            "WHERE message_id",
            ids,
        )
        delivery_keys = [int(d["id"]) for d in deliveries]
        attempts = await self._among(
            "SELECT id, delivery_id, started_at, duration, status, classification, error, "
            "flow_version FROM attempt WHERE delivery_id",
            delivery_keys,
        )
        xrefs = await self._among(
            "SELECT entity, system, key, other_system, other_key, delivery_id, created_at "
            "FROM xref WHERE delivery_id",
            delivery_keys,
        )
        return {
            "messages": messages,
            "keys": keys,
            "deliveries": deliveries,
            "attempts": attempts,
            "xrefs": xrefs,
        }

    async def _xrefs_of_messages(self, message_ids: Sequence[int]) -> list[dict[str, Any]]:
        deliveries = await self._among("SELECT id FROM delivery WHERE message_id", message_ids)
        return await self._among(
            "SELECT key, other_key FROM xref WHERE delivery_id", [int(d["id"]) for d in deliveries]
        )

    async def _among(self, head: str, ids: Sequence[int]) -> list[dict[str, Any]]:
        """`head IN (ids)`, in chunks the drivers take, in id order of the chunks."""
        rows: list[dict[str, Any]] = []
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join([self.marker] * len(chunk))
            rows.extend(await self._query_dicts(f"{head} IN ({marks})", chunk))
        return rows

    async def delivery_detail(self, delivery_id: int) -> dict[str, Any] | None:
        rows = await self._rows("delivery_row", id=delivery_id)
        if not rows:
            return None
        delivery = _plain(rows[0])
        messages = await self._rows("message_row", id=delivery["message_id"])
        attempts = await self._query_dicts(
            "SELECT id, started_at, duration, request, status, response, classification, error, "
            "flow_version, body_start, body_end FROM attempt "
            f"WHERE delivery_id = {self.marker} ORDER BY id",
            [delivery_id],
        )
        message = _plain(messages[0]) if messages else None
        xrefs = await self._query_dicts(
            "SELECT entity, system, key, other_system, other_key, created_at FROM xref "
            f"WHERE delivery_id = {self.marker}",
            [delivery_id],
        )
        keys = await self._query_dicts(
            f"SELECT name, value FROM message_key WHERE message_id = {self.marker}",
            [delivery["message_id"]],
        )
        return {
            "delivery": delivery,
            "message": message,
            "keys": keys,
            "attempts": [_whole_request(_plain(a), message) for a in attempts],
            "xrefs": xrefs,
        }

    async def activity(self, *, since: float, bucket: int) -> dict[str, list[dict[str, Any]]]:
        return {
            "received": await self._rows("chart_received", since=since, bucket=bucket),
            "attempts": await self._rows("chart_attempts", since=since, bucket=bucket),
            "backlog": await self._rows("chart_backlog", since=since, bucket=bucket),
        }

    async def dead_groups(self) -> list[dict[str, Any]]:
        groups = await self._rows("dead_groups")
        for g in groups:
            sample = await self._query_dicts(
                f"SELECT last_error FROM delivery WHERE id = {self.marker}", [g["newest"]]
            )
            g["sample_error"] = sample[0]["last_error"] if sample else None
        return groups

    async def rejected_groups(self) -> list[dict[str, Any]]:
        return await self._rows("rejected_groups")


PURGED_BODY = b"(the body sent was the message's data, purged with it by retention)"


def _whole_request(attempt: dict[str, Any], message: dict[str, Any] | None) -> dict[str, Any]:
    """The attempt with its request whole: a forwarded body is kept in the message's body
    (`body_start` to `body_end`, see `AttemptRecord.body_span`) and joined back here."""
    start, end = attempt.pop("body_start"), attempt.pop("body_end")
    if start is not None and attempt["request"] is not None:
        body = message.get("body") if message else None
        if body is None:  # retention took the message's body, and the body sent with it
            attempt["request"] += PURGED_BODY
        else:
            attempt["request"] += body[start:end]
    return attempt


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Byte columns (BLOB, bytea as memoryview) as bytes; the rest as they are."""
    return {k: bytes(cast(Any, v)) if isinstance(v, memoryview) else v for k, v in row.items()}
