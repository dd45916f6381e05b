"""Delivering the notices waiting in the outbox, for dispatch-outbox: subscription customers' (topic
`billing.customer_notice`), company invitations (`b2b.invitation`) and overdue-invoice reminders to company admins
(`b2b.invoice_overdue`). A row may address several people (a reminder to each admin): one notice each.

Each row is leased (its next attempt moved past the call, committed) so no lock is held while the mail server is
talked to, then recorded: `sent`; `pending` again with backoff after a retryable failure, `dead` after the last
attempt or a permanent refusal; `skipped` — kept, with the reason — when no mail server is configured or the
notice names no email. A skipped or dead notice is sent again by retryOutboxMessage."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import tenant_transaction
from cityos.domain.b2b import invitations, overdue
from cityos.domain.b2b.notices import invitation_notices, overdue_notices
from cityos.domain.billing.notices import notice_of
from cityos.domain.billing.renewals import NOTICE_TOPIC
from cityos.domain.platform.notifications import Notice, NoticeFailed, NoticeSender
from cityos.domain.platform.outbox import MAX_ATTEMPTS, OUTBOX, backoff, claimable

log = logging.getLogger(__name__)

def _billing_notices(payload: dict[str, Any], key: str) -> list[Notice]:
    notice = notice_of(payload, key)
    return [] if notice is None else [notice]


RENDERERS: dict[str, Callable[[dict[str, Any], str], list[Notice]]] = {
    NOTICE_TOPIC: _billing_notices, invitations.TOPIC: invitation_notices, overdue.REMINDER_TOPIC: overdue_notices}
TOPICS = tuple(RENDERERS)
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
        message = (await connection.execute(claimable(message_id, TOPICS))).first()
        if message is None:
            return "busy"
        notices = RENDERERS[message.topic](message.payload, str(message.id))
        if notices:
            await connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id)
                                     .values(next_attempt_at=func.now() + LEASE))
    if not notices:
        return await _skip(engine, tenant_id, message_id, "not sent: the notice names no email")
    try:
        for notice in notices:  # the lease is committed: no lock is held while the server is talked to
            await sender.send(notice)
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
