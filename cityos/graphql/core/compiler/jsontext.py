"""JSON text built in SQL exactly as orjson writes it (compact: no space after `:` or `,`), so a compiled root
field's text goes into the response as it is (an `orjson.Fragment`), never parsed and re-serialised in Python.
Postgres's json_build_object / json_agg put spaces in; these build the text with `||` and string_agg instead.
Scalars go through to_json, whose string escapes are orjson's (\\" \\\\ \\b \\f \\n \\r \\t, \\u00xx for other
control characters, everything else as UTF-8)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Numeric, Text, case, cast, exists, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from cityos.graphql.core.compiler.masks import DENIED

NULL = literal_column("'null'", Text)
FALLBACK = '"!fallback"'  # the key of the marker of a root field the resolvers must answer (no GraphQL name has a `!`)
# jsonb's text puts one space after each `,` and `:` outside strings; this drops them, strings kept as they are.
_SPACED = literal_column(r"""'("(?:[^"\\]|\\.)*")|([,:]) '""", Text)
_KEPT = literal_column(r"'\1\2'", Text)
_NUMBERS = literal_column("""'strict $.** ? (@.type() == "number")'""", Text)
_BANG_KEYS = literal_column("""'strict $.** ? (@.type() == "object").keyvalue() ? (@.key starts with "!")'""", Text)
_I64: ColumnElement[Any] = literal_column("9223372036854775807")


def _inline(text: str) -> ColumnElement[Any]:
    """A constant inlined as an SQL string literal: only GraphQL names ([_A-Za-z][_0-9A-Za-z]*), braces and
    punctuation reach it, never input."""
    assert "'" not in text and "\\" not in text
    return literal_column(f"'{text}'", Text)


def scalar(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A scalar (text, number, boolean, json) as JSON text; SQL NULL is `null`."""
    return func.coalesce(cast(func.to_json(value), Text), NULL)


def document(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A jsonb value as orjson writes what `json.loads` makes of its text (asyncpg's jsonb codec, as the resolvers
    return it): jsonb's text without its spaces — keys in jsonb's order, which json.loads keeps, and strings escaped
    as to_json escapes them. Where Python would write it otherwise — a number with a fraction or exponent (a float,
    whose repr is not jsonb's digits) or beyond 64 bits — or where a key starts with `!` (a marker's key), the
    value is the marker `{"!fallback":0}`, and the root field carrying it is answered by the resolvers instead."""
    number = func.jsonb_path_query(value, _NUMBERS).column_valued("n")
    odd_number = exists(select(literal_column("1")).where(or_(
        cast(number, Text).regexp_match("[.eE]"), func.abs(cast(number, Numeric)) >= _I64)))
    odd = or_(func.jsonb_path_exists(value, _BANG_KEYS), odd_number)
    compact = func.regexp_replace(cast(value, Text), _SPACED, _KEPT, literal_column("'g'", Text))
    return case((odd, _inline('{' + FALLBACK + ':0}')), else_=compact)


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
