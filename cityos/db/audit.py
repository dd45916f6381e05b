"""Who is changing the database, for the audit log.

Every audited table has the trigger `cityos_audit` (migration 0016): for each row a transaction inserts, updates
or deletes, it writes an audit_log entry with the changed fields' before and after values — when the transaction
named its actor. A mutation's savepoint names it (db/request.py: the request's principal, the GraphQL mutation
field as the action, the request id), so every admin and vendor mutation is audited in its own transaction by
construction; work that runs in transactions of its own on a caller's behalf (a refund's Stripe steps) names the
same actor with `name_actor`. Webhooks and jobs name none: their changes are recorded where they happen (the
webhook inbox, job runs).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

ACTOR_LENGTH = 200


@dataclass(frozen=True)
class AuditActor:
    """Who acts (the token's subject) and the request it came with."""

    actor: str
    request_id: str | None = None


async def name_actor(connection: AsyncConnection, actor: AuditActor | None, action: str | None) -> None:
    """Name the actor and action of the changes this transaction makes next (until it ends)."""
    if actor is None:
        return
    await connection.execute(text(
        "select set_config('cityos.audit_actor', :actor, true), set_config('cityos.audit_action', :action, true), "
        "set_config('cityos.audit_request_id', :request, true)"),
        {"actor": actor.actor[:ACTOR_LENGTH], "action": (action or "")[:100], "request": actor.request_id or ""})
