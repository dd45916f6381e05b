"""Catalog reads: the product listing (filters, the storefront's visibility rule, price and category-tree
subqueries, sort keys), the product lookup by handle and the category listing. Each function returns the
statement (and keyset order) of a read; the caller adds the authorization clause and pages it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    FromClause,
    Numeric,
    Select,
    Subquery,
    Uuid,
    and_,
    any_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    select,
    union_all,
)

from cityos.domain.base import table_of
from cityos.domain.catalog.models import (
    Category,
    PriceTier,
    Product,
    ProductCategory,
    ProductSalesChannel,
    Variant,
    VariantPrice,
)
from cityos.domain.kernel import Listing, SortKey
from cityos.domain.tenancy.models import SalesChannel
from cityos.errors import BadUserInput

PRODUCT = table_of(Product)
VARIANT = table_of(Variant)
PRICE = table_of(VariantPrice)
CATEGORY = table_of(Category)
PRODUCT_CATEGORY = table_of(ProductCategory)
PRODUCT_SALES_CHANNEL = table_of(ProductSalesChannel)
PRICE_TIER = table_of(PriceTier)
CHANNEL = table_of(SalesChannel)
NO_PRICE = 2**31 - 1


class ProductSort(StrEnum):
    NEWEST = "newest"
    TITLE = "title"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"


@dataclass(frozen=True)
class ProductFilter:
    """Filters of a product listing; all given filters must hold. Prices in minor units of the listing's
    currency; `category_id` includes the category's sub-categories."""

    category_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None
    price_min: int | None = None
    price_max: int | None = None
    search: str | None = None
    in_stock: bool | None = None
    status: str | None = None


Currency = str | ColumnElement[str]  # a code, or an SQL expression of one (the store's default currency)


def min_price(currency_code: Currency) -> Any:
    """The lowest list price of the product's variants in a currency (a correlated subquery)."""
    return (select(func.min(PRICE.c.amount))
            .select_from(VARIANT.join(PRICE, and_(PRICE.c.tenant_id == VARIANT.c.tenant_id,
                                                  PRICE.c.variant_id == VARIANT.c.id)))
            .where(VARIANT.c.product_id == PRODUCT.c.id, VARIANT.c.tenant_id == PRODUCT.c.tenant_id,
                   PRICE.c.currency_code == currency_code)
            .scalar_subquery())


def category_and_descendants(category_id: uuid.UUID) -> Any:
    """The ids of the category and its sub-categories, as one array computed once per statement (an InitPlan)."""
    tree = select(CATEGORY.c.id).where(CATEGORY.c.id == category_id).cte("tree", recursive=True)
    tree = tree.union_all(select(CATEGORY.c.id).where(CATEGORY.c.parent_id == tree.c.id))
    return cast(select(func.array_agg(tree.c.id)).scalar_subquery(), ARRAY(Uuid))


def per_product(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """`EXISTS (… WHERE conditions OFFSET 0)`: a check of each product, made as the listing reads it in its sort
    order, so that a page stops after its rows (#12). Without OFFSET Postgres turns the EXISTS into a semi-join,
    estimates its selectivity from statistics that cannot know a category tree or a sales channel's share of a
    store (a handful of rows for a category holding the whole store), and then reads, probes and sorts every
    product of the store for a 24-row page; as a filter it walks the (tenant_id, store_id, created_at, id) index
    and probes each row's keys (tenant-leading) until the page is full."""
    return exists(select(literal_column("1")).where(*conditions).offset(0))


def semi_join(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """`EXISTS (… WHERE conditions)`, which Postgres may turn into a (hash) semi-join: for a count, which reads every
    matching product anyway, the category's or the channel's product ids are read once by their tenant-leading
    indexes instead of probed product by product (#12). Same rows as `per_product`."""
    return exists(select(literal_column("1")).where(*conditions))


Check = Callable[..., ColumnElement[bool]]  # per_product (a page) or semi_join (a count)


def available_in_default_channel(check: Check = per_product, store_id: uuid.UUID | None = None) -> Any:
    """What a storefront sells: products in the store's default sales channel, while it is enabled. A product's
    channels are its store's (the catalog service checks them), so the channel is looked up by the product's store:
    the store's one default channel (`uq_sales_channel_default_per_store`), whose products a count reads by
    (tenant_id, sales_channel_id, product_id); `store_id`, the listing's store when it names one."""
    return check(
        PRODUCT_SALES_CHANNEL.c.product_id == PRODUCT.c.id,
        PRODUCT_SALES_CHANNEL.c.tenant_id == PRODUCT.c.tenant_id,
        CHANNEL.c.id == PRODUCT_SALES_CHANNEL.c.sales_channel_id,
        CHANNEL.c.tenant_id == PRODUCT_SALES_CHANNEL.c.tenant_id,
        CHANNEL.c.store_id == (PRODUCT.c.store_id if store_id is None else store_id),
        CHANNEL.c.is_default, ~CHANNEL.c.is_disabled)


def apply_filter(statement: Select[Any], product_filter: ProductFilter, currency_code: Currency,
                 check: Check = per_product, tree: Any = None) -> Select[Any]:
    """`tree`: the category filter's `category_and_descendants`, when the caller shares one between statements."""
    if product_filter.category_id is not None:
        categories = category_and_descendants(product_filter.category_id) if tree is None else tree
        statement = statement.where(check(
            PRODUCT_CATEGORY.c.tenant_id == PRODUCT.c.tenant_id, PRODUCT_CATEGORY.c.product_id == PRODUCT.c.id,
            PRODUCT_CATEGORY.c.category_id == any_(categories)))
    if product_filter.vendor_id is not None:
        statement = statement.where(PRODUCT.c.vendor_id == product_filter.vendor_id)
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
            statement = statement.where(PRODUCT.c.search.op("@@")(func.websearch_to_tsquery("simple", text)))
    if product_filter.in_stock is not None:
        stocked = check(VARIANT.c.product_id == PRODUCT.c.id, VARIANT.c.tenant_id == PRODUCT.c.tenant_id,
                        VARIANT.c.inventory_quantity > 0)
        statement = statement.where(stocked if product_filter.in_stock else ~stocked)
    if product_filter.status is not None:
        statement = statement.where(PRODUCT.c.status == product_filter.status)
    return statement


def sort_keys(sort: str, currency_code: Currency) -> list[SortKey]:
    if sort == ProductSort.TITLE:
        return [SortKey(PRODUCT.c.title), SortKey(PRODUCT.c.id)]
    if sort in (ProductSort.PRICE_ASC, ProductSort.PRICE_DESC):
        descending = sort == ProductSort.PRICE_DESC
        return [SortKey(func.coalesce(min_price(currency_code), literal(NO_PRICE)), descending),
                SortKey(PRODUCT.c.id, descending)]
    return [SortKey(PRODUCT.c.created_at, True), SortKey(PRODUCT.c.id, True)]


def products(*scope: ColumnElement[bool], store_id: uuid.UUID | None, storefront: bool,
             product_filter: ProductFilter, sort: str, currency_code: Currency) -> Listing:
    """A product listing: the rows `scope` allows (authorization, tenant), of one store when given; a
    storefront sees only what the store's default sales channel sells. Paged with per-product checks (it stops
    after the page), counted with semi-joins (it reads every row); one category tree for both (one CTE)."""
    tree = category_and_descendants(product_filter.category_id) if product_filter.category_id is not None else None

    def rows(check: Check) -> Select[Any]:
        statement = select(PRODUCT).where(*scope)
        if store_id is not None:
            statement = statement.where(PRODUCT.c.store_id == store_id)
        if storefront:
            statement = statement.where(available_in_default_channel(check, store_id))
        return apply_filter(statement, product_filter, currency_code, check, tree)

    return Listing(rows(per_product), sort_keys(sort, currency_code), counted=rows(semi_join))


def product_by_handle(*scope: ColumnElement[bool], store_id: uuid.UUID, handle: str) -> Select[Any]:
    return select(PRODUCT).where(PRODUCT.c.store_id == store_id, PRODUCT.c.handle == handle, *scope)


def categories(*scope: ColumnElement[bool], store_id: uuid.UUID | None, roots_only: bool) -> Listing:
    """Categories by rank and name."""
    statement = select(CATEGORY).where(*scope)
    if store_id is not None:
        statement = statement.where(CATEGORY.c.store_id == store_id)
    if roots_only:
        statement = statement.where(CATEGORY.c.parent_id.is_(None))
    return Listing(statement, [SortKey(CATEGORY.c.rank), SortKey(CATEGORY.c.name), SortKey(CATEGORY.c.id)])


def tier_price(list_amount: ColumnElement[Any], percent_off: ColumnElement[Any],
               unit_amount: ColumnElement[Any]) -> ColumnElement[Any]:
    """`rules.Tier.price` in SQL: the fixed unit amount, else round_half_up(list × (100 − percent) / 100) (the
    value is never negative, where Postgres's round(numeric), half away from zero, is half up)."""
    hundred: ColumnElement[Any] = literal_column("100")
    return case((unit_amount.is_not(None), cast(unit_amount, Numeric)),
                else_=func.round(list_amount * (hundred - percent_off) / hundred))


def unit_price(list_amount: ColumnElement[Any], quantity: Any, tiers: FromClause,
               *where: ColumnElement[bool]) -> ColumnElement[Any]:
    """`rules.unit_price(list_amount, quantity, tiers)` in SQL, the tiers being the rows of `tiers` (columns
    min_quantity, percent_off, unit_amount) where `where` holds: the lowest of the list price and every reached
    tier's price, never below zero. The same rule as the Python one, not a second one: a hypothesis property test
    (tests/integration/test_unit_price_sql.py) holds the two equal on random prices, tiers and quantities. The
    caller validates the quantity (`rules.validate_quantity`) and the list price is never negative (a CHECK)."""
    reached = (select(func.min(tier_price(list_amount, tiers.c.percent_off, tiers.c.unit_amount)))
               .where(tiers.c.min_quantity <= quantity, *where).correlate_except(tiers).scalar_subquery())
    return cast(func.greatest(literal_column("0"), func.least(list_amount, reached)), BigInteger)


TIER_COLUMNS = ("min_quantity", "percent_off", "unit_amount", "currency_code", "created_at", "id")


def variant_tiers(*, tenant_id: ColumnElement[Any], variant_id: ColumnElement[Any], product_id: ColumnElement[Any],
                  currency_code: Any) -> Subquery:
    """A variant's volume tiers in a currency, as a derived table of price_tier's rows (`TIER_COLUMNS`): the
    variant's own when it has any (in any currency), else its product's. Two branches (UNION ALL) so that each
    walks its own index (`ix_price_tier_variant`, `ix_price_tier_product`); correlated to what names the variant."""
    own, inherited, any_own = PRICE_TIER.alias(), PRICE_TIER.alias(), PRICE_TIER.alias()
    has_own = (select(any_own.c.id).where(any_own.c.tenant_id == tenant_id, any_own.c.variant_id == variant_id)
               .correlate_except(any_own).exists())
    def columns(tier: Any) -> list[Any]:
        return [tier.c[name] for name in TIER_COLUMNS]

    return union_all(
        select(*columns(own)).where(own.c.tenant_id == tenant_id, own.c.variant_id == variant_id,
                                    own.c.currency_code == currency_code).correlate_except(own),
        select(*columns(inherited)).where(inherited.c.tenant_id == tenant_id, inherited.c.product_id == product_id,
                                          inherited.c.currency_code == currency_code, ~has_own)
        .correlate_except(inherited),
    ).subquery()
