"""The hub's HTTP server: uvicorn with httptools, its answers sent in one piece.

uvicorn writes an answer's head and its body with a `transport.write` each, and uvloop sends
each write at once: two `send` calls, and two TCP segments through the kernel's network stack,
for an answer of ~150 bytes. `CorkedTransport` holds a write back until the next one, or the
end of the event loop's turn, and sends what it holds with it. For a webhook that is one send
instead of two: 1-3.5 µs less of the hub's CPU a webhook, 2-7% (`bench/README.md`, stop 24).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

JOIN_AT_MOST = 4096
"""A body up to this size is joined to the head it goes with; a larger one goes beside it."""


class Server(uvicorn.Server):
    """uvicorn without its own signal handling: the hub decides when and how to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through a `CorkedTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transports act as `asyncio.Transport`s without subclassing it
        corked = CorkedTransport(cast(asyncio.Transport, transport), asyncio.get_running_loop())
        super().connection_made(corked)

    def eof_received(self) -> None:
        # The client half-closed: uvloop closes the transport once this returns, so what
        # waits for the end of the turn (an answer to HEAD: a head alone) goes now.
        if isinstance(self.transport, CorkedTransport):
            self.transport.flush()
        super().eof_received()


class CorkedTransport(asyncio.Transport):
    """`transport`, its writes sent in pairs: a write waits for the next one, or for the end
    of the event loop's turn (never longer), and goes with it.

    An answer's head and body, written in one turn, leave in one send. Writes keep their
    order; `writelines`, `close` and `write_eof` send what waits first; `abort` drops it, as it
    drops what the transport holds. What waits when the transport is closing already (the
    peer reset the connection) is dropped too; `Protocol` sends it when the peer half-closes.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            # Held as bytes: the caller may change a bytearray it wrote once this returns.
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._held = None
            if len(data) <= JOIN_AT_MOST:
                self._transport.write(held + data)
            else:  # one `writev` of both, without copying a large body into a new buffer
                self._transport.writelines((held, data))

    def flush(self) -> None:
        """Send what waits now (dropped if the transport is closing already)."""
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        held = self._held
        self._held = None
        self._transport.writelines(list_of_data if held is None else [held, *list_of_data])

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        held = self._held
        return self._transport.get_write_buffer_size() + (0 if held is None else len(held))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()
