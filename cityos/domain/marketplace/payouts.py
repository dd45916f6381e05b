"""Vendor payouts: claiming each vendor's available balance, the transfer to its connected account, and the
payout's later state changes (Stripe Connect events: transfer created or reversed, the bank payout's outcome; the
connected account's capabilities).

Exactly once, in three steps (the job process-vendor-payouts schedules them):
1. In one transaction, lock the vendor (FOR UPDATE SKIP LOCKED: a second runner skips it), claim its available
   unpaid ledger entries, and write a `pending` payout linked to them. Commit.
2. Make the transfer (the `Transfers` port: Stripe `transfers.create`) with idempotency key = the payout's id.
3. Record the transfer (`paid`), or on a refusal mark the payout `failed` and delete its links so the entries
   are paid by the next run.
A runner killed between 2 and 3 leaves a `pending` payout without a transfer id; every run first finishes those
(step 2 again, same key — Stripe answers with the transfer it already made), so there is one transfer per payout.

Connect events can arrive late, twice or out of order: an account update older than the last one applied is
ignored (`vendor.stripe_synced_at`), a transfer event only moves a payout forward (a reversed payout is never made
paid again), and replays are stopped by the webhook inbox before they get here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import and_, delete, func, insert, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.db.engines import set_platform_scope, set_tenant, tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.marketplace.ledger import ACTIVE_PAYOUT, ENTRY, LINK, PAYOUT
from cityos.domain.marketplace.models import Vendor

VENDOR = table_of(Vendor)


@dataclass(frozen=True)
class TransferResult:
    transfer_id: str | None
    error: str | None
    retryable: bool = False


class Transfers(Protocol):
    """Money sent to a vendor's connected account (implemented by integrations/stripe/client.py). A refusal
    (e.g. balance_insufficient) is a result with its error, not an exception; a network or 5xx failure is
    retryable."""

    async def create_transfer(self, *, amount: int, currency: str, destination: str, transfer_group: str,
                              metadata: dict[str, str], idempotency_key: str) -> TransferResult: ...


AfterTransfer = Callable[[uuid.UUID, TransferResult], Awaitable[None]]


@asynccontextmanager
async def _scoped(engine: AsyncEngine, tenant_ids: Sequence[uuid.UUID] | None) -> AsyncIterator[AsyncConnection]:
    """One tenant's work runs in that tenant's scope (row-level security keeps it to the tenant, as the
    per-tenant scheduler runs it); several or all tenants' work is an explicit platform operation."""
    if tenant_ids is not None and len(tenant_ids) == 1:
        async with tenant_transaction(engine, tenant_ids[0]) as connection:
            yield connection
        return
    async with tenant_transaction(engine, None) as connection:
        await set_platform_scope(connection)
        yield connection


async def claim_payouts(engine: AsyncEngine, minimum: int,
                        tenant_ids: Sequence[uuid.UUID] | None = None) -> list[uuid.UUID]:
    """Step 1 for every payable vendor (of the given tenants, default all); returns the new payouts' ids."""
    created: list[uuid.UUID] = []
    async with _scoped(engine, tenant_ids) as connection:
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


@asynccontextmanager
async def _runner_of(engine: AsyncEngine, payout_id: uuid.UUID) -> AsyncIterator[bool]:
    """Whether this runner is the one working on the payout: a session advisory lock, so two runners never
    transfer the same payout at once, while no row stays locked during the call to Stripe (DESIGN §3)."""
    key = payout_id.int % 2**63
    async with engine.connect() as connection:
        mine = bool((await connection.execute(text("select pg_try_advisory_lock(:key)"), {"key": key})).scalar())
        await connection.commit()
        try:
            yield mine
        finally:
            if mine:
                await connection.execute(text("select pg_advisory_unlock(:key)"), {"key": key})
                await connection.commit()


async def transfer_payout(engine: AsyncEngine, transfers: Transfers, payout_id: uuid.UUID,
                          after_transfer: AfterTransfer | None = None, tenant_id: uuid.UUID | None = None) -> str:
    """Steps 2 and 3 for one pending payout; safe to repeat (same idempotency key). With `tenant_id`, in that
    tenant's scope (otherwise a platform operation). Read, then call Stripe with nothing locked, then record."""
    tenants = None if tenant_id is None else [tenant_id]
    async with _runner_of(engine, payout_id) as mine:
        if not mine:
            return "skipped"
        async with _scoped(engine, tenants) as connection:
            payout = (await connection.execute(select(PAYOUT).where(
                PAYOUT.c.id == payout_id, PAYOUT.c.status == "pending",
                PAYOUT.c.stripe_transfer_id.is_(None)))).first()
        if payout is None:
            return "skipped"
        result = await transfers.create_transfer(
            amount=payout.amount, currency=payout.currency_code, destination=payout.destination,
            transfer_group=f"payout-{payout.id}", metadata={"payout_id": str(payout.id),
                                                          "vendor_id": str(payout.vendor_id),
                                                          "tenant_id": str(payout.tenant_id)},
            idempotency_key=f"payout-{payout.id}")
        if after_transfer is not None:
            await after_transfer(payout.id, result)
        async with _scoped(engine, tenants) as connection:
            if result.transfer_id is not None:
                await connection.execute(update(PAYOUT).where(
                    PAYOUT.c.id == payout.id, PAYOUT.c.stripe_transfer_id.is_(None)).values(
                    status="paid", stripe_transfer_id=result.transfer_id, updated_at=func.now()))
                return "paid"
            if result.retryable:
                return "retry"  # still pending: the next run tries again with the same key
            await fail_payout(connection, payout.id, result.error or "refused")
            return "failed"


async def fail_payout(connection: AsyncConnection, payout_id: uuid.UUID, reason: str, status: str = "failed") -> None:
    """Mark a payout failed (or reversed) and release its ledger entries for the next run."""
    await connection.execute(update(PAYOUT).where(PAYOUT.c.id == payout_id).values(
        status=status, failure_reason=reason[:500], updated_at=func.now()))
    await connection.execute(delete(LINK).where(LINK.c.payout_id == payout_id))


async def unfinished_payouts(engine: AsyncEngine, tenant_ids: Sequence[uuid.UUID] | None = None) -> list[uuid.UUID]:
    async with _scoped(engine, tenant_ids) as connection:
        unfinished = select(PAYOUT.c.id).where(PAYOUT.c.status == "pending", PAYOUT.c.stripe_transfer_id.is_(None))
        if tenant_ids is not None:
            unfinished = unfinished.where(PAYOUT.c.tenant_id.in_(list(tenant_ids)))
        return list((await connection.execute(unfinished)).scalars())


async def vendor_of_account(connection: AsyncConnection, account: str | None) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(tenant, vendor) of a connected account; names the tenant of the transaction when found."""
    if not account:
        return None
    row = (await connection.execute(text("select tenant_id, vendor_id from cityos_vendor_by_stripe_account(:a)"),
                                    {"a": account})).first()
    if row is None:
        return None
    await set_tenant(connection, row.tenant_id)
    return row.tenant_id, row.vendor_id


async def update_account(connection: AsyncConnection, vendor_id: uuid.UUID, *, charges_enabled: bool,
                         payouts_enabled: bool, details_submitted: bool, requirements: dict[str, Any],
                         synced_at: int) -> bool:
    """The connected account's capabilities as of `synced_at` (the event's time); False when an update at least
    as recent was applied already."""
    result = await connection.execute(update(VENDOR).where(
        VENDOR.c.id == vendor_id, (VENDOR.c.stripe_synced_at.is_(None)) | (VENDOR.c.stripe_synced_at <= synced_at))
        .values(charges_enabled=charges_enabled, payouts_enabled=payouts_enabled,
                details_submitted=details_submitted, requirements=requirements,
                stripe_synced_at=synced_at, updated_at=func.now()))
    return bool(result.rowcount)


async def payout_of_transfer(connection: AsyncConnection, tenant_id: uuid.UUID | None,
                             payout_id: uuid.UUID | None) -> Row[Any] | None:
    """The payout a transfer was made for, locked; names its tenant in the transaction."""
    if tenant_id is not None:
        await set_tenant(connection, tenant_id)
    if payout_id is None:
        return None
    return (await connection.execute(select(PAYOUT).where(PAYOUT.c.id == payout_id).with_for_update())).first()


async def transfer_created(connection: AsyncConnection, payout: Row[Any], transfer_id: str) -> str:
    if payout.status != "pending":
        return f"ignored: payout already {payout.status}"
    await connection.execute(update(PAYOUT).where(PAYOUT.c.id == payout.id).values(
        status="paid", stripe_transfer_id=transfer_id, updated_at=func.now()))
    return "payout paid"


async def transfer_reversed(connection: AsyncConnection, payout: Row[Any], transfer_id: str) -> str:
    if payout.status == "reversed":
        return "ignored: already reversed"
    if payout.stripe_transfer_id is None:
        await connection.execute(update(PAYOUT).where(PAYOUT.c.id == payout.id).values(
            stripe_transfer_id=transfer_id))
    await fail_payout(connection, payout.id, "the transfer was reversed", status="reversed")
    return "payout reversed; its entries are released"


async def record_bank_payout(connection: AsyncConnection, vendor_id: uuid.UUID, status: str,
                             reason: str | None) -> str:
    """The outcome of the connected account's payout to the vendor's bank, recorded on the vendor's latest paid
    payout."""
    latest = (await connection.execute(select(PAYOUT.c.id).where(PAYOUT.c.vendor_id == vendor_id,
                                                                 PAYOUT.c.status == "paid")
                                       .order_by(PAYOUT.c.created_at.desc()).limit(1))).scalar()
    if latest is None:
        return "ignored: no payout to attach it to"
    values: dict[str, Any] = {"bank_payout_status": status, "updated_at": func.now()}
    if reason:
        values["failure_reason"] = reason[:500]
    await connection.execute(update(PAYOUT).where(PAYOUT.c.id == latest).values(**values))
    return f"bank payout {status}"
