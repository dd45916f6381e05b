"""process-vendor-payouts (daily at 02:00): pay each vendor its available balance through a Stripe transfer.

Exactly once, in three steps:
1. In one transaction, lock the vendor (FOR UPDATE SKIP LOCKED: a second runner skips it), claim its available
   unpaid ledger entries, and write a `pending` payout linked to them. Commit.
2. Call Stripe `transfers.create` with idempotency key = the payout's id.
3. Record the transfer (`paid`), or on a refusal mark the payout `failed` and delete its links so the entries
   are paid by the next run.
A runner killed between 2 and 3 leaves a `pending` payout without a transfer id; every run first finishes those
(step 2 again, same key — Stripe answers with the transfer it already made), so there is one transfer per payout.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import set_platform_scope, tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.marketplace.ledger import ACTIVE_PAYOUT, ENTRY, LINK, PAYOUT
from cityos.domain.marketplace.models import Vendor
from cityos.integrations.stripe.client import TransferResult, create_transfer

VENDOR = table_of(Vendor)
AfterTransfer = Callable[[uuid.UUID, TransferResult], Awaitable[None]]


async def claim_payouts(engine: AsyncEngine, minimum: int,
                        tenant_ids: Sequence[uuid.UUID] | None = None) -> list[uuid.UUID]:
    """Step 1 for every payable vendor (of the given tenants, default all); returns the new payouts' ids."""
    created: list[uuid.UUID] = []
    async with tenant_transaction(engine, None) as connection:
        await set_platform_scope(connection)
        payable = select(VENDOR).where(VENDOR.c.status == "active", VENDOR.c.payouts_enabled,
                                       VENDOR.c.stripe_account_id.is_not(None))
        if tenant_ids is not None:
            payable = payable.where(VENDOR.c.tenant_id.in_(list(tenant_ids)))
        vendors = (await connection.execute(payable.with_for_update(skip_locked=True))).all()
        active = select(LINK.c.transaction_id).join(PAYOUT, and_(PAYOUT.c.tenant_id == LINK.c.tenant_id,
                                                                 PAYOUT.c.id == LINK.c.payout_id)).where(
            PAYOUT.c.status.in_(ACTIVE_PAYOUT))
        for vendor in vendors:
            entries = (await connection.execute(select(ENTRY.c.id, ENTRY.c.vendor_amount, ENTRY.c.currency_code).where(
                ENTRY.c.vendor_id == vendor.id, ENTRY.c.available_at <= func.now(), ENTRY.c.id.not_in(active))
                .with_for_update(skip_locked=True))).all()
            by_currency: dict[str, list[Any]] = {}
            for entry in entries:
                by_currency.setdefault(entry.currency_code, []).append(entry)
            for currency, group in by_currency.items():
                amount = sum(entry.vendor_amount for entry in group)
                if amount < (vendor.payout_minimum or minimum):
                    continue
                payout_id = uuid.uuid4()
                await connection.execute(insert(PAYOUT).values(
                    tenant_id=vendor.tenant_id, id=payout_id, vendor_id=vendor.id, amount=amount,
                    currency_code=currency, status="pending", destination=vendor.stripe_account_id))
                await connection.execute(insert(LINK), [{"tenant_id": vendor.tenant_id, "payout_id": payout_id,
                                                         "transaction_id": entry.id} for entry in group])
                created.append(payout_id)
    return created


async def transfer_payout(engine: AsyncEngine, stripe_client: Any, payout_id: uuid.UUID,
                          after_transfer: AfterTransfer | None = None) -> str:
    """Steps 2 and 3 for one pending payout; safe to repeat (same idempotency key)."""
    async with tenant_transaction(engine, None) as connection:
        await set_platform_scope(connection)
        payout = (await connection.execute(select(PAYOUT).where(
            PAYOUT.c.id == payout_id, PAYOUT.c.status == "pending", PAYOUT.c.stripe_transfer_id.is_(None))
            .with_for_update(skip_locked=True))).first()
        if payout is None:
            return "skipped"
        result = await create_transfer(
            stripe_client, amount=payout.amount, currency=payout.currency_code, destination=payout.destination,
            transfer_group=f"payout-{payout.id}", metadata={"payout_id": str(payout.id),
                                                          "vendor_id": str(payout.vendor_id),
                                                          "tenant_id": str(payout.tenant_id)},
            idempotency_key=f"payout-{payout.id}")
        if after_transfer is not None:
            await after_transfer(payout.id, result)
        if result.transfer_id is not None:
            await connection.execute(update(PAYOUT).where(PAYOUT.c.id == payout.id).values(
                status="paid", stripe_transfer_id=result.transfer_id, updated_at=func.now()))
            return "paid"
        if result.retryable:
            return "retry"  # still pending: the next run tries again with the same key
        await fail_payout(connection, payout.id, result.error or "refused")
        return "failed"


async def fail_payout(connection: Any, payout_id: uuid.UUID, reason: str, status: str = "failed") -> None:
    """Mark a payout failed (or reversed) and release its ledger entries for the next run."""
    await connection.execute(update(PAYOUT).where(PAYOUT.c.id == payout_id).values(
        status=status, failure_reason=reason[:500], updated_at=func.now()))
    await connection.execute(delete(LINK).where(LINK.c.payout_id == payout_id))


async def unfinished_payouts(engine: AsyncEngine, tenant_ids: Sequence[uuid.UUID] | None = None) -> list[uuid.UUID]:
    async with tenant_transaction(engine, None) as connection:
        await set_platform_scope(connection)
        unfinished = select(PAYOUT.c.id).where(PAYOUT.c.status == "pending", PAYOUT.c.stripe_transfer_id.is_(None))
        if tenant_ids is not None:
            unfinished = unfinished.where(PAYOUT.c.tenant_id.in_(list(tenant_ids)))
        return list((await connection.execute(unfinished)).scalars())


async def process_vendor_payouts(engine: AsyncEngine, stripe_client: Any, minimum: int,
                                 tenant_ids: Sequence[uuid.UUID] | None = None,
                                 after_transfer: AfterTransfer | None = None) -> str:
    """The whole job; `tenant_ids` limits it to some tenants (default: every tenant)."""
    outcomes: dict[str, int] = {}
    recovered = await unfinished_payouts(engine, tenant_ids)
    created = await claim_payouts(engine, minimum, tenant_ids)
    for payout_id in dict.fromkeys([*recovered, *created]):
        outcome = await transfer_payout(engine, stripe_client, payout_id, after_transfer)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())) or "nothing to pay"
    return f"{len(created)} new payout(s); {summary}"
