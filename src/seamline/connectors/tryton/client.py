"""Tryton's JSON-RPC on the wire: session login, the value codec, the company context.

A call is `POST /<database>/rpc/` with exactly `{"id", "method", "params"}` (with another key,
trytond answers the bare result), `params` ending with the context, which must name the
company. Logging in (`common.db.login`) yields a session sent as
`Authorization: Session base64(login:user_id:session)`; an expired or revoked session is
refused with 401 or 403, and the client logs in again, once, and repeats the call (refused
calls were not applied).

Decisions:

| answer                                              | error                                 |
|-----------------------------------------------------|---------------------------------------|
| 200 `error: ["UserError" or "UserWarning", [msg..]]`| PermanentError with Tryton's message  |
| 200 `error: ["ConcurrencyException", ...]`          | TransientError                        |
| 200 `error: [message, traceback]` (server crash)    | TransientError (rolled back)          |
| 401 on login (wrong password)                       | PermanentError                        |
| 429 (failed logins)                                 | ThrottledError                        |
| 5xx, 408, 504 (Tryton's own timeout), refused       | TransientError                        |
| no answer after a write was sent                    | UnknownOutcomeError                   |

Tryton's typed values travel as `{"__class__": "Decimal", "decimal": "1.00"}`, `date`,
`datetime` (naive, UTC), `time`, `timedelta` and `bytes`: `encode`/`decode` do both ways.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import itertools
import json
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from seamline.connectors.base import error_for_status, retry_after
from seamline.connectors.http.client import ConnectFailed, HttpClient, NoAnswer, Response
from seamline.connectors.tryton.connector import TrytonOptions
from seamline.errors import (
    PermanentError,
    SeamlineError,
    ThrottledError,
    TransientError,
    UnknownOutcomeError,
)

BUSINESS_ERRORS = frozenset({"UserError", "UserWarning"})
_TRACE: ContextVar[list[Call] | None] = ContextVar("tryton_trace", default=None)


def encode(value: Any) -> Any:
    """Python values as Tryton's JSON: Decimal, date, datetime, time, timedelta, bytes tagged."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, datetime.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, datetime.time):
        return {
            "__class__": "time",
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, datetime.timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, bytes | bytearray):
        return {"__class__": "bytes", "base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(v) for v in value]
    return value


def _decode_object(obj: dict[str, Any]) -> Any:
    kind = obj.get("__class__")
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    if kind == "date":
        return datetime.date(obj["year"], obj["month"], obj["day"])
    if kind == "datetime":
        return datetime.datetime(
            obj["year"],
            obj["month"],
            obj["day"],
            obj["hour"],
            obj["minute"],
            obj["second"],
            obj["microsecond"],
            tzinfo=datetime.UTC,
        )
    if kind == "time":
        return datetime.time(obj["hour"], obj["minute"], obj["second"], obj["microsecond"])
    if kind == "timedelta":
        return datetime.timedelta(seconds=obj["seconds"])
    if kind == "bytes":
        return base64.b64decode(obj["base64"])
    return obj


def decode(body: bytes | str) -> Any:
    """Tryton's JSON as Python values; datetimes come back aware, in UTC."""
    return json.loads(body, object_hook=_decode_object)


def dumps(value: Any) -> bytes:
    return json.dumps(encode(value), separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Call:
    """One request as it happened: what was sent (no password or session), what came back."""

    request: bytes
    status: int | None
    body: bytes
    duration: float


class TrytonClient:
    """One Tryton database as one user, over a keep-alive connection pool."""

    def __init__(self, name: str, options: TrytonOptions) -> None:
        self.name = name
        self.options = options
        self._http = HttpClient(options.url, timeout=options.timeout)
        self._session: str | None = None
        self.user_id: int | None = None
        self.company: int | None = options.company
        self.logins = 0
        """Logins made so far (the first, and one per expired session)."""
        self._ids = itertools.count(1)

    def http(self) -> HttpClient:
        return self._http

    async def close(self) -> None:
        await self._http.close()

    @property
    def _path(self) -> str:
        return f"/{self.options.database}/rpc/"

    @staticmethod
    @contextlib.contextmanager
    def recording() -> Iterator[list[Call]]:
        """Collect the calls made inside (in this task), for one attempt's Exchange."""
        calls: list[Call] = []
        token = _TRACE.set(calls)
        try:
            yield calls
        finally:
            _TRACE.reset(token)

    # --- session ----------------------------------------------------------------------------

    async def login(self) -> None:
        if self.options.password is None:
            raise PermanentError(f"{self.name}: no password configured for Tryton")
        params = [self.options.username, {"password": self.options.password.reveal()}]
        shown = [self.options.username, {"password": "***"}, self.options.language]
        result = await self._post(
            "common.db.login", [*params, self.options.language], shown, write=False, auth=False
        )
        if not isinstance(result, list) or len(result) < 2:
            raise PermanentError(f"{self.name}: Tryton's login answered {result!r}")
        self.user_id, self._session = int(result[0]), str(result[1])
        self.logins += 1
        if self.company is None:
            preferences = await self.call("model.res.user.get_preferences", True, context={})
            company = preferences.get("company") if isinstance(preferences, dict) else None
            if not company:
                raise PermanentError(
                    f"{self.name}: user {self.options.username} has no current company in "
                    "Tryton; set connection.company"
                )
            self.company = int(company)

    async def logout(self) -> None:
        """End the session at the server (the next call logs in again)."""
        if self._session is not None:
            await self.call("common.db.logout")

    # --- calls ------------------------------------------------------------------------------

    async def model(
        self,
        model: str,
        method: str,
        *args: Any,
        write: bool = False,
        context: Mapping[str, Any] | None = None,
    ) -> Any:
        """`model.<model>.<method>(*args, context)` with the company in the context."""
        if self._session is None:
            await self.login()
        full = {"company": self.company, **(context or {})}
        return await self.call(f"model.{model}.{method}", *args, context=full, write=write)

    async def call(
        self,
        method: str,
        *args: Any,
        context: Mapping[str, Any] | None = None,
        write: bool = False,
    ) -> Any:
        """A call on the session (logging in first, and once more if it expired)."""
        if self._session is None:
            await self.login()
        params = [*args, dict(context)] if context is not None else list(args)
        try:
            return await self._post(method, params, params, write=write, auth=True)
        except _SessionRefused:
            self._session = None
        await self.login()
        try:
            return await self._post(method, params, params, write=write, auth=True)
        except _SessionRefused as refused:
            raise PermanentError(
                f"{self.name}: Tryton refused {method} right after a fresh login: {refused}"
            ) from None

    async def _post(
        self, method: str, params: list[Any], shown: list[Any], *, write: bool, auth: bool
    ) -> Any:
        call_id = next(self._ids)
        body = dumps({"id": call_id, "method": method, "params": params})
        record = f"POST {self.options.url}{self._path}\n".encode() + dumps(
            {"id": call_id, "method": method, "params": shown}
        )
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth and self._session is not None:
            token = f"{self.options.username}:{self.user_id}:{self._session}"
            headers["Authorization"] = "Session " + base64.b64encode(token.encode()).decode()
        trace = _TRACE.get()
        if trace is None:
            trace = []
        started = time.perf_counter()
        try:
            response = await self.http().request("POST", self._path, headers=headers, body=body)
        except ConnectFailed as exc:
            trace.append(Call(record, None, b"", time.perf_counter() - started))
            raise TransientError(f"{self.name}: {exc}") from None
        except NoAnswer as exc:
            trace.append(Call(record, None, b"", time.perf_counter() - started))
            kind = UnknownOutcomeError if write else TransientError
            raise kind(f"{self.name}: {method}: {exc}") from None
        trace.append(Call(record, response.status, response.body, time.perf_counter() - started))
        return self._result(method, response, auth=auth)

    def _result(self, method: str, response: Response, *, auth: bool) -> Any:
        summary = response.body[:200].decode("utf-8", "replace")
        if response.status in (401, 403) and auth:
            raise _SessionRefused(summary)
        if response.status == 401:
            raise PermanentError(
                f"{self.name}: Tryton refused the login of {self.options.username}"
            )
        if response.status == 429:
            wait = retry_after(response.headers)
            raise ThrottledError(
                f"{self.name}: Tryton throttled {method} (429)",
                retry_after=60.0 if wait is None else wait,
            )
        error = error_for_status(response.status, response.headers, summary)
        if error is not None:
            raise _with_name(self.name, method, error)
        try:
            answer = decode(response.body)
        except ValueError:
            raise TransientError(f"{self.name}: {method}: the answer is not JSON") from None
        if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
            raise TransientError(f"{self.name}: {method}: not a JSON-RPC answer: {summary}")
        if answer.get("error") is not None:
            raise self._error(method, answer["error"])
        return answer.get("result")

    def _error(self, method: str, error: Any) -> SeamlineError:
        if isinstance(error, list) and error and error[0] in BUSINESS_ERRORS:
            raise_args = error[1] if len(error) > 1 and isinstance(error[1], list) else []
            parts = [str(p) for p in raw_parts(raise_args) if p]
            message = " - ".join(parts) or str(error[0])
            return PermanentError(f"{self.name}: Tryton refused {method}: {message}")
        if isinstance(error, list) and error and error[0] == "ConcurrencyException":
            return TransientError(f"{self.name}: {method}: the record changed meanwhile")
        text = str(error[0]) if isinstance(error, list) and error else str(error)
        return TransientError(f"{self.name}: Tryton failed on {method}: {text[:300]}")


def raw_parts(args: list[Any]) -> list[Any]:
    """A UserError's (message, description, domain): the texts, without the domain."""
    return [a for a in args[:2] if isinstance(a, str)]


def _with_name(name: str, method: str, error: SeamlineError) -> SeamlineError:
    text = f"{name}: {method}: {error}"
    if isinstance(error, TransientError):
        return type(error)(text, retry_after=error.retry_after)
    return type(error)(text)


class _SessionRefused(Exception):
    """The session expired or was revoked: log in again and repeat the call."""
