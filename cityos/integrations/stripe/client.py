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
                               client_id=settings.STRIPE_CONNECT_CLIENT_ID,
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


async def create_express_account(client: stripe.StripeClient, *, email: str | None, vendor_id: str,
                                 idempotency_key: str) -> str:
    params: Any = {"type": "express", "metadata": {"vendor_id": vendor_id},
                   "capabilities": {"transfers": {"requested": True}}}
    if email:
        params["email"] = email
    try:
        account = await client.v1.accounts.create_async(params, {"idempotency_key": idempotency_key})
    except stripe.StripeError as error:
        raise _translate(error) from error
    return str(account["id"])


async def create_onboarding_link(client: stripe.StripeClient, *, account: str, refresh_url: str,
                                 return_url: str) -> str:
    try:
        link = await client.v1.account_links.create_async({
            "account": account, "type": "account_onboarding", "refresh_url": refresh_url,
            "return_url": return_url})
    except stripe.StripeError as error:
        raise _translate(error) from error
    return str(link["url"])


def authorize_url(client: stripe.StripeClient, *, state: str, redirect_uri: str) -> str:
    """The Connect OAuth URL for a Standard account (needs STRIPE_CONNECT_CLIENT_ID on the client)."""
    return client.oauth.authorize_url({"scope": "read_write", "state": state, "redirect_uri": redirect_uri})


async def exchange_oauth_code(client: stripe.StripeClient, code: str) -> str:
    """POST {connect}/oauth/token; the SDK's OAuth calls are synchronous, so off the event loop."""
    import asyncio

    try:
        token = await asyncio.to_thread(client.oauth.token, {"grant_type": "authorization_code", "code": code})
    except stripe.oauth_error.OAuthError as error:
        raise PaymentFailed(f"Stripe refused the authorization code: {error.user_message or error}") from error
    except stripe.StripeError as error:
        raise _translate(error) from error
    return str(token["stripe_user_id"])


@dataclass(frozen=True)
class TransferResult:
    transfer_id: str | None
    error: str | None
    retryable: bool = False


async def create_transfer(client: stripe.StripeClient, *, amount: int, currency: str, destination: str,
                          transfer_group: str, metadata: dict[str, str], idempotency_key: str) -> TransferResult:
    """A transfer to a connected account. A refusal (e.g. balance_insufficient) is a result, not an exception:
    the payout is marked failed and its entries released; a network or 5xx failure is retryable."""
    try:
        transfer = await client.v1.transfers.create_async(
            {"amount": amount, "currency": currency.lower(), "destination": destination,
             "transfer_group": transfer_group, "metadata": metadata}, {"idempotency_key": idempotency_key})
    except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as error:
        return TransferResult(None, f"{type(error).__name__}: {error.user_message or error}", retryable=True)
    except stripe.StripeError as error:
        return TransferResult(None, f"{getattr(error, 'code', None) or type(error).__name__}: "
                                    f"{error.user_message or error}")
    return TransferResult(str(transfer["id"]), None)
