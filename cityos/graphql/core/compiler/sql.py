"""From a plan to one SQL statement per root field, returning the field's JSON as text (`jsontext`: the bytes of
the response), guarded fields masked by their permission's query plan (`plans.on_column`).

Every level reads its rows in a derived table (`FROM (SELECT … FROM <table> WHERE …) AS lN`), correlated to its
parent's derived table by the foreign key and `tenant_id = parent.tenant_id` (so tenant-leading indexes drive each
level), plus the request's tenant (`in_tenant`) and, for declared children, the Cerbos query plan for `read`
(`Authorizer.sql_filter`, the same clause the resolvers use). Root lists start from the statement the domain's query
builder makes of them (`cityos.domain.*.queries`: filters, sorts, the storefront's visibility), as their resolvers
do. Connections read `size + 1` rows past the cursors in the list's keyset order (reversed for `last`) with
`row_number()` and build edges, nodes, pageInfo and cursors (the sort keys' values, encoded as `encode_keys` does)
from them; totalCount is a count of the same filtered rows without the cursors."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    or_,
    select,
    true,
)

from cityos.domain.catalog import queries as catalog
from cityos.domain.kernel import Listing as DomainListing
from cityos.domain.marketplace import queries as marketplace
from cityos.domain.tenancy import queries as tenancy
from cityos.graphql.core.compiler import jsontext
from cityos.graphql.core.compiler.plans import Fallback, on_column
from cityos.graphql.core.compiler.selection import (
    Child,
    Derivation,
    Guarded,
    Obj,
    Page,
    RootConnection,
    RootNodes,
    RootSingle,
    Typename,
)
from cityos.graphql.core.compiler.shapes import Scalar, Shape, base64url, concat, isoformat
from cityos.graphql.core.nodes import DECLARATIONS
from cityos.graphql.core.relay import SortKey, key_types, keyset_after

Filters = Mapping[tuple[str, str], ColumnElement[bool]]  # (Cerbos kind, action) → the clause on the kind's table


@dataclass(frozen=True)
class Caller:
    """What of the principal the statements depend on besides the query plans."""

    authenticated: bool
    staff: bool
    tenant_id: uuid.UUID | None


def _object(pairs: Sequence[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
    return jsontext.obj(list(pairs))


def _cursor_value(value: ColumnElement[Any], python_type: type | None) -> ColumnElement[Any]:
    """One sort key's value as `orjson.dumps` writes it inside `encode_keys`."""
    if python_type is datetime:
        return concat('{"t":"', isoformat(value), '"}')
    if python_type is uuid.UUID:
        return concat('{"u":"', cast(value, Text), '"}')
    if python_type is int:
        return cast(value, Text)
    if python_type is str:
        return cast(func.to_json(value), Text)  # escapes as orjson does: \" \\ \n …, \u00xx, UTF-8 as is
    raise Fallback(f"cursor of a {python_type} key")


def cursor_of(values: Sequence[ColumnElement[Any]], types: Sequence[type | None]) -> ColumnElement[Any]:
    """`encode_keys(values)` in SQL: base64url of the JSON array of the encoded values."""
    parts: list[Any] = ["["]
    for index, (value, python_type) in enumerate(zip(values, types, strict=True)):
        if index:
            parts.append(",")
        parts.append(_cursor_value(value, python_type))
    parts.append("]")
    return base64url(concat(*parts))


def by_rank(rows: Any) -> list[Any]:
    """`sorted(…, key=lambda c: (c.rank, c.name))` over rows loaded by (created_at, id), or with those as the
    explicit tie-break: Python compares names code point by code point, as the C collation compares UTF-8 bytes."""
    return [rows.c.rank, rows.c.name.collate("C"), rows.c.created_at, rows.c.id]


class Builder:
    def __init__(self, filters: Filters, tenant_id: uuid.UUID | None, caller: Caller) -> None:
        self.filters = filters
        self.tenant_id = tenant_id
        self.caller = caller
        self.names = itertools.count(1)
        self.denials: list[Guarded] = []  # the guarded fields of the statement being built, by marker number
        self.checked = False  # whether the statement being built may carry `jsontext.FALLBACK` (a JSON document)

    def _alias(self) -> str:
        return f"l{next(self.names)}"

    def _in_tenant(self, table: Any) -> list[ColumnElement[bool]]:
        if self.tenant_id is not None and "tenant_id" in table.c:
            return [table.c.tenant_id == self.tenant_id]
        return []

    def _conditions(self, shape: Shape, planned: bool) -> list[ColumnElement[bool]]:
        conditions = self._in_tenant(shape.table)
        if planned:
            declaration = shape.declaration
            assert declaration is not None
            if declaration.scope is not None and (self.caller.tenant_id is None
                                                  or self.caller.tenant_id != self.tenant_id):
                # a resource with a scope of its own (the tenant's slug): the plan's scope is the principal's
                raise Fallback(f"{shape.type_name} outside the principal's tenant")
            conditions.append(self.filters[(declaration.kind, "read")])
        return conditions

    def obj(self, obj: Obj, row: Any) -> ColumnElement[Any]:
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for key, entry in obj.entries:
            if isinstance(entry, Typename):
                pairs.append((key, jsontext.name(entry.name)))
            elif isinstance(entry, Scalar):
                pairs.append((key, self.scalar(entry, row)))
            elif isinstance(entry, Guarded):
                pairs.append((key, self.guarded(entry, row)))
            elif isinstance(entry, Derivation):
                pairs.append((key, self.derived(entry, row)))
            else:
                pairs.append((key, self.child(entry, row)))
        return _object(pairs)

    def scalar(self, scalar: Scalar, row: Any) -> ColumnElement[Any]:
        if scalar.json:
            self.checked = True
            return jsontext.document(scalar.build(row))
        return jsontext.scalar(scalar.build(row))

    def derived(self, entry: Derivation, row: Any) -> ColumnElement[Any]:
        """A field computed from rows of its own, selected for the parent's row (`shapes.Derived`)."""
        derived = entry.derived
        rows = derived.rows(row, entry.arguments).correlate(row).subquery(self._alias())
        if derived.kind == "one":
            found = select(self.obj(entry.obj, rows)).select_from(rows).order_by(*derived.order(rows)).limit(1)
            return func.coalesce(found.scalar_subquery(), jsontext.NULL)
        return select(jsontext.array(self.obj(entry.obj, rows), *derived.order(rows))).select_from(rows) \
            .scalar_subquery()

    def guarded(self, entry: Guarded, row: Any) -> ColumnElement[Any]:
        """The field's value where its action's query plan allows it on the row's resource, else a marker
        (`{"!denied": n}`: no GraphQL name has a `!`) that `masks.unmask` turns into null and FORBIDDEN."""
        guard = entry.guard
        declaration = guard.declaration
        allowed = on_column(self.filters[(declaration.kind, guard.action)], declaration.table,
                            row.c[guard.resource_column])
        inner = entry.value
        value = self.scalar(inner, row) if isinstance(inner, Scalar) else self.child(inner, row)
        self.denials.append(entry)
        return case((allowed, value), else_=jsontext.marker(len(self.denials) - 1))

    def _linked_to(self, child: Child, table: Any, row: Any) -> list[ColumnElement[bool]]:
        relation = child.relation
        same_tenant = [table.c.tenant_id == row.c.tenant_id] if "tenant_id" in table.c and "tenant_id" in row.c \
            else []
        if relation.link is not None:
            link = relation.link.table
            ids = select(link.c[relation.link.child_column]).where(
                link.c[relation.link.parent_column] == row.c[relation.parent_column],
                link.c.tenant_id == row.c.tenant_id).correlate(row)
            return [table.c[relation.child_column].in_(ids), *same_tenant]
        return [table.c[relation.child_column] == row.c[relation.parent_column], *same_tenant]

    def child(self, child: Child, row: Any) -> ColumnElement[Any]:
        relation = child.relation
        selection = child.selection
        if isinstance(selection, Page):
            table = selection.child.table
            base = select(table).where(*self._linked_to(child, table, row),
                                       *self._conditions(selection.child, True))
            return self.page(selection, base, [SortKey(table.c.created_at), SortKey(table.c.id)], row)
        shape = selection.shape
        table = shape.table
        columns = selection.columns() | {"created_at"} | ({"rank", "name"} if relation.by_rank else set())
        rows = (select(*(table.c[name] for name in sorted(columns) if name in table.c))
                .where(*self._linked_to(child, table, row), *self._conditions(shape, relation.planned))
                .correlate(row).subquery(self._alias()))
        if relation.kind == "one":
            found = select(self.obj(selection, rows)).select_from(rows).limit(1).scalar_subquery()
            return func.coalesce(found, jsontext.NULL)
        order = by_rank(rows) if relation.by_rank else [rows.c.created_at, rows.c.id]
        return select(jsontext.array(self.obj(selection, rows), *order)).select_from(rows).scalar_subquery()

    def page(self, page: Page, base: Select[Any], keys: Sequence[SortKey], parent: Any,
             counted: Select[Any] | None = None) -> ColumnElement[Any]:
        """A connection's JSON: `base` selects the whole list (totalCount: `counted` when given, the same rows
        shaped for counting them all, `Listing.counted`), the window's cursors cut the page."""
        table = page.child.table
        window = page.window
        types = key_types(keys)
        needed = {"created_at", "id", "tenant_id"}
        for _, kind, payload in page.entries:
            if kind == "nodes":
                needed |= payload.columns()
            elif kind == "edges":
                for _, edge_kind, edge_payload in payload:
                    if edge_kind == "node":
                        needed |= edge_payload.columns()
        cuts = []
        if window.after is not None:
            cuts.append(keyset_after(keys, window.after, backwards=False))
        if window.before is not None:
            cuts.append(keyset_after(keys, window.before, backwards=True))
        order = [key.column.desc() if key.descending != window.backwards else key.column.asc() for key in keys]
        selected = [*(table.c[name] for name in sorted(needed) if name in table.c),
                    *(key.column.label(f"_k{index}") for index, key in enumerate(keys)),
                    func.row_number().over(order_by=order).label("_rn")]
        inner: Select[Any] = (base.with_only_columns(*selected, maintain_column_froms=True)
                              .where(*cuts).order_by(*order).limit(window.size + 1))
        if parent is not None:
            inner = inner.correlate(parent)
        # `_n` counts the window's rows (at most size + 1) after the LIMIT, not the whole filtered list: a
        # count(*) over () beside the LIMIT would make Postgres read and sort every matching row (#12).
        limited = inner.subquery(self._alias())
        rows = select(limited, func.count().over().label("_n")).subquery(self._alias())
        size = window.size
        in_page = rows.c._rn <= size
        aggregated = False
        edge_order = rows.c._rn.desc() if window.backwards else rows.c._rn
        last = func.least(rows.c._n, size)
        first_rn, last_rn = (last, 1) if window.backwards else (1, last)

        def edge_cursor() -> ColumnElement[Any]:
            return cursor_of([rows.c[f"_k{i}"] for i in range(len(keys))], types)

        def more() -> ColumnElement[Any]:
            nonlocal aggregated
            aggregated = True
            return func.count() > size

        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for key, kind, payload in page.entries:
            if kind == "typename":
                pairs.append((key, jsontext.name(payload)))
            elif kind == "totalCount":
                count = (base if counted is None else counted).with_only_columns(func.count(),
                                                                                 maintain_column_froms=True)
                if parent is not None:
                    count = count.correlate(parent)
                pairs.append((key, jsontext.scalar(count.scalar_subquery())))
            elif kind == "nodes":
                aggregated = True
                pairs.append((key, jsontext.array(self.obj(payload, rows), edge_order, where=in_page)))
            elif kind == "edges":
                aggregated = True
                edge_pairs: list[tuple[str, ColumnElement[Any]]] = []
                for edge_key, edge_kind, edge_payload in payload:
                    if edge_kind == "typename":
                        edge_pairs.append((edge_key, jsontext.name(edge_payload)))
                    elif edge_kind == "cursor":
                        edge_pairs.append((edge_key, jsontext.scalar(edge_cursor())))
                    else:
                        edge_pairs.append((edge_key, self.obj(edge_payload, rows)))
                pairs.append((key, jsontext.array(_object(edge_pairs), edge_order, where=in_page)))
            else:  # pageInfo
                info: list[tuple[str, ColumnElement[Any]]] = []
                for info_key, info_kind, name in payload:
                    if info_kind == "typename":
                        info.append((info_key, jsontext.name(name)))
                    elif info_kind == "hasNextPage":
                        info.append((info_key, jsontext.scalar((true() if window.before is not None else false())
                                                               if window.backwards else more())))
                    elif info_kind == "hasPreviousPage":
                        info.append((info_key, jsontext.scalar(more() if window.backwards else true()
                                                               if window.after is not None else false())))
                    else:  # startCursor, endCursor
                        aggregated = True
                        at = first_rn if info_kind == "startCursor" else last_rn
                        info.append((info_key, jsontext.scalar(
                            func.max(edge_cursor()).filter(and_(rows.c._rn == at, in_page)))))
                pairs.append((key, _object(info)))
        statement = select(_object(pairs))
        if aggregated:
            statement = statement.select_from(rows)
        return statement.scalar_subquery()

    def listing(self, root: RootConnection) -> tuple[DomainListing, list[ColumnElement[bool]]]:
        """The domain's statement of a root list, as its resolver builds it, and the condition that the store it
        names exists (else the resolver reports NOT_FOUND)."""
        listing = root.listing
        shape = root.page.child
        scope = self._conditions(shape, True)
        if listing.kind == "stores":
            return tenancy.stores(*scope), []
        if listing.kind == "vendors":
            return marketplace.vendors(*scope, store_id=listing.store_id), []
        if listing.store_id is None and not self.caller.authenticated:
            raise Fallback("no store: the resolver reports UNAUTHENTICATED")
        store = DECLARATIONS["Store"].table
        found: list[ColumnElement[bool]] = [exists().where(store.c.id == listing.store_id, *self._in_tenant(store))] \
            if listing.store_id is not None else []
        if listing.kind == "categories":
            return catalog.categories(*scope, store_id=listing.store_id, roots_only=listing.roots_only), found
        currency: catalog.Currency = listing.currency or (
            select(store.c.default_currency_code).where(store.c.id == listing.store_id,
                                                        *self._in_tenant(store)).scalar_subquery()
            if listing.store_id is not None else "usd")
        storefront = not listing.store_named and listing.store_id is not None and not self.caller.staff
        assert listing.product_filter is not None
        return catalog.products(*scope, store_id=listing.store_id, storefront=storefront,
                                product_filter=listing.product_filter, sort=listing.sort,
                                currency_code=currency), found

    def root_connection(self, root: RootConnection) -> Select[Any]:
        domain, found = self.listing(root)
        table = root.page.child.table
        keys = list(domain.order) if domain.order else [SortKey(table.c.created_at), SortKey(table.c.id)]
        value = self.page(root.page, domain.statement, keys, None, domain.counted)
        if found:
            value = case((and_(*found), value), else_=None)
        return select(cast(value, Text))

    def single(self, root: RootSingle) -> ColumnElement[Any]:
        """The row's JSON text, or NULL when there is no readable row."""
        shape = root.obj.shape
        table = shape.table
        row = (select(*(table.c[name] for name in sorted(root.obj.columns()) if name in table.c))
               .where(*([table.c.id == root.key] if root.key is not None else
                        [table.c[column] == value for column, value in root.match]),
                      *self._conditions(shape, True)).subquery(self._alias()))
        return select(self.obj(root.obj, row)).select_from(row).scalar_subquery()

    def root_single(self, root: RootSingle) -> Select[Any]:
        return select(cast(self.single(root), Text))

    def root_nodes(self, root: RootNodes) -> Select[Any]:
        """`[node,null,…]` when every id names a readable row or none in the tenant (the resolver's null), else
        NULL: a row the caller may not read is the resolver's FORBIDDEN."""
        items: list[ColumnElement[Any]] = []
        readable: list[ColumnElement[bool]] = []
        for single in root.items:
            table = single.obj.shape.table
            if items:
                items.append(jsontext.comma())
            items.append(func.coalesce(self.single(single), jsontext.NULL))
            exists_here = exists().where(table.c.id == single.key, *self._in_tenant(table))
            allowed = exists().where(table.c.id == single.key, *self._conditions(single.obj.shape, True))
            readable.append(or_(~exists_here, allowed))
        value = jsontext.join([jsontext.open_list(), *items, jsontext.close_list()])
        return select(cast(case((and_(true(), *readable), value), else_=None), Text))
