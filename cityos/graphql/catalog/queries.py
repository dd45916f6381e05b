"""Storefront and admin catalog queries: SQL-filtered (Cerbos query plan + RLS), keyset-paged, loader-fed."""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Annotated

import strawberry

from cityos.auth.principal import STAFF_ROLES
from cityos.domain.catalog import queries as catalog
from cityos.errors import NO_STORE_CONTEXT, BadUserInput, NotFound, Unauthenticated
from cityos.graphql.catalog.types import (
    CATEGORY,
    CATEGORY_TABLE,
    PRODUCT_PLAN_ATTRIBUTES,
    PRODUCT_TABLE,
    Category,
    Product,
    ProductStatus,
)
from cityos.graphql.core.context import Info
from cityos.graphql.core.loaders import in_tenant
from cityos.graphql.core.relay import (
    After,
    Before,
    Connection,
    First,
    Last,
    PageRequest,
    described_value,
    from_global_id,
    page_query,
    wants_total,
)
from cityos.graphql.tenancy.types import STORE_TABLE

CATEGORY_PLAN_ATTRIBUTES = CATEGORY.plan_attributes


@strawberry.enum(description="The order of a product listing.")
class ProductSort(Enum):
    NEWEST = described_value("newest", description="Newest first (creation time, descending).")
    TITLE = described_value("title", description="By title, A to Z.")
    PRICE_ASC = described_value("price_asc", description="Cheapest first, by the lowest list price of the "
                                                         "product's variants in the listing's currency.")
    PRICE_DESC = described_value("price_desc", description="Most expensive first, by the lowest list price of "
                                                           "the product's variants in the listing's currency.")


@strawberry.input(description="Filters of a product listing; all given filters must hold.")
class ProductFilter:
    category_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET, description="Only products in this "
                                                                                               "category or any of "
                                                                                               "its sub-categories.")
    vendor_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET, description="Only products of this "
                                                                                             "vendor.")
    price_min: int | None = strawberry.field(default=None, description="Minor units, in the listing's currency")
    price_max: int | None = strawberry.field(default=None, description="Only products with a variant at most this "
                                                                       "price (minor units, listing's currency).")
    search: str | None = strawberry.field(default=None, description="Full-text search over title and description")
    in_stock: bool | None = strawberry.field(default=None, description="Only products with (true) or without (false) "
                                                                       "a variant in stock.")
    status: ProductStatus | None = strawberry.field(
        default=None, description="Only products in this status; storefront callers see published products only.")


def listing_filter(product_filter: ProductFilter) -> catalog.ProductFilter:
    """The domain's filter of a listing: global ids become the ids they name."""
    return catalog.ProductFilter(
        category_id=from_global_id(product_filter.category_id, "Category")[1] if product_filter.category_id else None,
        vendor_id=from_global_id(product_filter.vendor_id, "Vendor")[1] if product_filter.vendor_id else None,
        price_min=product_filter.price_min, price_max=product_filter.price_max, search=product_filter.search,
        in_stock=product_filter.in_stock,
        status=product_filter.status.value if product_filter.status is not None else None)


async def _store_scope(info: Info, store_id: strawberry.ID | None) -> tuple[uuid.UUID | None, str]:
    """The store a listing is about (argument, else the storefront's) and its currency."""
    if store_id is not None:
        _, local_id = from_global_id(store_id, "Store")
    elif info.context.store is not None:
        local_id = info.context.store.store_id
    elif not info.context.principal.authenticated:
        raise Unauthenticated(NO_STORE_CONTEXT)
    else:
        return None, "usd"
    row = await info.context.loaders.by_key(STORE_TABLE).load(local_id)
    if row is None:
        raise NotFound("no Store with that id")
    return row.id, row.default_currency_code


Filter = Annotated[ProductFilter | None, strawberry.argument(description="Filters; all given ones must hold.")]
Sort = Annotated[ProductSort, strawberry.argument(description="The order of the listing.")]
ScopeStoreId = Annotated[strawberry.ID | None, strawberry.argument(description="Global id of a store; defaults to the "
                                                                               "storefront's store (publishable key "
                                                                               "or domain).")]
ListingCurrency = Annotated[str | None, strawberry.argument(description="Currency for prices in filters and sorting "
                                                                        "(ISO 4217); defaults to the store's.")]
Handle = Annotated[str, strawberry.argument(description="The product's handle.")]
RootsOnly = Annotated[bool, strawberry.argument(description="Only categories without a parent.")]


@strawberry.type
class CatalogQuery:
    @strawberry.field(description="Products of the storefront's store (or of `storeId`) the caller may read. "
                                  "Storefront callers see published products of the store's default sales channel.")
    async def products(self, info: Info, filter: Filter = None, sort: Sort = ProductSort.NEWEST,
                       store_id: ScopeStoreId = None, currency_code: ListingCurrency = None,
                       first: First = None, after: After = None, last: Last = None,
                       before: Before = None) -> Connection[Product]:
        page = PageRequest(first, after, last, before)
        scope, store_currency = await _store_scope(info, store_id)
        currency = (currency_code or store_currency).lower()
        allowed = await info.context.authz.sql_filter("product", "read", PRODUCT_TABLE, PRODUCT_PLAN_ATTRIBUTES)
        storefront = store_id is None and info.context.store is not None and \
            not info.context.principal.roles & STAFF_ROLES
        listing = catalog.products(allowed, *in_tenant(info.context.db, PRODUCT_TABLE), store_id=scope,
                                   storefront=storefront, product_filter=listing_filter(filter or ProductFilter()),
                                   sort=sort.value, currency_code=currency)
        return await page_query(info.context.db.execute, listing.statement, page, Product.from_row, listing.order,
                                count=wants_total(info), counted=listing.counted)

    @strawberry.field(description="A product of the storefront's store (or of `storeId`) by handle.")
    async def product(self, info: Info, handle: Handle, store_id: ScopeStoreId = None) -> Product:
        scope, _ = await _store_scope(info, store_id)
        if scope is None:
            raise BadUserInput("name the store: a publishable key, a store domain or storeId", field="storeId")
        row = (await info.context.db.execute(catalog.product_by_handle(
            *in_tenant(info.context.db, PRODUCT_TABLE), store_id=scope, handle=handle))).first()
        if row is None:
            raise NotFound("no product with that handle")
        product = Product.from_row(row)
        await info.context.authz.require(product.resource(), "read")
        return product

    @strawberry.field(description="Categories of the storefront's store (or of `storeId`), by rank and name.")
    async def categories(self, info: Info, store_id: ScopeStoreId = None, roots_only: RootsOnly = False,
                         first: First = None, after: After = None, last: Last = None,
                         before: Before = None) -> Connection[Category]:
        page = PageRequest(first, after, last, before)
        scope, _ = await _store_scope(info, store_id)
        allowed = await info.context.authz.sql_filter("category", "read", CATEGORY_TABLE, CATEGORY_PLAN_ATTRIBUTES)
        listing = catalog.categories(allowed, *in_tenant(info.context.db, CATEGORY_TABLE), store_id=scope,
                                     roots_only=roots_only)
        return await page_query(info.context.db.execute, listing.statement, page, Category.from_row, listing.order,
                                count=wants_total(info))
