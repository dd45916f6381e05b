"""Migration 0017 on a database with orders: paid parts follow their Fleetbase shipments and the orders derive
their fulfilment from them (the SQL twin of fulfillment/rules.order_fulfillment); regions list their country."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from cityos.db import migrate
from cityos.db.engines import create_owner_engine
from tests import infrastructure

ORDER = """
insert into orders (tenant_id, id, store_id, cart_id, email, currency_code, status, subtotal, discount_total,
                    shipping_total, tax_total, total, payment_intent_id, shipping_address, shipping_option_code)
values (:t, :o, :s, gen_random_uuid(), 'a@example.com', 'usd', 'paid', 100, 0, 0, 0, 100, :pi, '{}', 'standard')
"""
PART = """
insert into vendor_order (tenant_id, id, order_id, store_id, status, subtotal, discount_total, shipping_total,
                          tax_total, total)
values (:t, :id, :o, :s, 'paid', 50, 0, 0, 0, 50)
"""
SHIPMENT = """
insert into shipment (tenant_id, id, vendor_order_id, order_id, store_id, status, fleetbase_order_id, tracking_number)
values (:t, gen_random_uuid(), :part, :o, :s, :status, :fleetbase, :tracking)
"""


async def test_existing_orders_get_their_fulfilment(postgres_admin_url: str) -> None:
    url = await asyncio.to_thread(infrastructure.create_database, postgres_admin_url)
    await asyncio.to_thread(migrate.upgrade, url, "0013")
    engine = create_owner_engine(url)
    tenant, store = uuid.uuid4(), uuid.uuid4()
    orders = {name: uuid.uuid4() for name in ("partly", "delivered", "untouched")}
    parts: dict[str, list[uuid.UUID]] = {name: [uuid.uuid4(), uuid.uuid4()] for name in orders}
    async with engine.begin() as connection:
        await infrastructure.insert_old_store(connection, tenant, store)
        await connection.execute(text("insert into region (tenant_id, id, name, currency_code, country_code) values "
                                      "(:t, gen_random_uuid(), 'US', 'usd', 'us')"), {"t": tenant})
        for name, order in orders.items():
            await connection.execute(text(ORDER), {"t": tenant, "o": order, "s": store, "pi": f"pi_{order.hex}"})
            for part in parts[name]:
                await connection.execute(text(PART), {"t": tenant, "id": part, "o": order, "s": store})
        for name, statuses in (("partly", ("picked_up", "created")), ("delivered", ("delivered", "delivered"))):
            for part, status in zip(parts[name], statuses, strict=True):
                await connection.execute(text(SHIPMENT), {"t": tenant, "part": part, "o": orders[name], "s": store,
                                                          "status": status, "fleetbase": f"fb_{part.hex}",
                                                          "tracking": f"TRK-{status}"})
    await engine.dispose()
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_owner_engine(url)
    try:
        async with engine.connect() as connection:
            derived = dict((await connection.execute(text(
                "select id, fulfillment_status from orders where tenant_id = :t"), {"t": tenant})).all())
            first = (await connection.execute(text(
                "select fulfillment_status, carrier, tracking_number from vendor_order where id = :id"),
                {"id": parts["partly"][0]})).one()
            countries = (await connection.execute(text(
                "select country_codes from region where tenant_id = :t"), {"t": tenant})).scalar_one()
    finally:
        await engine.dispose()
    assert derived == {orders["partly"]: "partially_shipped", orders["delivered"]: "delivered",
                       orders["untouched"]: "unfulfilled"}
    assert tuple(first) == ("shipped", "fleetbase", "TRK-picked_up")
    assert countries == ["us"]
    await asyncio.to_thread(migrate.downgrade, url, "0013")
