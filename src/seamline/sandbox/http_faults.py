"""An HTTP/1.1 proxy on loopback that misbehaves on purpose, in front of any target.

```python
async with HttpFaultProxy(upstream_port) as proxy:   # the target's URL becomes proxy.url
    proxy.inject("throttle", count=20, retry_after=2)  # 20 answers 429 with Retry-After: 2
    proxy.inject("fail", seconds=5, status=503)        # 5 s of 503s
    proxy.inject("slow", count=3, delay=40)            # 3 answers held 40 s (past a timeout)
    proxy.inject("lose_answer", count=1)               # applied upstream, answer never comes
    proxy.inject("reset", count=1)                     # connection reset, request not sent
    proxy.inject("lose_answer", count=1, match=b"mutation")  # only requests holding this
```

Faults are taken in the order injected; each lasts `count` requests or `seconds`, whichever
is given; one with `match` applies only to requests whose bytes contain it (the write of an
operation that reads first), and the others pass it by. With none pending, requests go
through untouched, each on its own upstream connection (the client's keep-alive is kept).
It speaks enough HTTP for the targets here: requests with a `Content-Length` body, answers
with `Content-Length` or chunked bodies.
`lose_answer` is the fault that makes an unknown outcome: the target did the work, the client
hears nothing; only an idempotent operation may be retried after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

Kind = Literal["throttle", "fail", "slow", "lose_answer", "reset"]
HEAD_LIMIT = 64 * 1024


@dataclass(slots=True)
class _Fault:
    kind: Kind
    count: int | None
    until: float | None
    status: int = 503
    retry_after: float | None = None
    delay: float = 0.0
    match: bytes | None = None


@dataclass(slots=True)
class Stats:
    requests: int = 0
    forwarded: int = 0
    faults: Counter[str] = field(default_factory=Counter)


class HttpFaultProxy:
    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.stats = Stats()
        self._plan: deque[_Fault] = deque()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "the proxy is not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inject(
        self,
        kind: Kind,
        *,
        count: int | None = None,
        seconds: float | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        delay: float = 30.0,
        match: bytes | None = None,
    ) -> None:
        if (count is None) == (seconds is None):
            raise ValueError("a fault lasts `count` requests or `seconds`, one of them")
        until = None if seconds is None else time.monotonic() + seconds
        default = 429 if kind == "throttle" else 503
        self._plan.append(
            _Fault(
                kind,
                count,
                until,
                status or default,
                retry_after,
                delay if kind == "slow" else 0,
                match,
            )
        )

    def clear(self) -> None:
        self._plan.clear()

    @property
    def pending(self) -> int:
        return len(self._plan)

    async def __aenter__(self) -> HttpFaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._server.wait_closed()

    def _next_fault(self, request: bytes) -> _Fault | None:
        now = time.monotonic()
        for fault in [f for f in self._plan if f.until is not None and now >= f.until]:
            self._plan.remove(fault)
        for fault in self._plan:
            if fault.match is not None and fault.match not in request:
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self._plan.remove(fault)
            return fault
        return None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.stats.requests += 1
                fault = self._next_fault(request)
                if fault is not None:
                    self.stats.faults[fault.kind] += 1
                    if not await self._misbehave(fault, request, writer):
                        return
                    continue
                answer = await self._forward(request)
                self.stats.forwarded += 1
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _misbehave(self, fault: _Fault, request: bytes, writer: asyncio.StreamWriter) -> bool:
        """Play one fault; whether the client connection stays open."""
        if fault.kind == "reset":
            _abort(writer)
            return False
        if fault.kind == "lose_answer":
            await self._forward(request)
            self.stats.forwarded += 1
            _abort(writer)
            return False
        if fault.kind == "slow":
            answer = await self._forward(request)
            self.stats.forwarded += 1
            await asyncio.sleep(fault.delay)
            writer.write(answer)
            await writer.drain()
            return True
        headers = [f"HTTP/1.1 {fault.status} Fault", "Content-Type: application/json"]
        if fault.retry_after is not None:
            headers.append(f"Retry-After: {fault.retry_after:g}")
        body = b'{"errors":"injected by the fault proxy"}'
        headers.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode() + body)
        await writer.drain()
        return True

    async def _forward(self, request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(*self.upstream)
        try:
            writer.write(request)
            await writer.drain()
            return await _read_response(reader)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    except asyncio.LimitOverrunError:
        raise ValueError("request head too large") from None
    length = _content_length(head)
    body = await reader.readexactly(length) if length else b""
    # One request per upstream connection: say so, so the upstream closes after answering.
    head = _with_header(head, b"Connection", b"close")
    return head + body


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            body += size_line
            body += await reader.readexactly(size + 2)
            if size == 0:
                break
        return _keep_alive(head) + bytes(body)
    length = _content_length(head)
    if length is None:
        return _keep_alive(head) + await reader.read()
    return _keep_alive(head) + (await reader.readexactly(length) if length else b"")


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def _with_header(head: bytes, name: bytes, value: bytes) -> bytes:
    lines = [
        line
        for line in head[:-4].split(b"\r\n")
        if line.partition(b":")[0].strip().lower() != name.lower()
    ]
    return b"\r\n".join([*lines, name + b": " + value]) + b"\r\n\r\n"


def _keep_alive(head: bytes) -> bytes:
    """The client's connection stays open: the upstream's `Connection: close` is ours."""
    return _with_header(head, b"Connection", b"keep-alive")


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    with contextlib.suppress(Exception):
        transport.abort()
