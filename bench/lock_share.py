"""How busy a SQLite journal's write lock is, and who holds it: run it beside a load.

Processes sharing one SQLite journal take turns on the `flock` of `<journal>.write.lock`
(`journal/sqlite.py`). This samples `/proc/locks` every millisecond for `--seconds` and prints
the share of samples in which the lock was held, by each process holding it. It only reads
`/proc/locks`; it never takes the lock.

    .venv/bin/python bench/full_path.py --seconds 15 --rate 5000 &
    .venv/bin/python bench/lock_share.py --seconds 8

Without a journal path it waits for the newest `/tmp/seamline-bench-*/journal.db` (the
benchmarks' temporary projects), then waits `--settle` seconds for the load to start.
"""

from __future__ import annotations

import argparse
import glob
import os
import time
from collections import Counter
from pathlib import Path


def newest_bench_journal(within: float = 30.0) -> Path:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = glob.glob("/tmp/seamline-bench-*/journal.db.write.lock")
        if found:
            return Path(max(found, key=os.path.getmtime)).with_name("journal.db")
        time.sleep(0.1)
    raise SystemExit(f"no /tmp/seamline-bench-*/journal.db.write.lock within {within:g} s")


def holder(locks: str, inode: int) -> str | None:
    """The pid holding the FLOCK on `inode`, from the text of /proc/locks; None if free."""
    for line in locks.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 16461 fd:01:123456 0 EOF"; a waiter's is "1: -> FLOCK ..."
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].endswith(f":{inode}"):
            return fields[4]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journal", nargs="?", type=Path, help="the journal.db (default: newest)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--settle", type=float, default=3.0, help="wait before sampling")
    args = parser.parse_args()
    journal = args.journal or newest_bench_journal()
    inode = os.stat(journal.with_name(journal.name + ".write.lock")).st_ino
    time.sleep(args.settle)
    held: Counter[str] = Counter()
    samples = 0
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        with open("/proc/locks") as f:
            pid = holder(f.read(), inode)
        samples += 1
        if pid is not None:
            held[pid] += 1
        time.sleep(0.001)
    busy = sum(held.values())
    print(f"{journal}: write lock held in {busy / samples:.0%} of {samples:,} samples")
    for pid, n in held.most_common():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            command = "(gone)"
        print(f"  pid {pid}: {n / samples:.0%}  {command[:100]}")


if __name__ == "__main__":
    main()
