"""Durable ingest against a trivial endpoint on the same server and core, in one run.

The servers are pinned to CPU 0 and loaded from CPU 1 by `loadgen.py` (64 keep-alive
connections, signed ~3 KB order webhooks). Measured in one run:

- the trivial endpoint (`trivial.py`): read the body, answer 200;
- the hub with `--role ingest`: verify, bound, dedupe, journal (group commit, WAL,
  synchronous=FULL), answer: durable ingest as the target defines it;
- the hub with `--role all`: the same, with the router decoding and routing every message on
  the same core (its flow subscribes to another event, so no delivery work is counted;
  `full_path.py` measures that).

    .venv/bin/python bench/ingest.py [--seconds 10] [--connections 64] [--repeat 3]

The machine is shared and noisy (one reading can move by a third), so the three are measured
in turn `--repeat` times and the medians compared.

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


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def one_round(args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """The trivial endpoint, then the hub in each role, each for `--seconds`."""
    port = free_port()
    results = {
        "trivial": measure(
            [PY, str(Path(__file__).with_name("trivial.py")), "--port", str(port)],
            f"http://127.0.0.1:{port}/hooks/shop",
            "whsec_dGVzdA==",
            args,
            port,
        )
    }
    stored: dict[str, int] = {}
    for role in ("ingest", "all"):
        with tempfile.TemporaryDirectory(prefix="seamline-bench-") as tmp:
            root = Path(tmp)
            hub_port = free_port()
            secret = write_project(
                root, hub_port=hub_port, sink_port=free_port(), event="order.never"
            )
            results[role] = measure(
                [PY, "-m", "seamline.cli", "run", str(root), "--role", role],
                f"http://127.0.0.1:{hub_port}/hooks/shop",
                secret,
                args,
                f"http://127.0.0.1:{hub_port}/readyz",
            )
            stored[role] = journal_rows(root / "journal.db", "SELECT count(*) FROM message")[0][0]
    return results, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of trivial, ingest, all; medians reported"
    )
    args = parser.parse_args()
    noise = other_cpu_cores()
    rounds = [one_round(args) for _ in range(max(1, args.repeat))]

    print()
    print(
        f"ingest benchmark: {len(rounds)} rounds of {args.seconds:g} s, {args.connections} "
        f"connections, server on CPU 0, load on CPU 1; other load before the run: {noise} cores"
    )
    names = {
        "trivial": "trivial endpoint",
        "ingest": "durable ingest (role ingest)",
        "all": "ingest + routing (role all)",
    }
    print("per round, requests per server CPU-second (and vs trivial in the same round):")
    for i, (r, _) in enumerate(rounds, 1):
        trivial = r["trivial"]["ok_per_server_cpu_s"]
        print(
            f"  round {i}: "
            + ", ".join(
                f"{k} {r[k]['ok_per_server_cpu_s']:,.0f}"
                + ("" if k == "trivial" else f" ({r[k]['ok_per_server_cpu_s'] / trivial:.0%})")
                for k in names
            )
        )
    print(
        f"medians:{'':22}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'req/CPU-s':>11}{'vs trivial':>12}"
    )
    med = {
        k: {
            m: median([r[k][m] for r, _ in rounds])
            for m in ("ok_per_s", "p50_ms", "p99_ms", "ok_per_server_cpu_s")
        }
        for k in names
    }
    for k, name in names.items():
        ratio = med[k]["ok_per_server_cpu_s"] / max(1.0, med["trivial"]["ok_per_server_cpu_s"])
        print(
            f"{name:30}{med[k]['ok_per_s']:>10,.0f}{med[k]['p50_ms']:>9.2f}{med[k]['p99_ms']:>9.2f}"
            f"{med[k]['ok_per_server_cpu_s']:>11,.0f}{ratio:>12.0%}"
        )
    print(
        "vs trivial is per server CPU-second, median against median (req/s: "
        + ", ".join(
            f"{k} {med[k]['ok_per_s'] / max(1.0, med['trivial']['ok_per_s']):.0%}"
            for k in ("ingest", "all")
        )
        + "); target >= 40%, stretch 50%; p99 < 20 ms"
    )
    for role in ("ingest", "all"):
        acknowledged = sum(r[role]["ok"] for r, _ in rounds)
        journaled = sum(stored[role] for _, stored in rounds)
        lost = sum(1 for r, stored in rounds if stored[role] < r[role]["ok"])
        verdict = "ok" if not lost else f"MISSING ACKNOWLEDGED MESSAGES in {lost} rounds"
        print(
            f"role {role}: journals hold {journaled:,} messages for {acknowledged:,} "
            f"acknowledged ({verdict})"
        )
    print(json.dumps({"rounds": [r for r, _ in rounds], "noise_cores": noise}))


if __name__ == "__main__":
    main()
