"""`seamline demo --landscape`: the demo shop's whole landscape on this machine.

A Shopify simulator sells, a real Tryton (installed into `~/.cache` the first time, seconds
after) books the sales, a 3PL simulator takes order files over SFTP and ships them, and the
hub runs `examples/demo-shop` in this process. A trickle of web orders comes in with the
faults a real shop has: duplicate webhooks throughout, one malformed webhook, and an ERP
outage midway (a proxy in front of Tryton is cut). A live table shows each flow and what each
system holds; at the end, or on Ctrl-C, everything started here is stopped, Tryton by its PID.

It is a load run (`seamline.sandbox.load`) at a gentle rate with three chaos scenarios and a
screen of its own; the same checker then says whether anything was lost or doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from seamline.errors import SeamlineError
from seamline.observe import log as logs
from seamline.observe.status import snapshot
from seamline.sandbox.load import Landscape, LoadReport, Progress, Traffic, run
from seamline.sandbox.tryton import DEFAULT_CACHE, PINS

EXAMPLE = Path(__file__).parents[2] / "examples" / "demo-shop"
DEMO_USER = "demo"
"""The console's operator in the demo; the password is made per run and printed."""
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

    def chaos(self) -> list[str]:
        """The demo's faults as chaos scenarios (`seamline.sandbox.chaos`)."""
        cut_at = max(0.0, (self.duration - self.outage) / 2)
        scenarios = [f"malformed:shop@{self.duration / 4:g}s,count=1"]
        if self.duplicate_rate > 0:
            scenarios.append(f"duplicate:shop:{self.duration:g}s@0s,rate={self.duplicate_rate:g}")
        if self.outage > 0:
            scenarios.append(f"erp-down:{self.outage:g}s@{cut_at:g}s")
        return scenarios


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
    report: LoadReport | None = None
    console_password: str = ""
    """The demo operator's password for this run (the console is on the hub's port)."""


def run_landscape(*, plan: Plan, keep: Path | None, console: Console) -> Outcome:
    """Run the landscape; stop everything it started, whatever happens, before returning."""
    if not (EXAMPLE / "seamline.yaml").exists():
        raise SeamlineError(
            f"the demo landscape needs the example project at {EXAMPLE}, which is absent: "
            "run it from a checkout of the Seamline repository"
        )
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise SeamlineError(f"{keep} is not empty; choose a new folder for --keep")
    if _cached():
        console.print("starting Tryton (cached in ~/.cache/seamline) ...")
    else:
        console.print("[bold]installing Tryton the first time (about 40 s; cached after)[/] ...")
    outcome = Outcome(keep or Path())
    screen = _Screen(plan, outcome, console)
    traffic = Traffic(
        rate=plan.rate,
        duration=plan.duration,
        drain=plan.drain,
        cancel_every=plan.cancel_every,
        cancel_after=plan.cancel_after,
        seed=SEED,
        ship_delay=3.0,
        inventory_every=20.0,
    )
    try:
        outcome.report = run(
            EXAMPLE,
            traffic=traffic,
            chaos=plan.chaos(),
            console=console,
            keep=keep,
            hub="inline",
            view=screen.draw,
            finish=screen.finish,
            on_tryton=lambda tryton: setattr(outcome, "project", tryton.dir.parents[1]),
        )
        outcome.interrupted = outcome.report.interrupted
    except KeyboardInterrupt:
        outcome.interrupted = True
    if outcome.report is not None:
        console.print(outcome.report.render())
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


def _cached() -> bool:
    marker = DEFAULT_CACHE / "venv" / "seamline-pins.txt"
    month = f"template-{datetime.date.today():%Y-%m}-*"
    installed = marker.exists() and marker.read_text() == "\n".join(PINS) + "\n"
    return installed and any(DEFAULT_CACHE.glob(f"{month}/ids.json"))


class _Screen:
    """The demo's live view: each flow, what each system holds, and the systems' health."""

    def __init__(self, plan: Plan, outcome: Outcome, console: Console) -> None:
        self.plan = plan
        self.outcome = outcome
        self.console = console
        self.introduced = False
        self.next_count = 0.0

    async def draw(self, land: Landscape, progress: Progress) -> RenderableType:
        from seamline.cli import status_table, systems_table

        outcome = self.outcome
        if not self.introduced:
            await self._console_user(land)
            self._introduce(land)
        if progress.elapsed >= self.next_count or progress.phase == "done":
            await _count_erp(land, outcome)
            self.next_count = progress.elapsed + 2
        _observe(land, progress, outcome)
        assert land.hub is not None
        flows, systems = await snapshot(land.hub.journal, land.hub.project)
        outcome.flows = {f.flow: dict(f.counts) for f in flows}
        erp_down = land.stands["erp"].cut.is_cut
        caption = Text(
            f"{progress.elapsed:5.1f}s  orders {outcome.orders}, webhooks accepted "
            f"{land.hub.ingest.stats.accepted}, duplicates {land.hub.ingest.stats.duplicates}"
            + ("   [ERP DOWN]" if erp_down else ""),
            style="red" if erp_down else "",
        )
        return Group(
            caption, status_table(flows, systems), _holdings(outcome), systems_table(systems)
        )

    async def _console_user(self, land: Landscape) -> None:
        """An operator for the console, with a password made for this run (printed once)."""
        from seamline.console.access import Access

        assert land.hub is not None
        self.outcome.console_password = secrets.token_urlsafe(12)
        await Access(land.hub.journal).add_user(
            DEMO_USER, "operator", self.outcome.console_password, actor="demo"
        )

    def _introduce(self, land: Landscape) -> None:
        self.introduced = True
        outcome, plan = self.outcome, self.plan
        outcome.project = land.project_dir
        outcome.ports = land.ports
        outcome.tryton_pid = land.tryton.pid if land.tryton else None
        # The variables a user needs to look at the run afterwards (`seamline status`).
        env_file = land.project_dir / "demo.env"
        env_file.touch(0o600)
        env_file.write_text("".join(f"export {k}={v}\n" for k, v in land.environment.items()))
        stands = land.stands
        tryton = land.tryton
        assert tryton is not None
        self.console.print(
            f"shop {land.shop('shop').url} · ERP {tryton.url} (through {stands['erp'].cut.url})"
            f" · 3PL sftp://127.0.0.1:{stands['warehouse'].cut.port}"
            f" · hub http://127.0.0.1:{land.hub_port}\n"
            f"console http://127.0.0.1:{land.hub_port}/ (user {DEMO_USER}, password "
            f"{outcome.console_password})\n"
            f"project {land.project_dir}; {plan.rate:g} web order/s for {plan.duration:g} s, "
            f"{plan.duplicate_rate:.0%} duplicate webhooks, one malformed webhook, one "
            f"order in {plan.cancel_every} cancelled, the ERP cut for {plan.outage:g} s "
            "midway. Ctrl-C stops everything."
        )

    async def finish(self, land: Landscape, progress: Progress) -> None:
        await _count_erp(land, self.outcome)
        _observe(land, progress, self.outcome)


def _observe(land: Landscape, progress: Progress, outcome: Outcome) -> None:
    shop = land.shops[0]
    warehouse = land.warehouses[0]
    deliveries = shop.deliveries
    outcome.malformed = len({a.event_id for a in deliveries if a.malformed is not None})
    outcome.orders = progress.orders + outcome.malformed
    outcome.cancelled = progress.cancelled
    outcome.order_files = len(warehouse.orders_received)
    outcome.shipment_files = len(warehouse.shipments_written)
    outcome.fulfillments = sum(len(o["fulfillments"]) for o in shop.store.orders.values())
    outcome.duplicates = sum(a.duplicate for a in deliveries)
    outcome.erp_refused = land.stands["erp"].cut.refused
    outcome.interrupted = progress.interrupted


async def _count_erp(land: Landscape, outcome: Outcome) -> None:
    """Sales, parcels shipped and sales called off in Tryton: counts for the screen (-1 when
    the ERP does not answer now; the next count will do)."""
    assert land.erp is not None
    counts = {
        "sales": ("sale.sale", [["description", "like", "WEB #%"]]),
        "erp_shipped": ("stock.shipment.out", [["state", "=", "done"]]),
        "erp_cancelled": ("stock.shipment.out", [["state", "=", "cancelled"]]),
    }
    for name, (model, domain) in counts.items():
        found = -1
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                found = int(await land.erp.client.model(model, "search_count", domain))
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
        f"  the console, while a hub runs on it: seamline run {project} (user {DEMO_USER}, "
        f"password {outcome.console_password})\n"
        f"  seamline replay {project} --dry-run\n"
        f"  journal: {project / 'journal.db'}"
    )
