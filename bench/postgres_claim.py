"""The PostgreSQL claim alone: server and client CPU a delivery, results read in binary or text.

A throw-away cluster on loopback and a journal made by the product's migrations, with
statistics taken while its tables were empty (as in a new hub: the case where plans went
wrong). `--done` delivered deliveries, then rounds of `--pending` pending ones (3 KB bodies),
each claimed `--limit` at a time by the product's `claim_deliveries` and settled, until none
is left. Per round: the claim's time a call, the server backend's CPU and this process's CPU a
delivery (claim and settle), and whether the claim's update finds its rows by primary key.

    .venv/bin/python bench/postgres_claim.py [--done 20000] [--pending 6000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import psycopg

from common import cpu_seconds
from seamline.journal.postgres import PostgresJournal, Q
from seamline.sandbox.postgres import LocalPostgres

BODY = b'{"id": 1, "note": "' + b"x" * 3000 + b'"}'

FILL = """
WITH m AS (
    INSERT INTO message (system, source_id, received_at, headers, body, state, event)
    SELECT 'shop', gen_random_uuid()::text, %(now)s, '{}'::bytea, %(body)s, 'routed', 'order'
    FROM generate_series(1, %(n)s)
    RETURNING id)
INSERT INTO delivery (message_id, flow, flow_version, target, key, version, safe_retry, state,
                      due_at, created_at, updated_at)
SELECT id, 'orders', 'v1', 'sink', 'k' || (id %% 5000), NULL, true, %(state)s,
       %(now)s, %(now)s, %(now)s
FROM m ORDER BY id
"""

SETTLE = (
    "UPDATE delivery SET state = 'delivered', lease_owner = NULL, lease_until = NULL "
    "WHERE id = ANY(%s)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--done", type=int, default=20000)
    parser.add_argument("--pending", type=int, default=6000)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    pg = LocalPostgres().start()
    try:
        url = pg.create_database("claim")

        async def migrate() -> None:
            journal = PostgresJournal(url)
            await journal.open()
            await journal.close()

        asyncio.run(migrate())
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")  # statistics of empty tables, as in a new hub
            for table in ("delivery", "message"):
                conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
            now = time.time()
            conn.execute(FILL, {"now": now, "body": BODY, "n": args.done, "state": "delivered"})
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            params = {"target": "sink", "now": now + 1, "limit": args.limit, "owner": "bench"}
            params["until"] = now + 60
            for n in range(args.rounds):
                for binary in (True, False):
                    conn.execute(
                        FILL, {"now": now, "body": BODY, "n": args.pending, "state": "pending"}
                    )
                    with conn.transaction(force_rollback=True):
                        plan = conn.execute("EXPLAIN " + Q["claim_deliveries"], params).fetchall()
                    by_key = any("delivery_pkey" in r[0] for r in plan)
                    server0, client0 = cpu_seconds(backend), time.process_time()
                    claimed = calls = 0
                    in_claim = 0.0
                    while True:
                        t0 = time.perf_counter()
                        rows = conn.execute(Q["claim_deliveries"], params, binary=binary).fetchall()
                        in_claim += time.perf_counter() - t0
                        if not rows:
                            break
                        conn.execute(SETTLE, ([r[0] for r in rows],))
                        claimed += len(rows)
                        calls += 1
                    server = (cpu_seconds(backend) - server0) * 1e6 / claimed
                    client = (time.process_time() - client0) * 1e6 / claimed
                    print(
                        f"round {n + 1}, results in {'binary' if binary else 'text  '}: "
                        f"{claimed:,} claimed in {calls} calls, {1e3 * in_claim / calls:.2f} ms "
                        f"a call; CPU a delivery (claim and settle): server {server:.1f} us, "
                        f"client {client:.1f} us; update by primary key: {by_key}"
                    )
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
