"""`cityos seed`: the plan's seed data, idempotent (a second run changes nothing).

Runs as the database owner. The demo store's publishable key is created once and kept in
`<data dir>/demo-publishable-key` so a development install can print it at every start; the database holds
only its hash, as for every key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.domain.catalog.models import (
    Category,
    PriceTier,
    Product,
    ProductCategory,
    ProductSalesChannel,
    Variant,
    VariantPrice,
)
from cityos.domain.commerce.models import PaymentProvider, Region, RegionState, ShippingOption
from cityos.domain.marketplace.models import Vendor
from cityos.domain.tenancy import rules
from cityos.domain.tenancy.models import Currency, PublishableApiKey, SalesChannel, Store, StoreDomain, Tenant
from cityos.domain.tenancy.service import create_publishable_key
from cityos.seed import data as seed_data


@dataclass(frozen=True)
class SeedResult:
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    publishable_key: str
    domain: str


async def _upsert_returning_id(connection: AsyncConnection, model: type, values: dict[str, object],
                               keys: list[str]) -> uuid.UUID:
    table = model.__table__  # type: ignore[attr-defined]
    await connection.execute(insert(table).values(id=uuid.uuid4(), **values).on_conflict_do_nothing())
    where = [table.c[key] == values[key] for key in keys]
    return uuid.UUID(str((await connection.execute(select(table.c.id).where(*where))).scalar_one()))


async def seed_reference_data(connection: AsyncConnection) -> None:
    for code, name, symbol, digits in seed_data.CURRENCIES:
        await connection.execute(insert(Currency).values(
            code=code, name=name, symbol=symbol, decimal_digits=digits).on_conflict_do_nothing())
    for provider in seed_data.PAYMENT_PROVIDERS:
        await connection.execute(insert(PaymentProvider).values(id=provider).on_conflict_do_nothing())


async def seed_region(connection: AsyncConnection, tenant_id: uuid.UUID) -> uuid.UUID:
    region_id = await _upsert_returning_id(
        connection, Region, {"tenant_id": tenant_id, **seed_data.US_REGION}, ["tenant_id", "name"])
    for code, name in seed_data.US_STATES:
        await connection.execute(insert(RegionState).values(
            tenant_id=tenant_id, id=uuid.uuid4(), region_id=region_id, code=code, name=name,
        ).on_conflict_do_nothing())
    for code, name, amount, min_subtotal in seed_data.SHIPPING_OPTIONS:
        await connection.execute(insert(ShippingOption).values(
            tenant_id=tenant_id, id=uuid.uuid4(), region_id=region_id, code=code, name=name, amount=amount,
            min_subtotal=min_subtotal).on_conflict_do_nothing())
    return region_id


async def seed_catalog(connection: AsyncConnection, tenant_id: uuid.UUID, store_id: uuid.UUID) -> None:
    """The demo marketplace: three vendors, a small category tree, products with variants, prices and tiers."""
    vendors = {}
    for handle, name, email in seed_data.DEMO_VENDORS:
        vendors[handle] = await _upsert_returning_id(connection, Vendor, {
            "tenant_id": tenant_id, "store_id": store_id, "handle": handle, "name": name, "contact_email": email},
            ["tenant_id", "store_id", "handle"])
    categories: dict[str, uuid.UUID] = {}
    for handle, name, parent in seed_data.DEMO_CATEGORIES:
        categories[handle] = await _upsert_returning_id(connection, Category, {
            "tenant_id": tenant_id, "store_id": store_id, "handle": handle, "name": name,
            "parent_id": categories[parent] if parent else None}, ["tenant_id", "store_id", "handle"])
    channel = (await connection.execute(select(SalesChannel.id).where(
        SalesChannel.store_id == store_id, SalesChannel.is_default))).scalar_one()
    for vendor, handle, title, description, category, variants, tiers in seed_data.DEMO_PRODUCTS:
        product_id = await _upsert_returning_id(connection, Product, {
            "tenant_id": tenant_id, "store_id": store_id, "vendor_id": vendors[vendor], "handle": handle,
            "title": title, "description": description, "status": "published",
            "images": [f"https://images.cityos.test/{handle}/1.jpg", f"https://images.cityos.test/{handle}/2.jpg"]},
            ["tenant_id", "store_id", "handle"])
        await connection.execute(insert(ProductCategory).values(
            tenant_id=tenant_id, product_id=product_id, category_id=categories[category]).on_conflict_do_nothing())
        await connection.execute(insert(ProductSalesChannel).values(
            tenant_id=tenant_id, product_id=product_id, sales_channel_id=channel).on_conflict_do_nothing())
        for sku, variant_title, options, stock, amount in variants:
            variant_id = await _upsert_returning_id(connection, Variant, {
                "tenant_id": tenant_id, "product_id": product_id, "sku": sku, "title": variant_title,
                "options": options, "inventory_quantity": stock}, ["tenant_id", "sku"])
            await connection.execute(insert(VariantPrice).values(
                tenant_id=tenant_id, id=uuid.uuid4(), variant_id=variant_id, currency_code="usd", amount=amount,
            ).on_conflict_do_nothing())
        has_tiers = (await connection.execute(select(PriceTier.id).where(PriceTier.product_id == product_id)
                                              .limit(1))).first()
        if tiers and not has_tiers:
            for min_quantity, percent_off, unit_amount in tiers:
                await connection.execute(insert(PriceTier).values(
                    tenant_id=tenant_id, id=uuid.uuid4(), product_id=product_id, currency_code="usd",
                    min_quantity=min_quantity, percent_off=Decimal(percent_off) if percent_off else None,
                    unit_amount=unit_amount))


async def _demo_key(connection: AsyncConnection, tenant_id: uuid.UUID, store_id: uuid.UUID,
                    key_file: Path) -> str:
    if key_file.exists():
        key = key_file.read_text().strip()
        found = (await connection.execute(select(PublishableApiKey.id).where(
            PublishableApiKey.token_hash == rules.hash_publishable_key(key),
            PublishableApiKey.revoked_at.is_(None)))).first()
        if found:
            return key
    _row, key = await create_publishable_key(connection, tenant_id=tenant_id, store_id=store_id,
                                             title=seed_data.DEMO_KEY_TITLE)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


async def seed(engine: AsyncEngine, data_dir: Path) -> SeedResult:
    async with engine.begin() as connection:
        await seed_reference_data(connection)
        tenant_id = await _upsert_returning_id(connection, Tenant, dict(seed_data.DEMO_TENANT), ["slug"])
        store_id = await _upsert_returning_id(
            connection, Store, {"tenant_id": tenant_id, **seed_data.DEMO_STORE}, ["tenant_id", "handle"])
        await connection.execute(insert(SalesChannel).values(
            tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, name="Default Sales Channel",
            is_default=True).on_conflict_do_nothing())
        await connection.execute(insert(StoreDomain).values(
            tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, domain=seed_data.DEMO_DOMAIN,
            is_primary=True).on_conflict_do_nothing())
        await seed_region(connection, tenant_id)
        await seed_catalog(connection, tenant_id, store_id)
        key = await _demo_key(connection, tenant_id, store_id, data_dir / "demo-publishable-key")
    return SeedResult(tenant_id, store_id, key, seed_data.DEMO_DOMAIN)
