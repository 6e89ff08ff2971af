"""The OpenAPI document covers every API route the app serves, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.console.site import run, served


def test_openapi_covers_every_api_route(tmp_path: Path) -> None:
    async def go() -> tuple[dict[str, Any], set[tuple[str, str]]]:
        async with served(tmp_path) as site:
            token = await site.token("reader", "viewer")
            async with site.client().get(
                "/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"}
            ) as r:
                assert r.status == 200
                doc = await r.json()
            routes = {
                (method.lower(), re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path))  # type: ignore[attr-defined]
                for route in site.console.starlette.routes
                if route.path.startswith(("/api/", "/metrics"))  # type: ignore[attr-defined]
                for method in route.methods  # type: ignore[attr-defined]
                if method != "HEAD"
            }
            return doc, routes

    doc, routes = run(go())
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == routes
    assert len(routes) >= 19
    # Every body schema it refers to is in it
    refs = re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(doc).replace("'", '"'))
    assert refs and all(name in doc["components"]["schemas"] for name in refs)
    # Every path parameter is declared
    for path, ops in doc["paths"].items():
        for op in ops.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), path
