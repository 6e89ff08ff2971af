"""A lean HTTP load generator for the benchmarks: signed webhooks over raw keep-alive sockets.

Each request is signed as it is sent (Standard Webhooks, its own id; bodies are 1,000
pre-encoded ~3 KB orders, cycled). `connections` loops each keep one request
in flight (closed loop), optionally paced to a total `rate` (open loop). It prints one JSON
line: answers by status, requests/s, latency percentiles and its own CPU seconds.

    python bench/loadgen.py --url http://127.0.0.1:8000/hooks/shop --secret whsec_... \
        --seconds 10 --connections 64 [--rate 3000] [--cpu 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
import urllib.parse
from collections import Counter
from typing import Any

import httptools
import orjson

from seamline.connectors.http.signature import sign
from seamline.sandbox.webhook_sender import order_data


class Requests:
    """Signed requests made on demand: distinct ids (the hub dedupes on them), bodies cycled."""

    def __init__(self, url: str, secret: str, prefix: str, event: str, limit: int) -> None:
        parts = urllib.parse.urlsplit(url)
        self.secret = secret
        self.prefix = prefix
        self.limit = limit
        self.count = 0
        self.bodies = [orjson.dumps({"type": event, "data": order_data(i)}) for i in range(1000)]
        self.head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\n"
        )

    def next(self) -> bytes | None:
        if self.count >= self.limit:
            return None
        i = self.count
        self.count += 1
        body = self.bodies[i % len(self.bodies)]
        msg_id = f"{self.prefix}-{i:08d}"
        now = int(time.time())
        signature = sign(self.secret, msg_id=msg_id, timestamp=now, body=body)
        return (
            f"{self.head}webhook-id: {msg_id}\r\nwebhook-timestamp: {now}\r\n"
            f"webhook-signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body


class _Client(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[int] | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("lost"))
        if not self.lost.done():
            self.lost.set_result(None)

    async def request(self, data: bytes) -> int:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.done


async def run(args: argparse.Namespace, requests: Requests) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(args.url)
    loop = asyncio.get_running_loop()
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    errors = 0
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    end = start + args.seconds
    interval = args.connections / args.rate if args.rate else 0.0

    async def worker(n: int) -> None:
        nonlocal errors
        client: _Client | None = None
        due = start + (interval * n / args.connections if interval else 0.0)
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            if interval:
                if due > now:
                    await asyncio.sleep(due - now)
                due += interval
            data = requests.next()
            if data is None:
                break
            if client is None or client.transport is None or client.transport.is_closing():
                _t, client = await loop.create_connection(_Client, parts.hostname, parts.port)
            sent = time.perf_counter()
            try:
                status = await client.request(data)
            except ConnectionError:
                errors += 1
                client = None
                continue
            latencies.append(time.perf_counter() - sent)
            statuses[status] += 1
        if client is not None and client.transport is not None:
            client.transport.close()

    await asyncio.gather(*(worker(i) for i in range(args.connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0
        )

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "seconds": round(elapsed, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "ok": ok,
        "errors": errors,
        "ok_per_s": round(ok / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
        "cpu_s": round(cpu, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="requests/s in total; 0 = closed loop"
    )
    parser.add_argument("--requests", type=int, default=10_000_000, help="at most this many")
    parser.add_argument("--prefix", default=f"b{os.getpid()}")
    parser.add_argument("--event", default="order.updated")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    requests = Requests(args.url, args.secret, args.prefix, args.event, args.requests)
    import uvloop

    print(json.dumps(uvloop.run(run(args, requests))), flush=True)


if __name__ == "__main__":
    main()
