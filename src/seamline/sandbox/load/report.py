"""What a load run found: figures per flow, the backlog, and the three numbers that must be 0.

`lost`: an acknowledged webhook without its message in the journal, a delivery not settled
when the drain ended, or a delivered delivery whose effect the target does not hold.
`duplicated`: an effect the target holds twice (two sales with one reference, two order files
for one order, two fulfillments with one tracking number, a key the recording sink applied
twice). `out_of_order`: a key whose effects the target shows in another order than the
journal's (a stale stock level that won, a sequence applied backwards, a later delivery of
a key applied before an earlier one). Deliveries left dead or in review are `parked`: not
lost (an operator sees each), but named in the findings with their error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from seamline.sandbox.chaos import ChaosEvent


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (`share` in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowFigures:
    flow: str
    delivered: int
    open: int
    dead: int
    review: int
    skipped: int
    throughput: float
    """Deliveries per second, from the first message acknowledged to the last delivered."""
    p50: float | None
    p95: float | None
    p99: float | None
    """Latency in seconds, acknowledged → delivered."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One thing behind a number that must be 0, said so an operator can look it up."""

    what: str
    """`lost`, `duplicated` or `out_of_order`."""
    flow: str
    key: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadReport:
    project: str
    rate: float
    duration: float
    orders: int
    """Orders the traffic made in the shop (malformed ones included)."""
    cancelled: int
    """Orders the shop cancelled (the 3PL held them)."""
    acknowledged: int
    """Webhooks the hub answered 2xx (duplicates included)."""
    duplicates_sent: int
    malformed_sent: int
    flows: tuple[FlowFigures, ...]
    backlog_max: int
    backlog: tuple[tuple[float, int], ...]
    """(seconds into the run, open work) sampled through the run."""
    drained: bool
    drain_time: float | None
    """Seconds after the traffic stopped until nothing was open; None if the drain ran out."""
    lost: int
    duplicated: int
    out_of_order: int
    parked: int = 0
    """Deliveries dead or in review at the end: an operator's work, each in `findings`."""
    findings: tuple[Finding, ...] = ()
    checked: tuple[str, ...] = ()
    """The effects compared at the targets, in words."""
    chaos: tuple[ChaosEvent, ...] = ()
    hub_starts: int = 1
    rejected: int = 0
    """Messages the hub refused as malformed (journaled, visible, not delivered)."""
    interrupted: bool = False
    faults: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per system, the faults its proxies played (`refused`: connections while cut)."""
    circuits: dict[str, list[str]] = field(default_factory=dict)
    """Per target, the circuit states an operator saw other than closed, in order."""
    alerts: tuple[str, ...] = ()
    """The alerts that fired during the run (the journal is the run's own), as an operator
    was told them: severity, what, and whether it resolved."""
    notes: tuple[str, ...] = field(default=())
    replayed: str | None = None
    """What recorded traffic was played instead of generated orders (then `orders` counts
    its messages)."""

    @property
    def held(self) -> bool:
        """Nothing lost, doubled or reordered, and the drain finished."""
        return self.drained and not (self.lost or self.duplicated or self.out_of_order)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["held"] = self.held
        return data

    def render(self) -> RenderableType:
        flows = Table(title="flows", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("flow", "delivered", "open", "dead", "review", "skipped", "per s"):
            flows.add_column(column, justify="left" if column == "flow" else "right")
        for column in ("p50", "p95", "p99"):
            flows.add_column(f"{column} s", justify="right")
        for f in self.flows:
            flows.add_row(
                f.flow,
                str(f.delivered),
                str(f.open),
                _bad(f.dead),
                _bad(f.review),
                str(f.skipped),
                f"{f.throughput:.2f}",
                *(_seconds(v) for v in (f.p50, f.p95, f.p99)),
            )
        zero = Table(title="must be zero", title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("lost", "duplicated effects", "out-of-order effects"):
            zero.add_column(column, justify="right")
        zero.add_row(*(_bad(n) for n in (self.lost, self.duplicated, self.out_of_order)))
        drain = (
            f"drained {self.drain_time:.1f} s after the traffic stopped"
            if self.drain_time is not None
            else "[red]not drained[/] when the drain time ran out"
        )
        traffic = (
            f"{self.replayed} in {self.duration:.0f} s; "
            if self.replayed
            else f"{self.orders} orders at {self.rate:g}/s for {self.duration:g} s "
            f"({self.cancelled} cancelled); "
        )
        head = Text.from_markup(
            traffic
            + f"{self.acknowledged} webhooks acknowledged ({self.duplicates_sent} duplicates, "
            f"{self.malformed_sent} malformed sent, {self.rejected} refused); "
            f"backlog at most {self.backlog_max}; {drain}; hub started {self.hub_starts} times; "
            f"{self.parked} deliveries dead or in review"
        )
        parts: list[RenderableType] = [head, flows, zero]
        if self.chaos:
            chaos = Table(title="chaos", title_justify="left", box=box.SIMPLE_HEAD)
            chaos.add_column("at s", justify="right")
            chaos.add_column("scenario")
            chaos.add_column("what happened")
            for e in self.chaos:
                chaos.add_row(f"{e.at:.1f}", e.scenario, e.what)
            parts.append(chaos)
        seen = [
            f"{system}: {', '.join(f'{n} {kind}' for kind, n in sorted(played.items()))}"
            for system, played in sorted(self.faults.items())
            if played
        ]
        seen += [
            f"{system} circuit {' → '.join(states)}" for system, states in self.circuits.items()
        ]
        if seen:
            parts.append(Text("faults played and seen: " + "; ".join(seen)))
        if self.alerts:
            parts.append(Text("alerts an operator got: " + "; ".join(self.alerts)))
        if self.findings:
            found = Table(title="findings", title_justify="left", box=box.SIMPLE_HEAD)
            for column in ("what", "flow", "key", "detail"):
                found.add_column(column)
            for finding in self.findings[:20]:
                found.add_row(finding.what, finding.flow, finding.key, finding.detail)
            parts.append(found)
        verdict = (
            "[green]held[/]: nothing lost, doubled or out of order"
            if self.held
            else "[red]did not hold[/]"
        )
        parts.append(Text.from_markup(f"{verdict}; checked: {'; '.join(self.checked)}"))
        parts.extend(Text(note, style="dim") for note in self.notes)
        return Group(*parts)


def _bad(n: int) -> str:
    return f"[red]{n}[/]" if n else "0"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
