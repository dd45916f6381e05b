"""release-expired-reservations: stock held by checkouts that were not paid in time goes back on sale."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import set_platform_scope, tenant_transaction
from cityos.domain.commerce.service import RESERVATION, VARIANT

BATCH = 500


async def release_expired_reservations(engine: AsyncEngine) -> str:
    """A platform operation across tenants (explicit platform scope). Rows are claimed with SKIP LOCKED, so a
    second runner, or a checkout completing at this moment, never sees the same reservation."""
    released = 0
    while True:
        async with tenant_transaction(engine, None) as connection:
            await set_platform_scope(connection)
            expired = (select(RESERVATION.c.id).where(RESERVATION.c.expires_at < func.now())
                       .limit(BATCH).with_for_update(skip_locked=True).scalar_subquery())
            rows = (await connection.execute(delete(RESERVATION).where(RESERVATION.c.id.in_(expired)).returning(
                RESERVATION.c.variant_id, RESERVATION.c.quantity, RESERVATION.c.cart_id))).all()
            for row in rows:
                await connection.execute(update(VARIANT).where(VARIANT.c.id == row.variant_id).values(
                    inventory_quantity=VARIANT.c.inventory_quantity + row.quantity))
            # The cart keeps its checkout (PaymentIntent): a payment that lands late is settled by the webhook —
            # an order if the units can still be taken, otherwise an automatic refund.
        released += len(rows)
        if len(rows) < BATCH:
            return f"released {released} reservation(s)"
