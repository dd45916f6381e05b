"""Arguments the database cannot store are refused before execution, naming the argument that held them.

PostgreSQL text cannot hold the NUL character (U+0000). Every string in the operation's arguments, written in the
document or passed as a variable, at any depth of an input object or list, is checked in one pass over the
document; the first offender is BAD_USER_INPUT with `extensions.field` naming its path (`filter.search`,
`address.city`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

from graphql.language import Visitor
from strawberry.extensions import SchemaExtension

from cityos.errors import BadUserInput, ErrorCode
from graphql import (
    ArgumentNode,
    FieldNode,
    GraphQLError,
    ListValueNode,
    ObjectValueNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    visit,
)

FORBIDDEN_CHARACTER = "\x00"
Predicate = Callable[[Any], bool]


def _path_in_value(value: Any, path: str, wanted: Predicate) -> str | None:
    if isinstance(value, Mapping):
        return next((found for key, item in value.items()
                     if (found := _path_in_value(item, f"{path}.{key}", wanted))), None)
    if isinstance(value, list):
        return next((found for index, item in enumerate(value)
                     if (found := _path_in_value(item, f"{path}.{index}", wanted))), None)
    return path if wanted(value) else None


def _path_in_node(node: ValueNode, path: str, variables: Mapping[str, Any], wanted: Predicate) -> str | None:
    if isinstance(node, VariableNode):
        return _path_in_value(variables.get(node.name.value), path, wanted)
    if isinstance(node, ObjectValueNode):
        return next((found for field in node.fields
                     if (found := _path_in_node(field.value, f"{path}.{field.name.value}", variables, wanted))),
                    None)
    if isinstance(node, ListValueNode):
        return next((found for index, item in enumerate(node.values)
                     if (found := _path_in_node(item, f"{path}.{index}", variables, wanted))), None)
    return path if isinstance(node, StringValueNode) and wanted(node.value) else None


def argument_path(arguments: Iterable[ArgumentNode], variables: Mapping[str, Any], wanted: Predicate) -> str | None:
    """The path (`filter.categoryId`, `lines.2.variantId`) of the first argument value that is `wanted`, written
    in the document or passed as a variable."""
    return next((found for argument in arguments
                 if (found := _path_in_node(argument.value, argument.name.value, variables, wanted))), None)


def _unstorable(value: Any) -> bool:
    return isinstance(value, str) and FORBIDDEN_CHARACTER in value


class _ArgumentVisitor(Visitor):
    def __init__(self, variables: Mapping[str, Any]) -> None:
        super().__init__()
        self.variables = variables
        self.bad: str | None = None

    def enter_field(self, node: FieldNode, *_: Any) -> Any:
        if self.bad is None and node.arguments:
            self.bad = argument_path(node.arguments, self.variables, _unstorable)


def _variables(context: Any) -> Mapping[str, Any]:
    return context.variables if isinstance(context.variables, dict) else {}


class StorableStrings(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if context.pre_execution_errors or context.graphql_document is None:
            return
        visitor = _ArgumentVisitor(_variables(context))
        visit(context.graphql_document, visitor)
        if visitor.bad is not None:
            raise GraphQLError(f"{visitor.bad} contains a NUL character (U+0000), which cannot be stored",
                               extensions={"code": ErrorCode.BAD_USER_INPUT.value, "field": visitor.bad})


class ArgumentNames(SchemaExtension):
    """A BAD_USER_INPUT raised about a value (`BadUserInput(..., value=…)`, e.g. a malformed global id) names the
    argument of the failing field that held that value, however deep in an input object."""

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        for error in getattr(context.result, "errors", None) or ():
            original = error.original_error
            if not isinstance(original, BadUserInput) or original.value is None or not error.nodes:
                continue
            node = error.nodes[0]
            if not isinstance(node, FieldNode) or not node.arguments:
                continue
            path = argument_path(node.arguments, _variables(context), partial(operator.eq, original.value))
            if path is not None:
                original.extensions["field"] = path
                error.extensions = {**(error.extensions or {}), "field": path}
