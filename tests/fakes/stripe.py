"""A local Stripe for tests, following external-apis.md §1: v1 form-encoded POST bodies with bracket notation,
`Authorization: Bearer sk_…`, `Idempotency-Key` replays (same key + same body → same object; a different body →
400 idempotency_error), error bodies `{"error": {type, code, message, param}}`, and signed webhook events
(`Stripe-Signature: t=…,v1=HMAC_SHA256(secret, f"{t}.{body}")`). Driven through the real stripe SDK."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

import stripe as stripe_sdk
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

API_VERSION = "2026-10-28.endive"


def parse_form(body: bytes) -> dict[str, Any]:
    """`a[b][c]=1&d=2` → {"a": {"b": {"c": "1"}}, "d": "2"} (Stripe's bracket notation)."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


def error(status: int, kind: str, message: str, code: str | None = None, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "code": code, "message": message, "param": param}},
                        status_code=status)


# Test-mode payment methods (external-apis.md §1 "Test mode"): how each behaves as (kind, code, decline_code, last4).
# decline: refused at once and cannot be attached; decline_charges: attaches, every charge is declined;
# authenticate: every payment needs 3DS (off-session → 402 authentication_required); authenticate_on_setup: 3DS
# when set up, then off-session charges succeed.
TEST_CARDS: dict[str, tuple[str, str, str, str]] = {
    "pm_card_visa": ("succeed", "", "", "4242"),
    "pm_card_bypassPending": ("succeed", "", "", "0077"),
    "pm_card_authenticationRequiredSetupForOffSession": ("succeed", "", "", "0446"),
    "pm_card_chargeDeclined": ("decline", "card_declined", "generic_decline", "0002"),
    "pm_card_visa_chargeDeclined": ("decline", "card_declined", "generic_decline", "0002"),
    "pm_card_chargeDeclinedInsufficientFunds": ("decline", "card_declined", "insufficient_funds", "9995"),
    "pm_card_chargeDeclinedExpiredCard": ("decline", "expired_card", "expired_card", "0069"),
    "pm_card_chargeCustomerFail": ("decline_charges", "card_declined", "generic_decline", "0341"),
    "pm_card_authenticationRequired": ("authenticate", "authentication_required", "authentication_required", "3184"),
    "pm_card_authenticationRequiredOnSetup": ("authenticate_on_setup", "", "", "3155"),
    "pm_card_refundFail": ("succeed", "", "", "5126"),  # its refunds read succeeded, then fail (fail_refund)
}


def card_error(code: str, decline_code: str, message: str, **objects: Any) -> JSONResponse:
    """A 402 card_error (the SDK raises CardError), with the intent it left behind."""
    return JSONResponse({"error": {"type": "card_error", "code": code, "decline_code": decline_code,
                                   "message": message, "param": None, **objects}}, status_code=402)


class FakeStripe:
    def __init__(self, api_key: str, webhook_secret: str) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.base_url = ""
        self.intents: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.declined: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # 402 answers, replayed per key
        self.requests: list[dict[str, Any]] = []
        # How to answer the next API calls: a status (an api_error; the SDK retries ≥ 500), or a whole Stripe error
        # as (status, type, code, message), e.g. (402, "card_error", "card_declined", "Your card was declined.").
        self.failures: list[int | tuple[int, str, str, str]] = []
        self.accounts: dict[str, dict[str, Any]] = {}
        self.transfers: dict[str, dict[str, Any]] = {}
        self.oauth_codes: dict[str, str] = {}  # code → account id, each usable once
        self.platform_balance = 10**9  # a transfer above it fails with balance_insufficient
        self.refunds: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.payment_methods: dict[str, dict[str, Any]] = {}  # attached cards: pm_… → object (+ "_behaviour")
        self.setup_intents: dict[str, dict[str, Any]] = {}
        self.account_debits: dict[str, int] = {}  # what a connected account paid out to its bank (see reversals)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/payment_intents", self._create_intent, methods=["POST"]),
            Route("/v1/payment_intents/{intent_id}", self._get_intent, methods=["GET"]),
            Route("/v1/payment_intents/{intent_id}/cancel", self._cancel_intent, methods=["POST"]),
            Route("/v1/refunds", self._create_refund, methods=["POST"]),
            Route("/v1/customers", self._create_customer, methods=["POST"]),
            Route("/v1/customers/{customer_id}", self._get_customer, methods=["GET"]),
            Route("/v1/setup_intents", self._create_setup_intent, methods=["POST"]),
            Route("/v1/accounts", self._create_account, methods=["POST"]),
            Route("/v1/account_links", self._create_account_link, methods=["POST"]),
            Route("/v1/transfers", self._create_transfer, methods=["POST"]),
            Route("/v1/transfers/{transfer_id}/reversals", self._create_transfer_reversal, methods=["POST"]),
            Route("/oauth/token", self._oauth_token, methods=["POST"]),
        ])

    async def _idempotent(self, request: Request, create: Any) -> JSONResponse:
        """Replay the first response for a repeated Idempotency-Key with the same parameters."""
        if (refused := self._check(request)) is not None:
            return refused
        params = parse_form(await request.body())
        key = request.headers.get("idempotency-key", "")
        if key in self.idempotency:
            previous_params, previous = self.idempotency[key]
            if previous_params != params:
                return error(400, "idempotency_error",
                             "Keys for idempotent requests can only be used with the same parameters")
            return JSONResponse(previous)
        if key in self.declined:
            previous_params, previous = self.declined[key]
            if previous_params != params:
                return error(400, "idempotency_error",
                             "Keys for idempotent requests can only be used with the same parameters")
            return JSONResponse(previous, status_code=402)  # Stripe replays a decline for its key, too
        outcome = create(params)
        if isinstance(outcome, JSONResponse):
            if outcome.status_code == 402:
                self.declined[key] = (params, json.loads(bytes(outcome.body)))
            return outcome
        self.idempotency[key] = (params, outcome)
        return JSONResponse(outcome)

    async def _create_account(self, request: Request) -> JSONResponse:
        def create(params: dict[str, Any]) -> Any:
            account_id = f"acct_{secrets.token_hex(8)}"
            self.accounts[account_id] = {
                "id": account_id, "object": "account", "type": params.get("type", "express"),
                "email": params.get("email"), "charges_enabled": False, "payouts_enabled": False,
                "details_submitted": False, "metadata": params.get("metadata", {}),
                "requirements": {"currently_due": ["external_account", "tos_acceptance.date"], "eventually_due": [],
                                 "past_due": [], "disabled_reason": "requirements.past_due", "errors": []}}
            return self.accounts[account_id]
        return await self._idempotent(request, create)

    async def _create_account_link(self, request: Request) -> JSONResponse:
        def create(params: dict[str, Any]) -> Any:
            if params.get("account") not in self.accounts:
                return error(400, "invalid_request_error", "No such account", "resource_missing", "account")
            if params.get("type") not in ("account_onboarding", "account_update"):
                return error(400, "invalid_request_error", "Invalid type", "parameter_invalid_empty", "type")
            return {"object": "account_link", "created": int(time.time()), "expires_at": int(time.time()) + 300,
                    "url": f"{self.base_url}/setup/e/{params['account']}/{secrets.token_hex(6)}"}
        return await self._idempotent(request, create)

    async def _create_transfer(self, request: Request) -> JSONResponse:
        def create(params: dict[str, Any]) -> Any:
            amount = int(params.get("amount", 0))
            if params.get("destination") not in self.accounts:
                return error(400, "invalid_request_error", "No such destination", "resource_missing", "destination")
            if amount > self.platform_balance:
                return error(400, "invalid_request_error", "Insufficient funds in Stripe account.",
                             "balance_insufficient")
            self.platform_balance -= amount
            transfer_id = f"tr_{secrets.token_hex(10)}"
            self.transfers[transfer_id] = {
                "id": transfer_id, "object": "transfer", "amount": amount, "currency": params["currency"],
                "destination": params["destination"], "destination_payment": f"py_{secrets.token_hex(6)}",
                "transfer_group": params.get("transfer_group"), "source_transaction": None, "reversed": False,
                "amount_reversed": 0, "metadata": params.get("metadata", {}), "created": int(time.time())}
            return self.transfers[transfer_id]
        return await self._idempotent(request, create)

    async def _oauth_token(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": "invalid_client", "error_description": "No such api key"}, status_code=401)
        params = parse_form(await request.body())
        account = self.oauth_codes.pop(params.get("code", ""), None)
        if params.get("grant_type") != "authorization_code" or account is None:
            return JSONResponse({"error": "invalid_grant",
                                 "error_description": "Authorization code does not exist"}, status_code=400)
        return JSONResponse({"access_token": f"sk_test_{secrets.token_hex(8)}", "refresh_token": "rt_x",
                             "token_type": "bearer", "scope": "read_write", "livemode": False,
                             "stripe_user_id": account, "stripe_publishable_key": "pk_test_x"})

    def authorize(self, account_type: str = "standard") -> str:
        """The user approved the OAuth request: an account exists and a one-time code is issued."""
        account_id = f"acct_{secrets.token_hex(8)}"
        self.accounts[account_id] = {"id": account_id, "object": "account", "type": account_type,
                                     "charges_enabled": True, "payouts_enabled": True, "details_submitted": True,
                                     "requirements": {"currently_due": [], "eventually_due": [], "past_due": [],
                                                      "disabled_reason": None, "errors": []}}
        code = f"ac_{secrets.token_hex(8)}"
        self.oauth_codes[code] = account_id
        return code

    def _check(self, request: Request) -> JSONResponse | None:
        self.requests.append({"method": request.method, "path": request.url.path,
                              "idempotency_key": request.headers.get("idempotency-key"),
                              "stripe_version": request.headers.get("stripe-version")})
        presented = (request.headers.get("authorization") or "").removeprefix("Bearer ")
        if presented != self.api_key:
            # Stripe's 401 for a wrong key: no code, no param; the key redacted but for its last four characters.
            redacted = presented[:8] + "*" * max(len(presented) - 12, 0) + presented[-4:] if presented else ""
            return JSONResponse({"error": {"message": f"Invalid API Key provided: {redacted}",
                                           "type": "invalid_request_error"}}, status_code=401,
                                headers={"www-authenticate": 'Basic realm="Stripe"'})
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, tuple):
                status, kind, code, message = failure
                return error(status, kind, message, code)
            return error(failure, "api_error", "Something went wrong on Stripe's end")
        return None

    async def _create_intent(self, request: Request) -> JSONResponse:
        def create(params: dict[str, Any]) -> Any:
            if "amount" not in params or "currency" not in params:
                return error(400, "invalid_request_error", "Missing required param: amount.", "parameter_missing",
                             "amount")
            if "payment_method_types" in params:
                return error(400, "invalid_request_error", "payment_method_types is no longer supported",
                             "payment_method_types_no_longer_supported", "payment_method_types")
            intent_id = f"pi_{secrets.token_hex(12)}"
            self.intents[intent_id] = {
                "id": intent_id, "object": "payment_intent", "amount": int(params["amount"]), "amount_received": 0,
                "currency": params["currency"], "status": "requires_payment_method",
                "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}", "created": int(time.time()),
                "livemode": False, "metadata": params.get("metadata", {}),
                "transfer_group": params.get("transfer_group"), "latest_charge": None,
                "application_fee_amount": None, "transfer_data": None, "last_payment_error": None,
                "customer": params.get("customer"), "payment_method": None, "next_action": None,
                "setup_future_usage": params.get("setup_future_usage"),
            }
            if params.get("confirm") == "true":
                return self._confirm_intent(self.intents[intent_id], params)
            return self.intents[intent_id]
        return await self._idempotent(request, create)

    async def _get_intent(self, request: Request) -> JSONResponse:
        if (refused := self._check(request)) is not None:
            return refused
        intent = self.intents.get(request.path_params["intent_id"])
        if intent is None:
            return error(404, "invalid_request_error", "No such payment_intent", "resource_missing", "intent")
        return JSONResponse(intent)

    async def _cancel_intent(self, request: Request) -> JSONResponse:
        intent_id = request.path_params["intent_id"]

        def cancel(params: dict[str, Any]) -> Any:
            intent = self.intents.get(intent_id)
            if intent is None:
                return error(404, "invalid_request_error", f"No such payment_intent: '{intent_id}'",
                             "resource_missing", "intent")
            if intent["status"] in ("succeeded", "canceled"):
                return error(400, "invalid_request_error",
                             f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. "
                             "Only a PaymentIntent with one of the following statuses may be canceled: "
                             "requires_payment_method, requires_capture, requires_confirmation, requires_action, "
                             "processing.", "payment_intent_unexpected_state")
            intent.update(status="canceled", cancellation_reason=params.get("cancellation_reason"),
                          canceled_at=int(time.time()))
            return intent
        return await self._idempotent(request, cancel)

    async def _create_refund(self, request: Request) -> JSONResponse:
        """POST /v1/refunds (external-apis.md §1 "Refunds"): payment_intent or charge; amount optional (default:
        what is left); reason one of duplicate|fraudulent|requested_by_customer; metadata. Nothing left →
        400 charge_already_refunded; more than is left → 400 amount_too_large. A payment made with
        pm_card_refundFail gives a refund that reads `succeeded` first and fails later (`fail_refund`)."""
        return await self._idempotent(request, self._refund_of)

    # Customers, saved cards and SetupIntents (external-apis.md §1, "Customers and saved cards", "Saving a card
    # with a SetupIntent", "Off-session renewal", "Test mode").

    async def _create_customer(self, request: Request) -> JSONResponse:
        def create(params: dict[str, Any]) -> Any:
            customer_id = f"cus_{secrets.token_hex(7)}"
            self.customers[customer_id] = {
                "id": customer_id, "object": "customer", "email": params.get("email"), "name": params.get("name"),
                "metadata": params.get("metadata", {}), "invoice_settings": {"default_payment_method": None},
                "created": int(time.time()), "livemode": False}
            if params.get("payment_method"):
                attached = self._attach(params["payment_method"], customer_id)
                if isinstance(attached, JSONResponse):
                    del self.customers[customer_id]
                    return attached
            return self.customers[customer_id]
        return await self._idempotent(request, create)

    async def _get_customer(self, request: Request) -> JSONResponse:
        if (refused := self._check(request)) is not None:
            return refused
        customer = self.customers.get(request.path_params["customer_id"])
        if customer is None:
            return error(404, "invalid_request_error", "No such customer", "resource_missing", "id")
        return JSONResponse(customer)

    def _attach(self, payment_method: str, customer_id: str) -> dict[str, Any] | JSONResponse:
        """Attach a card to a customer: a pm_card_… alias becomes a new pm_…; the cards that are declined outright
        cannot be attached (402)."""
        if payment_method in self.payment_methods:
            card = self.payment_methods[payment_method]
            if card["customer"] not in (None, customer_id):
                return error(400, "invalid_request_error", "The payment method belongs to another customer",
                             "payment_method_unexpected_state", "payment_method")
            card["customer"] = customer_id
            return card
        behaviour = TEST_CARDS.get(payment_method)
        if behaviour is None:
            return error(400, "invalid_request_error", f"No such PaymentMethod: '{payment_method}'",
                         "resource_missing", "payment_method")
        if behaviour[0] == "decline":
            return card_error(behaviour[1], behaviour[2], "Your card was declined.")
        card_id = f"pm_{secrets.token_hex(12)}"
        self.payment_methods[card_id] = {
            "id": card_id, "object": "payment_method", "type": "card", "customer": customer_id,
            "card": {"brand": "visa", "last4": behaviour[3], "exp_month": 12, "exp_year": 2034},
            "_alias": payment_method}
        return self.payment_methods[card_id]

    def _behaviour(self, payment_method: str) -> tuple[str, str, str, str]:
        card = self.payment_methods.get(payment_method)
        return TEST_CARDS[card["_alias"] if card else payment_method]

    def _confirm_intent(self, intent: dict[str, Any], params: dict[str, Any]) -> Any:
        """Confirm on creation: charge the card as the test cards behave, on or off session."""
        payment_method = params.get("payment_method")
        if not payment_method or (payment_method not in self.payment_methods and payment_method not in TEST_CARDS):
            return error(400, "invalid_request_error", "No such PaymentMethod", "resource_missing", "payment_method")
        off_session = params.get("off_session") in ("true", "one_off", "recurring")
        if params.get("off_session") and params.get("confirm") != "true":
            return error(400, "invalid_request_error", "off_session can only be used with confirm=true",
                         "parameter_invalid_empty", "off_session")
        if not off_session and params.get("automatic_payment_methods", {}).get("allow_redirects") != "never" \
                and not params.get("return_url"):
            return error(400, "invalid_request_error", "A return_url is required to confirm this PaymentIntent",
                         "parameter_missing", "return_url")
        kind, code, decline_code, _ = self._behaviour(payment_method)
        if kind == "authenticate" and not off_session:
            intent.update(status="requires_action", next_action={"type": "use_stripe_sdk"},
                          payment_method=payment_method)
            return intent
        if kind in ("decline", "decline_charges") or (kind == "authenticate" and off_session):
            charge = f"ch_{secrets.token_hex(8)}"
            last_error = {"type": "card_error", "code": code, "decline_code": decline_code,
                          "message": "Your card was declined." if code != "authentication_required" else
                          "This payment requires authentication.", "payment_method": {"id": payment_method},
                          "charge": charge}
            intent.update(status="requires_payment_method", last_payment_error=last_error,
                          payment_method=None)
            return card_error(code, decline_code, last_error["message"], payment_intent=intent, charge=charge,
                              payment_method={"id": payment_method, "object": "payment_method"})
        saved = payment_method
        if params.get("customer") and (params.get("setup_future_usage") or payment_method in self.payment_methods):
            attached = self._attach(payment_method, params["customer"])
            if isinstance(attached, JSONResponse):
                return attached
            saved = attached["id"]
        intent.update(status="succeeded", amount_received=intent["amount"], payment_method=saved,
                      latest_charge=f"ch_{secrets.token_hex(8)}")
        return intent

    async def _create_setup_intent(self, request: Request) -> JSONResponse:
        def create(params: dict[str, Any]) -> Any:
            if "payment_method_types" in params:
                return error(400, "invalid_request_error", "payment_method_types is no longer supported",
                             "payment_method_types_no_longer_supported", "payment_method_types")
            customer = params.get("customer")
            if customer and customer not in self.customers:
                return error(400, "invalid_request_error", f"No such customer: '{customer}'", "resource_missing",
                             "customer")
            setup_id = f"seti_{secrets.token_hex(12)}"
            setup: dict[str, Any] = {
                "id": setup_id, "object": "setup_intent", "customer": customer,
                "usage": params.get("usage", "off_session"), "status": "requires_payment_method",
                "client_secret": f"{setup_id}_secret_{secrets.token_hex(8)}", "payment_method": None,
                "metadata": params.get("metadata", {}), "last_setup_error": None, "next_action": None,
                "created": int(time.time()), "livemode": False}
            if params.get("confirm") == "true":
                payment_method = params.get("payment_method")
                if not payment_method:
                    return error(400, "invalid_request_error", "A payment_method is required to confirm",
                                 "parameter_missing", "payment_method")
                if params.get("automatic_payment_methods", {}).get("allow_redirects") != "never" \
                        and not params.get("return_url"):
                    return error(400, "invalid_request_error", "A return_url is required to confirm this "
                                 "SetupIntent", "parameter_missing", "return_url")
                if payment_method not in self.payment_methods and payment_method not in TEST_CARDS:
                    return error(400, "invalid_request_error", "No such PaymentMethod", "resource_missing",
                                 "payment_method")
                kind, code, decline_code, _ = self._behaviour(payment_method)
                if kind == "decline":
                    setup["last_setup_error"] = {"code": code, "decline_code": decline_code,
                                                 "message": "Your card was declined."}
                    self.setup_intents[setup_id] = setup
                    return card_error(code, decline_code, "Your card was declined.", setup_intent=setup)
                if kind in ("authenticate", "authenticate_on_setup"):
                    setup.update(status="requires_action", next_action={"type": "use_stripe_sdk"},
                                 payment_method=payment_method)
                else:
                    attached = self._attach(payment_method, customer) if customer else {"id": payment_method}
                    if isinstance(attached, JSONResponse):
                        return attached
                    setup.update(status="succeeded", payment_method=attached["id"])
            self.setup_intents[setup_id] = setup
            return setup
        return await self._idempotent(request, create)

    # What the customer's browser and Stripe do, for tests.

    def pay(self, intent_id: str, payment_method: str | None = None) -> dict[str, Any]:
        """The customer's browser confirms the PaymentIntent (Stripe.js). With `payment_method` (a pm_card_… alias),
        the card it was paid with is set, and saved to the intent's customer when it was made with
        setup_future_usage (as Stripe attaches it)."""
        intent = self.intents[intent_id]
        if payment_method is not None:
            saved: Any = {"id": payment_method}
            if intent.get("customer") and intent.get("setup_future_usage"):
                saved = self._attach(payment_method, intent["customer"])
                assert not isinstance(saved, JSONResponse), "a card that pays can be saved"
            intent["payment_method"] = saved["id"]
        intent.update(status="succeeded", amount_received=intent["amount"], latest_charge=f"ch_{secrets.token_hex(8)}")
        return intent

    def decline(self, intent_id: str) -> dict[str, Any]:
        intent = self.intents[intent_id]
        intent.update(status="requires_payment_method", last_payment_error={
            "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.", "payment_method": {"id": "pm_1"}, "charge": "ch_1"})
        return intent

    def event(self, event_type: str, data_object: dict[str, Any], event_id: str | None = None,
              created: int | None = None, account: str | None = None) -> bytes:
        """An event envelope; `account` makes it a Connect event from that connected account."""
        envelope: dict[str, Any] = {
            "id": event_id or f"evt_{secrets.token_hex(12)}", "object": "event", "api_version": API_VERSION,
            "created": created or int(time.time()), "livemode": False, "pending_webhooks": 1, "type": event_type,
            "request": {"id": None, "idempotency_key": None}, "data": {"object": data_object}}
        if account:
            envelope["account"] = account
        return json.dumps(envelope).encode()

    def sign(self, payload: bytes, secret: str | None = None, timestamp: int | None = None) -> str:
        return stripe_sdk.WebhookSignature.generate_signature_header(
            payload.decode(), secret or self.webhook_secret, timestamp=timestamp)

    # Refunds and transfer reversals (external-apis.md §1 "Recurring charges, refunds and reversals").

    def _intent_of_refund(self, params: dict[str, Any]) -> dict[str, Any] | None:
        if params.get("payment_intent"):
            return self.intents.get(params["payment_intent"])
        return next((intent for intent in self.intents.values()
                     if params.get("charge") and intent.get("latest_charge") == params["charge"]), None)

    def _refund_of(self, params: dict[str, Any]) -> Any:
        if not params.get("payment_intent") and not params.get("charge"):
            return error(400, "invalid_request_error", "One of `charge` or `payment_intent` is required.",
                         "parameter_missing", "payment_intent")
        intent = self._intent_of_refund(params)
        if intent is None:
            param = "payment_intent" if params.get("payment_intent") else "charge"
            return error(400, "invalid_request_error", f"No such {param}", "resource_missing", param)
        if intent["status"] != "succeeded":
            return error(400, "invalid_request_error", "This PaymentIntent does not have a successful charge "
                         "to refund.", "payment_intent_unexpected_state", "payment_intent")
        reason = params.get("reason")
        if reason is not None and reason not in ("duplicate", "fraudulent", "requested_by_customer"):
            return error(400, "invalid_request_error", "Invalid reason: must be one of duplicate, fraudulent, or "
                         "requested_by_customer", "parameter_invalid_empty", "reason")
        refunded = sum(r["amount"] for r in self.refunds.values()
                       if r["payment_intent"] == intent["id"] and r["status"] not in ("failed", "canceled"))
        left = intent["amount_received"] - refunded
        if left <= 0:
            return error(400, "invalid_request_error", f"Charge {intent['latest_charge']} has already been "
                         "refunded.", "charge_already_refunded")
        amount = int(params.get("amount") or left)
        if amount <= 0 or amount > left:
            return error(400, "invalid_request_error", f"Refund amount ({amount}) is greater than unrefunded "
                         f"amount on charge ({left})", "amount_too_large", "amount")
        refund_id = f"re_{secrets.token_hex(12)}"
        self.refunds[refund_id] = {
            "id": refund_id, "object": "refund", "amount": amount, "currency": intent["currency"],
            "payment_intent": intent["id"], "charge": intent["latest_charge"], "status": "succeeded",
            "reason": reason, "metadata": params.get("metadata", {}), "failure_reason": None,
            "failure_balance_transaction": None, "balance_transaction": f"txn_{secrets.token_hex(8)}",
            "created": int(time.time()), "transfer_reversal": None}
        return self.refunds[refund_id]

    def fail_refund(self, refund_id: str, reason: str = "expired_or_canceled_card") -> dict[str, Any]:
        """What Stripe does later to a refund of pm_card_refundFail: `failed` (refund.failed fires)."""
        refund = self.refunds[refund_id]
        refund.update(status="failed", failure_reason=reason,
                      failure_balance_transaction=f"txn_{secrets.token_hex(8)}")
        return refund

    def charge(self, intent_id: str) -> dict[str, Any]:
        """The Charge of a PaymentIntent as `charge.refunded` carries it: amount_refunded, refunded (true only
        when fully refunded), payment_intent, and the metadata copied from the PaymentIntent."""
        intent = self.intents[intent_id]
        refunded = sum(r["amount"] for r in self.refunds.values()
                       if r["payment_intent"] == intent_id and r["status"] not in ("failed", "canceled"))
        return {"id": intent["latest_charge"], "object": "charge", "amount": intent["amount_received"],
                "amount_captured": intent["amount_received"], "amount_refunded": refunded,
                "refunded": refunded >= intent["amount_received"], "payment_intent": intent_id,
                "currency": intent["currency"], "metadata": intent.get("metadata", {}), "status": "succeeded"}

    def account_balance(self, account: str) -> int:
        """What a connected account holds: its transfers less their reversals (no bank payouts here)."""
        return sum(t["amount"] - t["amount_reversed"] for t in self.transfers.values() if t["destination"] == account)

    async def _create_transfer_reversal(self, request: Request) -> JSONResponse:
        """POST /v1/transfers/{id}/reversals: amount (default: the unreversed remainder), metadata, description.
        More than is left, or a fully reversed transfer → 400; the connected account's balance too low →
        400 balance_insufficient (no reversal made, no event)."""
        transfer_id = request.path_params["transfer_id"]

        def create(params: dict[str, Any]) -> Any:
            transfer = self.transfers.get(transfer_id)
            if transfer is None:
                return error(404, "invalid_request_error", f"No such transfer: '{transfer_id}'", "resource_missing",
                             "id")
            left = transfer["amount"] - transfer["amount_reversed"]
            if left <= 0:
                return error(400, "invalid_request_error", "This transfer has already been fully reversed.",
                             "transfer_already_reversed")
            amount = int(params.get("amount") or left)
            if amount <= 0 or amount > left:
                return error(400, "invalid_request_error", f"You cannot reverse more than the {left} left on this "
                             "transfer.", "amount_too_large", "amount")
            if self.account_balance(transfer["destination"]) - self.account_debits.get(transfer["destination"], 0) \
                    < amount:
                return error(400, "invalid_request_error", "Insufficient funds in the destination account to "
                             "reverse this transfer.", "balance_insufficient")
            reversal = {"id": f"trr_{secrets.token_hex(10)}", "object": "transfer_reversal", "amount": amount,
                        "currency": transfer["currency"], "created": int(time.time()), "transfer": transfer_id,
                        "balance_transaction": f"txn_{secrets.token_hex(8)}",
                        "destination_payment_refund": f"pyr_{secrets.token_hex(6)}", "source_refund": None,
                        "metadata": params.get("metadata", {})}
            transfer["amount_reversed"] += amount
            transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
            transfer.setdefault("reversals", {"object": "list", "data": []})["data"].append(reversal)
            self.platform_balance += amount
            return reversal
        return await self._idempotent(request, create)
    # Recurring billing (external-apis.md §1 "Off-session renewal", "Bringing the customer back on-session").

    def require_authentication(self, payment_method_id: str) -> None:
        """The issuer starts asking for authentication on a saved card: from now on it behaves as
        pm_card_authenticationRequired (off-session charges → 402 authentication_required)."""
        self.payment_methods[payment_method_id]["_alias"] = "pm_card_authenticationRequired"

    def authenticate_setup(self, setup_id: str) -> dict[str, Any]:
        """The customer authenticated a SetupIntent in Stripe.js (3-D Secure): `succeeded`, the card attached to the
        customer (setup_intent.succeeded fires with `payment_method` the saved card)."""
        setup = self.setup_intents[setup_id]
        attached = self._attach(setup["payment_method"], setup["customer"])
        assert not isinstance(attached, JSONResponse), "the card of a SetupIntent waiting for action attaches"
        setup.update(status="succeeded", payment_method=attached["id"], next_action=None, last_setup_error=None)
        return setup

    def fail_setup(self, setup_id: str) -> dict[str, Any]:
        """The customer failed (or abandoned) the SetupIntent's authentication: back to `requires_payment_method`
        with `last_setup_error` (setup_intent.setup_failed fires)."""
        setup = self.setup_intents[setup_id]
        setup.update(status="requires_payment_method", payment_method=None, next_action=None, last_setup_error={
            "type": "invalid_request_error", "code": "setup_intent_authentication_failure", "decline_code": None,
            "message": "We are unable to authenticate your payment method. Please choose a different payment "
                       "method and try again."})
        return setup

    def renewal_intents(self, billing_cycle_id: str) -> list[dict[str, Any]]:
        """The PaymentIntents made for one billing cycle (its metadata names it)."""
        return [intent for intent in self.intents.values()
                if intent["metadata"].get("billing_cycle_id") == billing_cycle_id]
