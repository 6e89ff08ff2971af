"""Durable ingest against a trivial endpoint on the same server and core, in one run.

The servers are pinned to CPU 0 and loaded from CPU 1 by `loadgen.py` (64 keep-alive
connections, signed ~3 KB order webhooks). Measured in one run:

- the trivial endpoint (`trivial.py`): read the body, answer 200;
- the hub with `--role ingest`: verify, bound, dedupe, journal (group commit, WAL,
  synchronous=FULL), answer: durable ingest as the target defines it;
- the hub with `--role all`: the same, with the router decoding and routing every message on
  the same core (its flow subscribes to another event, so no delivery work is counted;
  `full_path.py` measures that).

    .venv/bin/python bench/ingest.py [--seconds 10] [--connections 64]

Targets (issue 2): durable >= 40% of trivial requests/s (stretch 50%), p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    PY,
    cpu_seconds,
    free_port,
    journal_rows,
    loadgen,
    other_cpu_cores,
    start,
    stop,
    wait_port,
    wait_ready,
    write_project,
)


def measure(
    argv: list[str], url: str, secret: str, args: argparse.Namespace, ready: str | int
) -> dict[str, Any]:
    server = start(argv, cpu=0)
    try:
        if isinstance(ready, int):
            wait_port(ready)
        else:
            wait_ready(ready)
        time.sleep(0.5)
        before = cpu_seconds(server.pid)
        result = loadgen(url, secret, seconds=args.seconds, connections=args.connections, cpu=1)
        result["server_cpu_s"] = round(cpu_seconds(server.pid) - before, 2)
        result["ok_per_server_cpu_s"] = round(result["ok"] / max(0.01, result["server_cpu_s"]), 1)
        return result
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    noise = other_cpu_cores()

    port = free_port()
    trivial = measure(
        [PY, str(Path(__file__).with_name("trivial.py")), "--port", str(port)],
        f"http://127.0.0.1:{port}/hooks/shop",
        "whsec_dGVzdA==",
        args,
        port,
    )
    durable: dict[str, dict[str, Any]] = {}
    stored: dict[str, int] = {}
    for role in ("ingest", "all"):
        with tempfile.TemporaryDirectory(prefix="seamline-bench-") as tmp:
            root = Path(tmp)
            hub_port = free_port()
            secret = write_project(
                root, hub_port=hub_port, sink_port=free_port(), event="order.never"
            )
            durable[role] = measure(
                [PY, "-m", "seamline.cli", "run", str(root), "--role", role],
                f"http://127.0.0.1:{hub_port}/hooks/shop",
                secret,
                args,
                f"http://127.0.0.1:{hub_port}/readyz",
            )
            stored[role] = journal_rows(root / "journal.db", "SELECT count(*) FROM message")[0][0]

    print()
    print(
        f"ingest benchmark: {args.seconds:g} s, {args.connections} connections, "
        f"server on CPU 0, load on CPU 1; other load before the run: {noise} cores"
    )
    print(
        f"{'':30}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'server CPU s':>14}"
        f"{'req/CPU-s':>11}{'vs trivial':>12}"
    )
    rows = (
        ("trivial endpoint", trivial),
        ("durable ingest (role ingest)", durable["ingest"]),
        ("ingest + routing (role all)", durable["all"]),
    )
    for name, r in rows:
        ratio = r["ok_per_server_cpu_s"] / max(1.0, trivial["ok_per_server_cpu_s"])
        print(
            f"{name:30}{r['ok_per_s']:>10,.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
            f"{r['server_cpu_s']:>14.2f}{r['ok_per_server_cpu_s']:>11,.0f}{ratio:>12.0%}"
        )
    print(
        "vs trivial is per server CPU-second (the req/s ratios are "
        + ", ".join(
            f"{k} {durable[k]['ok_per_s'] / max(1.0, trivial['ok_per_s']):.0%}" for k in durable
        )
        + "); target >= 40%, stretch 50%; p99 < 20 ms"
    )
    for role in durable:
        ok = stored[role] >= durable[role]["ok"]
        print(
            f"role {role}: journal holds {stored[role]:,} messages for {durable[role]['ok']:,} "
            f"acknowledged ({'ok' if ok else 'MISSING ACKNOWLEDGED MESSAGES'})"
        )
    print(
        json.dumps({"trivial": trivial, "durable": durable, "stored": stored, "noise_cores": noise})
    )


if __name__ == "__main__":
    main()
