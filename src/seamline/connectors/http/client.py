"""A lean HTTP/1.1 client for one origin: keep-alive connections, one request each at a time.

Delivery throughput is decided by the HTTP client (aiohttp ~4.5k requests/s here, a minimal
keep-alive client 2-3x that), so the sink's wire path is this: asyncio protocols with
httptools parsing responses, a pool of idle connections, and a deadline per request.

What can go wrong is reported by *when* it went wrong, because that decides whether a retry
is safe:

- `ConnectFailed`: nothing was sent (refused, unreachable, TLS failed, connect timeout);
- `NoAnswer`: the request was sent, or partly sent, and no complete answer came back
  (timeout, connection reset, malformed answer): it may have been applied.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

import httptools


class ConnectFailed(Exception):
    """No connection: the request was not sent."""


class NoAnswer(Exception):
    """The request left, no complete answer came back."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    """Lower-cased names; a repeated header keeps its last value."""
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; the pool hands it to one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.waiter: asyncio.Future[Response] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport by construction

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(NoAnswer(f"malformed answer: {exc}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(NoAnswer(f"connection closed before the answer{f' ({exc})' if exc else ''}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._keep_alive = self.parser.should_keep_alive()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            waiter.set_result(Response(self.parser.get_status_code(), self._headers, body))

    # the pool's side
    def send(self, data: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self._headers = {}
        self._body = []
        self.transport.write(data)
        return self.waiter

    def eof_received(self) -> bool | None:
        # The peer closed its side (an idle keep-alive timeout, a proxy cut): never reuse it,
        # even before `connection_lost` arrives.
        self.closed = True
        return None

    @property
    def reusable(self) -> bool:
        closing = self.transport is None or self.transport.is_closing()
        return not self.closed and not closing and self._keep_alive

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)


class HttpClient:
    """Requests to one origin (`http://host:port` or `https://...`) over pooled connections."""

    def __init__(
        self, base_url: str, *, timeout: float, connect_timeout: float | None = None
    ) -> None:
        """No connection is made here: the first request opens one (in the running loop)."""
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.prefix = url.path.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = min(5.0, timeout) if connect_timeout is None else connect_timeout
        self._ssl = ssl.create_default_context() if url.scheme == "https" else None
        default_port = self.port == (443 if url.scheme == "https" else 80)
        self._host_header = self.host if default_port else f"{self.host}:{self.port}"
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()

    async def request(
        self, method: str, path: str, *, headers: Mapping[str, str], body: bytes
    ) -> Response:
        head = [f"{method} {self.prefix}{path} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        head.append(f"Content-Length: {len(body)}\r\n\r\n")
        data = "".join(head).encode("latin-1") + body
        connection = await self._acquire()
        loop = asyncio.get_running_loop()
        try:
            answer = connection.send(data)
        except RuntimeError as exc:  # the transport closed between acquire and write
            connection.abort()
            self._all.discard(connection)
            raise ConnectFailed(f"connection to {self.host}:{self.port} closed: {exc}") from None
        deadline = loop.call_later(self.timeout, _expire, connection, self.timeout)
        try:
            response = await answer
        finally:
            deadline.cancel()
            self._release(connection)
        return response

    async def _acquire(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable:
                return connection
            self._all.discard(connection)
        loop = asyncio.get_running_loop()
        try:
            _transport, connection = await asyncio.wait_for(
                loop.create_connection(_Connection, self.host, self.port, ssl=self._ssl),
                self.connect_timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise ConnectFailed(
                f"cannot connect to {self.host}:{self.port}: {exc or 'timeout'}"
            ) from None
        self._all.add(connection)
        return connection

    def _release(self, connection: _Connection) -> None:
        if connection.reusable and connection.waiter is not None and connection.waiter.done():
            self._idle.append(connection)
        else:
            connection.abort()
            self._all.discard(connection)

    async def close(self) -> None:
        for connection in self._all:
            connection.abort()
        self._all.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports run their connection_lost


def _expire(connection: _Connection, timeout: float) -> None:
    connection._fail(NoAnswer(f"no answer within {timeout:g} s"))
    connection.abort()
