"""Catalog use cases over one tenant-scoped connection (RLS names the tenant)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.catalog import rules
from cityos.domain.catalog.models import (
    PRODUCT_STATUSES,
    Category,
    PriceTier,
    Product,
    ProductCategory,
    ProductSalesChannel,
    Variant,
    VariantPrice,
)
from cityos.domain.kernel import unique_or_conflict
from cityos.domain.tenancy.models import Currency, SalesChannel
from cityos.domain.tenancy.rules import validate_handle, validate_name
from cityos.errors import BadUserInput, NotFound

PRODUCT = table_of(Product)
VARIANT = table_of(Variant)
MAX_IMAGES = 20
MAX_SKU_LENGTH = 100


@dataclass(frozen=True)
class PriceInput:
    currency_code: str
    amount: int


@dataclass
class ProductChanges:
    title: str | None = None
    handle: str | None = None
    description: str | None = None
    status: str | None = None
    images: list[str] | None = None
    metadata: dict[str, Any] | None = None
    category_ids: list[uuid.UUID] | None = None
    sales_channel_ids: list[uuid.UUID] | None = None


def validate_status(status: str) -> str:
    if status not in PRODUCT_STATUSES:
        raise BadUserInput(f"status must be one of {', '.join(PRODUCT_STATUSES)}", field="status")
    return status


def validate_images(images: Sequence[str]) -> list[str]:
    if len(images) > MAX_IMAGES:
        raise BadUserInput(f"at most {MAX_IMAGES} images", field="images")
    for url in images:
        if not url.startswith(("https://", "http://")) or len(url) > 2000:
            raise BadUserInput("images must be http(s) URLs", field="images")
    return list(images)


def validate_sku(sku: str) -> str:
    sku = sku.strip()
    if not sku or len(sku) > MAX_SKU_LENGTH:
        raise BadUserInput(f"sku must be 1-{MAX_SKU_LENGTH} characters", field="sku")
    return sku


async def _validate_prices(connection: AsyncConnection, prices: Sequence[PriceInput]) -> list[PriceInput]:
    codes = [price.currency_code.lower() for price in prices]
    if len(set(codes)) != len(codes):
        raise BadUserInput("one price per currency", field="prices")
    known = set((await connection.execute(select(Currency.code).where(Currency.code.in_(codes)))).scalars())
    for price in prices:
        if price.currency_code.lower() not in known:
            raise BadUserInput(f"unknown currency {price.currency_code!r}", field="prices")
        if price.amount < 0:
            raise BadUserInput("a price must not be negative", field="prices")
    return [PriceInput(price.currency_code.lower(), price.amount) for price in prices]


async def _ids_exist(connection: AsyncConnection, model: Any, ids: Sequence[uuid.UUID], store_id: uuid.UUID,
                     field_name: str) -> None:
    if not ids:
        return
    table = table_of(model)
    found = set((await connection.execute(select(table.c.id).where(
        table.c.id.in_(list(ids)), table.c.store_id == store_id))).scalars())
    if found != set(ids):
        raise BadUserInput(f"unknown {field_name} for this store", field=field_name)


async def _replace_links(connection: AsyncConnection, model: Any, column: str, tenant_id: uuid.UUID,
                         product_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> None:
    table = table_of(model)
    await connection.execute(delete(table).where(table.c.product_id == product_id))
    if ids:
        await connection.execute(insert(table), [{"tenant_id": tenant_id, "product_id": product_id, column: value}
                                                 for value in dict.fromkeys(ids)])


async def create_product(connection: AsyncConnection, *, tenant_id: uuid.UUID, store_id: uuid.UUID,
                         vendor_id: uuid.UUID | None, title: str, handle: str, changes: ProductChanges,
                         vendor_store_id: uuid.UUID | None) -> Row[Any]:
    """`vendor_store_id`: the store of the vendor `vendor_id` (None when there is no such vendor), which the
    caller looks up in the marketplace; the product's vendor must sell in the product's store."""
    values = {"tenant_id": tenant_id, "id": uuid.uuid4(), "store_id": store_id, "vendor_id": vendor_id,
              "title": validate_name(title, "title", 300), "handle": validate_handle(handle),
              "description": changes.description, "status": validate_status(changes.status or "draft"),
              "images": validate_images(changes.images or []), "metadata": changes.metadata or {}}
    if vendor_id is not None and vendor_store_id != store_id:
        raise BadUserInput("unknown vendor for this store", field="vendorId")
    await _ids_exist(connection, Category, changes.category_ids or [], store_id, "categoryIds")
    await _ids_exist(connection, SalesChannel, changes.sales_channel_ids or [], store_id, "salesChannelIds")

    async def work() -> Row[Any]:
        row = (await connection.execute(insert(PRODUCT).values(**values).returning(*PRODUCT.c))).one()
        await _replace_links(connection, ProductCategory, "category_id", tenant_id, row.id, changes.category_ids or [])
        await _replace_links(connection, ProductSalesChannel, "sales_channel_id", tenant_id, row.id,
                             changes.sales_channel_ids or [])
        return row

    return await unique_or_conflict(connection, work, f"a product with handle {handle!r} already exists", "handle")


async def update_product(connection: AsyncConnection, *, product: Row[Any], changes: ProductChanges) -> Row[Any]:
    values: dict[str, Any] = {"updated_at": func.now()}
    if changes.title is not None:
        values["title"] = validate_name(changes.title, "title", 300)
    if changes.handle is not None:
        values["handle"] = validate_handle(changes.handle)
    if changes.description is not None:
        values["description"] = changes.description
    if changes.status is not None:
        values["status"] = validate_status(changes.status)
    if changes.images is not None:
        values["images"] = validate_images(changes.images)
    if changes.metadata is not None:
        values["metadata"] = changes.metadata
    if changes.category_ids is not None:
        await _ids_exist(connection, Category, changes.category_ids, product.store_id, "categoryIds")
    if changes.sales_channel_ids is not None:
        await _ids_exist(connection, SalesChannel, changes.sales_channel_ids, product.store_id, "salesChannelIds")

    async def work() -> Row[Any]:
        row = (await connection.execute(update(PRODUCT).where(PRODUCT.c.id == product.id).values(**values)
                                        .returning(*PRODUCT.c))).one()
        if changes.category_ids is not None:
            await _replace_links(connection, ProductCategory, "category_id", product.tenant_id, product.id,
                                 changes.category_ids)
        if changes.sales_channel_ids is not None:
            await _replace_links(connection, ProductSalesChannel, "sales_channel_id", product.tenant_id, product.id,
                                 changes.sales_channel_ids)
        return row

    return await unique_or_conflict(connection, work, "a product with that handle already exists", "handle")


async def create_variant(connection: AsyncConnection, *, product: Row[Any], sku: str, title: str,
                         options: dict[str, str], inventory_quantity: int, weight_grams: int | None,
                         prices: Sequence[PriceInput]) -> Row[Any]:
    if inventory_quantity < 0:
        raise BadUserInput("inventoryQuantity must not be negative", field="inventoryQuantity")
    if weight_grams is not None and weight_grams < 0:
        raise BadUserInput("weightGrams must not be negative", field="weightGrams")
    checked = await _validate_prices(connection, prices)
    sku = validate_sku(sku)

    async def work() -> Row[Any]:
        row = (await connection.execute(insert(VARIANT).values(
            tenant_id=product.tenant_id, id=uuid.uuid4(), product_id=product.id, sku=sku,
            title=validate_name(title, "title", 300), options={str(k): str(v) for k, v in options.items()},
            inventory_quantity=inventory_quantity, weight_grams=weight_grams).returning(*VARIANT.c))).one()
        await _upsert_prices(connection, product.tenant_id, row.id, checked)
        return row

    return await unique_or_conflict(connection, work, f"the SKU {sku!r} is already in use", "sku")


async def update_variant(connection: AsyncConnection, *, variant_id: uuid.UUID, values: dict[str, Any]) -> Row[Any]:
    if "sku" in values:
        values["sku"] = validate_sku(values["sku"])
    if "title" in values:
        values["title"] = validate_name(values["title"], "title", 300)
    if values.get("inventory_quantity", 0) < 0:
        raise BadUserInput("inventoryQuantity must not be negative", field="inventoryQuantity")

    async def work() -> Row[Any] | None:
        return (await connection.execute(update(VARIANT).where(VARIANT.c.id == variant_id)
                                         .values(updated_at=func.now(), **values).returning(*VARIANT.c))).first()

    row = await unique_or_conflict(connection, work, "that SKU is already in use", "sku")
    if row is None:
        raise NotFound("no variant with that id")
    return row


async def _upsert_prices(connection: AsyncConnection, tenant_id: uuid.UUID, variant_id: uuid.UUID,
                         prices: Sequence[PriceInput]) -> None:
    table = table_of(VariantPrice)
    for price in prices:
        statement = pg_insert(table).values(tenant_id=tenant_id, id=uuid.uuid4(), variant_id=variant_id,
                                            currency_code=price.currency_code, amount=price.amount)
        await connection.execute(statement.on_conflict_do_update(
            index_elements=["tenant_id", "variant_id", "currency_code"],
            set_={"amount": statement.excluded.amount, "updated_at": func.now()}))


async def set_variant_prices(connection: AsyncConnection, *, variant: Row[Any], prices: Sequence[PriceInput]) -> None:
    await _upsert_prices(connection, variant.tenant_id, variant.id, await _validate_prices(connection, prices))


async def set_price_tiers(connection: AsyncConnection, *, tenant_id: uuid.UUID, currency_code: str,
                          tiers: Sequence[rules.Tier], variant_id: uuid.UUID | None = None,
                          product_id: uuid.UUID | None = None) -> None:
    """Replace the tiers of one variant (or product) in one currency."""
    ordered = rules.validate_tiers(tiers)
    code = (await _validate_prices(connection, [PriceInput(currency_code, 0)]))[0].currency_code
    table = table_of(PriceTier)
    owner = table.c.variant_id == variant_id if variant_id else table.c.product_id == product_id
    await connection.execute(delete(table).where(owner, table.c.currency_code == code))
    if ordered:
        await connection.execute(insert(table), [
            {"tenant_id": tenant_id, "id": uuid.uuid4(), "variant_id": variant_id, "product_id": product_id,
             "currency_code": code, "min_quantity": tier.min_quantity,
             "percent_off": tier.percent_off, "unit_amount": tier.unit_amount} for tier in ordered])


async def create_category(connection: AsyncConnection, *, tenant_id: uuid.UUID, store_id: uuid.UUID, handle: str,
                          name: str, parent_id: uuid.UUID | None) -> Row[Any]:
    table = table_of(Category)
    if parent_id is not None:
        await _ids_exist(connection, Category, [parent_id], store_id, "parentId")

    async def work() -> Row[Any]:
        return (await connection.execute(insert(table).values(
            tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, parent_id=parent_id,
            handle=validate_handle(handle), name=validate_name(name)).returning(*table.c))).one()

    return await unique_or_conflict(connection, work, f"a category with handle {handle!r} already exists", "handle")


def tiers_from_rows(rows: Sequence[Any]) -> list[rules.Tier]:
    return [rules.Tier(row.min_quantity, percent_off=row.percent_off, unit_amount=row.unit_amount) for row in rows]



async def update_category(connection: AsyncConnection, *, category: Row[Any], name: str | None, handle: str | None,
                          rank: int | None, parent_id: uuid.UUID | None, move: bool) -> Row[Any]:
    """Rename, re-rank or move a category. A category cannot move under itself or one of its descendants."""
    table = table_of(Category)
    values: dict[str, Any] = {"updated_at": func.now()}
    if name is not None:
        values["name"] = validate_name(name)
    if handle is not None:
        values["handle"] = validate_handle(handle)
    if rank is not None:
        values["rank"] = rank
    if move:
        if parent_id is not None:
            await _ids_exist(connection, Category, [parent_id], category.store_id, "parentId")
            tree = select(table.c.id).where(table.c.id == category.id).cte("subtree", recursive=True)
            tree = tree.union_all(select(table.c.id).where(table.c.parent_id == tree.c.id))
            below = set((await connection.execute(select(tree.c.id))).scalars())
            if parent_id in below:
                raise BadUserInput("a category cannot move under itself or its descendants", field="parentId")
        values["parent_id"] = parent_id

    async def work() -> Row[Any]:
        return (await connection.execute(update(table).where(table.c.id == category.id).values(**values)
                                         .returning(*table.c))).one()

    return await unique_or_conflict(connection, work, "a category with that handle already exists", "handle")
