"""The REST API, `/api/v1/...`: JSON in and out, the same `Operations` as the pages."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seamline.console.access import Principal
from seamline.console.endpoints import Endpoint, Param, Site, jsonable
from seamline.console.service import RUNS, Filter, Refused
from seamline.journal.base import Role
from seamline.observe.metrics import render

V1 = "/api/v1"
M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReplayBody(Body):
    payload: dict[str, Any] | None = Field(
        None, description="Replace the event data the flow maps (edit and replay)"
    )


class DiscardBody(Body):
    reason: str = Field(min_length=1, max_length=500, description="Why it will not be sent")


class BulkReplayBody(Body):
    flow: str | None = None
    error_class: str | None = None
    state: Literal["dead", "review"] = "dead"
    through: int = Field(
        description="The newest delivery id of the preview: replays what the preview showed"
    )


class RejectedReplayBody(Body):
    message_id: int | None = None
    system: str | None = Field(None, description="Every rejected message from this system")
    reason: str | None = Field(None, description="With `system`: only those rejected for this")


class NewUser(Body):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Field(min_length=1, max_length=1024)


class NewToken(Body):
    name: str = Field(min_length=1, max_length=64)
    role: Role


def ok(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(jsonable(data)), status_code=status, media_type="application/json")


async def body_of(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise Refused("the body is not JSON") from None
    return model.model_validate(data)


def _actor(principal: Principal | None) -> str:
    assert principal is not None  # the guard lets no anonymous request through here
    return principal.actor


def _int(request: Request, name: str) -> int:
    value: int = request.path_params[name]
    return value


def _filter(request: Request) -> Filter:
    q = request.query_params
    return Filter(
        flow=q.get("flow") or None,
        error_class=q.get("error_class") or None,
        state=q.get("state") or "dead",
    )


FILTER_PARAMS = (
    Param("flow", "Only this flow"),
    Param("error_class", "Only this error class (permanent, contract, unknown, bug...)"),
    Param("state", "dead (default) or review"),
)


def endpoints(site: Site, openapi: Any) -> list[Endpoint]:
    ops, access = site.ops, site.access

    async def document(request: Request, principal: Principal | None) -> Response:
        return JSONResponse(openapi())

    async def me(request: Request, principal: Principal | None) -> Response:
        assert principal is not None
        return ok(
            {
                "name": principal.name,
                "role": principal.role,
                "via": principal.via,
                "csrf": principal.csrf or None,
            }
        )

    async def overview(request: Request, principal: Principal | None) -> Response:
        return ok(await ops.overview())

    async def firing(request: Request, principal: Principal | None) -> Response:
        return ok(await ops.alerts())

    async def metrics(request: Request, principal: Principal | None) -> Response:
        body, content_type = await render(ops.journal, ops.project)
        return Response(body, media_type=content_type)

    async def charts(request: Request, principal: Principal | None) -> Response:
        hours = request.query_params.get("hours", "24")
        return ok(await ops.charts(hours=int(hours) if hours.isdigit() else 24))

    async def search(request: Request, principal: Principal | None) -> Response:
        return ok(await ops.search(request.query_params.get("q", "")))

    async def delivery(request: Request, principal: Principal | None) -> Response:
        return ok(await ops.delivery(_int(request, "delivery_id")))

    async def event(request: Request, principal: Principal | None) -> Response:
        return ok(await ops.event_data(_int(request, "delivery_id")))

    async def replay(request: Request, principal: Principal | None) -> Response:
        body = await body_of(request, ReplayBody)
        return ok(
            await ops.replay(
                _int(request, "delivery_id"), actor=_actor(principal), payload=body.payload
            )
        )

    async def discard(request: Request, principal: Principal | None) -> Response:
        body = await body_of(request, DiscardBody)
        return ok(
            await ops.discard(
                _int(request, "delivery_id"), actor=_actor(principal), reason=body.reason
            )
        )

    async def dead(request: Request, principal: Principal | None) -> Response:
        return ok(await ops.dead_letters())

    async def preview(request: Request, principal: Principal | None) -> Response:
        return ok(await ops.preview(_filter(request)))

    async def listing(request: Request, principal: Principal | None) -> Response:
        return ok(await ops.deliveries(_filter(request)))

    async def bulk(request: Request, principal: Principal | None) -> Response:
        body = await body_of(request, BulkReplayBody)
        selected = Filter(flow=body.flow, error_class=body.error_class, state=body.state)
        return ok(await ops.bulk_replay(selected, through=body.through, actor=_actor(principal)))

    async def rejected(request: Request, principal: Principal | None) -> Response:
        body = await body_of(request, RejectedReplayBody)
        return ok(
            await ops.replay_rejected(
                actor=_actor(principal),
                message_id=body.message_id,
                system=body.system,
                reason=body.reason,
            )
        )

    async def checks(request: Request, principal: Principal | None) -> Response:
        return ok(await ops.checks())

    async def check(request: Request, principal: Principal | None) -> Response:
        runs = request.query_params.get("runs", "")
        return ok(
            await ops.check(request.path_params["name"], runs=int(runs) if runs.isdigit() else RUNS)
        )

    async def run_check(request: Request, principal: Principal | None) -> Response:
        return ok(await ops.run_check(request.path_params["name"], actor=_actor(principal)))

    async def landscape(request: Request, principal: Principal | None) -> Response:
        return ok((await ops.landscape())["register"])

    async def versions(request: Request, principal: Principal | None) -> Response:
        return ok(await ops.versions(request.path_params["name"]))

    async def audit(request: Request, principal: Principal | None) -> Response:
        before = request.query_params.get("before")
        return ok(await ops.audit(before=int(before) if before and before.isdigit() else None))

    async def users(request: Request, principal: Principal | None) -> Response:
        return ok({"users": await access.journal.users()})

    async def add_user(request: Request, principal: Principal | None) -> Response:
        body = await body_of(request, NewUser)
        try:
            await access.add_user(body.name, body.role, body.password, actor=_actor(principal))
        except ValueError as exc:
            raise Refused(str(exc)) from None
        return ok({"name": body.name.strip(), "role": body.role}, 201)

    async def remove_user(request: Request, principal: Principal | None) -> Response:
        name = request.path_params["name"]
        if not await access.journal.remove_user(name, actor=_actor(principal)):
            return ok({"error": f"there is no user {name!r}"}, 404)
        return ok({"removed": name})

    async def tokens(request: Request, principal: Principal | None) -> Response:
        return ok({"tokens": await access.journal.tokens()})

    async def add_token(request: Request, principal: Principal | None) -> Response:
        body = await body_of(request, NewToken)
        try:
            token_id, secret = await access.add_token(body.name, body.role, actor=_actor(principal))
        except ValueError as exc:
            raise Refused(str(exc)) from None
        return ok({"id": token_id, "name": body.name, "role": body.role, "token": secret}, 201)

    async def revoke_token(request: Request, principal: Principal | None) -> Response:
        token_id = _int(request, "token_id")
        if not await access.journal.revoke_token(
            token_id, actor=_actor(principal), now=access.clock()
        ):
            return ok({"error": f"there is no live token {token_id}"}, 404)
        return ok({"revoked": token_id})

    d = "/deliveries/{delivery_id:int}"
    return [
        Endpoint("GET", f"{V1}/openapi.json", "viewer", document, "This document", api=True),
        Endpoint("GET", f"{V1}/me", "viewer", me, "Who is asking, and the CSRF token", api=True),
        Endpoint("GET", f"{V1}/overview", "viewer", overview, "Flows and systems", api=True),
        Endpoint("GET", f"{V1}/alerts", "viewer", firing, "Alerts firing, and resolved", api=True),
        Endpoint(
            "GET",
            "/metrics",
            "viewer",
            metrics,
            "Prometheus metrics (scrape with a viewer API token as the bearer)",
            api=True,
        ),
        Endpoint(
            "GET",
            f"{V1}/charts",
            "viewer",
            charts,
            "Throughput and latency per hour",
            api=True,
            query=(Param("hours", "How many hours back (default 24)", kind="integer"),),
        ),
        Endpoint(
            "GET",
            f"{V1}/search",
            "viewer",
            search,
            "The journey of a business object: order number, SKU, email, any id",
            api=True,
            query=(Param("q", "What to look for", required=True),),
        ),
        Endpoint("GET", f"{V1}{d}", "viewer", delivery, "A delivery in full", api=True),
        Endpoint("GET", f"{V1}{d}/event", "viewer", event, "The event data it maps", api=True),
        Endpoint(
            "POST",
            f"{V1}{d}/replay",
            "operator",
            replay,
            "Replay, or edit and replay with `payload`",
            api=True,
            body=ReplayBody,
        ),
        Endpoint(
            "POST",
            f"{V1}{d}/discard",
            "operator",
            discard,
            "Discard with a reason",
            api=True,
            body=DiscardBody,
        ),
        Endpoint(
            "GET",
            f"{V1}/dead-letters",
            "viewer",
            dead,
            "Dead letters and rejected messages, grouped by cause",
            api=True,
        ),
        Endpoint(
            "GET",
            f"{V1}/dead-letters/deliveries",
            "viewer",
            listing,
            "Dead (or review) deliveries by filter, newest first (200 at most) and their count",
            api=True,
            query=FILTER_PARAMS,
        ),
        Endpoint(
            "GET",
            f"{V1}/dead-letters/preview",
            "viewer",
            preview,
            "What a bulk replay would send: count, sample, through",
            api=True,
            query=FILTER_PARAMS,
        ),
        Endpoint(
            "POST",
            f"{V1}/dead-letters/replay",
            "operator",
            bulk,
            "Replay by filter, up to the previewed `through`",
            api=True,
            body=BulkReplayBody,
        ),
        Endpoint(
            "POST",
            f"{V1}/rejected/replay",
            "operator",
            rejected,
            "Route rejected messages again",
            api=True,
            body=RejectedReplayBody,
        ),
        Endpoint(
            "GET",
            f"{V1}/flows/{{name}}/versions",
            "viewer",
            versions,
            "The versions of a flow that went live, newest first, and the one loaded",
            api=True,
        ),
        Endpoint("GET", f"{V1}/checks", "viewer", checks, "Checks and their latest runs", api=True),
        Endpoint(
            "GET",
            f"{V1}/checks/{{name}}",
            "viewer",
            check,
            "A check's runs, newest first, and what the latest one found",
            api=True,
            query=(Param("runs", "How many runs (default 50)", kind="integer"),),
        ),
        Endpoint(
            "POST",
            f"{V1}/checks/{{name}}/run",
            "operator",
            run_check,
            "Run a check now (kept like a scheduled run, and audited)",
            api=True,
        ),
        Endpoint(
            "GET",
            f"{V1}/landscape",
            "viewer",
            landscape,
            "Every system and integration with its risk (as `seamline landscape --json`)",
            api=True,
        ),
        Endpoint(
            "GET",
            f"{V1}/audit",
            "viewer",
            audit,
            "The audit log, newest first",
            api=True,
            query=(Param("before", "Entries before this id (paging)", kind="integer"),),
        ),
        Endpoint("GET", f"{V1}/users", "admin", users, "Users", api=True),
        Endpoint("POST", f"{V1}/users", "admin", add_user, "Add a user", api=True, body=NewUser),
        Endpoint("DELETE", f"{V1}/users/{{name}}", "admin", remove_user, "Remove", api=True),
        Endpoint("GET", f"{V1}/tokens", "admin", tokens, "API tokens", api=True),
        Endpoint(
            "POST",
            f"{V1}/tokens",
            "admin",
            add_token,
            "A new API token (its secret is in this answer only)",
            api=True,
            body=NewToken,
        ),
        Endpoint(
            "DELETE",
            f"{V1}/tokens/{{token_id:int}}",
            "admin",
            revoke_token,
            "Revoke",
            api=True,
        ),
    ]
