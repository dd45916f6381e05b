"""The Stripe calls the platform makes, through the official SDK's StripeClient and its async methods."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import stripe

from cityos.config import Settings
from cityos.domain.marketplace.payouts import TransferResult
from cityos.errors import PaymentFailed, Unavailable

log = logging.getLogger(__name__)

# InvalidRequestError codes that say the platform's Stripe set-up is wrong (keys, account, mode, API version),
# not that the customer's payment was refused: the operator has to act, the customer can only wait.
MISCONFIGURATION_CODES = frozenset({
    "api_key_expired", "secret_key_required", "platform_api_key_expired", "platform_account_required",
    "testmode_charges_only", "livemode_mismatch", "account_invalid", "parameter_unknown", "parameter_missing",
    "payment_method_types_no_longer_supported", "api_version_mismatch", "resource_missing",
})


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
    payment_method: str | None = None  # the card it was paid with (saved, when set up for future usage)

    @classmethod
    def of(cls, resource: Any) -> IntentView:
        intent = resource.to_dict() if hasattr(resource, "to_dict") else dict(resource)
        return cls(id=intent["id"], status=intent["status"], amount=int(intent["amount"]),
                   amount_received=int(intent.get("amount_received") or 0), currency=intent["currency"],
                   client_secret=intent.get("client_secret"), metadata=dict(intent.get("metadata") or {}),
                   payment_method=_id_of(intent.get("payment_method")))


def _id_of(value: Any) -> str | None:
    """An expandable field: its id whether it came as a string or as the object."""
    if isinstance(value, dict):
        return str(value["id"]) if value.get("id") else None
    return str(value) if value else None


def create_stripe_client(settings: Settings) -> stripe.StripeClient:
    base = settings.CITYOS_STRIPE_API_BASE
    addresses: Any = {"api": base, "connect": base} if base else None
    return stripe.StripeClient(settings.STRIPE_API_KEY, base_addresses=addresses, max_network_retries=2,
                               client_id=settings.STRIPE_CONNECT_CLIENT_ID,
                               http_client=stripe.HTTPXClient(allow_sync_methods=True))


def is_misconfiguration(error: stripe.StripeError) -> bool:
    """A bad or revoked API key, a restricted key without the permission, or a request Stripe rejects because of
    how the platform is set up (rather than because of the customer's card)."""
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return True
    if isinstance(error, stripe.InvalidRequestError) and not isinstance(error, stripe.IdempotencyError):
        return error.code is None or error.code in MISCONFIGURATION_CODES
    return False


def _translate(error: stripe.StripeError) -> Exception:
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError):
        return Unavailable("the payment provider is unavailable; try again")
    if is_misconfiguration(error):
        # For the operator: which error and where to look. No card data (our calls carry none) and no key.
        log.error("Stripe refused the platform's credentials or configuration: %s (HTTP %s, code %s, request %s); "
                  "check STRIPE_API_KEY and the Stripe account's settings", type(error).__name__,
                  error.http_status, error.code or "-", error.request_id or "-")
        return Unavailable("payments are unavailable at the moment; please try again later")
    return PaymentFailed(error.user_message or "the payment provider refused the request",
                         provider_code=getattr(error, "code", None) or "")


async def create_payment_intent(client: stripe.StripeClient, *, amount: int, currency: str, transfer_group: str,
                                metadata: dict[str, str], idempotency_key: str, customer: str | None = None,
                                save_card: bool = False) -> IntentView:
    """`customer` and `save_card`: the card the customer pays with is saved to that Stripe Customer for off-session
    charges (setup_future_usage=off_session; a cart of subscriptions)."""
    params: Any = {"amount": amount, "currency": currency.lower(), "transfer_group": transfer_group,
                   "metadata": metadata, "automatic_payment_methods": {"enabled": True}}
    if customer:
        params["customer"] = customer
    if save_card:
        params["setup_future_usage"] = "off_session"
    try:
        intent = await client.v1.payment_intents.create_async(params, {"idempotency_key": idempotency_key})
    except stripe.StripeError as error:
        raise _translate(error) from error
    return IntentView.of(intent)


async def retrieve_payment_intent(client: stripe.StripeClient, intent_id: str) -> IntentView:
    try:
        return IntentView.of(await client.v1.payment_intents.retrieve_async(intent_id))
    except stripe.StripeError as error:
        raise _translate(error) from error


@dataclass(frozen=True)
class StripeCallResult:
    """The outcome of a call made from the outbox: done (with the object's id), or an error to retry later
    (`retryable`), or an error that will not get better by retrying."""

    object_id: str | None
    error: str | None = None
    retryable: bool = False
    note: str | None = None


def _call_error(error: stripe.StripeError) -> StripeCallResult:
    retryable = isinstance(error, stripe.APIConnectionError | stripe.APIError | stripe.RateLimitError)
    if is_misconfiguration(error):
        _translate(error)  # the operator log line
        retryable = True  # it works again once the operator fixed the key or account
    return StripeCallResult(None, f"{getattr(error, 'code', None) or type(error).__name__}: "
                                  f"{error.user_message or error}"[:900], retryable=retryable)


async def cancel_payment_intent(client: stripe.StripeClient, intent_id: str) -> StripeCallResult:
    """Cancel a PaymentIntent nobody should pay any more (its cart changed). One that already succeeded (or was
    canceled) cannot be: that is a result, not an error — a success is settled by the webhook."""
    try:
        intent = await client.v1.payment_intents.cancel_async(
            intent_id, {"cancellation_reason": "abandoned"}, {"idempotency_key": f"cancel-{intent_id}"})
    except stripe.InvalidRequestError as error:
        if error.code == "payment_intent_unexpected_state":
            return StripeCallResult(intent_id, note=f"not canceled: {error.user_message or error}"[:500])
        return _call_error(error)
    except stripe.StripeError as error:
        return _call_error(error)
    return StripeCallResult(str(intent["id"]), note=f"status {intent['status']}")


async def refund_payment(client: stripe.StripeClient, *, intent_id: str, metadata: dict[str, str]) -> StripeCallResult:
    """Refund a whole payment. The idempotency key is derived from the PaymentIntent, so however often this is
    retried (webhook retries, replays, two dispatchers) Stripe makes one refund."""
    try:
        refund = await client.v1.refunds.create_async({"payment_intent": intent_id, "metadata": metadata},
                                                      {"idempotency_key": f"refund-{intent_id}"})
    except stripe.InvalidRequestError as error:
        if error.code == "charge_already_refunded":
            return StripeCallResult(None, note="already refunded")
        return _call_error(error)
    except stripe.StripeError as error:
        return _call_error(error)
    return StripeCallResult(str(refund["id"]), note=f"status {refund['status']}")


async def create_refund(client: stripe.StripeClient, *, intent_id: str, amount: int, reason: str,
                        metadata: dict[str, str], idempotency_key: str) -> StripeCallResult:
    """`refunds.create` for part of a payment (SC&T: on the platform account). A refusal (more than is left,
    already refunded, a missing payment) is final; a network or 5xx failure is retried with the same key. The
    result's note carries the refund's status."""
    try:
        refund = await client.v1.refunds.create_async(
            {"payment_intent": intent_id, "amount": amount, "reason": reason, "metadata": metadata},
            {"idempotency_key": idempotency_key})
    except stripe.StripeError as error:
        return _call_error(error)
    return StripeCallResult(str(refund["id"]), note=str(refund["status"]))


async def reverse_transfer(client: stripe.StripeClient, *, transfer_id: str, amount: int, metadata: dict[str, str],
                           idempotency_key: str) -> StripeCallResult:
    """`transfers.reversals.create` (the v1 sub-service; the transfer id is positional): take `amount` back from
    a vendor's transfer. A refusal (the connected account's balance is too low, more than is left) is final."""
    try:
        reversal = await client.v1.transfers.reversals.create_async(
            transfer_id, {"amount": amount, "metadata": metadata}, {"idempotency_key": idempotency_key})
    except stripe.StripeError as error:
        return _call_error(error)
    return StripeCallResult(str(reversal["id"]))


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


class StripeTransfers:
    """The domain's `Transfers` port (domain/marketplace/payouts.py) on a Stripe client."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client

    async def create_transfer(self, *, amount: int, currency: str, destination: str, transfer_group: str,
                              metadata: dict[str, str], idempotency_key: str) -> TransferResult:
        return await create_transfer(self.client, amount=amount, currency=currency, destination=destination,
                                     transfer_group=transfer_group, metadata=metadata,
                                     idempotency_key=idempotency_key)
