"""Schema extensions: the request's scope (identify, then commit or roll back), error masking."""

from __future__ import annotations

from collections.abc import AsyncIterator

from strawberry.extensions import MaskErrors, SchemaExtension

from cityos.context import RequestContext
from cityos.errors import ApiError, ErrorCode
from graphql import GraphQLError


class RequestScope(SchemaExtension):
    """Identify the store and tenant before execution; end the operation's transaction after it."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if isinstance(context, RequestContext):
            await context.identify()
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
