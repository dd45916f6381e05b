"""Cerbos query plans as typed SQL (#12): comparisons on the table's own columns with binds of the column's type, the
text form kept wherever the typed one could select other rows, other plan forms refused (the caller keeps the
generic translation)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, String, Table, Text, Uuid, cast, func
from sqlalchemy.dialects import postgresql

from cityos.auth.plan_sql import Untyped, typed_condition

TABLE = Table("thing", MetaData(), Column("id", Uuid), Column("tenant_id", Uuid), Column("store_id", Uuid),
              Column("status", String(20)))
ATTRIBUTES: dict[str, Any] = {"tenant_id": TABLE.c.tenant_id, "store_id": TABLE.c.store_id,
                              "status": TABLE.c.status, "label": func.coalesce(cast(TABLE.c.store_id, Text), "")}
STORE = "35978f8e-462a-407f-872b-b724ee8d6110"


def var(name: str) -> dict[str, Any]:
    return {"variable": f"request.resource.attr.{name}"}


def expr(operator: str, *operands: dict[str, Any]) -> dict[str, Any]:
    return {"expression": {"operator": operator, "operands": list(operands)}}


def sql(condition: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    compiled = typed_condition(condition, TABLE, ATTRIBUTES).compile(dialect=postgresql.asyncpg.dialect())
    return str(compiled), compiled.params


def test_a_canonical_uuid_is_compared_as_a_uuid() -> None:
    text, params = sql(expr("eq", var("store_id"), {"value": STORE}))
    assert text == "thing.store_id = $1::UUID"
    assert params == {"store_id_1": uuid.UUID(STORE)}


def test_a_list_of_uuids_is_an_in_of_uuids() -> None:
    other = str(uuid.uuid4())
    text, params = sql(expr("in", var("store_id"), {"value": [STORE, other]}))
    assert "thing.store_id IN" in text and "CAST" not in text
    assert list(params.values()) == [[uuid.UUID(STORE), uuid.UUID(other)]]


@pytest.mark.parametrize("value", ["", "not-a-uuid", STORE.upper(), STORE.replace("-", ""), "{" + STORE + "}"])
def test_text_that_uuid_text_never_prints_stays_a_text_comparison(value: str) -> None:
    """`uuid::text` prints lower-case, hyphenated: `store_id::text = 'ABC…'` matches no row, while
    `store_id = 'ABC…'::uuid` would match one. Such values keep the text form."""
    text, params = sql(expr("eq", var("store_id"), {"value": value}))
    assert text == "CAST(thing.store_id AS TEXT) = $1::VARCHAR"
    assert params == {"param_1": value}


def test_string_columns_and_expressions() -> None:
    assert sql(expr("ne", var("status"), {"value": "published"}))[0] == "thing.status != $1::VARCHAR"
    text, _ = sql(expr("eq", var("label"), {"value": ""}))
    assert text.startswith("CAST(coalesce(CAST(thing.store_id AS TEXT)")  # an expression: through its text, as before


def test_and_or_not_and_either_operand_order() -> None:
    text, _ = sql(expr("and", expr("eq", {"value": STORE}, var("store_id")),
                       expr("not", expr("or", expr("eq", var("status"), {"value": "draft"}),
                                        expr("eq", var("status"), {"value": "archived"})))))
    assert text == ("thing.store_id = $1::UUID AND NOT (thing.status = $2::VARCHAR OR thing.status = $3::VARCHAR)")


@pytest.mark.parametrize("condition", [
    expr("lt", var("status"), {"value": "b"}),                      # an operator the typed form does not take
    expr("eq", {"value": "a"}, {"value": "a"}),                      # constants only
    expr("eq", var("status"), {"value": True}),                      # not a string
    expr("in", {"value": "a"}, var("status")),                       # membership in an attribute
    expr("eq", var("unknown"), {"value": "a"}),                      # an attribute not mapped
    expr("eq", {"variable": "request.resource.id"}, {"value": "a"}),
    {"value": True},
])
def test_other_forms_are_refused(condition: dict[str, Any]) -> None:
    with pytest.raises(Untyped):
        typed_condition(condition, TABLE, ATTRIBUTES)


@given(st.one_of(st.uuids().map(str), st.text(max_size=40)))
def test_typed_only_when_the_text_of_the_uuid_is_the_value(value: str) -> None:
    """The typed comparison selects the same rows as `column::text = value`: it is used exactly when the value is
    some uuid's text as Postgres prints it."""
    text, params = sql(expr("eq", var("tenant_id"), {"value": value}))
    typed = text == "thing.tenant_id = $1::UUID"
    try:
        printed = str(uuid.UUID(value)) == value
    except ValueError:
        printed = False
    assert typed == printed
    assert list(params.values()) == [uuid.UUID(value) if typed else value]
