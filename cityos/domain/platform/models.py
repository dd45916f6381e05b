"""The audit log: who did what to which object, for platform (cross-tenant) operations and admin changes."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from cityos.domain.base import Base, new_id, one_of


class AuditLog(Base):
    __tablename__ = "audit_log"
    """Append-only (the app role may insert and read, never update or delete). Rows are written by the trigger
    `cityos_audit` on every audited table when a mutation's transaction named its actor (db/audit.py), so every
    admin or vendor change is recorded in the same transaction with its before/after values; platform operations
    write theirs explicitly (domain/platform/service.py)."""

    __table_args__ = (Index("ix_audit_log_tenant_created", "tenant_id", "created_at"),
                      Index("ix_audit_log_tenant_target", "tenant_id", "target_kind", "target_id", "created_at"),
                      Index("ix_audit_log_tenant_actor", "tenant_id", "actor", "created_at"))

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # null: platform-wide
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(100), nullable=False)
    target_kind: Mapped[str] = mapped_column(String(50), nullable=False)
    target_id: Mapped[str] = mapped_column(String(100), nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    operation: Mapped[str | None] = mapped_column(String(10))  # insert | update | delete of the row (triggers)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # the changed fields' old values
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # … and new values
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


WEBHOOK_STATUSES = ("processed", "ignored", "refused", "failed")


class WebhookInbox(Base):
    """Every verified webhook event, keyed by the provider's event id: a replayed event is a no-op, unless its
    handling failed (Stripe's retry, or an admin's replay, processes it again). `tenant_id` is the tenant the
    event turned out to concern (null while unknown); refused and failed events are listed to its admins."""

    __tablename__ = "webhook_inbox"
    __table_args__ = (
        UniqueConstraint("provider", "event_id"),
        CheckConstraint("status in ({})".format(", ".join(f"'{s}'" for s in WEBHOOK_STATUSES)), name="status"),
        Index("ix_webhook_inbox_tenant_status", "tenant_id", "status", "received_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(30), nullable=False)
    event_id: Mapped[str] = mapped_column(String(200), nullable=False)
    event_type: Mapped[str] = mapped_column(String(100), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(String(1000))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="processed")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")


class ConnectStateUse(Base):
    """Nonces of Stripe Connect OAuth `state` values already redeemed: a state works once."""

    __tablename__ = "connect_state_use"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for the dispatcher (again, after a failed attempt)
    SENT = "sent"
    DEAD = "dead"  # gave up after the last retry
    SKIPPED = "skipped"  # not sent on purpose (a customer notice while no mail server is configured); kept, retryable


class Outbox(Base):
    """Calls out (Fleetbase, ERPNext, Payload) written in the business transaction and sent by the dispatcher
    with bounded retries and backoff; `dead` after too many failures (visible in metrics and to admins)."""

    __tablename__ = "outbox"
    __table_args__ = (
        one_of(OutboxStatus),
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_tenant", "tenant_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    topic: Mapped[str] = mapped_column(String(100), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                      nullable=False)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobOutcome(StrEnum):
    RUNNING = "running"  # claimed and started; not finished (yet, or its runner died)
    OK = "ok"
    FAILED = "failed"  # raised, or (per-tenant jobs) failed for at least one tenant
    TIMEOUT = "timeout"  # did not finish within the job's timeout


class JobRun(Base):
    """One run of a scheduled job. The run of a due tick is claimed by inserting its row (job, scheduled_for,
    tenant_id null): the partial unique index lets one scheduler replica win, so each tick runs once. A per-tenant
    job also records one row per tenant (tenant_id set), which the tenant's admins see (row-level security); the
    run row itself (tenant_id null) is visible in platform scope only."""

    __tablename__ = "job_run"
    __table_args__ = (
        one_of(JobOutcome, "outcome"),
        Index("uq_job_run_job_scheduled_for", "job", "scheduled_for", unique=True,
              postgresql_where=text("tenant_id is null")),
        Index("uq_job_run_job_scheduled_for_tenant", "job", "scheduled_for", "tenant_id", unique=True,
              postgresql_where=text("tenant_id is not null")),
        Index("ix_job_run_tenant_started", "tenant_id", "started_at"),
        Index("ix_job_run_job_started", "job", "started_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    job: Mapped[str] = mapped_column(String(100), nullable=False)
    scheduled_for: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # null: the run as a whole
    trigger: Mapped[str] = mapped_column(String(20), nullable=False, server_default="schedule")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(20), nullable=False, server_default=JobOutcome.RUNNING.value)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    error: Mapped[str | None] = mapped_column(String(4000))
