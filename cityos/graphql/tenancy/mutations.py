"""Admin mutations of the tenancy context. Each: authenticate, authorize (Cerbos), validate, run the service in
its own savepoint, return the changed object. Bad input is BAD_USER_INPUT, duplicates CONFLICT."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.auth.authz import ResourceRef
from cityos.db.engines import set_platform_scope, tenant_transaction
from cityos.domain.commerce import regions
from cityos.domain.platform.service import audit
from cityos.domain.tenancy import service
from cityos.errors import NotFound, Unauthenticated
from cityos.graphql.core.context import Info, tenant_of
from cityos.graphql.core.nodes import node_by_global_id
from cityos.graphql.core.relay import from_global_id
from cityos.graphql.core.values import MoneyInput
from cityos.graphql.tenancy.arguments import (
    CreateShippingOptionInput,
    NewRegion,
    NewSalesChannel,
    NewShippingOption,
    RegionChanges,
    RegionIdArg,
    RegionStateInput,
    SalesChannelChanges,
    SalesChannelIdArg,
    ShippingOptionChanges,
    ShippingOptionIdArg,
    UpdateShippingOptionInput,
)
from cityos.graphql.tenancy.types import (
    OPTION_TABLE,
    REGION_TABLE,
    PublishableApiKey,
    Region,
    SalesChannel,
    ShippingOptionSetup,
    Store,
    StoreDomain,
    Tenant,
    shipping_option_of,
)


@strawberry.input(description="A new tenant of the platform.")
class CreateTenantInput:
    slug: str = strawberry.field(description="URL-safe unique name of the tenant; also its Cerbos policy scope.")
    name: str = strawberry.field(description="Display name.")


@strawberry.input(description="A new store in the caller's tenant.")
class CreateStoreInput:
    handle: str = strawberry.field(description="URL-safe name, unique within the tenant.")
    name: str = strawberry.field(description="Display name.")
    default_currency_code: str = strawberry.field(default="usd", description="ISO 4217 code of the store's default "
                                                                             "currency, lower case.")


@strawberry.input(description="Changes to a store; omitted fields stay as they are.")
class UpdateStoreInput:
    name: str | None = strawberry.field(default=None, description="New display name.")
    handle: str | None = strawberry.field(default=None, description="New URL-safe name, unique within the tenant.")
    default_currency_code: str | None = strawberry.field(default=None, description="New default currency (ISO 4217, "
                                                                                   "lower case).")


@strawberry.type(description="A new publishable key. `key` is shown here once and never again.")
class CreatedPublishableKey:
    key: str = strawberry.field(description="The full key, for the x-publishable-api-key header. Store it now: only "
                                            "its hash is kept.")
    publishable_key: PublishableApiKey = strawberry.field(description="The key's record (redacted).")


async def _audit(info: Info, connection: AsyncConnection, action: str, kind: str, target: Any) -> None:
    await audit(connection, tenant_id=info.context.principal.tenant_id, actor=info.context.principal.id,
                action=action, target_kind=kind, target_id=target)


CreateTenant = Annotated[CreateTenantInput, strawberry.argument(description="The tenant to create.")]
CreateStore = Annotated[CreateStoreInput, strawberry.argument(description="The store to create.")]
StoreIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the store.")]
StoreChanges = Annotated[UpdateStoreInput, strawberry.argument(description="The changes.")]
Domain = Annotated[str, strawberry.argument(description="The host name, e.g. shop.example.com.")]
IsPrimary = Annotated[bool, strawberry.argument(description="Make it the store's canonical host name.")]
DomainIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the store domain.")]
KeyTitle = Annotated[str, strawberry.argument(description="What the key is for (e.g. storefront).")]
KeyIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the publishable key.")]


@strawberry.type
class TenancyMutation:
    @strawberry.mutation(description="Create a tenant (super_admin; a platform operation, audited).")
    async def create_tenant(self, info: Info, input: CreateTenant) -> Tenant:
        principal = info.context.principal
        if not principal.authenticated:
            raise Unauthenticated("sign in to create a tenant")
        await info.context.authz.require(ResourceRef.of("tenant", "new", tenant_id=""), "create")
        async with tenant_transaction(info.context.services.app_engine, None) as connection:
            await set_platform_scope(connection)
            row = await service.create_tenant(connection, slug=input.slug, name=input.name)
            await audit(connection, tenant_id=None, actor=principal.id, action="create_tenant",
                        target_kind="tenant", target_id=row.id, slug=row.slug)
        return Tenant.from_row(row)

    @strawberry.mutation(description="Create a store (and its default sales channel) in the caller's tenant.")
    async def create_store(self, info: Info, input: CreateStore) -> Store:
        tenant_id = tenant_of(info)
        await info.context.authz.require(ResourceRef.of("store", "new", tenant_id=tenant_id, store_id=""), "create")

        async def work(connection: AsyncConnection) -> Any:
            row = await service.create_store(connection, tenant_id=tenant_id, handle=input.handle, name=input.name,
                                             default_currency_code=input.default_currency_code)
            await _audit(info, connection, "create_store", "store", row.id)
            return row

        return Store.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Change a store's name, handle or default currency.")
    async def update_store(self, info: Info, id: StoreIdArg, input: StoreChanges) -> Store:
        tenant_of(info)
        store: Store = await node_by_global_id(info, id, "Store", "update")

        async def work(connection: AsyncConnection) -> Any:
            row = await service.update_store(connection, store_id=store.pk, name=input.name, handle=input.handle,
                                             default_currency_code=input.default_currency_code)
            await _audit(info, connection, "update_store", "store", row.id)
            return row

        return Store.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Serve the store on a host name (unique across the platform).")
    async def add_store_domain(self, info: Info, store_id: StoreIdArg, domain: Domain,
                               is_primary: IsPrimary = False) -> StoreDomain:
        tenant_id = tenant_of(info)
        store: Store = await node_by_global_id(info, store_id, "Store", "manage_domains")

        async def work(connection: AsyncConnection) -> Any:
            row = await service.add_store_domain(connection, tenant_id=tenant_id, store_id=store.pk, domain=domain,
                                                 is_primary=is_primary)
            await _audit(info, connection, "add_store_domain", "store_domain", row.id)
            return row

        return StoreDomain.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Stop serving the store on a host name. Returns the removed domain's id.")
    async def remove_store_domain(self, info: Info, id: DomainIdArg) -> strawberry.ID:
        tenant_of(info)
        domain: StoreDomain = await node_by_global_id(info, id, "StoreDomain", "delete")

        async def work(connection: AsyncConnection) -> Any:
            removed = await service.remove_store_domain(connection, domain_id=domain.pk)
            await _audit(info, connection, "remove_store_domain", "store_domain", removed)
            return removed

        await info.context.db.mutate(work)
        return id

    @strawberry.mutation(description="Create a publishable key for a store; the key is returned once.")
    async def create_publishable_key(self, info: Info, store_id: StoreIdArg, title: KeyTitle) -> CreatedPublishableKey:
        tenant_id = tenant_of(info)
        store: Store = await node_by_global_id(info, store_id, "Store", "manage_keys")

        async def work(connection: AsyncConnection) -> Any:
            created = await service.create_publishable_key(connection, tenant_id=tenant_id, store_id=store.pk,
                                                           title=title)
            await _audit(info, connection, "create_publishable_key", "publishable_api_key", created[0].id)
            return created

        row, key = await info.context.db.mutate(work)
        return CreatedPublishableKey(key=key, publishable_key=PublishableApiKey.from_row(row))

    @strawberry.mutation(description="Revoke a publishable key: requests with it are refused from now on.")
    async def revoke_publishable_key(self, info: Info, id: KeyIdArg) -> PublishableApiKey:
        tenant_of(info)
        key: PublishableApiKey = await node_by_global_id(info, id, "PublishableApiKey", "revoke")

        async def work(connection: AsyncConnection) -> Any:
            revoked = await service.revoke_publishable_key(connection, key_id=key.pk)
            await _audit(info, connection, "revoke_publishable_key", "publishable_api_key", key.pk)
            return revoked

        return PublishableApiKey.from_row(await info.context.db.mutate(work))


def _amount(value: MoneyInput | None) -> regions.Amount | None:
    return regions.Amount(value.amount, value.currency_code) if value is not None else None


def _option_values(input: CreateShippingOptionInput | UpdateShippingOptionInput) -> regions.OptionValues:
    bands = None if input.weight_bands is None else [(band.up_to_grams, regions.Amount(
        band.amount.amount, band.amount.currency_code)) for band in input.weight_bands]
    return regions.OptionValues(name=input.name, amount=_amount(input.amount),
                                min_subtotal=_amount(input.min_subtotal), free_above=_amount(input.free_above),
                                weight_bands=bands, is_active=getattr(input, "is_active", None))


def _states(states: list[RegionStateInput] | None) -> list[regions.StateValues] | None:
    return None if states is None else [regions.StateValues(state.code, state.name, state.tax_rate)
                                        for state in states]


async def _shipping_option(info: Info, global_id: strawberry.ID, action: str) -> ShippingOptionSetup:
    _, local_id = from_global_id(global_id, "ShippingOption")
    row = await info.context.loaders.by_key(OPTION_TABLE).load(local_id)
    if row is None:
        raise NotFound("no shipping option with that id")
    region = await info.context.loaders.by_key(REGION_TABLE).load(row.region_id)
    option = shipping_option_of(row, region.currency_code)
    if not await info.context.authz.allowed(option.resource(), "read"):
        raise NotFound("no shipping option with that id")
    await info.context.authz.require(option.resource(), action)
    return option


@strawberry.type
class StoreSetupMutation:
    @strawberry.mutation(description="Create a selling region: countries, states, currency, tax (per region and per "
                                     "state, prices with or without tax).")
    async def create_region(self, info: Info, input: NewRegion) -> Region:
        tenant_id = tenant_of(info)
        await info.context.authz.require(ResourceRef.of("region", "new", tenant_id=tenant_id), "create")

        async def work(connection: AsyncConnection) -> Any:
            row = await regions.create_region(
                connection, tenant_id=tenant_id, name=input.name, currency_code=input.currency_code,
                country_codes=input.country_codes, tax_rate=input.tax_rate, tax_inclusive=input.tax_inclusive,
                states=_states(input.states) or [])
            await _audit(info, connection, "create_region", "region", row.id)
            return row

        return Region.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Change a region's name, countries, tax or states (states are replaced).")
    async def update_region(self, info: Info, id: RegionIdArg, input: RegionChanges) -> Region:
        tenant_of(info)
        region: Region = await node_by_global_id(info, id, "Region", "update")

        async def work(connection: AsyncConnection) -> Any:
            row = await regions.update_region(
                connection, region.pk, name=input.name, country_codes=input.country_codes, tax_rate=input.tax_rate,
                tax_inclusive=input.tax_inclusive, states=_states(input.states))
            await _audit(info, connection, "update_region", "region", row.id)
            return row

        return Region.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Create a shipping option of a region (the store's, or a vendor's own). An "
                                     "amount in another currency than the region's is BAD_USER_INPUT.")
    async def create_shipping_option(self, info: Info, input: NewShippingOption) -> ShippingOptionSetup:
        tenant_id = tenant_of(info)
        region: Region = await node_by_global_id(info, input.region_id, "Region")
        vendor_id = None
        if input.vendor_id is not None:
            vendor = await node_by_global_id(info, input.vendor_id, "Vendor")
            vendor_id = vendor.pk
        await info.context.authz.require(ResourceRef.of("shipping_option", "new", tenant_id=tenant_id,
                                                        vendor_id=str(vendor_id or "")), "create")

        async def work(connection: AsyncConnection) -> Any:
            row = await regions.create_shipping_option(connection, region=region.row, vendor_id=vendor_id,
                                                       code=input.code, values=_option_values(input))
            await _audit(info, connection, "create_shipping_option", "shipping_option", row.id)
            return row

        return shipping_option_of(await info.context.db.mutate(work), region.currency_code)

    @strawberry.mutation(description="Change a shipping option (amounts in the region's currency).")
    async def update_shipping_option(self, info: Info, id: ShippingOptionIdArg,
                                     input: ShippingOptionChanges) -> ShippingOptionSetup:
        tenant_of(info)
        option = await _shipping_option(info, id, "update")

        async def work(connection: AsyncConnection) -> Any:
            row = await regions.update_shipping_option(connection, option.row.id, _option_values(input),
                                                       clear=input.clear)
            await _audit(info, connection, "update_shipping_option", "shipping_option", row.id)
            return row

        return shipping_option_of(await info.context.db.mutate(work), option.row.currency_code)

    @strawberry.mutation(description="Create a sales channel of a store (optionally its default one).")
    async def create_sales_channel(self, info: Info, input: NewSalesChannel) -> SalesChannel:
        tenant_id = tenant_of(info)
        store: Store = await node_by_global_id(info, input.store_id, "Store")
        await info.context.authz.require(ResourceRef.of("sales_channel", "new", tenant_id=tenant_id,
                                                        store_id=store.pk), "create")

        async def work(connection: AsyncConnection) -> Any:
            row = await service.create_sales_channel(connection, tenant_id=tenant_id, store_id=store.pk,
                                                     name=input.name, description=input.description,
                                                     is_default=input.is_default)
            await _audit(info, connection, "create_sales_channel", "sales_channel", row.id)
            return row

        return SalesChannel.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Change a sales channel: name, description, default, disabled.")
    async def update_sales_channel(self, info: Info, id: SalesChannelIdArg,
                                   input: SalesChannelChanges) -> SalesChannel:
        tenant_of(info)
        channel: SalesChannel = await node_by_global_id(info, id, "SalesChannel", "update")

        async def work(connection: AsyncConnection) -> Any:
            row = await service.update_sales_channel(connection, channel_id=channel.pk, name=input.name,
                                                     description=input.description, is_default=input.is_default,
                                                     is_disabled=input.is_disabled)
            await _audit(info, connection, "update_sales_channel", "sales_channel", row.id)
            return row

        return SalesChannel.from_row(await info.context.db.mutate(work))
