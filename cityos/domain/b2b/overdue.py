"""Overdue invoices (the mark-overdue-invoices job, tenant by tenant): an open invoice on account past its due date
becomes `overdue` — its company is on credit hold (no new order on account, CREDIT_HOLD, until it is paid) — and
the company's admins get a `b2b.invoice_overdue` outbox message when it becomes overdue and every
rules.REMINDER_EVERY_DAYS days after, until it is paid. The message carries everything a mailer needs (who to
write to, the company, the invoice, its amount and due date); a notifier sends it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import tenant_transaction
from cityos.domain.b2b import rules
from cityos.domain.b2b.models import CompanyRole, CompanyUserStatus, InvoiceStatus
from cityos.domain.b2b.service import COMPANY, COMPANY_USER, INVOICE
from cityos.domain.platform.outbox import enqueue

REMINDER_TOPIC = "b2b.invoice_overdue"


async def mark_overdue_invoices(engine: AsyncEngine, tenant_id: uuid.UUID, now: datetime) -> dict[str, int]:
    """Idempotent at a given moment: a second run marks nothing and reminds no one again."""
    async with tenant_transaction(engine, tenant_id) as connection:
        marked = (await connection.execute(update(INVOICE).where(
            INVOICE.c.tenant_id == tenant_id, INVOICE.c.status == InvoiceStatus.OPEN.value, INVOICE.c.due_at <= now)
            .values(status=InvoiceStatus.OVERDUE.value, overdue_at=now, updated_at=func.now())
            .returning(INVOICE.c.id))).scalars().all()
        cutoff = now - timedelta(days=rules.REMINDER_EVERY_DAYS)
        due = (await connection.execute(select(INVOICE, COMPANY.c.legal_name).join(COMPANY, (
            COMPANY.c.tenant_id == INVOICE.c.tenant_id) & (COMPANY.c.id == INVOICE.c.company_id)).where(
            INVOICE.c.tenant_id == tenant_id, INVOICE.c.status == InvoiceStatus.OVERDUE.value,
            or_(INVOICE.c.reminded_at.is_(None), INVOICE.c.reminded_at <= cutoff))
            .order_by(INVOICE.c.due_at, INVOICE.c.id).with_for_update(of=INVOICE, skip_locked=True))).all()
        reminded = 0
        for invoice in due:
            if not rules.reminder_due(invoice.reminded_at, now):
                continue
            admins = (await connection.execute(select(COMPANY_USER.c.email).where(
                COMPANY_USER.c.company_id == invoice.company_id,
                COMPANY_USER.c.role == CompanyRole.COMPANY_ADMIN.value,
                COMPANY_USER.c.status == CompanyUserStatus.ACTIVE.value).order_by(COMPANY_USER.c.email))).scalars()
            await enqueue(connection, tenant_id=tenant_id, topic=REMINDER_TOPIC, payload=_reminder(
                invoice, sorted(set(admins)), now))
            await connection.execute(update(INVOICE).where(INVOICE.c.id == invoice.id).values(
                reminded_at=now, updated_at=func.now()))
            reminded += 1
    return {"overdue": len(marked), "reminded": reminded}


def _reminder(invoice: Any, to: list[str], now: datetime) -> dict[str, Any]:
    return {"kind": "invoice_overdue", "to": to, "company_id": str(invoice.company_id),
            "company_name": invoice.legal_name, "invoice_id": str(invoice.id), "order_id": str(invoice.order_id),
            "amount": invoice.amount, "currency_code": invoice.currency_code, "due_at": invoice.due_at.isoformat(),
            "days_overdue": (now - invoice.due_at).days, "payment_terms": invoice.payment_terms}
