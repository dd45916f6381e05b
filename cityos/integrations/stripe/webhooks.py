"""POST /api/admin/integrations/stripe/webhook.

The signature is verified on the raw body with STRIPE_WEBHOOK_SECRET (stripe.Webhook.construct_event); a bad or
missing signature is 400. The event is recorded in the webhook inbox keyed by its id in the same transaction that
handles it, so a replay is a no-op and a failed handling rolls both back (Stripe then retries).

Handled: payment_intent.succeeded (creates the order, exactly once with completeCheckout),
payment_intent.payment_failed (records the failure, the cart stays open), and the Connect events of
connect_events.py: account.updated, transfer.created, transfer.reversed, payout.paid, payout.failed. Other types
are acknowledged and ignored. Note: Stripe has no `transfer.failed` event since the 2017 transfer/payout split;
transfer failures show up as API errors of transfers.create or as `transfer.reversed`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import stripe
from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse

from cityos.db import tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.commerce.service import record_payment_failure
from cityos.domain.marketplace.ledger import LedgerPolicy
from cityos.domain.orders.service import complete_order
from cityos.domain.platform.models import WebhookInbox
from cityos.errors import ApiError
from cityos.integrations.stripe import connect_events
from cityos.realtime.events import PendingEvents
from cityos.services import Services

log = logging.getLogger(__name__)
INBOX = table_of(WebhookInbox)
MAX_BODY = 512 * 1024

@dataclass
class Delivery:
    """One verified event being handled: what it is, the services, the live events to publish after commit."""

    event: dict[str, Any]
    services: Services
    events: PendingEvents


Handler = Callable[[AsyncConnection, dict[str, Any], Delivery], Awaitable[str]]


async def _payment_succeeded(connection: AsyncConnection, intent: dict[str, Any], delivery: Delivery) -> str:
    cart_id = intent.get("metadata", {}).get("cart_id")
    if not cart_id:
        return "ignored: not a checkout payment"
    order = await complete_order(connection, cart_id=uuid.UUID(cart_id), intent_id=intent["id"],
                                 intent_status=intent["status"], amount_received=int(intent["amount_received"]),
                                 currency=intent["currency"], ledger_policy=LedgerPolicy.of(delivery.services.settings),
                                 events=delivery.events, ship=bool(delivery.services.settings.FLEETBASE_URL))
    return f"order {order.id}"


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


async def stripe_webhook(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse({"error": "payload too large"}, status_code=413)
    try:
        stripe.WebhookSignature.verify_header(body, request.headers.get("stripe-signature"),
                                              services.settings.STRIPE_WEBHOOK_SECRET, stripe.Webhook.DEFAULT_TOLERANCE)
    except (stripe.SignatureVerificationError, ValueError):
        return JSONResponse({"error": "invalid signature"}, status_code=400)
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return JSONResponse({"error": "not JSON"}, status_code=400)
    if not _is_event(event):
        return JSONResponse({"error": "not a Stripe event"}, status_code=400)
    handler = HANDLERS.get(event["type"])
    delivery = Delivery(event, services, PendingEvents())
    try:
        async with tenant_transaction(services.app_engine, _tenant_of(event)) as connection:
            recorded = (await connection.execute(insert(INBOX).values(
                id=uuid.uuid4(), provider="stripe", event_id=event["id"], event_type=event["type"], payload=event,
            ).on_conflict_do_nothing(index_elements=["provider", "event_id"]).returning(INBOX.c.id))).first()
            if recorded is None:
                return JSONResponse({"received": True, "duplicate": True})
            outcome = "ignored: unhandled type"
            if handler is not None:
                try:
                    async with connection.begin_nested():
                        outcome = await handler(connection, event["data"]["object"], delivery)
                except ApiError as error:  # a business refusal: keep the event and the reason, do not retry
                    delivery.events.discard()
                    outcome = f"refused: {error.extensions.get('code')}: {error.message}"
                    log.warning("stripe event %s refused: %s", event["id"], outcome)
            await connection.execute(update(INBOX).where(INBOX.c.id == recorded.id).values(
                processed_at=func.now(), error=outcome[:1000] if outcome.startswith("refused") else None))
    except Exception:
        log.exception("stripe event %s failed; Stripe will retry", event.get("id"))
        return JSONResponse({"error": "processing failed"}, status_code=500)
    await delivery.events.publish(services.broker)
    return JSONResponse({"received": True, "outcome": outcome})
