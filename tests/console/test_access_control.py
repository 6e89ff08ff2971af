"""R20: every console and API route refuses the anonymous and the under-privileged; the role
matrix below is the contract, and the app's routes must match it exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from seamline.journal.base import ROLES
from tests.console.site import concrete, run, served

# (method, path, least role); None = public. Adding a route means adding it here.
ROLE_MATRIX: list[tuple[str, str, str | None]] = [
    ("GET", "/login", None),
    ("POST", "/login", None),
    ("POST", "/logout", "viewer"),
    ("GET", "/", "viewer"),
    ("GET", "/alerts", "viewer"),
    ("GET", "/charts", "viewer"),
    ("GET", "/search", "viewer"),
    ("GET", "/deliveries/{delivery_id:int}", "viewer"),
    ("GET", "/deliveries/{delivery_id:int}/edit", "operator"),
    ("POST", "/deliveries/{delivery_id:int}/edit", "operator"),
    ("POST", "/deliveries/{delivery_id:int}/replay", "operator"),
    ("POST", "/deliveries/{delivery_id:int}/discard", "operator"),
    ("GET", "/dead", "viewer"),
    ("GET", "/dead/deliveries", "viewer"),
    ("GET", "/dead/replay", "operator"),
    ("POST", "/dead/replay", "operator"),
    ("POST", "/rejected/replay", "operator"),
    ("GET", "/flows/{name}", "viewer"),
    ("GET", "/checks", "viewer"),
    ("GET", "/checks/{name}", "viewer"),
    ("POST", "/checks/{name}/run", "operator"),
    ("GET", "/landscape", "viewer"),
    ("GET", "/audit", "viewer"),
    ("GET", "/access", "admin"),
    ("POST", "/access/users", "admin"),
    ("POST", "/access/users/{name}/remove", "admin"),
    ("POST", "/access/tokens", "admin"),
    ("POST", "/access/tokens/{token_id:int}/revoke", "admin"),
    ("GET", "/api/v1/openapi.json", "viewer"),
    ("GET", "/api/v1/me", "viewer"),
    ("GET", "/metrics", "viewer"),
    ("GET", "/api/v1/overview", "viewer"),
    ("GET", "/api/v1/alerts", "viewer"),
    ("GET", "/api/v1/charts", "viewer"),
    ("GET", "/api/v1/search", "viewer"),
    ("GET", "/api/v1/deliveries/{delivery_id:int}", "viewer"),
    ("GET", "/api/v1/deliveries/{delivery_id:int}/event", "viewer"),
    ("POST", "/api/v1/deliveries/{delivery_id:int}/replay", "operator"),
    ("POST", "/api/v1/deliveries/{delivery_id:int}/discard", "operator"),
    ("GET", "/api/v1/dead-letters", "viewer"),
    ("GET", "/api/v1/dead-letters/deliveries", "viewer"),
    ("GET", "/api/v1/dead-letters/preview", "viewer"),
    ("POST", "/api/v1/dead-letters/replay", "operator"),
    ("POST", "/api/v1/rejected/replay", "operator"),
    ("GET", "/api/v1/flows/{name}/versions", "viewer"),
    ("GET", "/api/v1/checks", "viewer"),
    ("GET", "/api/v1/checks/{name}", "viewer"),
    ("POST", "/api/v1/checks/{name}/run", "operator"),
    ("GET", "/api/v1/landscape", "viewer"),
    ("GET", "/api/v1/audit", "viewer"),
    ("GET", "/api/v1/users", "admin"),
    ("POST", "/api/v1/users", "admin"),
    ("DELETE", "/api/v1/users/{name}", "admin"),
    ("GET", "/api/v1/tokens", "admin"),
    ("POST", "/api/v1/tokens", "admin"),
    ("DELETE", "/api/v1/tokens/{token_id:int}", "admin"),
]
GUARDED = [(m, p, r) for m, p, r in ROLE_MATRIX if r is not None]


def test_the_app_has_exactly_the_routes_of_the_role_matrix(tmp_path: Path) -> None:
    async def go() -> None:
        async with served(tmp_path) as site:
            actual = {(e.method, e.path, e.role) for e in site.console.endpoints}
            routed = {
                (method, route.path)  # type: ignore[attr-defined]
                for route in site.console.starlette.routes
                for method in route.methods or ()  # type: ignore[attr-defined]
                if method != "HEAD"
            }
            assert actual == set(ROLE_MATRIX)
            assert routed == {(m, p) for m, p, _ in ROLE_MATRIX}

    run(go())


def test_anonymous_requests_are_refused_on_every_guarded_route(tmp_path: Path) -> None:
    async def go() -> list[tuple[str, str, int, str]]:
        answers = []
        async with served(tmp_path) as site:
            http = site.client()
            for method, path, _role in GUARDED:
                async with http.request(
                    method, concrete(path), allow_redirects=False, headers={"Origin": site.url}
                ) as r:
                    answers.append((method, path, r.status, r.headers.get("location", "")))
        return answers

    for method, path, status, location in run(go()):
        if path.startswith(("/api/", "/metrics")):
            assert status == 401, (method, path)
        else:
            assert (status, location.split("?")[0]) == (303, "/login"), (method, path)


def test_public_routes_answer_without_authentication(tmp_path: Path) -> None:
    async def go() -> list[int]:
        async with served(tmp_path) as site:
            http = site.client()
            statuses = []
            for path in ("/login", "/healthz", "/readyz"):
                async with http.get(path) as r:
                    statuses.append(r.status)
            async with http.post("/hooks/webshop", data=b"{}") as r:
                statuses.append(r.status)  # ingest's answer (unknown here), not the console's
            return statuses

    assert run(go()) == [200, 200, 200, 404]


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_under_privileged_tokens_are_refused(tmp_path: Path, role: str) -> None:
    # Given an API token of `role`
    async def go() -> list[tuple[str, str, str, int]]:
        answers = []
        async with served(tmp_path) as site:
            token = await site.token(f"{role}-bot", role)  # type: ignore[arg-type]
            http = site.client()
            for method, path, needed in GUARDED:
                async with http.request(
                    method,
                    concrete(path),
                    allow_redirects=False,
                    headers={"Authorization": f"Bearer {token}"},
                ) as r:
                    answers.append((method, path, str(needed), r.status))
        return answers

    # Then every route that needs more answers 403, and every other one lets it through
    for method, path, needed, status in run(go()):
        if ROLES.index(needed) > ROLES.index(role):  # type: ignore[arg-type]
            assert status == 403, (method, path)
        else:
            assert status not in (401, 403), (method, path, status)


def test_an_admin_token_passes_every_guard(tmp_path: Path) -> None:
    async def go() -> list[tuple[str, str, int]]:
        async with served(tmp_path) as site:
            token = await site.token("root-bot", "admin")
            http = site.client()
            answers = []
            for method, path, _ in GUARDED:
                async with http.request(
                    method,
                    concrete(path),
                    allow_redirects=False,
                    headers={"Authorization": f"Bearer {token}"},
                ) as r:
                    answers.append((method, path, r.status))
            return answers

    refused = [a for a in run(go()) if a[2] in (401, 403)]
    assert refused == []


def test_an_under_privileged_session_is_refused_before_its_csrf_is_looked_at(
    tmp_path: Path,
) -> None:
    # Given a viewer signed in, with a valid anti-CSRF token
    async def go() -> tuple[int, int, int]:
        async with served(tmp_path) as site:
            await site.user("vera", "viewer")
            vera = await site.login("vera")
            dead = await site.dead_delivery()
            replay, _ = await vera.post(f"/deliveries/{dead}/replay")
            async with vera.http.post(
                f"/api/v1/deliveries/{dead}/replay",
                json={},
                headers={"X-CSRF-Token": vera.csrf, "Origin": site.url},
            ) as api:
                api_status = api.status
            state = (await site.journal.delivery_detail(dead))["delivery"]["state"]  # type: ignore[index]
            return replay, api_status, 0 if state == "dead" else 1

    # When she replays a dead delivery from the page and the API: both 403, nothing changed
    assert run(go()) == (403, 403, 0)


def test_get_routes_write_nothing(tmp_path: Path) -> None:
    # Given an admin token already used once this minute
    async def go() -> tuple[int, int]:
        async with served(tmp_path) as site:
            token = await site.token("reader", "admin")
            http = site.client()
            auth = {"Authorization": f"Bearer {token}"}
            async with http.get("/api/v1/me", headers=auth) as r:
                assert r.status == 200
            before = site.journal.committed_ops
            # When every GET route is read
            for method, path, _ in GUARDED:
                if method == "GET":
                    async with http.get(concrete(path), headers=auth, allow_redirects=False):
                        pass
            return before, site.journal.committed_ops

    before, after = run(go())
    # Then the journal committed nothing
    assert after == before


def test_every_answer_carries_the_security_headers(tmp_path: Path) -> None:
    async def go() -> list[dict[str, str]]:
        async with served(tmp_path) as site:
            token = await site.token("reader", "viewer")
            seen = []
            for path, auth in (("/login", None), ("/", token), ("/api/v1/overview", token)):
                headers = {"Authorization": f"Bearer {auth}"} if auth else {}
                async with site.client().get(path, headers=headers) as r:
                    assert r.status == 200
                    seen.append({k.lower(): v for k, v in r.headers.items()})
            return seen

    for headers in run(go()):
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp  # no script may run at all
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
