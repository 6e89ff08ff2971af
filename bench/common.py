"""What the benchmarks share: a project on disk, processes on chosen cores, CPU readings."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seamline.sandbox.project import write_shop_project

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_project(
    root: Path,
    *,
    hub_port: int,
    sink_port: int,
    event: str = "order.updated",
    loops: int = 2,
    processes: int = 0,
) -> str:
    """The sandbox's shop project, tuned for throughput; its secret."""
    return write_shop_project(
        root,
        hub_port=hub_port,
        sink_port=sink_port,
        event=event,
        batch=200,
        loops=loops,
        processes=processes,
        lease="30s",
        max_pending=50_000,
        timeout="10s",
        concurrency=256,
        retry="{}",
        owner="bench",
    )


def start(argv: Sequence[str], *, cpu: int | None = None, **kw: Any) -> subprocess.Popen[bytes]:
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    return subprocess.Popen(list(argv), preexec_fn=pin, **kw)  # noqa: PLW1509 - only pins the CPU


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def family_cpu_seconds(pid: int) -> float:
    """CPU of a process and of the processes it started (a hub and its worker processes)."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # the thread ended while this read
            continue
        for child in children:
            try:
                total += family_cpu_seconds(int(child))
            except FileNotFoundError:  # the process ended while this read
                continue
    return total


def other_cpu_cores(seconds: float = 1.0) -> float:
    """How busy the machine is before a run (cores in use), to tell quiet from noisy runs."""

    def busy() -> tuple[int, int]:
        parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = parts[3] + parts[4]
        return sum(parts) - idle, sum(parts)

    b0, t0 = busy()
    time.sleep(seconds)
    b1, t1 = busy()
    return round((b1 - b0) / max(1, t1 - t0) * (os.cpu_count() or 1), 2)


def wait_ready(url: str, *, within: float = 20.0) -> None:
    import urllib.request

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {within} s")


def wait_port(port: int, *, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def loadgen(
    url: str,
    secret: str,
    *,
    seconds: float,
    connections: int,
    cpu: int | None = None,
    rate: float = 0.0,
    event: str = "order.updated",
) -> dict[str, Any]:
    argv = [
        PY,
        str(Path(__file__).with_name("loadgen.py")),
        "--url",
        url,
        "--secret",
        secret,
        "--seconds",
        str(seconds),
        "--connections",
        str(connections),
        "--rate",
        str(rate),
        "--event",
        event,
    ]
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def journal_rows(journal: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
