"""``python -m seamline.sandbox.shopify``: serve a simulated shop until SIGTERM or SIGINT.

Prints one JSON line when ready, e.g.
``{"ready": true, "port": 40123, "url": "http://127.0.0.1:40123", "shop":
"seamline-sim-1.myshopify.com", "token": "shpat_...", "secret": "shpss_...", "api_version":
"2026-07"}``. These credentials are the simulator's own, derived from the seed, and open
nothing but it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence

from seamline.sandbox.shopify.simulator import ShopifySimulator
from seamline.sandbox.shopify.versions import LATEST


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m seamline.sandbox.shopify", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shop", help="shop name (default: seamline-sim-SEED)")
    parser.add_argument("--token", help="Admin API access token (default: derived from the seed)")
    parser.add_argument("--secret", help="app client secret (default: derived from the seed)")
    parser.add_argument("--currency", default="EUR", help="the shop's currency")
    parser.add_argument("--api-version", default=LATEST)
    parser.add_argument("--orders", type=int, default=0, help="orders to generate at start")
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--customers", type=int, default=10)
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="webhook retry schedule factor"
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with ShopifySimulator(
        seed=args.seed,
        port=args.port,
        shop=args.shop,
        token=args.token,
        secret=args.secret,
        currency=args.currency,
        api_version=args.api_version,
        orders=args.orders,
        products=args.products,
        customers=args.customers,
        time_scale=args.time_scale,
    ) as sim:
        ready = {
            "ready": True,
            "port": sim.port,
            "url": sim.url,
            "shop": sim.shop,
            "token": sim.token,
            "secret": sim.secret,
            "api_version": sim.api_version,
        }
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
