"""Variables as bind parameters: one compiled statement serves every value of a variable that only reaches the SQL
as a parameter (a product handle, a search term, a category id), so a storefront's thousands of handles share one
plan, one SQL text and one prepared statement instead of compiling cold each.

Which variables are such is found, not declared: the operation is compiled a second time with each string leaf of
its variables replaced by a **marker**, and the two compilations are compared. A leaf whose marker appears as a
parameter of the same SQL text, where the first compilation has the leaf's own value, is a parameter; any other
difference (another SQL text, another set of compiled roots, a parameter that changed without being a marker) keeps
the operation cached per value, as before. The markers are built to reveal what the query builders do to strings
(they hold upper and lower case, inner and double spaces, dots and dashes, and are as long as the class allows): a
value that is trimmed, truncated, case-folded or escaped on its way to the SQL is not its own marker there, so it is
never taken for a parameter. A request's value stands in for a marker only when it is of the marker's class:

- `gid`: a global id of the marker's type; its uuid (or the id text, if that is what the SQL received) is bound;
- `str`: 1–64 characters of ASCII letters, digits, spaces, dots and dashes, starting and ending with a letter or
  digit — what the marker can prove a builder passes through unchanged;
- everything else (numbers, booleans, enums, custom scalars, cursors, null, other strings) is part of the cache
  key, by value; only variables (and input fields) declared `String` or `ID` hold leaves.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cityos.errors import ApiError
from cityos.graphql.core.relay import from_global_id, to_global_id
from graphql import (
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    get_nullable_type,
    type_from_ast,
)

SAFE_TEXT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 .-]{0,62}[A-Za-z0-9])?")
_MARKER_BODY = "Qx.Mk-Zt  Pw Lv-Jd.Rb  Hs Yg-Nc.Uf  Wo Ea-Ti.Ks  Bm Gl-"  # cases, double spaces, dots, dashes


@dataclass(frozen=True)
class Leaf:
    """A string leaf of the variables that may be a parameter: its class and, for a request, its value."""

    path: tuple[str | int, ...]
    kind: str  # "gid" | "str"
    type_name: str | None  # a gid's type
    value: str
    key: uuid.UUID | None  # a gid's uuid


@dataclass(frozen=True)
class Shape:
    """The variables with their parameter leaves taken out: `key` identifies every request they can serve."""

    key: tuple[Any, ...]
    leaves: tuple[Leaf, ...]


Textual = Callable[[tuple[str | int, ...]], bool]


def textual_paths(schema: GraphQLSchema, operation: OperationDefinitionNode) -> Textual:
    """Whether a path into the operation's variables holds a `String` or `ID` (an enum's name, a custom scalar's
    text are never parameters: they coerce or mean something of their own)."""
    declared = {definition.variable.name.value: type_from_ast(schema, definition.type)
                for definition in operation.variable_definitions or ()}

    def textual(path: tuple[str | int, ...]) -> bool:
        current: Any = declared.get(str(path[0])) if path else None
        for step in path[1:]:
            current = get_nullable_type(current)
            if isinstance(step, int) and isinstance(current, GraphQLList):
                current = current.of_type
            elif isinstance(step, str) and isinstance(current, GraphQLInputObjectType) and step in current.fields:
                current = current.fields[step].type
            else:
                return False
        named = get_nullable_type(current)
        return isinstance(named, GraphQLScalarType) and named.name in ("String", "ID")

    return textual


def shape_of(variables: Mapping[str, Any] | None, textual: Textual = lambda path: True) -> Shape | None:
    """The variables' shape, or None for a value that is not JSON data. Only `textual` paths hold leaves."""
    key: list[Any] = []
    leaves: list[Leaf] = []

    def walk(value: Any, path: tuple[str | int, ...]) -> bool:
        if isinstance(value, dict):
            key.append((path, "{}", len(value)))
            return all(isinstance(name, str) and walk(value[name], (*path, name)) for name in sorted(value))
        if isinstance(value, list):
            key.append((path, "[]", len(value)))
            return all(walk(item, (*path, index)) for index, item in enumerate(value))
        if isinstance(value, str):
            leaf = _leaf(value, path) if textual(path) else None
            if leaf is None:
                key.append((path, "=", "str", value))
            else:
                key.append((path, leaf.kind, leaf.type_name))
                leaves.append(leaf)
            return True
        if value is None or isinstance(value, bool | int | float):
            key.append((path, "=", type(value).__name__, value))
            return True
        return False

    if not walk(dict(variables or {}), ()):
        return None
    return Shape(tuple(key), tuple(leaves))


def _leaf(value: str, path: tuple[str | int, ...]) -> Leaf | None:
    try:
        type_name, key = from_global_id(value)
    except ApiError:
        type_name, key = None, None
    if type_name is not None:
        return Leaf(path, "gid", type_name, value, key)
    if SAFE_TEXT.fullmatch(value):
        return Leaf(path, "str", None, value, None)
    return None


def markers_for(shape: Shape) -> list[Leaf]:
    """One marker per leaf, of the leaf's class, each distinct and unlike any stored value."""
    found = []
    for index, leaf in enumerate(shape.leaves):
        if leaf.kind == "gid":
            assert leaf.type_name is not None
            key = uuid.uuid4()
            found.append(Leaf(leaf.path, "gid", leaf.type_name, to_global_id(leaf.type_name, key), key))
        else:
            text = f"Mq{index:03d} {_MARKER_BODY * 2}"[:63] + "Z"  # as long as the class allows
            found.append(Leaf(leaf.path, "str", None, text, None))
    return found


def substituted(variables: Mapping[str, Any] | None, leaves: Sequence[Leaf]) -> dict[str, Any]:
    """The variables with each leaf's value put at its path."""

    def copy(value: Any) -> Any:
        if isinstance(value, dict):
            return {name: copy(item) for name, item in value.items()}
        if isinstance(value, list):
            return [copy(item) for item in value]
        return value

    result: dict[str, Any] = copy(dict(variables or {}))
    for leaf in leaves:
        target: Any = result
        for step in leaf.path[:-1]:
            target = target[step]
        target[leaf.path[-1]] = leaf.value
    return result


# A parameter of a template: ("=", value) a constant, ("raw" | "uuid" | "text", i) leaf i's value, uuid, uuid text.
Slot = tuple[str, Any]


def slots_of(real: Sequence[Any], marked: Sequence[Any], shape: Shape, markers: Sequence[Leaf]
             ) -> tuple[Slot, ...] | None:
    """How each parameter follows from the leaves, from the two compilations' parameters, or None when the
    second compilation differs in any other way."""
    if len(real) != len(marked):
        return None
    slots: list[Slot] = []
    for ours, theirs in zip(real, marked, strict=True):
        slot = _slot(ours, theirs, shape, markers)
        if slot is None:
            return None
        slots.append(slot)
    return tuple(slots)


def _slot(ours: Any, theirs: Any, shape: Shape, markers: Sequence[Leaf]) -> Slot | None:
    for index, (leaf, marker) in enumerate(zip(shape.leaves, markers, strict=True)):
        if _same(theirs, marker.value):
            return ("raw", index) if _same(ours, leaf.value) else None
        if marker.key is not None and _same(theirs, marker.key):
            return ("uuid", index) if _same(ours, leaf.key) else None
        if marker.key is not None and _same(theirs, str(marker.key)):
            return ("text", index) if _same(ours, str(leaf.key)) else None
    if type(ours) is type(theirs) and ours == theirs:
        return ("=", ours)
    return None


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def parameters(slots: Sequence[Slot], leaves: Sequence[Leaf]) -> tuple[Any, ...]:
    """A template's parameters for a request of its shape."""
    values: list[Any] = []
    for kind, what in slots:
        if kind == "=":
            values.append(what)
        elif kind == "raw":
            values.append(leaves[what].value)
        elif kind == "uuid":
            values.append(leaves[what].key)
        else:
            values.append(str(leaves[what].key))
    return tuple(values)
