"""Types declared once, and the node registry derived from the declarations.

Each GraphQL object type backed by a table declares, in one place (`Declaration`): its GraphQL name, its table and
key, its Cerbos resource kind and the attributes the policies read — each a column of the table, or an SQL
expression with the same value computed from a loaded row. From a declaration derive:

- `resource()` of every object of the type (what Cerbos is asked about), through the `Declared` mixin;
- `plan_attributes`: the columns a Cerbos query plan is turned into SQL with (lists filtered in SQL);
- the node registry: `node(id:)`, `nodes`, federation `_entities` and every mutation's lookup by global id;
- relations across contexts, by GraphQL type name (`declared("Vendor")`), so contexts do not import each other.

The compiled read path reads the same declarations: a table, a key, the attributes of a row filter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import operator
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from sqlalchemy import ColumnElement, Table

from cityos.auth.authz import ResourceRef
from cityos.errors import ApiError, NotFound
from cityos.graphql.core.context import Info
from cityos.graphql.core.relay import (
    Connection,
    PageRequest,
    first_page,
    from_global_id,
    page_loaded_rows,
    to_global_id,
)


@dataclass(frozen=True)
class Attribute:
    """A Cerbos attribute: its value in SQL (for query plans) and in a loaded row (for checks)."""

    sql: ColumnElement[Any]
    value: Callable[[Any], object]


def column(table: Table, name: str) -> Attribute:
    return Attribute(table.c[name], lambda row: getattr(row, name))


def columns(table: Table, *names: str, **renamed: str) -> dict[str, Attribute]:
    """Attributes that are columns: `tenant_id`, … by the same name, `vendor_id="id"` under another."""
    return {**{name: column(table, name) for name in names},
            **{attribute: column(table, name) for attribute, name in renamed.items()}}


@dataclass(frozen=True)
class Declaration:
    """A type's table, Cerbos kind and attributes, and how its fields come from a row: by default a field is the
    column of the same name, `pk` the key, `<x>_pk` the column `<x>_id`, `row` the row itself; `fields` names
    the fields computed otherwise (Money, enums, addresses, …) as functions of the row."""

    type_name: str
    table: Table
    kind: str
    attributes: Mapping[str, Attribute]
    fields: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    scope: Callable[[Any], str | None] | None = None  # a Cerbos scope of its own (the tenant's slug)
    node: bool = True  # fetchable by global id (implements Node)
    node_type: list[Any] = field(default_factory=list, compare=False)  # the GraphQL type, once declared

    @property
    def plan_attributes(self) -> dict[str, Any]:
        return {name: attribute.sql for name, attribute in self.attributes.items()}

    def resource_of(self, row: Any) -> ResourceRef:
        return ResourceRef.of(self.kind, row.id, scope=self.scope(row) if self.scope else None,
                              **{name: attribute.value(row) for name, attribute in self.attributes.items()})

    def to_node(self, row: Any) -> Any:
        return self.node_type[0].from_row(row)


class Declared:
    """Mixin of a declared GraphQL type: objects are built from rows and their Cerbos resource derives from the
    declaration."""

    declaration: ClassVar[Declaration]
    _readers: ClassVar[dict[str, Callable[[Any], Any]]]

    @classmethod
    def from_row(cls, row: Any) -> Self:
        readers = cls.__dict__.get("_readers")
        if readers is None:
            readers = _readers_of(cls)
            cls._readers = readers
        return cls(**{name: read(row) for name, read in readers.items()})

    def resource(self) -> ResourceRef:
        return self.declaration.resource_of(self.row)  # type: ignore[attr-defined]


def _global_id(type_name: str, row: Any) -> Any:
    return to_global_id(type_name, row.id)


def _readers_of(node_type: Any) -> dict[str, Callable[[Any], Any]]:
    """How each constructor argument of a declared type comes from a row (see Declaration)."""
    declaration: Declaration = node_type.declaration
    readers: dict[str, Callable[[Any], Any]] = {}
    for item in dataclasses.fields(node_type):
        if not item.init:
            continue
        name = item.name
        if name in declaration.fields:
            readers[name] = declaration.fields[name]
        elif name == "id":
            readers[name] = functools.partial(_global_id, declaration.type_name)
        elif name == "row":
            readers[name] = lambda row: row
        elif name == "pk":
            readers[name] = operator.attrgetter("id")
        elif name.endswith("_pk"):
            readers[name] = operator.attrgetter(f"{name[:-3]}_id")
        elif name in declaration.table.c:
            readers[name] = operator.attrgetter(name)
        else:
            raise TypeError(f"{declaration.type_name}.{name} is no column of {declaration.table.name}: declare "
                            "how it is read in Declaration.fields")
    return readers


NodeLoader = Callable[[Info, uuid.UUID], Awaitable[Any]]
NODE_LOADERS: dict[str, NodeLoader] = {}
DECLARATIONS: dict[str, Declaration] = {}


def register_node(type_name: str, load: NodeLoader) -> None:
    """Make a Node type fetchable by global id with a loader of its own (`node`, `nodes`, federation, mutations)."""
    NODE_LOADERS[type_name] = load


def declare(declaration: Declaration) -> Callable[[type[Any]], type[Any]]:
    """Class decorator (under the strawberry decorator): bind the type to its declaration and make it a node."""

    def bind(node_type: type[Any]) -> type[Any]:
        node_type.declaration = declaration
        declaration.node_type[:] = [node_type]
        DECLARATIONS[declaration.type_name] = declaration
        if declaration.node and declaration.type_name not in NODE_LOADERS:
            async def load(info: Info, local_id: uuid.UUID) -> Any:
                row = await info.context.loaders.by_key(declaration.table).load(local_id)
                return declaration.to_node(row) if row else None

            register_node(declaration.type_name, load)
        return node_type

    return bind


def declared(type_name: str) -> Declaration:
    """The declaration of a GraphQL type by name: how one context reaches another's type without importing it."""
    return DECLARATIONS[type_name]


async def page_children(info: Info, declaration: Declaration, column_name: str, parent: uuid.UUID,
                        page: PageRequest, *, planned: bool = False) -> Connection[Any]:
    """A nested connection. With `planned`, the first page comes filtered by the Cerbos query plan and cut in SQL,
    for all parents in one statement; other pages load the parent's children (one batched load for all parents),
    keep those the principal may read (one batched PDP call), and page them by cursor."""
    table, to_node = declaration.table, declaration.to_node
    if planned and page.after is None and page.before is None and not page.backwards:
        async def plan_clause() -> Any:
            return await info.context.authz.sql_filter(declaration.kind, "read", table,
                                                       declaration.plan_attributes)

        window = info.context.loaders.first_by_key(table, column_name, plan_clause, page.size + 1)
        rows, total = await window.load(parent)
        return first_page(rows, total, page, to_node)
    rows = await info.context.loaders.many_by_key(table, column_name).load(parent)
    readable = await info.context.authz.visible(rows, declaration.resource_of)
    return page_loaded_rows(readable, page, to_node)


async def load_node(info: Info, global_id: str, expected_type: str | None = None) -> Any:
    """The object a global id names, if it exists for this tenant (RLS); not yet authorized.
    Malformed or mistyped ids → BAD_USER_INPUT; unknown → NOT_FOUND."""
    type_name, local_id = from_global_id(global_id, expected_type)
    load = NODE_LOADERS.get(type_name)
    if load is None:
        raise NotFound("no object with that id")
    node = await load(info, local_id)
    if node is None:
        raise NotFound(f"no {type_name} with that id")
    return node


async def node_by_global_id(info: Info, global_id: str, expected_type: str | None = None,
                            action: str = "read") -> Any:
    """The object a global id names, if it exists for this tenant (RLS) and the principal may `action` it
    (Cerbos). Malformed or mistyped ids → BAD_USER_INPUT; unknown → NOT_FOUND; denied → FORBIDDEN."""
    node = await load_node(info, global_id, expected_type)
    await info.context.authz.require(node.resource(), action)
    return node


async def nodes_by_global_ids(info: Info, requests: Sequence[tuple[str, str | None]],
                              action: str = "read") -> list[Any]:
    """`node_by_global_id` for many (global id, expected type) pairs at once; each result is the object or the
    exception it would have raised. Every load starts in the same tick (one statement per table) and the checks
    wait until every load is done, so the PDP gets one batch whatever the mix of types."""
    loaded = await asyncio.gather(*(load_node(info, global_id, expected) for global_id, expected in requests),
                                  return_exceptions=True)

    async def authorized(node: Any) -> Any:
        if isinstance(node, BaseException):
            return node
        try:
            await info.context.authz.require(node.resource(), action)
        except ApiError as error:
            return error
        return node

    return list(await asyncio.gather(*(authorized(node) for node in loaded)))

