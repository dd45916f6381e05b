"""The Cerbos query plans a compiled operation needs, and how a plan's clause applies to a row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.sql.elements import BinaryExpression, False_, True_
from sqlalchemy.sql.util import ClauseAdapter

from cityos.graphql.core.compiler.selection import (
    Child,
    Derivation,
    Guarded,
    Obj,
    OperationPlan,
    Page,
    RootConnection,
    RootNodes,
    RootSingle,
)


class Fallback(Exception):
    """This root field, for this principal, is the resolvers' to answer (say, an error they report)."""


def needed_plans(plan: OperationPlan) -> set[tuple[str, str]]:
    """(declared type, action) of each query plan the statements need: `read` of root rows, connection children
    and planned to-one children; each guarded field's action on its resource's type."""
    found: set[tuple[str, str]] = set()

    def visit_obj(obj: Obj) -> None:
        for _, entry in obj.entries:
            if isinstance(entry, Derivation):  # parts of their parent: no plan of their own
                visit_obj(entry.obj)
                continue
            if isinstance(entry, Guarded):
                found.add((entry.guard.declaration.type_name, entry.guard.action))
                entry = entry.value
            if isinstance(entry, Child):
                if isinstance(entry.selection, Page):
                    found.add((entry.selection.child.type_name, "read"))
                    visit_page(entry.selection)
                else:
                    if entry.relation.planned:
                        found.add((entry.selection.shape.type_name, "read"))
                    visit_obj(entry.selection)

    def visit_page(page: Page) -> None:
        for _, kind, payload in page.entries:
            if kind == "nodes":
                visit_obj(payload)
            elif kind == "edges":
                for _, edge_kind, edge_payload in payload:
                    if edge_kind == "node":
                        visit_obj(edge_payload)

    for _, root in plan.roots:
        if isinstance(root, RootConnection):
            found.add((root.page.child.type_name, "read"))
            visit_page(root.page)
        else:
            for single in root.items if isinstance(root, RootNodes) else [root] if isinstance(root, RootSingle) else []:
                found.add((single.obj.shape.type_name, "read"))
                visit_obj(single.obj)
    return found


def on_column(clause: ColumnElement[bool], table: Any, target: ColumnElement[Any]) -> ColumnElement[bool]:
    """A query plan's clause on `table` (`Authorizer.sql_filter`: a constant, `table.id IN (…)` or a condition on
    the table's columns) about the row whose id is `target`: `target IN (ids of an alias of the table where the
    clause holds)`, the alias so that the clause never correlates with the table of an enclosing level."""
    if isinstance(clause, True_ | False_):
        return clause
    if isinstance(clause, BinaryExpression) and clause.left is table.c.id:
        return BinaryExpression(target, clause.right, clause.operator)
    row = table.alias()
    on_row = ClauseAdapter(row).traverse(clause)
    return target.in_(select(row.c.id).where(on_row))
