"""process-vendor-payouts (daily at 02:00): pay each vendor its available balance through a Stripe transfer,
exactly once (the steps are domain/marketplace/payouts.py's; this job finishes the unfinished payouts, claims new
ones and transfers each)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.domain.marketplace.payouts import AfterTransfer, claim_payouts, transfer_payout, unfinished_payouts
from cityos.integrations.stripe.client import StripeTransfers


async def process_vendor_payouts(engine: AsyncEngine, stripe_client: Any, minimum: int,
                                 tenant_ids: Sequence[uuid.UUID] | None = None,
                                 after_transfer: AfterTransfer | None = None) -> str:
    """The whole job; `tenant_ids` limits it to some tenants (default: every tenant). The scheduler runs it
    tenant by tenant (one tenant each, in that tenant's scope)."""
    outcomes: dict[str, int] = {}
    transfers = StripeTransfers(stripe_client)
    recovered = await unfinished_payouts(engine, tenant_ids)
    created = await claim_payouts(engine, minimum, tenant_ids)
    for payout_id in dict.fromkeys([*recovered, *created]):
        outcome = await transfer_payout(engine, transfers, payout_id, after_transfer,
                                        tenant_ids[0] if tenant_ids is not None and len(tenant_ids) == 1 else None)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())) or "nothing to pay"
    return f"{len(created)} new payout(s); {summary}"
