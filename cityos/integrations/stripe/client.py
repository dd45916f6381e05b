"""The Stripe calls the platform makes, through the official SDK's StripeClient and its async methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe

from cityos.config import Settings
from cityos.errors import PaymentFailed, Unavailable


@dataclass(frozen=True)
class IntentView:
    """What checkout needs of a PaymentIntent."""

    id: str
    status: str
    amount: int
    amount_received: int
    currency: str
    client_secret: str | None
    metadata: dict[str, str]

    @classmethod
    def of(cls, resource: Any) -> IntentView:
        intent = resource.to_dict() if hasattr(resource, "to_dict") else dict(resource)
        return cls(id=intent["id"], status=intent["status"], amount=int(intent["amount"]),
                   amount_received=int(intent.get("amount_received") or 0), currency=intent["currency"],
                   client_secret=intent.get("client_secret"), metadata=dict(intent.get("metadata") or {}))


def create_stripe_client(settings: Settings) -> stripe.StripeClient:
    base = settings.CITYOS_STRIPE_API_BASE
    addresses: Any = {"api": base, "connect": base} if base else None
    return stripe.StripeClient(settings.STRIPE_API_KEY, base_addresses=addresses, max_network_retries=2,
                               http_client=stripe.HTTPXClient(allow_sync_methods=True))


def _translate(error: stripe.StripeError) -> Exception:
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError):
        return Unavailable("the payment provider is unavailable; try again")
    return PaymentFailed(error.user_message or "the payment provider refused the request",
                         provider_code=getattr(error, "code", None) or "")


async def create_payment_intent(client: stripe.StripeClient, *, amount: int, currency: str, transfer_group: str,
                                metadata: dict[str, str], idempotency_key: str) -> IntentView:
    try:
        intent = await client.v1.payment_intents.create_async(
            {"amount": amount, "currency": currency.lower(), "transfer_group": transfer_group,
             "metadata": metadata, "automatic_payment_methods": {"enabled": True}},
            {"idempotency_key": idempotency_key})
    except stripe.StripeError as error:
        raise _translate(error) from error
    return IntentView.of(intent)


async def retrieve_payment_intent(client: stripe.StripeClient, intent_id: str) -> IntentView:
    try:
        return IntentView.of(await client.v1.payment_intents.retrieve_async(intent_id))
    except stripe.StripeError as error:
        raise _translate(error) from error
