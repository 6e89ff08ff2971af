"""The OpenAPI 3.1 document of the REST API, made from the endpoint table (so it covers every
API route by construction; a test holds the router to it)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from seamline.console.endpoints import Endpoint

_PATH_PARAM = re.compile(r"\{([a-z_]+)(?::([a-z]+))?\}")
_ERRORS = {
    "400": "The request cannot be done as asked",
    "401": "No valid API token or session",
    "403": "The role does not allow it, or a session request failed the CSRF check",
    "404": "Not found",
    "422": "The body does not match its schema",
}


def openapi_path(path: str) -> str:
    """`/deliveries/{delivery_id:int}` as OpenAPI writes it: `/deliveries/{delivery_id}`."""
    return _PATH_PARAM.sub(r"{\1}", path)


def document(endpoints: Sequence[Endpoint], *, title: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for e in endpoints:
        if not e.api:
            continue
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer" if kind == "int" else "string"},
            }
            for name, kind in _PATH_PARAM.findall(e.path)
        ]
        parameters += [
            {
                "name": p.name,
                "in": "query",
                "required": p.required,
                "description": p.description,
                "schema": {"type": p.kind},
            }
            for p in e.query
        ]
        operation: dict[str, Any] = {
            "summary": e.summary,
            "operationId": f"{e.method.lower()}_{_operation_name(e.path)}",
            "x-role": e.role,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **{
                    code: {"description": text}
                    for code, text in _ERRORS.items()
                    if code != "422" or e.body is not None
                },
            },
        }
        if parameters:
            operation["parameters"] = parameters
        if e.body is not None:
            schema = e.body.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                schemas[name] = sub
            schemas[e.body.__name__] = schema
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{e.body.__name__}"}
                    }
                },
            }
        if e.changes_state:
            operation["description"] = (
                "With a session cookie, send the session's CSRF token (GET /api/v1/me) as "
                "X-CSRF-Token; with a bearer token, nothing more."
            )
        paths.setdefault(openapi_path(e.path), {})[e.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "seamline_session"},
            },
        },
        "security": [{"token": []}, {"session": []}],
    }


def _operation_name(path: str) -> str:
    parts = [p for p in openapi_path(path).split("/") if p and p not in ("api", "v1")]
    return "_".join(p.strip("{}").replace("-", "_").replace(".", "_") for p in parts) or "root"
