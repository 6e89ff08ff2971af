"""`seamline demo`: the example project running end to end on this machine.

A simulated webshop signs order webhooks (with a few it gets wrong on purpose: a channel the
value map does not know), the hub journals and delivers them to a local order system that
records what it applies, and a live table shows each flow's state. Halfway through the order
system goes down for a few seconds: the circuit opens, nothing is lost, and it drains after.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shlex
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from seamline.engine.hub import Hub
from seamline.observe import log as logs
from seamline.observe.status import snapshot
from seamline.project import load_project
from seamline.sandbox.recording_sink import start_recording_sink
from seamline.sandbox.webhook_sender import send_webhooks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def demo_order(rng: random.Random, n: int) -> dict[str, Any]:
    channel = rng.choices(["web", "pos", "marketplace", "tiktok"], weights=[70, 20, 9, 1])[0]
    lines: list[dict[str, Any]] = []
    total = 0.0
    for _ in range(rng.randint(1, 5)):
        cents = rng.randint(500, 9000)
        quantity = rng.randint(1, 3)
        total += cents * quantity / 100
        lines.append(
            {
                "sku": f"SKU-{rng.randint(1, 400):04d}",
                "quantity": quantity,
                "price": f"{cents / 100:.2f}",
            }
        )
    return {
        "id": 450789469 + n,
        "order_number": 1001 + n,
        "email": f"customer{n}@example.com",
        "source_name": channel,
        "currency": "EUR",
        "total_price": f"{total:.2f}",
        "updated_at": "2026-11-22T10:00:00+01:00",
        "line_items": lines,
    }


async def run_demo(*, duration: float, rate: float, keep: Path | None, console: Console) -> int:
    from seamline.cli import status_table, systems_table, write_example

    workdir = keep or Path(tempfile.mkdtemp(prefix="seamline-demo-"))
    if not (workdir / "flows").exists():
        write_example(workdir)
    hub_port, sink_port = free_port(), free_port()
    config = (workdir / "systems" / "orders-api.yaml").read_text()
    (workdir / "systems" / "orders-api.yaml").write_text(
        config.replace("http://127.0.0.1:8081", f"http://127.0.0.1:{sink_port}")
    )
    project = load_project(workdir)
    secret = (workdir / "secrets" / "webshop.secret").read_text().strip()
    logs.configure("error")
    sink = await start_recording_sink(db_path=workdir / "orders-api.db", port=sink_port)
    hub = Hub(project, listen=("127.0.0.1", hub_port))
    hub_task = asyncio.create_task(hub.run())
    await hub.started.wait()
    rng = random.Random(7)
    count = max(1, int(duration * rate))
    console.print(
        f"[bold]Seamline demo[/]: project in {workdir}\n"
        f"webshop → POST http://127.0.0.1:{hub_port}/hooks/webshop → hub → "
        f"order system on :{sink_port}\n"
        f"{count} signed orders at {rate:g}/s; 1% use a channel the value map lacks "
        "(→ dead letters); "
        "the order system goes down for 8 s midway (→ circuit opens, nothing lost)."
    )
    sender = asyncio.create_task(
        send_webhooks(
            url=f"http://127.0.0.1:{hub_port}/hooks/webshop",
            secret=secret,
            count=count,
            rate=rate,
            connections=16,
            event_type="order.created",
            data=lambda n: demo_order(rng, n),
        )
    )
    started = time.monotonic()
    outage = (duration * 0.4, duration * 0.4 + 8)
    down = False
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            elapsed = time.monotonic() - started
            if not down and outage[0] <= elapsed < outage[1]:
                await sink.set_mode(mode="down")
                down = True
            elif down and elapsed >= outage[1]:
                await sink.set_mode(mode="ok")
                down = False
            flows, systems = await snapshot(hub.journal, project)
            caption = Text(
                f"{elapsed:5.1f}s  ingest accepted {hub.ingest.stats.accepted}, duplicates "
                f"{hub.ingest.stats.duplicates}, refused {hub.ingest.stats.forged}"
                + ("   [order system DOWN]" if down else ""),
                style="red" if down else "",
            )
            live.update(Group(caption, status_table(flows, systems), systems_table(systems)))
            open_work = sum(
                f.count("pending") + f.count("leased") + f.count("retrying") for f in flows
            )
            if sender.done() and not down and open_work == 0:
                break
            if elapsed > duration + 60:
                break
            await asyncio.sleep(0.5)
    summary = await sender
    stats = sink.stats()
    hub.stop()
    await hub_task
    await sink.close()
    command = shlex.quote(sys.argv[0]) if sys.argv[0].endswith("seamline") else "seamline"
    with contextlib.suppress(Exception):
        console.print(
            f"\nsent {summary.ok} webhooks (acknowledged); the order system applied "
            f"{stats.applied} orders; dead letters are the orders with an unknown channel.\n"
            f"Try: {command} status {workdir}\n     {command} replay {workdir} --dry-run"
        )
    return 0
