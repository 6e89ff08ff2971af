"""What reaches the socket through the hub's corked transport, and when."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable
from typing import Any, cast

import pytest
import uvicorn

from seamline.engine.server import JOIN_AT_MOST, CorkedTransport, Protocol, Server


class RecordingTransport:
    """A transport that records what it was asked to do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes | None]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, pieces: Iterable[bytes]) -> None:
        self.calls.append(("writelines", b"|".join(pieces)))

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7


Step = Callable[[CorkedTransport, RecordingTransport], Any]


def write(data: bytes) -> Step:
    return lambda corked, _: corked.write(data)


def lines(*pieces: bytes) -> Step:
    return lambda corked, _: corked.writelines(pieces)


def call(name: str) -> Step:
    return lambda corked, _: getattr(corked, name)()


def peer_gone() -> Step:
    def step(_: CorkedTransport, transport: RecordingTransport) -> None:
        transport.closing = True

    return step


TURN = "end of the event loop's turn"
BIG = b"x" * (JOIN_AT_MOST + 1)


@pytest.mark.parametrize(
    ("steps", "sent"),
    [
        pytest.param(
            [write(b"HEAD"), write(b"BODY")],
            [("write", b"HEADBODY")],
            id="an answer's head and body in one turn leave in one send, at once",
        ),
        pytest.param(
            [write(b"HEAD"), TURN],
            [("write", b"HEAD")],
            id="a write alone leaves at the end of the turn",
        ),
        pytest.param(
            [write(b"a"), write(b"b"), write(b"c"), TURN],
            [("write", b"ab"), ("write", b"c")],
            id="writes keep their order, in pairs",
        ),
        pytest.param(
            [write(b"a"), TURN, write(b"b"), TURN],
            [("write", b"a"), ("write", b"b")],
            id="no write waits past its turn",
        ),
        pytest.param(
            [write(b"HEAD"), write(BIG)],
            [("writelines", b"HEAD|" + BIG)],
            id="a large body goes beside its head in one call, not copied into a new buffer",
        ),
        pytest.param(
            [write(b"HEAD"), lines(b"a", b"b")],
            [("writelines", b"HEAD|a|b")],
            id="writelines sends what waits with its pieces, at once",
        ),
        pytest.param(
            [write(b"HEAD"), call("flush"), write(b"BODY"), TURN],
            [("write", b"HEAD"), ("write", b"BODY")],
            id="flush sends what waits at once",
        ),
        pytest.param(
            [write(b"BYE"), call("close"), TURN],
            [("write", b"BYE"), ("close", None)],
            id="close sends what waits first",
        ),
        pytest.param(
            [write(b"LAST"), call("write_eof"), TURN],
            [("write", b"LAST"), ("write_eof", None)],
            id="write_eof sends what waits first",
        ),
        pytest.param(
            [write(b"LOST"), call("abort"), TURN],
            [("abort", None)],
            id="abort drops what waits",
        ),
        pytest.param(
            [write(b"LOST"), peer_gone(), TURN],
            [],
            id="what waits when the peer has gone is dropped",
        ),
    ],
)
def test_the_corked_transport_sends_writes_in_pairs_within_a_turn(
    steps: list[Step | str], sent: list[tuple[str, bytes | None]]
) -> None:
    async def go() -> list[tuple[str, bytes | None]]:
        transport = RecordingTransport()
        corked = CorkedTransport(cast(asyncio.Transport, transport), asyncio.get_running_loop())
        for step in steps:
            if step == TURN:
                await asyncio.sleep(0)  # the held write's callback runs
            else:
                assert callable(step)
                step(corked, transport)
        return transport.calls

    assert asyncio.run(go()) == sent


def test_what_waits_counts_in_the_write_buffer() -> None:
    async def go() -> tuple[int, int]:
        transport = RecordingTransport()
        corked = CorkedTransport(cast(asyncio.Transport, transport), asyncio.get_running_loop())
        corked.write(b"12345")
        waiting = corked.get_write_buffer_size()
        await asyncio.sleep(0)
        return waiting, corked.get_write_buffer_size()

    assert asyncio.run(go()) == (7 + 5, 7)


def test_a_bytearray_written_is_sent_as_it_was_when_written() -> None:
    async def go() -> list[tuple[str, bytes | None]]:
        transport = RecordingTransport()
        corked = CorkedTransport(cast(asyncio.Transport, transport), asyncio.get_running_loop())
        data = bytearray(b"before")
        corked.write(data)
        data[:] = b"after!"
        await asyncio.sleep(0)
        return transport.calls

    assert asyncio.run(go()) == [("write", b"before")]


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every request 200 with a short body (none for HEAD, as the server sends)."""
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize(
    ("request_line", "answer_ends"),
    [
        pytest.param(b"HEAD / HTTP/1.1", b"content-length: 2\r\n\r\n", id="HEAD: a head alone"),
        pytest.param(b"GET / HTTP/1.1", b"\r\n\r\nok", id="GET: a head and a body"),
    ],
)
def test_a_client_that_half_closes_after_its_request_gets_the_whole_answer(
    request_line: bytes, answer_ends: bytes
) -> None:
    """On a real server on loopback: the peer's EOF makes uvloop close the transport, and
    the answer still waiting for the end of the turn must be sent before that."""

    async def go() -> bytes:
        config = uvicorn.Config(
            _app, host="127.0.0.1", port=0, http=Protocol, lifespan="off", log_level="warning"
        )
        server = Server(config)
        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        try:
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
                await asyncio.sleep(0.01)
            reader, writer = await asyncio.open_connection(*listening.getsockname())
            writer.write(request_line + b"\r\nHost: hub\r\n\r\n")
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), timeout=5)
            writer.close()
            return answer
        finally:
            server.should_exit = True
            await serving

    answer = asyncio.run(go())
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert answer.endswith(answer_ends), answer
