"""Catalog admin mutations: products, variants, prices, tiers, categories. Store and tenant admins manage their
stores' catalogs; vendor admins and users manage their own vendor's products only (Cerbos)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.scalars import JSON

from cityos.auth.authz import ResourceRef
from cityos.domain.catalog import rules, service
from cityos.domain.marketplace import queries as vendors
from cityos.errors import BadUserInput
from cityos.graphql.catalog.types import (
    CATEGORY_TABLE,
    PRICE_TABLE,
    PRODUCT_TABLE,
    VARIANT_TABLE,
    Category,
    Product,
    ProductStatus,
    Variant,
)
from cityos.graphql.core.context import Info, tenant_of
from cityos.graphql.core.nodes import node_by_global_id
from cityos.graphql.core.relay import from_global_id, to_global_id
from cityos.graphql.core.values import MoneyInput
from cityos.graphql.tenancy.types import CHANNEL_TABLE, Store


@strawberry.input(description="One volume pricing tier: from `minQuantity` units on, `percentOff` the list price or a "
                              "fixed `unitAmount` (exactly one of them).")
class PriceTierInput:
    min_quantity: int = strawberry.field(description="The tier applies from this many units on (at least 1).")
    percent_off: Decimal | None = strawberry.field(default=None, description="Discount off the list price, in percent "
                                                                             "(0–100).")
    unit_amount: int | None = strawberry.field(default=None, description="Fixed unit price in minor units.")


@strawberry.input(description="A new product of a store.")
class CreateProductInput:
    store_id: strawberry.ID = strawberry.field(description="Global id of the store the product belongs to.")
    handle: str = strawberry.field(description="URL-safe name, unique within the store.")
    title: str = strawberry.field(description="Display title.")
    vendor_id: strawberry.ID | None = strawberry.field(default=None, description="Global id of the vendor selling it "
                                                                                 "(a vendor user's own vendor by "
                                                                                 "default).")
    description: str | None = strawberry.field(default=None, description="Long description (plain text); searched by "
                                                                         "full-text search.")
    status: ProductStatus = strawberry.field(default=ProductStatus.DRAFT, description="Life-cycle status; new "
                                                                                      "products start as drafts.")
    images: list[str] | None = strawberry.field(default=None, description="Image URLs, the first is the thumbnail.")
    metadata: JSON | None = strawberry.field(default=None, description="Free-form JSON object kept with the product.")
    category_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Global ids of the "
                                                                                          "categories the product is "
                                                                                          "listed in.")
    sales_channel_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Default: the store's default sales channel")


@strawberry.input(description="Changes to a product; omitted fields stay as they are.")
class UpdateProductInput:
    handle: str | None = strawberry.field(default=None, description="New URL-safe name, unique within the store.")
    title: str | None = strawberry.field(default=None, description="New display title.")
    description: str | None = strawberry.field(default=None, description="New long description.")
    status: ProductStatus | None = strawberry.field(default=None, description="New life-cycle status.")
    images: list[str] | None = strawberry.field(default=None, description="New image URLs (replace the old ones); the "
                                                                          "first is the thumbnail.")
    metadata: JSON | None = strawberry.field(default=None, description="New metadata (replaces the old object).")
    category_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Global ids of the "
                                                                                          "categories (replace the "
                                                                                          "old ones).")
    sales_channel_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Global ids of the "
                                                                                               "sales channels "
                                                                                               "(replace the old "
                                                                                               "ones).")


@strawberry.input(description="A new variant of a product, with its stock and list prices.")
class CreateVariantInput:
    sku: str = strawberry.field(description="Stock keeping unit, unique within the tenant.")
    title: str = strawberry.field(description="Display title (e.g. Large / Blue).")
    options: JSON | None = strawberry.field(default=None, description="Option values as a JSON object, e.g. {\"size\": "
                                                                      "\"L\"}.")
    inventory_quantity: int = strawberry.field(default=0, description="Units on hand.")
    weight_grams: int | None = strawberry.field(default=None, description="Shipping weight in grams.")
    prices: list[MoneyInput] = strawberry.field(default_factory=list,
                                                description="List prices, at most one per currency.")


@strawberry.input(description="Changes to a variant; omitted fields stay as they are.")
class UpdateVariantInput:
    sku: str | None = strawberry.field(default=None, description="New SKU, unique within the tenant.")
    title: str | None = strawberry.field(default=None, description="New display title.")
    inventory_quantity: int | None = strawberry.field(default=None, description="New number of units on hand.")
    weight_grams: int | None = strawberry.field(default=None, description="New shipping weight in grams.")


@strawberry.input(description="Changes to a category; omitted fields stay as they are.")
class UpdateCategoryInput:
    name: str | None = strawberry.field(default=None, description="New display name.")
    handle: str | None = strawberry.field(default=None, description="New URL-safe name, unique within the store.")
    rank: int | None = strawberry.field(default=None, description="New position among its siblings (lower first).")
    parent_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Move under this category; null makes it a root")


@strawberry.input(description="A new category of a store, optionally under a parent.")
class CreateCategoryInput:
    store_id: strawberry.ID = strawberry.field(description="Global id of the store the category belongs to.")
    handle: str = strawberry.field(description="URL-safe name, unique within the store.")
    name: str = strawberry.field(description="Display name.")
    parent_id: strawberry.ID | None = strawberry.field(default=None, description="Global id of the parent category; "
                                                                                 "null for a root category.")


def _ids(global_ids: list[strawberry.ID] | None, type_name: str) -> list[uuid.UUID] | None:
    if global_ids is None:
        return None
    return [from_global_id(global_id, type_name)[1] for global_id in global_ids]


def _prices(prices: list[MoneyInput]) -> list[service.PriceInput]:
    return [service.PriceInput(price.currency_code, price.amount) for price in prices]


def _changes(source: CreateProductInput | UpdateProductInput) -> service.ProductChanges:
    if source.metadata is not None and not isinstance(source.metadata, dict):
        raise BadUserInput("metadata must be an object", field="metadata")
    return service.ProductChanges(
        title=source.title, handle=source.handle, description=source.description,
        status=source.status.value if source.status else None, images=source.images, metadata=source.metadata,
        category_ids=_ids(source.category_ids, "Category"), sales_channel_ids=_ids(source.sales_channel_ids,
                                                                                     "SalesChannel"))


async def _product_row(info: Info, product: Product) -> Any:
    return await info.context.loaders.by_key(PRODUCT_TABLE).load(product.pk)


CreateProduct = Annotated[CreateProductInput, strawberry.argument(description="The product to create.")]
ProductIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the product.")]
ProductChanges = Annotated[UpdateProductInput, strawberry.argument(description="The changes.")]
CreateVariant = Annotated[CreateVariantInput, strawberry.argument(description="The variant to create.")]
VariantIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the variant.")]
VariantChanges = Annotated[UpdateVariantInput, strawberry.argument(description="The changes.")]
Prices = Annotated[list[MoneyInput], strawberry.argument(description="List prices, one per currency; currencies not "
                                                                     "named keep their price.")]
TierCurrency = Annotated[str, strawberry.argument(description="ISO 4217 code of the currency the tiers are for.")]
Tiers = Annotated[list[PriceTierInput], strawberry.argument(description="The new tiers (replace the old ones of that "
                                                                        "currency); empty removes them.")]
OptionalVariantId = Annotated[strawberry.ID | None, strawberry.argument(description="Global id of the variant (set "
                                                                                    "this or productId).")]
OptionalProductId = Annotated[strawberry.ID | None, strawberry.argument(description="Global id of the product (set "
                                                                                    "this or variantId).")]
CreateCategory = Annotated[CreateCategoryInput, strawberry.argument(description="The category to create.")]
CategoryIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the category.")]
CategoryChanges = Annotated[UpdateCategoryInput, strawberry.argument(description="The changes.")]


@strawberry.type
class CatalogMutation:
    @strawberry.mutation(description="Create a product in a store. A vendor user creates for its own vendor.")
    async def create_product(self, info: Info, input: CreateProduct) -> Product:
        tenant_id = tenant_of(info)
        store: Store = await node_by_global_id(info, input.store_id, "Store")
        vendor_id = from_global_id(input.vendor_id, "Vendor")[1] if input.vendor_id else None
        status = input.status.value
        await info.context.authz.require(ResourceRef.of("product", "new", tenant_id=tenant_id, store_id=store.pk,
                                                        vendor_id=vendor_id, status=status), "create")
        changes = _changes(input)
        if changes.sales_channel_ids is None:
            channels = await info.context.loaders.many_by_key(CHANNEL_TABLE, "store_id").load(store.pk)
            changes.sales_channel_ids = [row.id for row in channels if row.is_default]

        async def work(connection: AsyncConnection) -> Any:
            vendor_store = await vendors.vendor_store_id(connection, vendor_id) if vendor_id is not None else None
            return await service.create_product(connection, tenant_id=tenant_id, store_id=store.pk,
                                                vendor_id=vendor_id, title=input.title, handle=input.handle,
                                                changes=changes, vendor_store_id=vendor_store)

        return Product.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Change a product; list fields replace the old values.")
    async def update_product(self, info: Info, id: ProductIdArg, input: ProductChanges) -> Product:
        tenant_of(info)
        product: Product = await node_by_global_id(info, id, "Product", "update")
        if input.status is not None and input.status != product.status:
            # The new state must be allowed too (a vendor cannot move a product out of its own reach).
            moved = Product(**{**product.__dict__, "status": input.status})
            await info.context.authz.require(moved.resource(), "update")
        row = await _product_row(info, product)
        changes = _changes(input)
        return Product.from_row(await info.context.db.mutate(
            lambda connection: service.update_product(connection, product=row, changes=changes)))

    @strawberry.mutation(description="Add a variant (with its list prices) to a product.")
    async def create_variant(self, info: Info, product_id: ProductIdArg, input: CreateVariant) -> Variant:
        tenant_of(info)
        product: Product = await node_by_global_id(info, product_id, "Product", "update")
        options: Any = input.options if input.options is not None else {}
        if not isinstance(options, dict):
            raise BadUserInput("options must be an object of option name → value", field="options")
        row = await _product_row(info, product)

        async def work(connection: AsyncConnection) -> Any:
            return await service.create_variant(
                connection, product=row, sku=input.sku, title=input.title, options=options,
                inventory_quantity=input.inventory_quantity, weight_grams=input.weight_grams,
                prices=_prices(input.prices))

        return Variant.of(await info.context.db.mutate(work), product)

    @strawberry.mutation(description="Change a variant's SKU, title, stock or weight.")
    async def update_variant(self, info: Info, id: VariantIdArg, input: VariantChanges) -> Variant:
        tenant_of(info)
        variant: Variant = await node_by_global_id(info, id, "Variant", "update")
        values = {key: value for key, value in (("sku", input.sku), ("title", input.title),
                                                ("inventory_quantity", input.inventory_quantity),
                                                ("weight_grams", input.weight_grams)) if value is not None}
        row = await info.context.db.mutate(
            lambda connection: service.update_variant(connection, variant_id=variant.pk, values=values))
        return Variant(**{**variant.__dict__, "sku": row.sku, "title": row.title, "weight_grams": row.weight_grams,
                          "quantity_on_hand": row.inventory_quantity})

    @strawberry.mutation(description="Set list prices of a variant (one per currency; others are kept).")
    async def set_variant_prices(self, info: Info, variant_id: VariantIdArg, prices: Prices) -> Variant:
        tenant_of(info)
        variant: Variant = await node_by_global_id(info, variant_id, "Variant", "update")
        row = await info.context.loaders.by_key(VARIANT_TABLE).load(variant.pk)
        await info.context.db.mutate(
            lambda connection: service.set_variant_prices(connection, variant=row, prices=_prices(prices)))
        info.context.loaders.many_by_key(PRICE_TABLE, "variant_id").clear(variant.pk)
        return variant

    @strawberry.mutation(description="Replace the volume pricing tiers of a variant, or of a product (applies to "
                                     "its variants without tiers of their own), in one currency.")
    async def set_price_tiers(self, info: Info, currency_code: TierCurrency, tiers: Tiers,
                              variant_id: OptionalVariantId = None,
                              product_id: OptionalProductId = None) -> Product:
        tenant_id = tenant_of(info)
        if (variant_id is None) == (product_id is None):
            raise BadUserInput("name either variantId or productId", field="variantId")
        product: Product
        if variant_id is not None:
            variant: Variant = await node_by_global_id(info, variant_id, "Variant", "update")
            product = await node_by_global_id(info, to_global_id("Product", variant.product_pk), "Product")
            owner = {"variant_id": variant.pk}
        else:
            assert product_id is not None
            product = await node_by_global_id(info, product_id, "Product", "update")
            owner = {"product_id": product.pk}
        parsed = [rules.Tier(tier.min_quantity, percent_off=tier.percent_off, unit_amount=tier.unit_amount)
                  for tier in tiers]
        await info.context.db.mutate(lambda connection: service.set_price_tiers(
            connection, tenant_id=tenant_id, currency_code=currency_code, tiers=parsed, **owner))
        return product

    @strawberry.mutation(description="Create a category in a store.")
    async def create_category(self, info: Info, input: CreateCategory) -> Category:
        tenant_id = tenant_of(info)
        store: Store = await node_by_global_id(info, input.store_id, "Store")
        await info.context.authz.require(ResourceRef.of("category", "new", tenant_id=tenant_id, store_id=store.pk),
                                         "create")
        parent_id = from_global_id(input.parent_id, "Category")[1] if input.parent_id else None
        row = await info.context.db.mutate(lambda connection: service.create_category(
            connection, tenant_id=tenant_id, store_id=store.pk, handle=input.handle, name=input.name,
            parent_id=parent_id))
        return Category.from_row(row)

    @strawberry.mutation(description="Change a category's name, handle, rank or parent.")
    async def update_category(self, info: Info, id: CategoryIdArg, input: CategoryChanges) -> Category:
        tenant_of(info)
        category: Category = await node_by_global_id(info, id, "Category", "update")
        move = input.parent_id is not strawberry.UNSET
        parent_id = from_global_id(input.parent_id, "Category")[1] if move and input.parent_id else None
        row = await info.context.loaders.by_key(CATEGORY_TABLE).load(category.pk)
        updated = await info.context.db.mutate(lambda connection: service.update_category(
            connection, category=row, name=input.name, handle=input.handle, rank=input.rank, parent_id=parent_id,
            move=move))
        return Category.from_row(updated)
