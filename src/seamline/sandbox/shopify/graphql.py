"""``POST /admin/api/{version}/graphql.json``: parse, validate, cost, throttle, execute.

The order of checks is Shopify's: a document that does not parse or validate is answered
with its errors; then the requested cost is calculated (`cost`) and a query over 1000 is
refused (``MAX_COST_EXCEEDED``); then the cost bucket must hold the requested cost, else
the answer is ``THROTTLED`` with no data; after execution the bucket gets back
``requested - actual``. Every answer carries ``extensions.cost``.

The schema is ``schema.graphql`` beside this module; resolvers are in `resolvers` and
`mutations`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import graphql as gql

from seamline.sandbox.shopify import mutations as _mutations  # noqa: F401  (registers resolvers)
from seamline.sandbox.shopify.cost import CostError, Costing
from seamline.sandbox.shopify.limits import MAX_QUERY_COST, Cost, CostLimiter
from seamline.sandbox.shopify.resolvers import Context, resolve_field, resolve_type
from seamline.sandbox.shopify.shop import Shop

Json = dict[str, Any]

SCHEMA: Final = gql.build_schema(
    resources.files("seamline.sandbox.shopify").joinpath("schema.graphql").read_text("utf-8")
)
THROTTLED: Final = {"message": "Throttled", "extensions": {"code": "THROTTLED"}}


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP status and JSON body; ``throttled`` answers may carry a ``retry_after``."""

    status: int
    body: Json
    throttled: bool = False
    retry_after: float | None = None


class GraphQLApi:
    """Runs GraphQL requests against ``shop`` under a `CostLimiter`."""

    def __init__(
        self, shop: Shop, limiter: CostLimiter, *, defer: Callable[[Callable[[], None]], None]
    ) -> None:
        self.shop = shop
        self.limiter = limiter
        self.defer = defer

    def _answer(self, body: Json, cost: Cost, *, exhausted: bool = False) -> Json:
        body.setdefault("extensions", {})["cost"] = self.limiter.extension(
            cost, exhausted=exhausted
        )
        return body

    def execute(self, request: Any, *, force_throttle: bool = False) -> Answer:
        """Answer one request body (already JSON-decoded)."""
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            return Answer(400, {"errors": {"query": "Required parameter missing or invalid"}})
        variables = request.get("variables") or {}
        if not isinstance(variables, dict):
            return Answer(400, {"errors": {"variables": "must be an object"}})
        operation_name = request.get("operationName")
        nothing = Cost(0, 0)
        try:
            document = gql.parse(request["query"])
        except gql.GraphQLError as error:
            return Answer(200, self._answer({"errors": [error.formatted]}, nothing))
        errors = gql.validate(SCHEMA, document)
        if errors:
            return Answer(200, self._answer({"errors": [e.formatted for e in errors]}, nothing))
        operation = gql.get_operation_ast(document, operation_name)
        if operation is None:
            message = (
                "An operation name is required"
                if operation_name is None
                else (f'No operation named "{operation_name}"')
            )
            return Answer(200, self._answer({"errors": [{"message": message}]}, nothing))

        costing = Costing(SCHEMA, document, operation, variables)
        try:
            requested = costing.requested()
        except CostError as error:
            refused: Json = {"errors": [{"message": error.message, "path": error.path}]}
            return Answer(200, self._answer(refused, nothing))
        if requested > MAX_QUERY_COST:
            refused = {"errors": [_max_cost(requested)]}
            return Answer(200, self._answer(refused, Cost(requested, None)))
        if force_throttle or not self.limiter.try_charge(requested):
            throttled = self._answer(
                {"errors": [THROTTLED]}, Cost(requested, None), exhausted=force_throttle
            )
            wait = 1.0 if force_throttle else self.limiter.retry_after(requested)
            return Answer(200, throttled, throttled=True, retry_after=wait)

        context = Context(self.shop, self.defer)
        result = gql.execute_sync(
            SCHEMA,
            document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
            field_resolver=resolve_field,
            type_resolver=resolve_type,
        )
        actual = costing.actual(result.data, requested)
        self.limiter.refund(requested - actual)
        body: Json = {}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        body["data"] = result.data
        if context.search:
            body["extensions"] = {"search": context.search}
        return Answer(200, self._answer(body, Cost(requested, actual)))


def _max_cost(requested: int) -> Json:
    return {
        "message": f"Query cost is {requested}, which exceeds the single query max cost limit "
        f"({MAX_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits for "
        "more information on how the\ncost of a query is calculated.\n\nTo query larger "
        "amounts of data with fewer limits, bulk operations should be used instead.\nSee "
        "https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n",
        "extensions": {
            "code": "MAX_COST_EXCEEDED",
            "cost": requested,
            "maxCost": MAX_QUERY_COST,
            "documentation": "https://shopify.dev/api/usage/rate-limits",
        },
    }
