"""Arguments the database cannot store are refused before execution, naming the argument that held them.

PostgreSQL text cannot hold the NUL character (U+0000). Every string in the operation's arguments, written in the
document or passed as a variable, at any depth of an input object or list, is checked in one pass over the
document; the first offender is BAD_USER_INPUT with `extensions.field` naming its path (`filter.search`,
`address.city`).

Sizes are bounded in the same pass, by the name of the input field or argument holding the value (see
`SIZE_LIMITS` and README "Input limits"): names, titles, handles, SKUs, emails and address parts at most 255
characters, descriptions and any other string at most 10,000, JSON values (`metadata`, `options`) at most 16 KB
serialized. The first oversized value is BAD_USER_INPUT naming its path.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

import orjson
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
    value_from_ast_untyped,
    visit,
)

FORBIDDEN_CHARACTER = "\x00"
NAME_LENGTH = 255
TEXT_LENGTH = 10_000
JSON_BYTES = 16 * 1024
SHORT_FIELDS = frozenset({
    "title", "name", "handle", "slug", "sku", "domain", "email", "subject", "role", "scope", "code", "state",
    "currencyCode", "countryCode", "firstName", "lastName", "company", "address1", "address2", "city", "province",
    "postalCode", "phone"})
JSON_FIELDS = frozenset({"metadata", "options"})
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


def _values(node: ValueNode, path: str, variables: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every value of an argument with its path, written in the document or passed as a variable; objects and
    lists before their items."""
    if isinstance(node, VariableNode):
        yield from _python_values(variables.get(node.name.value), path)
        return
    yield path, value_from_ast_untyped(node, variables)
    if isinstance(node, ObjectValueNode):
        for field in node.fields:
            yield from _values(field.value, f"{path}.{field.name.value}", variables)
    elif isinstance(node, ListValueNode):
        for index, item in enumerate(node.values):
            yield from _values(item, f"{path}.{index}", variables)


def _python_values(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _python_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _python_values(item, f"{path}.{index}")


def _field_name(path: str) -> str:
    """The input field a path ends in (`lines.2.title` → `title`, `images.3` → `images`)."""
    parts = [part for part in path.split(".") if not part.isdigit()]
    return parts[-1] if parts else path


def size_violation(path: str, value: Any) -> str | None:
    """Why the value at `path` is too large to accept, or None."""
    name = _field_name(path)
    if any(part in JSON_FIELDS for part in path.split(".")[:-1]):
        return None  # inside a JSON value: its whole serialized size is what counts
    if name in JSON_FIELDS and not path.rsplit(".", 1)[-1].isdigit() and value is not None:
        try:
            size = len(orjson.dumps(value))
        except (TypeError, orjson.JSONEncodeError):
            return None
        return f"{path} is larger than {JSON_BYTES} bytes serialized" if size > JSON_BYTES else None
    if not isinstance(value, str) or name in JSON_FIELDS:
        return None
    limit = NAME_LENGTH if name in SHORT_FIELDS else TEXT_LENGTH
    return f"{path} is longer than {limit} characters" if len(value) > limit else None


def oversized(arguments: Iterable[ArgumentNode], variables: Mapping[str, Any]) -> tuple[str, str] | None:
    """The path of the first argument value over its size limit, and why."""
    values = dict(variables)
    for argument in arguments:
        for path, value in _values(argument.value, argument.name.value, values):
            if (why := size_violation(path, value)) is not None:
                return path, why
    return None


class _ArgumentVisitor(Visitor):
    def __init__(self, variables: Mapping[str, Any]) -> None:
        super().__init__()
        self.variables = variables
        self.bad: str | None = None
        self.too_large: tuple[str, str] | None = None

    def enter_field(self, node: FieldNode, *_: Any) -> Any:
        if self.bad is None and node.arguments:
            self.bad = argument_path(node.arguments, self.variables, _unstorable)
        if self.too_large is None and node.arguments:
            self.too_large = oversized(node.arguments, self.variables)


def _variables(context: Any) -> Mapping[str, Any]:
    return context.variables if isinstance(context.variables, dict) else {}


class _FieldsWithArguments(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[FieldNode] = []

    def enter_field(self, node: FieldNode, *_: Any) -> Any:
        if node.arguments:
            self.fields.append(node)


# Documents come from the parser cache (the same object for the same text): the fields that take arguments are
# found once per document, not by a walk of the whole tree on every request.
_ARGUMENT_FIELDS: dict[int, tuple[Any, tuple[FieldNode, ...]]] = {}
ARGUMENT_FIELDS_CACHE_SIZE = 1024


def fields_with_arguments(document: Any) -> tuple[FieldNode, ...]:
    cached = _ARGUMENT_FIELDS.get(id(document))
    if cached is not None and cached[0] is document:
        return cached[1]
    collector = _FieldsWithArguments()
    visit(document, collector)
    if len(_ARGUMENT_FIELDS) >= ARGUMENT_FIELDS_CACHE_SIZE:
        _ARGUMENT_FIELDS.clear()
    _ARGUMENT_FIELDS[id(document)] = (document, tuple(collector.fields))
    return _ARGUMENT_FIELDS[id(document)][1]


class StorableStrings(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if context.pre_execution_errors or context.graphql_document is None:
            return
        visitor = _ArgumentVisitor(_variables(context))
        for node in fields_with_arguments(context.graphql_document):
            visitor.enter_field(node)
        if visitor.bad is not None:
            raise GraphQLError(f"{visitor.bad} contains a NUL character (U+0000), which cannot be stored",
                               extensions={"code": ErrorCode.BAD_USER_INPUT.value, "field": visitor.bad})
        if visitor.too_large is not None:
            path, why = visitor.too_large
            raise GraphQLError(why, extensions={"code": ErrorCode.BAD_USER_INPUT.value, "field": path})


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
