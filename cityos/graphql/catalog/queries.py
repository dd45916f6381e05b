"""Storefront and admin catalog queries: SQL-filtered (Cerbos query plan + RLS), keyset-paged, loader-fed."""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Annotated, Any

import strawberry
from sqlalchemy import Select, and_, exists, func, literal, select

from cityos.auth.principal import STAFF_ROLES
from cityos.domain.base import table_of
from cityos.domain.catalog.models import ProductSalesChannel
from cityos.domain.tenancy.models import SalesChannel
from cityos.errors import NO_STORE_CONTEXT, BadUserInput, NotFound, Unauthenticated
from cityos.graphql.catalog.types import (
    CATEGORY_TABLE,
    PRICE_TABLE,
    PRODUCT_CATEGORY_TABLE,
    PRODUCT_PLAN_ATTRIBUTES,
    PRODUCT_TABLE,
    VARIANT_TABLE,
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
    SortKey,
    described_value,
    from_global_id,
    page_query,
)
from cityos.graphql.tenancy.types import STORE_TABLE

CHANNEL_TABLE = table_of(SalesChannel)
PRODUCT_SALES_CHANNEL = table_of(ProductSalesChannel)
CATEGORY_PLAN_ATTRIBUTES = {"tenant_id": CATEGORY_TABLE.c.tenant_id, "store_id": CATEGORY_TABLE.c.store_id}
NO_PRICE = 2**31 - 1


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


def min_price(currency_code: str) -> Any:
    """The lowest list price of the product's variants in a currency (a correlated subquery)."""
    return (select(func.min(PRICE_TABLE.c.amount))
            .select_from(VARIANT_TABLE.join(PRICE_TABLE, and_(PRICE_TABLE.c.tenant_id == VARIANT_TABLE.c.tenant_id,
                                                               PRICE_TABLE.c.variant_id == VARIANT_TABLE.c.id)))
            .where(VARIANT_TABLE.c.product_id == PRODUCT_TABLE.c.id, PRICE_TABLE.c.currency_code == currency_code)
            .scalar_subquery())


def category_and_descendants(category_id: uuid.UUID) -> Any:
    tree = select(CATEGORY_TABLE.c.id).where(CATEGORY_TABLE.c.id == category_id).cte("tree", recursive=True)
    tree = tree.union_all(select(CATEGORY_TABLE.c.id).where(CATEGORY_TABLE.c.parent_id == tree.c.id))
    return select(tree.c.id)


def available_in_default_channel() -> Any:
    return exists().where(
        PRODUCT_SALES_CHANNEL.c.product_id == PRODUCT_TABLE.c.id,
        PRODUCT_SALES_CHANNEL.c.tenant_id == PRODUCT_TABLE.c.tenant_id,
        CHANNEL_TABLE.c.id == PRODUCT_SALES_CHANNEL.c.sales_channel_id,
        CHANNEL_TABLE.c.tenant_id == PRODUCT_SALES_CHANNEL.c.tenant_id,
        CHANNEL_TABLE.c.is_default, ~CHANNEL_TABLE.c.is_disabled)


def apply_filter(statement: Select[Any], product_filter: ProductFilter, currency_code: str) -> Select[Any]:
    if product_filter.category_id:
        _, category = from_global_id(product_filter.category_id, "Category")
        statement = statement.where(exists().where(
            PRODUCT_CATEGORY_TABLE.c.product_id == PRODUCT_TABLE.c.id,
            PRODUCT_CATEGORY_TABLE.c.category_id.in_(category_and_descendants(category))))
    if product_filter.vendor_id:
        _, vendor = from_global_id(product_filter.vendor_id, "Vendor")
        statement = statement.where(PRODUCT_TABLE.c.vendor_id == vendor)
    if product_filter.price_min is not None or product_filter.price_max is not None:
        if (product_filter.price_min or 0) < 0 or (product_filter.price_max or 0) < 0:
            raise BadUserInput("price bounds must not be negative", field="priceMin")
        price = min_price(currency_code)
        if product_filter.price_min is not None:
            statement = statement.where(price >= product_filter.price_min)
        if product_filter.price_max is not None:
            statement = statement.where(price <= product_filter.price_max)
    if product_filter.search:
        text = product_filter.search.strip()[:200]
        if text:
            statement = statement.where(PRODUCT_TABLE.c.search.op("@@")(func.websearch_to_tsquery("simple", text)))
    if product_filter.in_stock is not None:
        stocked = exists().where(VARIANT_TABLE.c.product_id == PRODUCT_TABLE.c.id,
                                 VARIANT_TABLE.c.inventory_quantity > 0)
        statement = statement.where(stocked if product_filter.in_stock else ~stocked)
    if product_filter.status is not None:
        statement = statement.where(PRODUCT_TABLE.c.status == product_filter.status.value)
    return statement


def sort_keys(sort: ProductSort, currency_code: str) -> list[SortKey]:
    if sort is ProductSort.TITLE:
        return [SortKey(PRODUCT_TABLE.c.title), SortKey(PRODUCT_TABLE.c.id)]
    if sort in (ProductSort.PRICE_ASC, ProductSort.PRICE_DESC):
        descending = sort is ProductSort.PRICE_DESC
        return [SortKey(func.coalesce(min_price(currency_code), literal(NO_PRICE)), descending),
                SortKey(PRODUCT_TABLE.c.id, descending)]
    return [SortKey(PRODUCT_TABLE.c.created_at, True), SortKey(PRODUCT_TABLE.c.id, True)]


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
        statement = select(PRODUCT_TABLE).where(allowed, *in_tenant(info.context.db, PRODUCT_TABLE))
        if scope is not None:
            statement = statement.where(PRODUCT_TABLE.c.store_id == scope)
        if store_id is None and info.context.store is not None and not info.context.principal.roles & STAFF_ROLES:
            statement = statement.where(available_in_default_channel())  # what the storefront sells
        statement = apply_filter(statement, filter or ProductFilter(), currency)
        return await page_query(info.context.db.execute, statement, page, Product.from_row,
                                sort_keys(sort, currency))

    @strawberry.field(description="A product of the storefront's store (or of `storeId`) by handle.")
    async def product(self, info: Info, handle: Handle, store_id: ScopeStoreId = None) -> Product:
        scope, _ = await _store_scope(info, store_id)
        if scope is None:
            raise BadUserInput("name the store: a publishable key, a store domain or storeId", field="storeId")
        row = (await info.context.db.execute(select(PRODUCT_TABLE).where(
            PRODUCT_TABLE.c.store_id == scope, PRODUCT_TABLE.c.handle == handle,
            *in_tenant(info.context.db, PRODUCT_TABLE)))).first()
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
        statement = select(CATEGORY_TABLE).where(allowed, *in_tenant(info.context.db, CATEGORY_TABLE))
        if scope is not None:
            statement = statement.where(CATEGORY_TABLE.c.store_id == scope)
        if roots_only:
            statement = statement.where(CATEGORY_TABLE.c.parent_id.is_(None))
        order = [SortKey(CATEGORY_TABLE.c.rank), SortKey(CATEGORY_TABLE.c.name), SortKey(CATEGORY_TABLE.c.id)]
        return await page_query(info.context.db.execute, statement, page, Category.from_row, order)
