"""JSON text built in SQL exactly as orjson writes it (compact: no space after `:` or `,`), so a compiled root
field's text goes into the response as it is (an `orjson.Fragment`), never parsed and re-serialised in Python.
Postgres's json_build_object / json_agg put spaces in; these build the text with `||` and string_agg instead.
Scalars go through to_json, whose string escapes are orjson's (\\" \\\\ \\b \\f \\n \\r \\t, \\u00xx for other
control characters, everything else as UTF-8)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Text, cast, func, literal_column
from sqlalchemy.dialects.postgresql import aggregate_order_by

from cityos.graphql.core.compiler.masks import DENIED

NULL = literal_column("'null'", Text)


def _inline(text: str) -> ColumnElement[Any]:
    """A constant inlined as an SQL string literal: only GraphQL names ([_A-Za-z][_0-9A-Za-z]*), braces and
    punctuation reach it, never input."""
    assert "'" not in text and "\\" not in text
    return literal_column(f"'{text}'", Text)


def scalar(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A scalar (text, number, boolean, json) as JSON text; SQL NULL is `null`."""
    return func.coalesce(cast(func.to_json(value), Text), NULL)


def name(text: str) -> ColumnElement[Any]:
    """A GraphQL name (`__typename`'s value) as a JSON string."""
    return _inline(f'"{text}"')


def join(parts: list[ColumnElement[Any]]) -> ColumnElement[Any]:
    result = parts[0]
    for part in parts[1:]:
        result = result.op("||")(part)
    return cast(result, Text)


def obj(pairs: list[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
    """`{"key":value,…}` of (response key, JSON text) pairs, in order."""
    parts: list[ColumnElement[Any]] = []
    for index, (key, value) in enumerate(pairs):
        parts.append(_inline(("{" if index == 0 else ",") + f'"{key}":'))
        parts.append(value)
    parts.append(_inline("}" if pairs else "{}"))
    return join(parts)


def array(element: ColumnElement[Any], *order: Any, where: ColumnElement[bool] | None = None) -> ColumnElement[Any]:
    """`[e1,e2,…]` of an aggregate's JSON texts in `order` (only rows where `where` holds); `[]` for none."""
    aggregated: Any = func.string_agg(element, aggregate_order_by(_inline(","), *order))
    if where is not None:
        aggregated = aggregated.filter(where)
    return join([_inline("["), func.coalesce(aggregated, _inline("")), _inline("]")])


def comma() -> ColumnElement[Any]:
    return _inline(",")


def open_list() -> ColumnElement[Any]:
    return _inline("[")


def close_list() -> ColumnElement[Any]:
    return _inline("]")


def marker(number: int) -> ColumnElement[Any]:
    """`{"!denied":n}`: where a guarded field's permission denies it (see masks)."""
    return _inline(f'{{"{DENIED}":{int(number)}}}')
