"""POST /webhooks/payload: content changes as they happen, sent by the `afterChange`/`afterDelete` hooks of
deploy/payload/ (Payload has no built-in webhooks; external-apis.md §5).

- Body (JSON): `{"id": <uuid of the change, reused by retries>, "event": "afterChange"|"afterDelete",
  "collection": "products"|"categories"|"vendors"|"stores", "operation": "create"|"update"|"delete", "doc": {…}}`.
- Signature: `X-Cityos-Signature: t=<unix seconds>,v1=<hex(HMAC-SHA256(PAYLOAD_SECRET, "<t>.<raw body>"))>`,
  checked on the raw body in constant time; older than 5 minutes, unsigned or wrong → 400, nothing recorded.
- The event goes through the webhook inbox (domain/platform/inbox.py): a replayed id is a duplicate, a document
  for another tenant's object is refused (kept with its reason and logged), a failure is kept for a retry.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse

from cityos.domain.content import rules
from cityos.domain.content import service as content
from cityos.domain.platform import inbox
from cityos.domain.platform.inbox import IncomingEvent, Received
from cityos.errors import BadUserInput
from cityos.services import Services

MAX_BODY = 512 * 1024
TOLERANCE = 300
HEADER = "x-cityos-signature"


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value the Payload hook sends (also used by the tests' fake)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def signature_valid(body: bytes, header: str | None, secret: str, now: float | None = None) -> bool:
    if not header:
        return False
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if (time.time() if now is None else now) - timestamp > TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate.lower()) for candidate in parts.get("v1", []))


def _is_event(envelope: Any) -> bool:
    return (isinstance(envelope, dict) and isinstance(envelope.get("id"), str) and bool(envelope["id"])
            and envelope.get("collection") in rules.KIND_OF_COLLECTION
            and envelope.get("operation") in ("create", "update", "delete")
            and isinstance(envelope.get("doc"), dict))


async def process_event(services: Services, envelope: dict[str, Any], *, replay: bool = False,
                        tenant_id: uuid.UUID | None = None) -> Received:
    kind = rules.KIND_OF_COLLECTION[envelope["collection"]]
    document: dict[str, Any] = envelope["doc"]
    claimed = tenant_id or rules.tenant_of(document)

    async def handle(connection: AsyncConnection) -> str:
        if claimed is None:
            raise BadUserInput("the document names no tenant")
        applied = await content.apply_document(connection, claimed, kind, document,
                                               deleted=envelope["operation"] == "delete")
        return applied.outcome

    # The tenant is the one the document claims; apply_document refuses it unless that tenant owns the object.
    return await inbox.receive(
        services.app_engine,
        IncomingEvent("payload", envelope["id"], f"{envelope['collection']}.{envelope['operation']}", envelope),
        handle, tenant_id=claimed, replay=replay)


async def payload_webhook(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse({"error": "payload too large"}, status_code=413)
    if not signature_valid(body, request.headers.get(HEADER), services.settings.PAYLOAD_SECRET):
        return JSONResponse({"error": "invalid signature"}, status_code=400)
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return JSONResponse({"error": "not JSON"}, status_code=400)
    if not _is_event(envelope):
        return JSONResponse({"error": "not a Payload change event"}, status_code=400)
    received = await process_event(services, envelope)
    return JSONResponse(received.answer(), status_code=500 if received.failed else 200)
