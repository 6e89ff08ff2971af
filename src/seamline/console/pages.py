"""The console's pages: server-rendered HTML over the same `Operations` as the REST API.

Forms post back to the console with the session's anti-CSRF token; actions answer with a
redirect (303) to the page that shows their effect, so reloading never repeats them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from functools import cache
from typing import Any
from urllib.parse import urlencode

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from seamline.console import credentials
from seamline.console.access import LoginRefused, Principal
from seamline.console.endpoints import Endpoint, Site, guard
from seamline.console.landscape_map import layout, risk_level
from seamline.console.service import Filter, NotFound, Refused
from seamline.journal.base import ROLES
from seamline.observe.health import duration_text

NOTES = {
    "replayed": "Replayed: a running hub sends it within seconds.",
    "discarded": "Discarded.",
    "routed": "The rejected messages will be decoded and routed again.",
    "user-added": "User added.",
    "user-removed": "User removed; their sessions ended.",
    "token-revoked": "Token revoked; it is refused from now on.",
    "bulk": "Bulk replay queued.",
    "check-ran": "The check ran: its run is the newest below.",
}


@cache
def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("seamline.console", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["age"] = lambda s: "-" if s is None else duration_text(float(s))
    env.filters["values"] = values
    env.filters["risk_level"] = risk_level
    env.globals["roles"] = ROLES
    return env


def style_hash() -> str:
    """The CSP hash of the one inline stylesheet (so no other inline style or script runs)."""
    css = templates().get_template("style.css").render()
    return "sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()


def when(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return dt.datetime.fromtimestamp(float(value)).strftime("%Y-%m-%d %H:%M:%S")


def render(
    template: str,
    principal: Principal | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    page = (
        templates()
        .get_template(template)
        .render(
            me=principal,
            csrf=principal.csrf if principal else "",
            may_operate=principal is not None and credentials.may(principal.role, "operator"),
            may_admin=principal is not None and credentials.may(principal.role, "admin"),
            css=templates().get_template("style.css").render(),
            **context,
        )
    )
    return HTMLResponse(page, status_code=status, headers={"cache-control": "no-store"})


CHART_W, CHART_H = 720, 160


def chart(series: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """Bars (one group per bucket, one bar per key) scaled to the largest value, as SVG boxes."""
    top = max((float(p[k] or 0) for p in series for k in keys), default=0.0) or 1.0
    slot = CHART_W / max(1, len(series))
    width = max(1.0, (slot - 2) / len(keys))
    bars = []
    for i, point in enumerate(series):
        for j, key in enumerate(keys):
            value = float(point[key] or 0)
            height = CHART_H * value / top
            bars.append(
                {
                    "x": round(i * slot + j * width, 1),
                    "y": round(CHART_H - height, 1),
                    "w": round(width, 1),
                    "h": round(height, 1),
                    "key": key,
                    "value": value,
                    "at": point["at"],
                }
            )
    return {"bars": bars, "top": top, "width": CHART_W, "height": CHART_H, "keys": keys}


def values(found: Any) -> str:
    """A finding's values on one side, as `name: value` pairs."""
    if found is None:
        return "-"
    if isinstance(found, dict):
        return ", ".join(f"{k}: {v}" for k, v in found.items())
    return str(found)


def error_page(status: int, text: str) -> Response:
    return render("error.html", None, status=status, status_code=status, text=text)


def back(path: str, note: str) -> Response:
    return RedirectResponse(f"{path}?{urlencode({'note': note})}", status_code=303)


def _note(request: Request) -> str | None:
    return NOTES.get(request.query_params.get("note", ""))


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _local(target: str | None) -> str:
    """Where to go after login: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def endpoints(site: Site) -> list[Endpoint]:
    ops, access = site.ops, site.access

    async def login_form(request: Request, principal: Principal | None) -> Response:
        return render("login.html", None, next=_local(request.query_params.get("next")))

    async def login(request: Request, principal: Principal | None) -> Response:
        # Login CSRF (signing a victim in as the attacker) is refused by the Origin check.
        if not site.same_origin(request):
            return error_page(403, "cross-site request refused: the Origin is not this console")
        form = await _form(request)
        target = _local(form.get("next"))
        try:
            done = await access.login(
                form.get("name", ""),
                form.get("password", ""),
                replaces=request.cookies.get(site.cookie_name(request)),
            )
        except LoginRefused as exc:
            return render("login.html", None, status=401, next=target, error=str(exc))
        response = RedirectResponse(target, status_code=303)
        site.set_session(response, request, done.session_id)
        return response

    async def logout(request: Request, principal: Principal | None) -> Response:
        assert principal is not None
        await access.logout(principal)
        response = RedirectResponse("/login", status_code=303)
        site.clear_session(response, request)
        return response

    async def overview(request: Request, principal: Principal | None) -> Response:
        return render("overview.html", principal, data=await ops.overview(), note=_note(request))

    async def firing(request: Request, principal: Principal | None) -> Response:
        return render("alerts.html", principal, data=await ops.alerts())

    async def charts(request: Request, principal: Principal | None) -> Response:
        data = await ops.charts()
        return render(
            "charts.html",
            principal,
            series=data["series"],
            throughput=chart(data["series"], ("received", "delivered", "failed")),
            latency=chart(data["series"], ("latency_mean", "latency_max")),
            backlog=chart(data["series"], ("backlog",)),
        )

    async def search(request: Request, principal: Principal | None) -> Response:
        query = request.query_params.get("q", "")
        found = await ops.search(query) if query.strip() else None
        return render("search.html", principal, query=query, found=found)

    async def delivery(request: Request, principal: Principal | None) -> Response:
        found = await ops.delivery(request.path_params["delivery_id"])
        return render("delivery.html", principal, d=found, note=_note(request))

    async def edit_form(request: Request, principal: Principal | None) -> Response:
        did = request.path_params["delivery_id"]
        data = await ops.event_data(did)
        text = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
        return render("edit.html", principal, delivery_id=did, text=text, error=None)

    async def edit(request: Request, principal: Principal | None) -> Response:
        assert principal is not None
        did = request.path_params["delivery_id"]
        text = (await _form(request)).get("payload", "")
        try:
            data = orjson.loads(text)
            if not isinstance(data, dict):
                raise Refused("the event data is a JSON object: { ... }")
        except (orjson.JSONDecodeError, Refused) as exc:
            error = str(exc) if isinstance(exc, Refused) else f"not JSON: {exc}"
            return render(
                "edit.html", principal, status=400, delivery_id=did, text=text, error=error
            )
        await ops.replay(did, actor=principal.actor, payload=data)
        return back(f"/deliveries/{did}", "replayed")

    async def replay(request: Request, principal: Principal | None) -> Response:
        assert principal is not None
        did = request.path_params["delivery_id"]
        await ops.replay(did, actor=principal.actor)
        return back(f"/deliveries/{did}", "replayed")

    async def discard(request: Request, principal: Principal | None) -> Response:
        assert principal is not None
        did = request.path_params["delivery_id"]
        reason = (await _form(request)).get("reason", "")
        await ops.discard(did, actor=principal.actor, reason=reason)
        return back(f"/deliveries/{did}", "discarded")

    async def dead(request: Request, principal: Principal | None) -> Response:
        return render("dead.html", principal, data=await ops.dead_letters(), note=_note(request))

    def chosen(request: Request) -> Filter:
        q = request.query_params
        return Filter(
            flow=q.get("flow") or None,
            error_class=q.get("error_class") or None,
            state=q.get("state") or "dead",
        )

    async def listing(request: Request, principal: Principal | None) -> Response:
        selected = chosen(request)
        return render(
            "deliveries.html", principal, selected=selected, data=await ops.deliveries(selected)
        )

    async def preview(request: Request, principal: Principal | None) -> Response:
        selected = chosen(request)
        return render(
            "preview.html", principal, selected=selected, data=await ops.preview(selected)
        )

    async def bulk(request: Request, principal: Principal | None) -> Response:
        assert principal is not None
        form = await _form(request)
        selected = Filter(
            flow=form.get("flow") or None,
            error_class=form.get("error_class") or None,
            state=form.get("state") or "dead",
        )
        through = form.get("through", "")
        if not through.isdigit():
            raise Refused("preview the replay first")
        await ops.bulk_replay(selected, through=int(through), actor=principal.actor)
        return back("/dead", "bulk")

    async def rejected(request: Request, principal: Principal | None) -> Response:
        assert principal is not None
        form = await _form(request)
        message = form.get("message_id", "")
        await ops.replay_rejected(
            actor=principal.actor,
            message_id=int(message) if message.isdigit() else None,
            system=form.get("system") or None,
            reason=form.get("reason") if "reason" in form else None,
        )
        return back("/dead", "routed")

    async def checks(request: Request, principal: Principal | None) -> Response:
        return render("checks.html", principal, data=await ops.checks())

    async def check(request: Request, principal: Principal | None) -> Response:
        data = await ops.check(request.path_params["name"])
        return render("check.html", principal, data=data, note=_note(request))

    async def run_check(request: Request, principal: Principal | None) -> Response:
        assert principal is not None
        name = request.path_params["name"]
        await ops.run_check(name, actor=principal.actor)
        return back(f"/checks/{name}", "check-ran")

    async def landscape(request: Request, principal: Principal | None) -> Response:
        data = await ops.landscape()
        drawn = layout(data["register"], data["health"])
        return render("landscape.html", principal, data=data, map=drawn)

    async def flow(request: Request, principal: Principal | None) -> Response:
        return render("flow.html", principal, data=await ops.versions(request.path_params["name"]))

    async def audit(request: Request, principal: Principal | None) -> Response:
        before = request.query_params.get("before", "")
        data = await ops.audit(before=int(before) if before.isdigit() else None)
        return render("audit.html", principal, data=data)

    async def people(request: Request, principal: Principal | None) -> Response:
        return await _people(request, principal)

    async def _people(
        request: Request,
        principal: Principal | None,
        *,
        status: int = 200,
        error: str | None = None,
        secret: str | None = None,
    ) -> Response:
        return render(
            "access.html",
            principal,
            status=status,
            users=await access.journal.users(),
            tokens=await access.journal.tokens(),
            error=error,
            secret=secret,
            note=_note(request),
        )

    async def add_user(request: Request, principal: Principal | None) -> Response:
        assert principal is not None
        form = await _form(request)
        try:
            role = credentials.role_of(form.get("role", ""))
            await access.add_user(
                form.get("name", ""), role, form.get("password", ""), actor=principal.actor
            )
        except ValueError as exc:
            return await _people(request, principal, status=400, error=str(exc))
        return back("/access", "user-added")

    async def remove_user(request: Request, principal: Principal | None) -> Response:
        assert principal is not None
        name = request.path_params["name"]
        if not await access.journal.remove_user(name, actor=principal.actor):
            raise NotFound(f"there is no user {name!r}")
        return back("/access", "user-removed")

    async def add_token(request: Request, principal: Principal | None) -> Response:
        assert principal is not None
        form = await _form(request)
        try:
            role = credentials.role_of(form.get("role", ""))
            _id, secret = await access.add_token(form.get("name", ""), role, actor=principal.actor)
        except ValueError as exc:
            return await _people(request, principal, status=400, error=str(exc))
        # Shown in this answer only: it is not kept, and reloading does not show it again.
        return await _people(request, principal, secret=secret)

    async def revoke_token(request: Request, principal: Principal | None) -> Response:
        assert principal is not None
        token_id = request.path_params["token_id"]
        if not await access.journal.revoke_token(
            token_id, actor=principal.actor, now=access.clock()
        ):
            raise NotFound(f"there is no live token {token_id}")
        return back("/access", "token-revoked")

    d = "/deliveries/{delivery_id:int}"
    return [
        Endpoint("GET", "/login", None, login_form, "Sign-in form"),
        Endpoint("POST", "/login", None, login, "Sign in"),
        Endpoint("POST", "/logout", "viewer", logout, "Sign out"),
        Endpoint("GET", "/", "viewer", overview, "Overview: flows and systems"),
        Endpoint("GET", "/alerts", "viewer", firing, "Alerts"),
        Endpoint("GET", "/charts", "viewer", charts, "Throughput and latency over time"),
        Endpoint("GET", "/search", "viewer", search, "Search by business key"),
        Endpoint("GET", d, "viewer", delivery, "Delivery detail"),
        Endpoint("GET", f"{d}/edit", "operator", edit_form, "Edit the event data"),
        Endpoint("POST", f"{d}/edit", "operator", edit, "Edit and replay"),
        Endpoint("POST", f"{d}/replay", "operator", replay, "Replay"),
        Endpoint("POST", f"{d}/discard", "operator", discard, "Discard with a reason"),
        Endpoint("GET", "/dead", "viewer", dead, "Dead letters and rejected messages"),
        Endpoint("GET", "/dead/deliveries", "viewer", listing, "Dead deliveries of one cause"),
        Endpoint("GET", "/dead/replay", "operator", preview, "Preview a bulk replay"),
        Endpoint("POST", "/dead/replay", "operator", bulk, "Bulk replay"),
        Endpoint("POST", "/rejected/replay", "operator", rejected, "Route rejected again"),
        Endpoint("GET", "/flows/{name}", "viewer", flow, "A flow's versions"),
        Endpoint("GET", "/checks", "viewer", checks, "Checks and their latest runs"),
        Endpoint("GET", "/checks/{name}", "viewer", check, "A check's runs and findings"),
        Endpoint("POST", "/checks/{name}/run", "operator", run_check, "Run a check now"),
        Endpoint("GET", "/landscape", "viewer", landscape, "Map of systems and integrations"),
        Endpoint("GET", "/audit", "viewer", audit, "Audit log"),
        Endpoint("GET", "/access", "admin", people, "Users and API tokens"),
        Endpoint("POST", "/access/users", "admin", add_user, "Add a user"),
        Endpoint("POST", "/access/users/{name}/remove", "admin", remove_user, "Remove a user"),
        Endpoint("POST", "/access/tokens", "admin", add_token, "Add an API token"),
        Endpoint("POST", "/access/tokens/{token_id:int}/revoke", "admin", revoke_token, "Revoke"),
    ]


__all__ = ["endpoints", "error_page", "guard", "render"]
