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
from sqlalchemy import func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.config import Settings
from cityos.db.engines import set_platform_scope, tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.fulfillment.models import Shipment
from cityos.domain.marketplace.models import Vendor
from cityos.domain.orders.models import Order, OrderLine, VendorOrder
from cityos.domain.platform.outbox import MAX_ATTEMPTS, OUTBOX, backoff
from cityos.domain.tenancy.models import Store
from cityos.integrations.fleetbase.client import FleetbaseClient, FleetbaseError
from cityos.integrations.stripe.payments import STRIPE_TOPICS, send_stripe_message
from cityos.realtime.events import PendingEvents, event

OUTBOX_SENT = Counter("cityos_outbox_sent_total", "Outbox rows sent", ["topic"])
OUTBOX_FAILED = Counter("cityos_outbox_failures_total", "Outbox send attempts that failed", ["topic"])
OUTBOX_DEAD = Counter("cityos_outbox_dead_total", "Outbox rows given up on", ["topic"])
SHIPMENT = table_of(Shipment)
VENDOR_ORDER = table_of(VendorOrder)
ORDER = table_of(Order)
ORDER_LINE = table_of(OrderLine)
VENDOR = table_of(Vendor)
STORE = table_of(Store)
BATCH = 50


def _place(address: dict[str, Any], name: str) -> dict[str, Any]:
    return {"name": name, "street1": address.get("address_1"), "street2": address.get("address_2"),
            "city": address.get("city"), "province": address.get("province"),
            "postal_code": address.get("postal_code"), "country": str(address.get("country_code", "")).upper(),
            "phone": address.get("phone")}


async def fleetbase_order_for(connection: AsyncConnection, vendor_order_id: uuid.UUID) -> dict[str, Any]:
    """The Fleetbase order of a vendor order: pickup at the vendor (or the store), dropoff at the customer."""
    part = (await connection.execute(select(VENDOR_ORDER).where(VENDOR_ORDER.c.id == vendor_order_id))).one()
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == part.order_id))).one()
    store = (await connection.execute(select(STORE).where(STORE.c.id == part.store_id))).one()
    vendor = None
    if part.vendor_id is not None:
        vendor = (await connection.execute(select(VENDOR).where(VENDOR.c.id == part.vendor_id))).one()
    lines = (await connection.execute(select(ORDER_LINE).where(ORDER_LINE.c.vendor_order_id == part.id))).all()
    pickup: dict[str, Any] | str
    if vendor is not None and vendor.pickup_address:
        pickup = _place(vendor.pickup_address, vendor.name)
    else:
        pickup = {"name": vendor.name if vendor is not None else store.name}
    address = order.shipping_address
    return {
        "type": "transport", "dispatch": True, "internal_id": str(part.id),
        "payload": {
            "pickup": pickup,
            "dropoff": _place(address, f"{address.get('first_name', '')} {address.get('last_name', '')}".strip()),
            "entities": [{"name": line.title, "sku": line.sku, "internal_id": str(line.id),
                          "price": line.total, "currency": order.currency_code.upper(),
                          "meta": {"quantity": line.quantity}} for line in lines],
        },
        "customer": {"name": f"{address.get('first_name', '')} {address.get('last_name', '')}".strip(),
                     "email": order.email, "phone": address.get("phone")},
        "meta": {"tenant_id": str(part.tenant_id), "order_id": str(order.id), "vendor_order_id": str(part.id)},
    }


async def _create_shipment(connection: AsyncConnection, client: FleetbaseClient, row: Any,
                           events: PendingEvents) -> None:
    vendor_order_id = uuid.UUID(row.payload["vendor_order_id"])
    existing = (await connection.execute(select(SHIPMENT.c.id).where(
        SHIPMENT.c.vendor_order_id == vendor_order_id))).first()
    if existing is not None:
        return  # sent before (a crash after the call): one shipment per vendor order
    created = await client.create_order(await fleetbase_order_for(connection, vendor_order_id))
    part = (await connection.execute(select(VENDOR_ORDER).where(VENDOR_ORDER.c.id == vendor_order_id))).one()
    order = (await connection.execute(select(ORDER.c.customer_id).where(ORDER.c.id == part.order_id))).one()
    shipment_id = uuid.uuid4()
    await connection.execute(insert(SHIPMENT).values(
        tenant_id=part.tenant_id, id=shipment_id, vendor_order_id=part.id, order_id=part.order_id,
        store_id=part.store_id, vendor_id=part.vendor_id, customer_id=order.customer_id, status="created",
        fleetbase_order_id=created.id, tracking_number=created.tracking_number))
    events.add(event("shipment.updated", tenant_id=part.tenant_id, store_id=part.store_id, order_id=part.order_id,
                     vendor_id=part.vendor_id, vendor_order_id=part.id, shipment_id=shipment_id,
                     customer_id=order.customer_id, status="created", tracking_number=created.tracking_number))


async def _cancel(connection: AsyncConnection, client: FleetbaseClient, row: Any, events: PendingEvents) -> None:
    await client.cancel_order(row.payload["fleetbase_order_id"])


SENDERS = {"fleetbase.create_order": _create_shipment, "fleetbase.cancel_order": _cancel}


async def dispatch_outbox(engine: AsyncEngine, settings: Settings, http: Any, broker: Any = None,
                          stripe: Any = None) -> str:
    """Send what is due: Fleetbase calls when Fleetbase is configured, Stripe calls (checkout cancellations and
    refunds) when a Stripe client is given."""
    fleetbase = settings.FLEETBASE_URL and settings.FLEETBASE_API_KEY
    topics = [*(SENDERS if fleetbase else ()), *(STRIPE_TOPICS if stripe is not None else ())]
    if not topics:
        return "Fleetbase is not configured; nothing sent"
    client = FleetbaseClient(http, settings.FLEETBASE_URL or "", settings.FLEETBASE_API_KEY or "")
    counts = {"sent": 0, "retry": 0, "dead": 0}
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
                outcome = await send_stripe_message(engine, stripe, row.tenant_id, row.id)
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

