"""Scheduled jobs against the real database."""

from __future__ import annotations

from sqlalchemy import text

from cityos.db.engines import create_app_engine
from cityos.jobs.registry import JOBS, JobContext
from tests.conftest import TenantWorld


async def test_expired_reservations_go_back_to_stock(database_url: str, owner_engine, world: TenantWorld,
                                                      settings) -> None:
    from cityos.seed import seed_catalog, seed_region

    async with owner_engine.begin() as connection:
        await seed_region(connection, world.tenant_id)
        await seed_catalog(connection, world.tenant_id, world.store_id)
        await connection.execute(text("""
            with v as (select id from variant where tenant_id = :t and sku = 'LU-CANDLE'),
                 r as (select id from region where tenant_id = :t),
                 c as (insert into cart (tenant_id, id, store_id, region_id, currency_code, payment_intent_id)
                       select :t, gen_random_uuid(), :s, r.id, 'usd', 'pi_expired' from r returning id)
            insert into inventory_reservation (tenant_id, id, cart_id, variant_id, quantity, expires_at)
            select :t, gen_random_uuid(), c.id, v.id, 20, now() - interval '1 minute' from c, v"""),
            {"t": world.tenant_id, "s": world.store_id})
        await connection.execute(text("update variant set inventory_quantity = 100 where sku = 'LU-CANDLE' "
                                      "and tenant_id = :t"), {"t": world.tenant_id})
    engine = create_app_engine(database_url, pool_size=2)
    try:
        context = JobContext(engine, settings, None)
        outcome = await JOBS["release-expired-reservations"].run(context)
        again = await JOBS["release-expired-reservations"].run(context)
    finally:
        await engine.dispose()
    assert outcome.startswith("released") and outcome != "released 0 reservation(s)"
    assert again == "released 0 reservation(s)"
    async with owner_engine.connect() as connection:
        stock = (await connection.execute(text("select inventory_quantity from variant where sku = 'LU-CANDLE' "
                                               "and tenant_id = :t"), {"t": world.tenant_id})).scalar_one()
        intent = (await connection.execute(text("select payment_intent_id from cart where tenant_id = :t"),
                                           {"t": world.tenant_id})).scalar_one()
    assert stock == 120
    # The checkout stays the cart's current one: a payment landing late is settled by the webhook (an order if the
    # stock is still there, else a refund), and the next startCheckout reuses the same PaymentIntent.
    assert intent == "pi_expired"
