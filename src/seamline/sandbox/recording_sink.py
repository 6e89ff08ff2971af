"""A real HTTP delivery target that records what it applies, for tests, the demo and benchmarks.

Every request it *applies* becomes one row in its own SQLite file (WAL, ``synchronous=FULL``),
and the 2xx answer leaves only after that row is durable: a writer thread commits whatever
has queued up meanwhile in one transaction (group commit), so throughput grows with
concurrency while each answer still means "on disk".

What it does with a request, in order:

1. mode ``throttle``: answer 429 with ``Retry-After: <retry_after>``; nothing applied. A
   fractional ``retry_after`` is sent as written ("0.2"): not RFC 9110, but it keeps tests fast.
2. an ``Idempotency-Key`` already applied (or being applied): answer 200 with the stored
   response and ``Idempotent-Replayed: true``; nothing applied again. ``naive=True`` turns this
   off, to stand in for a target that ignores idempotency keys.
3. a JSON body whose ``poison_field`` is truthy, at the top level or inside a top-level
   ``data`` object: answer ``poison_status`` (422); nothing applied.
4. otherwise apply: record the row, then answer 200 ``{"id": "r-<row id>", "received": true}``.

Mode ``slow`` delays every answer by ``slow_seconds`` *after* the work is done, so a client
that gives up has an unknown outcome that really was applied: the case idempotency keys
exist for. Mode ``down`` closes the listening socket and resets open connections, so clients
get "connection refused"; mode ``ok`` listens again on the same port.

Modes change through a second, control port (reachable while the data port is down):
``POST /_control`` with ``{"mode": ..., "slow_seconds": 3, "retry_after": 2,
"poison_field": "poison" | null, "poison_status": 422}`` (any subset), ``GET /_control`` and
``GET /_stats``. Everything binds 127.0.0.1 only.

Run it as ``python -m seamline.sandbox.recording_sink --port 0 --control-port 0 --db sink.db``;
it prints ``{"ready": true, "port": P, "control_port": C}`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import json
import os
import queue
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args

import httptools
import orjson

Mode = Literal["ok", "down", "slow", "throttle"]
HOST: Final = "127.0.0.1"
MAX_BODY: Final = 16 * 1024 * 1024
_MAX_PIPELINED: Final = 32
_BATCH: Final = 2048
_REASONS: Final = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
}

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    idempotency_key TEXT,
    key TEXT,
    seq INTEGER,
    body BLOB NOT NULL
)
"""
_INSERT: Final = (
    "INSERT INTO records (id, received_at, method, path, idempotency_key, key, seq, body)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class _Keep(enum.Enum):
    KEEP = enum.auto()


KEEP: Final = _Keep.KEEP
"""Passed to `RecordingSink.set_mode` for ``poison_field``: leave it as it is."""


@dataclass(frozen=True, slots=True)
class Record:
    """One applied request, as stored. ``path`` keeps any query string."""

    id: int
    received_at: float
    method: str
    path: str
    idempotency_key: str | None
    key: str | None
    seq: int | None
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


@dataclass(frozen=True, slots=True)
class SinkSettings:
    """The sink's behaviour; `RecordingSink.set_mode` and ``POST /_control`` change it."""

    mode: Mode = "ok"
    slow_seconds: float = 3.0
    retry_after: float = 2.0
    poison_field: str | None = "poison"
    poison_status: int = 422


@dataclass(frozen=True, slots=True)
class SinkStats:
    """Counts since the sink started. ``replayed`` is ``duplicates_suppressed``, by another name.

    ``duplicates_applied`` counts requests applied although their idempotency key had been
    applied before: only a ``naive`` sink does that.
    """

    mode: Mode
    applied: int
    duplicates_suppressed: int
    duplicates_applied: int
    rejected: int
    by_status: dict[int, int] = field(default_factory=dict)

    @property
    def replayed(self) -> int:
        return self.duplicates_suppressed

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["replayed"] = self.duplicates_suppressed
        data["by_status"] = {str(k): v for k, v in sorted(self.by_status.items())}
        return data


def read_records(db_path: str | os.PathLike[str]) -> list[Record]:
    """Every record in a sink's SQLite file, in the order applied. Safe while the sink runs."""
    uri = Path(db_path).resolve().as_uri() + "?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute(
            "SELECT id, received_at, method, path, idempotency_key, key, seq, body"
            " FROM records ORDER BY id"
        ).fetchall()
    return [
        Record(
            id=row[0],
            received_at=row[1],
            method=row[2],
            path=row[3],
            idempotency_key=row[4],
            key=row[5],
            seq=row[6],
            body=bytes(row[7]),
        )
        for row in rows
    ]


async def start_recording_sink(
    *,
    db_path: str | os.PathLike[str],
    port: int = 0,
    control_port: int = 0,
    naive: bool = False,
    key_field: str | None = None,
    seq_field: str | None = None,
    settings: SinkSettings | None = None,
) -> RecordingSink:
    """Open ``db_path`` (created if missing), then listen on both ports (0 picks a free one).

    ``key_field`` and ``seq_field`` name JSON body fields (dotted for nesting, e.g.
    ``data.id``) stored as ``key`` and ``seq``; an ``X-Seamline-Ordering-Key`` header wins
    over ``key_field``. Returns once both ports accept connections.
    """
    sink = RecordingSink(
        Path(db_path),
        naive=naive,
        key_field=key_field,
        seq_field=seq_field,
        settings=settings or SinkSettings(),
    )
    await sink._start(port=port, control_port=control_port)
    return sink


class RecordingSink:
    """A running sink; build it with `start_recording_sink`, end it with `close`."""

    def __init__(
        self,
        db_path: Path,
        *,
        naive: bool,
        key_field: str | None,
        seq_field: str | None,
        settings: SinkSettings,
    ) -> None:
        self.db_path = db_path
        self._naive = naive
        self._key_path = tuple(key_field.split(".")) if key_field else None
        self._seq_path = tuple(seq_field.split(".")) if seq_field else None
        self._settings = settings
        self._writer = _RecordWriter(db_path)
        self._applied_keys: dict[str, int] = {}
        self._pending: dict[str, tuple[int, asyncio.Future[None]]] = {}
        self._next_id = 1
        self._applied = 0
        self._suppressed = 0
        self._duplicates_applied = 0
        self._by_status: Counter[int] = Counter()
        self._data = _HttpServer(self._serve)
        self._control = _HttpServer(self._serve_control)

    @property
    def port(self) -> int:
        return self._data.port

    @property
    def control_port(self) -> int:
        return self._control.port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def control_url(self) -> str:
        return f"http://{HOST}:{self.control_port}"

    @property
    def settings(self) -> SinkSettings:
        return self._settings

    async def set_mode(
        self,
        mode: Mode | None = None,
        *,
        slow_seconds: float | None = None,
        retry_after: float | None = None,
        poison_field: str | _Keep | None = KEEP,
        poison_status: int | None = None,
    ) -> SinkSettings:
        """Change behaviour at once; options left out keep their value. Returns the result.

        Entering ``down`` closes the data port and resets its connections; leaving it listens
        again on the same port (``OSError`` if something else took it meanwhile).
        """
        if mode is not None and mode not in get_args(Mode):
            raise ValueError(f"mode is one of {', '.join(get_args(Mode))}, not {mode!r}")
        new = replace(
            self._settings,
            mode=self._settings.mode if mode is None else mode,
            slow_seconds=self._settings.slow_seconds if slow_seconds is None else slow_seconds,
            retry_after=self._settings.retry_after if retry_after is None else retry_after,
            poison_field=self._settings.poison_field if poison_field is KEEP else poison_field,
            poison_status=self._settings.poison_status if poison_status is None else poison_status,
        )
        was_down, now_down = self._settings.mode == "down", new.mode == "down"
        if now_down and not was_down:
            self._settings = new
            await self._data.stop_listening(reset_connections=True)
        elif was_down and not now_down:
            await self._data.listen(self._data.port)
            self._settings = new
        else:
            self._settings = new
        return new

    def stats(self) -> SinkStats:
        rejected = sum(n for status, n in self._by_status.items() if status >= 300)
        return SinkStats(
            mode=self._settings.mode,
            applied=self._applied,
            duplicates_suppressed=self._suppressed,
            duplicates_applied=self._duplicates_applied,
            rejected=rejected,
            by_status=dict(self._by_status),
        )

    async def close(self, *, grace: float = 2.0) -> None:
        """Stop listening, let answers in flight finish (up to ``grace`` s), flush and close."""
        await self._control.close(grace=grace)
        await self._data.close(grace=grace)
        await asyncio.to_thread(self._writer.stop)

    async def __aenter__(self) -> RecordingSink:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _start(self, *, port: int, control_port: int) -> None:
        self._next_id, self._applied_keys = await asyncio.to_thread(self._writer.open)
        self._writer.start(asyncio.get_running_loop())
        try:
            await self._control.listen(control_port)
            if self._settings.mode != "down":
                await self._data.listen(port)
            else:
                self._data.port = port
        except BaseException:
            await self.close()
            raise

    async def _serve(self, request: _Request) -> _Response:
        response = await self._decide(request)
        self._by_status[response[0]] += 1
        if self._settings.mode == "slow":
            await asyncio.sleep(self._settings.slow_seconds)
        return response

    async def _decide(self, request: _Request) -> _Response:
        settings = self._settings
        if settings.mode == "throttle":
            retry_after = f"{settings.retry_after:g}"
            return 429, b'{"error":"throttled"}', (("retry-after", retry_after),)

        idempotency_key = request.header(b"idempotency-key")
        if idempotency_key is not None and not self._naive:
            replayed = await self._replay(idempotency_key)
            if replayed is not None:
                return replayed

        document: Any = None
        poison = settings.poison_field
        needs_json = (
            self._key_path or self._seq_path or (poison and poison.encode() in request.body)
        )
        if needs_json:
            try:
                document = orjson.loads(request.body)
            except orjson.JSONDecodeError:
                document = None
        if poison and _is_poison(document, poison):
            return settings.poison_status, b'{"error":"poison"}', ()

        key = request.header(b"x-seamline-ordering-key")
        if key is None and self._key_path:
            key = _as_key(_lookup(document, self._key_path))
        seq = _lookup(document, self._seq_path) if self._seq_path else None
        if not isinstance(seq, int) or isinstance(seq, bool):
            seq = None
        record_id = self._next_id
        self._next_id += 1
        row = (
            record_id,
            request.received_at,
            request.method,
            request.target,
            idempotency_key,
            key,
            seq,
            request.body,
        )
        durable = asyncio.get_running_loop().create_future()
        if idempotency_key is not None and not self._naive:
            self._pending[idempotency_key] = (record_id, durable)
        self._writer.submit(row, durable)
        try:
            await durable
        except Exception as exc:
            return 500, orjson.dumps({"error": f"record not stored: {exc}"}), ()
        finally:
            if idempotency_key is not None:
                self._pending.pop(idempotency_key, None)
        self._applied += 1
        if idempotency_key is not None:
            if idempotency_key in self._applied_keys:
                self._duplicates_applied += 1
            self._applied_keys[idempotency_key] = record_id
        return 200, _applied_body(record_id), ()

    async def _replay(self, idempotency_key: str) -> _Response | None:
        record_id = self._applied_keys.get(idempotency_key)
        if record_id is None:
            pending = self._pending.get(idempotency_key)
            if pending is None:
                return None
            record_id, durable = pending
            try:
                await asyncio.shield(durable)
            except Exception as exc:
                return 500, orjson.dumps({"error": f"first attempt not stored: {exc}"}), ()
        self._suppressed += 1
        return 200, _applied_body(record_id), (("idempotent-replayed", "true"),)

    async def _serve_control(self, request: _Request) -> _Response:
        if request.target == "/_stats" and request.method == "GET":
            return 200, orjson.dumps(self.stats().as_json()), ()
        if request.target != "/_control":
            return 404, b'{"error":"not found: try /_control or /_stats"}', ()
        if request.method == "GET":
            return 200, orjson.dumps(asdict(self._settings)), ()
        if request.method != "POST":
            return 405, b'{"error":"GET or POST"}', (("allow", "GET, POST"),)
        try:
            changes = _control_changes(request.body)
            settings = await self.set_mode(**changes)
        except (ValueError, TypeError) as exc:
            return 400, orjson.dumps({"error": str(exc)}), ()
        except OSError as exc:
            return 500, orjson.dumps({"error": f"cannot listen again: {exc}"}), ()
        return 200, orjson.dumps(asdict(settings)), ()


def _applied_body(record_id: int) -> bytes:
    return b'{"id":"r-%d","received":true}' % record_id


def _control_changes(body: bytes) -> dict[str, Any]:
    try:
        changes = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from None
    if not isinstance(changes, dict):
        raise ValueError("the body is a JSON object")
    known = {"mode", "slow_seconds", "retry_after", "poison_field", "poison_status"}
    if unknown := sorted(set(changes) - known):
        raise ValueError(f"unknown keys {unknown}; known: {sorted(known)}")
    for name in ("slow_seconds", "retry_after"):
        value = changes.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{name} is a number of seconds")
    status = changes.get("poison_status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise ValueError("poison_status is an HTTP error status (400-599)")
    poison_field = changes.get("poison_field", KEEP)
    if poison_field is not KEEP and poison_field is not None and not isinstance(poison_field, str):
        raise ValueError("poison_field is a field name or null")
    if "mode" in changes and changes["mode"] is None:
        raise ValueError("mode cannot be null")
    return changes


def _lookup(document: Any, path: Sequence[str]) -> Any:
    for name in path:
        if not isinstance(document, dict):
            return None
        document = document.get(name)
    return document


def _as_key(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _is_poison(document: Any, poison_field: str) -> bool:
    if not isinstance(document, dict):
        return False
    if document.get(poison_field):
        return True
    data = document.get("data")
    return isinstance(data, dict) and bool(data.get(poison_field))


class _RecordWriter:
    """The one writer of the SQLite file: a thread committing queued rows in batches."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._queue: queue.SimpleQueue[tuple[tuple[Any, ...], asyncio.Future[None]] | None]
        self._queue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> tuple[int, dict[str, int]]:
        """Create the schema; return the next free id and every applied idempotency key."""
        with closing(self._connect()) as db:
            db.execute(_SCHEMA)
            next_id = db.execute("SELECT coalesce(max(id), 0) + 1 FROM records").fetchone()[0]
            keys = dict(
                db.execute(
                    "SELECT idempotency_key, id FROM records WHERE idempotency_key IS NOT NULL"
                    " ORDER BY id"
                ).fetchall()
            )
        return next_id, keys

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="recording-sink-writer")
        self._thread.start()

    def submit(self, row: tuple[Any, ...], durable: asyncio.Future[None]) -> None:
        self._queue.put((row, durable))

    def stop(self) -> None:
        """Commit what is queued, then end the thread (blocking: call via a worker thread)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            db.close()
            raise RuntimeError(f"{self._path}: SQLite refused WAL mode (got {mode!r})")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _run(self) -> None:
        assert self._loop is not None
        with closing(self._connect()) as db:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < _BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                error: Exception | None = None
                try:
                    db.execute("BEGIN IMMEDIATE")
                    db.executemany(_INSERT, [row for row, _ in batch])
                    db.execute("COMMIT")
                except Exception as exc:
                    error = exc
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                futures = [durable for _, durable in batch]
                self._loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for durable in futures:
        if durable.done():
            continue
        if error is None:
            durable.set_result(None)
        else:
            durable.set_exception(error)


_Response = tuple[int, bytes, tuple[tuple[str, str], ...]]
_Handler = Callable[["_Request"], Awaitable[_Response]]


class _Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "received_at", "target")

    def __init__(
        self, method: str, target: str, headers: dict[bytes, bytes], body: bytes, keep_alive: bool
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.received_at = time.time()

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")


class _HttpServer:
    """A lean HTTP/1.1 server (httptools parser): keep-alive, pipelining, one handler."""

    def __init__(self, handler: _Handler) -> None:
        self.handler = handler
        self.port = 0
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def listen(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), HOST, port, reuse_address=True, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop_listening(self, *, reset_connections: bool) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if reset_connections:
            for connection in list(self.connections):
                connection.reset()
        await server.wait_closed()

    async def close(self, *, grace: float) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks))
        for connection in list(self.connections):
            connection.reset()
        if server is not None:
            await server.wait_closed()
        # Let transports run connection_lost before the loop goes away.
        await asyncio.sleep(0)


class _Connection(asyncio.Protocol):
    """One client connection: parse requests, answer them in order."""

    def __init__(self, server: _HttpServer) -> None:
        self._server = server
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._requests: deque[_Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._paused = False
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._body_size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._transport = None

    def reset(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, b'{"error":"protocol upgrades are not supported"}')
        except httptools.HttpParserError as exc:
            self._fail(400, orjson.dumps({"error": f"bad request: {exc}"}))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        expect = self._headers.get(b"expect")
        if expect is not None and expect.lower() == b"100-continue" and self._transport:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size <= MAX_BODY:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._body_size > MAX_BODY:
            self._fail(413, b'{"error":"body larger than 16 MiB"}')
            return
        request = _Request(
            self._parser.get_method().decode("ascii", "replace"),
            self._url.decode("latin-1"),
            self._headers,
            b"".join(self._body),
            self._parser.should_keep_alive(),
        )
        self._requests.append(request)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._answer())
            self._server.tasks.add(self._task)
            self._task.add_done_callback(self._server.tasks.discard)
        elif len(self._requests) >= _MAX_PIPELINED and self._transport and not self._paused:
            self._transport.pause_reading()
            self._paused = True

    async def _answer(self) -> None:
        try:
            while self._requests and self._transport is not None:
                request = self._requests.popleft()
                try:
                    status, body, headers = await self._server.handler(request)
                except Exception as exc:
                    status, body, headers = 500, orjson.dumps({"error": repr(exc)}), ()
                transport = self._transport
                if transport is None or transport.is_closing():
                    return
                transport.write(_response_bytes(status, body, headers, request.keep_alive))
                if not request.keep_alive:
                    transport.close()
                    return
                if self._paused and len(self._requests) < _MAX_PIPELINED // 2:
                    transport.resume_reading()
                    self._paused = False
        finally:
            self._task = None

    def _fail(self, status: int, body: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_response_bytes(status, body, (), keep_alive=False))
            self._transport.close()


def _response_bytes(
    status: int, body: bytes, headers: tuple[tuple[str, str], ...], keep_alive: bool
) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
    )
    for name, value in headers:
        head += f"{name}: {value}\r\n"
    if not keep_alive:
        head += "connection: close\r\n"
    return (head + "\r\n").encode("latin-1") + body


async def _serve_until_signalled(args: argparse.Namespace) -> None:
    sink = await start_recording_sink(
        db_path=args.db,
        port=args.port,
        control_port=args.control_port,
        naive=args.naive,
        key_field=args.key_field,
        seq_field=args.seq_field,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    ready = {"ready": True, "port": sink.port, "control_port": sink.control_port}
    print(json.dumps(ready), flush=True)
    try:
        await stop.wait()
    finally:
        await sink.close()
    print(json.dumps({"stopped": True, **sink.stats().as_json()}), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """The CLI: serve until SIGTERM or SIGINT, then flush, close and exit 0."""
    parser = argparse.ArgumentParser(
        prog="python -m seamline.sandbox.recording_sink",
        description="An HTTP target that durably records what it applies.",
    )
    parser.add_argument("--port", type=int, default=0, help="data port (0: pick a free one)")
    parser.add_argument("--control-port", type=int, default=0, help="/_control and /_stats")
    parser.add_argument("--db", required=True, help="SQLite file to record into")
    parser.add_argument("--naive", action="store_true", help="ignore Idempotency-Key")
    parser.add_argument("--key-field", help="JSON body field stored as key (dotted path)")
    parser.add_argument("--seq-field", help="integer JSON body field stored as seq")
    args = parser.parse_args(argv)
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # Windows: uvloop is not installed there
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve_until_signalled(args))


if __name__ == "__main__":
    main(sys.argv[1:])
