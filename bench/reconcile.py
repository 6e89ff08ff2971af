"""Reconciliation: comparing two stock sets against merely reading them, in one run.

Two CSV files of `--rows` stock rows (sku, location, available) in random order, the second
with 0.1% drift (a third missing, a third extra, a third with another quantity). Each phase
runs in its own process, so its peak memory (max RSS) is its own:

- read: parse both files, row by row (the least a comparison must do);
- compare: parse both files into a spool (`checks.spool`: the left side held in memory up to
  its budget, each right row judged as it comes; beyond the budget, partitioned by key hash
  on disk and joined one partition at a time) and count the findings.

    .venv/bin/python bench/reconcile.py [--rows 1000000] [--repeat 3] [--memory MB]

`--memory 0` measures the spool with nothing held in memory (the path of sets larger than its
budget); the default is the product's budget (`checks.spool.MEMORY`).

The phases alternate `--repeat` times (read, compare, read, compare, ...) and the fastest of
each is compared: this machine's speed drifts between runs by a third, and the fastest time
is the one least disturbed. The ratio of each pair (a read and the compare run right after
it) is printed too, with their median.

Targets (issue 7): compare under 2x the read time, peak memory under 300 MB; every injected
difference found (checked).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from statistics import median
from typing import Any

from seamline.checks.compare import EXACT, Row, Tally
from seamline.checks.spool import MEMORY, Spool


def write_sets(folder: Path, rows: int, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    order = rng.sample(range(rows), rows)
    drift = {
        i: rng.choice(["missing", "extra", "mismatch"]) for i in rng.sample(order, rows // 1000)
    }
    counts = {"missing": 0, "extra": 0, "mismatch": 0}
    with (
        (folder / "left.csv").open("w", newline="") as lf,
        (folder / "right.csv").open("w", newline="") as rf,
    ):
        left, right = csv.writer(lf), csv.writer(rf)
        left.writerow(["sku", "location", "available"])
        right.writerow(["sku", "location", "available"])
        for i in order:
            sku, qty = f"SKU-{i:08d}", i % 97
            kind = drift.get(i)
            if kind != "extra":
                left.writerow([sku, "WH", qty])
            if kind != "missing":
                right.writerow([sku, "WH", qty + 1 if kind == "mismatch" else qty])
            if kind:
                counts[kind] += 1
    return counts


def read(path: Path) -> Iterator[Row]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for sku, location, available in reader:
            yield Row((sku, location), {"available": int(available)})


def phase(name: str, folder: Path, memory: int) -> dict[str, object]:
    started = time.perf_counter()
    if name == "read":
        found = {
            "rows": sum(1 for _ in read(folder / "left.csv"))
            + sum(1 for _ in read(folder / "right.csv"))
        }
    else:
        tally = Tally()
        with Spool(folder, memory=memory) as spool:
            spool.extend("left", read(folder / "left.csv"))
            spool.done("left")
            spool.extend("right", read(folder / "right.csv"))
            for _ in spool.findings({"available": EXACT}, tally):
                pass
        found = {"rows": tally.left + tally.right, **tally.found}
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"phase": name, "seconds": seconds, "peak_mb": peak_mb, **found}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--phase", choices=["read", "compare"])
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--memory", type=float, default=MEMORY / 2**20, help="MiB")
    args = parser.parse_args()
    memory = int(args.memory * 2**20)
    if args.phase:
        print(json.dumps(phase(args.phase, args.folder, memory)))
        return
    with tempfile.TemporaryDirectory(prefix="seamline-bench-") as tmp:
        folder = Path(tmp)
        injected = write_sets(folder, args.rows)
        runs: dict[str, list[dict[str, Any]]] = {"read": [], "compare": []}
        for _ in range(max(1, args.repeat)):
            for name in ("read", "compare"):
                out = subprocess.run(
                    [sys.executable, __file__, "--phase", name, "--folder", str(folder),
                     "--memory", str(args.memory)],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                runs[name].append(json.loads(out.stdout))
        results = {name: min(found, key=lambda r: r["seconds"]) for name, found in runs.items()}
    every = {name: ", ".join(f"{r['seconds']:.2f}" for r in found) for name, found in runs.items()}
    read_s, compare_s = results["read"]["seconds"], results["compare"]["seconds"]
    c = results["compare"]
    print(f"rows per side      {args.rows:,} (drift injected: {injected})")
    print(f"spool memory       {args.memory:g} MiB")
    print(
        f"read both          {read_s:6.2f} s   peak {results['read']['peak_mb']:6.1f} MB   "
        f"(runs: {every['read']} s)"
    )
    print(
        f"compare            {compare_s:6.2f} s   peak {c['peak_mb']:6.1f} MB   "
        f"(runs: {every['compare']} s)"
    )
    print(f"compare / read     {compare_s / read_s:6.2f}x  (target < 2x; peak target < 300 MB)")
    pairs = sorted(
        c["seconds"] / r["seconds"] for r, c in zip(runs["read"], runs["compare"], strict=True)
    )
    print(
        f"  each pair        {', '.join(f'{x:.2f}' for x in pairs)}x (median {median(pairs):.2f}x)"
    )
    found = {"missing": c["missing_right"], "extra": c["missing_left"], "mismatch": c["mismatch"]}
    print(f"found              {found}  {'all injected found' if found == injected else 'MISSED'}")


if __name__ == "__main__":
    main()
