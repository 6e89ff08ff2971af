"""A small project for tests, benchmarks and load runs: a shop's orders to a recording sink.

The shop sends Standard Webhooks (`order.updated` by default) to `POST /hooks/shop`; the flow
`orders` PUTs each order, unmapped, to `/orders/{id}` on the sink, ordered by order id. The sink
honours `Idempotency-Key` (the recording sink does).
"""

from __future__ import annotations

from pathlib import Path

from seamline.connectors.http.signature import generate_secret


def write_shop_project(
    root: Path,
    *,
    hub_port: int,
    sink_port: int,
    event: str = "order.updated",
    batch: int = 100,
    loops: int = 2,
    processes: int = 0,
    lease: str = "10s",
    max_pending: int = 20_000,
    timeout: str = "5s",
    concurrency: int = 64,
    rate: float | None = None,
    burst: int | None = None,
    failures: int = 5,
    cooldown: str = "2s",
    retry: str = "{schedule: [0.2s, 0.5s, 1s, 2s], max_attempts: 8, jitter: 0.1}",
    owner: str = "sandbox",
    journal: str | None = None,
) -> str:
    """Write the project into `root` (created if needed); return the shop's signing secret."""
    secret = generate_secret()
    for folder in ("systems", "flows", "secrets"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "secrets" / "shop.secret").write_text(secret)
    (root / "seamline.yaml").write_text(
        f"listen: 127.0.0.1:{hub_port}\n"
        f"worker: {{batch: {batch}, lease: {lease}, loops: {loops}, processes: {processes}}}\n"
        f"ingest: {{max_pending: {max_pending}}}\nlog_level: warning\n"
        + (f"journal: {journal}\n" if journal else "")
    )
    (root / "systems" / "shop.yaml").write_text(
        "kind: http\nconnection:\n  secrets: [{file: secrets/shop.secret}]\n"
        "  keys: {order: order_number}\n"
    )
    (root / "systems" / "sink.yaml").write_text(
        f"kind: http\nconnection:\n  base_url: http://127.0.0.1:{sink_port}\n"
        f"  idempotent: true\n  timeout: {timeout}\n"
        f"budget:\n  concurrency: {concurrency}\n"
        + (f"  rate: {rate}\n" if rate else "")
        + (f"  burst: {burst}\n" if burst else "")
        + f"  circuit: {{failures: {failures}, cooldown: {cooldown}}}\n"
    )
    (root / "flows" / "orders.yaml").write_text(
        f"owner: {owner}\nsource: {{system: shop, events: [{event}]}}\n"
        "target: {system: sink, operation: request, options: {method: PUT, path: '/orders/{id}'}}\n"
        f"ordering: {{key: id}}\nretry: {retry}\n"
    )
    return secret
