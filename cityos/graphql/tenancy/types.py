"""GraphQL types of the tenancy and commerce reference contexts. Fields map 1:1 to columns; relations are
foreign keys loaded through the request's loaders; lists are connections; every object is a Cerbos resource."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy.engine import Row

from cityos.auth.authz import ResourceRef
from cityos.domain.base import table_of
from cityos.domain.commerce.models import Region as RegionModel
from cityos.domain.commerce.models import RegionState as RegionStateModel
from cityos.domain.tenancy.models import PublishableApiKey as PublishableApiKeyModel
from cityos.domain.tenancy.models import SalesChannel as SalesChannelModel
from cityos.domain.tenancy.models import Store as StoreModel
from cityos.domain.tenancy.models import StoreDomain as StoreDomainModel
from cityos.domain.tenancy.models import Tenant as TenantModel
from cityos.errors import ApiError, NotFound
from cityos.graphql.core.context import RequestContext
from cityos.graphql.core.permissions import guarded_field
from cityos.graphql.core.relay import (
    After,
    Before,
    Connection,
    First,
    Last,
    Node,
    PageRequest,
    first_page,
    from_global_id,
    page_loaded_rows,
    to_global_id,
)

if TYPE_CHECKING:
    from cityos.graphql.marketplace.types import Vendor

Info = strawberry.Info[RequestContext, None]
STORE_TABLE = table_of(StoreModel)
TENANT_TABLE = table_of(TenantModel)
DOMAIN_TABLE = table_of(StoreDomainModel)
CHANNEL_TABLE = table_of(SalesChannelModel)
KEY_TABLE = table_of(PublishableApiKeyModel)
REGION_TABLE = table_of(RegionModel)
STATE_TABLE = table_of(RegionStateModel)


async def page_children(info: Info, table: Any, column: str, parent: uuid.UUID, page: PageRequest,
                        to_node: Any, plan: tuple[str, dict[str, Any]] | None = None) -> Connection[Any]:
    """A nested connection. The first page of a kind with a query `plan` (kind, attributes) comes filtered and cut
    in SQL, for all parents in one statement; other pages load the parent's children (one batched load for all
    parents), keep those the principal may read (one batched PDP call), and page them by cursor."""
    if plan is not None and page.after is None and page.before is None and not page.backwards:
        kind, attributes = plan

        async def plan_clause() -> Any:
            return await info.context.authz.sql_filter(kind, "read", table, attributes)

        window = info.context.loaders.first_by_key(table, column, plan_clause, page.size + 1)
        rows, total = await window.load(parent)
        return first_page(rows, total, page, to_node)
    rows = await info.context.loaders.many_by_key(table, column).load(parent)
    readable = await info.context.authz.visible(rows, lambda row: to_node(row).resource())
    return page_loaded_rows(readable, page, to_node)


@strawberry.federation.type(keys=["id"], description="A tenant: one business running stores on the platform.")
class Tenant(Node):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    slug: str = strawberry.field(description="URL-safe unique name; also the scope of the tenant's Cerbos policy "
                                             "overrides.")
    name: str = strawberry.field(description="Display name.")
    status: str = strawberry.field(description="Life-cycle status of the tenant (active when created).")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: Row[Any]) -> Tenant:
        return cls(id=to_global_id("Tenant", row.id), slug=row.slug, name=row.name, status=row.status,
                   created_at=row.created_at, pk=row.id)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("tenant", self.pk, scope=self.slug, tenant_id=self.pk)

    @strawberry.field(description="The tenant's stores.")
    async def stores(self, info: Info, first: First = None, after: After = None,
                     last: Last = None, before: Before = None) -> Connection[Store]:
        return await page_children(info, STORE_TABLE, "tenant_id", self.pk, PageRequest(first, after, last, before),
                                    Store.from_row)

    @strawberry.field(description="The tenant's selling regions.")
    async def regions(self, info: Info, first: First = None, after: After = None,
                      last: Last = None, before: Before = None) -> Connection[Region]:
        return await page_children(info, REGION_TABLE, "tenant_id", self.pk,
                                    PageRequest(first, after, last, before), Region.from_row)


@strawberry.federation.type(keys=["id"], description="A store of a tenant, reached by publishable key or domain.")
class Store(Node):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    handle: str = strawberry.field(description="URL-safe name, unique within the tenant.")
    name: str = strawberry.field(description="Display name.")
    default_currency_code: str = strawberry.field(description="ISO 4217 code of the store's default currency, lower "
                                                              "case.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: Row[Any]) -> Store:
        return cls(id=to_global_id("Store", row.id), handle=row.handle, name=row.name,
                   default_currency_code=row.default_currency_code, created_at=row.created_at,
                   pk=row.id, tenant_pk=row.tenant_id)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("store", self.pk, tenant_id=self.tenant_pk, store_id=self.pk)

    @strawberry.field(description="The tenant the store belongs to (null if the caller may not read it).")
    async def tenant(self, info: Info) -> Tenant | None:
        row = await info.context.loaders.by_key(TENANT_TABLE).load(self.tenant_pk)
        tenant = Tenant.from_row(row) if row else None
        if tenant is None or not await info.context.authz.allowed(tenant.resource(), "read"):
            return None
        return tenant

    @strawberry.field(description="Host names that serve this store.")
    async def domains(self, info: Info, first: First = None, after: After = None,
                      last: Last = None, before: Before = None) -> Connection[StoreDomain]:
        return await page_children(info, DOMAIN_TABLE, "store_id", self.pk,
                                    PageRequest(first, after, last, before), StoreDomain.from_row)

    @strawberry.field(description="The store's sales channels.")
    async def sales_channels(self, info: Info, first: First = None, after: After = None,
                             last: Last = None, before: Before = None) -> Connection[SalesChannel]:
        return await page_children(info, CHANNEL_TABLE, "store_id", self.pk,
                                    PageRequest(first, after, last, before), SalesChannel.from_row)

    @strawberry.field(description="The store's vendors the caller may see.")
    async def vendors(self, info: Info, first: First = None, after: After = None, last: Last = None,
                      before: Before = None,
                      ) -> Connection[Annotated[Vendor, strawberry.lazy("cityos.graphql.marketplace.types")]]:
        from cityos.graphql.marketplace.types import VENDOR_PLAN_ATTRIBUTES, VENDOR_TABLE, Vendor

        return await page_children(info, VENDOR_TABLE, "store_id", self.pk, PageRequest(first, after, last, before),
                                    Vendor.from_row, ("vendor", VENDOR_PLAN_ATTRIBUTES))

    @guarded_field("Store", "publishable_keys", "The store's publishable API keys (redacted; a key is shown "
                   "only once, when it is created).")
    async def publishable_keys(self, info: Info, first: First = None, after: After = None,
                               last: Last = None, before: Before = None,
                               ) -> Connection[PublishableApiKey] | None:
        return await page_children(info, KEY_TABLE, "store_id", self.pk,
                                    PageRequest(first, after, last, before), PublishableApiKey.from_row)


@strawberry.federation.type(description="A host name that serves a store's storefront.", keys=["id"])
class StoreDomain(Node):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    domain: str = strawberry.field(description="The host name, lower case (unique across the platform).")
    is_primary: bool = strawberry.field(description="Whether it is the store's canonical host name.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    store_pk: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: Row[Any]) -> StoreDomain:
        return cls(id=to_global_id("StoreDomain", row.id), domain=row.domain, is_primary=row.is_primary,
                   created_at=row.created_at, pk=row.id, tenant_pk=row.tenant_id, store_pk=row.store_id)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("store_domain", self.pk, tenant_id=self.tenant_pk, store_id=self.store_pk)


@strawberry.federation.type(description="A channel a store sells through (the web storefront, a marketplace, …); "
                                        "storefronts show the products of the store's default channel.", keys=["id"])
class SalesChannel(Node):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    name: str = strawberry.field(description="Display name.")
    description: str | None = strawberry.field(description="What the channel is for.")
    is_default: bool = strawberry.field(description="Whether storefronts sell the products of this channel.")
    is_disabled: bool = strawberry.field(description="Whether the channel is switched off.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    store_pk: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: Row[Any]) -> SalesChannel:
        return cls(id=to_global_id("SalesChannel", row.id), name=row.name, description=row.description,
                   is_default=row.is_default, is_disabled=row.is_disabled, created_at=row.created_at,
                   pk=row.id, tenant_pk=row.tenant_id, store_pk=row.store_id)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("sales_channel", self.pk, tenant_id=self.tenant_pk, store_id=self.store_pk)


@strawberry.federation.type(keys=["id"], description="A publishable API key: names a store for storefront calls.")
class PublishableApiKey(Node):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    title: str = strawberry.field(description="What the key is for (e.g. storefront).")
    redacted: str = strawberry.field(description="The key with all but its first and last characters hidden.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    revoked_at: datetime | None = strawberry.field(description="When the key was revoked; null while it is valid.")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    store_pk: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: Row[Any]) -> PublishableApiKey:
        return cls(id=to_global_id("PublishableApiKey", row.id), title=row.title, redacted=row.redacted,
                   created_at=row.created_at, revoked_at=row.revoked_at, pk=row.id, tenant_pk=row.tenant_id,
                   store_pk=row.store_id)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("publishable_api_key", self.pk, tenant_id=self.tenant_pk, store_id=self.store_pk)


@strawberry.type(description="A subdivision of a region's country (ISO 3166-2).")
class RegionState:
    code: str = strawberry.field(description="ISO 3166-2 subdivision code without the country (e.g. CA).")
    name: str = strawberry.field(description="Display name (e.g. California).")


@strawberry.federation.type(description="A selling region of a tenant: one country, its currency and tax rate, its "
                                        "shipping options.", keys=["id"])
class Region(Node):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    name: str = strawberry.field(description="Display name.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    country_code: str = strawberry.field(description="ISO 3166-1 alpha-2 code of the region's country.")
    tax_rate: Decimal = strawberry.field(description="Tax rate as a decimal fraction, e.g. 0.0825")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    created_at: strawberry.Private[datetime]

    @classmethod
    def from_row(cls, row: Row[Any]) -> Region:
        return cls(id=to_global_id("Region", row.id), name=row.name, currency_code=row.currency_code,
                   country_code=row.country_code, tax_rate=row.tax_rate, pk=row.id, tenant_pk=row.tenant_id,
                   created_at=row.created_at)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("region", self.pk, tenant_id=self.tenant_pk)

    @strawberry.field(description="The states of the region's country, by code.")
    async def states(self, info: Info) -> list[RegionState]:
        rows = await info.context.loaders.many_by_key(STATE_TABLE, "region_id").load(self.pk)
        return sorted((RegionState(code=row.code, name=row.name) for row in rows), key=lambda s: s.code)


NodeLoader = Callable[[Info, uuid.UUID], Awaitable[Any]]
NODE_LOADERS: dict[str, NodeLoader] = {}


def register_node(type_name: str, load: NodeLoader) -> None:
    """Make a Node type fetchable by global id (`node`, `nodes`, federation, mutations)."""
    NODE_LOADERS[type_name] = load


def register_table_node(type_name: str, table: Any, to_node: Callable[[Row[Any]], Any]) -> None:
    async def load(info: Info, local_id: uuid.UUID) -> Any:
        row = await info.context.loaders.by_key(table).load(local_id)
        return to_node(row) if row else None

    register_node(type_name, load)


for _name, _table, _to_node in (("Tenant", TENANT_TABLE, Tenant.from_row), ("Store", STORE_TABLE, Store.from_row),
                                ("StoreDomain", DOMAIN_TABLE, StoreDomain.from_row),
                                ("SalesChannel", CHANNEL_TABLE, SalesChannel.from_row),
                                ("PublishableApiKey", KEY_TABLE, PublishableApiKey.from_row),
                                ("Region", REGION_TABLE, Region.from_row)):
    register_table_node(_name, _table, _to_node)


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
