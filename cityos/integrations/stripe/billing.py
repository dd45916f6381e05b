"""The billing context's `BillingGateway` port (domain/billing/service.py) on Stripe: Customers, SetupIntents and
PaymentIntents confirmed on the server (off-session for renewals), following external-apis.md §1."""

from __future__ import annotations

from typing import Any

import stripe

from cityos.domain.billing.service import PaymentOutcome
from cityos.integrations.stripe.client import _translate

NO_REDIRECTS = {"enabled": True, "allow_redirects": "never"}  # a server-side confirm needs no return_url


def _declined(error: stripe.CardError) -> PaymentOutcome:
    """A 402: the provider's codes, and the PaymentIntent (or SetupIntent) it left behind."""
    body: dict[str, Any] = error.error.to_dict() if error.error is not None else {}
    intent = body.get("payment_intent") or body.get("setup_intent") or {}
    return PaymentOutcome(False, intent_id=intent.get("id"), status=intent.get("status"), code=error.code,
                          decline_code=body.get("decline_code"),
                          message=error.user_message or "Your card was declined.")


class StripeBilling:
    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client

    async def create_customer(self, *, email: str | None, metadata: dict[str, str], idempotency_key: str) -> str:
        params: Any = {"metadata": metadata}
        if email:
            params["email"] = email
        try:
            customer = await self.client.v1.customers.create_async(params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as error:
            raise _translate(error) from error
        return str(customer["id"])

    async def save_payment_method(self, *, customer: str, payment_method: str, metadata: dict[str, str],
                                  idempotency_key: str) -> PaymentOutcome:
        try:
            params: Any = {"customer": customer, "payment_method": payment_method, "usage": "off_session",
                           "confirm": True, "automatic_payment_methods": NO_REDIRECTS, "metadata": metadata}
            setup = await self.client.v1.setup_intents.create_async(params, {"idempotency_key": idempotency_key})
        except stripe.CardError as error:
            return _declined(error)
        except stripe.StripeError as error:
            raise _translate(error) from error
        intent = setup.to_dict()
        succeeded = intent["status"] == "succeeded"
        return PaymentOutcome(succeeded, intent_id=str(intent["id"]), status=str(intent["status"]),
                              payment_method_id=intent.get("payment_method"),
                              code=None if succeeded else intent["status"],
                              message=None if succeeded else "the card needs the customer's authentication",
                              client_secret=None if succeeded else intent.get("client_secret"))

    async def charge(self, *, amount: int, currency: str, customer: str, payment_method: str, off_session: bool,
                     save_for_later: bool, metadata: dict[str, str], transfer_group: str,
                     idempotency_key: str) -> PaymentOutcome:
        params: Any = {"amount": amount, "currency": currency.lower(), "customer": customer,
                       "payment_method": payment_method, "confirm": True, "metadata": metadata,
                       "transfer_group": transfer_group}
        if off_session:
            params["off_session"] = True
        else:
            params["automatic_payment_methods"] = NO_REDIRECTS
        if save_for_later:
            params["setup_future_usage"] = "off_session"
        try:
            created = await self.client.v1.payment_intents.create_async(params, {"idempotency_key": idempotency_key})
        except stripe.CardError as error:
            return _declined(error)
        except stripe.StripeError as error:
            raise _translate(error) from error
        intent = created.to_dict()
        succeeded = intent["status"] == "succeeded"
        return PaymentOutcome(succeeded, intent_id=str(intent["id"]), status=str(intent["status"]),
                              payment_method_id=intent.get("payment_method"),
                              charge_id=intent.get("latest_charge"),
                              code=None if succeeded else intent["status"],
                              message=None if succeeded else "the payment needs the customer's authentication",
                              client_secret=None if succeeded else intent.get("client_secret"))

    async def client_secret(self, intent_id: str) -> tuple[str, str]:
        """GET /v1/payment_intents/{id}: its status and client secret, for the customer's on-session confirmation
        (external-apis.md §1, "Bringing the customer back on-session")."""
        try:
            intent = await self.client.v1.payment_intents.retrieve_async(intent_id)
        except stripe.StripeError as error:
            raise _translate(error) from error
        return str(intent["status"]), str(intent["client_secret"])
