"""The simulator's HTTP face: the Admin API under ``/admin/api/{version}/``, and ``/_sim/``.

Every Admin API request passes, in order: the version (unknown → 404; unsupported → the
oldest supported, named in ``X-Shopify-API-Version`` on every answer), the access token
(missing or wrong → 401 with Shopify's message), the ``latency_ms`` fault, the REST request
bucket (full → 429 + ``Retry-After``; ``X-Shopify-Shop-Api-Call-Limit`` on every REST
answer), a forced throttle, and the 5xx faults. GraphQL's cost bucket is applied by
`graphql.GraphQLApi`, since it needs the parsed query.

The server listens on 127.0.0.1 only: the control API has no authentication.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

import orjson
from aiohttp import web

from seamline.sandbox.shopify import versions
from seamline.sandbox.shopify.rest import API_VERSION, NOT_FOUND, json_response

if TYPE_CHECKING:
    from seamline.sandbox.shopify.simulator import ShopifySimulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

UNAUTHORIZED: Final = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}
REST_THROTTLED: Final = {
    "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume "
    "uninterrupted service."
}
_SERVER_ERRORS: Final = {
    500: (b'{"errors":"Internal Server Error"}', "application/json"),
    502: (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    503: (b'{"errors":"Service Unavailable"}', "application/json"),
    504: (b"<html><body><h1>504 Gateway Time-out</h1></body></html>", "text/html"),
}
ADMIN: Final = "/admin/api/"


def _seconds(value: float) -> str:
    """``Retry-After`` as Shopify writes it: seconds with one decimal (``2.0``)."""
    return f"{max(0.1, math.ceil(value * 10) / 10):.1f}"


def build_app(sim: ShopifySimulator) -> web.Application:
    """The aiohttp application serving ``sim``."""
    from seamline.sandbox.shopify.control import Control
    from seamline.sandbox.shopify.rest import RestApi

    @web.middleware
    async def admin(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(ADMIN):
            return await handler(request)
        version = versions.resolve(request.match_info.get("version") or request.path.split("/")[3])
        if version is None:
            return json_response(NOT_FOUND, 404)
        request[API_VERSION] = version
        response = await _admin(sim, request, handler)
        response.headers["X-Shopify-API-Version"] = version
        response.headers["X-Request-Id"] = str(uuid.uuid4())
        return response

    app = web.Application(middlewares=[admin], client_max_size=16 * 1024**2)
    app.router.add_routes(RestApi(sim).routes())

    async def graphql(request: web.Request) -> web.Response:
        return await _graphql(sim, request)

    app.router.add_post("/admin/api/{version}/graphql.json", graphql)
    app.router.add_routes(Control(sim).routes())
    app.router.add_route("*", "/admin/api/{version}/{tail:.*}", _not_found)
    return app


async def _not_found(request: web.Request) -> web.Response:
    return json_response(NOT_FOUND, 404)


async def _admin(
    sim: ShopifySimulator, request: web.Request, handler: Handler
) -> web.StreamResponse:
    token = request.headers.get("X-Shopify-Access-Token", "")
    if not hmac.compare_digest(token.encode(), sim.token.encode()):
        return json_response(UNAUTHORIZED, 401)
    faults = sim.fault_injector
    if faults.latency() > 0:
        await asyncio.sleep(faults.latency())
    graphql = request.path.endswith("/graphql.json")
    call_limit = None
    if not graphql:
        forced = faults.throttle()
        admitted, call_limit, wait = (False, "", forced) if forced else sim.rest_limiter.admit()
        if not admitted:
            full = f"{sim.rest_limiter.size}/{sim.rest_limiter.size}"
            headers = {"Retry-After": _seconds(wait), "X-Shopify-Shop-Api-Call-Limit": full}
            return json_response(REST_THROTTLED, 429, headers)
    status = faults.server_error()
    if status is not None:
        body, content_type = _SERVER_ERRORS.get(
            status, (b'{"errors":"Server Error"}', "application/json")
        )
        response: web.StreamResponse = web.Response(
            body=body, status=status, content_type=content_type
        )
    else:
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            response = json_response(NOT_FOUND, 404)
        except web.HTTPMethodNotAllowed:
            response = json_response(NOT_FOUND, 404)
    if call_limit is not None:
        response.headers["X-Shopify-Shop-Api-Call-Limit"] = sim.rest_limiter.header()
        if faults.faults.deprecated:
            response.headers["X-Shopify-API-Deprecated-Reason"] = faults.faults.deprecated_reason
    return response


async def _graphql(sim: ShopifySimulator, request: web.Request) -> web.Response:
    raw = await request.read()
    if request.content_type == "application/graphql":
        body: object = {"query": raw.decode("utf-8", "replace")}
    else:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return json_response({"errors": "Invalid JSON in request body"}, 400)
    forced = sim.fault_injector.throttle()
    answer = sim.graphql.execute(body, force_throttle=forced > 0)
    if answer.throttled and sim.fault_injector.faults.http_429_for_graphql:
        retry = max(forced, answer.retry_after or 1.0)
        return json_response(answer.body, 429, {"Retry-After": _seconds(retry)})
    return json_response(answer.body, answer.status)
