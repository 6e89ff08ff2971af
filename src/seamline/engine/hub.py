"""The hub: the roles of one process (`seamline run --role ...`), owned by one task group.

Roles: `ingest` (webhooks in, journaled), `worker` (deliveries out), `scheduler` (routing,
lease expiry, retention; one active at a time) and `all`. On SQLite one process owns the file
and runs `all` (or only `ingest`, for a full hub to route later); with `worker.processes: 1`
it delivers from a worker process it starts and watches (`worker_process.py`). On PostgreSQL
any number of processes run any roles; schedulers elect one of themselves with an advisory
lock, and processes wake each other with LISTEN/NOTIFY.

Start-up order: open the journal, hand back leases a previous process held (SQLite: all of
them, by the one process that delivers; PostgreSQL: the expired ones), route what was
journaled but not routed, start workers (or worker processes), then open ingest (`ready`).
Shutdown runs backwards: ingest answers 503, the server drains, workers finish and record the
batch in hand (worker processes too, told by the end of their stdin), the journal's last
group is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import orjson
import uvicorn

from seamline.change import version
from seamline.connectors.base import Poller, Sink, Source
from seamline.connectors.shape import Shapes
from seamline.console import Console
from seamline.engine.budget import Budget, BudgetLedger, BudgetView, Limits, MemoryLedger
from seamline.engine.ingest import Ingest
from seamline.engine.router import Router
from seamline.engine.server import Protocol, Server
from seamline.engine.worker import TargetWorker, WorkerStats, forwarded_fields
from seamline.engine.worker_process import HubLink, WorkerProcess, fingerprint, parse_worker_of
from seamline.errors import ProjectError, SeamlineError, ThrottledError
from seamline.journal.base import StoredMessage
from seamline.journal.ledger import PostgresLedger
from seamline.journal.location import is_postgres, journal_for
from seamline.journal.postgres import PostgresJournal
from seamline.journal.sqlite import SqliteJournal
from seamline.observe.alerts import AlertLoop
from seamline.observe.metrics import METRICS
from seamline.observe.status import WORKER_WARNINGS
from seamline.observe.trace import tracer
from seamline.project import Flow, Project, load_project

log = logging.getLogger("seamline.hub")
ROUTE_BATCH = 500
APPLY_CURSOR = "apply"
"""Set by `seamline apply` (who and when): every hub process loads the project again."""
CHECK_SWEEP = 30.0
CHECK_GRACE = 120.0
"""How often the scheduler looks for a check that is due."""
SHAPES_CURSOR = "shapes"
"""Where the learned shapes of what sources send are kept across restarts."""
LEASE_SWEEP = 2.0
RETENTION_SWEEP = 3600.0
TARGETS_SWEEP = 60.0
SWITCH_INTERVAL = 0.0002
CHILD_SILENCE = 120.0
"""A worker process silent this long (no report) is taken for hung, killed and restarted."""


Role = Literal["all", "ingest", "worker", "scheduler"]
ROLES: tuple[Role, ...] = ("all", "ingest", "worker", "scheduler")
"""`all`: every role in this process. `ingest`: journal webhooks; on PostgreSQL each is routed
as it arrives, in the same commit; on SQLite they wait, unrouted, for a full hub. `worker`:
claim and deliver. `scheduler`: route what is left unrouted (polled messages, heals, replayed
rejections), expire leases, purge; on PostgreSQL one of the running schedulers is active at a
time."""


def _ignored() -> None:
    log.info("signal ignored: a worker process stops when its hub stops it")


@dataclass
class HubState:
    started_at: float = field(default_factory=time.time)
    routed: int = 0
    rejected: int = 0


class Hub:
    def __init__(
        self,
        project: Project,
        *,
        listen: tuple[str, int] | None = None,
        role: Role = "all",
        worker_of: str | None = None,
    ) -> None:
        """`worker_of`: this is a worker process started by a hub (`PID:FINGERPRINT` of the
        hub and its project, `worker_process.py`); it hears from that hub on stdin and reports
        on stdout."""
        self.project = project
        self.role = role
        settings = project.settings
        self.listen = listen or settings.host_port
        # Workers and schedulers serve health checks only where asked to (`--listen`): several
        # of them on one host would otherwise contend for the ingest's address.
        self.http = role in ("all", "ingest") or listen is not None
        shared = is_postgres(settings.journal)
        child = worker_of is not None
        hub_pid = 0
        if worker_of is not None:
            if role != "worker":
                raise SeamlineError("--worker-of is for worker processes the hub starts")
            hub_pid, expected = parse_worker_of(worker_of)
            if fingerprint(project) != expected:
                raise SeamlineError(
                    f"the project in {project.dir} is not the one the hub runs (files edited "
                    "and not applied?): run `seamline apply`, or restart the hub"
                )
        if not shared and role not in ("all", "ingest") and not child:
            raise SeamlineError(
                f"--role {role} needs the PostgreSQL journal: on SQLite one process owns the "
                "journal file and runs every role (set `journal: postgresql://...`), and "
                "starts a worker process of its own with `worker: {processes: 1}`"
            )
        self.shared = shared
        self.journal = journal_for(project, exclusive=not child)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.sources: dict[str, Source] = {}
        self.sinks: dict[str, Sink] = {}
        targets = {f.spec.target.system for f in project.flows.values()}
        sourced = {f.spec.source.system for f in project.flows.values()}
        for name, system in project.systems.items():
            if name in sourced:
                self.sources[name] = system.connector.source(name, system.options)
            if name in targets:
                self.sinks[name] = system.connector.sink(name, system.options)
        self.pollers: dict[str, Poller] = {}
        for name, system in project.systems.items():
            poller = system.connector.poller(name, system.options)
            if poller is not None:
                self.pollers[name] = poller
        self.warnings: dict[str, dict[str, float]] = {}
        """Per system: what its vendor said that an operator should see, and since when."""
        self.ledger: BudgetLedger
        if isinstance(self.journal, PostgresJournal):
            self.ledger = PostgresLedger(
                self.journal.url,
                timeout=self.journal.ack_timeout,
                idle_in_transaction=self.journal.idle_in_transaction,
            )
        else:
            self.ledger = MemoryLedger()
        self.budgets = {
            name: Budget(
                name,
                Limits.of(project.systems[name].spec.budget, lease=settings.worker.lease),
                self.ledger,
                owner=self.owner,
            )
            for name in targets
        }
        self.shapes = Shapes()
        """What each source sends, learned from sampled messages (vendor drift warnings)."""
        self._shapes_kept = 0
        self.router = Router(
            project, self.sources, self._safe_retry, shapes=self.shapes, forwards=self._forwards
        )
        self.stats = WorkerStats()
        self.state = HubState()
        traces = settings.telemetry.traces
        self.tracer = tracer(traces.endpoint, service=traces.service or settings.name)
        worker = settings.worker
        self.workers = {
            name: TargetWorker(
                target=name,
                project=project,
                journal=self.journal,
                router=self.router,
                sink=self.sinks[name],
                budget=self.budgets[name],
                owner=self.owner,
                batch=worker.batch,
                lease=worker.lease,
                stats=self.stats,
                tracer=self.tracer,
            )
            for name in targets
        }
        self.versions: dict[tuple[str, str], Flow] = {
            (f.name, f.version): f for f in project.flows.values()
        }
        """Every flow version this process ran: workers finish a delivery on its own."""
        for target_worker in self.workers.values():
            target_worker.versions = self.versions
            target_worker.shapes = self.shapes
        self._applied: str | None = None
        self.check_grace = CHECK_GRACE
        """Seconds after the start before scheduled checks run (systems are still syncing)."""
        self.console = (
            Console(
                self.journal,
                project,
                decode=lambda message: self.router.decode(message).data,
                public_url=settings.console.public_url,
            )
            if self.serves
            else None
        )
        self.ingest = Ingest(
            self.journal,
            self.sources,
            max_body=settings.ingest.max_body,
            extra=self.console,
            refuse_hooks=None
            if self.serves
            else f"this process does not take webhooks (role {role}); send them to an ingest "
            "process",
            route=self.router.route_arriving if self.routes_arriving else None,
        )
        self._inbox: asyncio.Queue[list[StoredMessage]] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._stop_router = False
        self._route_wake = asyncio.Event()
        self.leading = asyncio.Event()
        self.alerts = (
            AlertLoop(self.journal, project, leading=self.leading) if self.schedules else None
        )
        """Alert rules evaluated by the active scheduler; notifications sent from here."""
        self.server: Server | None = None
        self.started = asyncio.Event()
        self.children = [
            WorkerProcess(
                f"worker-{i + 1}",
                lambda: self.project,
                METRICS,
                stop_within=worker.lease,
                silence=max(CHILD_SILENCE, worker.lease + CHILD_SILENCE / 2),
            )
            for i in range(worker.processes if role == "all" else 0)
        ]
        """Worker processes this hub starts (`worker.processes`); then it delivers none itself."""
        self.router.keep_events = self.delivers
        self.link = (
            HubLink(hub_pid, on_wake=lambda: self._heard("delivery"), on_gone=self.stop)
            if child
            else None
        )

    def _forwards(self, flow: Flow) -> bool:
        sink = self.sinks.get(flow.spec.target.system)
        return forwarded_fields(flow, sink) is not None

    def _safe_retry(self, flow: Flow) -> bool:
        sink = self.sinks.get(flow.spec.target.system)
        return sink is not None and sink.idempotent(flow.spec.target.operation, {})

    def budget_views(self) -> dict[str, BudgetView]:
        return {name: b.view() for name, b in self.budgets.items()}

    def stop(self) -> None:
        """Begin a graceful stop (safe to call from a signal handler)."""
        self.ingest.ready = False
        self._stop.set()
        if self.server is not None:
            self.server.should_exit = True

    @property
    def serves(self) -> bool:
        return self.role in ("all", "ingest")

    @property
    def delivers(self) -> bool:
        return self.role == "worker" or (self.role == "all" and not self.children)

    @property
    def schedules(self) -> bool:
        return self.role in ("all", "scheduler")

    @property
    def routes_arriving(self) -> bool:
        """Ingest routes each webhook as it arrives, in the commit that journals it. On
        PostgreSQL: the scheduler would otherwise read every message back, in another
        process, to route it and mark it routed. (The one process on SQLite routes a group
        after its commit, from the bytes in hand.)"""
        return self.shared and self.serves

    async def run(self) -> None:
        # The journal's writer thread gives up the GIL for every SQLite step and must win it
        # back from a busy event loop; at the default 5 ms switch interval that convoy capped
        # the hub near 1k messages/s. 0.2 ms keeps the writer fed at a small switching cost.
        sys.setswitchinterval(SWITCH_INTERVAL)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                # A worker process stops when its hub says so (the end of its stdin): a
                # service manager signalling every process of the service stops the hub.
                loop.add_signal_handler(sig, self.stop if self.link is None else _ignored)
        listening = self._bind() if self.http else None
        await self.journal.open()
        try:
            if self.link is not None:
                await self.link.open()
            if self.delivers and isinstance(self.journal, SqliteJournal):
                # A worker process of a hub that died may still be finishing its batch: its
                # leases are its own until it has recorded the outcomes and exited.
                await self.journal.hold_deliveries(within=self.project.settings.worker.lease)
                expired = await self.journal.expire_all_leases()
                if expired:
                    log.info("took back %d leases from a previous run", len(expired))
            if self.schedules or self.delivers:
                if self.schedules:
                    if self.shared:
                        self.journal.on_append(lambda _m: self._route_wake.set())
                    else:
                        self.journal.on_append(self._inbox.put_nowait)
                self.journal.listen(self._heard)
                if self.schedules:
                    self.journal.lead(self._leadership)
                    await self._keep_versions()
                    await self._order_after()
                    await self._dead_without_target()
            if self.schedules or self.routes_arriving:
                learned = await self.journal.get_cursor(SHAPES_CURSOR)
                if learned:
                    self.shapes.load(orjson.loads(learned))
            async with asyncio.TaskGroup() as tg:
                router = None
                if self.schedules:
                    route = self._route_shared() if self.shared else self._route_loop()
                    router = tg.create_task(route, name="router")
                loops = [
                    tg.create_task(w.run_loop(), name=f"worker:{name}:{i}")
                    for name, w in (self.workers.items() if self.delivers else ())
                    for i in range(self.project.settings.worker.loops)
                ]
                children = [
                    tg.create_task(c.run(), name=f"process:{c.name}") for c in self.children
                ]
                sweeper = None
                if self.schedules or self.delivers or self.routes_arriving:
                    sweeper = tg.create_task(self._sweep_loop(), name="sweeper")
                polling = [
                    tg.create_task(self._poll_loop(name, poller), name=f"poll:{name}")
                    for name, poller in (self.pollers.items() if self.schedules else ())
                ]
                if self.alerts is not None:
                    polling.append(tg.create_task(self.alerts.run(), name="alerts"))
                if self.schedules and any(c.schedule for c in self.project.checks.values()):
                    polling.append(tg.create_task(self._check_loop(), name="checks"))
                if self.link is not None:
                    polling.append(tg.create_task(self.link.report_loop(METRICS), name="report"))
                serve = None
                if listening is not None:
                    serve = await self._serve(tg, listening)
                self.started.set()
                log.info(
                    "hub ready",
                    extra={
                        "role": self.role,
                        "journal": repr(self.journal),
                        "listen": "{}:{}".format(*self.listen) if self.http else None,
                        "flows": len(self.project.flows),
                    },
                )
                await self._stop.wait()
                self.ingest.ready = False
                if self.server is not None and serve is not None:
                    self.server.should_exit = True
                    await serve
                for w in self.workers.values():
                    w.stop()
                await asyncio.gather(*loops)
                await asyncio.gather(*(c.stop() for c in self.children))
                await asyncio.gather(*children)
                self._stop_router = True
                await self._inbox.put([])  # wakes the router to finish what is queued
                self._route_wake.set()
                if router is not None:
                    await router
                if sweeper is not None:
                    sweeper.cancel()
                for task in polling:
                    task.cancel()
                try:
                    await self._publish_warnings()  # what was heard since the last sweep
                except Exception:
                    log.exception("could not keep the vendors' warnings")
                if self.link is not None:
                    self.link.report(METRICS)  # the counts of the last batch
                log.info(
                    "hub stopped",
                    extra={
                        "role": self.role,
                        "routed": self.state.routed,
                        "rejected": self.state.rejected + self.ingest.stats.rejected,
                        **dataclasses.asdict(self.stats),
                    },
                )
        finally:
            if self.link is not None:
                self.link.close()
            for sink in self.sinks.values():
                await sink.close()
            for poller in self.pollers.values():
                await poller.close()
            if isinstance(self.ledger, PostgresLedger):
                await self.ledger.close()
            await asyncio.to_thread(self.tracer.close)  # flushes the spans still batched
            await self.journal.close()

    async def _serve(self, tg: asyncio.TaskGroup, listening: socket.socket) -> asyncio.Task[None]:
        host, port = self.listen
        config = uvicorn.Config(
            self.ingest,
            host=host,
            port=port,
            http=Protocol,
            loop="none",
            lifespan="off",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            date_header=False,
            log_level="warning",
            backlog=2048,
            timeout_keep_alive=30,
        )
        self.server = Server(config)
        serve = tg.create_task(self.server.serve(sockets=[listening]), name="server")
        while not self.server.started and not serve.done():  # noqa: ASYNC110 - uvicorn offers no event
            await asyncio.sleep(0.01)
        if not self.server.started:
            raise SeamlineError("the HTTP server stopped while starting; see the log above")
        self.ingest.ready = True
        return serve

    def _heard(self, what: str) -> None:
        """Another process changed the journal (PostgreSQL notifications)."""
        if what in ("message", "*") and self.schedules:
            self._route_wake.set()
        if what in ("delivery", "*") and self.delivers:
            for worker in self.workers.values():
                worker.wake.set()

    def _leadership(self, leading: bool) -> None:
        if leading:
            log.info("this process is the scheduler now", extra={"owner": self.owner})
            self.leading.set()
            self._route_wake.set()
        else:
            self.leading.clear()

    async def _route_shared(self) -> None:
        """PostgreSQL: the active scheduler routes whatever is journaled and not routed, from
        every ingest process, woken by notifications (and by the sweep, in case one was lost)."""
        while True:
            await self._route_wake.wait()
            self._route_wake.clear()
            if self._stop_router:
                return
            if not self.leading.is_set():
                continue
            try:
                await self._route_backlog()
            except Exception:
                # They stay `received` in the journal; the next wake or sweep routes them.
                log.exception("routing failed")
                await asyncio.sleep(1.0)
                self._route_wake.set()

    def _bind(self) -> socket.socket:
        """Take the listening address before anything else, and say plainly if it is taken."""
        host, port = self.listen
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise SeamlineError(
                f"cannot listen on {host}:{port}: {exc.strerror}; another hub or program has it, "
                "or change `listen` in seamline.yaml (or pass --listen)"
            ) from None
        return sock

    async def _route_loop(self) -> None:
        # What was journaled but not routed before this start (a crash, a replayed rejection).
        await self._route_backlog()
        while True:
            batch = await self._inbox.get()
            while not self._inbox.empty() and len(batch) < ROUTE_BATCH:
                batch.extend(self._inbox.get_nowait())
            if batch:
                try:
                    await self._route(sorted(batch, key=lambda m: m.id))
                except Exception:
                    # They stay `received` in the journal; the sweep routes them again.
                    log.exception("routing failed", extra={"messages": len(batch)})
            if self._stop_router and self._inbox.empty():
                return

    async def _route_backlog(self, *, settled_for: float = 0.0) -> None:
        """Route stored messages not routed yet; with `settled_for`, only ones at least that old
        (younger ones are on their way through the router's inbox)."""
        while True:
            before = time.time() - settled_for if settled_for else float("inf")
            backlog = await self.journal.unrouted(ROUTE_BATCH, before=before)
            if not backlog:
                return
            await self._route(backlog)

    async def _route(self, messages: list[StoredMessage]) -> None:
        routings = [self.router.route(m) for m in messages]
        await self.journal.route(routings)
        for r in routings:
            if r.rejected is not None:
                self.state.rejected += 1
                log.warning(
                    "message rejected", extra={"message_id": r.message_id, "reason": r.rejected}
                )
            else:
                self.state.routed += 1
            for d in r.deliveries:
                worker = self.workers.get(d.target)
                if worker is not None:
                    worker.wake.set()
        if self.children and any(r.deliveries for r in routings):
            for child in self.children:
                child.wake()

    async def _poll_loop(self, name: str, poller: Poller) -> None:
        """The active scheduler asks `name` what changed, every `interval` seconds; what it
        journals is routed like any webhook."""
        while True:
            await self.leading.wait()
            wait = poller.interval
            try:
                found = await poller.poll(self.journal)
                if found:
                    log.info(
                        "catch-up poll found changes", extra={"system": name, "messages": found}
                    )
            except ThrottledError as exc:
                wait = max(1.0, exc.retry_after or 1.0)
                log.info("catch-up poll throttled", extra={"system": name, "wait": wait})
            except Exception as exc:
                log.warning("catch-up poll failed: %s", exc, extra={"system": name})
            self._heard_warnings(name, poller.warnings)
            await asyncio.sleep(wait)

    def _heard_warnings(self, system: str, warnings: Sequence[str]) -> None:
        known = self.warnings.setdefault(system, {})
        for text in warnings:
            if text not in known:
                known[text] = time.time()
                log.warning("vendor warning", extra={"system": system, "warning": text})

    async def _sweep_loop(self) -> None:
        state = {"last_purge": 0.0, "last_targets": time.time()}  # the start-up checked
        while True:
            await asyncio.sleep(LEASE_SWEEP)
            try:
                await self._sweep(state)
            except Exception:
                log.exception("sweep failed; trying again")

    async def _sweep(self, state: dict[str, float]) -> None:
        """Workers: release recovered targets, publish budgets. The scheduler: expire leases,
        route stragglers, purge. Every process: apply a project change asked for (ingest
        that routes as messages arrive, too: new messages route with the new flows)."""
        await self._apply_if_asked()
        if self.delivers:
            await self._sweep_targets()
        await self._publish_warnings()
        if not (self.schedules and self.leading.is_set()):
            return
        expired = await self.journal.expire_leases()
        if expired:
            log.warning("leases expired", extra={"deliveries": expired[:20], "count": len(expired)})
            for child in self.children:
                child.wake()
        if self.shared:
            self._route_wake.set()  # in case a notification was lost
        else:
            # Replayed rejections are back in `received`, and so is anything the router failed on.
            await self._route_backlog(settled_for=10.0)
        if time.time() - state["last_targets"] > TARGETS_SWEEP:
            # Leases to a target gone from the project, handed back since the start.
            state["last_targets"] = time.time()
            await self._dead_without_target()
        if time.time() - state["last_purge"] > RETENTION_SWEEP:
            state["last_purge"] = time.time()
            retention = self.project.settings.retention.payloads
            purged = await self.journal.purge(before=time.time() - retention)
            if purged:
                log.info("retention purge", extra={"payloads": purged})

    async def _check_loop(self) -> None:
        """The active scheduler runs each scheduled check when its `every` has passed since
        its last run (by any process: the runs are in the journal); not in the first
        `check_grace` seconds of a hub, which is still catching up (pollers, a backlog)."""
        from seamline.checks.run import run_check

        started = time.time()
        while True:
            await self.leading.wait()
            if time.time() - started < self.check_grace:
                await asyncio.sleep(min(CHECK_SWEEP, self.check_grace))
                continue
            for name, spec in sorted(self.project.checks.items()):
                if spec.schedule is None:
                    continue
                try:
                    last = await self.journal.check_runs(name, limit=1)
                    if last and time.time() - float(last[0]["started_at"]) < spec.schedule.every:
                        continue
                    recorded = await run_check(self.project, name, self.journal, actor="scheduler")
                    log.info(
                        "check ran",
                        extra={"check": name, "found": sum(recorded.outcome.tally.found.values())},
                    )
                except Exception as exc:
                    log.warning("check %s could not run: %s", name, exc, extra={"check": name})
            await asyncio.sleep(CHECK_SWEEP)

    async def _apply_if_asked(self) -> None:
        """Load the project again when `seamline apply` asked for it (a journal cursor every
        process reads): new messages route with the new flow versions, deliveries in flight
        finish on theirs. A change of systems or settings needs a restart and is refused."""
        asked = await self.journal.get_cursor(APPLY_CURSOR)
        if asked is None or asked == self._applied:
            return
        self._applied = asked
        try:
            new = await asyncio.to_thread(load_project, self.project.dir)
        except ProjectError as exc:
            log.error("apply refused: the project has problems: %s", exc)
            return
        changed = [
            n
            for n in sorted(set(new.systems) | set(self.project.systems))
            if n not in new.systems
            or n not in self.project.systems
            or new.systems[n].spec != self.project.systems[n].spec
        ]
        if changed or new.settings != self.project.settings:
            log.error(
                "apply refused: systems or settings changed (%s); restart the hub for those",
                ", ".join(changed) or "seamline.yaml",
            )
            return
        before = {n: f.version for n, f in self.project.flows.items()}
        for flow in new.flows.values():
            self.versions[(flow.name, flow.version)] = flow
        self.project = new
        self.router.project = new
        for worker in self.workers.values():
            worker.project = new
        if self.console is not None:
            self.console.site.ops.project = new
        if self.schedules:
            try:
                by = str(orjson.loads(asked).get("by") or "") or None
            except (orjson.JSONDecodeError, AttributeError):
                by = None
            await self._keep_versions(by)
            await self._order_after()
        now = {n: f.version for n, f in new.flows.items()}
        log.info(
            "applied",
            extra={"changed": sorted(n for n in now if before.get(n) != now[n]), "by": asked},
        )

    async def _dead_without_target(self) -> None:
        """Deliveries to a target system no worker serves would wait for ever: they become
        dead letters, to replay once it is served again, or to discard. A target this hub
        started with keeps its worker after `seamline apply` (deliveries finish on the flow
        version they were routed with), so it counts as served until a restart. On SQLite
        only: there the one hub's project is the truth, where on PostgreSQL a process of the
        version before, in a rolling deployment, would take a new target for a removed one."""
        if self.shared:
            return
        targets = set(self.workers) | {f.spec.target.system for f in self.project.flows.values()}
        dead = await self.journal.dead_without_target(targets)
        for target, n in dead.items():
            log.error(
                "deliveries to a target system no longer in the project are dead letters",
                extra={"target": target, "deliveries": n},
            )

    async def _order_after(self) -> None:
        """Deliveries not yet delivered wait as the live flows say (`ordering.after`)."""
        changed = await self.journal.order_after(
            {name: flow.spec.after for name, flow in self.project.flows.items()}
        )
        if changed:
            log.info("deliveries now ordered as the live flows say", extra={"changed": changed})

    async def _keep_versions(self, by: str | None = None) -> None:
        """Keep the files of each flow version going live (once per version), for `plan` and
        rollback; who deployed it: who ran `seamline apply` (`by`), else SEAMLINE_ACTOR, else
        the account the hub runs as."""
        actor = (
            by or os.environ.get("SEAMLINE_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"
        )
        new = await self.journal.record_flow_versions(
            version.live(self.project), actor=actor, now=time.time()
        )
        if new:
            log.info("flow versions live", extra={"new": new, "actor": actor})

    async def _publish_warnings(self) -> None:
        for name, worker in self.workers.items():
            self._heard_warnings(name, worker.warnings)
        for name, drift in self.router.drift.items():
            self._heard_warnings(name, list(drift))
        if (self.schedules or self.routes_arriving) and self.shapes.samples != self._shapes_kept:
            self._shapes_kept = self.shapes.samples
            learned = await self.journal.get_cursor(SHAPES_CURSOR)
            merged = Shapes.merged(orjson.loads(learned) if learned else {}, self.shapes.state())
            await self.journal.set_cursor(SHAPES_CURSOR, orjson.dumps(merged).decode())
        # A worker process keeps what it heard beside its hub's (`status` shows both). Other
        # processes on PostgreSQL (ingest, workers) keep theirs under the same name: what is
        # kept is what any of them heard, each since the first time.
        suffix = WORKER_WARNINGS if self.link is not None else ""
        for name, warnings in self.warnings.items():
            if not warnings:
                continue
            cursor = f"warnings:{name}{suffix}"
            known = await self.journal.get_cursor(cursor)
            kept: dict[str, float] = orjson.loads(known) if known else {}
            heard = {text: min(since, kept.get(text, since)) for text, since in warnings.items()}
            if any(kept.get(text) != since for text, since in heard.items()):
                await self.journal.set_cursor(cursor, orjson.dumps({**kept, **heard}).decode())

    async def _sweep_targets(self) -> None:
        # Deliveries of a target whose circuit just closed are due now, not at their backoff.
        for name, worker in self.workers.items():
            if worker.recovered:
                worker.recovered = False
                released = await self.journal.release_held(name)
                worker.wake.set()
                log.info("target recovered", extra={"target": name, "released": released})
        for name, budget in self.budgets.items():
            view = budget.view()
            await self.journal.set_cursor(
                f"budget:{name}",
                orjson.dumps(
                    {
                        "circuit": view.circuit,
                        "in_flight": view.in_flight,
                        "concurrency": view.concurrency,
                        "rate": view.rate,
                        "opened": view.opened_count,
                        "at": time.time(),
                    }
                ).decode(),
            )
