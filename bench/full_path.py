"""Full path: webhook in → journal → worker → recording sink → acknowledged, on 2 shared cores.

Hub, sink and load generator share both cores (unpinned). The load generator offers signed
~3 KB orders at `--rate` per second for `--seconds`; the hub journals them, routes them and
delivers each to the recording sink (which commits what it applies). Reported: delivered
messages/s while loaded and overall (load + drain), the backlog and drain time, CPU per
process, deliveries per hub CPU-second, and a check that every delivered delivery has its
attempt recorded.

    .venv/bin/python bench/full_path.py [--seconds 60] [--rate 3000]

Target (issue 2): 5,000 messages/s sustained.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from common import (
    PY,
    cpu_seconds,
    family_cpu_seconds,
    free_port,
    journal_rows,
    loadgen,
    other_cpu_cores,
    start,
    stop,
    wait_ready,
    write_project,
)


def delivered(journal: Path) -> int:
    rows = journal_rows(journal, "SELECT count(*) FROM delivery WHERE state = 'delivered'")
    return int(rows[0][0])


def open_work(journal: Path) -> int:
    rows = journal_rows(
        journal, "SELECT count(*) FROM delivery WHERE state IN ('pending', 'leased')"
    )
    return int(rows[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=3000.0, help="offered webhooks/s")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--drain-limit", type=float, default=120.0)
    parser.add_argument("--loops", type=int, default=2, help="claim loops per target")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="worker processes beside the hub (worker.processes; 0: deliver in the hub)",
    )
    args = parser.parse_args()
    noise = other_cpu_cores()
    with tempfile.TemporaryDirectory(prefix="seamline-bench-") as tmp:
        root = Path(tmp)
        hub_port, sink_port = free_port(), free_port()
        secret = write_project(
            root,
            hub_port=hub_port,
            sink_port=sink_port,
            loops=args.loops,
            processes=args.processes,
        )
        journal = root / "journal.db"
        sink = start(
            [
                PY,
                "-m",
                "seamline.sandbox.recording_sink",
                "--port",
                str(sink_port),
                "--control-port",
                "0",
                "--db",
                str(root / "sink.db"),
            ],
            stdout=subprocess.PIPE,
        )
        hub = start([PY, "-m", "seamline.cli", "run", str(root)])
        try:
            assert sink.stdout is not None
            sink.stdout.readline()
            wait_ready(f"http://127.0.0.1:{hub_port}/readyz")
            hub_cpu0, sink_cpu0 = family_cpu_seconds(hub.pid), cpu_seconds(sink.pid)
            started = time.monotonic()
            load = loadgen(
                f"http://127.0.0.1:{hub_port}/hooks/shop",
                secret,
                seconds=args.seconds,
                connections=args.connections,
                rate=args.rate,
            )
            loaded = time.monotonic() - started
            at_end_of_load = delivered(journal)
            backlog = open_work(journal)
            while open_work(journal) and time.monotonic() - started < loaded + args.drain_limit:
                time.sleep(0.2)
            total = time.monotonic() - started
            drain = total - loaded
            hub_cpu = family_cpu_seconds(hub.pid) - hub_cpu0
            sink_cpu = cpu_seconds(sink.pid) - sink_cpu0
            final = delivered(journal)
            unrecorded = journal_rows(
                journal,
                "SELECT count(*) FROM delivery d WHERE d.state = 'delivered' AND NOT EXISTS "
                "(SELECT 1 FROM attempt a WHERE a.delivery_id = d.id)",
            )[0][0]
        finally:
            stop(hub)
            stop(sink)
            if sink.stdout is not None:
                sink.stdout.close()
        applied = journal_rows(root / "sink.db", "SELECT count(*) FROM records")[0][0]

    result = {
        "offered_per_s": args.rate,
        "worker_processes": args.processes,
        "load_seconds": round(loaded, 1),
        "acknowledged": load["ok"],
        "ingest_per_s": load["ok_per_s"],
        "ingest_p50_ms": load["p50_ms"],
        "ingest_p99_ms": load["p99_ms"],
        "delivered_during_load_per_s": round(at_end_of_load / loaded, 1),
        "backlog_at_end_of_load": backlog,
        "drain_seconds": round(drain, 1),
        "delivered": final,
        "delivered_per_s_overall": round(final / total, 1),
        "sink_applied": applied,
        "delivered_without_attempt_row": unrecorded,
        "hub_cpu_s": round(hub_cpu, 1),
        "sink_cpu_s": round(sink_cpu, 1),
        "loadgen_cpu_s": load["cpu_s"],
        "delivered_per_hub_cpu_s": round(final / max(0.01, hub_cpu), 1),
        "noise_cores_before": noise,
    }
    print()
    print(
        f"full path: offered {args.rate:,.0f}/s for {loaded:.0f} s on 2 shared cores "
        f"(other load before the run: {noise} cores), {args.processes} worker process(es) "
        "beside the hub"
    )
    print(
        f"  acknowledged {load['ok']:,} ({load['ok_per_s']:,.0f}/s, p50 {load['p50_ms']} ms, "
        f"p99 {load['p99_ms']} ms)"
    )
    print(
        f"  delivered {final:,}: {result['delivered_during_load_per_s']:,.0f}/s during load, "
        f"{result['delivered_per_s_overall']:,.0f}/s overall; backlog {backlog:,} at end of load, "
        f"drained in {drain:.1f} s  (target 5,000/s)"
    )
    print(
        f"  CPU: hub (and its worker processes) {hub_cpu:.1f} s, sink {sink_cpu:.1f} s, "
        f"load generator {load['cpu_s']} s; "
        f"{result['delivered_per_hub_cpu_s']:,.0f} deliveries per hub CPU-second"
    )
    print(f"  sink applied {applied:,}; delivered without an attempt row: {unrecorded}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
