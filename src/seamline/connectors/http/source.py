"""Standard Webhooks in: verify on the raw bytes at ingest, decode later in the router.

The body is the Standard Webhooks payload `{"type": "order.created", "timestamp": ...,
"data": {...}}`; the fields holding the event name and the data are options.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from seamline.connectors.base import Event
from seamline.connectors.http.connector import HttpOptions
from seamline.connectors.http.signature import WebhookVerifier
from seamline.engine.mapping import read_path
from seamline.errors import ContractError


class HttpSource:
    def __init__(self, name: str, options: HttpOptions) -> None:
        self.name = name
        self.options = options
        self._verifier = WebhookVerifier(
            [s.reveal() for s in options.secrets], tolerance=options.tolerance
        )

    def verify(self, raw_headers: Sequence[tuple[bytes, bytes]], body: bytes) -> str:
        return self._verifier.verify_asgi(raw_headers, body)

    def decode(self, headers: Mapping[str, str], body: bytes) -> Event:
        try:
            payload: Any = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ContractError(f"body is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise ContractError("body must be a JSON object")
        name = payload.get(self.options.event_field)
        if not isinstance(name, str) or not name:
            raise ContractError(f"body has no event name in '{self.options.event_field}'")
        data = payload.get(self.options.data_field)
        if not isinstance(data, dict):
            raise ContractError(f"body has no object in '{self.options.data_field}'")
        if self.options.events and name not in self.options.events:
            raise ContractError(
                f"'{self.name}' is declared to send {', '.join(self.options.events)}, not '{name}'"
            )
        keys = {}
        for key, path in self.options.keys.items():
            value = read_path(data, path)
            if value is not None:
                keys[key] = str(value)
        return Event(name, data, keys)
