"""GraphQL types of the tenancy and commerce reference contexts. Fields map 1:1 to columns; relations are
foreign keys loaded through the request's loaders; lists are connections; every object is a Cerbos resource."""

from __future__ import annotations

import operator
import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from cityos.domain.base import table_of
from cityos.domain.commerce.models import Region as RegionModel
from cityos.domain.commerce.models import RegionState as RegionStateModel
from cityos.domain.content.models import ContentKind
from cityos.domain.tenancy.models import PublishableApiKey as PublishableApiKeyModel
from cityos.domain.tenancy.models import SalesChannel as SalesChannelModel
from cityos.domain.tenancy.models import Store as StoreModel
from cityos.domain.tenancy.models import StoreDomain as StoreDomainModel
from cityos.domain.tenancy.models import Tenant as TenantModel
from cityos.graphql.content.types import Content, load_content
from cityos.graphql.core.context import Info
from cityos.graphql.core.nodes import Declaration, Declared, columns, declare, declared, page_children
from cityos.graphql.core.permissions import guarded_field
from cityos.graphql.core.relay import (
    After,
    Before,
    Connection,
    First,
    Last,
    Node,
    PageRequest,
)

if TYPE_CHECKING:
    from cityos.graphql.marketplace.types import Vendor

STORE_TABLE = table_of(StoreModel)
TENANT_TABLE = table_of(TenantModel)
DOMAIN_TABLE = table_of(StoreDomainModel)
CHANNEL_TABLE = table_of(SalesChannelModel)
KEY_TABLE = table_of(PublishableApiKeyModel)
REGION_TABLE = table_of(RegionModel)
STATE_TABLE = table_of(RegionStateModel)


TENANT = Declaration("Tenant", TENANT_TABLE, "tenant", columns(TENANT_TABLE, tenant_id="id"),
                     scope=operator.attrgetter("slug"))
STORE = Declaration("Store", STORE_TABLE, "store", columns(STORE_TABLE, "tenant_id", store_id="id"))
STORE_DOMAIN = Declaration("StoreDomain", DOMAIN_TABLE, "store_domain", columns(DOMAIN_TABLE, "tenant_id", "store_id"))
SALES_CHANNEL = Declaration("SalesChannel", CHANNEL_TABLE, "sales_channel",
                            columns(CHANNEL_TABLE, "tenant_id", "store_id"))
PUBLISHABLE_KEY = Declaration("PublishableApiKey", KEY_TABLE, "publishable_api_key",
                              columns(KEY_TABLE, "tenant_id", "store_id"))
REGION = Declaration("Region", REGION_TABLE, "region", columns(REGION_TABLE, "tenant_id"))


@strawberry.federation.type(keys=["id"], description="A tenant: one business running stores on the platform.")
@declare(TENANT)
class Tenant(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    slug: str = strawberry.field(description="URL-safe unique name; also the scope of the tenant's Cerbos policy "
                                             "overrides.")
    name: str = strawberry.field(description="Display name.")
    status: str = strawberry.field(description="Life-cycle status of the tenant (active when created).")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]



    @strawberry.field(description="The tenant's stores.")
    async def stores(self, info: Info, first: First = None, after: After = None,
                     last: Last = None, before: Before = None) -> Connection[Store]:
        return await page_children(info, STORE, "tenant_id", self.pk, PageRequest(first, after, last, before))

    @strawberry.field(description="The tenant's selling regions.")
    async def regions(self, info: Info, first: First = None, after: After = None,
                      last: Last = None, before: Before = None) -> Connection[Region]:
        return await page_children(info, REGION, "tenant_id", self.pk, PageRequest(first, after, last, before))


@strawberry.federation.type(keys=["id"], description="A store of a tenant, reached by publishable key or domain.")
@declare(STORE)
class Store(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    handle: str = strawberry.field(description="URL-safe name, unique within the tenant.")
    name: str = strawberry.field(description="Display name.")
    default_currency_code: str = strawberry.field(description="ISO 4217 code of the store's default currency, lower "
                                                              "case.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]



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
        return await page_children(info, STORE_DOMAIN, "store_id", self.pk, PageRequest(first, after, last, before))

    @strawberry.field(description="The store's sales channels.")
    async def sales_channels(self, info: Info, first: First = None, after: After = None,
                             last: Last = None, before: Before = None) -> Connection[SalesChannel]:
        return await page_children(info, SALES_CHANNEL, "store_id", self.pk,
                                    PageRequest(first, after, last, before))

    @strawberry.field(description="The store's vendors the caller may see.")
    async def vendors(self, info: Info, first: First = None, after: After = None, last: Last = None,
                      before: Before = None,
                      ) -> Connection[Annotated[Vendor, strawberry.lazy("cityos.graphql.marketplace.types")]]:
        return await page_children(info, declared("Vendor"), "store_id", self.pk,
                                    PageRequest(first, after, last, before), planned=True)

    @strawberry.field(description="Its content from Payload CMS (brand, banners' images, SEO); null until edited "
                                  "there.")
    async def content(self, info: Info) -> Content | None:
        return await load_content(info, ContentKind.STORE, self.pk)

    @guarded_field("Store", "publishable_keys", "The store's publishable API keys (redacted; a key is shown "
                   "only once, when it is created).")
    async def publishable_keys(self, info: Info, first: First = None, after: After = None,
                               last: Last = None, before: Before = None,
                               ) -> Connection[PublishableApiKey] | None:
        return await page_children(info, PUBLISHABLE_KEY, "store_id", self.pk,
                                    PageRequest(first, after, last, before))


@strawberry.federation.type(description="A host name that serves a store's storefront.", keys=["id"])
@declare(STORE_DOMAIN)
class StoreDomain(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    domain: str = strawberry.field(description="The host name, lower case (unique across the platform).")
    is_primary: bool = strawberry.field(description="Whether it is the store's canonical host name.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    store_pk: strawberry.Private[uuid.UUID]




@strawberry.federation.type(description="A channel a store sells through (the web storefront, a marketplace, …); "
                                        "storefronts show the products of the store's default channel.", keys=["id"])
@declare(SALES_CHANNEL)
class SalesChannel(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    name: str = strawberry.field(description="Display name.")
    description: str | None = strawberry.field(description="What the channel is for.")
    is_default: bool = strawberry.field(description="Whether storefronts sell the products of this channel.")
    is_disabled: bool = strawberry.field(description="Whether the channel is switched off.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    store_pk: strawberry.Private[uuid.UUID]




@strawberry.federation.type(keys=["id"], description="A publishable API key: names a store for storefront calls.")
@declare(PUBLISHABLE_KEY)
class PublishableApiKey(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    title: str = strawberry.field(description="What the key is for (e.g. storefront).")
    redacted: str = strawberry.field(description="The key with all but its first and last characters hidden.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    revoked_at: datetime | None = strawberry.field(description="When the key was revoked; null while it is valid.")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    store_pk: strawberry.Private[uuid.UUID]




@strawberry.type(description="A subdivision of a region's country (ISO 3166-2).")
class RegionState:
    code: str = strawberry.field(description="ISO 3166-2 subdivision code without the country (e.g. CA).")
    name: str = strawberry.field(description="Display name (e.g. California).")


@strawberry.federation.type(description="A selling region of a tenant: one country, its currency and tax rate, its "
                                        "shipping options.", keys=["id"])
@declare(REGION)
class Region(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    name: str = strawberry.field(description="Display name.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    country_code: str = strawberry.field(description="ISO 3166-1 alpha-2 code of the region's country.")
    tax_rate: Decimal = strawberry.field(description="Tax rate as a decimal fraction, e.g. 0.0825")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    created_at: strawberry.Private[datetime]



    @strawberry.field(description="The states of the region's country, by code.")
    async def states(self, info: Info) -> list[RegionState]:
        rows = await info.context.loaders.many_by_key(STATE_TABLE, "region_id").load(self.pk)
        return sorted((RegionState(code=row.code, name=row.name) for row in rows), key=lambda s: s.code)


