"""The two billing jobs for one tenant at a given time (the clock seam: tests pass a later `now`), and the
recording of renewal payments Stripe tells us about by webhook.

process-billing-cycles: claim the due cycles, then lease, prepare, charge and record each (renewals.py).
retry-failed-payments: lease the failed cycles whose retry day has come and charge each again with a new key;
end the SCA cycles the customer did not confirm in time (dunning.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.config import Settings
from cityos.db.engines import tenant_transaction
from cityos.domain.billing import dunning, renewals, setups
from cityos.domain.billing.models import BillingCycleStatus
from cityos.domain.billing.queries import SUBSCRIPTION
from cityos.domain.billing.service import BillingGateway, PaymentOutcome
from cityos.errors import Unavailable
from cityos.realtime.events import PendingEvents


async def _charge_and_record(engine: AsyncEngine, gateway: BillingGateway, settings: Settings,
                             tenant_id: uuid.UUID, cycle: Row[Any], now: datetime, source: str,
                             events: PendingEvents, back_to: BillingCycleStatus, counts: dict[str, int]) -> str:
    """Steps 2 (prepare, charge) and 3 (record) of a leased cycle: paid, failed, action_required, skipped or
    retry (Stripe unavailable: the cycle is due again, nothing else written)."""
    renewal = await renewals.prepare(engine, tenant_id, cycle, now, events)
    if renewal is None:
        return "skipped"
    try:
        outcome = await renewals.charge(gateway, tenant_id, renewal)
    except Unavailable as error:
        await renewals.release(engine, tenant_id, renewal.cycle, error, back_to)
        return "retry"
    async with tenant_transaction(engine, tenant_id) as connection:
        current = await renewals.locked_cycle(connection, cycle.id)
        if current is None or current.status != BillingCycleStatus.CHARGING:
            return "recorded"  # a webhook (or a runner whose lease outlived ours) recorded the same answer
        if outcome.succeeded:
            return await renewals.record_success(connection, settings, current, intent_id=str(outcome.intent_id),
                                                 charge_id=outcome.charge_id, amount=current.amount,
                                                 source=source, now=now, events=events)
        counts["declined"] += 1  # whatever it leads to (past due, or the dunning's final action)
        return await dunning.record_failure(connection, current, outcome, source=source, now=now, events=events)


async def process_billing_cycles(engine: AsyncEngine, gateway: BillingGateway, settings: Settings,
                                 tenant_id: uuid.UUID, now: datetime, events: PendingEvents) -> dict[str, int]:
    """The process-billing-cycles job for one tenant at `now`."""
    counts = {"claimed": 0, "paid": 0, "failed": 0, "action_required": 0, "retry": 0, "skipped": 0,
              "canceled": 0, "recorded": 0, "declined": 0,
              "expired": await setups.expire_incomplete(engine, tenant_id, now, events)}
    for key, value in (await renewals.claim_due_cycles(engine, tenant_id, now, events)).items():
        counts[key] += value
    while (cycle := await renewals.lease(engine, tenant_id, now)) is not None:
        outcome = await _charge_and_record(engine, gateway, settings, tenant_id, cycle, now, "renewal", events,
                                           BillingCycleStatus.PENDING, counts)
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "retry":
            break  # Stripe is unavailable: the cycles stay pending for the next run
    return counts


async def retry_failed_payments(engine: AsyncEngine, gateway: BillingGateway, settings: Settings,
                                tenant_id: uuid.UUID, now: datetime, events: PendingEvents) -> dict[str, int]:
    """The retry-failed-payments job for one tenant at `now`."""
    counts = {"retried": 0, "paid": 0, "failed": 0, "action_required": 0, "retry": 0, "skipped": 0,
              "recorded": 0, "canceled": 0, "paused": 0, "declined": 0,
              "unconfirmed": await dunning.expire_unconfirmed(engine, tenant_id, now, events)}
    while (cycle := await dunning.lease_retry(engine, tenant_id, now)) is not None:
        counts["retried"] += 1
        outcome = await _charge_and_record(engine, gateway, settings, tenant_id, cycle, now, "retry", events,
                                           BillingCycleStatus.FAILED, counts)
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "retry":
            break
    return counts


async def retry_with_new_card(engine: AsyncEngine, gateway: BillingGateway, settings: Settings,
                              tenant_id: uuid.UUID, subscription_id: uuid.UUID, payment_method_id: str,
                              now: datetime, events: PendingEvents) -> str | None:
    """The customer saved a new card while a renewal waited for their authentication (SCA): that cycle is charged
    off-session with the new card once, at once. The lease (dunning.lease_confirmable: one conditional UPDATE, the
    attempt counted, so the idempotency key is the attempt's own) makes it exactly once — a second request at the
    same time finds nothing to lease; a runner that dies after Stripe's answer leaves a `charging` cycle that the
    next process-billing-cycles charges with the same key. Then recorded as any attempt: paid (the renewal order,
    the period advanced, active again) or failed again (dunning.record_failure: still waiting for authentication,
    or declined and retried on the dunning schedule). None when no cycle waited."""
    cycle = await dunning.lease_confirmable(engine, tenant_id, subscription_id, payment_method_id, now)
    if cycle is None:
        return None
    counts: dict[str, int] = {"declined": 0}
    return await _charge_and_record(engine, gateway, settings, tenant_id, cycle, now, "customer", events,
                                    BillingCycleStatus.FAILED, counts)


async def _save_first_card(connection: AsyncConnection, cycle: Row[Any], intent: dict[str, Any]) -> None:
    """A first charge the customer authenticated on-session (subscribing.py): its card, saved by Stripe with
    setup_future_usage, becomes the renewals' card (a subscription that has one keeps it)."""
    card = intent.get("payment_method")
    card = card.get("id") if isinstance(card, dict) else card
    if card and intent.get("setup_future_usage"):
        await connection.execute(update(SUBSCRIPTION).where(
            SUBSCRIPTION.c.id == cycle.subscription_id, SUBSCRIPTION.c.stripe_payment_method_id.is_(None),
        ).values(stripe_payment_method_id=str(card)))


async def record_webhook(connection: AsyncConnection, settings: Settings, intent: dict[str, Any], succeeded: bool,
                         now: datetime, events: PendingEvents) -> str:
    """payment_intent.succeeded / payment_intent.payment_failed of a renewal (metadata.billing_cycle_id), in the
    inbox's transaction: recorded under the cycle's lock exactly as the runner would, so a webhook racing the
    runner, replayed or reordered never records twice (a success is final; a failure after it is ignored)."""
    cycle_id = uuid.UUID(str(intent["metadata"]["billing_cycle_id"]))
    cycle = await renewals.locked_cycle(connection, cycle_id)
    if cycle is None:
        return "ignored: unknown billing cycle"
    if cycle.status == BillingCycleStatus.SKIPPED and succeeded and intent.get("status") == "succeeded":
        return await renewals.refund_late_payment(connection, cycle, intent)
    if cycle.status in (BillingCycleStatus.PAID, BillingCycleStatus.SKIPPED):
        return f"ignored: the cycle is {cycle.status}"
    if succeeded:
        if intent.get("status") != "succeeded":
            return f"ignored: the payment is {intent.get('status')}"
        await _save_first_card(connection, cycle, intent)
        return await renewals.record_success(
            connection, settings, cycle, intent_id=str(intent["id"]), charge_id=intent.get("latest_charge"),
            amount=int(intent.get("amount_received") or 0), source="webhook", now=now, events=events)
    if cycle.payment_intent_id not in (None, intent["id"]) and cycle.status == BillingCycleStatus.FAILED:
        return "ignored: an earlier attempt of the cycle"
    error = intent.get("last_payment_error") or {}
    outcome = PaymentOutcome(False, intent_id=str(intent["id"]), status=intent.get("status"),
                             code=error.get("code"), decline_code=error.get("decline_code"),
                             message=error.get("message"))
    return await dunning.record_failure(connection, cycle, outcome, source="webhook", now=now, events=events)
