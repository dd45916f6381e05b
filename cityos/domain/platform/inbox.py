"""The webhook inbox: every verified incoming event (Stripe, Fleetbase, and any later provider) is recorded here,
keyed by (provider, event id), in the same transaction that handles it.

- A repeated event id is a duplicate (a no-op answered with the recorded outcome), unless its handling failed
  before (the provider's retry processes it again) or an admin replays it (`replay`); each new try counts an
  attempt.
- A business refusal (an ApiError raised by the handler, or an outcome starting with "refused") is kept with its
  reason: status refused, acknowledged to the provider (no retry). An outcome starting with "ignored" is ignored.
- An unexpected error rolls the handling back and records the event as failed, with the reason and the attempt,
  so the provider retries it and the tenant's admins see it (`webhookEvents`) and can replay it.
- The tenant: given by the caller (read from the payload, or the tenant a replayed event was attributed to), or
  resolved in the transaction by the provider's `resolve_tenant` hook before the handling; failing that, the
  tenant the handling named (`cityos_current_tenant()`). An event of no known tenant belongs to no tenant's admins.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.db.engines import set_tenant, tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.platform.models import WebhookInbox
from cityos.errors import ApiError

log = logging.getLogger(__name__)
INBOX = table_of(WebhookInbox)
REASON_LENGTH = 1000

Handler = Callable[[AsyncConnection], Awaitable[str]]
TenantResolver = Callable[[AsyncConnection], Awaitable[uuid.UUID | None]]


@dataclass(frozen=True)
class IncomingEvent:
    """A verified, parsed webhook event: who sent it, its id and type there, and the payload as received."""

    provider: str
    event_id: str
    event_type: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Received:
    """How an event ended: processed / ignored / refused / failed (the provider retries a failed one), or a
    duplicate of one already handled. `tenant_id`: the tenant it was attributed to, when known."""

    status: str
    outcome: str
    duplicate: bool = False
    tenant_id: uuid.UUID | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def answer(self) -> dict[str, Any]:
        """The JSON body that acknowledges the delivery (a failed one: the error, answered with a 5xx)."""
        if self.failed:
            return {"error": self.outcome}
        if self.duplicate:
            return {"received": True, "duplicate": True, "outcome": self.outcome}
        return {"received": True, "outcome": self.outcome}


def status_of(outcome: str) -> str:
    return "refused" if outcome.startswith("refused") else "ignored" if outcome.startswith("ignored") else "processed"


async def receive(engine: AsyncEngine, event: IncomingEvent, handle: Handler | None, *,
                  tenant_id: uuid.UUID | None = None, resolve_tenant: TenantResolver | None = None,
                  replay: bool = False, on_refusal: Callable[[], object] | None = None) -> Received:
    """Record the event in the inbox and handle it (`handle`, None: an unhandled type), in one transaction.

    `on_refusal` undoes what the handler gathered for after the commit (live events, calls to make) when it
    refuses the event: its changes are rolled back to a savepoint and the refusal is recorded instead."""
    tenant = tenant_id
    try:
        async with tenant_transaction(engine, tenant) as connection:
            if tenant is None and resolve_tenant is not None:
                tenant = await resolve_tenant(connection)
                if tenant is not None:
                    await set_tenant(connection, tenant)
            recorded = (await connection.execute(insert(INBOX).values(
                id=uuid.uuid4(), provider=event.provider, event_id=event.event_id, event_type=event.event_type,
                payload=event.payload, tenant_id=tenant, status="processed",
            ).on_conflict_do_nothing(index_elements=["provider", "event_id"]).returning(INBOX.c.id))).first()
            if recorded is None:
                existing = (await connection.execute(select(INBOX).where(
                    INBOX.c.provider == event.provider, INBOX.c.event_id == event.event_id).with_for_update())).one()
                if existing.status != "failed" and not replay:
                    return Received(existing.status, existing.error or "already processed", duplicate=True,
                                    tenant_id=existing.tenant_id)
                await connection.execute(update(INBOX).where(INBOX.c.id == existing.id).values(
                    attempts=INBOX.c.attempts + 1))
                inbox_id = existing.id
            else:
                inbox_id = recorded.id
            outcome = "ignored: unhandled type"
            if handle is not None:
                try:
                    async with connection.begin_nested():
                        outcome = await handle(connection)
                except ApiError as error:  # a business refusal: keep the event and the reason, do not retry
                    if on_refusal is not None:
                        on_refusal()
                    outcome = f"refused: {error.extensions.get('code')}: {error.message}"
                    log.warning("%s event %s: %s", event.provider, event.event_id, outcome)
            status = status_of(outcome)
            attributed = (await connection.execute(update(INBOX).where(INBOX.c.id == inbox_id).values(
                processed_at=func.now(), status=status, error=outcome[:REASON_LENGTH] if status == "refused" else None,
                tenant_id=func.coalesce(INBOX.c.tenant_id, func.cityos_current_tenant()))
                .returning(INBOX.c.tenant_id))).scalar()
    except Exception as error:
        log.exception("%s event %s failed; the provider will retry", event.provider, event.event_id)
        await record_failure(engine, event, tenant, f"failed: {type(error).__name__}", rolled_back=True)
        return Received("failed", "processing failed", tenant_id=tenant)
    return Received(status, outcome, tenant_id=attributed)


async def record_failure(engine: AsyncEngine, event: IncomingEvent, tenant_id: uuid.UUID | None, reason: str, *,
                         rolled_back: bool = False) -> None:
    """Keep a failed event visible (to the tenant's admins, with a replay) even though its handling rolled back
    (`rolled_back`: the attempt was not counted yet), or failed after its commit (what it still owes)."""
    try:
        async with tenant_transaction(engine, tenant_id) as connection:
            statement = insert(INBOX).values(
                id=uuid.uuid4(), provider=event.provider, event_id=event.event_id, event_type=event.event_type,
                payload=event.payload, tenant_id=tenant_id, status="failed", error=reason[:REASON_LENGTH])
            await connection.execute(statement.on_conflict_do_update(
                index_elements=["provider", "event_id"],
                set_={"status": "failed", "error": reason[:REASON_LENGTH], "processed_at": None,
                      "attempts": INBOX.c.attempts + (1 if rolled_back else 0)}))
    except Exception:
        log.exception("%s event %s: could not record the failure", event.provider, event.event_id)
