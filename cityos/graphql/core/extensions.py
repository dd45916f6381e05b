"""Schema extensions: the request's scope (identify, then commit or roll back), error masking."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.types.graphql import OperationType

from cityos.errors import ApiError, ErrorCode
from cityos.graphql.core.context import RequestContext
from cityos.ratelimit import RateLimited
from graphql import GraphQLError, GraphQLSyntaxError


def _is_query(execution_context: Any) -> bool:
    try:
        return execution_context.operation_type is OperationType.QUERY
    except Exception:  # an invalid document has no operation type
        return False


class RequestScope(SchemaExtension):
    """Identify the store and tenant before execution; end the operation's transaction after it."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if isinstance(context, RequestContext):
            if _is_query(self.execution_context):
                context.read_from_replica()
            try:
                await context.identify()
                await context.spend(context.cost)
            except RateLimited as error:
                if context.response is not None and hasattr(context.response, "status_code"):
                    context.response.status_code = 429
                    context.response.headers["retry-after"] = str(error.extensions["retryAfter"])
                raise
        yield

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if not isinstance(context, RequestContext):
            yield
            return
        if context.is_websocket:
            context.fresh_db()  # one connection, many operations: each gets its own transaction scope
        try:
            yield
        except BaseException:
            context.events.discard()
            await context.db.finish(commit=False)
            raise
        # Each mutation ran in its own savepoint, so what is left of the transaction is consistent.
        await context.db.finish(commit=True)
        context.services.stores.forget_committed(context.events.events)  # a revoked key fails here at once
        await context.events.publish(context.services.broker)  # only what committed


def is_internal(error: GraphQLError) -> bool:
    original = error.original_error
    return not (original is None or isinstance(original, ApiError | GraphQLError))


class MaskInternalErrors(MaskErrors):
    """Unexpected exceptions reach the client as INTERNAL_SERVER_ERROR with a fixed message (the cause is
    logged by Schema.process_errors); typed ApiErrors and validation errors pass through."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_internal, error_message="Unexpected error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return GraphQLError(message=self.error_message, nodes=error.nodes, source=error.source,
                            positions=error.positions, path=error.path,
                            extensions={"code": ErrorCode.INTERNAL_SERVER_ERROR.value})


class PreExecutionErrorCodes(SchemaExtension):
    """Errors found before execution carry a code clients can switch on: GRAPHQL_PARSE_FAILED for a document
    that does not parse, GRAPHQL_VALIDATION_FAILED for one the schema or a limit rejects."""

    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except GraphQLError as raised:  # raised by an extension's parse hook (the parser cache)
            _add_code(raised)
            raise
        for error in getattr(self.execution_context.result, "errors", None) or ():
            _add_code(error)


def _add_code(error: GraphQLError) -> None:
    if (error.extensions or {}).get("code") or error.path is not None:
        return
    if isinstance(error, GraphQLSyntaxError):
        error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_PARSE_FAILED"}
    elif error.original_error is None:
        error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_VALIDATION_FAILED"}


def response_position(data: Any, path: Sequence[str | int]) -> tuple[int, ...]:
    """Where a path leads in the response: the position of each key among its object's keys, each index; past a
    null (a propagated error) the indices as they are, keys first."""
    position: list[int] = []
    level = data
    for element in path:
        if isinstance(level, dict) and element in level:
            position.append(list(level).index(element))
            level = level[element]
        elif isinstance(level, list) and isinstance(element, int) and element < len(level):
            position.append(element)
            level = level[element]
        else:
            position.append(element if isinstance(element, int) else 0)
            level = None
    return tuple(position)


class ErrorsInResponseOrder(SchemaExtension):
    """Execution errors in the order of their paths in the response (errors without a path first), whatever order
    concurrent resolvers raised them in: one order for the resolvers and the compiled read path."""

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors and len(errors) > 1:
            data = result.data
            result.errors = sorted(errors, key=lambda error: (error.path is not None,
                                                              response_position(data, error.path or ())))
