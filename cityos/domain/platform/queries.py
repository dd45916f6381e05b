"""Platform reads: the audit log, the outbox and the webhook inbox (newest first, by status), one message or
event by id. The caller adds the authorization clause and pages the listings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, false, select

from cityos.domain.base import table_of
from cityos.domain.kernel import Listing, SortKey
from cityos.domain.platform.models import AuditLog, Outbox, WebhookInbox

OUTBOX = table_of(Outbox)
WEBHOOK = table_of(WebhookInbox)
AUDIT = table_of(AuditLog)


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


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    target_kind: str | None = None
    target_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_entries(*scope: ColumnElement[bool], tenant_id: uuid.UUID, filters: AuditFilter) -> Listing:
    """The tenant's audit entries, newest first (always its own: platform-wide entries have no tenant)."""
    statement = select(AUDIT).where(*scope, AUDIT.c.tenant_id == tenant_id)
    for column, value in ((AUDIT.c.actor, filters.actor), (AUDIT.c.target_kind, filters.target_kind),
                          (AUDIT.c.target_id, filters.target_id), (AUDIT.c.action, filters.action)):
        if value is not None:
            statement = statement.where(column == value)
    if filters.since is not None:
        statement = statement.where(AUDIT.c.created_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(AUDIT.c.created_at < filters.until)
    return Listing(statement, [SortKey(AUDIT.c.created_at, True), SortKey(AUDIT.c.id, True)])
