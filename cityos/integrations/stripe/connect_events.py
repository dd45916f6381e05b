"""Stripe Connect webhook events: account capabilities, transfers and the connected accounts' bank payouts.

Events can arrive late, twice or out of order: an account update older than the last one applied is ignored
(`vendor.stripe_synced_at`), a transfer event only moves a payout forward (a reversed payout is never made paid
again), and replays are stopped by the inbox before they get here. There is no `transfer.failed` event since
Stripe's 2017 transfer/payout split: a refused transfer is seen as the API error of `transfers.create` (see
jobs/payouts.py), a later failure as `transfer.reversed`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.db.engines import set_tenant
from cityos.domain.base import table_of
from cityos.domain.marketplace.ledger import PAYOUT
from cityos.domain.marketplace.models import Vendor
from cityos.jobs.payouts import fail_payout

VENDOR = table_of(Vendor)


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


async def account_updated(connection: AsyncConnection, account: dict[str, Any], event: dict[str, Any]) -> str:
    found = await vendor_of_account(connection, account.get("id"))
    if found is None:
        return "ignored: unknown account"
    created = int(event.get("created") or 0)
    requirements = account.get("requirements") or {}
    result = await connection.execute(update(VENDOR).where(
        VENDOR.c.id == found[1], (VENDOR.c.stripe_synced_at.is_(None)) | (VENDOR.c.stripe_synced_at <= created))
        .values(charges_enabled=bool(account.get("charges_enabled")),
                payouts_enabled=bool(account.get("payouts_enabled")),
                details_submitted=bool(account.get("details_submitted")),
                requirements={key: requirements.get(key) for key in (
                    "currently_due", "eventually_due", "past_due", "disabled_reason", "errors")},
                stripe_synced_at=created, updated_at=func.now()))
    return "capabilities updated" if result.rowcount else "ignored: older than the last update"


async def _payout_of_transfer(connection: AsyncConnection, transfer: dict[str, Any]) -> Any:
    metadata = transfer.get("metadata") or {}
    tenant = metadata.get("tenant_id")
    if tenant:
        await set_tenant(connection, uuid.UUID(tenant))
    payout_id = metadata.get("payout_id")
    if not payout_id:
        return None
    return (await connection.execute(select(PAYOUT).where(PAYOUT.c.id == uuid.UUID(payout_id))
                                     .with_for_update())).first()


async def transfer_created(connection: AsyncConnection, transfer: dict[str, Any], _event: dict[str, Any]) -> str:
    payout = await _payout_of_transfer(connection, transfer)
    if payout is None:
        return "ignored: not a payout transfer"
    if payout.status != "pending":
        return f"ignored: payout already {payout.status}"
    await connection.execute(update(PAYOUT).where(PAYOUT.c.id == payout.id).values(
        status="paid", stripe_transfer_id=transfer["id"], updated_at=func.now()))
    return "payout paid"


async def transfer_reversed(connection: AsyncConnection, transfer: dict[str, Any], _event: dict[str, Any]) -> str:
    payout = await _payout_of_transfer(connection, transfer)
    if payout is None:
        return "ignored: not a payout transfer"
    if payout.status == "reversed":
        return "ignored: already reversed"
    if payout.stripe_transfer_id is None:
        await connection.execute(update(PAYOUT).where(PAYOUT.c.id == payout.id).values(
            stripe_transfer_id=transfer["id"]))
    await fail_payout(connection, payout.id, "the transfer was reversed", status="reversed")
    return "payout reversed; its entries are released"


async def bank_payout(connection: AsyncConnection, payout: dict[str, Any], event: dict[str, Any]) -> str:
    """payout.paid / payout.failed happen on the connected account (Stripe → the vendor's bank): recorded on the
    vendor's latest paid payout."""
    found = await vendor_of_account(connection, event.get("account"))
    if found is None:
        return "ignored: not a connected account of ours"
    latest = (await connection.execute(select(PAYOUT.c.id).where(PAYOUT.c.vendor_id == found[1],
                                                                 PAYOUT.c.status == "paid")
                                       .order_by(PAYOUT.c.created_at.desc()).limit(1))).scalar()
    if latest is None:
        return "ignored: no payout to attach it to"
    status = str(payout.get("status") or event["type"].split(".")[1])
    reason = payout.get("failure_message") or payout.get("failure_code")
    values: dict[str, Any] = {"bank_payout_status": status, "updated_at": func.now()}
    if reason:
        values["failure_reason"] = str(reason)[:500]
    await connection.execute(update(PAYOUT).where(PAYOUT.c.id == latest).values(**values))
    return f"bank payout {status}"
