"""Platform reads: the outbox and the webhook inbox (newest first, by status), one message or event by id. The
caller adds the authorization clause and pages the listings."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, false, select

from cityos.domain.base import table_of
from cityos.domain.kernel import Listing, SortKey
from cityos.domain.platform.models import Outbox, WebhookInbox

OUTBOX = table_of(Outbox)
WEBHOOK = table_of(WebhookInbox)


def webhooks_of_tenant(tenant_id: uuid.UUID | None) -> ColumnElement[bool]:
    """Always explicit: the inbox also holds events whose tenant is unknown (tenant_id null), which RLS lets
    every transaction see; they belong to no tenant's admins."""
    return WEBHOOK.c.tenant_id == tenant_id if tenant_id is not None else false()


def outbox_messages(*scope: ColumnElement[bool], status: str | None) -> Listing:
    statement = select(OUTBOX).where(*scope)
    if status is not None:
        statement = statement.where(OUTBOX.c.status == status)
    return Listing(statement, [SortKey(OUTBOX.c.created_at, True), SortKey(OUTBOX.c.id, True)])


def outbox_message(*scope: ColumnElement[bool], message_id: uuid.UUID) -> Select[Any]:
    return select(OUTBOX).where(OUTBOX.c.id == message_id, *scope)


def webhook_events(*scope: ColumnElement[bool], tenant_id: uuid.UUID | None, status: str | None) -> Listing:
    statement = select(WEBHOOK).where(*scope, webhooks_of_tenant(tenant_id))
    if status is not None:
        statement = statement.where(WEBHOOK.c.status == status)
    return Listing(statement, [SortKey(WEBHOOK.c.received_at, True), SortKey(WEBHOOK.c.id, True)])


def webhook_event(event_id: uuid.UUID, tenant_id: uuid.UUID | None) -> Select[Any]:
    return select(WEBHOOK).where(WEBHOOK.c.id == event_id, webhooks_of_tenant(tenant_id))
