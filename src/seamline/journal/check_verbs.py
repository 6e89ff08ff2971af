"""`CheckVerbs`: reconciliation runs and their findings, and the flow versions that went live.

Shared by both journals (written with the named queries and `_write`/`_query_dicts` that a
`GroupCommitJournal` provides). A run keeps its complete counts and its first findings (a run
with a million differences keeps `FINDINGS_KEPT` of them: enough to act on, not a second copy
of a system).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import orjson

from seamline.journal.base import StoredMessage

T = TypeVar("T")
FINDINGS_KEPT = 10_000
KINDS = ("missing_left", "missing_right", "mismatch", "duplicate")


class CheckVerbs:
    """Mixed into `GroupCommitJournal`, which provides what is declared here."""

    q: dict[str, str]

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
        """Keep one run: `counts` (left, right, agreed and one per finding kind) and its
        findings as (kind, key parts, fields, left values, right values); the run's id."""
        q = self.q
        rows = [
            {
                "kind": kind,
                "key": "/".join(key),
                "fields": ",".join(fields),
                "left_values": None if left is None else orjson.dumps(left, default=str),
                "right_values": None if right is None else orjson.dumps(right, default=str),
            }
            for kind, key, fields, left, right in _first(findings, FINDINGS_KEPT)
        ]

        def op(conn: Any) -> int:
            run_id = int(
                conn.execute(
                    q["insert_check_run"],
                    {
                        "check_name": check,
                        "started_at": started_at,
                        "seconds": seconds,
                        "left_rows": counts.get("left", 0),
                        "right_rows": counts.get("right", 0),
                        "agreed": counts.get("agreed", 0),
                        **{kind: counts.get(kind, 0) for kind in KINDS},
                        "error": error,
                        "actor": actor,
                    },
                ).fetchone()[0]
            )
            if rows:
                conn.cursor().executemany(
                    q["insert_check_finding"], [{**r, "run_id": run_id} for r in rows]
                )
            return run_id

        return await self._write(op)

    async def check_runs(
        self, check: str | None = None, *, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The latest runs (of one check, or of all), newest first."""
        return await self._query_dicts(self.q["check_runs"], {"check_name": check, "limit": limit})

    async def check_findings(self, run_id: int, *, limit: int = 1000) -> list[dict[str, Any]]:
        rows = await self._query_dicts(self.q["check_findings"], {"run_id": run_id, "limit": limit})
        for row in rows:
            for side in ("left_values", "right_values"):
                raw = row[side]
                row[side] = None if raw is None else orjson.loads(bytes(raw))
        return rows

    async def record_flow_versions(
        self, versions: Iterable[tuple[str, str, bytes]], *, actor: str, now: float
    ) -> int:
        """Each (flow, version, files) goes live now: kept the first time, its `last_live`
        moved on after (the live version of a flow is the one live last); how many."""
        q = self.q
        rows = [
            {"flow": flow, "version": version, "content": content, "now": now, "actor": actor}
            for flow, version, content in versions
        ]

        def op(conn: Any) -> int:
            new = 0
            for row in rows:
                new += conn.execute(q["record_flow_version"], row).rowcount or 0
            return new

        return await self._write(op)

    async def flow_versions(
        self, flow: str | None = None, *, limit: int = 50
    ) -> list[dict[str, Any]]:
        return await self._query_dicts(self.q["flow_versions"], {"flow": flow, "limit": limit})

    async def flow_version_content(self, flow: str, version: str) -> bytes | None:
        rows = await self._query_dicts(
            self.q["flow_version_content"], {"flow": flow, "version": version}
        )
        return bytes(rows[0]["content"]) if rows else None

    async def recent_messages(self, system: str, *, limit: int = 500) -> list[StoredMessage]:
        """The newest routed messages of `system` that still hold their body (to rehearse a
        change with), newest first."""
        rows = await self._query_dicts(
            self.q["recent_messages"], {"system": system, "limit": limit}
        )
        return _stored(rows)

    async def recorded_messages(
        self, system: str, *, since: float, until: float, limit: int
    ) -> list[StoredMessage]:
        """`system`'s messages received in [since, until) that still hold their body, in the
        order they were received: a slice of real traffic to play again (`seamline load`)."""
        rows = await self._query_dicts(
            self.q["recorded_messages"],
            {"system": system, "since": since, "until": until, "limit": limit},
        )
        return _stored(rows)

    async def messages_with_key(
        self, system: str, value: str, *, limit: int = 20
    ) -> list[StoredMessage]:
        """`system`'s messages carrying the business key `value` (an order number), newest
        first, those whose body retention has not purged."""
        rows = await self._query_dicts(
            self.q["messages_with_key"], {"system": system, "value": value, "limit": limit}
        )
        return _stored(rows)

    async def flow_attempts(self, *, since: float) -> dict[str, tuple[int, int]]:
        """Per flow: (attempts, failed attempts) since `since`."""
        rows = await self._query_dicts(self.q["flow_attempts"], {"since": since})
        return {r["flow"]: (int(r["attempts"]), int(r["failed"] or 0)) for r in rows}


def _stored(rows: Iterable[dict[str, Any]]) -> list[StoredMessage]:
    return [
        StoredMessage(
            int(r["id"]),
            r["system"],
            r["source_id"],
            float(r["received_at"]),
            bytes(r["headers"] or b""),
            bytes(r["body"]),
        )
        for r in rows
    ]


def _first(items: Iterable[T], n: int) -> list[T]:
    kept: list[T] = []
    for item in items:
        if len(kept) >= n:
            break
        kept.append(item)
    return kept
