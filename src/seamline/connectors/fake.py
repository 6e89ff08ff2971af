"""`FakeSink`: a target that answers from a script and remembers what it was sent.

Tests use it the way httpx tests use `MockTransport`: the worker runs unchanged, and the test
decides what each request gets back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from seamline.connectors.base import Exchange
from seamline.errors import SeamlineError

Answer = Callable[[dict[str, Any]], Exchange]


def answer(
    status: int | None = 200,
    *,
    error: SeamlineError | None = None,
    refs: Mapping[str, str] | None = None,
) -> Answer:
    """A scripted reply: a status (and the error the real sink would have classified it as)."""

    def reply(body: dict[str, Any]) -> Exchange:
        return Exchange(orjson.dumps(body), status, b'{"ok":true}', 0.001, error, dict(refs or {}))

    return reply


@dataclass
class FakeSink:
    script: list[Answer] = field(default_factory=list)
    default: Answer = field(default_factory=answer)
    safe: bool = True
    sent: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    def idempotent(self, operation: str, options: Mapping[str, Any]) -> bool:
        return self.safe

    async def send(
        self,
        operation: str,
        body: dict[str, Any],
        *,
        options: Any,
        idempotency_key: str,
        headers: Mapping[str, str] | None = None,
    ) -> Exchange:
        self.sent.append((operation, body, idempotency_key))
        reply = self.script.pop(0) if self.script else self.default
        return reply(body)

    async def close(self) -> None:
        return None
