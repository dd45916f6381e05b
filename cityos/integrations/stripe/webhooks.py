"""POST /api/admin/integrations/stripe/webhook.

The signature is verified on the raw body with STRIPE_WEBHOOK_SECRET (stripe.Webhook.construct_event; several
secrets separated by commas when a platform and a Connect endpoint both deliver here); a bad or missing signature
is 400. The event is recorded in the webhook inbox keyed by its id in the same transaction that
handles it, so a replay is a no-op and a failed handling rolls both back (Stripe then retries).

Handled: payment_intent.succeeded (settles the checkout exactly once with completeCheckout: the order built from
the snapshot that was paid for, or an automatic refund with its reason — see orders.service.settle_payment),
payment_intent.payment_failed (records the failure, the cart stays open), and the Connect events of
connect_events.py: account.updated, transfer.created, transfer.reversed, payout.paid, payout.failed. Other types
are acknowledged and ignored. Refused and failed events are listed to the tenant's admins (`webhookEvents`) and
can be replayed (`replayWebhookEvent`). Note: Stripe has no `transfer.failed` event since the 2017
transfer/payout split; transfer failures show up as API errors of transfers.create or as `transfer.reversed`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import stripe
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse

from cityos.db.engines import tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.commerce.service import record_payment_failure
from cityos.domain.marketplace.ledger import LedgerPolicy
from cityos.domain.orders.service import settle_payment
from cityos.domain.platform.models import WebhookInbox
from cityos.domain.platform.outbox import OUTBOX
from cityos.errors import ApiError
from cityos.integrations.stripe import connect_events
from cityos.integrations.stripe.payments import send_stripe_message
from cityos.realtime.events import PendingEvents
from cityos.services import Services

log = logging.getLogger(__name__)
INBOX = table_of(WebhookInbox)
MAX_BODY = 512 * 1024

@dataclass
class Delivery:
    """One verified event being handled: what it is, the services, the live events to publish after commit, and
    the refunds (tenant, outbox message) to send through Stripe once the transaction committed."""

    event: dict[str, Any]
    services: Services
    events: PendingEvents
    refunds: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)


Handler = Callable[[AsyncConnection, dict[str, Any], Delivery], Awaitable[str]]


async def _payment_succeeded(connection: AsyncConnection, intent: dict[str, Any], delivery: Delivery) -> str:
    cart_id = intent.get("metadata", {}).get("cart_id")
    if not cart_id:
        return "ignored: not a checkout payment"
    if intent.get("status") != "succeeded":
        return f"ignored: the payment is {intent.get('status')}"
    settled = await settle_payment(connection, cart_id=uuid.UUID(cart_id), intent_id=intent["id"],
                                   amount_received=int(intent["amount_received"]), currency=intent["currency"],
                                   ledger_policy=LedgerPolicy.of(delivery.services.settings), events=delivery.events,
                                   ship=bool(delivery.services.settings.FLEETBASE_URL))
    if settled.refund_message_id is not None:
        tenant = (await connection.execute(select(OUTBOX.c.tenant_id).where(
            OUTBOX.c.id == settled.refund_message_id))).scalar_one()
        delivery.refunds.append((tenant, settled.refund_message_id))
    return settled.outcome


async def _payment_failed(connection: AsyncConnection, intent: dict[str, Any], _delivery: Delivery) -> str:
    cart_id = intent.get("metadata", {}).get("cart_id")
    if not cart_id:
        return "ignored: not a checkout payment"
    await record_payment_failure(connection, uuid.UUID(cart_id), intent.get("last_payment_error") or {})
    return "failure recorded"


def _connect(handler: Any) -> Handler:
    async def handle(connection: AsyncConnection, data: dict[str, Any], delivery: Delivery) -> str:
        return str(await handler(connection, data, delivery.event))

    return handle


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _payment_succeeded,
    "payment_intent.payment_failed": _payment_failed,
    "account.updated": _connect(connect_events.account_updated),
    "transfer.created": _connect(connect_events.transfer_created),
    "transfer.reversed": _connect(connect_events.transfer_reversed),
    "payout.paid": _connect(connect_events.bank_payout),
    "payout.failed": _connect(connect_events.bank_payout),
}


def _is_event(event: Any) -> bool:
    """A signed body is still only trusted in shape once checked: an object with a string id and type whose
    data.object (and its metadata, when present) are objects."""
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        return False
    data = event.get("data")
    return (bool(event["id"]) and bool(event["type"]) and isinstance(data, dict)
            and isinstance(data.get("object"), dict)
            and isinstance(data["object"].get("metadata", {}), dict))


def _tenant_of(event: dict[str, Any]) -> uuid.UUID | None:
    tenant = event.get("data", {}).get("object", {}).get("metadata", {}).get("tenant_id")
    try:
        return uuid.UUID(str(tenant)) if tenant else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Processed:
    """How an event ended: processed / ignored / refused / failed (Stripe retries a failed one), or a duplicate of
    one already handled."""

    status: str
    outcome: str
    duplicate: bool = False


def _status_of(outcome: str) -> str:
    return "refused" if outcome.startswith("refused") else "ignored" if outcome.startswith("ignored") else "processed"


async def process_event(services: Services, event: dict[str, Any], *, replay: bool = False,
                        tenant_id: uuid.UUID | None = None) -> Processed:
    """Record the event in the inbox and handle it, in one transaction; then make the refunds it decided on.

    A repeated event id is a duplicate, unless its handling failed before (Stripe's retry processes it again) or
    an admin replays it (`replay`). A business refusal is kept with its reason (status refused, HTTP 200); an
    unexpected error rolls the handling back and records the event as failed (HTTP 500, Stripe retries); a refund
    that Stripe did not take yet also leaves the event failed, and its outbox message is retried. `tenant_id`:
    the tenant the inbox already attributed the event to (a replay), when its payload does not name it."""
    delivery = Delivery(event, services, PendingEvents())
    handler = HANDLERS.get(event["type"])
    tenant = _tenant_of(event) or tenant_id
    try:
        async with tenant_transaction(services.app_engine, tenant) as connection:
            recorded = (await connection.execute(insert(INBOX).values(
                id=uuid.uuid4(), provider="stripe", event_id=event["id"], event_type=event["type"], payload=event,
                tenant_id=tenant, status="processed",
            ).on_conflict_do_nothing(index_elements=["provider", "event_id"]).returning(INBOX.c.id))).first()
            if recorded is None:
                existing = (await connection.execute(select(INBOX).where(
                    INBOX.c.provider == "stripe", INBOX.c.event_id == event["id"]).with_for_update())).one()
                if existing.status != "failed" and not replay:
                    return Processed(existing.status, existing.error or "already processed", duplicate=True)
                await connection.execute(update(INBOX).where(INBOX.c.id == existing.id).values(
                    attempts=INBOX.c.attempts + 1))
                inbox_id = existing.id
            else:
                inbox_id = recorded.id
            outcome = "ignored: unhandled type"
            if handler is not None:
                try:
                    async with connection.begin_nested():
                        outcome = await handler(connection, event["data"]["object"], delivery)
                except ApiError as error:  # a business refusal: keep the event and the reason, do not retry
                    delivery.events.discard()
                    delivery.refunds.clear()
                    outcome = f"refused: {error.extensions.get('code')}: {error.message}"
                    log.warning("stripe event %s refused: %s", event["id"], outcome)
            status = _status_of(outcome)
            await connection.execute(update(INBOX).where(INBOX.c.id == inbox_id).values(
                processed_at=func.now(), status=status, error=outcome[:1000] if status == "refused" else None,
                tenant_id=func.coalesce(INBOX.c.tenant_id, func.cityos_current_tenant())))
    except Exception as error:
        log.exception("stripe event %s failed; Stripe will retry", event.get("id"))
        await _record_failure(services, event, tenant, f"failed: {type(error).__name__}", rolled_back=True)
        return Processed("failed", "processing failed")
    await delivery.events.publish(services.broker)
    for tenant_id, message_id in delivery.refunds:
        sent = await send_stripe_message(services.app_engine, services.stripe, tenant_id, message_id, now=True)
        if sent not in ("sent", "skipped"):
            await _record_failure(services, event, tenant, f"failed: {outcome}; the refund is not made yet (Stripe "
                                                           f"did not take it: {sent}); it is retried")
            return Processed("failed", "refund not made yet")
    return Processed(status, outcome)


async def _record_failure(services: Services, event: dict[str, Any], tenant: uuid.UUID | None, reason: str, *,
                          rolled_back: bool = False) -> None:
    """Keep a failed event visible (to the tenant's admins, with a replay) even though its handling rolled back
    (`rolled_back`: the attempt was not counted yet)."""
    try:
        async with tenant_transaction(services.app_engine, tenant) as connection:
            statement = insert(INBOX).values(
                id=uuid.uuid4(), provider="stripe", event_id=event["id"], event_type=event["type"], payload=event,
                tenant_id=tenant, status="failed", error=reason[:1000])
            await connection.execute(statement.on_conflict_do_update(
                index_elements=["provider", "event_id"],
                set_={"status": "failed", "error": reason[:1000], "processed_at": None,
                      "attempts": INBOX.c.attempts + (1 if rolled_back else 0)}))
    except Exception:
        log.exception("stripe event %s: could not record the failure", event.get("id"))


def _signed_in_the_future(header: str | None) -> bool:
    """The SDK refuses signatures older than its tolerance; one dated beyond it in the future is refused too (a
    signature made ahead of time would otherwise stay replayable for as long as its date is ahead)."""
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            return int(value) > time.time() + stripe.Webhook.DEFAULT_TOLERANCE
    return False


def signed_by_stripe(body: bytes, header: str | None, secrets: str) -> bool:
    """The signature checked on the raw body with the SDK. `secrets` may list several signing secrets separated by
    commas: the platform endpoint and the Connect endpoint of a live set-up have one each."""
    if _signed_in_the_future(header):
        return False
    for secret in (part.strip() for part in secrets.split(",")):
        if not secret:
            continue
        try:  # the signature only: the body's shape is checked after (_is_event)
            stripe.WebhookSignature.verify_header(body.decode("utf-8", "replace"), header, secret,
                                                  stripe.Webhook.DEFAULT_TOLERANCE)
        except (stripe.SignatureVerificationError, ValueError):
            continue
        return True
    return False


async def stripe_webhook(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse({"error": "payload too large"}, status_code=413)
    if not signed_by_stripe(body, request.headers.get("stripe-signature"), services.settings.STRIPE_WEBHOOK_SECRET):
        return JSONResponse({"error": "invalid signature"}, status_code=400)
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return JSONResponse({"error": "not JSON"}, status_code=400)
    if not _is_event(event):
        return JSONResponse({"error": "not a Stripe event"}, status_code=400)
    processed = await process_event(services, event)
    if processed.status == "failed":
        return JSONResponse({"error": processed.outcome}, status_code=500)
    if processed.duplicate:
        return JSONResponse({"received": True, "duplicate": True, "outcome": processed.outcome})
    return JSONResponse({"received": True, "outcome": processed.outcome})
