"""``python -m seamline.sandbox.threepl --root DIR``: serve a simulated 3PL until SIGTERM/SIGINT.

Prints one JSON line when ready: ``{"ready": true, "host": "127.0.0.1", "port": 40123,
"username": "seamline", "password": "...", "host_key": "ssh-ed25519 AAAA...", "root": DIR}``.
The credentials are the simulator's own and open nothing but it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence

from seamline.sandbox.threepl.simulator import Faults, ThreePLSimulator


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m seamline.sandbox.threepl", description=__doc__)
    parser.add_argument("--root", required=True, help="directory holding in/ and out/")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--username", default="seamline")
    parser.add_argument("--password", help="default: made up at start")
    parser.add_argument("--ship-delay", type=float, default=60.0, help="seconds to ship")
    parser.add_argument("--time-scale", type=float, default=1.0, help="factor on every delay")
    parser.add_argument("--split-rate", type=float, default=0.2)
    parser.add_argument("--short-rate", type=float, default=0.1)
    parser.add_argument("--inventory-interval", type=float, help="seconds between snapshots")
    for fault in ("late", "duplicate", "malformed", "partial"):
        parser.add_argument(f"--{fault}", type=float, default=0.0, help=f"rate of {fault} files")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    faults = Faults(
        late=args.late, duplicate=args.duplicate, malformed=args.malformed, partial=args.partial
    )
    async with ThreePLSimulator(
        args.root,
        seed=args.seed,
        port=args.port,
        username=args.username,
        password=args.password,
        ship_delay=args.ship_delay,
        time_scale=args.time_scale,
        split_rate=args.split_rate,
        short_rate=args.short_rate,
        inventory_interval=args.inventory_interval,
        faults=faults,
    ) as sim:
        ready = {
            "ready": True,
            "host": sim.host,
            "port": sim.port,
            "username": sim.username,
            "password": sim.password,
            "host_key": sim.host_key,
            "root": str(sim.root),
        }
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
