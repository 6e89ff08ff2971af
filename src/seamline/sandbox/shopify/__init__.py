"""A faithful Shopify for demos, tests, load and chaos runs: ``seamline.sandbox.shopify``.

One stateful shop (products, variants, inventory, locations, customers, orders,
fulfillments, refunds) behind the REST and GraphQL Admin API subset Seamline's connector
uses, with Shopify's auth header, versioned URLs, cursor pagination, both rate limiters,
signed webhooks with Shopify's retry and removal rules, a seeded order generator and fault
switches. What is simulated and what is not: ``README.md`` beside this file.

In-process (primary)::

    async with ShopifySimulator(seed=1, time_scale=0.001) as sim:
        sim.subscribe("orders/create", address)
        sim.generate_orders(10)

As a process: ``python -m seamline.sandbox.shopify --port 0 --seed 1`` prints one JSON line
``{"ready": true, "port": ..., "shop": ..., "token": ..., "secret": ..., "api_version": ...}``
and serves until SIGTERM; ``/_sim/...`` (see `control`) drives it.

Modules: `simulator` (the object), `shop` (state and changes), `catalogue` and `generator`
(seeded records), `order` and `money` (arithmetic), `rest`, `graphql`, `resolvers`,
`mutations`, `cost`, `limits`, `pagination`, `search` (the API), `webhooks`, `faults`,
`server`, `control` (HTTP), `versions`, `clock`, `ids`.
"""

from seamline.sandbox.shopify.faults import Faults
from seamline.sandbox.shopify.generator import OrderOptions
from seamline.sandbox.shopify.simulator import ShopifySimulator
from seamline.sandbox.shopify.versions import LATEST, SUPPORTED
from seamline.sandbox.shopify.webhooks import Attempt, DeliveryOptions, sign

__all__ = [
    "LATEST",
    "SUPPORTED",
    "Attempt",
    "DeliveryOptions",
    "Faults",
    "OrderOptions",
    "ShopifySimulator",
    "sign",
]
