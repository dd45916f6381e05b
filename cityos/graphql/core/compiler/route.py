"""Routing: a query operation whose root fields the compiler all covers runs as one SQL statement per root field;
any other operation (or one whose compiled answer would be an error: a missing or unreadable object) runs through
the resolvers. All or nothing per operation, for now. `cityos_graphql_root_fields_total{path}` counts both."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from graphql.utilities import get_operation_ast
from prometheus_client import Counter
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from cityos.errors import ApiError
from cityos.graphql.core.compiler.selection import NotCovered, OperationPlan, RootConnection, Typename, Walker
from cityos.graphql.core.compiler.shapes import shapes_of
from cityos.graphql.core.compiler.sql import Builder, planned_kinds
from cityos.graphql.core.context import RequestContext
from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
)

log = logging.getLogger("cityos.graphql.compiler")
ROOT_FIELDS = Counter("cityos_graphql_root_fields_total", "Root fields of query operations by execution path",
                      ["path"])


class Fallback(Exception):
    """The compiled answer would differ from the resolvers' (an error to report): let them answer."""


def plan_operation(schema: GraphQLSchema, context: RequestContext, document: Any, operation_name: str | None,
                   variables: dict[str, Any] | None) -> OperationPlan:
    current = context.store.store_id if context.store is not None else None
    return Walker(schema, shapes_of(schema), document, operation_name, variables, current).plan()


async def run_compiled(context: RequestContext, plan: OperationPlan) -> dict[str, Any]:
    """The operation's `data`, each root field by one statement. Raises Fallback when a root would be an error."""
    filters = {}
    for shape in sorted(planned_kinds(plan), key=lambda shape: shape.type_name):
        declaration = shape.declaration
        assert declaration is not None
        filters[declaration.kind] = await context.authz.sql_filter(declaration.kind, "read", declaration.table,
                                                                   declaration.plan_attributes)
    builder = Builder(filters, context.db.tenant_id)
    data: dict[str, Any] = {}
    for key, root in plan.roots:
        if isinstance(root, Typename):
            data[key] = root.name
            continue
        statement = builder.root_connection(root) if isinstance(root, RootConnection) else builder.root_single(root)
        text = (await context.db.execute(statement)).scalar_one()
        if text is None:
            raise Fallback(key)
        data[key] = orjson.loads(text)
    return data


def root_fields(document: Any, operation_name: str | None) -> int:
    """How many root fields an operation selects (top-level fields and those of top-level fragments, __typename
    aside): what the fallback counter counts for an operation the walker did not plan."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    fragments = {definition.name.value: definition for definition in document.definitions
                 if isinstance(definition, FragmentDefinitionNode)}

    def count(selections: Any, seen: frozenset[str]) -> int:
        total = 0
        for selection in selections:
            if isinstance(selection, FieldNode):
                total += selection.name.value != "__typename"
            elif isinstance(selection, InlineFragmentNode):
                total += count(selection.selection_set.selections, seen)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments \
                    and selection.name.value not in seen:
                total += count(fragments[selection.name.value].selection_set.selections,
                               seen | {selection.name.value})
        return total

    return count(operation.selection_set.selections, frozenset())


class CompiledReads(SchemaExtension):
    """After RequestScope identified the caller: answer covered query operations from compiled SQL."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if (isinstance(context, RequestContext) and context.settings.CITYOS_COMPILED_READS
                and not context.is_websocket and execution.result is None
                and execution.graphql_document is not None
                and execution.operation_type is OperationType.QUERY):
            roots = root_fields(execution.graphql_document, execution.operation_name)
            try:
                plan = plan_operation(execution.schema._schema, context, execution.graphql_document,
                                      execution.operation_name, execution.variables)
                roots = sum(1 for _, root in plan.roots if not isinstance(root, Typename))
                data = await run_compiled(context, plan)
            except (NotCovered, Fallback, ApiError) as reason:
                log.debug("fallback: %r", reason)
                ROOT_FIELDS.labels("fallback").inc(roots)
            else:
                ROOT_FIELDS.labels("compiled").inc(roots)
                execution.result = ExecutionResult(data=data, errors=None)
        yield
