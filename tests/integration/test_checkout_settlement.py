"""What a paid checkout becomes, over HTTP with the real SDK against the fake Stripe: the buyer (a guest too)
reads its order with the order access token; a payment that cannot become an order (a second tab changed the
cart, the stock sold out after the reservation expired) is refunded automatically, recorded and visible; a
changed cart's PaymentIntent is canceled through Stripe; failed webhook events are visible and replayable; a
Stripe set-up error is UNAVAILABLE for the customer and an error line for the operator."""

from __future__ import annotations

import hashlib
import logging

import httpx
from sqlalchemy import text

from cityos.graphql.core.relay import from_global_id
from cityos.jobs.outbox import dispatch_outbox
from cityos.jobs.registry import JOBS, JobContext
from tests.commerce_flow import OPS, Shopper, order_count, send_event, shop, stock
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.fakes.stripe import FakeStripe

NOT_CURRENT = "refused: this payment does not belong to the cart's current checkout"


async def dispatch(server, settings) -> str:
    """The dispatch-outbox job, with the app's Stripe client (cancellations and refunds)."""
    async with httpx.AsyncClient() as client:
        return await dispatch_outbox(server.services.app_engine, settings, client, stripe=server.services.stripe)


def refunds_of(stripe: FakeStripe, intent_id: str) -> list[dict]:
    return [refund for refund in stripe.refunds.values() if refund["payment_intent"] == intent_id]


def nothing(body: dict, field: str) -> bool:
    """No data came back for the root field (the field is null, or the whole data is)."""
    return (body.get("data") or {}).get(field) is None


async def one(owner_engine, sql: str, **params):
    async with owner_engine.connect() as connection:
        return (await connection.execute(text(sql), params)).one()


async def test_a_guest_reads_the_order_its_cart_became_with_the_access_token(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, other_world: TenantWorld,
        fake_stripe: FakeStripe, owner_engine, settings) -> None:
    buyer = Shopper(gql, shop)
    cart = await buyer.ready_cart({"CP-HONEY-12": 2})
    session = (await buyer.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    assert session["publishableKey"] == settings.STRIPE_PUBLISHABLE_KEY
    assert session["publishableKey"].startswith("pk_test_")
    assert session["clientSecret"].startswith(session["paymentIntentId"] + "_secret_")
    token = session["orderAccessToken"]
    again = (await buyer.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    assert (again["orderAccessToken"], again["paymentIntentId"]) == (token, session["paymentIntentId"])
    stored = await one(owner_engine, "select access_token_hash, row_to_json(c)::text as whole from cart c "
                                     "where id = :id", id=from_global_id(cart)[1])
    assert stored.access_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored.whole  # only its hash is kept

    paid = await send_event(http, fake_stripe, "payment_intent.succeeded", fake_stripe.pay(session["paymentIntentId"]))
    assert paid.json()["outcome"] == f"order {from_global_id(session['orderId'])[1]}"
    for _ in range(2):  # the webhook made the order; completeCheckout returns it on every call
        order = (await buyer.ok("storefront/CompleteCheckout", {"cartId": cart, "accessToken": token}))
        assert order["completeCheckout"] == {"id": session["orderId"], "status": "PAID", "email": "ada@example.com",
                                             "totals": {"total": session["amount"]}}
    refreshed = await Shopper(gql, shop).ok("storefront/OrderByAccessToken",  # a page refresh: a new request
                                            {"id": session["orderId"], "accessToken": token})
    assert refreshed["order"]["id"] == session["orderId"]
    assert [(line["sku"], line["quantity"]) for line in refreshed["order"]["lines"]] == [("CP-HONEY-12", 2)]
    order_row = await one(owner_engine, "select row_to_json(o)::text as whole from orders o where id = :id",
                          id=from_global_id(session["orderId"])[1])
    assert token not in order_row.whole

    other = Shopper(gql, shop)  # another guest of the same store, with a checkout of its own
    other_cart = await other.ready_cart({"CP-HONEY-12": 1})
    other_token = (await other.ok("storefront/StartCheckout", {"cartId": other_cart}))["startCheckout"][
        "orderAccessToken"]
    assert other_token != token
    for variables in ({"id": session["orderId"]}, {"id": session["orderId"], "accessToken": other_token},
                      {"id": session["orderId"], "accessToken": token[:-1] + ("A" if token[-1] != "A" else "B")},
                      {"id": session["orderId"], "accessToken": ""}):
        denied = await other("storefront/OrderByAccessToken", variables)
        assert error_codes(denied) == ["FORBIDDEN"] and nothing(denied, "order"), variables
    for variables in ({"cartId": cart}, {"cartId": cart, "accessToken": other_token}):
        denied = await other("storefront/CompleteCheckout", variables)
        assert error_codes(denied) == ["FORBIDDEN"] and nothing(denied, "completeCheckout"), variables
    abroad = await gql(OPS["storefront/OrderByAccessToken"], {"id": session["orderId"], "accessToken": token},
                       key=other_world.key)  # another tenant's storefront, even with the right token
    assert error_codes(abroad) == ["NOT_FOUND"] and nothing(abroad, "order")


async def test_a_second_tab_changes_the_cart_then_the_old_payment_succeeds(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, owner_engine,
        tokens: Tokens, server, settings) -> None:
    buyer = Shopper(gql, shop)
    honey = await stock(owner_engine, "CP-HONEY-12", shop.tenant_id)
    cart = await buyer.ready_cart({"CP-HONEY-12": 1})
    first = (await buyer.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    # The second tab adds a line: the first checkout is superseded, its cancellation waits in the outbox.
    await buyer.ok("storefront/AddCartLine", {"cartId": cart, "variantId": await buyer.variant("CP-COFFEE-1LB"),
                                              "quantity": 1})
    view = (await buyer.ok("storefront/Cart", {"id": cart}))["cart"]
    assert [(a["paymentIntentId"], a["status"]) for a in view["checkoutAttempts"]] == [
        (first["paymentIntentId"], "superseded")]
    assert not any(r["path"].endswith("/cancel") for r in fake_stripe.requests
                   if first["paymentIntentId"] in r["path"])  # no Stripe call inside the cart change

    # The first tab's customer pays the old PaymentIntent anyway.
    paid = fake_stripe.pay(first["paymentIntentId"])
    response = await send_event(http, fake_stripe, "payment_intent.succeeded", paid, event_id="evt_second_tab")
    assert response.status_code == 200
    assert response.json()["outcome"].startswith(NOT_CURRENT)
    assert response.json()["outcome"].endswith("the payment is refunded")
    assert await order_count(owner_engine, shop.tenant_id) == 0
    refunds = refunds_of(fake_stripe, first["paymentIntentId"])
    assert [(r["amount"], r["status"]) for r in refunds] == [(first["amount"]["amount"], "succeeded")]
    assert [r["idempotency_key"] for r in fake_stripe.requests if r["path"] == "/v1/refunds"
            and r["idempotency_key"].endswith(first["paymentIntentId"])] == [f"refund-{first['paymentIntentId']}"]

    # Stripe retries the delivery, and later sends another event for the same payment: nothing more happens.
    retry = await send_event(http, fake_stripe, "payment_intent.succeeded", paid, event_id="evt_second_tab")
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    late = await send_event(http, fake_stripe, "payment_intent.succeeded", paid)
    assert late.status_code == 200 and late.json()["outcome"].startswith(NOT_CURRENT)
    assert len(refunds_of(fake_stripe, first["paymentIntentId"])) == 1
    assert await order_count(owner_engine, shop.tenant_id) == 0

    # The buyer sees what happened on the cart; the store's admins in their list; the tenant's admins the event.
    view = (await buyer.ok("storefront/Cart", {"id": cart}))["cart"]
    attempt = view["checkoutAttempts"][0]
    assert (attempt["status"], attempt["refundId"], attempt["orderId"]) == ("refunded", refunds[0]["id"], None)
    assert attempt["reason"].startswith("this payment does not belong to the cart's current checkout")
    assert view["status"] == "OPEN"
    admin = tokens("store_admin", shop, stores=["store-0"])
    listed = (await gql(OPS["admin/CheckoutAttempts"], {"status": "refunded", "first": 10}, token=admin))["data"]
    assert [(n["paymentIntentId"], n["reason"]) for n in listed["checkoutAttempts"]["nodes"]] == [
        (first["paymentIntentId"], attempt["reason"])]
    events = (await gql(OPS["admin/WebhookEvents"], {"status": "refused", "first": 10},
                        token=tokens("tenant_admin", shop)))["data"]["webhookEvents"]["nodes"]
    assert {event["eventId"] for event in events} >= {"evt_second_tab"}
    assert all(NOT_CURRENT.removeprefix("refused: ") in event["error"] for event in events)

    # The outbox's cancellation finds the PaymentIntent succeeded: nothing to cancel, nothing failed.
    await dispatch(server, settings)
    cancel = await one(owner_engine, "select status, last_error from outbox where topic = "
                                     "'stripe.cancel_payment_intent' and payload->>'payment_intent_id' = :pi",
                       pi=first["paymentIntentId"])
    assert cancel.status == "sent" and cancel.last_error.startswith("not canceled")
    assert len(refunds_of(fake_stripe, first["paymentIntentId"])) == 1  # the dispatcher refunds nothing twice

    # The checkout of the cart as it is now goes through, and its order is built from what was paid.
    second = (await buyer.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    assert second["paymentIntentId"] != first["paymentIntentId"]
    assert second["amount"]["amount"] > first["amount"]["amount"]
    done = await send_event(http, fake_stripe, "payment_intent.succeeded", fake_stripe.pay(second["paymentIntentId"]))
    assert done.json()["outcome"].startswith("order ")
    order = (await buyer.ok("storefront/OrderByAccessToken", {"id": second["orderId"],
                                                              "accessToken": second["orderAccessToken"]}))["order"]
    assert order["totals"]["total"] == second["amount"]
    assert sorted(line["sku"] for line in order["lines"]) == ["CP-COFFEE-1LB", "CP-HONEY-12"]
    assert await order_count(owner_engine, shop.tenant_id) == 1
    assert await stock(owner_engine, "CP-HONEY-12", shop.tenant_id) == honey - 1  # sold once


async def test_changing_the_cart_cancels_the_old_payment_intent_through_stripe(
        gql: GraphQLClient, shop: TenantWorld, fake_stripe: FakeStripe, owner_engine, server, settings) -> None:
    buyer = Shopper(gql, shop)
    cart = await buyer.ready_cart({"LU-CANDLE": 1})
    first = (await buyer.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    options = (await buyer.ok("storefront/Cart", {"id": cart}))["cart"]["availableShippingOptions"]
    by_code = {option["code"]: option["id"] for option in options}
    await buyer.ok("storefront/SetShippingOption", {"cartId": cart, "shippingOptionId": by_code["express"]})
    assert fake_stripe.intents[first["paymentIntentId"]]["status"] == "requires_payment_method"  # not yet
    await dispatch(server, settings)
    assert fake_stripe.intents[first["paymentIntentId"]]["status"] == "canceled"
    assert f"cancel-{first['paymentIntentId']}" in {r["idempotency_key"] for r in fake_stripe.requests}
    attempts = (await buyer.ok("storefront/Cart", {"id": cart}))["cart"]["checkoutAttempts"]
    assert [(a["paymentIntentId"], a["status"]) for a in attempts] == [(first["paymentIntentId"], "canceled")]
    express = (await buyer.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    assert express["amount"]["amount"] > first["amount"]["amount"]
    # Back to standard shipping (A → B → A): a new PaymentIntent, since the first one is canceled.
    await buyer.ok("storefront/SetShippingOption", {"cartId": cart, "shippingOptionId": by_code["standard"]})
    back = (await buyer.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    assert back["amount"] == first["amount"]
    assert back["paymentIntentId"] not in (first["paymentIntentId"], express["paymentIntentId"])
    assert fake_stripe.intents[back["paymentIntentId"]]["status"] == "requires_payment_method"


async def test_an_expired_reservation_sold_out_before_the_payment_is_refunded(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, owner_engine,
        tokens: Tokens, server, settings) -> None:
    async with owner_engine.begin() as connection:
        await connection.execute(text("update variant set inventory_quantity = 1 where sku = 'LU-THROW-SLATE' "
                                      "and tenant_id = :t"), {"t": shop.tenant_id})
    slow = Shopper(gql, shop)
    cart = await slow.ready_cart({"LU-THROW-SLATE": 1})
    session = (await slow.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    async with owner_engine.begin() as connection:  # the slow buyer's 30 minutes pass
        await connection.execute(text("update inventory_reservation set expires_at = now() - interval '1 minute' "
                                      "where cart_id = :c"), {"c": from_global_id(cart)[1]})
    assert (await JOBS["release-expired-reservations"].run(
        JobContext(server.services.app_engine, settings, None))).startswith("released")
    fast = Shopper(gql, shop)  # someone else buys the last unit meanwhile
    fast_cart = await fast.ready_cart({"LU-THROW-SLATE": 1})
    fast_session = (await fast.ok("storefront/StartCheckout", {"cartId": fast_cart}))["startCheckout"]
    await send_event(http, fake_stripe, "payment_intent.succeeded", fake_stripe.pay(fast_session["paymentIntentId"]))

    response = await send_event(http, fake_stripe, "payment_intent.succeeded",
                                fake_stripe.pay(session["paymentIntentId"]))
    assert response.status_code == 200
    assert response.json()["outcome"].startswith("refused: the items sold out before the payment arrived")
    assert [r["amount"] for r in refunds_of(fake_stripe, session["paymentIntentId"])] == [session["amount"]["amount"]]
    assert await stock(owner_engine, "LU-THROW-SLATE", shop.tenant_id) == 0  # never below zero
    assert await order_count(owner_engine, shop.tenant_id) == 1  # the fast buyer's
    view = (await slow.ok("storefront/Cart", {"id": cart}))["cart"]
    assert view["paymentError"]["code"] == "payment_refunded" and "sold out" in view["paymentError"]["message"]
    assert view["checkoutAttempts"][0]["status"] == "refunded"
    refused = await slow("storefront/CompleteCheckout", {"cartId": cart, "accessToken": session["orderAccessToken"]})
    assert error_codes(refused) == ["PAYMENT_FAILED"] and "sold out" in refused["errors"][0]["message"]
    admin = (await gql(OPS["admin/CheckoutAttempts"], {"status": "refunded", "first": 10},
                       token=tokens("tenant_admin", shop)))["data"]["checkoutAttempts"]["nodes"]
    assert [(a["paymentIntentId"], a["reason"]) for a in admin] == [
        (session["paymentIntentId"], "the items sold out before the payment arrived (their reservation had expired)")]


async def test_the_order_is_built_from_the_snapshot_that_was_paid_for(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe,
        owner_engine) -> None:
    buyer = Shopper(gql, shop)
    cart = await buyer.ready_cart({"CP-HONEY-32": 2})
    session = (await buyer.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    async with owner_engine.begin() as connection:  # the merchant raises the price while the customer pays
        await connection.execute(text("update variant_price set amount = amount + 500 where tenant_id = :t and "
                                      "variant_id = (select id from variant where sku = 'CP-HONEY-32' and "
                                      "tenant_id = :t)"), {"t": shop.tenant_id})
    response = await send_event(http, fake_stripe, "payment_intent.succeeded",
                                fake_stripe.pay(session["paymentIntentId"]))
    assert response.json()["outcome"].startswith("order ")
    order = (await buyer.ok("storefront/CompleteCheckout", {"cartId": cart,
                                                            "accessToken": session["orderAccessToken"]}))
    assert order["completeCheckout"]["totals"]["total"] == session["amount"]
    assert refunds_of(fake_stripe, session["paymentIntentId"]) == []


async def test_a_failed_refund_leaves_the_event_failed_until_it_is_replayed(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, owner_engine,
        tokens: Tokens) -> None:
    buyer = Shopper(gql, shop)
    cart = await buyer.ready_cart({"NW-SOCK-1": 1})
    first = (await buyer.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    await buyer.ok("storefront/AddCartLine", {"cartId": cart, "variantId": await buyer.variant("NW-SOCK-1"),
                                              "quantity": 1})
    paid = fake_stripe.pay(first["paymentIntentId"])
    fake_stripe.failures = [500] * 6  # Stripe is down for the delivery and for its retry (3 tries each)
    try:
        delivered = await send_event(http, fake_stripe, "payment_intent.succeeded", paid, event_id="evt_refund_down")
        retried = await send_event(http, fake_stripe, "payment_intent.succeeded", paid, event_id="evt_refund_down")
    finally:
        fake_stripe.failures = []
    assert (delivered.status_code, retried.status_code) == (500, 500)  # Stripe keeps retrying a failed event
    assert refunds_of(fake_stripe, first["paymentIntentId"]) == []
    attempt = await one(owner_engine, "select status from checkout_attempt where payment_intent_id = :pi",
                        pi=first["paymentIntentId"])
    assert attempt.status == "refund_pending"  # decided and recorded; the refund itself is still owed

    admin = tokens("tenant_admin", shop)
    failed = (await gql(OPS["admin/WebhookEvents"], {"status": "failed", "first": 10}, token=admin))["data"]
    event = next(e for e in failed["webhookEvents"]["nodes"] if e["eventId"] == "evt_refund_down")
    assert event["attempts"] == 2 and "refund is not made yet" in event["error"]
    store_admin = await gql(OPS["admin/WebhookEvents"], {"status": "failed", "first": 10},
                            token=tokens("store_admin", shop, stores=["store-0"]))
    assert store_admin["data"]["webhookEvents"]["totalCount"] == 0
    forbidden = await gql(OPS["admin/ReplayWebhookEvent"], {"id": event["id"]},
                          token=tokens("store_admin", shop, stores=["store-0"]))
    assert error_codes(forbidden) == ["FORBIDDEN"]

    replayed = (await gql(OPS["admin/ReplayWebhookEvent"], {"id": event["id"]}, token=admin))
    assert replayed["data"]["replayWebhookEvent"]["status"] == "refused", replayed
    assert replayed["data"]["replayWebhookEvent"]["attempts"] == 3
    assert len(refunds_of(fake_stripe, first["paymentIntentId"])) == 1
    again = (await gql(OPS["admin/ReplayWebhookEvent"], {"id": event["id"]}, token=admin))
    assert again["data"]["replayWebhookEvent"]["status"] == "refused"
    assert len(refunds_of(fake_stripe, first["paymentIntentId"])) == 1  # replays never refund twice
    attempt = await one(owner_engine, "select status, refund_id from checkout_attempt where payment_intent_id = :pi",
                        pi=first["paymentIntentId"])
    refund = refunds_of(fake_stripe, first["paymentIntentId"])[0]
    assert (attempt.status, attempt.refund_id) == ("refunded", refund["id"])
    assert await order_count(owner_engine, shop.tenant_id) == 0

    fine = await send_event(http, fake_stripe, "customer.created", {"id": "cus_1", "object": "customer",
                                                                    "metadata": {"tenant_id": str(shop.tenant_id)}})
    assert fine.status_code == 200
    ignored = next(e for e in (await gql(OPS["admin/WebhookEvents"], {"status": "ignored", "first": 50},
                                         token=admin))["data"]["webhookEvents"]["nodes"])
    refused = await gql(OPS["admin/ReplayWebhookEvent"], {"id": ignored["id"]}, token=admin)
    assert error_codes(refused) == ["BAD_USER_INPUT"]


async def test_stripe_set_up_errors_are_unavailable_and_card_errors_payment_failed(
        gql: GraphQLClient, shop: TenantWorld, fake_stripe: FakeStripe, owner_engine, caplog) -> None:
    buyer = Shopper(gql, shop)
    cart = await buyer.ready_cart({"CP-HONEY-32": 1})
    before = await stock(owner_engine, "CP-HONEY-32", shop.tenant_id)
    real_key = fake_stripe.api_key
    fake_stripe.api_key = "sk_test_rolled_" + "r" * 24  # the platform's key was rolled in the Dashboard
    caplog.set_level(logging.ERROR, logger="cityos.integrations.stripe.client")
    try:
        bad_key = await buyer("storefront/StartCheckout", {"cartId": cart})
    finally:
        fake_stripe.api_key = real_key
    assert error_codes(bad_key) == ["UNAVAILABLE"]
    assert "card" not in bad_key["errors"][0]["message"]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
             and r.name == "cityos.integrations.stripe.client"]
    assert len(lines) == 1 and "AuthenticationError (HTTP 401" in lines[0] and "STRIPE_API_KEY" in lines[0]
    assert real_key not in lines[0]
    assert await stock(owner_engine, "CP-HONEY-32", shop.tenant_id) == before  # nothing reserved

    cases = [((403, "invalid_request_error", "", "The provided key 'rk_test_***abcd' does not have the required "
                                                 "permissions for this endpoint on account 'acct_1'."), "UNAVAILABLE"),
             ((400, "invalid_request_error", "parameter_unknown",
               "Received unknown parameter: automatic_payment_methods"), "UNAVAILABLE"),
             ((400, "invalid_request_error", "amount_too_small",
               "Amount must be at least $0.50 usd"), "PAYMENT_FAILED"),
             ((402, "card_error", "card_declined", "Your card was declined."), "PAYMENT_FAILED")]
    for failure, code in cases:
        fake_stripe.failures = [failure]
        try:
            body = await buyer("storefront/StartCheckout", {"cartId": cart})
        finally:
            fake_stripe.failures = []
        assert error_codes(body) == [code], (failure, body)
    assert len([r for r in caplog.records if r.levelno == logging.ERROR
                and r.name == "cityos.integrations.stripe.client"]) == 3
    ok = await buyer.ok("storefront/StartCheckout", {"cartId": cart})  # the key fixed: checkout works
    assert ok["startCheckout"]["amount"]["amount"] > 0


__all__ = ["shop"]
