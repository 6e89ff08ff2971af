"""JSON requests out, over one keep-alive connection pool per target system (`client.py`).

What the answer means is decided by `error_for_status`. A request that may have reached the
target without an answer (a timeout, a dropped connection after sending) is an
`UnknownOutcomeError`; one that never left (connection refused) is a plain `TransientError`.
"""

from __future__ import annotations

import functools
import string
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import orjson

from seamline.connectors.base import Exchange, error_for_status
from seamline.connectors.http.client import ConnectFailed, HttpClient, NoAnswer
from seamline.connectors.http.connector import HttpOptions, RequestOperation
from seamline.engine.mapping import read_path
from seamline.errors import ContractError, TransientError, UnknownOutcomeError

MAX_KEPT_RESPONSE = 64 * 1024


@functools.cache
def _template_fields(path: str) -> tuple[str, ...]:
    """The `{field}` names in a path template, parsed once per template."""
    return tuple(name for _text, name, _spec, _conv in string.Formatter().parse(path) if name)


def fill_path(path: str, body: Mapping[str, Any]) -> str:
    """`/orders/{order_id}` with values from the mapped body, URL-quoted."""
    fields = _template_fields(path)
    if not fields:
        return path
    values = {}
    for name in fields:
        value = body.get(name)
        if value is None:
            raise ContractError(
                f"the request path needs '{name}', which the mapped body does not have"
            )
        values[name] = urllib.parse.quote(str(value), safe="")
    return path.format_map(values)


class HttpSink:
    def __init__(self, name: str, options: HttpOptions) -> None:
        self.name = name
        self.options = options
        self._headers = {
            k: (v if isinstance(v, str) else v.reveal()) for k, v in options.headers.items()
        }
        self._headers.setdefault("Content-Type", "application/json")
        self._base = (options.base_url or "").rstrip("/")
        self._client = HttpClient(self._base, timeout=options.timeout)

    def idempotent(self, operation: str, options: Mapping[str, Any]) -> bool:
        return self.options.idempotent

    def client(self) -> HttpClient:
        return self._client

    async def send(
        self,
        operation: str,
        body: dict[str, Any],
        *,
        options: Mapping[str, Any] | RequestOperation,
        idempotency_key: str,
        headers: Mapping[str, str] | None = None,
    ) -> Exchange:
        op = _operation(options)
        return await self._exchange(
            op, fill_path(op.path, body), orjson.dumps(body), idempotency_key, headers
        )

    def raw_fields(
        self, operation: str, options: Mapping[str, Any] | RequestOperation
    ) -> frozenset[str]:
        return frozenset(_template_fields(_operation(options).path))

    async def send_raw(
        self,
        operation: str,
        body: bytes,
        fields: Mapping[str, Any],
        *,
        options: Mapping[str, Any] | RequestOperation,
        idempotency_key: str,
        headers: Mapping[str, str] | None = None,
    ) -> Exchange:
        op = _operation(options)
        return await self._exchange(op, fill_path(op.path, fields), body, idempotency_key, headers)

    async def _exchange(
        self,
        op: RequestOperation,
        path: str,
        data: bytes,
        idempotency_key: str,
        headers: Mapping[str, str] | None,
    ) -> Exchange:
        request_headers = {**self._headers, "Idempotency-Key": idempotency_key, **(headers or {})}
        record = f"{op.method} {self._base}{path}\n".encode() + data
        started = time.perf_counter()
        try:
            answer = await self.client().request(
                op.method, path, headers=request_headers, body=data
            )
        except ConnectFailed as exc:
            error: TransientError = TransientError(f"{self.name}: {exc}")
            return Exchange(record, None, b"", time.perf_counter() - started, error)
        except NoAnswer as exc:
            error = UnknownOutcomeError(f"{self.name}: {exc}")
            return Exchange(record, None, b"", time.perf_counter() - started, error)
        duration = time.perf_counter() - started
        summary = answer.body[:200].decode("utf-8", "replace")
        failure = error_for_status(answer.status, answer.headers, summary)
        refs: dict[str, str] = {}
        if failure is None and op.refs:
            refs = _refs(answer.body, op.refs)
        return Exchange(
            record,
            answer.status,
            answer.body[:MAX_KEPT_RESPONSE],
            duration,
            failure,
            refs,
            deprecation(self.name, f"{op.method} {op.path}", answer.headers),
        )

    async def close(self) -> None:
        await self._client.close()


def _operation(options: Mapping[str, Any] | RequestOperation) -> RequestOperation:
    if isinstance(options, RequestOperation):
        return options
    return RequestOperation.model_validate(options)


def deprecation(system: str, call: str, headers: Mapping[str, str]) -> tuple[str, ...]:
    """What a target says of the call's future: `Deprecation` (RFC 9745) and `Sunset`
    (RFC 8594) headers, as warnings an operator sees (the hub keeps them per system)."""
    lower = {k.lower(): v for k, v in headers.items()}
    said = []
    if "deprecation" in lower:
        said.append(f"{system}: {call} is deprecated (Deprecation: {lower['deprecation']})")
    if "sunset" in lower:
        said.append(f"{system}: {call} stops working at {lower['sunset']} (Sunset header)")
    return tuple(said)


def _refs(answer: bytes, paths: Mapping[str, str]) -> dict[str, str]:
    try:
        decoded = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return {}
    refs = {}
    for entity, path in paths.items():
        value = read_path(decoded, path)
        if value is not None:
            refs[entity] = str(value)
    return refs
