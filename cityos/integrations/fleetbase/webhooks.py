"""POST /webhooks/fleetbase: `Signature: hex(HMAC-SHA256(raw body, secret))` verified on the raw body (PHP
escapes `/`, so re-serialising would not match); the event goes through the webhook inbox (domain/platform/inbox.py,
as Stripe's: a replay is a no-op, refusals and failures are kept with their reason and listed to the tenant's
admins, the tenant is the shipment's); a mapped event moves the shipment forward and appends a tracking event
(domain/fulfillment/service.py), published after commit."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse

from cityos.domain.fulfillment import rules
from cityos.domain.fulfillment import service as fulfillment
from cityos.domain.platform import inbox
from cityos.domain.platform.inbox import IncomingEvent, Received
from cityos.realtime.events import PendingEvents
from cityos.services import Services

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


def _is_event(envelope: Any) -> bool:
    return (isinstance(envelope, dict) and bool(envelope.get("id")) and isinstance(envelope.get("event"), str)
            and bool(envelope["event"]) and isinstance(envelope.get("data") or {}, dict))


async def process_event(services: Services, envelope: dict[str, Any], *, replay: bool = False,
                        tenant_id: uuid.UUID | None = None) -> Received:
    """Record the event in the inbox and handle it in one transaction; publish its live events after commit.
    `tenant_id`: the tenant the inbox already attributed the event to (a replay)."""
    data = envelope.get("data") or {}
    fleetbase_order_id = str(data.get("id", ""))
    events = PendingEvents()

    async def resolve_tenant(connection: AsyncConnection) -> uuid.UUID | None:
        return await fulfillment.tenant_of_fleetbase_order(connection, fleetbase_order_id)

    async def handle(connection: AsyncConnection) -> str:
        location = data.get("location") if isinstance(data.get("location"), dict) else None
        return await fulfillment.track_shipment(
            connection, fleetbase_order_id=fleetbase_order_id, status=rules.status_of(str(envelope["event"]), data),
            source_event=str(envelope["event"]), occurred_at=_occurred_at(envelope), location=location,
            tracking_number=data.get("tracking_number"), events=events)

    received = await inbox.receive(
        services.app_engine, IncomingEvent("fleetbase", str(envelope["id"]), str(envelope["event"]), envelope),
        handle, tenant_id=tenant_id, resolve_tenant=resolve_tenant, replay=replay, on_refusal=events.discard)
    if not received.failed and not received.duplicate:
        await events.publish(services.broker)
    return received


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
    if not _is_event(envelope):
        return JSONResponse({"error": "not a Fleetbase event"}, status_code=400)
    received = await process_event(services, envelope)
    return JSONResponse(received.answer(), status_code=500 if received.failed else 200)
