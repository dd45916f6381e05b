"""Stripe Connect webhook events: account capabilities, transfers and the connected accounts' bank payouts,
parsed here and recorded by the domain (domain/marketplace/payouts.py: late, repeated and reordered events change
nothing). There is no `transfer.failed` event since Stripe's 2017 transfer/payout split: a refused transfer is
seen as the API error of `transfers.create` (see domain/marketplace/payouts.py), a later failure as
`transfer.reversed`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.marketplace import payouts

REQUIREMENTS = ("currently_due", "eventually_due", "past_due", "disabled_reason", "errors")


async def account_updated(connection: AsyncConnection, account: dict[str, Any], event: dict[str, Any]) -> str:
    found = await payouts.vendor_of_account(connection, account.get("id"))
    if found is None:
        return "ignored: unknown account"
    requirements = account.get("requirements") or {}
    updated = await payouts.update_account(
        connection, found[1], charges_enabled=bool(account.get("charges_enabled")),
        payouts_enabled=bool(account.get("payouts_enabled")), details_submitted=bool(account.get("details_submitted")),
        requirements={key: requirements.get(key) for key in REQUIREMENTS}, synced_at=int(event.get("created") or 0))
    return "capabilities updated" if updated else "ignored: older than the last update"


async def _payout_of_transfer(connection: AsyncConnection, transfer: dict[str, Any]) -> Row[Any] | None:
    metadata = transfer.get("metadata") or {}
    tenant = metadata.get("tenant_id")
    payout_id = metadata.get("payout_id")
    return await payouts.payout_of_transfer(connection, uuid.UUID(tenant) if tenant else None,
                                            uuid.UUID(payout_id) if payout_id else None)


async def transfer_created(connection: AsyncConnection, transfer: dict[str, Any], _event: dict[str, Any]) -> str:
    payout = await _payout_of_transfer(connection, transfer)
    if payout is None:
        return "ignored: not a payout transfer"
    return await payouts.transfer_created(connection, payout, transfer["id"])


async def transfer_reversed(connection: AsyncConnection, transfer: dict[str, Any], _event: dict[str, Any]) -> str:
    """`transfer.reversed` fires for partial reversals too (a refund's vendor share taken back, recorded by the
    refund: orders/refunds.py); only a whole reversal undoes the payout."""
    payout = await _payout_of_transfer(connection, transfer)
    if payout is None:
        return "ignored: not a payout transfer"
    if transfer.get("reversed") is False:
        return "ignored: a partial reversal (a refund's share, recorded with the refund)"
    return await payouts.transfer_reversed(connection, payout, transfer["id"])


async def bank_payout(connection: AsyncConnection, payout: dict[str, Any], event: dict[str, Any]) -> str:
    """payout.paid / payout.failed happen on the connected account (Stripe → the vendor's bank): recorded on the
    vendor's latest paid payout."""
    found = await payouts.vendor_of_account(connection, event.get("account"))
    if found is None:
        return "ignored: not a connected account of ours"
    status = str(payout.get("status") or event["type"].split(".")[1])
    reason = payout.get("failure_message") or payout.get("failure_code")
    return await payouts.record_bank_payout(connection, found[1], status, str(reason) if reason else None)
