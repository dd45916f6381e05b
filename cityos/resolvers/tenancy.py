"""Tenancy queries: thin, through loaders and the request's tenant scope (RLS)."""

from __future__ import annotations

import asyncio

import strawberry
from sqlalchemy import select

from cityos.errors import BadUserInput, NotFound
from cityos.schema.relay import MAX_PAGE_SIZE, Connection, Node, PageRequest, from_global_id, page_query
from cityos.schema.tenancy import NODE_TABLES, STORE_TABLE, TENANT_TABLE, Info, Store, Tenant


async def resolve_node(info: Info, global_id: strawberry.ID) -> Node:
    type_name, local_id = from_global_id(global_id)
    if type_name not in NODE_TABLES:
        raise NotFound(f"no object with id {global_id!r}")
    table, to_node = NODE_TABLES[type_name]
    row = await info.context.loaders.by_key(table).load(local_id)
    if row is None:
        raise NotFound(f"no object with id {global_id!r}")
    node: Node = to_node(row)
    return node


@strawberry.type
class TenancyQuery:
    @strawberry.field(description="The store named by the x-publishable-api-key header, or by the request's "
                                  "Host through its store domains; null when neither names one.")
    async def current_store(self, info: Info) -> Store | None:
        store = info.context.store
        if store is None:
            return None
        row = await info.context.loaders.by_key(STORE_TABLE).load(store.store_id)
        return Store.from_row(row) if row else None

    @strawberry.field
    async def store(self, info: Info, id: strawberry.ID) -> Store:
        _, local_id = from_global_id(id, "Store")
        row = await info.context.loaders.by_key(STORE_TABLE).load(local_id)
        if row is None:
            raise NotFound(f"no store with id {id!r}")
        return Store.from_row(row)

    @strawberry.field(description="The stores visible to the caller.")
    async def stores(self, info: Info, first: int | None = None, after: str | None = None,
                     last: int | None = None, before: str | None = None) -> Connection[Store]:
        page = PageRequest(first, after, last, before)
        return await page_query(info.context.db.execute, select(STORE_TABLE), page, Store.from_row)

    @strawberry.field
    async def tenant(self, info: Info, id: strawberry.ID) -> Tenant:
        _, local_id = from_global_id(id, "Tenant")
        row = await info.context.loaders.by_key(TENANT_TABLE).load(local_id)
        if row is None:
            raise NotFound(f"no tenant with id {id!r}")
        return Tenant.from_row(row)

    @strawberry.field(description="Fetch any object by its global id (Relay).")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await resolve_node(info, id)

    @strawberry.field(description="Fetch objects by global ids; an id that names nothing yields null.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > MAX_PAGE_SIZE:
            raise BadUserInput(f"at most {MAX_PAGE_SIZE} ids", field="ids")
        found = await asyncio.gather(*(resolve_node(info, global_id) for global_id in ids),
                                     return_exceptions=True)
        for result in found:
            if isinstance(result, BaseException) and not isinstance(result, NotFound):
                raise result
        return [None if isinstance(result, BaseException) else result for result in found]

