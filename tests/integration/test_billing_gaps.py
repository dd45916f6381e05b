"""Recurring billing, part three, over HTTP against the real database, Cerbos and the fake Stripe (through the
stripe SDK): renewals taxed as checkout taxes a cart, a new card retrying a renewal that waited for the customer's
authentication, 3-D Secure at subscribe (SetupIntent webhooks), customer notices mailed through the SMTP adapter to
a fake mail server (aiosmtpd) by dispatch-outbox. Time moves through the clock seam."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.domain.billing import rules
from cityos.graphql.core.relay import to_global_id
from cityos.integrations.smtp.notices import TOPICS as NOTICE_TOPICS
from cityos.jobs.outbox import dispatch_outbox
from tests.commerce_flow import ADDRESS, OPS, send_event, shop
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.fakes.smtp import FakeSmtp
from tests.fakes.stripe import FakeStripe
from tests.integration.test_billing import app_engine, create_plan, stripe_client, variant_and_vendor
from tests.integration.test_billing_lifecycle import SHIP_TO, Billing, Clock, at, clock, fake_card, scalar

__all__ = ["app_engine", "clock", "shop", "stripe_client"]


async def customer_billing(gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, app_engine: AsyncEngine,
                           stripe_client: Any, settings: Any, clock: Clock, prefix: str) -> tuple[Billing, str]:
    subject = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return Billing(gql, shop, tokens("customer", shop, subject=subject), app_engine, stripe_client, settings,
                   clock), subject


async def test_a_renewal_in_a_tax_inclusive_region_contains_its_tax(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    async with owner_engine.begin() as connection:
        await connection.execute(text("update region set tax_inclusive = true where tenant_id = :t"),
                                 {"t": shop.tenant_id})
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=1)
    billing, subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "incl")
    subscribed = await billing.subscribe(plan["id"], shippingAddress=SHIP_TO)
    run = await billing.renew(at(subscribed["trialEnd"]) + timedelta(minutes=1))
    assert run["paid"] == 1, run
    [cycle] = (await billing.mine())["cycles"]["nodes"]
    # 8.25 % contained in 2500: 2500 − round_half_up(2500 / 1.0825) = 2500 − 2309 = 191; the charge stays 2500.
    assert cycle["amount"]["amount"] == 2500
    assert fake_stripe.intents[cycle["paymentIntentId"]]["amount_received"] == 2500
    async with owner_engine.connect() as connection:
        order = (await connection.execute(text(
            "select subtotal, tax_total, total, tax_inclusive from orders where tenant_id = :t and customer_id = :c"),
            {"t": shop.tenant_id, "c": subject})).one()
    assert tuple(order) == (2500, 191, 2500, True)


async def sca_waiting(billing: Billing, fake_stripe: FakeStripe, plan: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A subscription whose first renewal waits for the customer's authentication (SCA)."""
    subscribed = await billing.subscribe(plan, shippingAddress=SHIP_TO)
    fake_stripe.require_authentication(fake_card(fake_stripe, await billing.mine()))
    run = await billing.renew(at(subscribed["trialEnd"]) + timedelta(minutes=1))
    assert run["action_required"] == 1, run
    mine = await billing.mine()
    assert mine["status"] == "PAST_DUE" and mine["cycles"]["nodes"][0]["actionRequired"] is True
    return mine, mine["cycles"]["nodes"][0]


async def test_a_new_card_retries_the_renewal_waiting_for_authentication_once(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=2)
    billing, subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "card")
    mine, cycle = await sca_waiting(billing, fake_stripe, plan["id"])
    clock.now = clock.now + timedelta(hours=3)

    # Two requests at once (two tabs): the cycle is charged off-session with a new card once, at once, with the
    # attempt's own idempotency key: paid, one order.
    first, second = await asyncio.gather(*(billing.ok("storefront/UpdateSubscriptionPaymentMethod", {
        "id": mine["id"], "paymentMethodId": "pm_card_visa"}) for _ in range(2)))
    assert {first["updateSubscriptionPaymentMethod"]["status"], second["updateSubscriptionPaymentMethod"]["status"]} \
        <= {"ACTIVE", "PAST_DUE"}
    intents = fake_stripe.renewal_intents(cycle["id"])
    assert [intent["status"] for intent in intents] == ["requires_payment_method", "succeeded"]
    assert (await billing.mine())["status"] == "ACTIVE"
    keys = [request["idempotency_key"] for request in fake_stripe.requests
            if request["path"] == "/v1/payment_intents"
            and request["idempotency_key"] in (cycle["id"], rules.renewal_idempotency_key(cycle["id"], 2))]
    assert keys == [cycle["id"], f"{cycle['id']}:2"]
    mine = await billing.mine()
    paid = mine["cycles"]["nodes"][0]
    assert paid["status"] == "PAID" and paid["orderId"] and paid["actionRequired"] is False
    assert [row["outcome"] for row in paid["attemptHistory"]["nodes"]] == ["ACTION_REQUIRED", "SUCCEEDED"]
    assert paid["attemptHistory"]["nodes"][1]["source"] == "customer"
    assert await scalar(owner_engine, "select count(*) from orders where tenant_id = :t and customer_id = :c",
                        t=shop.tenant_id, c=subject) == 1

    # Another new card now: nothing waits any more, nothing is charged.
    before = len(fake_stripe.renewal_intents(cycle["id"]))
    await billing.ok("storefront/UpdateSubscriptionPaymentMethod", {"id": mine["id"],
                                                                   "paymentMethodId": "pm_card_visa"})
    assert len(fake_stripe.renewal_intents(cycle["id"])) == before


async def test_a_new_card_that_fails_too_is_tried_once_and_dunning_goes_on(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=2)
    billing, subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "fail")
    mine, cycle = await sca_waiting(billing, fake_stripe, plan["id"])

    changed = (await billing.ok("storefront/UpdateSubscriptionPaymentMethod", {
        "id": mine["id"], "paymentMethodId": "pm_card_chargeCustomerFail"}))["updateSubscriptionPaymentMethod"]
    assert changed["status"] == "PAST_DUE"
    intents = fake_stripe.renewal_intents(cycle["id"])
    assert len(intents) == 2 and intents[-1]["last_payment_error"]["decline_code"] == "generic_decline"
    mine = await billing.mine()
    again = mine["cycles"]["nodes"][0]
    # Declined (not SCA): an ordinary failed renewal now, retried by dunning on its schedule; no order.
    assert again["status"] == "FAILED" and again["actionRequired"] is False
    assert again["declineCode"] == "generic_decline" and again["nextRetryAt"] is not None
    assert [row["outcome"] for row in again["attemptHistory"]["nodes"]] == ["ACTION_REQUIRED", "DECLINED"]
    assert await scalar(owner_engine, "select count(*) from orders where tenant_id = :t and customer_id = :c",
                        t=shop.tenant_id, c=subject) == 0
    assert at(again["nextRetryAt"]) < at(cycle["nextRetryAt"])  # the next of the schedule, not its last day

    # Saving yet another card does not charge the cycle again at once: it waits for its retry day.
    await billing.ok("storefront/UpdateSubscriptionPaymentMethod", {"id": mine["id"],
                                                                   "paymentMethodId": "pm_card_visa"})
    assert len(fake_stripe.renewal_intents(cycle["id"])) == 2
    run = await billing.retry(at(again["nextRetryAt"]) + timedelta(minutes=1))
    assert run["paid"] == 1, run
    assert len(fake_stripe.renewal_intents(cycle["id"])) == 3
    assert (await billing.mine())["status"] == "ACTIVE"


async def test_someone_else_cannot_trigger_the_retry(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=2)
    billing, _ = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "own")
    mine, cycle = await sca_waiting(billing, fake_stripe, plan["id"])
    other, _ = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "other")
    denied = await other.call("storefront/UpdateSubscriptionPaymentMethod", {"id": mine["id"],
                                                                            "paymentMethodId": "pm_card_visa"})
    assert error_codes(denied) == ["FORBIDDEN"]
    assert len(fake_stripe.renewal_intents(cycle["id"])) == 1




async def test_3ds_at_subscribe_waits_incomplete_and_setup_intent_webhooks_move_it_on(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock, http: httpx.AsyncClient) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=7)
    billing, _ = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "3ds")

    # The bank asks for authentication of the card set-up: not PAYMENT_FAILED but incomplete, with the secret.
    subscribed = await billing.subscribe(plan["id"], "pm_card_authenticationRequiredOnSetup",
                                         shippingAddress=SHIP_TO)
    assert subscribed["status"] == "INCOMPLETE" and subscribed["authenticationClientSecret"], subscribed
    [setup] = [setup for setup in fake_stripe.setup_intents.values()
               if setup["client_secret"] == subscribed["authenticationClientSecret"]]
    assert setup["status"] == "requires_action" and setup["metadata"]["subscription_id"]
    mine = await billing.mine()
    assert mine["status"] == "INCOMPLETE" and mine["paymentDetails"]["paymentMethodId"] is None
    assert "authenticationClientSecret" not in mine
    # Nothing renews an incomplete subscription (and for a day nothing expires it either).
    run = await billing.renew(at(subscribed["currentPeriodStart"]) + timedelta(hours=12))
    assert run["claimed"] == 0 and run["expired"] == 0, run

    # A failure of an earlier try arriving after the success (reordered), and replays, change nothing.
    earlier_failure = dict(setup, status="requires_payment_method", payment_method=None, last_setup_error={
        "code": "setup_intent_authentication_failure", "decline_code": None, "message": "Unable to authenticate."})
    succeeded = fake_stripe.authenticate_setup(setup["id"])
    event_id = f"evt_{uuid.uuid4().hex}"
    for response in [await send_event(http, fake_stripe, "setup_intent.succeeded", succeeded, event_id),
                     await send_event(http, fake_stripe, "setup_intent.succeeded", succeeded, event_id),
                     await send_event(http, fake_stripe, "setup_intent.setup_failed", earlier_failure)]:
        assert response.status_code == 200, response.text
    mine = await billing.mine()
    assert mine["status"] == "TRIALING" and mine["paymentDetails"]["paymentMethodId"] == succeeded["payment_method"]
    assert mine["trialEnd"] == subscribed["trialEnd"]  # the trial started at subscribing

    # Its trial ends: the card authenticated at set-up is charged off-session.
    run = await billing.renew(at(subscribed["trialEnd"]) + timedelta(minutes=1))
    assert run["paid"] == 1, run
    assert (await billing.mine())["status"] == "ACTIVE"


async def test_a_failed_3ds_card_set_up_expires_the_subscription_and_tells_the_customer(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock, http: httpx.AsyncClient) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=7)
    billing, subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "3dsf")
    subscribed = await billing.subscribe(plan["id"], "pm_card_authenticationRequiredOnSetup")
    assert subscribed["status"] == "INCOMPLETE"
    [setup] = [setup for setup in fake_stripe.setup_intents.values()
               if setup["client_secret"] == subscribed["authenticationClientSecret"]]

    failed = fake_stripe.fail_setup(setup["id"])
    response = await send_event(http, fake_stripe, "setup_intent.setup_failed", failed)
    assert response.status_code == 200, response.text
    late_success = dict(failed, status="succeeded", payment_method="pm_late", last_setup_error=None)
    assert (await send_event(http, fake_stripe, "setup_intent.succeeded", late_success)).status_code == 200
    mine = await billing.mine()
    assert mine["status"] == "EXPIRED" and mine["lastDeclineCode"] == "setup_intent_authentication_failure"
    assert mine["paymentDetails"]["paymentMethodId"] is None
    notice = await scalar(owner_engine, "select count(*) from outbox where tenant_id = :t and topic = "
                          "'billing.customer_notice' and payload->>'customer_id' = :c and "
                          "payload->>'kind' = 'setup_failed'", t=shop.tenant_id, c=subject)
    assert notice == 1
    # A SetupIntent of another subscription's card change naming this one changes nothing either.
    other = dict(failed, id="seti_other", status="succeeded", payment_method="pm_other", last_setup_error=None)
    assert (await send_event(http, fake_stripe, "setup_intent.succeeded", other)).status_code == 200
    assert (await billing.mine())["status"] == "EXPIRED"

    # A declined card (not an authentication) is still PAYMENT_FAILED at once, and nothing is written.
    declined = await billing.call("storefront/Subscribe", {"input": {
        "planId": plan["id"], "currencyCode": "usd", "paymentMethodId": "pm_card_chargeDeclined",
        "email": "ada@example.com"}})
    assert error_codes(declined) == ["PAYMENT_FAILED"]
    assert await scalar(owner_engine, "select count(*) from customer_subscription where tenant_id = :t and "
                        "customer_id = :c", t=shop.tenant_id, c=subject) == 1


# --- customer notices by email (the notification port's SMTP adapter, driven by dispatch-outbox) ---------------

async def notices(owner_engine: AsyncEngine, tenant_id: uuid.UUID, subject: str) -> list[tuple[str, str, Any]]:
    async with owner_engine.connect() as connection:
        rows = (await connection.execute(text(
            "select payload->>'kind' as kind, status, last_error from outbox where tenant_id = :t and topic = "
            "'billing.customer_notice' and payload->>'customer_id' = :c order by created_at"),
            {"t": tenant_id, "c": subject})).all()
    return [(row.kind, row.status, row.last_error) for row in rows]


async def test_a_skipped_renewal_and_the_last_dunning_failure_each_mail_the_customer_once(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop, sku="NW-TEE-L")
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=1)
    stocked, stocked_subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock,
                                                      "oos")
    stocked_email = f"{stocked_subject}@example.com"
    failing, failing_subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock,
                                                      "dun")
    failing_email = f"{failing_subject}@example.com"
    first = await stocked.subscribe(plan["id"], shippingAddress=SHIP_TO, email=stocked_email)
    in_stock, _ = await variant_and_vendor(owner_engine, shop, sku="NW-TEE-S")
    other_plan = await create_plan(gql, tokens("tenant_admin", shop), in_stock, trialDays=1)
    await failing.subscribe(other_plan["id"], "pm_card_chargeCustomerFail", email=failing_email)
    async with owner_engine.begin() as connection:
        await connection.execute(text("update variant set inventory_quantity = 0 where tenant_id = :t and "
                                      "sku = 'NW-TEE-L'"), {"t": shop.tenant_id})

    due = at(first["trialEnd"]) + timedelta(minutes=5)
    run = await stocked.renew(due)
    assert run["skipped"] == 1 and run["failed"] == 1, run  # out of stock; and a declined card: past due
    for retry_day in rules.DEFAULT_RETRY_DAYS:  # the dunning schedule walked to cancellation
        await failing.retry(due + timedelta(days=retry_day, minutes=1))
    assert (await failing.mine())["status"] == "CANCELED"

    with FakeSmtp({"notices": "s3cret/pass"}) as fake:
        smtp_settings = settings.model_copy(update={"CITYOS_SMTP_URL": fake.url.replace("s3cret/pass",
                                                                                         "s3cret%2Fpass")})
        for _ in range(2):  # a second run sends nothing again
            await dispatch_outbox(app_engine, smtp_settings, None, only=NOTICE_TOPICS)
        skipped = fake.to(stocked_email)
        dunned = fake.to(failing_email)
    assert [message["Subject"] for message in skipped] == ["Your subscription's delivery was skipped"]
    assert "out of stock" in skipped[0].get_payload() and "did not charge you" in skipped[0].get_payload()
    assert skipped[0]["From"] == settings.CITYOS_SMTP_FROM
    subjects = [message["Subject"] for message in dunned]
    assert subjects.count("Your subscription was canceled") == 1
    assert subjects.count("Your subscription's payment failed") == len(rules.DEFAULT_RETRY_DAYS)
    assert len({message["X-CityOS-Notice"] for message in dunned}) == len(dunned)  # each notice once
    assert {status for _, status, _ in await notices(owner_engine, shop.tenant_id, failing_subject)} == {"sent"}
    assert await notices(owner_engine, shop.tenant_id, stocked_subject) == [("renewal_skipped", "sent", None)]


async def test_without_a_mail_server_notices_are_kept_as_skipped_and_can_be_sent_later(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=1)
    billing, subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "nomail")
    email = f"{subject}@example.com"
    subscribed = await billing.subscribe(plan["id"], "pm_card_chargeCustomerFail", email=email)
    await billing.renew(at(subscribed["trialEnd"]) + timedelta(minutes=5))
    assert settings.CITYOS_SMTP_URL is None
    await dispatch_outbox(app_engine, settings, None, only=NOTICE_TOPICS)
    [(kind, status, reason)] = await notices(owner_engine, shop.tenant_id, subject)
    assert (kind, status) == ("payment_failed", "skipped") and "CITYOS_SMTP_URL" in reason

    # Listed to the tenant's admins; once a server is configured, retryOutboxMessage sends it.
    admin = tokens("tenant_admin", shop)
    listed = await gql(OPS["admin/OutboxMessages"], {"status": "SKIPPED", "first": 50}, token=admin)
    assert "errors" not in listed, listed
    [message] = [node for node in listed["data"]["outboxMessages"]["nodes"]
                 if node["topic"] == "billing.customer_notice"]
    retried = await gql(OPS["admin/RetryOutboxMessage"], {"id": message["id"]}, token=admin)
    assert retried["data"]["retryOutboxMessage"]["status"] == "PENDING", retried
    with FakeSmtp() as fake:
        await dispatch_outbox(app_engine, settings.model_copy(update={"CITYOS_SMTP_URL": fake.url}), None,
                              only=NOTICE_TOPICS)
        [mail] = fake.to(email)
    assert mail["Subject"] == "Your subscription's payment failed" and "generic_decline" in mail.get_payload()
    assert await notices(owner_engine, shop.tenant_id, subject) == [("payment_failed", "sent", None)]


async def test_a_refused_recipient_is_dead_and_a_busy_server_is_retried(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=1)
    billing, subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "rcpt")
    subscribed = await billing.subscribe(plan["id"], "pm_card_chargeCustomerFail", email=f"{subject}@example.com")
    await billing.renew(at(subscribed["trialEnd"]) + timedelta(minutes=5))
    with FakeSmtp() as fake:
        smtp_settings = settings.model_copy(update={"CITYOS_SMTP_URL": fake.url})
        async with owner_engine.begin() as connection:  # only this test's notice is due: the refusal is its own
            await connection.execute(text(
                "update outbox set next_attempt_at = now() + interval '1 hour' where topic = "
                "'billing.customer_notice' and status = 'pending' and payload->>'customer_id' <> :c"), {"c": subject})
        fake.refusals.append(451)
        await dispatch_outbox(app_engine, smtp_settings, None, only=NOTICE_TOPICS)
        [(_, status, error)] = await notices(owner_engine, shop.tenant_id, subject)
        assert status == "pending" and "451" in error and not fake.messages
        async with owner_engine.begin() as connection:
            await connection.execute(text("update outbox set next_attempt_at = now() where payload->>'customer_id' "
                                          "= :c"), {"c": subject})
        fake.refusals.append(550)
        await dispatch_outbox(app_engine, smtp_settings, None, only=NOTICE_TOPICS)
        [(_, status, error)] = await notices(owner_engine, shop.tenant_id, subject)
        assert status == "dead" and "550" in error and not fake.messages


# --- the first charge of a subscription without a trial is an order like a renewal; the setup fee a fee line ----

async def order_of(owner_engine: AsyncEngine, tenant_id: uuid.UUID, order_id: uuid.UUID) -> dict[str, Any]:
    async with owner_engine.connect() as connection:
        order = (await connection.execute(text(
            "select subtotal, discount_total, shipping_total, tax_total, total, tax_inclusive, status, "
            "payment_intent_id from orders where tenant_id = :t and id = :o"), {"t": tenant_id, "o": order_id})).one()
        lines = (await connection.execute(text(
            "select kind, title, quantity, unit_price, total, vendor_id from order_line where tenant_id = :t and "
            "order_id = :o order by kind desc"), {"t": tenant_id, "o": order_id})).all()
        parts = (await connection.execute(text(
            "select vendor_id, subtotal, tax_total, total from vendor_order where tenant_id = :t and order_id = :o"),
            {"t": tenant_id, "o": order_id})).all()
        sales = (await connection.execute(text(
            "select ct.line_amount, ct.commission_amount, ct.vendor_amount, l.kind from commission_transaction ct "
            "join order_line l on l.id = ct.order_line_id and l.tenant_id = ct.tenant_id "
            "where ct.tenant_id = :t and ct.order_id = :o and ct.kind = 'sale' order by l.kind desc"),
            {"t": tenant_id, "o": order_id})).all()
        shipments = (await connection.execute(text(
            "select count(*) from outbox where tenant_id = :t and topic = 'fleetbase.create_order' and "
            "payload->>'vendor_order_id' in (select id::text from vendor_order where tenant_id = :t and "
            "order_id = :o)"), {"t": tenant_id, "o": order_id})).scalar_one()
    return {"order": order, "lines": lines, "parts": parts, "sales": sales, "shipments": shipments}


async def test_the_first_charge_without_a_trial_is_an_order_with_the_setup_fee_as_a_fee_line(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, vendor = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("vendor_admin", shop, vendor=vendor), variant, trialDays=0,
                             prices=[{"currencyCode": "usd", "amount": 2500, "setupFee": 300}])
    billing, _ = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "first")
    stock = "select inventory_quantity from variant where tenant_id = :t and sku = 'NW-TEE-S'"
    before = await scalar(owner_engine, stock, t=shop.tenant_id)
    subscribed = await billing.subscribe(plan["id"], shippingAddress=SHIP_TO)
    assert subscribed["status"] == "ACTIVE" and subscribed["authenticationClientSecret"] is None
    [cycle] = (await billing.mine())["cycles"]["nodes"]
    assert cycle["status"] == "PAID" and cycle["periodIndex"] == 0 and cycle["orderId"]
    assert at(cycle["periodStart"]) == at(subscribed["currentPeriodStart"])
    # Period 1 and the setup fee, taxed at 8.25 % on both (2800 × 0.0825 = 231): one charge, on-session, the card
    # saved for the renewals.
    [intent] = fake_stripe.renewal_intents(cycle["id"])
    assert intent["amount_received"] == 3031 == cycle["amount"]["amount"]
    assert intent["setup_future_usage"] == "off_session" and intent["metadata"]["subscription_id"]
    assert [row["source"] for row in cycle["attemptHistory"]["nodes"]] == ["subscribe"]
    assert await scalar(owner_engine, stock, t=shop.tenant_id) == before - 1  # reserved and sold like checkout

    order_id = uuid.UUID(await scalar(owner_engine, "select order_id::text from billing_cycle where id = :c",
                                      c=cycle["id"]))
    found = await order_of(owner_engine, shop.tenant_id, order_id)
    order = found["order"]
    assert (order.subtotal, order.discount_total, order.shipping_total, order.tax_total, order.total) == \
        (2800, 0, 0, 231, 3031)
    assert order.status == "paid" and order.payment_intent_id == intent["id"]
    assert [(line.kind, line.quantity, line.unit_price, str(line.vendor_id)) for line in found["lines"]] == \
        [("item", 1, 2500, vendor), ("fee", 1, 300, vendor)]
    assert found["lines"][1].title.startswith("Setup fee")
    [part] = found["parts"]
    assert (str(part.vendor_id), part.subtotal, part.tax_total, part.total) == (vendor, 2800, 231, 3031)
    # The commission ledger: the first period's sale, and the setup fee's, at the same commission rules.
    assert [(sale.kind, sale.line_amount) for sale in found["sales"]] == [("item", 2500), ("fee", 300)]
    assert all(sale.commission_amount + sale.vendor_amount == sale.line_amount and sale.commission_amount > 0
               for sale in found["sales"])
    assert found["shipments"] == (1 if settings.FLEETBASE_URL else 0)

    # The first renewal: period 2, no setup fee any more.
    run = await billing.renew(at(subscribed["currentPeriodEnd"]) + timedelta(minutes=1))
    assert run["paid"] == 1, run
    renewal = (await billing.mine())["cycles"]["nodes"][0]
    assert renewal["periodIndex"] == 1 and renewal["amount"]["amount"] == 2706


async def test_with_a_trial_the_setup_fee_is_a_fee_line_of_the_first_renewal(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=5,
                             prices=[{"currencyCode": "usd", "amount": 2500, "setupFee": 300}])
    billing, _ = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "trialfee")
    intents_before = len(fake_stripe.intents)
    subscribed = await billing.subscribe(plan["id"])
    assert subscribed["status"] == "TRIALING" and len(fake_stripe.intents) == intents_before  # nothing charged
    run = await billing.renew(at(subscribed["trialEnd"]) + timedelta(minutes=1))
    assert run["paid"] == 1, run
    [cycle] = (await billing.mine())["cycles"]["nodes"]
    assert cycle["amount"]["amount"] == 3031
    order_id = uuid.UUID(await scalar(owner_engine, "select order_id::text from billing_cycle where id = :c",
                                      c=cycle["id"]))
    found = await order_of(owner_engine, shop.tenant_id, order_id)
    assert [(line.kind, line.total) for line in found["lines"]] == [("item", 2500), ("fee", 300)]
    assert found["shipments"] == 0  # no shipping address: nothing to deliver
    mine = await billing.mine()
    second = await billing.renew(at(mine["currentPeriodEnd"]) + timedelta(minutes=1))
    assert second["paid"] == 1
    assert (await billing.mine())["cycles"]["nodes"][0]["amount"]["amount"] == 2706  # the fee once only


async def test_a_first_charge_out_of_stock_writes_nothing(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop, sku="NW-TEE-M")
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=0)
    async with owner_engine.begin() as connection:
        await connection.execute(text("update variant set inventory_quantity = 0 where tenant_id = :t and "
                                      "sku = 'NW-TEE-M'"), {"t": shop.tenant_id})
    billing, subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "none")
    intents_before = len(fake_stripe.intents)
    refused = await billing.call("storefront/Subscribe", {"input": {
        "planId": plan["id"], "currencyCode": "usd", "paymentMethodId": "pm_card_visa", "email": "a@example.com"}})
    assert error_codes(refused) == ["OUT_OF_STOCK"], refused
    assert len(fake_stripe.intents) == intents_before
    assert await scalar(owner_engine, "select count(*) from customer_subscription where tenant_id = :t and "
                        "customer_id = :c", t=shop.tenant_id, c=subject) == 0


# --- subscribing from a cart ---------------------------------------------------------------------------------------

async def plan_cart(billing: Billing, plan: str, email: str, quantity: int = 1) -> str:
    cart = (await billing.ok("storefront/CreateCart", {"input": {"email": email}}))["createCart"]["id"]
    await billing.ok("storefront/AddSubscriptionToCart", {"cartId": cart, "planId": plan, "quantity": quantity})
    await billing.ok("storefront/SetShippingAddress", {"cartId": cart, "address": ADDRESS})
    return cart


async def test_a_cart_of_plans_checks_out_into_subscriptions_paid_by_its_payment_intent(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock, http: httpx.AsyncClient) -> None:
    variant, vendor = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("vendor_admin", shop, vendor=vendor), variant, trialDays=0,
                             prices=[{"currencyCode": "usd", "amount": 2500, "setupFee": 300}])
    other_variant, _ = await variant_and_vendor(owner_engine, shop, sku="NW-TEE-M")
    weekly = await create_plan(gql, tokens("tenant_admin", shop), other_variant, trialDays=0, interval="WEEK",
                               prices=[{"currencyCode": "usd", "amount": 1000}])
    billing, subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "cart")
    email = f"{subject}@example.com"
    cart = await plan_cart(billing, plan["id"], email)
    added = (await billing.ok("storefront/AddSubscriptionToCart", {"cartId": cart, "planId": weekly["id"],
                                                                   "quantity": 2}))["addSubscriptionToCart"]
    assert [(item["planId"], item["quantity"], item["amount"]["amount"], item["setupFee"]["amount"])
            for item in added["subscriptionItems"]] == [(plan["id"], 1, 2500, 300), (weekly["id"], 2, 2000, 0)]

    started = (await billing.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    # 2500 + 300 setup fee + 2 × 1000, taxed at 8.25 % (4800 × 0.0825 = 396): one PaymentIntent for it all, made
    # for the customer's Stripe Customer with the card to be saved for the renewals.
    assert started["amount"]["amount"] == 5196
    intent = fake_stripe.intents[started["paymentIntentId"]]
    assert intent["customer"] and intent["setup_future_usage"] == "off_session"
    paid = fake_stripe.pay(intent["id"], "pm_card_visa")
    order = (await billing.ok("storefront/CompleteCheckout", {"cartId": cart}))["completeCheckout"]
    assert order["totals"]["total"]["amount"] == 5196
    # The webhook arriving afterwards (and its replay) creates nothing twice.
    for _ in range(2):
        assert (await send_event(http, fake_stripe, "payment_intent.succeeded", paid)).status_code == 200

    mine = (await billing.ok("storefront/MySubscriptions", {"first": 10}))["mySubscriptions"]["nodes"]
    assert sorted((node["plan"]["id"], node["status"], node["quantity"]) for node in mine) == sorted(
        [(plan["id"], "ACTIVE", 1), (weekly["id"], "ACTIVE", 2)])
    for node in mine:
        [cycle] = node["cycles"]["nodes"]
        assert cycle["status"] == "PAID" and cycle["periodIndex"] == 0 and cycle["orderId"] == order["id"]
        assert cycle["paymentIntentId"] == intent["id"]
        assert node["paymentDetails"] == {"stripeCustomerId": intent["customer"],
                                          "paymentMethodId": paid["payment_method"]}
    assert sum(node["cycles"]["nodes"][0]["amount"]["amount"] for node in mine) == 5196  # split exactly
    order_id = uuid.UUID(await scalar(owner_engine, "select order_id::text from billing_cycle where "
                                      "payment_intent_id = :p limit 1", p=intent["id"]))
    found = await order_of(owner_engine, shop.tenant_id, order_id)
    assert sorted((line.kind, line.total) for line in found["lines"]) == [("fee", 300), ("item", 2000),
                                                                         ("item", 2500)]
    lines = (await gql(OPS["admin/OrderById"], {"id": order["id"]}, token=tokens("tenant_admin", shop)))[
        "data"]["order"]["lines"]
    assert sorted((line["kind"], line["total"]["amount"]) for line in lines) == [("FEE", 300), ("ITEM", 2000),
                                                                                ("ITEM", 2500)]
    assert len(found["sales"]) == 3  # the ledger: both plans' first periods and the setup fee

    # The weekly one renews off-session with the card the checkout saved.
    weekly_node = next(node for node in mine if node["plan"]["id"] == weekly["id"])
    run = await billing.renew(at(weekly_node["currentPeriodEnd"]) + timedelta(minutes=1))
    assert run["paid"] == 1, run
    renewed = next(node for node in (await billing.ok("storefront/MySubscriptions", {"first": 10}))[
        "mySubscriptions"]["nodes"] if node["plan"]["id"] == weekly["id"])
    [renewal] = fake_stripe.renewal_intents(renewed["cycles"]["nodes"][0]["id"])
    assert renewal["payment_method"] == paid["payment_method"] and renewal["amount_received"] == 2165


async def test_mixed_carts_guests_and_trial_plans_are_refused_with_typed_errors(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=0)
    trial = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=7)
    billing, subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "mixed")
    cart = await plan_cart(billing, plan["id"], f"{subject}@example.com")

    # A product added next to a plan: the checkout says why it cannot be one order.
    products = await billing.ok("storefront/Products", {"first": 100})
    other = next(v["id"] for p in products["products"]["nodes"] for v in p["variants"] if v["sku"] == "NW-TEE-L")
    await billing.ok("storefront/AddCartLine", {"cartId": cart, "variantId": other, "quantity": 1})
    intents_before = len(fake_stripe.intents)
    mixed = await billing.call("storefront/StartCheckout", {"cartId": cart})
    assert error_codes(mixed) == ["BAD_USER_INPUT"] and "products or subscriptions" in mixed["errors"][0]["message"]
    assert mixed["errors"][0]["extensions"]["field"] == "cartId"
    assert len(fake_stripe.intents) == intents_before
    again = await billing.call("storefront/AddSubscriptionToCart", {"cartId": cart, "planId": plan["id"],
                                                                    "quantity": 2})
    assert error_codes(again) == ["BAD_USER_INPUT"]

    fresh = (await billing.ok("storefront/CreateCart", {"input": {"email": "x@example.com"}}))["createCart"]["id"]
    refused = await billing.call("storefront/AddSubscriptionToCart", {"cartId": fresh, "planId": trial["id"],
                                                                      "quantity": 1})
    assert error_codes(refused) == ["BAD_USER_INPUT"] and refused["errors"][0]["extensions"]["field"] == "planId"

    guest_cart = (await gql(OPS["storefront/CreateCart"], {"input": {"email": "g@example.com"}}, key=shop.key))[
        "data"]["createCart"]["id"]
    guest = await gql(OPS["storefront/AddSubscriptionToCart"], {"cartId": guest_cart, "planId": plan["id"],
                                                                 "quantity": 1}, key=shop.key)
    assert error_codes(guest) == ["BAD_USER_INPUT"] and "sign in" in guest["errors"][0]["message"]
    unknown = await billing.call("storefront/AddSubscriptionToCart", {
        "cartId": fresh, "planId": to_global_id("SubscriptionPlan", uuid.uuid4()), "quantity": 1})
    assert error_codes(unknown) == ["NOT_FOUND"]
    # Without the product the cart of plans checks out (2500 + 8.25 % tax).
    [line] = (await billing.ok("storefront/Cart", {"id": cart}))["cart"]["lines"]
    await billing.ok("storefront/RemoveCartLine", {"cartId": cart, "lineId": line["id"]})
    started = (await billing.ok("storefront/StartCheckout", {"cartId": cart}))["startCheckout"]
    assert started["amount"]["amount"] == 2706


async def test_3ds_on_the_first_charge_waits_incomplete_and_its_webhook_records_the_order(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock, http: httpx.AsyncClient) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=0)
    billing, subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "pi3ds")
    subscribed = await billing.subscribe(plan["id"], "pm_card_authenticationRequired", shippingAddress=SHIP_TO)
    assert subscribed["status"] == "INCOMPLETE" and subscribed["authenticationClientSecret"], subscribed
    [cycle] = (await billing.mine())["cycles"]["nodes"]
    assert cycle["status"] == "FAILED" and cycle["actionRequired"] is True and cycle["nextRetryAt"] is None
    [intent] = fake_stripe.renewal_intents(cycle["id"])
    assert intent["client_secret"] == subscribed["authenticationClientSecret"]
    assert intent["status"] == "requires_action"
    # Neither job touches it while the customer authenticates.
    later = at(subscribed["currentPeriodStart"]) + timedelta(hours=1)
    assert (await billing.renew(later))["claimed"] == 0 and (await billing.retry(later))["retried"] == 0

    # Stripe.js authenticates it; the card then behaves as the test card that asks once and then charges
    # off-session (4000 0025 0000 3155).
    paid = fake_stripe.pay(intent["id"], "pm_card_authenticationRequiredOnSetup")
    for _ in range(2):  # and its replay
        assert (await send_event(http, fake_stripe, "payment_intent.succeeded", paid)).status_code == 200
    mine = await billing.mine()
    assert mine["status"] == "ACTIVE" and mine["paymentDetails"]["paymentMethodId"] == paid["payment_method"]
    [cycle] = mine["cycles"]["nodes"]
    assert cycle["status"] == "PAID" and cycle["orderId"]
    assert await scalar(owner_engine, "select count(*) from orders where tenant_id = :t and customer_id = :c",
                        t=shop.tenant_id, c=subject) == 1
    # The card saved by that payment renews off-session.
    assert (await billing.renew(at(mine["currentPeriodEnd"]) + timedelta(minutes=1)))["paid"] == 1


async def test_a_subscription_never_confirmed_expires_after_a_day_and_its_payment_is_canceled(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop, sku="NW-TEE-M")
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=0)
    billing, subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "never")
    stock = "select inventory_quantity from variant where tenant_id = :t and sku = 'NW-TEE-M'"
    before = await scalar(owner_engine, stock, t=shop.tenant_id)
    subscribed = await billing.subscribe(plan["id"], "pm_card_authenticationRequired", quantity=2)
    assert subscribed["status"] == "INCOMPLETE"
    assert await scalar(owner_engine, stock, t=shop.tenant_id) == before - 2  # held for the first order
    [cycle] = (await billing.mine())["cycles"]["nodes"]

    # Not yet: the customer has a day to authenticate.
    assert (await billing.renew(at(subscribed["currentPeriodStart"]) + timedelta(hours=12)))["expired"] == 0
    run = await billing.renew(at(subscribed["currentPeriodStart"]) + timedelta(days=1, hours=1))
    assert run["expired"] == 1 and run["claimed"] == 0, run
    mine = await billing.mine()
    assert mine["status"] == "EXPIRED" and mine["cycles"]["nodes"][0]["status"] == "SKIPPED"
    assert await scalar(owner_engine, stock, t=shop.tenant_id) == before  # the units are back
    assert [kind for kind, _, _ in await notices(owner_engine, shop.tenant_id, subject)] == ["incomplete_expired"]
    # Its PaymentIntent is canceled at Stripe by the outbox: it can no longer be paid.
    await dispatch_outbox(app_engine, settings, None, stripe=stripe_client, only=("stripe.cancel_payment_intent",))
    assert fake_stripe.intents[cycle["paymentIntentId"]]["status"] == "canceled"
    assert (await billing.renew(at(subscribed["currentPeriodStart"]) + timedelta(days=3)))["expired"] == 0


async def test_a_fee_line_is_not_returned(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=0,
                             prices=[{"currencyCode": "usd", "amount": 2500, "setupFee": 300}])
    billing, _ = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "ret")
    await billing.subscribe(plan["id"], shippingAddress=SHIP_TO)
    order = (await billing.mine())["cycles"]["nodes"][0]["orderId"]
    admin = tokens("tenant_admin", shop)
    fulfilled = await gql(OPS["admin/UpdateOrderStatus"], {"id": order, "status": "FULFILLED"}, token=admin)
    assert "errors" not in fulfilled, fulfilled
    lines = (await gql(OPS["admin/OrderById"], {"id": order}, token=admin))["data"]["order"]["lines"]
    fee = next(line for line in lines if line["kind"] == "FEE")
    item = next(line for line in lines if line["kind"] == "ITEM")
    refused = await billing.call("storefront/RequestReturn", {"orderId": order, "reason": "not needed", "lines": [
        {"lineId": fee["id"], "quantity": 1}]})
    assert error_codes(refused) == ["BAD_USER_INPUT"], refused
    assert refused["errors"][0]["extensions"]["field"] == "lines.0.lineId"
    asked = await billing.ok("storefront/RequestReturn", {"orderId": order, "reason": "wrong size", "lines": [
        {"lineId": item["id"], "quantity": 1}]})
    assert asked["requestReturn"]["status"] == "REQUESTED"


async def test_a_first_payment_arriving_after_the_subscription_expired_is_refunded_once(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock, http: httpx.AsyncClient) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop, sku="NW-TEE-M")
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=0)
    billing, subject = await customer_billing(gql, tokens, shop, app_engine, stripe_client, settings, clock, "late")
    subscribed = await billing.subscribe(plan["id"], "pm_card_authenticationRequired")
    [cycle] = (await billing.mine())["cycles"]["nodes"]
    run = await billing.renew(at(subscribed["currentPeriodStart"]) + timedelta(days=1, hours=1))
    assert run["expired"] == 1, run
    # The customer authenticates after all, before the outbox canceled the PaymentIntent: Stripe took the money.
    paid = fake_stripe.pay(cycle["paymentIntentId"], "pm_card_authenticationRequiredOnSetup")
    for _ in range(2):  # and its replay
        assert (await send_event(http, fake_stripe, "payment_intent.succeeded", paid)).status_code == 200
    await dispatch_outbox(app_engine, settings, None, stripe=stripe_client,
                          only=("stripe.refund_payment", "stripe.cancel_payment_intent"))
    refunds = [refund for refund in fake_stripe.refunds.values() if refund["payment_intent"] == paid["id"]]
    assert [refund["amount"] for refund in refunds] == [paid["amount_received"]]  # all of it, once
    mine = await billing.mine()
    assert mine["status"] == "EXPIRED" and mine["cycles"]["nodes"][0]["status"] == "SKIPPED"
    assert await scalar(owner_engine, "select count(*) from orders where tenant_id = :t and customer_id = :c",
                        t=shop.tenant_id, c=subject) == 0
    assert await scalar(owner_engine, "select count(*) from billing_attempt where tenant_id = :t "
                        "and payment_intent_id = :p and outcome = 'succeeded' and message like 'refunded:%'",
                        t=shop.tenant_id, p=paid["id"]) == 1
