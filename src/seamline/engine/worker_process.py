"""Worker processes: delivery in processes of their own, started and watched by the hub.

With `worker.processes: N` in `seamline.yaml`, `seamline run` (role `all`) ingests, routes and
schedules, and starts N processes that deliver (`seamline run --role worker --worker-of PID`).
On a SQLite journal that lets ingest and delivery each have a core of their own; N is at most 1
there, because the budgets and circuits of the targets are kept in the one process that
delivers.

The hub and each worker process talk over the worker's standard streams:

| stream                | what                                                              |
|-----------------------|-------------------------------------------------------------------|
| worker's stdin        | a byte from the hub: deliveries are due (routed, leases expired)   |
| end of worker's stdin | the hub stops or died: finish the batch in hand, record it, exit   |
| worker's stdout       | a JSON line every second and at exit: the worker's metrics, which  |
|                       | the hub's `/metrics` shows with its own (`Metrics.absorb`)         |

A worker's own output goes to stderr, as the hub's logs do. It runs in a session of its own and
ignores SIGINT and SIGTERM: a Ctrl-C in a terminal, or a service manager stopping every
process of the service, stops the hub, and the hub stops its workers (the end of stdin).

The hub starts a worker process that exits again: after 1 s, doubling up to 30 s while it keeps
ending within a minute of its start. It kills and restarts one that stops reporting for
`silence` seconds (a hung process would keep the deliveries to itself).

A worker process delivers the project the hub runs: the hub gives it the project's
fingerprint (flows, systems, settings), and a worker that loads something else from the
project folder (files edited and not applied) refuses to start and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable
from importlib import metadata

import orjson

from seamline.observe.metrics import Metrics
from seamline.project import Project

log = logging.getLogger("seamline.worker_process")

RESTART_FIRST = 1.0
RESTART_MAX = 30.0
STEADY = 60.0
"""A worker process that ran this long before it ended is restarted after `RESTART_FIRST`."""
REPORT_EVERY = 1.0
REPORT_LIMIT = 64 * 1024 * 1024
"""The longest report line the hub reads (a report grows with the flows and targets)."""


def fingerprint(project: Project) -> str:
    """What a worker process must run to deliver for this hub: the version of Seamline, flow
    versions, systems and settings (secrets as references, never their values)."""
    digest = hashlib.sha256()
    with contextlib.suppress(metadata.PackageNotFoundError):  # run from a source tree
        digest.update(f"seamline {metadata.version('seamline')}\n".encode())
    for name, flow in sorted(project.flows.items()):
        digest.update(f"flow {name} {flow.version}\n".encode())
    for name, system in sorted(project.systems.items()):
        digest.update(f"system {name} {system.spec!r}\n".encode())
    digest.update(repr(project.settings).encode())
    return digest.hexdigest()[:16]


class WorkerProcess:
    """The hub's side: one worker process, started, woken, restarted and stopped."""

    def __init__(
        self,
        name: str,
        project: Callable[[], Project],
        metrics: Metrics,
        *,
        stop_within: float,
        silence: float,
    ) -> None:
        """`project`: the project the hub runs now (it changes with `seamline apply`)."""
        self.name = name
        self.project = project
        self.metrics = metrics
        self.stop_within = stop_within
        self.silence = silence
        self.starts = 0
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._heard_at = 0.0

    def _argv(self) -> list[str]:
        project = self.project()
        return [
            sys.executable,
            "-m",
            "seamline.cli",
            "run",
            str(project.dir),
            "--role",
            "worker",
            "--worker-of",
            f"{os.getpid()}:{fingerprint(project)}",
        ]

    async def run(self) -> None:
        """Keep the worker process running until `stop`."""
        delay = RESTART_FIRST
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                code = await self._run_once()
            except OSError as exc:  # could not start one (no memory, too many processes)
                code = None
                log.error("worker process %s could not start: %s", self.name, exc)
            if self._stopping.is_set():
                return
            delay = RESTART_FIRST if time.monotonic() - started > STEADY else delay
            log.error(
                "worker process %s ended (exit code %s); starting it again in %.0f s",
                self.name,
                code,
                delay,
                extra={"worker": self.name, "exit_code": code},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(RESTART_MAX, delay * 2)

    async def _run_once(self) -> int | None:
        self._proc = proc = await asyncio.create_subprocess_exec(
            *self._argv(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=REPORT_LIMIT,
            start_new_session=True,
        )
        self.pid = proc.pid
        self.starts += 1
        self._heard_at = time.monotonic()
        log.info("worker process started", extra={"worker": self.name, "pid": proc.pid})
        watch = asyncio.create_task(self._watch(proc))
        try:
            if self._stopping.is_set():  # `stop` came while this one was starting
                await self._finish(proc)
            await self._read_reports(proc)
            return await proc.wait()
        finally:
            watch.cancel()
            if proc.returncode is None:  # this task was cancelled: leave no process behind
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            self._proc = None
            self.metrics.retire(self.name)

    async def _read_reports(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readline()
            except ValueError:  # a line over the limit: the process is not what it should be
                log.error("worker process %s wrote a line too long; stopping it", self.name)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                return
            if not line:
                return
            self._heard_at = time.monotonic()
            try:
                self.metrics.absorb(self.name, orjson.loads(line))
            except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
                log.warning("worker process %s wrote what is not a report", self.name)

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        """Kill a worker process that has not reported for `silence` seconds (hung)."""
        while True:
            await asyncio.sleep(min(5.0, self.silence / 4))
            if time.monotonic() - self._heard_at > self.silence and not self._stopping.is_set():
                log.error(
                    "worker process %s has not reported for %.0f s; killing it",
                    self.name,
                    self.silence,
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                return

    def wake(self) -> None:
        """Tell the worker process deliveries are due. One unread byte is enough: while the
        last is still on its way, this writes nothing."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return
        if proc.stdin.transport.get_write_buffer_size():
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            proc.stdin.write(b".")

    async def stop(self) -> None:
        """Close the worker's stdin (it finishes its batch and exits); kill it after
        `stop_within` seconds."""
        self._stopping.set()
        proc = self._proc
        if proc is not None:
            await self._finish(proc)

    async def _finish(self, proc: asyncio.subprocess.Process) -> None:
        self._close_stdin(proc)
        try:
            await asyncio.wait_for(proc.wait(), self.stop_within)
        except TimeoutError:
            log.error("worker process %s did not stop; killing it", self.name)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    @staticmethod
    def _close_stdin(proc: asyncio.subprocess.Process) -> None:
        if proc.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                proc.stdin.close()


class HubLink:
    """The worker process's side: wakes and the end of stdin from the hub, reports to it."""

    def __init__(
        self, hub_pid: int, *, on_wake: Callable[[], None], on_gone: Callable[[], None]
    ) -> None:
        self.hub_pid = hub_pid
        self._on_wake = on_wake
        self._on_gone = on_gone
        self._transport: asyncio.ReadTransport | None = None
        self._out: int | None = None

    async def open(self) -> None:
        # Reports go to the stdout the hub reads; anything else this process prints goes to
        # stderr, so nothing stray is taken for a report.
        self._out = os.dup(1)
        os.dup2(2, 1)
        loop = asyncio.get_running_loop()
        link = self

        class _Stdin(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                link._on_wake()

            def eof_received(self) -> bool | None:
                link._on_gone()
                return None

            def connection_lost(self, exc: Exception | None) -> None:
                link._on_gone()

        stdin = os.fdopen(os.dup(0), "rb", buffering=0)
        self._transport, _ = await loop.connect_read_pipe(_Stdin, stdin)

    def report(self, metrics: Metrics) -> None:
        """Write the metrics to the hub (a few KB into a pipe it reads all the time)."""
        if self._out is None:
            return
        data = memoryview(orjson.dumps(metrics.report()) + b"\n")
        with contextlib.suppress(BrokenPipeError):
            while data:
                data = data[os.write(self._out, data) :]

    async def report_loop(self, metrics: Metrics) -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY)
            if os.getppid() != self.hub_pid:  # the hub is gone and its stdin did not say so
                self._on_gone()
                return
            self.report(metrics)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._out is not None:
            with contextlib.suppress(OSError):
                os.close(self._out)
            self._out = None


def parse_worker_of(text: str) -> tuple[int, str]:
    """`--worker-of PID:FINGERPRINT` as the hub gives it."""
    pid, _, print_ = text.partition(":")
    if not pid.isdigit() or not print_:
        raise ValueError(f"--worker-of takes PID:FINGERPRINT, not {text!r}")
    return int(pid), print_
