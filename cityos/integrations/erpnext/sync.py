"""Sending an order to ERPNext from the outbox (topic `erpnext.sync_order`): its customer, its submitted Sales
Invoice and Payment Entry, and a credit note per succeeded refund (domain/accounting/rules.py), canceled if the
refund fails later.

Each document is looked up by our id (`cityos_id`) before it is created, so a message sent twice (a retry after a
timeout, the catch-up job, a refund after the payment) makes each document once. As with Stripe's messages
(integrations/stripe/payments.py), the message is leased (committed) before the calls and no lock is held during
them; a failure retries with backoff, a permanent one (validation, credentials) or the last attempt is `dead`,
listed by `outboxMessages(status: DEAD)` and retried by `retryOutboxMessage`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.config import Settings
from cityos.db.engines import tenant_transaction
from cityos.domain.accounting import rules
from cityos.domain.accounting.service import TOPICS, OrderForAccounting, order_for_accounting
from cityos.domain.platform.outbox import MAX_ATTEMPTS, OUTBOX, backoff, claimable
from cityos.integrations.erpnext.client import ERPNextClient, ERPNextError

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)


def accounts_of(settings: Settings) -> rules.Accounts:
    return rules.Accounts(customer_group=settings.ERPNEXT_CUSTOMER_GROUP, territory=settings.ERPNEXT_TERRITORY,
                          tax_account=settings.ERPNEXT_TAX_ACCOUNT, shipping_account=settings.ERPNEXT_SHIPPING_ACCOUNT,
                          payment_account=settings.ERPNEXT_PAYMENT_ACCOUNT,
                          mode_of_payment=settings.ERPNEXT_MODE_OF_PAYMENT,
                          shipping_item=settings.ERPNEXT_SHIPPING_ITEM_CODE)


def erpnext_client(settings: Settings, http: object) -> ERPNextClient | None:
    if not (settings.ERPNEXT_URL and settings.ERPNEXT_API_KEY and settings.ERPNEXT_API_SECRET):
        return None
    return ERPNextClient(http, settings.ERPNEXT_URL, settings.ERPNEXT_API_KEY,  # type: ignore[arg-type]
                         settings.ERPNEXT_API_SECRET)


async def push_order(client: ERPNextClient, data: OrderForAccounting, accounts: rules.Accounts) -> str:
    order, on_account = data.order, data.invoice
    if data.company is not None:
        customer = await client.ensure("Customer", rules.company_customer_document(
            rules.company_key(order.tenant_id, data.company.id), data.company.legal_name, data.company.tax_id,
            accounts))
    else:
        key = rules.customer_key(order.tenant_id, order.customer_id, order.email)
        customer = await client.ensure("Customer", rules.customer_document(key, order.email, accounts))
    invoice_document = rules.invoice_document(order, data.lines, data.decimals, customer, accounts,
                                              due=on_account.due_at.date() if on_account is not None else None)
    invoice = await client.ensure("Sales Invoice", invoice_document)
    sent = f"customer {customer}, invoice {invoice}"
    if on_account is None:
        payment = await client.ensure("Payment Entry", rules.payment_document(order, data.decimals, customer,
                                                                              invoice, accounts))
        sent += f", payment {payment}"
    elif on_account.paid_at is not None:  # on account: the payment once the invoice is paid
        payment = await client.ensure("Payment Entry", rules.payment_document(
            order, data.decimals, customer, invoice, accounts,
            paid=(f"invoice:{on_account.id}", on_account.paid_at.date())))
        sent += f", payment {payment}"
    refunds = data.refunds
    if refunds and await client.find("Sales Invoice", [
            ["Sales Invoice", "cityos_id", "=", rules.legacy_note_key(order.id)],
            ["Sales Invoice", "docstatus", "=", 1]], ["name"], limit=1):
        # Refunded whole before notes were per refund: its old note credits the order already; a note per
        # refund besides would credit it twice.
        log.warning("order %s has a whole-order credit note (refund:%s): its %s refund(s) get no note of their own",
                    order.id, order.id, len(refunds))
        sent += f", {len(refunds)} refund(s) not credited again: the order has a whole-order credit note"
        refunds = []
    for refund, lines in refunds:  # one credit note per succeeded refund, whether it was partial or whole
        note = rules.refund_credit_note_document(
            invoice_document, invoice, refund.id,
            [rules.RefundedLine(line.sku, line.title, line.quantity, line.amount, line.tax_amount) for line in lines],
            refund.shipping_amount, data.decimals, accounts, datetime.now(UTC).date(),
            shipping_tax=rules.shipping_tax(refund.shipping_amount, order.shipping_total, order.tax_inclusive))
        if not rules.creditable(note):
            sent += f", refund {refund.id} not credited: nothing to credit"
            continue
        credit = await client.ensure("Sales Invoice", note)
        sent += f", credit note {credit}"
    for refund_id in data.withdrawn:  # a refund that failed after it succeeded: its note, if any, is canceled
        for note in await client.find("Sales Invoice", [["Sales Invoice", "cityos_id", "=", f"refund:{refund_id}"],
                                                        ["Sales Invoice", "docstatus", "=", 1]], ["name"], limit=1):
            await client.update("Sales Invoice", str(note["name"]), {"docstatus": 2})
            sent += f", credit note {note['name']} canceled"
    return sent


async def send_erpnext_message(engine: AsyncEngine, client: ERPNextClient, accounts: rules.Accounts,
                               tenant_id: uuid.UUID, message_id: uuid.UUID) -> str:
    """Send one due message: 'sent', 'retry', 'dead', or 'skipped' (not pending, not due, or leased)."""
    async with tenant_transaction(engine, tenant_id) as connection:
        message = (await connection.execute(claimable(message_id, TOPICS))).first()
        if message is None:
            return "skipped"
        await connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id)
                                 .values(next_attempt_at=func.now() + LEASE))
        data = await order_for_accounting(connection, uuid.UUID(message.payload["order_id"]))
    error: ERPNextError | None = None
    note = "nothing to account: the order was never paid"
    if data is not None:
        try:
            note = await push_order(client, data, accounts)
        except ERPNextError as failed:
            error = failed
    async with tenant_transaction(engine, tenant_id) as connection:
        attempts = message.attempts + 1
        if error is None:
            await connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id).values(
                status="sent", attempts=attempts, sent_at=func.now(), last_error=note[:1000]))
            return "sent"
        dead = attempts >= MAX_ATTEMPTS or not error.retryable
        log.warning("outbox %s %s failed (attempt %s%s): %s", message.topic, message.id, attempts,
                    ", dead" if dead else "", error)
        await connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id).values(
            attempts=attempts, last_error=str(error)[:1000], status="dead" if dead else "pending",
            next_attempt_at=datetime.now(UTC) + backoff(attempts)))
        return "dead" if dead else "retry"
