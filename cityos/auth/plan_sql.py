"""A Cerbos query plan's condition as a typed WHERE clause on the resource's own table.

Policy attributes are strings, and the generic translation (`cerbos_sqlalchemy.get_query` over a projection of the
table with every attribute cast to text) compares `uuid_column::text = '…'`: correct, but Postgres has no
statistics for the cast, estimates such a filter at a handful of rows and plans listings around that guess (a full
read and sort of the store's products for a 24-row page, #12). Here a comparison of a column of the table is written
on the column itself with a bind of the column's type (`store_id = $1::uuid`): the same rows, and the planner
estimates it from the column's statistics and can use indexes on it.

Same rows, exactly: a leaf `attr == "v"` on a uuid column becomes `column = uuid` only when "v" is the canonical
text of a uuid (what `uuid::text` prints), otherwise it stays `column::text = 'v'`; string columns compare as they
are; any other column type or expression is compared through its text, as before. NULLs behave as in the cast form
(NULL in, NULL out). Operators other than and/or/not/eq/ne/in, constants compared with constants, or values that
are not strings raise `Untyped`: the caller keeps the generic translation for that plan."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, ColumnElement, String, Table, Text, Uuid, and_, cast, not_, or_

RESOURCE_ATTR = "request.resource.attr."


class Untyped(Exception):
    """The plan has a form this translation does not take."""


def _canonical_uuid(value: str) -> uuid.UUID | None:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    return parsed if str(parsed) == value else None


def _typed_values(column: Any, values: list[str]) -> list[Any] | None:
    """The values as binds of the column's type, or None when the comparison must stay textual."""
    if isinstance(column.type, Uuid):
        parsed = [_canonical_uuid(value) for value in values]
        return None if any(item is None for item in parsed) else parsed
    if isinstance(column.type, String):
        return list(values)
    return None


def _leaf(operator: str, expression: ColumnElement[Any], table: Table, value: Any) -> ColumnElement[bool]:
    values = value if operator == "in" else [value]
    if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
        raise Untyped(f"{operator} with a value of type {type(value).__name__}")
    typed = _typed_values(expression, values) if isinstance(expression, Column) and expression.table is table \
        else None
    target: ColumnElement[Any] = expression if typed is not None else cast(expression, Text)
    bound: list[Any] = typed if typed is not None else values
    clause: ColumnElement[bool] = target.in_(bound) if operator == "in" else \
        target == bound[0] if operator == "eq" else target != bound[0]
    return clause


def typed_condition(condition: Mapping[str, Any], table: Table,
                    attributes: Mapping[str, ColumnElement[Any]]) -> ColumnElement[bool]:
    """The clause of a plan condition in its JSON form (`MessageToDict(plan.filter.condition)`)."""
    expression = condition.get("expression")
    if not isinstance(expression, Mapping):
        raise Untyped("a condition that is not an expression")
    operator, operands = expression.get("operator"), list(expression.get("operands", []))
    if operator in ("and", "or") and operands:
        parts = [typed_condition(operand, table, attributes) for operand in operands]
        return and_(*parts) if operator == "and" else or_(*parts)
    if operator == "not" and len(operands) == 1:
        return not_(typed_condition(operands[0], table, attributes))
    if operator in ("eq", "ne", "in") and len(operands) == 2:
        variables = [operand for operand in operands if "variable" in operand]
        values = [operand for operand in operands if "value" in operand]
        if len(variables) != 1 or len(values) != 1 or (operator == "in" and "variable" not in operands[0]):
            raise Untyped(f"{operator} of {operands}")
        name = str(variables[0]["variable"])
        if not name.startswith(RESOURCE_ATTR) or name[len(RESOURCE_ATTR):] not in attributes:
            raise Untyped(name)
        return _leaf(str(operator), attributes[name[len(RESOURCE_ATTR):]], table, values[0]["value"])
    raise Untyped(str(operator))
