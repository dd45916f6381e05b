"""POST /webhooks/fleetbase: `Signature: hex(HMAC-SHA256(raw body, secret))` verified on the raw body (PHP
escapes `/`, so re-serialising would not match); the event is stored in the inbox by its id (a replay is a
no-op); a mapped event moves the shipment forward, appends a tracking event, and is published after commit."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from starlette.requests import Request
from starlette.responses import JSONResponse

from cityos.db.engines import set_tenant, tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.fulfillment import rules
from cityos.domain.fulfillment.models import Shipment, TrackingEvent
from cityos.domain.platform.models import WebhookInbox
from cityos.realtime.events import PendingEvents, event
from cityos.services import Services

SHIPMENT = table_of(Shipment)
TRACKING = table_of(TrackingEvent)
INBOX = table_of(WebhookInbox)
MAX_BODY = 256 * 1024


def signature_valid(body: bytes, header: str | None, secret: str) -> bool:
    if not header:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.strip().lower())


def _occurred_at(envelope: dict[str, Any]) -> datetime:
    try:
        return datetime.strptime(str(envelope.get("created_at")), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC)


async def fleetbase_webhook(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    secret = services.settings.CITYOS_FLEETBASE_WEBHOOK_SECRET
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse({"error": "payload too large"}, status_code=413)
    if not secret or not signature_valid(body, request.headers.get("signature"), secret):
        return JSONResponse({"error": "invalid signature"}, status_code=400)
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return JSONResponse({"error": "not JSON"}, status_code=400)
    if (not isinstance(envelope, dict) or not envelope.get("id") or not isinstance(envelope.get("event"), str)
            or not envelope["event"] or not isinstance(envelope.get("data") or {}, dict)):
        return JSONResponse({"error": "not a Fleetbase event"}, status_code=400)
    data = envelope.get("data") or {}
    events = PendingEvents()
    async with tenant_transaction(services.app_engine, None) as connection:
        recorded = (await connection.execute(pg_insert(INBOX).values(
            id=uuid.uuid4(), provider="fleetbase", event_id=str(envelope["id"]), event_type=str(envelope["event"]),
            payload=envelope).on_conflict_do_nothing(index_elements=["provider", "event_id"])
            .returning(INBOX.c.id))).first()
        if recorded is None:
            return JSONResponse({"received": True, "duplicate": True})
        outcome = await _apply(connection, envelope, data, events)
        await connection.execute(update(INBOX).where(INBOX.c.id == recorded.id).values(processed_at=func.now()))
    await events.publish(services.broker)
    return JSONResponse({"received": True, "outcome": outcome})


async def _apply(connection: Any, envelope: dict[str, Any], data: dict[str, Any], events: PendingEvents) -> str:
    status = rules.status_of(str(envelope["event"]), data)
    if status is None:
        return "ignored: not a shipment status"
    found = (await connection.execute(text("select tenant_id, shipment_id from cityos_shipment_by_fleetbase_order(:o)"),
                                      {"o": str(data.get("id", ""))})).first()
    if found is None:
        return "ignored: unknown Fleetbase order"
    await set_tenant(connection, found.tenant_id)
    shipment = (await connection.execute(select(SHIPMENT).where(SHIPMENT.c.id == found.shipment_id)
                                         .with_for_update())).one()
    if not rules.moves_forward(shipment.status, status):
        return f"ignored: shipment already {shipment.status}"
    location = data.get("location") if isinstance(data.get("location"), dict) else None
    tracking_number = shipment.tracking_number or data.get("tracking_number")
    await connection.execute(update(SHIPMENT).where(SHIPMENT.c.id == shipment.id).values(
        status=status, tracking_number=tracking_number, updated_at=func.now()))
    await connection.execute(insert(TRACKING).values(
        tenant_id=shipment.tenant_id, id=uuid.uuid4(), shipment_id=shipment.id, status=status,
        source_event=str(envelope["event"]), occurred_at=_occurred_at(envelope), location=location))
    events.add(event("shipment.updated", tenant_id=shipment.tenant_id, store_id=shipment.store_id,
                     order_id=shipment.order_id, vendor_id=shipment.vendor_id,
                     vendor_order_id=shipment.vendor_order_id, shipment_id=shipment.id,
                     customer_id=shipment.customer_id, status=status, tracking_number=tracking_number,
                     location=location))
    return f"shipment {status}"
