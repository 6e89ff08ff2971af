"""A 3PL warehouse behind an SFTP file drop (vendor-apis.md §4.1), for tests and the sandbox.

```python
async with ThreePLSimulator(root, seed=1, time_scale=0.01) as sim:
    sim.set_stock({"TS-BLK-M": 10})
    ...  # the connector writes in/ord_*.csv over SFTP on sim.port
    sim.write_inventory_snapshot()
```

It scans `in/` for `ord_*.csv` (hidden and `.tmp` names are someone still writing), moves each
to `in/processed/<name>.<YYYYMMDDHHMMSS>`, and after `ship_delay` writes `out/shp_*.csv`: some
orders in two partial shipments (`split_rate`), some short-shipped (`short_rate`, or stock
too low), each with a carrier and tracking number. It keeps stock per SKU and writes full
`out/inv_*.csv` snapshots (SKUs at 0 are left out: absent means 0) every
`inventory_interval` or on `write_inventory_snapshot()`. Files are written atomically
(`.tmp`, then rename) unless a fault says otherwise.

Times are multiplied by `time_scale` (0.01: a 60 s delay takes 0.6 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import io
import os
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from seamline.connectors.sftp_csv.connector import OrderColumns, ShipmentColumns
from seamline.sandbox.threepl.server import SftpServer

Fault = Literal["late", "duplicate", "malformed", "partial"]
CARRIERS = ("DHL", "UPS", "PostNL", "bpost")


@dataclass(frozen=True, slots=True)
class Faults:
    """How often each fault hits a shipment file (0..1), drawn from the seed."""

    late: float = 0.0
    """Held back for `late_by`, then written under its original (older) name."""
    duplicate: float = 0.0
    """Written a second time under another name."""
    malformed: float = 0.0
    """One row's quantity is not a number."""
    partial: float = 0.0
    """Written in place: first cut mid-row, completed after `partial_pause`."""


@dataclass(slots=True)
class ReceivedOrder:
    order_id: str
    file: str
    lines: dict[str, int]
    order_number: str = ""
    """The merchant's order number, echoed on the shipment rows as 3PLs do."""


@dataclass(slots=True)
class WrittenShipment:
    file: str
    order_id: str
    carrier: str
    tracking_number: str
    lines: dict[str, int]
    faults: tuple[Fault, ...] = ()


@dataclass(slots=True)
class _Plan:
    split: bool | None = None
    short: bool | None = None
    hold: bool = False


@dataclass(slots=True)
class _Held:
    name: str
    data: bytes
    due: float


@dataclass(slots=True)
class _Counters:
    shipment: int = 0
    snapshot: int = 0
    tracking: int = 0


class ThreePLSimulator:
    def __init__(
        self,
        root: Path | str,
        *,
        seed: int = 1,
        port: int = 0,
        username: str = "seamline",
        password: str | None = None,
        ship_delay: float = 60.0,
        time_scale: float = 1.0,
        split_rate: float = 0.2,
        short_rate: float = 0.1,
        scan_interval: float = 5.0,
        inventory_interval: float | None = None,
        stock: Mapping[str, int] | None = None,
        faults: Faults = Faults(),
        late_by: float = 300.0,
        partial_pause: float = 30.0,
        location: str = "WH1",
    ) -> None:
        self.root = Path(root)
        self.rng = random.Random(seed)
        self.username = username
        self.password = password or f"sim-{seed}-{secrets.token_hex(8)}"
        self.ship_delay = ship_delay
        self.time_scale = time_scale
        self.split_rate = split_rate
        self.short_rate = short_rate
        self.scan_interval = scan_interval
        self.inventory_interval = inventory_interval
        self.stock: dict[str, int] = dict(stock or {})
        self.faults = faults
        self.late_by = late_by
        self.partial_pause = partial_pause
        self.location = location
        self.orders_received: list[ReceivedOrder] = []
        self.shipments_written: list[WrittenShipment] = []
        self.snapshots_written: list[str] = []
        self.periodic_snapshots = True
        """False stops the snapshots every `inventory_interval` (a load run's drain does)."""
        self.rejected_files: list[str] = []
        self._plans: dict[str, _Plan] = {}
        self._forced: list[Fault] = []
        self._held: list[_Held] = []
        self._partials: list[tuple[Path, bytes]] = []
        self._timers: list[asyncio.TimerHandle] = []
        self._count = _Counters()
        self._server = SftpServer(self.root, username=username, password=self.password, port=port)
        self._runner: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> ThreePLSimulator:
        for sub in ("in", "in/processed", "out"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        await self._server.start()
        self._runner = asyncio.create_task(self._run(), name="threepl-simulator")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        for timer in self._timers:
            timer.cancel()
        await self._server.stop()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def host_key(self) -> str:
        """The server's public host key, `ssh-ed25519 AAAA...`, as known_hosts holds it."""
        return self._server.host_key.export_public_key().decode().strip()

    @property
    def client_private_key(self) -> str:
        """A private key (OpenSSH format) this server accepts for `username`."""
        return self._server.client_key.export_private_key().decode()

    async def drop_connections(self) -> None:
        await self._server.drop_connections()

    def lose_next_rename_answer(self) -> None:
        """The next rename over SFTP is done, then the connection is cut before the answer."""
        self._server.lose_rename_answers += 1

    # --- what a test steers -------------------------------------------------------------

    def set_stock(self, stock: Mapping[str, int] | str, quantity: int | None = None) -> None:
        """`set_stock({"A": 5})` or `set_stock("A", 5)`; 0 or None removes the SKU."""
        changes = {stock: quantity or 0} if isinstance(stock, str) else dict(stock)
        for sku, units in changes.items():
            if units:
                self.stock[sku] = units
            else:
                self.stock.pop(sku, None)

    def plan_order(
        self,
        order_id: str,
        *,
        split: bool | None = None,
        short: bool | None = None,
        hold: bool = False,
    ) -> None:
        """Decide for one order instead of the rates: split it, short-ship it, or hold it (the
        warehouse keeps it, waiting for a word from the merchant, and never ships it)."""
        self._plans[order_id] = _Plan(split, short, hold)

    def fault_next(self, *faults: Fault) -> None:
        """The next shipment file gets these faults."""
        self._forced.extend(faults)

    async def scan(self) -> None:
        """Take the order files in `in/` now, not at the next scan."""
        self._take_orders()
        await asyncio.sleep(0)

    def release_held(self) -> list[str]:
        """Write the files held back as late now; their names."""
        held, self._held = self._held, []
        for h in held:
            self._write(h.name, h.data)
        return [h.name for h in held]

    def complete_partials(self) -> None:
        """Finish every file written in place now."""
        partials, self._partials = self._partials, []
        for path, rest in partials:
            with path.open("ab") as f:
                f.write(rest)

    def write_inventory_snapshot(self, *, hold: bool = False) -> str:
        """A full snapshot of stock (SKUs at 0 left out); `hold`: deliver it late."""
        self._count.snapshot += 1
        name = f"inv_{self._count.snapshot}_{_stamp()}.csv"
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["sku", "available", "location"])
        for sku, units in sorted(self.stock.items()):
            if units > 0:
                writer.writerow([sku, units, self.location])
        data = out.getvalue().encode()
        self.snapshots_written.append(name)
        if hold:
            self._held.append(_Held(name, data, self._now() + self.late_by * self.time_scale))
        else:
            self._write(name, data)
        return name

    def shipped(self, order_id: str) -> dict[str, int]:
        """Units shipped per SKU for an order, over all its shipment files."""
        total: dict[str, int] = {}
        for s in self.shipments_written:
            if s.order_id == order_id:
                for sku, units in s.lines.items():
                    total[sku] = total.get(sku, 0) + units
        return total

    # --- the warehouse ------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._scan_loop(tg))
            if self.inventory_interval is not None:
                tg.create_task(self._inventory_loop(self.inventory_interval))

    async def _scan_loop(self, tg: asyncio.TaskGroup) -> None:
        while True:
            for order in self._take_orders():
                tg.create_task(self._ship_later(order))
            now = self._now()
            due = [h for h in self._held if h.due <= now]
            for h in due:
                self._held.remove(h)
                self._write(h.name, h.data)
            await asyncio.sleep(self.scan_interval * self.time_scale)

    async def _inventory_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval * self.time_scale)
            if self.periodic_snapshots:
                self.write_inventory_snapshot()

    def _take_orders(self) -> list[ReceivedOrder]:
        taken = []
        inbox = self.root / "in"
        for path in sorted(inbox.glob("ord_*.csv"), key=lambda p: (p.stat().st_mtime, p.name)):
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
            target = inbox / "processed" / f"{path.name}.{stamp}"
            n = 1
            while target.exists():
                n += 1
                target = inbox / "processed" / f"{path.name}.{stamp}-{n}"
            os.rename(path, target)
            try:
                orders = _read_orders(target.read_bytes(), path.name)
            except ValueError:
                self.rejected_files.append(path.name)
                continue
            self.orders_received.extend(orders)
            taken.extend(orders)
        return taken

    async def _ship_later(self, order: ReceivedOrder) -> None:
        await asyncio.sleep(self.ship_delay * self.time_scale)
        plan = self._plans.get(order.order_id, _Plan())
        if plan.hold:
            return
        short = plan.short if plan.short is not None else self.rng.random() < self.short_rate
        split = plan.split if plan.split is not None else self.rng.random() < self.split_rate
        shipping: dict[str, int] = {}
        for sku, wanted in order.lines.items():
            units = min(wanted, self.stock.get(sku, wanted))
            shipping[sku] = units
        if short:
            most = max(shipping, key=lambda s: shipping[s])
            shipping[most] = max(0, shipping[most] - 1)
        for sku, units in shipping.items():
            if sku in self.stock:
                self.set_stock(sku, self.stock[sku] - units)
        parcels = _split(shipping) if split else [shipping]
        for parcel in parcels:
            if any(parcel.values()):
                self._write_shipment(order, {s: u for s, u in parcel.items() if u})

    def _write_shipment(self, order: ReceivedOrder, lines: dict[str, int]) -> None:
        order_id = order.order_id
        self._count.shipment += 1
        self._count.tracking += 1
        carrier = self.rng.choice(CARRIERS)
        tracking = f"{carrier[:2].upper()}{self.rng.randrange(10**9, 10**10)}{self._count.tracking}"
        shipped_at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        name = f"shp_{self._count.shipment}_{_stamp()}.csv"
        columns = ShipmentColumns()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        names = list(ShipmentColumns.model_fields)
        writer.writerow([getattr(columns, n) for n in names])
        faults = self._faults()
        for i, (sku, units) in enumerate(lines.items()):
            quantity = "two" if "malformed" in faults and i == len(lines) - 1 else str(units)
            row = {
                "order_id": order_id,
                "order_number": order.order_number,
                "shipment_id": f"S{self._count.shipment}",
                "carrier": carrier,
                "tracking_number": tracking,
                "tracking_url": f"https://track.example/{tracking}",
                "shipped_at": shipped_at,
                "line_id": "",
                "sku": sku,
                "quantity": quantity,
            }
            writer.writerow([row[n] for n in names])
        data = out.getvalue().encode()
        self.shipments_written.append(
            WrittenShipment(name, order_id, carrier, tracking, dict(lines), faults)
        )
        if "late" in faults:
            self._held.append(_Held(name, data, self._now() + self.late_by * self.time_scale))
        elif "partial" in faults:
            cut = data.rfind(b"\n", 0, len(data) - 1) + 3  # inside the last row
            path = self.root / "out" / name
            path.write_bytes(data[:cut])
            self._partials.append((path, data[cut:]))
            self._timers.append(
                asyncio.get_running_loop().call_later(
                    self.partial_pause * self.time_scale, self._complete, path
                )
            )
        else:
            self._write(name, data)
        if "duplicate" in faults:
            self._write(name.replace("shp_", "shp_d", 1), data)

    def _complete(self, path: Path) -> None:
        for i, (p, rest) in enumerate(self._partials):
            if p == path:
                del self._partials[i]
                with path.open("ab") as f:
                    f.write(rest)
                return

    def _faults(self) -> tuple[Fault, ...]:
        if self._forced:
            forced, self._forced = tuple(self._forced), []
            return forced
        rates: dict[Fault, float] = {
            "late": self.faults.late,
            "duplicate": self.faults.duplicate,
            "malformed": self.faults.malformed,
            "partial": self.faults.partial,
        }
        return tuple(f for f, rate in rates.items() if rate and self.rng.random() < rate)

    def _write(self, name: str, data: bytes) -> None:
        out = self.root / "out"
        temporary = out / f".{name}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, out / name)


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")


def _split(lines: dict[str, int]) -> list[dict[str, int]]:
    """Two parcels: by line when there are several, else by units."""
    skus = list(lines)
    if len(skus) > 1:
        half = len(skus) // 2
        return [{s: lines[s] for s in skus[:half]}, {s: lines[s] for s in skus[half:]}]
    sku = skus[0]
    first = lines[sku] // 2
    return [{sku: first}, {sku: lines[sku] - first}]


def _read_orders(data: bytes, name: str) -> list[ReceivedOrder]:
    columns = OrderColumns()
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    orders: dict[str, ReceivedOrder] = {}
    for row in reader:
        order_id = row.get(columns.order_id) or ""
        sku = row.get(columns.sku) or ""
        quantity = int(row.get(columns.quantity) or "x")
        if not order_id or not sku:
            raise ValueError(f"{name}: a row without order id or SKU")
        order = orders.setdefault(
            order_id, ReceivedOrder(order_id, name, {}, row.get(columns.order_number) or "")
        )
        order.lines[sku] = order.lines.get(sku, 0) + quantity
    if not orders:
        raise ValueError(f"{name}: no rows")
    return list(orders.values())
