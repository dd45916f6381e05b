"""A product listing's two shapes select the same rows (#12): `statement` (per-product checks, made to stop after a
page) and `counted` (semi-joins, made to count every row), for every combination of the filters that differ
between them, on a store whose products are in and out of the default channel, of a disabled channel, of a
sub-category, in and out of stock, published and draft; counted as the application role in the tenant."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.domain.catalog import queries as catalog
from cityos.seed import seed_catalog
from tests.conftest import TenantWorld, make_tenant

VARIETY = """
insert into category (tenant_id, id, store_id, handle, name, parent_id)
select c.tenant_id, gen_random_uuid(), c.store_id, c.handle || '-sub', c.name || ' sub', c.id
from category c where c.tenant_id = :t and c.parent_id is null;
insert into sales_channel (tenant_id, id, store_id, name, is_default, is_disabled)
values (:t, gen_random_uuid(), :s, 'Wholesale', false, false);
insert into product (tenant_id, id, store_id, handle, title, status)
select :t, gen_random_uuid(), :s, 'variety-' || n, 'Variety ' || n,
       case when n % 4 = 0 then 'draft' else 'published' end
from generate_series(1, 24) n;
insert into product_category (tenant_id, product_id, category_id)
select p.tenant_id, p.id, c.id from product p
join category c on c.tenant_id = p.tenant_id and c.store_id = p.store_id
 and c.handle = (select min(handle) from category where tenant_id = :t and parent_id is not null)
where p.tenant_id = :t and p.handle like 'variety-%' and split_part(p.handle, '-', 2)::int % 3 <> 0;
insert into product_sales_channel (tenant_id, product_id, sales_channel_id)
select p.tenant_id, p.id, c.id from product p join sales_channel c on c.tenant_id = p.tenant_id
 and c.store_id = p.store_id and (c.is_default = (split_part(p.handle, '-', 2)::int % 2 = 0))
where p.tenant_id = :t and p.handle like 'variety-%';
insert into variant (tenant_id, id, product_id, sku, title, inventory_quantity)
select p.tenant_id, gen_random_uuid(), p.id, 'VAR-' || p.handle, 'One', split_part(p.handle, '-', 2)::int % 5
from product p where p.tenant_id = :t and p.handle like 'variety-%' and split_part(p.handle, '-', 2)::int % 7 <> 0
"""


@pytest.fixture
async def varied(owner_engine: AsyncEngine) -> tuple[TenantWorld, list[uuid.UUID]]:
    world = await make_tenant(owner_engine)
    async with owner_engine.begin() as connection:
        await seed_catalog(connection, world.tenant_id, world.store_id)
        for statement in VARIETY.strip().split(";\n"):
            await connection.execute(text(statement), {"t": world.tenant_id, "s": world.store_id})
        roots = list((await connection.execute(text(
            "select id from category where tenant_id = :t and parent_id is null order by handle"),
            {"t": world.tenant_id})).scalars())
        subs = list((await connection.execute(text(
            "select id from category where tenant_id = :t and parent_id is not null order by handle limit 1"),
            {"t": world.tenant_id})).scalars())
    return world, [*roots, *subs]


async def counts(owner_engine: AsyncEngine, world: TenantWorld, listing: Any) -> tuple[int, int]:
    async with owner_engine.connect() as connection, connection.begin():
        await connection.execute(text("set local role cityos_app"))
        await connection.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(world.tenant_id)})
        paged = (await connection.execute(select(func.count()).select_from(listing.statement.subquery()))).scalar_one()
        counted = (await connection.execute(select(func.count()).select_from(listing.counted.subquery()))
                   ).scalar_one()
        await connection.rollback()
    return int(paged), int(counted)


async def test_paged_and_counted_shapes_select_the_same_rows(owner_engine: AsyncEngine,
                                                             varied: tuple[TenantWorld, list[uuid.UUID]]) -> None:
    world, categories = varied
    seen: set[int] = set()
    for category, in_stock, storefront, store in itertools.product(
            [None, *categories], [None, True, False], [False, True], [world.store_id, None]):
        if storefront and store is None:
            continue  # a storefront lists one store
        listing = catalog.products(store_id=store, storefront=storefront, sort="newest", currency_code="usd",
                                   product_filter=catalog.ProductFilter(category_id=category, in_stock=in_stock))
        paged, counted = await counts(owner_engine, world, listing)
        assert paged == counted, (category, in_stock, storefront, store)
        seen.add(paged)
    assert len(seen) > 5, seen  # the filters told the products apart


async def test_a_disabled_default_channel_sells_nothing(owner_engine: AsyncEngine,
                                                        varied: tuple[TenantWorld, list[uuid.UUID]]) -> None:
    world, _ = varied
    listing = catalog.products(store_id=world.store_id, storefront=True, sort="newest", currency_code="usd",
                               product_filter=catalog.ProductFilter())
    assert (await counts(owner_engine, world, listing))[0] > 0
    async with owner_engine.begin() as connection:
        await connection.execute(text(
            "update sales_channel set is_disabled = true where tenant_id = :t and is_default"), {"t": world.tenant_id})
    assert await counts(owner_engine, world, listing) == (0, 0)
