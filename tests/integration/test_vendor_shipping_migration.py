"""Migration 0019 on a database with orders: a vendor order whose checkout priced it with the vendor's own shipping
option is marked `own_shipping` (the checkout's snapshot names those vendors); the others are not; it downgrades
cleanly."""

from __future__ import annotations

import asyncio
import json
import uuid

from sqlalchemy import text

from cityos.db import migrate
from cityos.db.engines import create_owner_engine
from tests import infrastructure

ORDER = """
insert into orders (tenant_id, id, store_id, cart_id, email, currency_code, status, subtotal, discount_total,
                    shipping_total, tax_total, total, payment_intent_id, shipping_address, shipping_option_code)
values (:t, :o, :s, :c, 'a@example.com', 'usd', 'paid', 100, 0, 1200, 0, 1300, :pi, '{}', 'standard')
"""
PART = """
insert into vendor_order (tenant_id, id, order_id, store_id, vendor_id, status, subtotal, discount_total,
                          shipping_total, tax_total, total)
values (:t, :id, :o, :s, :v, 'paid', 50, 0, :shipping, 0, 50 + :shipping)
"""
ATTEMPT = """
insert into checkout_attempt (tenant_id, id, cart_id, store_id, payment_intent_id, fingerprint, amount,
                              currency_code, snapshot, status, order_id)
values (:t, gen_random_uuid(), :c, :s, :pi, 'f', 1300, 'usd', cast(:snapshot as jsonb), 'ordered', :o)
"""


async def test_vendor_orders_shipped_with_their_own_option_are_marked(postgres_admin_url: str) -> None:
    url = await asyncio.to_thread(infrastructure.create_database, postgres_admin_url)
    await asyncio.to_thread(migrate.upgrade, url, "0014")
    engine = create_owner_engine(url)
    tenant, store, region, cart, order = (uuid.uuid4() for _ in range(5))
    own, shared = uuid.uuid4(), uuid.uuid4()  # vendors: one with its own shipping, one with the store's
    parts = {own: uuid.uuid4(), shared: uuid.uuid4()}
    async with engine.begin() as connection:
        await infrastructure.insert_old_store(connection, tenant, store)
        await connection.execute(text("insert into region (tenant_id, id, name, currency_code, country_code) values "
                                      "(:t, :r, 'US', 'usd', 'us')"), {"t": tenant, "r": region})
        for vendor, handle in ((own, "own"), (shared, "shared")):
            await connection.execute(text("insert into vendor (tenant_id, id, store_id, handle, name) values "
                                          "(:t, :v, :s, :h, :h)"), {"t": tenant, "v": vendor, "s": store, "h": handle})
        await connection.execute(text("insert into cart (tenant_id, id, store_id, region_id, currency_code, email) "
                                      "values (:t, :c, :s, :r, 'usd', 'a@example.com')"),
                                 {"t": tenant, "c": cart, "s": store, "r": region})
        await connection.execute(text(ORDER), {"t": tenant, "o": order, "s": store, "c": cart, "pi": f"pi_{order.hex}"})
        for vendor, shipping in ((own, 700), (shared, 500)):
            await connection.execute(text(PART), {"t": tenant, "id": parts[vendor], "o": order, "s": store,
                                                  "v": vendor, "shipping": shipping})
        await connection.execute(text(ATTEMPT), {"t": tenant, "c": cart, "s": store, "pi": f"pi_{order.hex}",
                                                 "o": order, "snapshot": json.dumps({"vendor_shipping": {
                                                     str(own): 700}})})
    await engine.dispose()
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_owner_engine(url)
    try:
        async with engine.connect() as connection:
            marked = dict((await connection.execute(text(
                "select vendor_id, own_shipping from vendor_order where tenant_id = :t"), {"t": tenant})).all())
    finally:
        await engine.dispose()
    assert marked == {own: True, shared: False}
    await asyncio.to_thread(migrate.downgrade, url, "0014")
