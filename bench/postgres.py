"""PostgreSQL: the product with 1, 2 and 4 worker processes, next to a raw SKIP LOCKED loop.

One throw-away cluster on loopback (`seamline.sandbox.postgres`, fsync and synchronous_commit
on) serves both, in the same run:

- **raw loop**: one producer inserting 3 KB jobs 100 per statement, and 2 consumer processes
  claiming and acknowledging 100 at a time in one transaction (fused), for `--seconds`; the
  limit that performance.md §2c measured at about 14k jobs/s sustained.
- **product**: one `--role ingest` (which routes each webhook as it arrives), one `--role
  scheduler` and N `--role worker` processes, the recording sink and the load generator
  (signed ~3 KB webhooks at `--rate`), all on the same 2 cores. Reported: acknowledged/s,
  delivered/s, backlog and drain, CPU per role, dead tuples.

Both report the server's CPU time per message (jobs completed; messages delivered during the
load): what the database does for each, apart from the roles' own work.

    .venv/bin/python bench/postgres.py [--seconds 20] [--rate 1500] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from common import (
    PY,
    cpu_seconds,
    free_port,
    journal_rows,
    loadgen,
    start,
    stop,
    wait_ready,
    write_project,
)
from seamline.sandbox.postgres import LocalPostgres

PAYLOAD = b"x" * 3000


def _consume(url: str, seconds: float, out: Any) -> None:
    done = 0
    claim = (
        "WITH picked AS (SELECT id FROM job WHERE state = 'ready' ORDER BY id LIMIT 100 "
        "FOR UPDATE SKIP LOCKED) UPDATE job SET state = 'done' FROM picked "
        "WHERE job.id = picked.id RETURNING job.id, job.body"
    )
    with psycopg.connect(url) as conn:
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            rows = conn.execute(claim).fetchall()
            conn.commit()
            done += len(rows)
            if not rows:
                time.sleep(0.001)
    out.put(done)


def raw_loop(pg: LocalPostgres, url: str, seconds: float) -> dict[str, float]:
    """Producer in this process, two consumer processes; jobs completed per second."""
    cpu0 = server_cpu(pg)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE job (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "state TEXT NOT NULL DEFAULT 'ready', body BYTEA NOT NULL)"
        )
        conn.execute("CREATE INDEX job_ready ON job (id) WHERE state = 'ready'")
    results: multiprocessing.Queue[int] = multiprocessing.Queue()
    consumers = [
        multiprocessing.Process(target=_consume, args=(url, seconds, results)) for _ in range(2)
    ]
    for c in consumers:
        c.start()
    inserted = 0
    with psycopg.connect(url) as conn:
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            conn.execute(
                "INSERT INTO job (body) SELECT * FROM unnest(%s::bytea[])", ([PAYLOAD] * 100,)
            )
            conn.commit()
            inserted += 100
    completed = sum(results.get() for _ in consumers)
    for c in consumers:
        c.join()
    return {
        "inserted_per_s": round(inserted / seconds),
        "completed_per_s": round(completed / seconds),
        "server_us_per_job": round(1e6 * (server_cpu(pg) - cpu0) / max(1, completed)),
    }


def count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.encode()).fetchone()
        return int(row[0]) if row else 0


def server_cpu(pg: LocalPostgres) -> float:
    """CPU seconds of the PostgreSQL server: the postmaster, the children it has reaped (a
    backend whose client disconnected) and the children now running."""
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def table_stats(url: str) -> dict[str, list[int]]:
    """Dead tuples, autovacuum and autoanalyze runs of the busy tables, from the server's
    statistics (what decides whether vacuum keeps up)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT relname, n_dead_tup, autovacuum_count, autoanalyze_count "
            "FROM pg_stat_user_tables WHERE relname IN ('message', 'delivery', 'attempt') "
            "ORDER BY relname"
        ).fetchall()
    return {name: [dead, vacuums, analyzes] for name, dead, vacuums, analyzes in rows}


DELIVERED = "SELECT count(*) FROM delivery WHERE state = 'delivered'"
OPEN = (
    "SELECT (SELECT count(*) FROM delivery WHERE state IN ('pending', 'leased')) "
    "+ (SELECT count(*) FROM message WHERE state = 'received')"
)


def landscape(
    pg: LocalPostgres | None, workers: int, seconds: float, rate: float, *, loops: int = 2
) -> dict[str, Any]:
    """The shop → hub → sink landscape under `rate`/s for `seconds`: on PostgreSQL (`pg`) with
    one ingest, one scheduler and `workers` worker processes, or on SQLite in one process."""
    url = pg.create_database(f"hub{workers}") if pg else None
    with tempfile.TemporaryDirectory(prefix="seamline-bench-pg-") as tmp:
        root = Path(tmp)
        hub_port, sink_port = free_port(), free_port()
        secret = write_project(root, hub_port=hub_port, sink_port=sink_port, loops=loops)
        if url:
            with (root / "seamline.yaml").open("a") as f:
                f.write(f"journal: {url}\n")

        def rows(sql: str) -> int:
            if url:
                return count(url, sql)
            return int(journal_rows(root / "journal.db", sql)[0][0])

        sink = start(
            [
                *(PY, "-m", "seamline.sandbox.recording_sink", "--port", str(sink_port)),
                *("--control-port", "0", "--db", str(root / "sink.db")),
            ],
            stdout=subprocess.PIPE,
        )
        run = [PY, "-m", "seamline.cli", "run", str(root), "--role"]
        if url:
            procs = {"ingest": [start([*run, "ingest"])], "scheduler": [start([*run, "scheduler"])]}
            procs["worker"] = [start([*run, "worker"]) for _ in range(workers)]
        else:
            procs = {"hub": [start([*run, "all"])]}
        try:
            assert sink.stdout is not None
            sink.stdout.readline()
            wait_ready(f"http://127.0.0.1:{hub_port}/readyz")
            time.sleep(1.0)  # workers and scheduler connected
            cpu0 = {role: sum(cpu_seconds(p.pid) for p in ps) for role, ps in procs.items()}
            if pg:
                cpu0["postgres"] = server_cpu(pg)
            started = time.monotonic()
            load = loadgen(
                f"http://127.0.0.1:{hub_port}/hooks/shop",
                secret,
                seconds=seconds,
                connections=64,
                rate=rate,
            )
            loaded = time.monotonic() - started
            at_end = rows(DELIVERED)
            backlog = rows(OPEN)
            cpu = {
                role: round(sum(cpu_seconds(p.pid) for p in ps) - cpu0[role], 1)
                for role, ps in procs.items()
            }
            if pg:
                cpu["postgres"] = round(server_cpu(pg) - cpu0["postgres"], 1)
            while rows(OPEN) and time.monotonic() - started < loaded + 120:
                time.sleep(0.2)
            total = time.monotonic() - started
            final = rows(DELIVERED)
            vacuum = table_stats(url) if url else None
        finally:
            for ps in procs.values():
                for p in ps:
                    stop(p)
            stop(sink)
            if sink.stdout is not None:
                sink.stdout.close()
    return {
        "journal": "postgres" if pg else "sqlite",
        "workers": workers,
        "acknowledged": load["ok"],
        "ingest_per_s": load["ok_per_s"],
        "ingest_p99_ms": load["p99_ms"],
        "delivered_during_load_per_s": round(at_end / loaded),
        "backlog_at_end_of_load": backlog,
        "delivered": final,
        "delivered_per_s_overall": round(final / total),
        "cpu_s_during_load": cpu,
        "server_us_per_delivered": round(1e6 * cpu["postgres"] / max(1, at_end)) if pg else None,
        "tables": vacuum,
    }


def describe(r: dict[str, Any], rate: float, raw: dict[str, float]) -> str:
    where = (
        f"PostgreSQL, {r['workers']} worker process(es)"
        if r["journal"] == "postgres"
        else "SQLite, one process"
    )
    return (
        f"{where}, offered {rate:,.0f}/s: acknowledged {r['ingest_per_s']:,.0f}/s "
        f"(p99 {r['ingest_p99_ms']} ms), delivered {r['delivered_during_load_per_s']:,}/s during "
        f"load ({100 * r['delivered_during_load_per_s'] / raw['completed_per_s']:.0f}% of raw), "
        f"{r['delivered_per_s_overall']:,}/s over load and drain, "
        f"{r['delivered']:,} of {r['acknowledged']:,} in all, backlog "
        f"{r['backlog_at_end_of_load']:,}; CPU s during load {r['cpu_s_during_load']}"
        + (
            f", server {r['server_us_per_delivered']} us a delivered message"
            if r["server_us_per_delivered"] is not None
            else ""
        )
        + (
            "; after the drain, dead tuples / autovacuums / autoanalyzes: "
            + ", ".join(f"{t} {v[0]:,} / {v[1]} / {v[2]}" for t, v in r["tables"].items())
            if r["tables"]
            else ""
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=4000.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--loops", type=int, default=2, help="claim loops per target per process")
    args = parser.parse_args()
    pg = LocalPostgres().start()
    try:
        raw = raw_loop(pg, pg.create_database("raw"), args.seconds)
        print(
            f"raw SKIP LOCKED loop (1 producer x100, 2 consumers x100 fused): "
            f"{raw['completed_per_s']:,}/s completed, {raw['inserted_per_s']:,}/s inserted, "
            f"server {raw['server_us_per_job']} us a job"
        )
        results = [landscape(None, 1, args.seconds, args.rate)]
        print(describe(results[0], args.rate, raw))
        for n in args.workers:
            results.append(landscape(pg, n, args.seconds, args.rate, loops=args.loops))
            print(describe(results[-1], args.rate, raw))
        print(json.dumps({"raw": raw, "product": results}))
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
