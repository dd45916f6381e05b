"""Benchmark dataset: tenants, stores, vendors, products and variants, loaded through our migrations and tables.

    .venv/bin/python -m bench.dataset --database-url postgresql://… [--tenants 5 --stores 20 --vendors 200
                                     --products 20000 --variants 60000]

The first tenant gets half the stores (10 of 20 by default) so one tenant's admin sees ten stores, as the
nested operation needs; the rest are spread over the other tenants. Vendors, products and variants are spread
evenly over the stores, every product is published, in one category and the store's default sales channel, with
two image URLs and USD prices. Rows go in with COPY into the tables our models define.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from cityos.db import migrate
from cityos.db.engines import create_owner_engine
from cityos.domain.models import Base
from cityos.domain.tenancy.rules import hash_publishable_key, redact_publishable_key
from cityos.seed import seed_reference_data

CATEGORIES_PER_STORE = 10


def stores_per_tenant(tenants: int, stores: int) -> list[int]:
    if tenants == 1:
        return [stores]
    first = stores // 2
    rest = [(stores - first) // (tenants - 1)] * (tenants - 1)
    for index in range((stores - first) % (tenants - 1)):
        rest[index] += 1
    return [first, *rest]


def columns(table: str) -> list[str]:
    return [column.name for column in Base.metadata.tables[table].columns if column.name != "search"]


async def copy(connection: asyncpg.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    names = [name for name in columns(table) if name in rows[0]]
    await connection.copy_records_to_table(table, records=[tuple(row[name] for name in names) for row in rows],
                                           columns=names)


async def generate(database_url: str, tenants: int, stores: int, vendors: int, products: int,
                   variants: int) -> dict[str, Any]:
    migrate.upgrade(database_url)
    engine = create_owner_engine(database_url)
    async with engine.begin() as connection:
        await seed_reference_data(connection)
    await engine.dispose()
    connection = await asyncpg.connect(database_url)
    try:
        if await connection.fetchval("select count(*) from tenant where slug like 'bench-%'"):
            return await summary(connection)
        now = datetime.now(UTC)
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in (
            "tenant", "store", "sales_channel", "publishable_api_key", "vendor", "category", "product",
            "product_category", "product_sales_channel", "variant", "variant_price")}
        store_list = []
        for tenant_index, count in enumerate(stores_per_tenant(tenants, stores)):
            tenant_id = uuid.uuid4()
            rows["tenant"].append({"id": tenant_id, "slug": f"bench-{tenant_index}", "name": f"Bench {tenant_index}",
                                   "status": "active", "created_at": now, "updated_at": now})
            for store_index in range(count):
                store_id, channel_id = uuid.uuid4(), uuid.uuid4()
                key = f"pk_bench_{tenant_index}_{store_index}_{'x' * 24}"
                rows["store"].append({"tenant_id": tenant_id, "id": store_id, "handle": f"store-{store_index}",
                                      "name": f"Store {tenant_index}.{store_index}", "default_currency_code": "usd",
                                      "created_at": now + timedelta(seconds=store_index), "updated_at": now})
                rows["sales_channel"].append({"tenant_id": tenant_id, "id": channel_id, "store_id": store_id,
                                              "name": "Default Sales Channel", "is_default": True,
                                              "is_disabled": False, "created_at": now, "updated_at": now})
                rows["publishable_api_key"].append({
                    "tenant_id": tenant_id, "id": uuid.uuid4(), "store_id": store_id, "title": "bench",
                    "token_hash": hash_publishable_key(key), "redacted": redact_publishable_key(key),
                    "created_at": now, "updated_at": now})
                categories = [uuid.uuid4() for _ in range(CATEGORIES_PER_STORE)]
                for index, category_id in enumerate(categories):
                    rows["category"].append({"tenant_id": tenant_id, "id": category_id, "store_id": store_id,
                                             "handle": f"category-{index}", "name": f"Category {index}", "rank": index,
                                             "created_at": now, "updated_at": now})
                store_list.append((tenant_id, store_id, channel_id, categories))
        vendors_per_store = max(1, vendors // len(store_list))
        products_per_vendor = max(1, products // (vendors_per_store * len(store_list)))
        variants_per_product = max(1, variants // (products_per_vendor * vendors_per_store * len(store_list)))
        sequence = 0
        for tenant_id, store_id, channel_id, categories in store_list:
            for vendor_index in range(vendors_per_store):
                vendor_id = uuid.uuid4()
                rows["vendor"].append({"tenant_id": tenant_id, "id": vendor_id, "store_id": store_id,
                                       "handle": f"vendor-{vendor_index}", "name": f"Vendor {vendor_index}",
                                       "status": "active", "created_at": now + timedelta(seconds=vendor_index),
                                       "updated_at": now})
                for _ in range(products_per_vendor):
                    sequence += 1
                    product_id = uuid.uuid4()
                    rows["product"].append({
                        "tenant_id": tenant_id, "id": product_id, "store_id": store_id, "vendor_id": vendor_id,
                        "handle": f"product-{sequence}", "title": f"Product {sequence}",
                        "description": f"Bench product {sequence} of vendor {vendor_index}", "status": "published",
                        "images": [f"https://img.cityos.test/{sequence}/1.jpg", f"https://img.cityos.test/{sequence}/2.jpg"],
                        "metadata": "{}", "created_at": now + timedelta(milliseconds=sequence), "updated_at": now})
                    # every product is in category-0 ("all", the listing's filter) and in one other category
                    for category_id in {categories[0], categories[1 + sequence % (len(categories) - 1)]}:
                        rows["product_category"].append({"tenant_id": tenant_id, "product_id": product_id,
                                                         "category_id": category_id})
                    rows["product_sales_channel"].append({"tenant_id": tenant_id, "product_id": product_id,
                                                          "sales_channel_id": channel_id})
                    for variant_index in range(variants_per_product):
                        variant_id = uuid.uuid4()
                        rows["variant"].append({
                            "tenant_id": tenant_id, "id": variant_id, "product_id": product_id,
                            "sku": f"SKU-{sequence}-{variant_index}", "title": f"Variant {variant_index}",
                            "options": orjson.dumps({"size": str(variant_index)}).decode(),
                            "inventory_quantity": 10 + variant_index,
                            "created_at": now + timedelta(milliseconds=variant_index), "updated_at": now})
                        rows["variant_price"].append({
                            "tenant_id": tenant_id, "id": uuid.uuid4(), "variant_id": variant_id,
                            "currency_code": "usd", "amount": 500 + (sequence * 37 + variant_index * 101) % 20000,
                            "created_at": now, "updated_at": now})
        async with connection.transaction():
            for table, table_rows in rows.items():
                if table_rows:
                    await copy(connection, table, table_rows)
        await connection.execute("analyze")
        return await summary(connection)
    finally:
        await connection.close()


async def summary(connection: asyncpg.Connection) -> dict[str, Any]:
    counts = {}
    for table in ("tenant", "store", "vendor", "product", "variant"):
        counts[table] = await connection.fetchval(f"select count(*) from {table}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    for name, default in (("tenants", 5), ("stores", 20), ("vendors", 200), ("products", 20_000),
                          ("variants", 60_000)):
        parser.add_argument(f"--{name}", type=int, default=default)
    arguments = parser.parse_args()
    print(asyncio.run(generate(arguments.database_url, arguments.tenants, arguments.stores, arguments.vendors,
                               arguments.products, arguments.variants)))


if __name__ == "__main__":
    main()
