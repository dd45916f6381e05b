"""Migration 0018 goes down and up again: the promotion tables and the order line / ledger columns go away and come
back (with row-level security and the audit triggers)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from cityos.db import migrate
from cityos.db.engines import create_owner_engine
from tests import infrastructure

TABLES = ("promotion", "promotion_settings", "cart_promotion", "promotion_redemption", "order_line_promotion",
          "subscription_promotion")
STATE = """
select (select count(*) from pg_tables where schemaname = 'public' and tablename = any(:tables)
                                       and rowsecurity),
       (select count(*) from information_schema.triggers where trigger_name like 'audit\\_%promotion%'),
       (select count(*) from information_schema.columns where table_name = 'order_line'
                                                        and column_name like 'promotion\\_%'),
       (select count(*) from information_schema.columns where table_name = 'commission_transaction'
                                                        and column_name in ('gross_amount', 'discount_amount',
                                                                            'platform_discount', 'vendor_discount'))
"""


async def state(url: str) -> tuple[int, ...]:
    engine = create_owner_engine(url)
    try:
        async with engine.connect() as connection:
            return tuple((await connection.execute(text(STATE), {"tables": list(TABLES)})).one())
    finally:
        await engine.dispose()


async def test_the_promotions_migration_goes_down_and_up(postgres_admin_url: str) -> None:
    url = await asyncio.to_thread(infrastructure.create_database, postgres_admin_url)
    await asyncio.to_thread(migrate.upgrade, url)
    assert await state(url) == (6, 9, 2, 4)  # 3 audited tables × insert/update/delete rows in the triggers view
    await asyncio.to_thread(migrate.downgrade, url, "0018-1")  # to the revision before it, wherever it is chained
    assert await state(url) == (0, 0, 0, 0)
    await asyncio.to_thread(migrate.upgrade, url)
    assert await state(url) == (6, 9, 2, 4)
