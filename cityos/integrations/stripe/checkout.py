"""The Stripe side of checkout: implements the commerce domain's PaymentGateway port with the platform's
StripeClient (cityos.domain.commerce.checkout)."""

from __future__ import annotations

from dataclasses import dataclass

import stripe

from cityos.integrations.stripe import client as stripe_api
from cityos.integrations.stripe.client import IntentView


@dataclass(frozen=True)
class StripePayments:
    client: stripe.StripeClient

    async def retrieve_payment_intent(self, intent_id: str) -> IntentView:
        return await stripe_api.retrieve_payment_intent(self.client, intent_id)

    async def create_payment_intent(self, *, amount: int, currency: str, transfer_group: str,
                                    metadata: dict[str, str], idempotency_key: str, customer: str | None = None,
                                    save_card: bool = False) -> IntentView:
        return await stripe_api.create_payment_intent(self.client, amount=amount, currency=currency,
                                                      transfer_group=transfer_group, metadata=metadata,
                                                      idempotency_key=idempotency_key, customer=customer,
                                                      save_card=save_card)
