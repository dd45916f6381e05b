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
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.db.engines import tenant_transaction
from cityos.domain.orders import refunds
from cityos.domain.orders.service import record_canceled, record_refund
from cityos.domain.platform.outbox import MAX_ATTEMPTS, OUTBOX, backoff, claimable
from cityos.integrations.stripe.client import (
    StripeCallResult,
    cancel_payment_intent,
    create_refund,
    refund_payment,
    reverse_transfer,
)
from cityos.realtime.events import PendingEvents

log = logging.getLogger(__name__)
CANCEL_TOPIC = "stripe.cancel_payment_intent"
REFUND_TOPIC = "stripe.refund_payment"
STRIPE_TOPICS = (CANCEL_TOPIC, REFUND_TOPIC, refunds.REFUND_TOPIC, refunds.REVERSAL_TOPIC)
LEASE = timedelta(minutes=5)


async def _call(client: stripe.StripeClient, message: Any) -> StripeCallResult:
    payload = message.payload
    if message.topic == CANCEL_TOPIC:
        return await cancel_payment_intent(client, payload["payment_intent_id"])
    if message.topic == REFUND_TOPIC:
        return await refund_payment(client, intent_id=payload["payment_intent_id"], metadata={
            "cart_id": str(payload.get("cart_id") or ""), "checkout_attempt_id": str(payload.get("attempt_id") or ""),
            "reason": str(payload.get("reason") or "")[:500]})
    if message.topic == refunds.REFUND_TOPIC:
        return await create_refund(client, intent_id=payload["payment_intent_id"], amount=int(payload["amount"]),
                                   reason=payload["reason"], metadata={
                                       "refund_id": payload["refund_id"], "order_id": payload["order_id"],
                                       "tenant_id": str(message.tenant_id)},
                                   idempotency_key=f"refund-{payload['refund_id']}")
    if message.topic == refunds.REVERSAL_TOPIC:
        return await reverse_transfer(client, transfer_id=payload["transfer_id"], amount=int(payload["amount"]),
                                      metadata={"refund_id": payload["refund_id"],
                                                "reversal_id": payload["reversal_id"],
                                                "tenant_id": str(message.tenant_id)},
                                      idempotency_key=f"reversal-{payload['reversal_id']}")
    return StripeCallResult(None, f"no sender for topic {message.topic}")


async def _recorded(connection: AsyncConnection, message: Any, result: StripeCallResult,
                    events: PendingEvents) -> list[uuid.UUID]:
    """What a sent message did, recorded in the domain; returns further messages to send now (a refund's
    transfer reversals)."""
    payload = message.payload
    attempt_id = payload.get("attempt_id")
    if attempt_id and message.topic == REFUND_TOPIC:
        await record_refund(connection, uuid.UUID(attempt_id), result.object_id)
    elif attempt_id and message.topic == CANCEL_TOPIC and not (result.note or "").startswith("not canceled"):
        await record_canceled(connection, uuid.UUID(attempt_id))
    elif message.topic == refunds.REFUND_TOPIC and result.object_id:
        return await refunds.refund_accepted(connection, uuid.UUID(payload["refund_id"]), result.object_id,
                                             result.note or "pending", payload.get("order_status"), events)
    elif message.topic == refunds.REVERSAL_TOPIC and result.object_id:
        await refunds.reversal_done(connection, uuid.UUID(payload["reversal_id"]), result.object_id)
    return []


async def _given_up(connection: AsyncConnection, message: Any, error: str) -> None:
    """A message that will not be sent: a refund is `failed` (ledger untouched), a transfer reversal a debt."""
    if message.topic == refunds.REFUND_TOPIC:
        await refunds.refund_refused(connection, uuid.UUID(message.payload["refund_id"]), error)
    elif message.topic == refunds.REVERSAL_TOPIC:
        await refunds.reversal_refused(connection, uuid.UUID(message.payload["reversal_id"]), error)


async def send_stripe_message(engine: AsyncEngine, client: stripe.StripeClient, tenant_id: uuid.UUID,
                              message_id: uuid.UUID, *, now: bool = False, events: PendingEvents | None = None,
                              follow_ups: list[uuid.UUID] | None = None) -> str:
    """Send one pending Stripe message (due ones only, unless `now`): 'sent', 'retry', 'dead', or 'skipped' when
    it is not pending, not due, or leased by another sender. Messages the result calls for (a refund's transfer
    reversals) are appended to `follow_ups` (otherwise the dispatcher sends them when due); live events to
    `events`."""
    events = events if events is not None else PendingEvents()
    async with tenant_transaction(engine, tenant_id) as connection:
        message = (await connection.execute(claimable(message_id, STRIPE_TOPICS, due_only=not now))).first()
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
            more = await _recorded(connection, message, result, events)
            if follow_ups is not None:
                follow_ups.extend(more)
            return "sent"
        dead = attempts >= MAX_ATTEMPTS or not result.retryable
        log.warning("outbox %s %s failed (attempt %s%s): %s", message.topic, message.id, attempts,
                    ", dead" if dead else "", result.error)
        await connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id).values(
            attempts=attempts, last_error=result.error, status="dead" if dead else "pending",
            next_attempt_at=datetime.now(UTC) + backoff(attempts)))
        if dead:
            await _given_up(connection, message, result.error or "refused")
        return "dead" if dead else "retry"
