"""`Endpoint`: one route of the console, with the role it needs, and the guard in front of it.

The console's routes are a table of endpoints (pages in `pages.py`, the REST API in `api.py`).
The same table builds the Starlette routes, the OpenAPI document and the tests' role matrix,
so a route cannot exist without saying who may use it.

The guard, for every endpoint that is not public:

1. who: a bearer API token (`Authorization: Bearer sl_...`) or the session cookie;
   nobody → API 401, page 303 to /login;
2. may they: the principal's role at least the endpoint's → else 403;
3. a state-changing request (POST, PUT, PATCH, DELETE) on a session cookie must come from our
   own origin (Origin, else Referer) and carry the session's anti-CSRF token (`X-CSRF-Token`
   header or `csrf` form field) → else 403, before anything is read or written. Bearer tokens
   are not sent by browsers on their own, so they need neither.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from seamline.console import credentials
from seamline.console.access import Access, Principal
from seamline.console.service import NotFound, Operations, Refused
from seamline.journal.base import Role

log = logging.getLogger("seamline.console")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "seamline_session"
SECURE_SESSION_COOKIE = "__Host-seamline"

Handler = Callable[[Request, "Principal | None"], Awaitable[Response]]


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    kind: str = "string"
    required: bool = False


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    role: Role | None
    """The least role that may use it; None: public."""
    handler: Handler
    summary: str
    api: bool = False
    body: type[BaseModel] | None = None
    query: tuple[Param, ...] = field(default=())

    @property
    def changes_state(self) -> bool:
        return self.method not in SAFE_METHODS


@dataclass
class Site:
    """What the handlers share."""

    access: Access
    ops: Operations
    public_url: str | None = None
    """The console's address behind a proxy that terminates HTTPS (its origin is allowed, and
    cookies are `Secure` when it is https)."""

    def secure(self, request: Request) -> bool:
        return request.url.scheme == "https" or (self.public_url or "").startswith("https://")

    def cookie_name(self, request: Request) -> str:
        return SECURE_SESSION_COOKIE if self.secure(request) else SESSION_COOKIE

    def origins(self, request: Request) -> set[str]:
        own = {f"{request.url.scheme}://{request.headers.get('host', '')}"}
        if self.public_url:
            parts = urlsplit(self.public_url)
            own.add(f"{parts.scheme}://{parts.netloc}")
        return own

    def same_origin(self, request: Request) -> bool:
        """The request was sent by a page of ours (Origin, or Referer when there is none)."""
        origin = request.headers.get("origin")
        if origin is None:
            referer = request.headers.get("referer")
            if not referer:
                return False
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}"
        return origin in self.origins(request)

    async def principal(self, request: Request) -> Principal | None:
        auth = request.headers.get("authorization")
        if auth is not None:
            scheme, _, secret = auth.partition(" ")
            if scheme.lower() != "bearer":
                return None
            return await self.access.from_token(secret.strip())
        session_id = request.cookies.get(self.cookie_name(request))
        if session_id:
            return await self.access.from_session(session_id)
        return None

    def set_session(self, response: Response, request: Request, session_id: str) -> None:
        response.set_cookie(
            self.cookie_name(request),
            session_id,
            httponly=True,
            samesite="lax",
            secure=self.secure(request),
            path="/",
        )

    def clear_session(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            self.cookie_name(request),
            path="/",
            secure=self.secure(request),
            httponly=True,
            samesite="lax",
        )


def guard(site: Site, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint behind authentication, its role, and CSRF protection."""

    async def guarded(request: Request) -> Response:
        try:
            return await checked(request)
        except NotFound as exc:
            return refuse(endpoint, 404, str(exc))
        except Refused as exc:
            return refuse(endpoint, 400, str(exc))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            return refuse(endpoint, 422, problems)

    async def checked(request: Request) -> Response:
        if endpoint.role is None:
            return await endpoint.handler(request, None)
        principal = await site.principal(request)
        if principal is None:
            return _unauthenticated(site, endpoint, request)
        if not credentials.may(principal.role, endpoint.role):
            return refuse(endpoint, 403, f"this needs the {endpoint.role} role")
        if endpoint.changes_state and principal.via == "session":
            problem = await _csrf_problem(site, request, principal)
            if problem:
                log.warning(
                    "request refused: %s",
                    problem,
                    extra={"user": principal.name, "path": request.url.path},
                )
                return refuse(endpoint, 403, problem)
        return await endpoint.handler(request, principal)

    return guarded


async def _csrf_problem(site: Site, request: Request, principal: Principal) -> str | None:
    if not site.same_origin(request):
        return "cross-site request refused: the Origin is not this console"
    token = request.headers.get("x-csrf-token")
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf")
        token = value if isinstance(value, str) else None
    if not token or not credentials.same(token, principal.csrf):
        return "the anti-CSRF token is missing or wrong; reload the page and try again"
    return None


def _unauthenticated(site: Site, endpoint: Endpoint, request: Request) -> Response:
    response: Response
    if endpoint.api:
        response = JSONResponse(
            {"error": "sign in, or send an API token as Authorization: Bearer"},
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="seamline"'},
        )
    else:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    if request.cookies.get(site.cookie_name(request)):
        site.clear_session(response, request)  # expired or ended: the browser may forget it
    return response


def refuse(endpoint: Endpoint, status: int, text: str) -> Response:
    if endpoint.api:
        return JSONResponse({"error": text}, status_code=status)
    from seamline.console.pages import error_page

    return error_page(status, text)


def jsonable(value: Any) -> Any:
    """Rows as JSON: bytes become text."""
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
