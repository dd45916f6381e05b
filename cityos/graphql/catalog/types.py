"""GraphQL types of the catalog and vendors. A variant, its prices and its tiers are parts of their product:
they are authorized as the product (kind `product`), which keeps one PDP decision per product."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy.engine import Row
from strawberry.scalars import JSON

from cityos.auth.authz import ResourceRef
from cityos.domain.base import table_of
from cityos.domain.catalog import rules
from cityos.domain.catalog.models import Category as CategoryModel
from cityos.domain.catalog.models import PriceTier as PriceTierModel
from cityos.domain.catalog.models import Product as ProductModel
from cityos.domain.catalog.models import ProductCategory as ProductCategoryModel
from cityos.domain.catalog.models import Variant as VariantModel
from cityos.domain.catalog.models import VariantPrice as VariantPriceModel
from cityos.domain.catalog.service import tiers_from_rows
from cityos.domain.content.models import ContentKind
from cityos.graphql.content.types import Content, load_content
from cityos.graphql.core.context import Info
from cityos.graphql.core.nodes import Declaration, Declared, columns, declare, declared, register_node
from cityos.graphql.core.permissions import guarded_field
from cityos.graphql.core.relay import Node, described_value, to_global_id
from cityos.graphql.core.values import Money, optional_money

if TYPE_CHECKING:
    from cityos.graphql.marketplace.types import Vendor

PRODUCT_TABLE = table_of(ProductModel)
VARIANT_TABLE = table_of(VariantModel)
PRICE_TABLE = table_of(VariantPriceModel)
TIER_TABLE = table_of(PriceTierModel)
CATEGORY_TABLE = table_of(CategoryModel)
PRODUCT_CATEGORY_TABLE = table_of(ProductCategoryModel)
CATEGORY = Declaration("Category", CATEGORY_TABLE, "category", columns(CATEGORY_TABLE, "tenant_id", "store_id"))


@strawberry.enum(description="Where a product is in its life cycle; only published products reach storefronts.")
class ProductStatus(Enum):
    DRAFT = described_value("draft", description="Being prepared; visible to the store's staff and its vendor "
                                                 "only.")
    PUBLISHED = described_value("published", description="For sale: visible on storefronts.")
    ARCHIVED = described_value("archived", description="No longer sold; kept for past orders.")


@strawberry.type(description="Volume pricing: from minQuantity units on, percentOff the list price or unitAmount.")
class PriceTier:
    min_quantity: int = strawberry.field(description="The tier applies from this many units on.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    percent_off: Decimal | None = strawberry.field(description="Discount off the list price, in percent (0–100), or "
                                                               "null.")
    unit_amount: Money | None = strawberry.field(description="Fixed unit price, or null.")


@strawberry.federation.type(keys=["id"], description="A node of a store's category tree.")
@declare(CATEGORY)
class Category(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    handle: str = strawberry.field(description="URL-safe name, unique within the store.")
    name: str = strawberry.field(description="Display name.")
    rank: int = strawberry.field(description="Position among its siblings (lower first).")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    store_pk: strawberry.Private[uuid.UUID]
    parent_pk: strawberry.Private[uuid.UUID | None]
    created_at: strawberry.Private[datetime]



    @strawberry.field(description="The parent category; null for a root.")
    async def parent(self, info: Info) -> Category | None:
        if self.parent_pk is None:
            return None
        row = await info.context.loaders.by_key(CATEGORY_TABLE).load(self.parent_pk)
        return Category.from_row(row) if row else None

    @strawberry.field(description="Direct sub-categories, by rank and name.")
    async def children(self, info: Info) -> list[Category]:
        rows = await info.context.loaders.many_by_key(CATEGORY_TABLE, "parent_id").load(self.pk)
        return sorted((Category.from_row(row) for row in rows), key=lambda c: (c.rank, c.name))

    @strawberry.field(description="Its content from Payload CMS (description, images, SEO); null until edited "
                                  "there.")
    async def content(self, info: Info) -> Content | None:
        return await load_content(info, ContentKind.CATEGORY, self.pk)


PriceCurrency = Annotated[str, strawberry.argument(description="ISO 4217 currency code of the price.")]
PriceQuantity = Annotated[int, strawberry.argument(description="Number of units the unit price is for (volume "
                                                               "pricing), at least 1.")]


@strawberry.federation.type(keys=["id"], description="A purchasable variant of a product (size, colour, …).")
class Variant(Node):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    sku: str = strawberry.field(description="Stock keeping unit, unique within the tenant.")
    title: str = strawberry.field(description="Display title (e.g. Large / Blue).")
    options: JSON = strawberry.field(description="Option values as a JSON object, e.g. {\"size\": \"L\"}.")
    weight_grams: int | None = strawberry.field(description="Shipping weight in grams.")
    pk: strawberry.Private[uuid.UUID]
    product_resource: strawberry.Private[ResourceRef]
    quantity_on_hand: strawberry.Private[int]
    created_at: strawberry.Private[datetime]

    @classmethod
    def of(cls, row: Row[Any], product: Product) -> Variant:
        return cls(id=to_global_id("Variant", row.id), sku=row.sku, title=row.title, options=row.options,
                   weight_grams=row.weight_grams, pk=row.id, product_resource=product.resource(),
                   quantity_on_hand=row.inventory_quantity, created_at=row.created_at)

    @property
    def product_pk(self) -> uuid.UUID:
        return uuid.UUID(self.product_resource.id)

    def resource(self) -> ResourceRef:
        return self.product_resource

    @strawberry.field(description="The product it belongs to.")
    async def product(self, info: Info) -> Product | None:
        row = await info.context.loaders.by_key(PRODUCT_TABLE).load(self.product_pk)
        return Product.from_row(row) if row else None

    @strawberry.field(description="Whether at least one unit can be ordered.")
    def in_stock(self) -> bool:
        return self.quantity_on_hand > 0

    @guarded_field("Variant", "inventory_quantity", "Units on hand.")
    def inventory_quantity(self) -> int | None:
        return self.quantity_on_hand

    @strawberry.field(description="List prices, one per currency.")
    async def prices(self, info: Info) -> list[Money]:
        rows = await info.context.loaders.many_by_key(PRICE_TABLE, "variant_id").load(self.pk)
        return [Money(amount=row.amount, currency_code=row.currency_code) for row in rows]

    async def _tier_rows(self, info: Info, currency_code: str) -> list[Row[Any]]:
        # Both loads are queued in the same tick, so every variant's tiers come in one batch per loader.
        own, inherited = await asyncio.gather(
            info.context.loaders.many_by_key(TIER_TABLE, "variant_id").load(self.pk),
            info.context.loaders.many_by_key(TIER_TABLE, "product_id").load(self.product_pk))
        rows = own or inherited
        return sorted((row for row in rows if row.currency_code == currency_code.lower()),
                      key=lambda row: row.min_quantity)

    @strawberry.field(description="Volume pricing tiers in a currency (the variant's own, else the product's).")
    async def tiers(self, info: Info, currency_code: PriceCurrency) -> list[PriceTier]:
        return [PriceTier(min_quantity=row.min_quantity, currency_code=row.currency_code,
                          percent_off=row.percent_off,
                          unit_amount=optional_money(row.unit_amount, row.currency_code))
                for row in await self._tier_rows(info, currency_code)]

    @strawberry.field(description="The unit price for a quantity, after volume pricing; null without a list price.")
    async def unit_price(self, info: Info, currency_code: PriceCurrency, quantity: PriceQuantity = 1) -> Money | None:
        rules.validate_quantity(quantity)
        prices, tier_rows = await asyncio.gather(
            info.context.loaders.many_by_key(PRICE_TABLE, "variant_id").load(self.pk),
            self._tier_rows(info, currency_code))
        price = next((row for row in prices if row.currency_code == currency_code.lower()), None)
        if price is None:
            return None
        tiers = tiers_from_rows(tier_rows)
        return Money(amount=rules.unit_price(price.amount, quantity, tiers), currency_code=price.currency_code)


PRODUCT = Declaration("Product", PRODUCT_TABLE, "product",
                      columns(PRODUCT_TABLE, "tenant_id", "store_id", "vendor_id", "status"),
                      fields={"status": lambda row: ProductStatus(row.status), "images": lambda row: list(row.images)})
PRODUCT_PLAN_ATTRIBUTES = PRODUCT.plan_attributes


@strawberry.federation.type(keys=["id"], description="A product of a store, sold by one vendor.")
@declare(PRODUCT)
class Product(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    handle: str = strawberry.field(description="URL-safe name, unique within the store.")
    title: str = strawberry.field(description="Display title.")
    description: str | None = strawberry.field(description="Long description (plain text).")
    status: ProductStatus = strawberry.field(description="Life-cycle status.")
    images: list[str] = strawberry.field(description="Image URLs; the first is the thumbnail.")
    metadata: JSON = strawberry.field(description="Free-form JSON object kept with the product.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]
    tenant_pk: strawberry.Private[uuid.UUID]
    store_pk: strawberry.Private[uuid.UUID]
    vendor_pk: strawberry.Private[uuid.UUID | None]



    @strawberry.field(description="Its content from Payload CMS (rich description, images, SEO); null until edited "
                                  "there. Payload owns content; the product's own fields (title, prices, stock, "
                                  "status) are ours.")
    async def content(self, info: Info) -> Content | None:
        return await load_content(info, ContentKind.PRODUCT, self.pk)

    @strawberry.field(description="The first image, for listings.")
    def thumbnail(self) -> str | None:
        return self.images[0] if self.images else None

    @strawberry.field(description="The vendor selling it, or null.")
    async def vendor(self, info: Info) -> Annotated[Vendor, strawberry.lazy("cityos.graphql.marketplace.types")] | None:
        if self.vendor_pk is None:
            return None
        vendor = declared("Vendor")
        row = await info.context.loaders.by_key(vendor.table).load(self.vendor_pk)
        found: Vendor | None = vendor.to_node(row) if row else None
        return found

    @strawberry.field(description="The categories it is listed in, by rank and name.")
    async def categories(self, info: Info) -> list[Category]:
        links = await info.context.loaders.many_by_key(PRODUCT_CATEGORY_TABLE, "product_id").load(self.pk)
        rows = await info.context.loaders.by_key(CATEGORY_TABLE).load_many([link.category_id for link in links])
        # (created_at, pk) break ties: the link rows come in no defined order
        return sorted((Category.from_row(row) for row in rows if row),
                      key=lambda c: (c.rank, c.name, c.created_at, c.pk))

    @strawberry.field(description="Its purchasable variants, oldest first.")
    async def variants(self, info: Info) -> list[Variant]:
        rows = await info.context.loaders.many_by_key(VARIANT_TABLE, "product_id").load(self.pk)
        return [Variant.of(row, self) for row in rows]


async def load_variant(info: Info, local_id: uuid.UUID) -> Variant | None:
    row = await info.context.loaders.by_key(VARIANT_TABLE).load(local_id)
    if row is None:
        return None
    product = await info.context.loaders.by_key(PRODUCT_TABLE).load(row.product_id)
    return Variant.of(row, Product.from_row(product)) if product else None


register_node("Variant", load_variant)
