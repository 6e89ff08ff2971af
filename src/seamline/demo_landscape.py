"""`seamline demo --landscape`: the demo shop's whole landscape on this machine.

A Shopify simulator sells, a real Tryton (installed into `~/.cache` the first time, seconds
after) books the sales, a 3PL simulator takes order files over SFTP and ships them, and the
hub runs `examples/demo-shop` in this process. A trickle of web orders comes in with the
faults a real shop has: duplicate webhooks throughout, one malformed webhook, and an ERP
outage midway (a proxy in front of Tryton is cut). A live table shows each flow and what each
system holds; at the end, or on Ctrl-C, everything started here is stopped, Tryton by its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from seamline.connectors.tryton.connector import TrytonOptions
from seamline.connectors.tryton.sink import TrytonSink
from seamline.engine.hub import Hub
from seamline.errors import SeamlineError
from seamline.observe import log as logs
from seamline.observe.status import OPEN_STATES, snapshot
from seamline.project import load_project
from seamline.sandbox.fault_proxy import FaultProxy
from seamline.sandbox.shopify import Faults, ShopifySimulator
from seamline.sandbox.threepl import ThreePLSimulator
from seamline.sandbox.tryton import PINS, LocalTryton
from seamline.settings import Secret

EXAMPLE = Path(__file__).parents[2] / "examples" / "demo-shop"
SEED = 7  # the example's `location_id` is this simulator seed's first location


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How long and how hard the landscape runs; times in seconds."""

    duration: float = 60.0
    rate: float = 1.0
    """Web orders per second while `duration` lasts."""
    outage: float = 8.0
    """How long the ERP is cut off, midway."""
    duplicate_rate: float = 0.1
    cancel_every: int = 10
    """Every n-th order the 3PL holds, and the shop cancels a few seconds later."""
    cancel_after: float = 5.0
    drain: float = 60.0
    """After `duration`, at most this long for open work to finish."""


@dataclass(slots=True)
class Outcome:
    project: Path
    orders: int = 0
    sales: int = 0
    erp_shipped: int = 0
    erp_cancelled: int = 0
    cancelled: int = 0
    order_files: int = 0
    shipment_files: int = 0
    fulfillments: int = 0
    duplicates: int = 0
    malformed: int = 0
    erp_refused: int = 0
    interrupted: bool = False
    flows: dict[str, dict[str, int]] = field(default_factory=dict)
    tryton_pid: int | None = None
    ports: list[int] = field(default_factory=list)


def run_landscape(*, plan: Plan, keep: Path | None, console: Console) -> Outcome:
    """Run the landscape; stop everything it started, whatever happens, before returning."""
    project_dir = _copy_example(keep)
    tryton = LocalTryton(project_dir / "sandbox" / "erp")
    if _cached(tryton):
        console.print("starting Tryton (cached in ~/.cache/seamline) ...")
    else:
        console.print("[bold]installing Tryton the first time (about 40 s; cached after)[/] ...")
    outcome = Outcome(project_dir)
    began = time.monotonic()
    try:
        tryton.start(timeout=120)
        outcome.tryton_pid = tryton.pid
        console.print(f"Tryton ready on {tryton.url} in {time.monotonic() - began:.1f} s")
        asyncio.run(_landscape(tryton, plan, outcome, console))
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        tryton.stop()
    _where_to_look(outcome, console)
    return outcome


def landscape(*, duration: float, keep: Path | None, console: Console) -> int:
    """`seamline demo --landscape`: an exit code, and the reason on the console."""
    logs.configure("error")  # the live table is the output; the journal keeps the rest
    try:
        run_landscape(plan=Plan(duration=duration), keep=keep, console=console)
    except SeamlineError as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    return 0


def _copy_example(keep: Path | None) -> Path:
    if not (EXAMPLE / "seamline.yaml").exists():
        raise SeamlineError(
            f"the demo landscape needs the example project at {EXAMPLE}, which is absent: "
            "run it from a checkout of the Seamline repository"
        )
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise SeamlineError(f"{keep} is not empty; choose a new folder for --keep")
    target = keep or Path(tempfile.mkdtemp(prefix="seamline-landscape-")) / "demo-shop"
    shutil.copytree(
        EXAMPLE, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("journal.db*")
    )
    return target


def _cached(tryton: LocalTryton) -> bool:
    marker = tryton.cache / "venv" / "seamline-pins.txt"
    month = f"template-{datetime.date.today():%Y-%m}-*"
    installed = marker.exists() and marker.read_text() == "\n".join(PINS) + "\n"
    return installed and any(tryton.cache.glob(f"{month}/ids.json"))


def _point_at(project: Path, connection: Mapping[str, tuple[str, str]]) -> None:
    """In each system file, replace its one literal connection value `old` by `new`."""
    for name, (old, new) in connection.items():
        path = project / "systems" / f"{name}.yaml"
        text = path.read_text()
        if text.count(old) != 1:
            raise SeamlineError(f"{path} has no single {old!r} to point at the sandbox")
        path.write_text(text.replace(old, new))


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """The project's variables set while it loads, as `seamline run` would find them."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _landscape(tryton: LocalTryton, plan: Plan, outcome: Outcome, console: Console) -> None:
    project_dir = outcome.project
    erp = TrytonSink(
        "demo",
        TrytonOptions(
            url=tryton.url,
            database=tryton.database,
            username=tryton.user,
            password=Secret(tryton.password),
            timeout=30.0,
        ),
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(erp.close)
        shop = await stack.enter_async_context(
            ShopifySimulator(
                seed=SEED,
                shop="seamline-demo",
                products=6,
                time_scale=0.01,
                faults=Faults(duplicate_rate=plan.duplicate_rate),
            )
        )
        warehouse = await stack.enter_async_context(
            ThreePLSimulator(
                project_dir / "sandbox" / "3pl",
                seed=SEED,
                ship_delay=30,
                time_scale=0.1,
                split_rate=0.2,
                short_rate=0.0,
                inventory_interval=200,
            )
        )
        erp_link = await stack.enter_async_context(FaultProxy(tryton.port))
        skus = sorted({v["sku"] for v in shop.store.variants.values() if v["sku"]})
        for sku in skus:
            await erp.upsert_product({"sku": sku, "name": f"Demo {sku}"})
        warehouse.set_stock(dict.fromkeys(skus, 1000))
        _point_at(
            project_dir,
            {
                "shop": ("http://127.0.0.1:8701", shop.url),
                "erp": ("http://127.0.0.1:8000", erp_link.url),
                "warehouse": ("port: 2222", f"port: {warehouse.port}"),
            },
        )
        variables = {
            "SHOP_ACCESS_TOKEN": shop.token,
            "SHOP_WEBHOOK_SECRET": shop.secret,
            "ERP_PASSWORD": tryton.password,
            "WAREHOUSE_PASSWORD": warehouse.password,
        }
        env_file = project_dir / "demo.env"
        env_file.write_text("".join(f"export {k}={v}\n" for k, v in variables.items()))
        env_file.chmod(0o600)
        with _environment(variables):
            project = load_project(project_dir)
        hub_port = _free_port()
        outcome.ports = [hub_port, shop.port, warehouse.port, erp_link.port]
        hub = Hub(project, listen=("127.0.0.1", hub_port))
        async with asyncio.TaskGroup() as tg:
            hub_task = tg.create_task(hub.run(), name="hub")
            try:
                await hub.started.wait()
                for topic in ("orders/create", "orders/cancelled"):
                    shop.subscribe(topic, f"http://127.0.0.1:{hub_port}/hooks/shop")
                warehouse.write_inventory_snapshot()
                console.print(
                    f"shop {shop.url} · ERP {tryton.url} (through {erp_link.url}) · "
                    f"3PL sftp://127.0.0.1:{warehouse.port} · hub http://127.0.0.1:{hub_port}\n"
                    f"project {project_dir}; {plan.rate:g} web order/s for {plan.duration:g} s, "
                    f"{plan.duplicate_rate:.0%} duplicate webhooks, one malformed webhook, one "
                    f"order in {plan.cancel_every} cancelled, the ERP cut for {plan.outage:g} s "
                    "midway. Ctrl-C stops everything."
                )
                await _trickle(
                    hub, hub_task, shop, warehouse, erp, erp_link, plan, outcome, console
                )
            finally:
                hub.stop()
        await _count_erp(erp, outcome)


async def _trickle(
    hub: Hub,
    hub_task: asyncio.Task[None],
    shop: ShopifySimulator,
    warehouse: ThreePLSimulator,
    erp: TrytonSink,
    erp_link: FaultProxy,
    plan: Plan,
    outcome: Outcome,
    console: Console,
) -> None:
    from seamline.cli import status_table, systems_table

    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # ours now: stop the landscape, then the hub
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, interrupted.set)
    cut_at = max(0.0, (plan.duration - plan.outage) / 2)
    malformed_at = plan.duration / 4
    began = time.monotonic()
    next_order, next_count, malformed_sent = 0.0, 0.0, False
    cancels: list[tuple[float, int]] = []
    with Live(console=console, refresh_per_second=4) as live:
        while not interrupted.is_set() and not hub_task.done():
            elapsed = time.monotonic() - began
            while elapsed < plan.duration and next_order <= elapsed:
                (order,) = shop.generate_orders(1, channel="web", test=False)
                outcome.orders += 1
                next_order += 1 / plan.rate
                if plan.cancel_every and outcome.orders % plan.cancel_every == 0:
                    # The customer calls it off before it ships: the 3PL holds it meanwhile.
                    warehouse.plan_order(str(order["id"]), hold=True)
                    cancels.append((elapsed + plan.cancel_after, int(order["id"])))
            while cancels and cancels[0][0] <= elapsed:
                shop.cancel_order(cancels.pop(0)[1])
                outcome.cancelled += 1
            if not malformed_sent and elapsed >= malformed_at:
                # Shopify's body is then not JSON, or lacks its id: the hub must refuse it.
                shop.set_faults(malformed_rate=1.0)
                shop.generate_orders(1, channel="web", test=False)
                shop.set_faults(malformed_rate=0.0)
                outcome.orders += 1
                malformed_sent = True
            down = cut_at <= elapsed < cut_at + plan.outage
            if down and not erp_link.is_cut:
                await erp_link.cut()
            elif not down and erp_link.is_cut:
                erp_link.restore()
            if elapsed >= next_count:
                await _count_erp(erp, outcome)
                next_count = elapsed + 2
            _observe(shop, warehouse, erp_link, outcome)
            flows, systems = await snapshot(hub.journal, hub.project)
            outcome.flows = {f.flow: dict(f.counts) for f in flows}
            caption = Text(
                f"{elapsed:5.1f}s  orders {outcome.orders}, webhooks accepted "
                f"{hub.ingest.stats.accepted}, duplicates {hub.ingest.stats.duplicates}"
                + ("   [ERP DOWN]" if erp_link.is_cut else ""),
                style="red" if erp_link.is_cut else "",
            )
            live.update(
                Group(
                    caption,
                    status_table(flows, systems),
                    _holdings(outcome),
                    systems_table(systems),
                )
            )
            open_work = sum(f.count(s) for f in flows for s in OPEN_STATES)
            shipped_orders = len({s.order_id for s in warehouse.shipments_written})
            settled = (
                outcome.fulfillments >= outcome.shipment_files
                and shipped_orders + outcome.cancelled >= outcome.order_files
                and not cancels
            )
            if elapsed >= plan.duration and not erp_link.is_cut and not open_work and settled:
                break
            if elapsed >= plan.duration + plan.drain:
                break
            await asyncio.sleep(0.5)
    outcome.interrupted = interrupted.is_set() or hub_task.done()


def _observe(
    shop: ShopifySimulator, warehouse: ThreePLSimulator, erp_link: FaultProxy, outcome: Outcome
) -> None:
    outcome.order_files = len(warehouse.orders_received)
    outcome.shipment_files = len(warehouse.shipments_written)
    outcome.fulfillments = sum(len(o["fulfillments"]) for o in shop.store.orders.values())
    outcome.duplicates = sum(a.duplicate for a in shop.deliveries)
    outcome.malformed = sum(a.malformed is not None for a in shop.deliveries)
    outcome.erp_refused = erp_link.refused


async def _count_erp(erp: TrytonSink, outcome: Outcome) -> None:
    """Sales, parcels shipped and sales called off in Tryton: counts for the screen (-1 when
    the ERP does not answer now; the next count will do)."""
    counts = {
        "sales": ("sale.sale", [["description", "like", "WEB #%"]]),
        "erp_shipped": ("stock.shipment.out", [["state", "=", "done"]]),
        "erp_cancelled": ("stock.shipment.out", [["state", "=", "cancelled"]]),
    }
    for name, (model, domain) in counts.items():
        found = -1
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                found = int(await erp.client.model(model, "search_count", domain))
        setattr(outcome, name, found)


def _holdings(outcome: Outcome) -> Table:
    table = Table(title="what each system holds", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("system", "holds"):
        table.add_column(column)
    sales, shipped, cancelled = (
        "?" if n < 0 else str(n)
        for n in (outcome.sales, outcome.erp_shipped, outcome.erp_cancelled)
    )
    table.add_row(
        "shop",
        f"{outcome.orders} orders ({outcome.cancelled} cancelled), {outcome.fulfillments} "
        f"fulfillments; sent {outcome.duplicates} duplicate and {outcome.malformed} malformed "
        "webhooks",
    )
    table.add_row(
        "erp",
        f"{sales} web sales, {shipped} shipments done, {cancelled} called off; "
        f"{outcome.erp_refused} connections refused",
    )
    table.add_row(
        "warehouse", f"{outcome.order_files} order files in, {outcome.shipment_files} shipped"
    )
    return table


def _where_to_look(outcome: Outcome, console: Console) -> None:
    project = outcome.project
    how = "stopped by Ctrl-C" if outcome.interrupted else "done"
    if not (project / "journal.db").exists():
        console.print(f"\n{how} before the hub started; nothing ran yet in {project}")
        return
    console.print(
        f"\n{how}: {outcome.orders} orders ({outcome.cancelled} cancelled), "
        f"{max(outcome.sales, 0)} ERP sales, {max(outcome.erp_shipped, 0)} ERP shipments done, "
        f"{outcome.order_files} 3PL order files, {outcome.fulfillments} Shopify fulfillments; "
        "simulators, hub and Tryton stopped.\n"
        f"Where to look (the variables are in {project / 'demo.env'}):\n"
        f"  source {project / 'demo.env'}\n"
        f"  seamline status {project}\n"
        f"  seamline replay {project} --dry-run\n"
        f"  journal: {project / 'journal.db'}"
    )
