"""The calculated cost of a GraphQL query, before (requested) and after (actual) it runs.

Shopify's rules: a scalar or enum field costs 0; an object field 1; a connection 2 plus, for
each of the ``first`` (or ``last``) items it may return, the cost of one item's selection,
so nested connections multiply; an interface or fragment on several types costs the
largest alternative; a mutation field costs 10 whatever it selects. ``first``/``last`` is
required on a connection and at most 250.

The actual cost counts what came back: objects present (null ones cost nothing) and the
items connections really returned; it never exceeds the requested cost.
"""

from __future__ import annotations

from typing import Any, Final

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    value_from_ast_untyped,
)

MUTATION_COST: Final = 10
MAX_PAGE: Final = 250


class CostError(Exception):
    """The query cannot be costed as written (Shopify refuses it before running it)."""

    def __init__(self, message: str, path: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class Costing:
    """Costs one operation of ``document`` with the request's ``variables``."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def _root(self) -> GraphQLObjectType:
        root = (
            self.schema.mutation_type
            if self.operation.operation == OperationType.MUTATION
            else self.schema.query_type
        )
        assert root is not None
        return root

    def requested(self) -> int:
        root = self._root()
        if self.operation.operation == OperationType.MUTATION:
            fields = self._fields(root, self.operation.selection_set)
            return MUTATION_COST * sum(1 for _, f in fields if f.name.value != "__typename")
        return self._selection(root, self.operation.selection_set, [])

    def actual(self, data: Any, requested: int) -> int:
        if self.operation.operation == OperationType.MUTATION:
            return requested
        spent = self._spent(self._root(), self.operation.selection_set, data)
        return min(spent, requested)

    # requested ---------------------------------------------------------------------------

    def _fields(
        self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None
    ) -> list[tuple[GraphQLNamedType, FieldNode]]:
        """Every field selected, fragments expanded, with the type it is selected on."""
        found: list[tuple[GraphQLNamedType, FieldNode]] = []
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                found.append((parent, selection))
                continue
            if isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is None:
                    continue
                condition: NamedTypeNode | None = fragment.type_condition
                inner = fragment.selection_set
            elif isinstance(selection, InlineFragmentNode):
                condition, inner = selection.type_condition, selection.selection_set
            else:
                continue
            on = self.schema.get_type(condition.name.value) if condition is not None else None
            found.extend(self._fields(on or parent, inner))
        return found

    def _selection(
        self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None, path: list[str]
    ) -> int:
        common, alternatives = 0, dict[str, int]()
        for on, field in self._fields(parent, selection_set):
            cost = self._field(on, field, path)
            if on is parent:
                common += cost
            else:
                alternatives[on.name] = alternatives.get(on.name, 0) + cost
        return common + max(alternatives.values(), default=0)

    def _field(self, parent: GraphQLNamedType, field: FieldNode, path: list[str]) -> int:
        name = field.name.value
        if not isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            return 0
        definition = parent.fields.get(name)
        if definition is None:
            return 0
        returns = get_named_type(definition.type)
        here = [*path, field.alias.value if field.alias else name]
        if is_leaf_type(returns):
            return 0
        if returns.name.endswith("Connection") and isinstance(returns, GraphQLObjectType):
            size = self._size(field, here)
            return 2 + size * self._item(returns, field.selection_set, here)
        return 1 + self._selection(returns, field.selection_set, here)

    def _item(
        self, connection: GraphQLObjectType, selection_set: SelectionSetNode | None, path: list[str]
    ) -> int:
        """The cost of one item of a connection: its ``nodes`` or ``edges.node`` selection."""
        node_type = get_named_type(connection.fields["nodes"].type)
        edge_type = get_named_type(connection.fields["edges"].type)
        item = 0
        for _, field in self._fields(connection, selection_set):
            if field.name.value == "nodes":
                item = max(item, 1 + self._selection(node_type, field.selection_set, path))
            elif field.name.value == "edges":
                for _, inner in self._fields(edge_type, field.selection_set):
                    if inner.name.value == "node":
                        cost = 1 + self._selection(node_type, inner.selection_set, path)
                        item = max(item, cost)
        return item

    def _size(self, field: FieldNode, path: list[str]) -> int:
        arguments = {a.name.value: a.value for a in field.arguments or ()}
        for name in ("first", "last"):
            if name in arguments:
                value = value_from_ast_untyped(arguments[name], self.variables)
                if value is None:
                    continue
                if not isinstance(value, int) or value < 0:
                    raise CostError(f"Argument '{name}' must be a non-negative integer.", path)
                if value > MAX_PAGE:
                    raise CostError(
                        f"The '{name}' argument must be less than or equal to {MAX_PAGE}.", path
                    )
                return value
        raise CostError("you must provide one of first or last", path)

    # actual ------------------------------------------------------------------------------

    def _spent(
        self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None, data: Any
    ) -> int:
        if not isinstance(data, dict):
            return 0
        spent = 0
        for on, field in self._fields(parent, selection_set):
            if not isinstance(on, (GraphQLObjectType, GraphQLInterfaceType)):
                continue
            definition = on.fields.get(field.name.value)
            key = field.alias.value if field.alias else field.name.value
            if definition is None or data.get(key) is None:
                continue
            returns = get_named_type(definition.type)
            if is_leaf_type(returns):
                continue
            value = data[key]
            if returns.name.endswith("Connection") and isinstance(returns, GraphQLObjectType):
                spent += 2 + self._connection_spent(returns, field.selection_set, value)
            elif isinstance(value, list):
                spent += sum(1 + self._spent(returns, field.selection_set, v) for v in value if v)
            else:
                spent += 1 + self._spent(returns, field.selection_set, value)
        return spent

    def _connection_spent(
        self, connection: GraphQLObjectType, selection_set: SelectionSetNode | None, value: Any
    ) -> int:
        node_type = get_named_type(connection.fields["nodes"].type)
        edge_type = get_named_type(connection.fields["edges"].type)
        best = 0
        for _, field in self._fields(connection, selection_set):
            key = field.alias.value if field.alias else field.name.value
            items = value.get(key) if isinstance(value, dict) else None
            if not isinstance(items, list):
                continue
            if field.name.value == "nodes":
                cost = sum(1 + self._spent(node_type, field.selection_set, n) for n in items if n)
                best = max(best, cost)
            elif field.name.value == "edges":
                for _, inner in self._fields(edge_type, field.selection_set):
                    if inner.name.value == "node":
                        inner_key = inner.alias.value if inner.alias else "node"
                        nodes = [e.get(inner_key) for e in items if isinstance(e, dict)]
                        cost = sum(
                            1 + self._spent(node_type, inner.selection_set, n) for n in nodes if n
                        )
                        best = max(best, cost)
        return best
