"""Making a refund now, for a mutation: start it in a committed transaction of its own (named for the audit log),
send it to Stripe with nothing locked, then send the transfer reversals it calls for (orders/refunds.py has the
steps). A Stripe outage leaves it pending in the outbox: the dispatcher retries it with the same key."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.db.audit import AuditActor, name_actor
from cityos.db.engines import tenant_transaction
from cityos.domain.orders.refunds import REFUND, Started
from cityos.integrations.stripe.payments import send_stripe_message
from cityos.realtime.events import PendingEvents
from cityos.services import Services


async def make_refund(services: Services, tenant_id: uuid.UUID, actor: AuditActor | None, action: str | None,
                      start: Callable[[AsyncConnection], Awaitable[Started]]) -> Row[Any]:
    """Run `start` (it writes the refund and its outbox message), commit, send; the refund row as it ends up."""
    engine = services.app_engine
    events = PendingEvents()
    async with tenant_transaction(engine, tenant_id) as connection:
        await name_actor(connection, actor, action)
        started = await start(connection)
    follow_ups: list[uuid.UUID] = []
    await send_stripe_message(engine, services.stripe, tenant_id, started.message_id, now=True, events=events,
                              follow_ups=follow_ups)
    for message_id in follow_ups:
        await send_stripe_message(engine, services.stripe, tenant_id, message_id, now=True)
    async with tenant_transaction(engine, tenant_id) as connection:
        refund = (await connection.execute(select(REFUND).where(REFUND.c.id == started.refund.id))).one()
    await events.publish(services.broker)
    return refund
