"""GraphQL types of the tenancy and commerce reference contexts. Fields map 1:1 to columns; relations are
foreign keys loaded through the request's loaders; lists are connections; every object is a Cerbos resource."""

from __future__ import annotations

import operator
import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy import String, func

from cityos.domain.base import table_of
from cityos.domain.commerce.models import Region as RegionModel
from cityos.domain.commerce.models import RegionState as RegionStateModel
from cityos.domain.commerce.models import ShippingOption as ShippingOptionModel
from cityos.domain.content.models import ContentKind
from cityos.domain.tenancy.models import PublishableApiKey as PublishableApiKeyModel
from cityos.domain.tenancy.models import SalesChannel as SalesChannelModel
from cityos.domain.tenancy.models import Store as StoreModel
from cityos.domain.tenancy.models import StoreDomain as StoreDomainModel
from cityos.domain.tenancy.models import Tenant as TenantModel
from cityos.graphql.content.types import Content, load_content
from cityos.graphql.core.context import Info
from cityos.graphql.core.nodes import Attribute, Declaration, Declared, columns, declare, declared, page_children
from cityos.graphql.core.permissions import guarded_field
from cityos.graphql.core.relay import (
    After,
    Before,
    Connection,
    First,
    Last,
    Node,
    PageRequest,
    to_global_id,
)
from cityos.graphql.core.values import Money, money, optional_money

if TYPE_CHECKING:
    from cityos.graphql.marketplace.types import Vendor

STORE_TABLE = table_of(StoreModel)
TENANT_TABLE = table_of(TenantModel)
DOMAIN_TABLE = table_of(StoreDomainModel)
CHANNEL_TABLE = table_of(SalesChannelModel)
KEY_TABLE = table_of(PublishableApiKeyModel)
REGION_TABLE = table_of(RegionModel)
STATE_TABLE = table_of(RegionStateModel)
OPTION_TABLE = table_of(ShippingOptionModel)


TENANT = Declaration("Tenant", TENANT_TABLE, "tenant", columns(TENANT_TABLE, tenant_id="id"),
                     scope=operator.attrgetter("slug"))
STORE = Declaration("Store", STORE_TABLE, "store", columns(STORE_TABLE, "tenant_id", store_id="id"))
STORE_DOMAIN = Declaration("StoreDomain", DOMAIN_TABLE, "store_domain", columns(DOMAIN_TABLE, "tenant_id", "store_id"))
SALES_CHANNEL = Declaration("SalesChannel", CHANNEL_TABLE, "sales_channel",
                            columns(CHANNEL_TABLE, "tenant_id", "store_id"))
PUBLISHABLE_KEY = Declaration("PublishableApiKey", KEY_TABLE, "publishable_api_key",
                              columns(KEY_TABLE, "tenant_id", "store_id"))
REGION = Declaration("Region", REGION_TABLE, "region", columns(REGION_TABLE, "tenant_id"),
                     fields={"country_codes": lambda row: list(row.country_codes)})
SHIPPING_OPTION = Declaration(
    "ShippingOptionSetup", OPTION_TABLE, "shipping_option",
    {**columns(OPTION_TABLE, "tenant_id"),
     "vendor_id": Attribute(func.coalesce(func.cast(OPTION_TABLE.c.vendor_id, String), ""),
                            lambda row: str(row.vendor_id) if row.vendor_id else "")},
    fields={"id": lambda row: to_global_id("ShippingOption", row.id)}, node=False)


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
    tax_rate: Decimal | None = strawberry.field(default=None, description="The state's own tax rate (a decimal "
                                                                          "fraction); null: the region's.")


@strawberry.type(description="One weight band of a shipping option: parcels up to upToGrams cost amount.")
class WeightBand:
    up_to_grams: int | None = strawberry.field(description="Upper weight limit in grams; null: no limit (last band).")
    amount: Money = strawberry.field(description="Price of a parcel in this band.")


@strawberry.type(description="A shipping option as the tenant set it up: flat amount, free above an amount, or "
                             "weight bands; the store's, or a vendor's own (its items then ship at its price).")
@declare(SHIPPING_OPTION)
class ShippingOptionSetup(Declared):
    id: strawberry.ID = strawberry.field(description="Global id of the option (a ShippingOption id).")
    code: str = strawberry.field(description="Stable code (standard, express, …); a vendor's option overrides "
                                             "the store's option of the same code for its items.")
    name: str = strawberry.field(description="Display name.")
    is_active: bool = strawberry.field(description="Whether carts are offered it.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    row: strawberry.Private[Any]

    @strawberry.field(description="Flat price (unless weight bands price it).")
    def amount(self) -> Money:
        return money(self.row.amount, self.row.currency_code)

    @strawberry.field(description="Offered only from this (discounted) subtotal on; null: always.")
    def min_subtotal(self) -> Money | None:
        return optional_money(self.row.min_subtotal, self.row.currency_code)

    @strawberry.field(description="Free from this (discounted) subtotal on; null: never free.")
    def free_above(self) -> Money | None:
        return optional_money(self.row.free_above, self.row.currency_code)

    @strawberry.field(description="Prices by parcel weight, lightest first; empty: the flat amount.")
    def weight_bands(self) -> list[WeightBand]:
        return [WeightBand(up_to_grams=band.get("up_to_grams"), amount=money(int(band["amount"]),
                                                                              self.row.currency_code))
                for band in self.row.weight_bands or ()]

    @strawberry.field(description="Global id of the vendor whose own option this is; null: the store's.")
    def vendor_id(self) -> strawberry.ID | None:
        return to_global_id("Vendor", self.row.vendor_id) if self.row.vendor_id else None


@strawberry.federation.type(description="A selling region of a tenant: one country, its currency and tax rate, its "
                                        "shipping options.", keys=["id"])
@declare(REGION)
class Region(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    name: str = strawberry.field(description="Display name.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    country_code: str = strawberry.field(description="ISO 3166-1 alpha-2 code of the region's (first) country.")
    country_codes: list[str] = strawberry.field(description="Every country the region sells to (ISO 3166-1 "
                                                            "alpha-2, lower case).")
    tax_rate: Decimal = strawberry.field(description="Tax rate as a decimal fraction, e.g. 0.0825")
    tax_inclusive: bool = strawberry.field(description="Whether prices and shipping include the tax.")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    created_at: strawberry.Private[datetime]



    @strawberry.field(description="The states of the region's countries, by code.")
    async def states(self, info: Info) -> list[RegionState]:
        rows = await info.context.loaders.many_by_key(STATE_TABLE, "region_id").load(self.pk)
        return sorted((RegionState(code=row.code, name=row.name, tax_rate=row.tax_rate) for row in rows),
                      key=lambda s: s.code)

    @strawberry.field(description="The region's shipping options the caller may read (the store's and vendors' "
                                  "own, inactive ones too), by code.")
    async def shipping_options(self, info: Info) -> list[ShippingOptionSetup]:
        rows = await info.context.loaders.many_by_key(OPTION_TABLE, "region_id").load(self.pk)
        options = [shipping_option_of(row, self.currency_code)
                   for row in sorted(rows, key=lambda r: (r.code, str(r.vendor_id or "")))]
        return await info.context.authz.visible(options, ShippingOptionSetup.resource)


def shipping_option_of(row: Any, currency_code: str) -> ShippingOptionSetup:
    """The option with its region's currency (its amounts are in it)."""
    return ShippingOptionSetup.from_row(_WithCurrency(row, currency_code))


class _WithCurrency:
    """A shipping option row plus its region's currency code."""

    def __init__(self, row: Any, currency_code: str) -> None:
        self._row, self.currency_code = row, currency_code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


