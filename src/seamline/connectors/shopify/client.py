"""The Shopify Admin API on the wire: GraphQL and REST, the version pinned, limits read.

Every call answers with an `Answer`: what was sent (never the token), what came back, and
the decision (`error`), so the sink can record each attempt as it happened. Decisions:

| answer                                            | error                                    |
|---------------------------------------------------|------------------------------------------|
| GraphQL 200, an error with code THROTTLED         | ThrottledError: (requested - available)  |
|                                                   | / restoreRate seconds                    |
| 429 (REST bucket; GraphQL on some shops)          | ThrottledError: `Retry-After`, or 1 s    |
| 5xx, 408, connection refused                      | TransientError (`Retry-After` kept)      |
| no answer after a mutation was sent               | UnknownOutcomeError                      |
| 401/403                                           | PermanentError: the token is refused     |
| other GraphQL `errors` (not this API version's)   | ContractError                            |
| `userErrors` of a mutation                        | PermanentError with Shopify's messages   |

Limits are honoured where they are learnt: each GraphQL answer's `throttleStatus` and the REST
`X-Shopify-Shop-Api-Call-Limit` are kept (`throttle`, `call_limit`), and a throttled answer's
wait becomes the hold of the system's shared budget (the worker does that with any
`ThrottledError`). Shopify's deprecation header and a version other than the pinned one become
`warnings`, shown on the system in `seamline status`.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from seamline.connectors.base import error_for_status, retry_after
from seamline.connectors.http.client import ConnectFailed, HttpClient, NoAnswer
from seamline.connectors.shopify.connector import ShopifyOptions
from seamline.errors import (
    ContractError,
    PermanentError,
    SeamlineError,
    ThrottledError,
    TransientError,
    UnknownOutcomeError,
)

DEFAULT_THROTTLE_WAIT = 1.0
MAX_WARNINGS = 20


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    maximum: float
    available: float
    restore_rate: float


@dataclass(slots=True)
class Answer:
    request: bytes
    status: int | None
    body: bytes
    duration: float
    data: Any = None
    """GraphQL `data`, or the decoded REST body."""
    error: SeamlineError | None = None
    headers: dict[str, str] = field(default_factory=dict)


class ShopifyClient:
    """One shop's Admin API at the pinned version, over a keep-alive connection pool."""

    def __init__(self, name: str, options: ShopifyOptions) -> None:
        self.name = name
        self.options = options
        self.version = options.api_version
        self._http = HttpClient(options.url, timeout=options.timeout)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if options.access_token is not None:
            self._headers["X-Shopify-Access-Token"] = options.access_token.reveal()
        self.throttle: ThrottleStatus | None = None
        self.call_limit: tuple[int, int] | None = None
        self.warnings: dict[str, float] = {}
        """What Shopify said that an operator should see, with when it was first seen."""

    def http(self) -> HttpClient:
        return self._http

    async def close(self) -> None:
        await self._http.close()

    def _path(self, resource: str, params: Mapping[str, Any] | None = None) -> str:
        path = f"/admin/api/{self.version}/{resource}"
        if params:
            path += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return path

    async def graphql(
        self, query: str, variables: Mapping[str, Any], *, mutation: bool = False
    ) -> Answer:
        body = orjson.dumps({"query": query, "variables": variables})
        answer = await self._call("POST", self._path("graphql.json"), body, mutation=mutation)
        if answer.error is not None and answer.status != 200:
            return answer
        decoded = _json(answer.body)
        if not isinstance(decoded, dict):
            answer.error = TransientError(f"{self.name}: GraphQL answer is not a JSON object")
            return answer
        cost = (decoded.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus")
        if isinstance(status, dict):
            self.throttle = ThrottleStatus(
                float(status.get("maximumAvailable") or 0),
                float(status.get("currentlyAvailable") or 0),
                float(status.get("restoreRate") or 0),
            )
        errors = decoded.get("errors")
        if errors:
            codes = {(e.get("extensions") or {}).get("code") for e in errors if isinstance(e, dict)}
            if "THROTTLED" in codes:
                answer.error = ThrottledError(
                    f"{self.name}: GraphQL cost limit reached", retry_after=self._wait(cost)
                )
            else:
                messages = "; ".join(
                    str(e.get("message", e)) for e in errors if isinstance(e, dict)
                )
                answer.error = ContractError(
                    f"{self.name}: Shopify {self.version} refused the query: {messages}"
                )
            return answer
        answer.data = decoded.get("data")
        return answer

    def _wait(self, cost: Mapping[str, Any]) -> float:
        requested = float(cost.get("requestedQueryCost") or 0)
        if self.throttle is None or self.throttle.restore_rate <= 0:
            return DEFAULT_THROTTLE_WAIT
        shortfall = requested - self.throttle.available
        return max(0.1, shortfall / self.throttle.restore_rate)

    async def rest(
        self, method: str, resource: str, params: Mapping[str, Any] | None = None
    ) -> Answer:
        answer = await self._call(
            method, self._path(resource, params), b"", mutation=method != "GET"
        )
        limit = answer.headers.get("x-shopify-shop-api-call-limit")
        if limit and "/" in limit:
            used, _, size = limit.partition("/")
            if used.isdigit() and size.isdigit():
                self.call_limit = (int(used), int(size))
        if answer.error is None:
            answer.data = _json(answer.body)
        return answer

    async def _call(self, method: str, path: str, body: bytes, *, mutation: bool) -> Answer:
        record = f"{method} {self.options.url}{path}\n".encode() + body
        started = time.perf_counter()
        try:
            response = await self.http().request(method, path, headers=self._headers, body=body)
        except ConnectFailed as exc:
            error: SeamlineError = TransientError(f"{self.name}: {exc}")
            return Answer(record, None, b"", time.perf_counter() - started, error=error)
        except NoAnswer as exc:
            kind = UnknownOutcomeError if mutation else TransientError
            error = kind(f"{self.name}: {exc}")
            return Answer(record, None, b"", time.perf_counter() - started, error=error)
        answer = Answer(
            record,
            response.status,
            response.body,
            time.perf_counter() - started,
            headers=response.headers,
        )
        self._notice(path, response.headers)
        summary = response.body[:200].decode("utf-8", "replace")
        if response.status == 429:
            wait = retry_after(response.headers)
            answer.error = ThrottledError(
                f"{self.name}: throttled (429)",
                retry_after=DEFAULT_THROTTLE_WAIT if wait is None else wait,
            )
        elif response.status in (401, 403):
            answer.error = PermanentError(
                f"{self.name}: Shopify refused the access token ({response.status}): {summary}"
            )
        else:
            answer.error = error_for_status(response.status, response.headers, summary)
        return answer

    def _notice(self, path: str, headers: Mapping[str, str]) -> None:
        reason = headers.get("x-shopify-api-deprecated-reason")
        if reason:
            resource = path.split("?", 1)[0]
            self._warn(f"deprecated call {resource}: {reason}")
        used = headers.get("x-shopify-api-version")
        if used and used != self.version:
            self._warn(
                f"asked for API version {self.version}, Shopify answered with {used} "
                "(the pinned version is no longer supported: update api_version)"
            )

    def _warn(self, text: str) -> None:
        if text not in self.warnings and len(self.warnings) < MAX_WARNINGS:
            self.warnings[text] = time.time()


def gid(kind: str, value: str | int) -> str:
    """`gid://shopify/{kind}/{id}` from a numeric id, or the gid as given."""
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{text}"


def legacy_id(value: str | int) -> str:
    """The numeric id inside a gid (`gid://shopify/Order/123?x=y` → `123`), or as given."""
    text = str(value)
    if text.startswith("gid://"):
        return text.rsplit("/", 1)[1].split("?", 1)[0]
    return text


def user_errors(payload: Any) -> str | None:
    """The messages of a mutation's `userErrors` (any `*UserErrors` list), or None."""
    if not isinstance(payload, dict):
        return None
    messages = []
    for key, value in payload.items():
        if key.endswith(("userErrors", "UserErrors")) and isinstance(value, list):
            for e in value:
                if isinstance(e, dict):
                    where = ".".join(str(f) for f in e.get("field") or [])
                    messages.append(
                        f"{where}: {e.get('message')}" if where else str(e.get("message"))
                    )
    return "; ".join(messages) if messages else None


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
