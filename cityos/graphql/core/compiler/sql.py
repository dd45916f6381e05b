"""From a plan to one SQL statement per root field, returning the field's JSON as text.

Every level reads its rows in a derived table (`FROM (SELECT … FROM <table> WHERE …) AS lN`), correlated to its
parent's derived table by the foreign key and `tenant_id = parent.tenant_id` (so tenant-leading indexes drive each
level), plus the request's tenant (`in_tenant`) and, for declared children, the Cerbos query plan for `read`
(`Authorizer.sql_filter`, the same clause the resolvers use). Connections read `first + 1` rows ordered by
(created_at, id) with `row_number()` and build edges, nodes, pageInfo and cursors from them; totalCount is a count
of the same filtered rows."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    cast,
    false,
    func,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by

from cityos.graphql.core.compiler.selection import (
    Child,
    Obj,
    OperationPlan,
    Page,
    RootConnection,
    RootSingle,
    Typename,
)
from cityos.graphql.core.compiler.shapes import Scalar, Shape, cursor
from cityos.graphql.core.relay import SortKey, _after

EMPTY_LIST: ColumnElement[Any] = literal_column("'[]'::json")
Filters = Mapping[str, ColumnElement[bool]]  # Cerbos kind → the `read` clause on the kind's table


def planned_kinds(plan: OperationPlan) -> set[Shape]:
    """The declared shapes whose `read` query plan the statement needs: root rows and connection children."""
    found: set[Shape] = set()

    def visit_obj(obj: Obj) -> None:
        for _, entry in obj.entries:
            if isinstance(entry, Child):
                if isinstance(entry.selection, Page):
                    found.add(entry.selection.child)
                    visit_page(entry.selection)
                else:
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
            found.add(root.page.child)
            visit_page(root.page)
        elif isinstance(root, RootSingle):
            found.add(root.obj.shape)
            visit_obj(root.obj)
    return found


def _key(name: str) -> ColumnElement[Any]:
    return literal_column(f"'{name}'")  # GraphQL names: [_A-Za-z][_0-9A-Za-z]*, safe to inline


def _object(pairs: Sequence[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
    if len(pairs) > 50:  # json_build_object takes at most 100 arguments
        raise ValueError("too many fields for one json_build_object")
    return func.json_build_object(*itertools.chain.from_iterable((_key(key), value) for key, value in pairs))


class Builder:
    def __init__(self, filters: Mapping[str, ColumnElement[bool]], tenant_id: uuid.UUID | None) -> None:
        self.filters = filters
        self.tenant_id = tenant_id
        self.names = itertools.count(1)

    def _alias(self) -> str:
        return f"l{next(self.names)}"

    def _conditions(self, shape: Shape, planned: bool) -> list[ColumnElement[bool]]:
        table = shape.table
        conditions: list[ColumnElement[bool]] = []
        if self.tenant_id is not None and "tenant_id" in table.c:
            conditions.append(table.c.tenant_id == self.tenant_id)
        if planned:
            assert shape.declaration is not None
            conditions.append(self.filters[shape.declaration.kind])
        return conditions

    def obj(self, obj: Obj, row: Any) -> ColumnElement[Any]:
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for key, entry in obj.entries:
            if isinstance(entry, Typename):
                pairs.append((key, literal(entry.name, Text)))
            elif isinstance(entry, Scalar):
                pairs.append((key, entry.build(row)))
            else:
                pairs.append((key, self.child(entry, obj.shape, row)))
        return _object(pairs)

    def child(self, child: Child, parent: Shape, row: Any) -> ColumnElement[Any]:
        relation = child.relation
        selection = child.selection
        if isinstance(selection, Page):
            table = selection.child.table
            link = [table.c[relation.child_column] == row.c[relation.parent_column],
                    table.c.tenant_id == row.c.tenant_id]
            return self.page(selection, [*link, *self._conditions(selection.child, True)], [], row, False)
        shape = selection.shape
        table = shape.table
        columns = sorted(selection.columns() | {"created_at"})
        rows = (select(*(table.c[name] for name in columns))
                .where(table.c[relation.child_column] == row.c[relation.parent_column],
                       table.c.tenant_id == row.c.tenant_id, *self._conditions(shape, False))
                .correlate(row).subquery(self._alias()))
        if relation.kind == "one":
            return select(self.obj(selection, rows)).select_from(rows).limit(1).scalar_subquery()
        aggregated = func.json_agg(aggregate_order_by(self.obj(selection, rows), rows.c.created_at, rows.c.id))
        return select(func.coalesce(aggregated, EMPTY_LIST)).select_from(rows).scalar_subquery()

    def page(self, page: Page, conditions: list[ColumnElement[bool]], after: list[ColumnElement[bool]],
             parent: Any, has_previous: bool) -> ColumnElement[Any]:
        """A connection's JSON: `conditions` filter the whole list (totalCount), `after` cuts the page."""
        table = page.child.table
        order = (table.c.created_at, table.c.id)
        needed = {"created_at", "id", "tenant_id"}
        for _, kind, payload in page.entries:
            if kind == "nodes":
                needed |= payload.columns()
            elif kind == "edges":
                for _, edge_kind, edge_payload in payload:
                    if edge_kind == "node":
                        needed |= edge_payload.columns()
        inner: Select[Any] = (select(*(table.c[name] for name in sorted(needed)),
                                     func.row_number().over(order_by=order).label("_rn"),
                                     func.count().over().label("_n"))
                              .where(*conditions, *after).order_by(*order).limit(page.size + 1))
        if parent is not None:
            inner = inner.correlate(parent)
        rows = inner.subquery(self._alias())
        in_page = rows.c._rn <= page.size
        aggregated = False

        def edge_cursor() -> ColumnElement[Any]:
            return cursor(rows.c.created_at, rows.c.id)

        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for key, kind, payload in page.entries:
            if kind == "typename":
                pairs.append((key, literal(payload, Text)))
            elif kind == "totalCount":
                count = select(func.count()).select_from(table).where(*conditions)
                if parent is not None:
                    count = count.correlate(parent)
                pairs.append((key, count.scalar_subquery()))
            elif kind == "nodes":
                aggregated = True
                nodes = func.json_agg(aggregate_order_by(self.obj(payload, rows), rows.c._rn)).filter(in_page)
                pairs.append((key, func.coalesce(nodes, EMPTY_LIST)))
            elif kind == "edges":
                aggregated = True
                edge_pairs: list[tuple[str, ColumnElement[Any]]] = []
                for edge_key, edge_kind, edge_payload in payload:
                    if edge_kind == "typename":
                        edge_pairs.append((edge_key, literal(edge_payload, Text)))
                    elif edge_kind == "cursor":
                        edge_pairs.append((edge_key, edge_cursor()))
                    else:
                        edge_pairs.append((edge_key, self.obj(edge_payload, rows)))
                edges = func.json_agg(aggregate_order_by(_object(edge_pairs), rows.c._rn)).filter(in_page)
                pairs.append((key, func.coalesce(edges, EMPTY_LIST)))
            else:  # pageInfo
                info: list[tuple[str, ColumnElement[Any]]] = []
                for info_key, info_kind, name in payload:
                    if info_kind == "typename":
                        info.append((info_key, literal(name, Text)))
                    elif info_kind == "hasNextPage":
                        aggregated = True
                        info.append((info_key, func.count() > page.size))
                    elif info_kind == "hasPreviousPage":
                        info.append((info_key, true() if has_previous else false()))
                    elif info_kind == "startCursor":
                        aggregated = True
                        info.append((info_key, func.max(edge_cursor()).filter(and_(rows.c._rn == 1, in_page))))
                    else:  # endCursor
                        aggregated = True
                        last = func.least(rows.c._n, page.size)
                        info.append((info_key, func.max(edge_cursor()).filter(rows.c._rn == last)))
                pairs.append((key, _object(info)))
        statement = select(_object(pairs))
        if aggregated:
            statement = statement.select_from(rows)
        return statement.scalar_subquery()

    def root_connection(self, root: RootConnection) -> Select[Any]:
        shape = root.page.child
        table = shape.table
        conditions = self._conditions(shape, True)
        if root.store_id is not None:
            conditions.append(table.c.store_id == root.store_id)
        after = []
        if root.after is not None:
            after.append(_after([SortKey(table.c.created_at), SortKey(table.c.id)], root.after, backwards=False))
        return select(cast(self.page(root.page, conditions, after, None, root.after is not None), Text))

    def root_single(self, root: RootSingle) -> Select[Any]:
        shape = root.obj.shape
        table = shape.table
        row = (select(*(table.c[name] for name in sorted(root.obj.columns())))
               .where(table.c.id == root.key, *self._conditions(shape, True)).subquery(self._alias()))
        return select(cast(select(self.obj(root.obj, row)).select_from(row).scalar_subquery(), Text))
