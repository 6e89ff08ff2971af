"""A project's systems, simulated on loopback, and its hub: what load, chaos and the demo run on.

`Landscape.open(project_dir, ...)` reads `systems/*.yaml` of a copy of the project and starts
one stand-in per system, by kind:

| kind       | stand-in                                   | pointed at it through          |
|------------|--------------------------------------------|--------------------------------|
| `shopify`  | `ShopifySimulator` (webhooks to the hub)   | `base_url`, `location_id`      |
| `tryton`   | a real Tryton (`LocalTryton`, started before) | `url`, `database`, `username` |
| `sftp_csv` | `ThreePLSimulator` (ships, counts stock)   | `host`, `port`, `known_host_key` |
| `http`     | `RecordingSink` (if it is a target)        | `base_url`                     |
|            | a new signing secret (if it is a source)   | `secrets`                      |

Every stand-in sits behind a TCP `FaultProxy` (to cut it), and every HTTP one also behind an
`HttpFaultProxy` (429s, 5xx, slow, lost answers, resets): hub → cut proxy → fault proxy →
stand-in. Credentials go into the copy as `${VARIABLE}` references, never as values; the
values are in `Landscape.environment`, set while the project loads (hub in this process) or
given to the hub process (`hub="process"`, the one chaos may kill -9 and start again).

With a `Recording` (a slice of real traffic, `recording.py`), its SKUs become products of
the shop simulator (so the 3PL stocks them and Tryton knows them) and `replay` sends its
messages: Shopify's through the shop simulator, generic webhooks through `WebhookReplay`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import yaml

from seamline.connectors.tryton.connector import TrytonOptions
from seamline.connectors.tryton.sink import TrytonSink
from seamline.engine.hub import Hub
from seamline.errors import SeamlineError
from seamline.project import load_project
from seamline.sandbox.fault_proxy import FaultProxy
from seamline.sandbox.http_faults import HttpFaultProxy
from seamline.sandbox.load.recording import Recorded, Recording, WebhookReplay
from seamline.sandbox.recording_sink import RecordingSink, start_recording_sink
from seamline.sandbox.shopify import ShopifySimulator
from seamline.sandbox.shopify.webhooks import TOPICS as SHOP_TOPICS
from seamline.sandbox.shopify.webhooks import DeliveryOptions
from seamline.sandbox.threepl import ThreePLSimulator
from seamline.sandbox.tryton import LocalTryton
from seamline.settings import Secret, parse_duration

HubMode = Literal["inline", "process"]
KINDS = ("shopify", "tryton", "sftp_csv", "http")
TOPICS = {"order.created": "orders/create", "order.cancelled": "orders/cancelled"}
"""Canonical events the traffic makes, and the Shopify topic that carries each."""
_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
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


@dataclass
class SystemFile:
    name: str
    kind: str
    path: Path
    document: dict[str, Any]

    @property
    def connection(self) -> dict[str, Any]:
        found = self.document.setdefault("connection", {})
        if not isinstance(found, dict):
            raise SeamlineError(f"{self.path}: `connection` is not a mapping")
        return found

    def timeout(self, default: float = 10.0) -> float:
        value = self.connection.get("timeout")
        return default if value is None else parse_duration(value)


def read_systems(project_dir: Path) -> dict[str, SystemFile]:
    found = {}
    for path in sorted((project_dir / "systems").glob("*.yaml")):
        document = yaml.safe_load(path.read_text()) or {}
        if not isinstance(document, dict):
            raise SeamlineError(f"{path} is not a mapping")
        found[path.stem] = SystemFile(path.stem, str(document.get("kind", "")), path, document)
    return found


def shop_events(project_dir: Path) -> dict[str, set[str]]:
    """Per system, the events flows take from it (`source.events`)."""
    events: dict[str, set[str]] = {}
    for path in sorted((project_dir / "flows").glob("*.yaml")):
        flow = yaml.safe_load(path.read_text()) or {}
        source = flow.get("source") or {}
        events.setdefault(str(source.get("system")), set()).update(source.get("events") or [])
    return events


def flow_sources(project_dir: Path) -> dict[str, tuple[str, set[str]]]:
    """Per flow, its source system and events."""
    sources = {}
    for path in sorted((project_dir / "flows").glob("*.yaml")):
        source = (yaml.safe_load(path.read_text()) or {}).get("source") or {}
        sources[path.stem] = (str(source.get("system")), set(source.get("events") or []))
    return sources


def flow_targets(project_dir: Path) -> dict[str, tuple[str, str]]:
    """Per flow, its target system and operation."""
    targets = {}
    for path in sorted((project_dir / "flows").glob("*.yaml")):
        flow = yaml.safe_load(path.read_text()) or {}
        target = flow.get("target") or {}
        targets[path.stem] = (str(target.get("system")), str(target.get("operation")))
    return targets


@dataclass
class Stand:
    """One system's stand-in and the proxies in front of it."""

    name: str
    kind: str
    cut: FaultProxy
    faults: HttpFaultProxy | None = None
    shop: ShopifySimulator | None = None
    warehouse: ThreePLSimulator | None = None
    sink: RecordingSink | None = None
    timeout: float = 10.0


@dataclass
class Landscape:
    """The running stand-ins and hub; build it with `Landscape.open`."""

    project_dir: Path
    stands: dict[str, Stand]
    environment: dict[str, str]
    hub_port: int
    hub_mode: HubMode
    tryton: LocalTryton | None
    erp: TrytonSink | None
    """A client of the Tryton stand-in (direct, not through the proxies), to read effects."""
    skus: list[str] = field(default_factory=list)
    webhook_secrets: dict[str, str] = field(default_factory=dict)
    """Per generic `http` source, the secret the sandbox signs its webhooks with."""
    replayer: WebhookReplay | None = None
    notes: list[str] = field(default_factory=list)
    """What the run changed in the copy that its report should say."""
    left_out: Counter[str] = field(default_factory=Counter)
    """Recorded messages of topics the shop simulator does not send, per system and topic."""
    hub: Hub | None = None
    hub_starts: int = 0
    hub_kills: int = 0
    _task: asyncio.Task[None] | None = None
    _process: subprocess.Popen[bytes] | None = None

    # --- reaching the stand-ins ---------------------------------------------------------

    def of_kind(self, kind: str) -> list[Stand]:
        return [s for s in self.stands.values() if s.kind == kind]

    @property
    def shops(self) -> list[ShopifySimulator]:
        return [s.shop for s in self.stands.values() if s.shop is not None]

    @property
    def warehouses(self) -> list[ThreePLSimulator]:
        return [s.warehouse for s in self.stands.values() if s.warehouse is not None]

    @property
    def journal_path(self) -> Path:
        return self.project_dir / "journal.db"

    @property
    def ports(self) -> list[int]:
        ports = [self.hub_port]
        for s in self.stands.values():
            ports.append(s.cut.port)
            if s.faults is not None:
                ports.append(s.faults.port)
        return ports

    # --- recorded traffic ----------------------------------------------------------------

    def replay(self, message: Recorded) -> None:
        """Send one recorded message to the hub, as its system sent it."""
        address = f"http://127.0.0.1:{self.hub_port}/hooks/{message.system}"
        stand = self.stands.get(message.system)
        if stand is not None and stand.shop is not None:
            if message.topic not in SHOP_TOPICS:
                # Shopify would not send it to a subscription either; the report says so.
                self.left_out[f"{message.system} {message.topic or '(no topic)'}"] += 1
                return
            stand.shop.replay(message.topic, message.body, address=address)
            return
        if self.replayer is None:
            self.replayer = WebhookReplay(self.webhook_secrets, f"http://127.0.0.1:{self.hub_port}")
        self.replayer.send(message)

    # --- chaos levers (`seamline.sandbox.chaos.Levers`) ---------------------------------

    async def cut(self, system: str) -> None:
        await self.stands[system].cut.cut()

    def restore(self, system: str) -> None:
        self.stands[system].cut.restore()

    def http_faults(self, system: str) -> HttpFaultProxy:
        proxy = self.stands[system].faults
        if proxy is None:
            raise SeamlineError(f"{system} has no HTTP fault proxy in front of it")
        return proxy

    def shop(self, system: str) -> ShopifySimulator:
        shop = self.stands[system].shop
        if shop is None:
            raise SeamlineError(f"{system} is not a Shopify simulator")
        return shop

    def timeout(self, system: str) -> float:
        return self.stands[system].timeout

    def write_marker(self, system: str) -> bytes | None:
        from seamline.sandbox.chaos import WRITES

        return WRITES.get(self.stands[system].kind)

    def send_malformed(self, system: str, count: int) -> None:
        shop = self.shop(system)
        # Shopify's body is then not JSON, or lacks its id: the hub must refuse it, and say so.
        before = shop.faults.malformed_rate
        shop.set_faults(malformed_rate=1.0)
        try:
            shop.generate_orders(count, channel="web", test=False)
        finally:
            shop.set_faults(malformed_rate=before)

    async def kill_hub(self) -> None:
        if self._process is None:
            raise SeamlineError("kill-hub needs the hub in a process of its own (hub='process')")
        self._process.kill()  # SIGKILL: no shutdown code runs
        await asyncio.to_thread(self._process.wait, 30)
        self.hub_kills += 1

    async def start_hub(self, *, within: float = 60.0) -> None:
        """Start the hub (again, on the same journal) and wait until it takes webhooks."""
        self.hub_starts += 1
        if self.hub_mode == "inline":
            with environment(self.environment):
                project = load_project(self.project_dir)
            self.hub = Hub(project, listen=("127.0.0.1", self.hub_port))
            self._task = asyncio.create_task(self.hub.run(), name="hub")
            started = asyncio.create_task(self.hub.started.wait())
            await asyncio.wait({started, self._task}, timeout=within, return_when="FIRST_COMPLETED")
            if not self.hub.started.is_set():
                started.cancel()
                if self._task.done():
                    self._task.result()  # the hub's own error, as it raised it
                raise SeamlineError(f"the hub did not start within {within:.0f} s")
            return
        log = (self.project_dir / "hub.log").open("ab")
        try:
            self._process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; readiness below
                [
                    sys.executable,
                    "-m",
                    "seamline.cli",
                    "run",
                    str(self.project_dir),
                    "--listen",
                    f"127.0.0.1:{self.hub_port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.environment},
                start_new_session=True,  # Ctrl-C on the terminal is ours to pass on, in order
            )
        finally:
            log.close()
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise SeamlineError(
                        f"the hub exited ({self._process.returncode}); its log: "
                        f"{self.project_dir / 'hub.log'}"
                    )
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(f"http://127.0.0.1:{self.hub_port}/readyz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise SeamlineError(f"the hub did not become ready within {within:.0f} s")

    async def close_replayer(self) -> None:
        if self.replayer is not None:
            await self.replayer.close()

    @property
    def hub_running(self) -> bool:
        if self.hub_mode == "inline":
            return self._task is not None and not self._task.done()
        return self._process is not None and self._process.poll() is None

    async def stop_hub(self) -> None:
        if self.hub is not None and self._task is not None:
            self.hub.stop()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 60)
            self._task = None
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self._process.wait, 60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                await asyncio.to_thread(self._process.wait, 30)

    # --- start-up -----------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        project_dir: Path,
        *,
        seed: int,
        tryton: LocalTryton | None,
        hub: HubMode,
        stock: int = 1000,
        ship_delay: float = 3.0,
        inventory_every: float = 5.0,
        recording: Recording | None = None,
    ) -> AsyncIterator[Landscape]:
        """Start every stand-in, point the project at them, start the hub; stop all on exit.

        `tryton` is a started `LocalTryton` when the project has a `tryton` system;
        `recording` the real traffic the run will replay (its SKUs are stocked everywhere).
        """
        systems = read_systems(project_dir)
        unknown = {s.name: s.kind for s in systems.values() if s.kind not in KINDS}
        if unknown:
            raise SeamlineError(
                f"no simulator for {', '.join(f'{n} ({k})' for n, k in unknown.items())}; "
                f"load runs simulate {', '.join(KINDS)}"
            )
        note = _own_journal(project_dir)
        async with contextlib.AsyncExitStack() as stack:
            start = _Starter(stack, project_dir, seed)
            # The variable would win over the copy's seamline.yaml: it names the copy's too.
            start.variables["SEAMLINE_JOURNAL_URL"] = str((project_dir / "journal.db").resolve())
            erp: TrytonSink | None = None
            for system in systems.values():
                if system.kind == "tryton":
                    if tryton is None:
                        raise SeamlineError(f"{system.name} is a Tryton: start a LocalTryton first")
                    erp = await start.tryton(system, tryton)
            for system in systems.values():
                if system.kind == "shopify":
                    shop = await start.shop(system)
                    if recording is not None:
                        shop.store.adopt_skus(recording.order_lines(system.name))
                elif system.kind == "http" and system.connection.get("secrets"):
                    start.webhook_secret(system)
            skus = sorted(
                {str(v["sku"]) for s in start.stands.values() if s.shop for v in _variants(s.shop)}
            )
            for system in systems.values():
                if system.kind == "sftp_csv":
                    warehouse = await start.warehouse(system, ship_delay, inventory_every)
                    warehouse.set_stock(dict.fromkeys(skus, stock))
                elif system.kind == "http" and system.connection.get("base_url"):
                    await start.sink(system)  # an `http` system that only sends needs none
            for system in systems.values():
                system.path.write_text(
                    "# Pointed at the load sandbox by `seamline load`; credentials are variables.\n"
                    + yaml.safe_dump(system.document, sort_keys=False)
                )
            if erp is not None:
                for sku in skus:
                    await erp.upsert_product({"sku": sku, "name": f"Load {sku}"})
            land = cls(
                project_dir=project_dir,
                stands=start.stands,
                environment=start.variables,
                hub_port=free_port(),
                hub_mode=hub,
                tryton=tryton,
                erp=erp,
                skus=skus,
                webhook_secrets=start.webhook_secrets,
                notes=[note] if note else [],
            )
            stack.push_async_callback(land.stop_hub)
            stack.push_async_callback(land.close_replayer)
            await land.start_hub()
            for warehouse in land.warehouses:
                warehouse.write_inventory_snapshot()
            events = shop_events(project_dir)
            for stand in land.stands.values():
                for event in sorted(events.get(stand.name, ())):
                    if stand.shop is not None and event in TOPICS:
                        stand.shop.subscribe(
                            TOPICS[event], f"http://127.0.0.1:{land.hub_port}/hooks/{stand.name}"
                        )
            yield land


def _own_journal(project_dir: Path) -> str | None:
    """The run's journal is `journal.db` in the copy, whatever the project (or
    `SEAMLINE_JOURNAL_URL`) names: a run never writes to the project's own journal. Says so
    when the project names another."""
    settings = yaml.safe_load((project_dir / "seamline.yaml").read_text()) or {}
    named = str(settings.get("journal", "journal.db"))
    settings["journal"] = "journal.db"
    (project_dir / "seamline.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    if named.startswith("postgres"):
        return (
            "the run journals to SQLite in its own copy (journal.db); the project's PostgreSQL "
            "journal was not touched"
        )
    return None


class _Starter:
    """Starts one stand-in per system, points its file at it, collects the credentials."""

    def __init__(self, stack: contextlib.AsyncExitStack, project_dir: Path, seed: int) -> None:
        self.stack = stack
        self.project_dir = project_dir
        self.seed = seed
        self.stands: dict[str, Stand] = {}
        self.variables: dict[str, str] = {}
        self.webhook_secrets: dict[str, str] = {}

    async def tryton(self, system: SystemFile, tryton: LocalTryton) -> TrytonSink:
        """Point at the running Tryton; a client straight to it, to seed and to read effects."""
        erp = TrytonSink(
            "load",
            TrytonOptions(
                url=tryton.url,
                database=tryton.database,
                username=tryton.user,
                password=Secret(tryton.password),
                timeout=30.0,
            ),
        )
        self.stack.push_async_callback(erp.close)
        stand = self.stands[system.name] = await self._http(system, tryton.port)
        system.connection.update(
            url=stand.cut.url,
            database=tryton.database,
            username=tryton.user,
            password=self._secret(system, "password", tryton.password),
        )
        return erp

    async def shop(self, system: SystemFile) -> ShopifySimulator:
        domain = str(system.connection.get("shop", "seamline-load.myshopify.com"))
        shop = await self.stack.enter_async_context(
            ShopifySimulator(
                seed=self.seed,
                shop=domain.removesuffix(".myshopify.com"),
                products=6,
                time_scale=0.01,
                # A hub restart fails many deliveries in a row: Shopify counts failures over
                # hours before it deletes a subscription, not over one second.
                delivery=DeliveryOptions(remove_after_failures=1_000_000),
            )
        )
        stand = self.stands[system.name] = await self._http(system, shop.port)
        stand.shop = shop
        connection = system.connection
        connection["base_url"] = stand.cut.url
        connection["access_token"] = self._secret(system, "access_token", shop.token)
        connection["secrets"] = [self._secret(system, "secrets", shop.secret)]
        if "location_id" in connection:
            connection["location_id"] = str(min(shop.store.locations))
        return shop

    async def warehouse(
        self, system: SystemFile, ship_delay: float, inventory_every: float
    ) -> ThreePLSimulator:
        warehouse = await self.stack.enter_async_context(
            ThreePLSimulator(
                self.project_dir / "sandbox" / system.name,
                seed=self.seed,
                ship_delay=ship_delay * 10,
                time_scale=0.1,
                split_rate=0.2,
                short_rate=0.0,
                inventory_interval=inventory_every * 10,
                location=str(system.connection.get("location_id") or "WH1"),
            )
        )
        cut = await self.stack.enter_async_context(FaultProxy(warehouse.port))
        self.stands[system.name] = Stand(
            system.name, system.kind, cut, warehouse=warehouse, timeout=system.timeout()
        )
        connection = system.connection
        connection.pop("insecure_accept_any_host_key", None)
        connection.update(
            host="127.0.0.1",
            port=cut.port,
            username=warehouse.username,
            known_host_key=warehouse.host_key,
            password=self._secret(system, "password", warehouse.password),
        )
        return warehouse

    async def sink(self, system: SystemFile) -> RecordingSink:
        (self.project_dir / "sandbox").mkdir(exist_ok=True)
        sink = await start_recording_sink(
            db_path=self.project_dir / "sandbox" / f"{system.name}.db", key_field="id"
        )
        self.stack.push_async_callback(sink.close)
        stand = self.stands[system.name] = await self._http(system, sink.port)
        stand.sink = sink
        system.connection["base_url"] = stand.cut.url
        return sink

    async def _http(self, system: SystemFile, port: int) -> Stand:
        faults = await self.stack.enter_async_context(HttpFaultProxy(port))
        cut = await self.stack.enter_async_context(FaultProxy(faults.port))
        return Stand(system.name, system.kind, cut, faults=faults, timeout=system.timeout())

    def webhook_secret(self, system: SystemFile) -> str:
        """A new signing secret for a generic webhook source (the real one stays unread)."""
        value = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        system.connection["secrets"] = [self._secret(system, "secrets", value)]
        self.webhook_secrets[system.name] = value
        return value

    def _secret(self, system: SystemFile, key: str, value: str) -> str:
        """`${NAME}` for the credential at `key`: the variable the file names, else a new one."""
        written = system.connection.get(key)
        if isinstance(written, list) and written:
            written = written[0]
        match = _REF.match(written) if isinstance(written, str) else None
        name = match.group(1) if match else f"SEAMLINE_{system.name}_{key}".upper()
        name = name.replace("-", "_")
        self.variables[name] = value
        return f"${{{name}}}"


def _variants(shop: ShopifySimulator) -> list[dict[str, Any]]:
    return [v for v in shop.store.variants.values() if v["sku"]]
