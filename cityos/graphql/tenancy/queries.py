"""Tenancy queries: thin, through loaders, the request's tenant scope (RLS) and Cerbos."""

from __future__ import annotations

import asyncio
from typing import Annotated

import strawberry
from sqlalchemy import String, literal

from cityos.domain.commerce import queries as commerce
from cityos.domain.tenancy import queries as tenancy
from cityos.errors import BadUserInput, NotFound
from cityos.graphql.core.context import Info
from cityos.graphql.core.loaders import in_tenant
from cityos.graphql.core.nodes import node_by_global_id
from cityos.graphql.core.permissions import readable
from cityos.graphql.core.relay import (
    MAX_PAGE_SIZE,
    After,
    Before,
    Connection,
    First,
    Last,
    Node,
    PageRequest,
    page_query,
    wants_total,
)
from cityos.graphql.tenancy.types import REGION, REGION_TABLE, STORE, STORE_TABLE, Region, Store, Tenant

STORE_PLAN_ATTRIBUTES = STORE.plan_attributes
# A region belongs to no store: the policies' store-visitor rule (R.attr.store_id) matches none of them.
REGION_PLAN_ATTRIBUTES = {**REGION.plan_attributes, "store_id": literal("", String)}


async def resolve_node(info: Info, global_id: strawberry.ID) -> Node:
    node: Node = await node_by_global_id(info, global_id)
    return node


StoreIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the store.")]
TenantIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the tenant.")]
AnyId = Annotated[strawberry.ID, strawberry.argument(description="Global id of any object.")]
AnyIds = Annotated[list[strawberry.ID], strawberry.argument(description="Global ids of any objects, at most 100.")]


@strawberry.type
class TenancyQuery:
    @strawberry.field(description="The store named by the x-publishable-api-key header, or by the request's "
                                  "Host through its store domains; null when neither names one.")
    async def current_store(self, info: Info) -> Store | None:
        store = info.context.store
        if store is None:
            return None
        row = await info.context.loaders.by_key(STORE_TABLE).load(store.store_id)
        return await readable(info, Store.from_row(row) if row else None, "store")

    @strawberry.field(description="A store by global id.")
    async def store(self, info: Info, id: StoreIdArg) -> Store:
        store: Store = await node_by_global_id(info, id, "Store")
        return store

    @strawberry.field(description="The stores the caller may read, filtered in SQL from the policy's query plan.")
    async def stores(self, info: Info, first: First = None, after: After = None,
                     last: Last = None, before: Before = None) -> Connection[Store]:
        page = PageRequest(first, after, last, before)
        allowed = await info.context.authz.sql_filter("store", "read", STORE_TABLE, STORE_PLAN_ATTRIBUTES)
        listing = tenancy.stores(allowed, *in_tenant(info.context.db, STORE_TABLE))
        return await page_query(info.context.db.execute, listing.statement, page, Store.from_row, listing.order,
                                count=wants_total(info))

    @strawberry.field(description="The selling regions of the caller's tenant it may read, by name (with their "
                                  "states, tax and shipping options).")
    async def regions(self, info: Info, first: First = None, after: After = None,
                      last: Last = None, before: Before = None) -> Connection[Region]:
        page = PageRequest(first, after, last, before)
        allowed = await info.context.authz.sql_filter("region", "read", REGION_TABLE, REGION_PLAN_ATTRIBUTES)
        listing = commerce.regions(allowed, *in_tenant(info.context.db, REGION_TABLE))
        return await page_query(info.context.db.execute, listing.statement, page, Region.from_row, listing.order,
                                count=wants_total(info))

    @strawberry.field(description="A tenant by global id.")
    async def tenant(self, info: Info, id: TenantIdArg) -> Tenant:
        tenant: Tenant = await node_by_global_id(info, id, "Tenant")
        return tenant

    @strawberry.field(description="Fetch any object by its global id (Relay).")
    async def node(self, info: Info, id: AnyId) -> Node | None:
        return await resolve_node(info, id)

    @strawberry.field(description="Fetch objects by global ids; an id that names nothing yields null.")
    async def nodes(self, info: Info, ids: AnyIds) -> list[Node | None]:
        if len(ids) > MAX_PAGE_SIZE:
            raise BadUserInput(f"at most {MAX_PAGE_SIZE} ids", field="ids")
        found = await asyncio.gather(*(resolve_node(info, global_id) for global_id in ids),
                                     return_exceptions=True)
        for result in found:
            if isinstance(result, BaseException) and not isinstance(result, NotFound):
                raise result
        return [None if isinstance(result, BaseException) else result for result in found]
