"""The sink's HTTP client against servers that answer well, slowly, badly, or not at all."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable

import pytest

from seamline.connectors.http.client import ConnectFailed, HttpClient, NoAnswer

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def answering(*answers: bytes, then_close: bool = False) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            await read_request(reader)
            writer.write(answer)
            await writer.drain()
        if then_close:
            await close(writer)
            return
        await reader.read()  # keep the connection until the client closes it
        await close(writer)

    return handle


class Server:
    """A test server on loopback that counts connections and waits for its handlers at close."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.handlers: list[asyncio.Task[None]] = []
        self.server: asyncio.Server | None = None

    @property
    def connections(self) -> int:
        return len(self.handlers)

    async def __aenter__(self) -> str:
        async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.handlers.append(task)
            await self.handler(reader, writer)

        self.server = await asyncio.start_server(counted, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        await asyncio.wait(self.handlers, timeout=5)


OK = b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{"id": 42}\n'
CHUNKED = (
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nRetry-After: 3\r\n\r\n"
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
)


def test_keep_alive_connection_is_reused_and_chunked_answers_are_read_whole() -> None:
    async def go() -> None:
        server = Server(answering(OK, CHUNKED))
        async with server as url:
            client = HttpClient(url, timeout=5)
            first = await client.request("PUT", "/orders/1", headers={"X-A": "1"}, body=b"{}")
            second = await client.request("POST", "/orders", headers={}, body=b"{}")
            await client.close()
        assert (first.status, first.body) == (200, b'{"id": 42}\n')
        assert (second.status, second.body) == (201, b"hello world")
        assert second.headers["retry-after"] == "3"
        assert server.connections == 1

    asyncio.run(go())


def test_a_refused_connection_means_nothing_was_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused

        async def go() -> None:
            client = HttpClient(f"http://127.0.0.1:{port}", timeout=2)
            with pytest.raises(ConnectFailed):
                await client.request("POST", "/", headers={}, body=b"{}")
            await client.close()

        asyncio.run(go())


# (case, what the server does after reading the request)
NO_ANSWER = [
    ("silence past the timeout", answering()),
    ("closes without answering", answering(then_close=True)),
    (
        "closes mid-answer",
        answering(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", then_close=True),
    ),
    ("answers garbage", answering(b"this is not HTTP\r\n\r\n")),
]


@pytest.mark.parametrize(("case", "handler"), NO_ANSWER, ids=[c[0] for c in NO_ANSWER])
def test_a_request_without_a_complete_answer_has_an_unknown_outcome(
    case: str, handler: Handler
) -> None:
    async def go() -> None:
        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if case == "silence past the timeout":
                await read_request(reader)
                await asyncio.sleep(2)
                await close(writer)
                return
            await handler(reader, writer)

        async with Server(swallow) as url:
            client = HttpClient(url, timeout=0.3)
            with pytest.raises(NoAnswer):
                await client.request("POST", "/", headers={}, body=b"{}")
            await client.close()

    asyncio.run(go())


def test_a_connection_the_server_closed_is_not_reused() -> None:
    async def go() -> None:
        server = Server(_close_after_one())
        async with server as url:
            client = HttpClient(url, timeout=2)
            for _ in range(3):
                assert (await client.request("POST", "/", headers={}, body=b"{}")).status == 200
            await client.close()
        assert server.connections == 3

    asyncio.run(go())


def _close_after_one() -> Handler:
    return answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", then_close=True
    )


def test_a_pooled_connection_already_closing_is_not_written_to() -> None:
    # A proxy or the server dropped it while idle; its loss is not delivered yet
    async def go() -> None:
        server = Server(answering(OK))
        async with server as url:
            client = HttpClient(url, timeout=2)
            assert (await client.request("POST", "/", headers={}, body=b"{}")).status == 200
            (idle,) = client._idle
            assert idle.transport is not None
            idle.transport.close()
            answer = await client.request("POST", "/", headers={}, body=b"{}")
            await client.close()
        assert answer.status == 200
        assert server.connections == 2

    asyncio.run(go())
