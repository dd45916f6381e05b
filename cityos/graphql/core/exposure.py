"""How much the API tells about itself, per settings (on in development, off in production by default):
introspection (`__schema`, `__type`), field suggestions in validation messages ("Did you mean …?"), and the
federation SDL (`_service`), which in production only the router may read (header x-cityos-router-secret)."""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from cityos.errors import ErrorCode
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

ROUTER_SECRET_HEADER = "x-cityos-router-secret"  # noqa: S105 (a header name)
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
SUGGESTION = re.compile(r"\s*Did you mean .*\?$")


def root_field_names(document: Any) -> set[str]:
    """Names of the fields selected at the root of the document's operations (through fragments)."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    names: set[str] = set()
    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                if (fragment := fragments.get(selection.name.value)) is not None:
                    walk(fragment.selection_set)

    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            walk(definition.selection_set)
    return names


def _without_suggestion(error: GraphQLError) -> GraphQLError:
    """A copy (validation errors are cached and shared between requests) without "Did you mean …?"."""
    message = SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(message, error.nodes, error.source, error.positions, error.path, error.original_error,
                        error.extensions)


class ExposureControls(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        settings = getattr(self.execution_context.context, "settings", None)
        result = self.execution_context.result
        if settings is not None and not settings.field_suggestions_enabled and getattr(result, "errors", None):
            result.errors = [_without_suggestion(error) for error in result.errors]  # type: ignore[union-attr]

    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        settings = getattr(context.context, "settings", None)
        if settings is None or context.pre_execution_errors or context.graphql_document is None:
            return
        selected = root_field_names(context.graphql_document)
        if selected & INTROSPECTION_FIELDS and not settings.introspection_enabled:
            raise GraphQLError("introspection is disabled on this server",
                               extensions={"code": ErrorCode.FORBIDDEN.value})
        if "_service" in selected and not self._router_may_read(settings, context.context):
            raise GraphQLError(f"_service is for the federation router: send {ROUTER_SECRET_HEADER}",
                               extensions={"code": ErrorCode.FORBIDDEN.value})

    @staticmethod
    def _router_may_read(settings: Any, request_context: Any) -> bool:
        secret = settings.CITYOS_ROUTER_SECRET
        if not secret:
            return not settings.is_production
        sent = (getattr(request_context, "headers", None) or {}).get(ROUTER_SECRET_HEADER, "")
        return hmac.compare_digest(sent.encode(), secret.encode())
