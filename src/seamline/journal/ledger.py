"""`PostgresLedger`: the budgets of target systems in the journal's database, shared by every
worker process on every host.

Each transition (`grant` before a claim, `returned` after a batch) is one short transaction:
lock the target's row, apply `BudgetState`'s pure transition with the database's clock (hosts'
clocks may disagree; the server's is one), save. Two workers asking at once queue on the row
for the few hundred microseconds a transition takes, never longer. The connections come from a
small pool, apart from the journal's writer, so a budget call never waits for a group commit
and a group commit never waits for a budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from seamline.engine.budget import BudgetState, Grant, Limits, Outcome
from seamline.errors import JournalError
from seamline.journal.postgres import (
    IDLE_IN_TRANSACTION,
    Q,
    connection_options,
    idle_in_transaction_setting,
)

POOL_SIZE = 4
R = TypeVar("R")


class PostgresLedger:
    """Budget states in PostgreSQL (`budget_state`, `budget_use`; unlogged tables)."""

    def __init__(
        self, url: str, *, timeout: float = 5.0, idle_in_transaction: float = IDLE_IN_TRANSACTION
    ) -> None:
        """`idle_in_transaction`: as the journal's (`postgres.IDLE_IN_TRANSACTION`)."""
        self.url = url
        self.timeout = timeout
        self.idle_in_transaction = idle_in_transaction
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[dict[str, Any]]] | None = None

    def _connections(self) -> AsyncConnectionPool[psycopg.AsyncConnection[dict[str, Any]]]:
        if self._pool is None:
            self._pool = AsyncConnectionPool(
                self.url,
                min_size=1,
                max_size=POOL_SIZE,
                kwargs={"row_factory": dict_row, **connection_options(self.timeout)},
                configure=self._configure,
                timeout=self.timeout,
                open=False,
                name="budget",
            )
        return self._pool

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """A budget transition locks the budget's row: a session frozen in one is ended too."""
        await conn.execute(idle_in_transaction_setting(self.idle_in_transaction))
        await conn.commit()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def grant(
        self, target: str, owner: str, want: int, *, in_flight: int, limits: Limits
    ) -> Grant:
        def step(state: BudgetState, now: float, others: int) -> tuple[Grant, int]:
            grant = state.grant(now, want, others + in_flight, limits)
            return grant, in_flight + grant.n

        return await self._transition(target, owner, limits, step)

    async def returned(
        self,
        target: str,
        owner: str,
        *,
        in_flight: int,
        unused: int,
        outcome: Outcome,
        limits: Limits,
    ) -> bool:
        def step(state: BudgetState, now: float, others: int) -> tuple[bool, int]:
            return state.returned(now, unused, outcome, limits), in_flight

        return await self._transition(target, owner, limits, step)

    async def _transition(
        self,
        target: str,
        owner: str,
        limits: Limits,
        step: Callable[[BudgetState, float, int], tuple[R, int]],
    ) -> R:
        """Lock the target's state, apply `step` (new state in place; the result and what
        `owner` has in flight after it), save."""
        pool = self._connections()
        if pool.closed:
            await pool.open()
        key = {"target": target, "owner": owner}
        try:
            async with pool.connection() as conn, conn.transaction():
                row = await (await conn.execute(Q["budget_lock"], key)).fetchone()
                if row is None:
                    fresh = BudgetState.fresh(limits, 0.0)
                    await conn.execute(Q["budget_create"], {**key, **dataclasses.asdict(fresh)})
                    row = await (await conn.execute(Q["budget_lock"], key)).fetchone()
                    assert row is not None
                use = await (await conn.execute(Q["budget_others"], key)).fetchone()
                assert use is not None
                now, others = row.pop("now"), use["others"]
                state = BudgetState(**row)
                if state.at == 0.0:
                    state.at = now
                result, mine = step(state, now, others)
                use = {"in_flight": mine, "until": now + limits.lease}
                await conn.execute(Q["budget_save"], {**key, **dataclasses.asdict(state), **use})
        except psycopg.Error as exc:
            reason = str(exc).strip()
            raise JournalError(f"the budget of {target} is out of reach: {reason}") from exc
        return result
