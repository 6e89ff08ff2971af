"""The trivial endpoint the ingest benchmark is measured against: read the POST body, answer 200.

Same server as the hub (uvicorn, httptools, uvloop, one process, and the hub's protocol that
sends an answer's head and body in one piece: `seamline.engine.server`), nothing else.
`--stock` serves it with uvicorn's own protocol instead, as the benchmarks before stop 24 did:

    python bench/trivial.py --port 8100 [--cpu 0] [--stock]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from seamline.engine.server import Protocol

Message = MutableMapping[str, Any]


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--stock", action="store_true", help="uvicorn's own httptools protocol")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        http="httptools" if args.stock else Protocol,
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        date_header=False,
        backlog=2048,
    )


if __name__ == "__main__":
    main()
