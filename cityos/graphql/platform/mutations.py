"""Platform mutations: retry an outbox message, replay a webhook event."""

from __future__ import annotations

import strawberry

from cityos.domain.platform import queries as platform
from cityos.domain.platform.outbox import retry_message
from cityos.domain.platform.service import audit
from cityos.errors import BadUserInput, NotFound
from cityos.graphql.commerce.types import (
    OUTBOX_TABLE,
    OutboxMessage,
    WebhookEvent,
)
from cityos.graphql.core.context import Info
from cityos.graphql.core.loaders import in_tenant
from cityos.graphql.core.relay import (
    from_global_id,
)
from cityos.graphql.platform.arguments import OutboxIdArg, WebhookEventId
from cityos.integrations.replay import replay_event


@strawberry.type
class OutboxMutation:
    @strawberry.mutation(description="Send a dead (or pending) outbox message again on the next dispatcher run.")
    async def retry_outbox_message(self, info: Info, id: OutboxIdArg) -> OutboxMessage:
        _, local_id = from_global_id(id, "OutboxMessage")
        row = (await info.context.db.execute(platform.outbox_message(
            *in_tenant(info.context.db, OUTBOX_TABLE), message_id=local_id))).first()
        if row is None:
            raise NotFound("no outbox message with that id")
        await info.context.authz.require(OutboxMessage.from_row(row).resource(), "retry")
        if row.status == "sent":
            raise BadUserInput("this message was sent", field="id")
        updated = await info.context.db.mutate(lambda connection: retry_message(connection, local_id))
        return OutboxMessage.from_row(updated)

    @strawberry.mutation(description="Handle a refused or failed webhook event again (e.g. after Stripe was "
                                     "unreachable or its key was fixed): the same handling as a delivery, "
                                     "idempotent (a settled payment is never settled twice).")
    async def replay_webhook_event(self, info: Info, id: WebhookEventId) -> WebhookEvent:
        _, local_id = from_global_id(id, "WebhookEvent")
        statement = platform.webhook_event(local_id, info.context.db.tenant_id)
        row = (await info.context.db.execute(statement)).first()
        if row is None:
            raise NotFound("no webhook event with that id")
        await info.context.authz.require(WebhookEvent.from_row(row).resource(), "replay")
        if row.status not in ("refused", "failed"):
            raise BadUserInput(f"this event was {row.status}; only refused or failed events are replayed",
                               field="id")
        # Its own transactions, like a delivery (the refund it may send is made with no lock held).
        await replay_event(info.context.services, row.provider, row.payload, row.tenant_id)
        replayed = (await info.context.db.execute(statement)).one()
        actor = info.context.db.audit_actor
        await info.context.db.mutate(lambda connection: audit(
            connection, tenant_id=row.tenant_id, actor=actor.actor if actor else "anonymous",
            action=info.context.db.action or "replayWebhookEvent", target_kind="webhook_inbox", target_id=row.id,
            request_id=actor.request_id if actor else None, event_id=row.event_id, status=replayed.status))
        return WebhookEvent.from_row(replayed)


