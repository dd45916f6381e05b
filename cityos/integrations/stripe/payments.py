"""The Stripe calls checkout writes to the outbox: cancel a superseded PaymentIntent, refund a payment that could
not become an order.

They are made after the business transaction committed and never under a row lock (DESIGN.md §3): the message
is leased (its next attempt moved LEASE ahead, committed), the call is made with an idempotency key derived from
the PaymentIntent, and the result is recorded in a new transaction. A process that dies after the call leaves
the lease to run out; the next dispatcher repeats the call with the same key, so Stripe acts once.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import tenant_transaction
from cityos.domain.orders.service import record_canceled, record_refund
from cityos.domain.platform.outbox import MAX_ATTEMPTS, OUTBOX, backoff
from cityos.integrations.stripe.client import StripeCallResult, cancel_payment_intent, refund_payment

log = logging.getLogger(__name__)
CANCEL_TOPIC = "stripe.cancel_payment_intent"
REFUND_TOPIC = "stripe.refund_payment"
STRIPE_TOPICS = (CANCEL_TOPIC, REFUND_TOPIC)
LEASE = timedelta(minutes=5)


async def _call(client: stripe.StripeClient, message: Any) -> StripeCallResult:
    payload = message.payload
    if message.topic == CANCEL_TOPIC:
        return await cancel_payment_intent(client, payload["payment_intent_id"])
    if message.topic == REFUND_TOPIC:
        return await refund_payment(client, intent_id=payload["payment_intent_id"], metadata={
            "cart_id": str(payload.get("cart_id") or ""), "checkout_attempt_id": str(payload.get("attempt_id") or ""),
            "reason": str(payload.get("reason") or "")[:500]})
    return StripeCallResult(None, f"no sender for topic {message.topic}")


async def send_stripe_message(engine: AsyncEngine, client: stripe.StripeClient, tenant_id: uuid.UUID,
                              message_id: uuid.UUID, *, now: bool = False) -> str:
    """Send one pending Stripe message (due ones only, unless `now`): 'sent', 'retry', 'dead', or 'skipped' when
    it is not pending, not due, or leased by another sender."""
    async with tenant_transaction(engine, tenant_id) as connection:
        message = (await connection.execute(select(OUTBOX).where(
            OUTBOX.c.id == message_id, OUTBOX.c.status == "pending", OUTBOX.c.topic.in_(STRIPE_TOPICS),
            *(() if now else (OUTBOX.c.next_attempt_at <= func.now(),))).with_for_update(skip_locked=True))).first()
        if message is None:
            return "skipped"
        await connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id)
                                 .values(next_attempt_at=func.now() + LEASE))
    result = await _call(client, message)  # the lease is committed: no lock is held during the call
    async with tenant_transaction(engine, tenant_id) as connection:
        attempts = message.attempts + 1
        if result.error is None:
            await connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id).values(
                status="sent", attempts=attempts, sent_at=func.now(), last_error=result.note))
            attempt_id = message.payload.get("attempt_id")
            if attempt_id and message.topic == REFUND_TOPIC:
                await record_refund(connection, uuid.UUID(attempt_id), result.object_id)
            elif attempt_id and message.topic == CANCEL_TOPIC and not (result.note or "").startswith("not canceled"):
                await record_canceled(connection, uuid.UUID(attempt_id))
            return "sent"
        dead = attempts >= MAX_ATTEMPTS or not result.retryable
        log.warning("outbox %s %s failed (attempt %s%s): %s", message.topic, message.id, attempts,
                    ", dead" if dead else "", result.error)
        await connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id).values(
            attempts=attempts, last_error=result.error, status="dead" if dead else "pending",
            next_attempt_at=datetime.now(UTC) + backoff(attempts)))
        return "dead" if dead else "retry"
