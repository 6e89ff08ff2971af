"""`run_load`: a project against its simulated landscape, at a rate, under chaos, then judged.

    report = run_load(Path("examples/demo-shop"), rate=2, duration=60, drain=120,
                      chaos=["erp-down:20s@30s", "kill-hub@40s"], console=Console())
    report.held          # nothing lost, doubled or out of order, and drained in time
    report.as_json()     # the same figures for a machine

The run copies the project (the original is never touched), starts the landscape
(`landscape.py`), makes `rate` shop orders per second for `duration` seconds while the 3PL
ships and counts stock by itself and the chaos scenarios play (or, given a `Recording`,
plays a slice of real traffic `speed` times faster instead of making orders), then drains:
until nothing is
open anywhere (journal, webhooks in flight, files not yet read, parcels not yet shipped), or
`drain` seconds have passed. Then the checker (`oracle.py`) compares what the senders were
told, the journal, and what each target holds. Every loop here ends by its own deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import orjson
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from seamline.errors import SeamlineError
from seamline.sandbox.chaos import Chaos, Scenario, parse_scenario
from seamline.sandbox.load import journal
from seamline.sandbox.load.landscape import HubMode, Landscape, read_systems
from seamline.sandbox.load.oracle import Verdict, judge
from seamline.sandbox.load.recording import Recording
from seamline.sandbox.load.report import FlowFigures, LoadReport, percentile
from seamline.sandbox.tryton import LocalTryton

TICK = 0.25
SAMPLE_EVERY = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Traffic:
    """How hard and how long; times in seconds."""

    rate: float = 1.0
    """Shop orders per second while `duration` lasts."""
    duration: float = 60.0
    drain: float = 120.0
    """After `duration`, at most this long for everything open to settle."""
    cancel_every: int = 0
    """Every n-th order the 3PL holds, and the shop cancels `cancel_after` s later (0: none)."""
    cancel_after: float = 5.0
    seed: int = 7
    ship_delay: float = 3.0
    """Seconds from an order file to its parcels at the 3PL."""
    inventory_every: float = 5.0
    """Seconds between the 3PL's stock snapshots."""
    recording: Recording | None = None
    """Real traffic to play instead of generated orders (then `rate` is not used)."""
    speed: float = 1.0
    """How many times faster than recorded the recording plays."""

    def __post_init__(self) -> None:
        if not 0 < self.rate <= 1000:
            raise SeamlineError(f"rate is orders per second, above 0 and at most 1000: {self.rate}")
        if not 0 < self.speed <= 100_000:
            raise SeamlineError(f"speed is a factor above 0 and at most 100000: {self.speed}")
        if self.duration <= 0 or self.drain < 0:
            raise SeamlineError("duration is above 0 and drain not below 0 (seconds)")


@dataclass
class Progress:
    """What the run has done so far: the live view shows it, the report sums it up."""

    traffic: Traffic
    chaos: Chaos
    began: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0
    phase: Literal["traffic", "drain", "done"] = "traffic"
    orders: int = 0
    cancelled: int = 0
    held_orders: set[str] = field(default_factory=set)
    backlog: int = 0
    samples: list[tuple[float, int]] = field(default_factory=list)
    flows: dict[str, dict[str, int]] = field(default_factory=dict)
    drained_at: float | None = None
    interrupted: bool = False
    circuits: dict[str, list[str]] = field(default_factory=dict)


View = Callable[[Landscape, Progress], Awaitable[RenderableType]]
Finish = Callable[[Landscape, Progress], Awaitable[None]]


def run_load(
    project_dir: Path,
    *,
    rate: float,
    duration: float,
    drain: float,
    chaos: Iterable[str | Scenario] = (),
    console: Console,
    keep: Path | None = None,
    hub: HubMode | None = None,
    cancel_every: int = 0,
    seed: int = 7,
    recording: Recording | None = None,
    speed: float = 1.0,
) -> LoadReport:
    """Run `project_dir` (a copy of it) at `rate` orders/s for `duration` s under `chaos`, drain
    for at most `drain` s, print the report on `console` and return it.

    `hub`: `inline` (this process) or `process` (`seamline run`, which `kill-hub` needs and
    so is the default with it). `keep`: an empty folder for the copy, kept afterwards.
    `recording`: play it `speed` times faster instead (the traffic lasts as long as that
    takes; `rate`, `duration` and `cancel_every` are not used).
    """
    if recording is not None:
        if not 0 < speed <= 100_000:
            raise SeamlineError(f"speed is a factor above 0 and at most 100000: {speed:g}")
        duration = recording.span / speed + 2 * TICK
        cancel_every = 0
    traffic = Traffic(
        rate=rate,
        duration=duration,
        drain=drain,
        cancel_every=cancel_every,
        seed=seed,
        recording=recording,
        speed=speed,
    )
    report = run(project_dir, traffic=traffic, chaos=chaos, console=console, keep=keep, hub=hub)
    console.print(report.render())
    return report


def run(
    project_dir: Path,
    *,
    traffic: Traffic,
    chaos: Iterable[str | Scenario],
    console: Console,
    keep: Path | None = None,
    hub: HubMode | None = None,
    view: View | None = None,
    finish: Finish | None = None,
    on_tryton: Callable[[LocalTryton], None] | None = None,
) -> LoadReport:
    """The run behind `run_load` and `seamline demo`; `view` draws the live screen, `finish`
    looks at the landscape once more before it stops. Stops all it started before returning."""
    played = Chaos([s if isinstance(s, Scenario) else parse_scenario(s) for s in chaos])
    source = Path(project_dir)
    if not (source / "seamline.yaml").exists():
        raise SeamlineError(f"{source} is not a Seamline project (no seamline.yaml)")
    copy = copy_project(source, keep)
    systems = read_systems(copy)
    played.check({name: s.kind for name, s in systems.items()})
    mode: HubMode = hub or ("process" if played.kills_hub else "inline")
    if mode not in ("inline", "process"):
        raise SeamlineError(f"hub is `inline` or `process`, not {mode!r}")
    if played.kills_hub and mode != "process":
        raise SeamlineError("kill-hub needs the hub in a process of its own (hub='process')")
    progress = Progress(traffic, played)
    erps = [name for name, s in systems.items() if s.kind == "tryton"]
    if len(erps) > 1:
        raise SeamlineError(f"load runs start one Tryton; {', '.join(erps)} are {len(erps)}")
    tryton = LocalTryton(copy / "sandbox" / erps[0]) if erps else None
    if tryton is not None and on_tryton is not None:
        on_tryton(tryton)
    try:
        if tryton is not None:
            began = time.monotonic()
            tryton.start(timeout=120)
            console.print(f"Tryton ready on {tryton.url} in {time.monotonic() - began:.1f} s")
        return asyncio.run(_run(copy, traffic, progress, mode, tryton, console, view, finish))
    finally:
        if tryton is not None:
            tryton.stop()


def copy_project(source: Path, keep: Path | None) -> Path:
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise SeamlineError(f"{keep} is not empty; choose a new folder to keep the run in")
    # Absolute: the hub resolves a relative journal against the project, the checker not.
    target = (keep or Path(tempfile.mkdtemp(prefix="seamline-load-")) / source.name).resolve()
    shutil.copytree(
        source,
        target,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("journal.db*", "sandbox", "hub.log", "*.env"),
    )
    return target


async def _run(
    copy: Path,
    traffic: Traffic,
    progress: Progress,
    mode: HubMode,
    tryton: LocalTryton | None,
    console: Console,
    view: View | None,
    finish: Finish | None,
) -> LoadReport:
    async with Landscape.open(
        copy,
        seed=traffic.seed,
        tryton=tryton,
        hub=mode,
        ship_delay=traffic.ship_delay,
        inventory_every=traffic.inventory_every,
        recording=traffic.recording,
    ) as land:
        progress.began = time.monotonic()
        await _drive(land, progress, console, view or _view)
        if finish is not None:
            await finish(land, progress)
        # Recorded webhooks still queued or offered now are told as such, not sent meanwhile.
        await land.close_replayer()
        verdict = await judge(land)
        return _report(land, progress, verdict)


async def _drive(land: Landscape, progress: Progress, console: Console, view: View) -> None:
    traffic, chaos = progress.traffic, progress.chaos
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # ours now: stop the traffic, then the hub
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, interrupted.set)
    shops = land.shops
    next_order, next_sample = 0.0, 0.0
    cancels: list[tuple[float, int]] = []
    deadline = traffic.duration + traffic.drain
    if traffic.recording is not None:
        # An order the recording cancels was not shipped before (Shopify refuses to cancel a
        # fulfilled order): the 3PL holds it, however much faster than recorded the run plays.
        for order_id in traffic.recording.cancelled_orders():
            for warehouse in land.warehouses:
                warehouse.plan_order(order_id, hold=True)
            progress.held_orders.add(order_id)
            progress.cancelled += 1
    try:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while not interrupted.is_set():
                elapsed = progress.elapsed = time.monotonic() - progress.began
                recording = traffic.recording
                if recording is not None and not recording.done:
                    for message in recording.due(elapsed * traffic.speed):
                        land.replay(message)
                        progress.orders += 1
                elif recording is None and elapsed < traffic.duration and shops:
                    while next_order <= elapsed and next_order < traffic.duration:
                        _order(land, progress, cancels, elapsed)
                        next_order += 1 / traffic.rate
                elif progress.phase == "traffic":
                    progress.phase = "drain"
                    for warehouse in land.warehouses:
                        warehouse.periodic_snapshots = False  # the count to converge on is final
                while cancels and cancels[0][0] <= elapsed:
                    shops[0].cancel_order(cancels.pop(0)[1])
                    progress.cancelled += 1
                await chaos.tick(elapsed, land)
                if not land.hub_running and not _hub_dead_on_purpose(chaos, elapsed):
                    progress.interrupted = True
                    break
                progress.backlog = journal.backlog(land.journal_path)
                progress.flows = journal.flow_counts(land.journal_path)
                _circuits(land, progress)
                if elapsed >= next_sample:
                    progress.samples.append((round(elapsed, 1), progress.backlog))
                    next_sample = elapsed + SAMPLE_EVERY
                live.update(await view(land, progress))
                quiet = progress.phase == "drain" and elapsed >= chaos.last_end and not cancels
                if quiet and progress.backlog == 0 and _settled(land, progress):
                    progress.drained_at = elapsed
                    break
                if elapsed >= deadline:
                    break
                await asyncio.sleep(TICK)
            live.update(await view(land, progress))
    finally:
        await chaos.finish(land, progress.elapsed)
        progress.phase = "done"
        progress.interrupted = progress.interrupted or interrupted.is_set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def _order(
    land: Landscape, progress: Progress, cancels: list[tuple[float, int]], at: float
) -> None:
    (order,) = land.shops[0].generate_orders(1, channel="web", test=False)
    progress.orders += 1
    every = progress.traffic.cancel_every
    if every and progress.orders % every == 0:
        # The customer calls it off before it ships: the 3PL holds it meanwhile.
        for warehouse in land.warehouses:
            warehouse.plan_order(str(order["id"]), hold=True)
        progress.held_orders.add(str(order["id"]))
        cancels.append((at + progress.traffic.cancel_after, int(order["id"])))


def _circuits(land: Landscape, progress: Progress) -> None:
    """Circuit states the hub published (as `seamline status` shows them), as they change."""
    for system in land.stands:
        raw = journal.cursor(land.journal_path, f"budget:{system}")
        if raw is None:
            continue
        with contextlib.suppress(ValueError, AttributeError):
            state = str(orjson.loads(raw).get("circuit", "closed"))
            seen = progress.circuits.setdefault(system, [])
            if (seen[-1] if seen else "closed") != state:
                seen.append(state)


def _hub_dead_on_purpose(chaos: Chaos, elapsed: float) -> bool:
    return any(s.fault == "kill-hub" for s in chaos.active(elapsed))


def _settled(land: Landscape, progress: Progress) -> bool:
    """Nothing in flight outside the journal: webhooks, files, parcels to ship."""
    if any(shop.webhooks.pending for shop in land.shops):
        return False
    if land.replayer is not None and land.replayer.pending:
        return False
    for warehouse in land.warehouses:
        out = warehouse.root / "out"
        if any(out.glob("shp_*.csv")) or any(out.glob("inv_*.csv")):
            return False
        if any((warehouse.root / "in").glob("ord_*.csv")):
            return False
        shipped = {s.order_id for s in warehouse.shipments_written}
        waiting = {o.order_id for o in warehouse.orders_received} - shipped - progress.held_orders
        if waiting:
            return False
    return True


def _report(land: Landscape, progress: Progress, verdict: Verdict) -> LoadReport:
    traffic = progress.traffic
    path = land.journal_path
    done = journal.delivered(path)
    counts = journal.flow_counts(path)
    flows = []
    for flow in sorted(counts):
        mine = [d for d in done if d.flow == flow]
        latencies = [d.done_at - d.received_at for d in mine]
        window = max(d.done_at for d in mine) - min(d.received_at for d in mine) if mine else 0.0
        state = counts[flow]
        flows.append(
            FlowFigures(
                flow=flow,
                delivered=state.get("delivered", 0),
                open=sum(state.get(s, 0) for s in journal.OPEN),
                dead=state.get("dead", 0),
                review=state.get("review", 0),
                skipped=state.get("skipped", 0),
                throughput=len(mine) / window if window > 0 else float(len(mine)),
                p50=percentile(latencies, 0.50),
                p95=percentile(latencies, 0.95),
                p99=percentile(latencies, 0.99),
            )
        )
    attempts = [a for shop in land.shops for a in shop.deliveries]
    drain_time = (
        None if progress.drained_at is None else max(0.0, progress.drained_at - traffic.duration)
    )
    return LoadReport(
        project=str(land.project_dir),
        rate=traffic.rate,
        duration=traffic.duration,
        orders=progress.orders + _malformed_orders(progress),
        cancelled=progress.cancelled,
        acknowledged=sum(a.outcome == "delivered" for a in attempts)
        + sum(len(ids) for ids in (land.replayer.acknowledged if land.replayer else {}).values()),
        duplicates_sent=len({a.webhook_id for a in attempts if a.duplicate}),
        malformed_sent=len({a.event_id for a in attempts if a.malformed is not None}),
        flows=tuple(flows),
        backlog_max=max((n for _, n in progress.samples), default=0),
        backlog=tuple(progress.samples),
        drained=progress.drained_at is not None,
        drain_time=drain_time,
        lost=verdict.lost,
        duplicated=verdict.duplicated,
        out_of_order=verdict.out_of_order,
        parked=verdict.parked,
        findings=tuple(verdict.findings),
        checked=tuple(verdict.checked),
        chaos=tuple(progress.chaos.events),
        hub_starts=land.hub_starts,
        rejected=journal.messages(path).get("rejected", 0),
        interrupted=progress.interrupted,
        faults={
            name: {
                **({"refused": stand.cut.refused} if stand.cut.refused else {}),
                **(dict(stand.faults.stats.faults) if stand.faults else {}),
            }
            for name, stand in land.stands.items()
        },
        circuits={k: v for k, v in progress.circuits.items() if v},
        alerts=_alerts(path),
        notes=(
            *land.notes,
            *(
                f"{n} recorded {what} messages left out: the simulator does not send that topic"
                for what, n in sorted(land.left_out.items())
            ),
            *verdict.notes,
        ),
        replayed=traffic.recording.describe(traffic.speed) if traffic.recording else None,
    )


def _alerts(path: Path) -> tuple[str, ...]:
    """What the hub's alert loop told an operator during the run (firing, then resolved)."""
    from seamline.observe.alerts import STATE_CURSOR, AlertState

    raw = journal.cursor(path, STATE_CURSOR)
    if raw is None:
        return ()
    try:
        state = AlertState.load(raw)
    except (ValueError, KeyError, TypeError):
        return ("the alert state could not be read",)
    told = [f"{a.severity}: {a.summary} (still firing)" for a in state.firing.values()]
    told += [f"{a.severity}: {a.summary} (resolved)" for a in reversed(state.resolved)]
    return tuple(told)


def _malformed_orders(progress: Progress) -> int:
    return sum(s.count or 0 for s in progress.chaos.scenarios if s.fault == "malformed")


async def _view(land: Landscape, progress: Progress) -> RenderableType:
    """The load run's live screen: where it is, each flow's counts, what chaos is playing."""
    traffic = progress.traffic
    playing = ", ".join(str(s) for s in progress.chaos.active(progress.elapsed)) or "none"
    sent = (
        f"replayed {progress.orders} of {len(traffic.recording.messages)} at {traffic.speed:g}x"
        if traffic.recording
        else f"orders {progress.orders} at {traffic.rate:g}/s for {traffic.duration:g} s"
    )
    caption = Text(
        f"{progress.elapsed:5.1f}s {progress.phase}  {sent}  backlog {progress.backlog}  "
        f"hub starts {land.hub_starts}  chaos: {playing}",
        style="red" if playing != "none" else "",
    )
    table = Table(box=box.SIMPLE_HEAD, title="flows", title_justify="left")
    states = ("pending", "leased", "delivered", "skipped", "dead", "review")
    table.add_column("flow")
    for state in states:
        table.add_column(state, justify="right")
    for flow, counts in sorted(progress.flows.items()):
        table.add_row(flow, *(str(counts.get(s, 0)) for s in states))
    return Group(caption, table)
