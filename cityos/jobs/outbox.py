"""dispatch-outbox (every minute): send the calls written to the outbox, with bounded retries and backoff.

Rows are claimed with FOR UPDATE SKIP LOCKED (two dispatchers never send the same row). A failure schedules the
next attempt after 30 s × 2^attempts (capped at an hour); after MAX_ATTEMPTS the row is `dead` — counted in
`cityos_outbox_dead_total` and left for an admin to inspect and replay.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import func, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.config import Settings
from cityos.db.engines import set_platform_scope, tenant_transaction
from cityos.domain.accounting.service import TOPICS as ERPNEXT_TOPICS
from cityos.domain.fulfillment import service as fulfillment
from cityos.domain.platform.outbox import MAX_ATTEMPTS, OUTBOX, backoff
from cityos.integrations.erpnext.sync import accounts_of, erpnext_client, send_erpnext_message
from cityos.integrations.fleetbase.client import FleetbaseClient, FleetbaseError
from cityos.integrations.smtp.client import smtp_sender
from cityos.integrations.smtp.notices import TOPICS as NOTICE_TOPICS
from cityos.integrations.smtp.notices import send_notice_message
from cityos.integrations.stripe.payments import STRIPE_TOPICS, send_stripe_message
from cityos.realtime.events import PendingEvents

OUTBOX_SENT = Counter("cityos_outbox_sent_total", "Outbox rows sent", ["topic"])
OUTBOX_FAILED = Counter("cityos_outbox_failures_total", "Outbox send attempts that failed", ["topic"])
OUTBOX_DEAD = Counter("cityos_outbox_dead_total", "Outbox rows given up on", ["topic"])
BATCH = 50


async def _create_shipment(connection: AsyncConnection, client: FleetbaseClient, row: Any,
                           events: PendingEvents) -> None:
    await fulfillment.create_shipment(connection, client, uuid.UUID(row.payload["vendor_order_id"]), events)


async def _cancel(connection: AsyncConnection, client: FleetbaseClient, row: Any, events: PendingEvents) -> None:
    await fulfillment.cancel_shipment(client, row.payload["fleetbase_order_id"])


SENDERS = {fulfillment.CREATE_TOPIC: _create_shipment, fulfillment.CANCEL_TOPIC: _cancel}


async def dispatch_outbox(engine: AsyncEngine, settings: Settings, http: Any, broker: Any = None,
                          stripe: Any = None, *, only: tuple[str, ...] | None = None) -> str:
    """Send what is due: Fleetbase calls when Fleetbase is configured, Stripe calls (checkout cancellations,
    refunds and their transfer reversals, which a refund taken here enqueues for the next run) when a Stripe
    client is given, ERPNext calls (orders to account) when ERPNext is configured, and the customer notices by
    email when CITYOS_SMTP_URL is set (otherwise they are kept and marked skipped).
    `only`: these topics alone."""
    fleetbase = settings.FLEETBASE_URL and settings.FLEETBASE_API_KEY
    erpnext = erpnext_client(settings, http)
    mailer = smtp_sender(settings)  # None: the customer notices are kept and marked skipped
    topics = [*(SENDERS if fleetbase else ()), *(STRIPE_TOPICS if stripe is not None else ()),
              *(ERPNEXT_TOPICS if erpnext is not None else ()), *NOTICE_TOPICS]
    if only is not None:
        topics = [topic for topic in topics if topic in only]
    if not topics:
        return "Fleetbase is not configured; nothing sent"
    client = FleetbaseClient(http, settings.FLEETBASE_URL or "", settings.FLEETBASE_API_KEY or "")
    counts = {"sent": 0, "retry": 0, "dead": 0, "skipped": 0}
    seen: set[uuid.UUID] = set()
    while True:
        async with tenant_transaction(engine, None) as connection:
            await set_platform_scope(connection)
            claimed = (await connection.execute(select(OUTBOX).where(
                OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= func.now(), OUTBOX.c.topic.in_(topics),
                OUTBOX.c.id.not_in(seen) if seen else true())
                .order_by(OUTBOX.c.next_attempt_at).limit(BATCH).with_for_update(skip_locked=True))).all()
        if not claimed:
            break
        for row in claimed:
            seen.add(row.id)
            if row.topic in STRIPE_TOPICS:
                events = PendingEvents()  # a refund taken now announces itself (and its return) to subscribers
                outcome = await send_stripe_message(engine, stripe, row.tenant_id, row.id, events=events)
                if broker is not None:
                    await events.publish(broker)
                if outcome == "skipped":
                    continue
                {"sent": OUTBOX_SENT, "retry": OUTBOX_FAILED, "dead": OUTBOX_DEAD}[outcome].labels(row.topic).inc()
            elif row.topic in NOTICE_TOPICS:
                outcome = await send_notice_message(engine, mailer, row.tenant_id, row.id)
                if outcome == "busy":
                    continue
                if outcome != "skipped":
                    {"sent": OUTBOX_SENT, "retry": OUTBOX_FAILED, "dead": OUTBOX_DEAD}[outcome].labels(row.topic).inc()
            elif row.topic in ERPNEXT_TOPICS and erpnext is not None:
                outcome = await send_erpnext_message(engine, erpnext, accounts_of(settings), row.tenant_id, row.id)
                if outcome == "skipped":
                    continue
                {"sent": OUTBOX_SENT, "retry": OUTBOX_FAILED, "dead": OUTBOX_DEAD}[outcome].labels(row.topic).inc()
            else:
                outcome = await _send_one(engine, client, row, broker)
            counts[outcome] += 1
        if len(claimed) < BATCH:
            break
    return ", ".join(f"{count} {outcome}" for outcome, count in counts.items())


async def _send_one(engine: AsyncEngine, client: FleetbaseClient, claimed: Any, broker: Any) -> str:
    events = PendingEvents()
    async with tenant_transaction(engine, claimed.tenant_id) as connection:
        row = (await connection.execute(select(OUTBOX).where(OUTBOX.c.id == claimed.id, OUTBOX.c.status == "pending")
                                        .with_for_update(skip_locked=True))).first()
        if row is None:
            return "retry"  # another dispatcher has it
        sender = SENDERS.get(row.topic)
        try:
            if sender is None:
                raise FleetbaseError(f"no sender for topic {row.topic}", retryable=False)
            async with connection.begin_nested():
                await sender(connection, client, row, events)
        except FleetbaseError as error:
            events.discard()
            attempts = row.attempts + 1
            dead = attempts >= MAX_ATTEMPTS or not error.retryable
            OUTBOX_FAILED.labels(row.topic).inc()
            if dead:
                OUTBOX_DEAD.labels(row.topic).inc()
            await connection.execute(update(OUTBOX).where(OUTBOX.c.id == row.id).values(
                attempts=attempts, last_error=str(error)[:1000], status="dead" if dead else "pending",
                next_attempt_at=datetime.now(UTC) + backoff(attempts)))
            return "dead" if dead else "retry"
        await connection.execute(update(OUTBOX).where(OUTBOX.c.id == row.id).values(
            status="sent", attempts=row.attempts + 1, sent_at=func.now(), last_error=None))
        OUTBOX_SENT.labels(row.topic).inc()
    if broker is not None:
        await events.publish(broker)
    return "sent"

