"""POST /api/admin/integrations/stripe/webhook.

The signature is verified on the raw body with STRIPE_WEBHOOK_SECRET (stripe.Webhook.construct_event; several
secrets separated by commas when a platform and a Connect endpoint both deliver here); a bad or missing signature
is 400. The event is recorded in the webhook inbox keyed by its id in the same transaction that
handles it, so a replay is a no-op and a failed handling rolls both back (Stripe then retries).

Handled: payment_intent.succeeded (settles the checkout exactly once with completeCheckout: the order built from
the snapshot that was paid for, or an automatic refund with its reason — see orders.service.settle_payment),
payment_intent.payment_failed (records the failure, the cart stays open) — both, for a subscription renewal's
PaymentIntent (metadata.billing_cycle_id), recorded as the renewal job would (domain/billing/runs.py) —
setup_intent.succeeded / setup_intent.setup_failed (a subscription's card set-up the customer had to authenticate:
trialing, or expired; domain/billing/setups.py) —
refund.updated / refund.failed (a refund's status; one failing after it was accepted restores its ledger
reversals) and charge.refunded (pending refunds it covers succeed; the ledger moved when each refund was accepted,
so a replay reverses nothing twice; see orders/refunds.py), and the Connect events of connect_events.py:
account.updated, transfer.created, transfer.reversed, payout.paid, payout.failed. Other types are acknowledged and
ignored. Refused and failed events are listed to the tenant's admins (`webhookEvents`) and can be replayed
(`replayWebhookEvent`). Note: Stripe has no `transfer.failed` event since the 2017 transfer/payout split; transfer
failures show up as API errors of transfers.create or as `transfer.reversed`.
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
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse

from cityos.domain.b2b.service import complete_paid_checkout
from cityos.domain.billing import cart as billing_cart
from cityos.domain.billing import setups
from cityos.domain.billing.runs import record_webhook as record_renewal_webhook
from cityos.domain.commerce.service import record_payment_failure
from cityos.domain.orders import refunds
from cityos.domain.platform import inbox
from cityos.domain.platform.inbox import IncomingEvent, Received
from cityos.domain.platform.outbox import OUTBOX
from cityos.integrations.stripe import connect_events
from cityos.integrations.stripe.payments import send_stripe_message
from cityos.realtime.events import PendingEvents
from cityos.services import Services

log = logging.getLogger(__name__)
MAX_BODY = 512 * 1024

@dataclass
class Delivery:
    """One verified event being handled: what it is, the services, the live events to publish after commit, and
    the refunds (tenant, outbox message) to send through Stripe once the transaction committed."""

    event: dict[str, Any]
    services: Services
    events: PendingEvents
    refunds: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)

    def discard(self) -> None:
        """The event was refused: nothing it gathered is published or sent."""
        self.events.discard()
        self.refunds.clear()


Handler = Callable[[AsyncConnection, dict[str, Any], Delivery], Awaitable[str]]


async def _renewal(connection: AsyncConnection, intent: dict[str, Any], delivery: Delivery, succeeded: bool) -> str:
    """A renewal's PaymentIntent (metadata.billing_cycle_id): recorded like the renewal job would (billing.runs)."""
    services = delivery.services
    return await record_renewal_webhook(connection, services.settings, intent, succeeded, services.clock(),
                                        delivery.events)


async def _payment_succeeded(connection: AsyncConnection, intent: dict[str, Any], delivery: Delivery) -> str:
    if intent.get("metadata", {}).get("billing_cycle_id"):
        return await _renewal(connection, intent, delivery, True)
    cart_id = intent.get("metadata", {}).get("cart_id")
    if not cart_id:
        return "ignored: not a checkout payment"
    if intent.get("status") != "succeeded":
        return f"ignored: the payment is {intent.get('status')}"
    settled = await complete_paid_checkout(connection, delivery.services.settings, cart_id=uuid.UUID(cart_id),
                                           intent_id=intent["id"], amount_received=int(intent["amount_received"]),
                                           currency=intent["currency"], events=delivery.events)
    if settled.order is not None:  # a cart of subscription plans starts them (billing/cart.py), once
        payment_method = intent.get("payment_method")
        await billing_cart.subscriptions_from_checkout(
            connection, intent["id"], payment_method.get("id") if isinstance(payment_method, dict) else payment_method,
            delivery.services.clock(), delivery.events)
    if settled.refund_message_id is not None:
        tenant = (await connection.execute(select(OUTBOX.c.tenant_id).where(
            OUTBOX.c.id == settled.refund_message_id))).scalar_one()
        delivery.refunds.append((tenant, settled.refund_message_id))
    return settled.outcome


async def _payment_failed(connection: AsyncConnection, intent: dict[str, Any], delivery: Delivery) -> str:
    if intent.get("metadata", {}).get("billing_cycle_id"):
        return await _renewal(connection, intent, delivery, False)
    cart_id = intent.get("metadata", {}).get("cart_id")
    if not cart_id:
        return "ignored: not a checkout payment"
    await record_payment_failure(connection, uuid.UUID(cart_id), intent.get("last_payment_error") or {})
    return "failure recorded"


async def _setup_succeeded(connection: AsyncConnection, setup: dict[str, Any], delivery: Delivery) -> str:
    """A subscription's SetupIntent the customer authenticated (3-D Secure): its trial runs (billing.setups)."""
    return await setups.record_webhook(connection, setup, True, delivery.events)


async def _setup_failed(connection: AsyncConnection, setup: dict[str, Any], delivery: Delivery) -> str:
    return await setups.record_webhook(connection, setup, False, delivery.events)


async def _refund_changed(connection: AsyncConnection, refund: dict[str, Any], delivery: Delivery) -> str:
    """refund.updated / refund.failed: the Refund's status (a failure after it was accepted restores the
    ledger's reversals)."""
    return await refunds.refund_changed(connection, str(refund.get("id") or ""), str(refund.get("status") or ""),
                                        refund.get("failure_reason"), delivery.events)


async def _charge_refunded(connection: AsyncConnection, charge: dict[str, Any], _delivery: Delivery) -> str:
    """charge.refunded: the Charge with what Stripe has refunded of it in all."""
    return await refunds.charge_refunded(connection, charge.get("payment_intent"),
                                         int(charge.get("amount_refunded") or 0))


def _connect(handler: Any) -> Handler:
    async def handle(connection: AsyncConnection, data: dict[str, Any], delivery: Delivery) -> str:
        return str(await handler(connection, data, delivery.event))

    return handle


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _payment_succeeded,
    "payment_intent.payment_failed": _payment_failed,
    "setup_intent.succeeded": _setup_succeeded,
    "setup_intent.setup_failed": _setup_failed,
    "refund.updated": _refund_changed,
    "refund.failed": _refund_changed,
    "charge.refunded": _charge_refunded,
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


def _bound(handler: Handler, data: dict[str, Any], delivery: Delivery) -> inbox.Handler:
    async def handle(connection: AsyncConnection) -> str:
        return await handler(connection, data, delivery)

    return handle


async def process_event(services: Services, event: dict[str, Any], *, replay: bool = False,
                        tenant_id: uuid.UUID | None = None) -> Received:
    """Record the event in the inbox and handle it, in one transaction (domain/platform/inbox.py: duplicates,
    refusals, failures, attempts); then make the refunds it decided on.

    A refund that Stripe did not take yet leaves the event failed, and its outbox message is retried. `tenant_id`:
    the tenant the inbox already attributed the event to (a replay), when its payload does not name it."""
    delivery = Delivery(event, services, PendingEvents())
    handler = HANDLERS.get(event["type"])
    tenant = _tenant_of(event) or tenant_id
    incoming = IncomingEvent("stripe", event["id"], event["type"], event)
    handle = None if handler is None else _bound(handler, event["data"]["object"], delivery)
    received = await inbox.receive(services.app_engine, incoming, handle, tenant_id=tenant, replay=replay,
                                   on_refusal=delivery.discard)
    if received.failed or received.duplicate:
        return received
    await delivery.events.publish(services.broker)
    for tenant_id, message_id in delivery.refunds:
        sent = await send_stripe_message(services.app_engine, services.stripe, tenant_id, message_id, now=True)
        if sent not in ("sent", "skipped"):
            await inbox.record_failure(services.app_engine, incoming, tenant,
                                       f"failed: {received.outcome}; the refund is not made yet (Stripe did not "
                                       f"take it: {sent}); it is retried")
            return Received("failed", "refund not made yet", tenant_id=received.tenant_id)
    return received


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
    received = await process_event(services, event)
    return JSONResponse(received.answer(), status_code=500 if received.failed else 200)
