"""Delivering the customer notices waiting in the outbox (topic `billing.customer_notice`), for dispatch-outbox.

Each row is leased (its next attempt moved past the call, committed) so no lock is held while the mail server is
talked to, then recorded: `sent`; `pending` again with backoff after a retryable failure, `dead` after the last
attempt or a permanent refusal; `skipped` — kept, with the reason — when no mail server is configured or the
notice names no email. A skipped or dead notice is sent again by retryOutboxMessage."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import tenant_transaction
from cityos.domain.billing.notices import notice_of
from cityos.domain.billing.renewals import NOTICE_TOPIC
from cityos.domain.platform.notifications import NoticeFailed, NoticeSender
from cityos.domain.platform.outbox import MAX_ATTEMPTS, OUTBOX, backoff

log = logging.getLogger(__name__)
TOPICS = (NOTICE_TOPIC,)
LEASE = timedelta(minutes=5)
NOT_CONFIGURED = "not sent: no mail server is configured (CITYOS_SMTP_URL)"


async def _skip(engine: AsyncEngine, tenant_id: uuid.UUID, message_id: uuid.UUID, reason: str) -> str:
    async with tenant_transaction(engine, tenant_id) as connection:
        skipped = await connection.execute(update(OUTBOX).where(
            OUTBOX.c.id == message_id, OUTBOX.c.status == "pending").values(status="skipped", last_error=reason))
    return "skipped" if skipped.rowcount else "busy"


async def send_notice_message(engine: AsyncEngine, sender: NoticeSender | None, tenant_id: uuid.UUID,
                              message_id: uuid.UUID) -> str:
    """Deliver one due notice: 'sent', 'retry', 'dead', 'skipped', or 'busy' (not pending, not due, or leased by
    another dispatcher)."""
    if sender is None:
        return await _skip(engine, tenant_id, message_id, NOT_CONFIGURED)
    async with tenant_transaction(engine, tenant_id) as connection:
        message = (await connection.execute(select(OUTBOX).where(
            OUTBOX.c.id == message_id, OUTBOX.c.status == "pending", OUTBOX.c.topic.in_(TOPICS),
            OUTBOX.c.next_attempt_at <= func.now()).with_for_update(skip_locked=True))).first()
        if message is None:
            return "busy"
        notice = notice_of(message.payload, str(message.id))
        if notice is not None:
            await connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id)
                                     .values(next_attempt_at=func.now() + LEASE))
    if notice is None:
        return await _skip(engine, tenant_id, message_id, "not sent: the notice names no email")
    try:
        await sender.send(notice)  # the lease is committed: no lock is held while the server is talked to
    except NoticeFailed as error:
        attempts = message.attempts + 1
        dead = attempts >= MAX_ATTEMPTS or not error.retryable
        log.warning("outbox %s %s failed (attempt %s%s): %s", message.topic, message.id, attempts,
                    ", dead" if dead else "", error)
        async with tenant_transaction(engine, tenant_id) as connection:
            await connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id).values(
                attempts=attempts, last_error=str(error)[:1000], status="dead" if dead else "pending",
                next_attempt_at=datetime.now(UTC) + backoff(attempts)))
        return "dead" if dead else "retry"
    async with tenant_transaction(engine, tenant_id) as connection:
        await connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id).values(
            status="sent", attempts=message.attempts + 1, sent_at=func.now(), last_error=None))
    return "sent"
