"""Recurring billing, part two, over HTTP against the real database, Cerbos and the fake Stripe: renewal orders
through the checkout's order path, dunning (retry-failed-payments), SCA, renewal webhooks, self-service, admin
and vendor views, field permissions and live subscription events. Time moves through the jobs' clock seam."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.domain.billing import renewals, rules, runs
from cityos.graphql.core.relay import to_global_id
from cityos.integrations.stripe.billing import StripeBilling
from cityos.jobs.billing import process_billing_cycles, retry_failed_payments
from cityos.jobs.registry import JOBS, JobContext
from cityos.jobs.scheduler import run_now
from cityos.realtime.events import PendingEvents
from tests.commerce_flow import ADDRESS, OPS, send_event, shop
from tests.conftest import GraphQLClient, Server, TenantWorld, Tokens, error_codes
from tests.fakes.stripe import FakeStripe
from tests.integration.test_billing import app_engine, create_plan, stripe_client, variant_and_vendor
from tests.integration.test_subscriptions import Client

__all__ = ["app_engine", "shop", "stripe_client"]

SHIP_TO = {"firstName": ADDRESS["firstName"], "lastName": ADDRESS["lastName"], "address1": ADDRESS["address1"],
           "city": ADDRESS["city"], "province": ADDRESS["province"], "postalCode": ADDRESS["postalCode"],
           "countryCode": ADDRESS["countryCode"]}


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


class Clock:
    """The time seam: the server's clock (self-service, webhooks) and the jobs' run at the same, movable now."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(server: Server) -> Iterator[Clock]:
    moved = Clock()
    original = server.services.clock
    server.services.clock = moved
    yield moved
    server.services.clock = original


class Billing:
    """The jobs of one tenant at a chosen time (the clock seam), and the customer's view over HTTP."""

    def __init__(self, gql: GraphQLClient, world: TenantWorld, token: str, engine: AsyncEngine, stripe: Any,
                 settings: Any, clock: Clock) -> None:
        self.gql, self.world, self.token = gql, world, token
        self.engine, self.stripe, self.settings, self.clock = engine, stripe, settings, clock

    async def renew(self, when: datetime) -> dict[str, int]:
        self.clock.now = when
        return await process_billing_cycles(self.engine, self.stripe, self.settings, self.world.tenant_id,
                                            clock=self.clock)

    async def retry(self, when: datetime) -> dict[str, int]:
        self.clock.now = when
        return await retry_failed_payments(self.engine, self.stripe, self.settings, self.world.tenant_id,
                                           clock=self.clock)

    async def call(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        return await self.gql(OPS[name], variables, token=self.token, key=self.world.key)

    async def ok(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = await self.call(name, variables)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def mine(self) -> dict[str, Any]:
        [subscription] = (await self.ok("storefront/MySubscriptions", {"first": 10}))["mySubscriptions"]["nodes"]
        return subscription  # type: ignore[no-any-return]

    async def subscribe(self, plan: str, payment_method: str = "pm_card_visa", **extra: Any) -> dict[str, Any]:
        data = await self.ok("storefront/Subscribe", {"input": {
            "planId": plan, "currencyCode": "usd", "paymentMethodId": payment_method, "email": "ada@example.com",
            **extra}})
        return data["subscribe"]  # type: ignore[no-any-return]


async def scalar(owner_engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with owner_engine.connect() as connection:
        return (await connection.execute(text(sql), params)).scalar_one()


def fake_card(stripe: FakeStripe, subscription: dict[str, Any]) -> str:
    return str(subscription["paymentDetails"]["paymentMethodId"])


async def test_trial_two_renewal_orders_then_dunning_to_cancellation(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    """The deployment plan's scenario C: a subscription with a trial; time moves past the trial and through two
    cycles (two renewal orders, two charges, ledger entries for the vendor); a payment fails and the dunning
    schedule is walked to cancellation."""
    variant, vendor = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("vendor_admin", shop, vendor=vendor), variant, trialDays=14)
    subject = f"ada-{uuid.uuid4().hex[:8]}"
    billing = Billing(gql, shop, tokens("customer", shop, subject=subject), app_engine, stripe_client, settings, clock)
    stock_before = await scalar(owner_engine, "select inventory_quantity from variant where tenant_id = :t and "
                                "sku = 'NW-TEE-S'", t=shop.tenant_id)
    subscribed = await billing.subscribe(plan["id"], shippingAddress=SHIP_TO)
    assert subscribed["status"] == "TRIALING"
    trial_end = at(subscribed["trialEnd"])

    # Past the trial: the first renewal is charged and becomes an order, split for the vendor and in its ledger.
    first = await billing.renew(trial_end + timedelta(hours=1))
    assert first["claimed"] == 1 and first["paid"] == 1, first
    # Through the second period: the second renewal.
    mine = await billing.mine()
    assert mine["status"] == "ACTIVE" and at(mine["currentPeriodStart"]) == trial_end
    second = await billing.renew(at(mine["currentPeriodEnd"]) + timedelta(minutes=5))
    assert second["claimed"] == 1 and second["paid"] == 1, second
    mine = await billing.mine()
    paid = [cycle for cycle in mine["cycles"]["nodes"] if cycle["status"] == "PAID"]
    assert [cycle["periodIndex"] for cycle in paid] == [1, 0]
    orders = {cycle["orderId"] for cycle in paid}
    assert len(orders) == 2 and None not in orders
    for cycle in paid:
        [intent] = fake_stripe.renewal_intents(cycle["id"])  # one charge per cycle
        assert intent["status"] == "succeeded" and intent["amount_received"] == 2706  # 8.25 % tax added
        [attempt] = cycle["attemptHistory"]["nodes"]
        assert attempt["outcome"] == "SUCCEEDED" and attempt["paymentIntentId"] == intent["id"]
    async with owner_engine.connect() as connection:
        rows = (await connection.execute(text(
            "select o.id, o.total, o.subtotal, o.tax_total, o.tax_inclusive, o.status, o.payment_intent_id, "
            "o.shipping_address->>'city' as city, vo.vendor_id, vo.total as vendor_total, "
            "(select count(*) from commission_transaction ct where ct.order_id = o.id and ct.kind = 'sale' "
            " and ct.vendor_id = vo.vendor_id) as sales "
            "from orders o join vendor_order vo on vo.order_id = o.id and vo.tenant_id = o.tenant_id "
            "where o.tenant_id = :t and o.customer_id = :c order by o.created_at"),
            {"t": shop.tenant_id, "c": subject})).all()
    assert len(rows) == 2
    assert {to_global_id("Order", row.id) for row in rows} == orders
    for row in rows:
        assert (row.subtotal, row.tax_total, row.total, row.tax_inclusive) == (2500, 206, 2706, False)
        assert row.status == "paid" and row.city == "San Francisco"
        assert str(row.vendor_id) == vendor and row.vendor_total == 2706 and row.sales == 1
    assert await scalar(owner_engine, "select inventory_quantity from variant where tenant_id = :t and "
                        "sku = 'NW-TEE-S'", t=shop.tenant_id) == stock_before - 2  # reserved like checkout
    tenant = await scalar(owner_engine, "select slug from tenant where id = :t", t=shop.tenant_id)
    assert REGISTRY.get_sample_value("cityos_billing_active_subscriptions", {"tenant": tenant}) == 1
    assert REGISTRY.get_sample_value("cityos_billing_mrr_minor_units", {"tenant": tenant, "currency": "usd"}) == 2500

    # The card starts failing (the customer saved one that the bank now declines on every charge).
    changed = await billing.ok("storefront/UpdateSubscriptionPaymentMethod", {
        "id": mine["id"], "paymentMethodId": "pm_card_chargeCustomerFail"})
    assert changed["updateSubscriptionPaymentMethod"]["paymentDetails"]["paymentMethodId"].startswith("pm_")
    failed_before = REGISTRY.get_sample_value("cityos_billing_failed_renewals_total", {"tenant": tenant}) or 0
    due = at(mine["currentPeriodEnd"]) + timedelta(minutes=5)
    declined = await billing.renew(due)
    assert declined["failed"] == 1, declined
    mine = await billing.mine()
    assert mine["status"] == "PAST_DUE" and mine["lastDeclineCode"] == "generic_decline"
    failing = mine["cycles"]["nodes"][0]
    assert failing["status"] == "FAILED" and failing["orderId"] is None
    assert at(failing["nextRetryAt"]) == due + timedelta(days=1)

    # Dunning: +1, +3, +7 days after the first failure, each attempt a row with Stripe's decline code; nothing
    # happens between the retry days; after the last failure the subscription is canceled.
    assert (await billing.retry(due + timedelta(hours=23)))["retried"] == 0
    for day in rules.DEFAULT_RETRY_DAYS:
        run = await billing.retry(due + timedelta(days=day, minutes=1))
        assert run["retried"] == 1 and (run["failed"] == 1 or run["canceled"] == 1), run
    mine = await billing.mine()
    assert mine["status"] == "CANCELED" and mine["canceledAt"]
    failing = mine["cycles"]["nodes"][0]
    assert failing["status"] == "FAILED" and failing["attempts"] == 4 and failing["nextRetryAt"] is None
    history = failing["attemptHistory"]["nodes"]
    assert [(row["attempt"], row["outcome"], row["declineCode"]) for row in history] == [
        (n, "DECLINED", "generic_decline") for n in (1, 2, 3, 4)]
    assert len({row["paymentIntentId"] for row in history}) == 4  # a new idempotency key per retry
    assert REGISTRY.get_sample_value("cityos_billing_failed_renewals_total", {"tenant": tenant}) == failed_before + 4
    assert (await billing.retry(due + timedelta(days=30)))["retried"] == 0
    assert REGISTRY.get_sample_value("cityos_billing_active_subscriptions", {"tenant": tenant}) == 0
    assert REGISTRY.get_sample_value("cityos_billing_mrr_minor_units", {"tenant": tenant, "currency": "usd"}) == 0
    assert REGISTRY.get_sample_value("cityos_billing_churn_ratio", {"tenant": tenant}) == 1  # 1 canceled of 1
    assert (await billing.renew(due + timedelta(days=60)))["claimed"] == 0
    notices = await scalar(owner_engine, "select count(*) from outbox where tenant_id = :t and topic = "
                           "'billing.customer_notice' and payload->>'subscription_id' = :s",
                           t=shop.tenant_id, s=await _local_id(owner_engine, shop, subject))
    assert notices == 4  # three failed payments (each with its next retry), then the cancellation

    again = await billing.call("storefront/CancelCustomerSubscription", {"id": mine["id"]})
    assert error_codes(again) == ["INVALID_STATE_TRANSITION"]


async def _local_id(owner_engine: AsyncEngine, world: TenantWorld, subject: str) -> str:
    return str(await scalar(owner_engine, "select id from customer_subscription where tenant_id = :t and "
                            "customer_id = :c", t=world.tenant_id, c=subject))


async def test_sca_waits_for_the_customer_and_renewal_webhooks_never_count_twice(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, http: httpx.AsyncClient,
        clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=3)
    subject = f"sca-{uuid.uuid4().hex[:8]}"
    billing = Billing(gql, shop, tokens("customer", shop, subject=subject), app_engine, stripe_client, settings, clock)
    subscribed = await billing.subscribe(plan["id"], shippingAddress=SHIP_TO)
    mine = await billing.mine()
    fake_stripe.require_authentication(fake_card(fake_stripe, mine))

    due = at(subscribed["trialEnd"]) + timedelta(minutes=1)
    run = await billing.renew(due)
    assert run["action_required"] == 1, run
    mine = await billing.mine()
    cycle = mine["cycles"]["nodes"][0]
    assert mine["status"] == "PAST_DUE" and cycle["actionRequired"] is True
    assert cycle["declineCode"] == "authentication_required"
    assert cycle["attemptHistory"]["nodes"][0]["outcome"] == "ACTION_REQUIRED"
    # No blind retry: the retry days pass without a charge.
    requests_before = len(fake_stripe.requests)
    assert (await billing.retry(due + timedelta(days=1, minutes=1)))["retried"] == 0
    assert len(fake_stripe.requests) == requests_before

    # The customer comes back on-session: the client secret of the same PaymentIntent.
    confirmation = (await billing.ok("storefront/ConfirmSubscriptionPayment", {"id": mine["id"]}))[
        "confirmSubscriptionPayment"]
    intent = fake_stripe.intents[cycle["paymentIntentId"]]
    assert confirmation["paymentIntentId"] == intent["id"] and confirmation["clientSecret"] == intent["client_secret"]
    assert confirmation["cycleId"] == cycle["id"]
    other = Billing(gql, shop, tokens("customer", shop, subject="someone-else"), app_engine, stripe_client, settings,
                    clock)
    assert error_codes(await other.call("storefront/ConfirmSubscriptionPayment", {"id": mine["id"]})) == ["FORBIDDEN"]

    # Stripe.js confirms it; the webhook records the payment and its renewal order — once, whatever is replayed.
    paid = fake_stripe.pay(intent["id"])
    event_id = f"evt_{uuid.uuid4().hex}"
    response = await send_event(http, fake_stripe, "payment_intent.succeeded", paid, event_id)
    assert response.status_code == 200, response.text
    replay = await send_event(http, fake_stripe, "payment_intent.succeeded", paid, event_id)
    assert replay.status_code == 200
    late_failure = dict(paid, status="requires_payment_method", last_payment_error={
        "type": "card_error", "code": "authentication_required", "decline_code": "authentication_required",
        "message": "This payment requires authentication."})
    reordered = await send_event(http, fake_stripe, "payment_intent.payment_failed", late_failure)
    assert reordered.status_code == 200
    second_success = await send_event(http, fake_stripe, "payment_intent.succeeded", paid)
    assert second_success.status_code == 200
    mine = await billing.mine()
    cycle = mine["cycles"]["nodes"][0]
    assert mine["status"] == "ACTIVE" and cycle["status"] == "PAID" and cycle["orderId"]
    assert mine["cycles"]["totalCount"] == 1 and mine["currentPeriodStart"] == cycle["periodStart"]
    assert await scalar(owner_engine, "select count(*) from orders where tenant_id = :t and customer_id = :c",
                        t=shop.tenant_id, c=subject) == 1
    assert [row["outcome"] for row in cycle["attemptHistory"]["nodes"]] == ["ACTION_REQUIRED", "SUCCEEDED"]


async def test_self_service_skip_change_plan_pause_resume_cancel(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    admin = tokens("tenant_admin", shop)
    monthly = await create_plan(gql, admin, variant, trialDays=0, prices=[{"currencyCode": "usd", "amount": 3000}])
    weekly = await create_plan(gql, admin, variant, name="Weekly tee", trialDays=0, interval="WEEK",
                               prices=[{"currencyCode": "usd", "amount": 1000}])
    subject = f"self-{uuid.uuid4().hex[:8]}"
    billing = Billing(gql, shop, tokens("customer", shop, subject=subject), app_engine, stripe_client, settings, clock)
    subscribed = await billing.subscribe(monthly["id"], shippingAddress=SHIP_TO)
    assert subscribed["status"] == "ACTIVE"
    sid = subscribed["id"]

    # Skip the next cycle: at the period's end it is recorded as skipped, nothing is charged or shipped.
    skipped = (await billing.ok("storefront/SkipNextBillingCycle", {"id": sid}))["skipNextBillingCycle"]
    assert skipped["skipNextCycle"] is True
    period_end = at(subscribed["currentPeriodEnd"])
    intents_before = len(fake_stripe.intents)
    run = await billing.renew(period_end + timedelta(minutes=1))
    assert run["skipped"] == 1 and run["paid"] == 0, run
    mine = await billing.mine()
    assert mine["skipNextCycle"] is False and mine["cycles"]["nodes"][0]["status"] == "SKIPPED"
    assert at(mine["currentPeriodStart"]) == period_end and len(fake_stripe.intents) == intents_before

    # Change plan mid-period: the unused time of the old plan is credited, the new plan starts now and its first
    # period is charged less the credit (rounded half up, rules.prorate), as an order with the credit as discount.
    start, end = at(mine["currentPeriodStart"]), at(mine["currentPeriodEnd"])
    clock.now = start + timedelta(days=10)
    change = (await billing.ok("storefront/ChangeSubscriptionPlan", {"id": sid, "planId": weekly["id"]}))[
        "changeSubscriptionPlan"]
    credit = change["credit"]["amount"]
    assert credit == rules.prorate(3000, start, end, clock.now).credit > 1000
    assert change["subscription"]["plan"]["id"] == weekly["id"] and change["subscription"]["amount"]["amount"] == 1000
    assert change["subscription"]["creditBalance"]["amount"] == credit
    run = await billing.renew(clock.now + timedelta(minutes=1))
    assert run["paid"] == 1, run
    mine = await billing.mine()
    cycle = mine["cycles"]["nodes"][0]
    # The credit covers the whole first week: nothing is charged at Stripe, the order is still made (and shipped).
    assert cycle["amount"]["amount"] == 0 and cycle["creditApplied"]["amount"] == 1000
    assert cycle["paymentIntentId"].startswith("credit_") and cycle["orderId"]
    assert mine["creditBalance"]["amount"] == credit - 1000
    assert at(mine["currentPeriodEnd"]) - at(mine["currentPeriodStart"]) == timedelta(weeks=1)
    used = 1000
    async with owner_engine.connect() as connection:
        orders = (await connection.execute(text(
            "select total, discount_total, subtotal from orders where tenant_id = :t and customer_id = :c "
            "order by created_at"), {"t": shop.tenant_id, "c": subject})).all()
    # The first month's charge at subscribing was an order too (3000 + 8.25 % tax); then the credited week.
    assert [(order.subtotal, order.total) for order in orders[:1]] == [(3000, 3248)]
    order = orders[-1]
    assert len(orders) == 2 and (order.subtotal, order.discount_total, order.total) == (1000, used, 1000 - used)

    # Pause: nothing is billed; resume after the paid period: billing restarts from now.
    paused = (await billing.ok("storefront/PauseCustomerSubscription", {"id": sid}))["pauseCustomerSubscription"]
    assert paused["status"] == "PAUSED" and paused["pausedAt"]
    assert (await billing.renew(at(mine["currentPeriodEnd"]) + timedelta(days=30)))["claimed"] == 0
    assert error_codes(await billing.call("storefront/SkipNextBillingCycle", {"id": sid})) == \
        ["INVALID_STATE_TRANSITION"]
    resumed = (await billing.ok("storefront/ResumeCustomerSubscription", {"id": sid}))["resumeCustomerSubscription"]
    assert resumed["status"] == "ACTIVE" and resumed["pausedAt"] is None
    assert at(resumed["currentPeriodEnd"]) == clock.now  # due at once: a new anchor, the paused month not billed
    assert error_codes(await billing.call("storefront/ResumeCustomerSubscription", {"id": sid})) == \
        ["INVALID_STATE_TRANSITION"]

    # Cancel at period end: the next renewal cancels it instead of charging.
    later = (await billing.ok("storefront/CancelCustomerSubscription", {"id": sid, "atPeriodEnd": True}))[
        "cancelCustomerSubscription"]
    assert later["cancelAtPeriodEnd"] is True and later["status"] == "ACTIVE"
    run = await billing.renew(at(later["currentPeriodEnd"]) + timedelta(minutes=1))
    assert run["canceled"] == 1 and run["claimed"] == 0, run
    assert (await billing.mine())["status"] == "CANCELED"
    assert error_codes(await billing.call("storefront/CancelCustomerSubscription", {"id": sid})) == \
        ["INVALID_STATE_TRANSITION"]
    assert error_codes(await billing.call("storefront/PauseCustomerSubscription", {"id": sid})) == \
        ["INVALID_STATE_TRANSITION"]


async def test_out_of_stock_skips_the_renewal_and_notifies_the_customer_and_stripe_down_writes_nothing(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop, sku="NW-TEE-M")
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=2)
    subject = f"oos-{uuid.uuid4().hex[:8]}"
    billing = Billing(gql, shop, tokens("customer", shop, subject=subject), app_engine, stripe_client, settings, clock)
    subscribed = await billing.subscribe(plan["id"], shippingAddress=SHIP_TO, quantity=2)
    due = at(subscribed["trialEnd"]) + timedelta(minutes=1)

    # Stripe down during the job: the cycle stays due; no order, no cart left behind charging, nothing reserved
    # twice; the next run charges it once.
    stock = "select inventory_quantity from variant where tenant_id = :t and sku = 'NW-TEE-M'"
    before = await scalar(owner_engine, stock, t=shop.tenant_id)
    fake_stripe.failures.extend([503, 503, 503])
    down = await billing.renew(due)
    assert down["retry"] == 1 and down["paid"] == 0, down
    mine = await billing.mine()
    assert mine["status"] == "TRIALING" and mine["cycles"]["nodes"][0]["status"] == "PENDING"
    assert await scalar(owner_engine, "select count(*) from orders where tenant_id = :t and customer_id = :c",
                        t=shop.tenant_id, c=subject) == 0
    again = await billing.renew(due)
    assert again["paid"] == 1, again
    assert await scalar(owner_engine, stock, t=shop.tenant_id) == before - 2

    # Sold out before the next renewal: the cycle is skipped and recorded, nothing charged, the customer told.
    async with owner_engine.begin() as connection:
        await connection.execute(text("update variant set inventory_quantity = 1 where tenant_id = :t and "
                                      "sku = 'NW-TEE-M'"), {"t": shop.tenant_id})
    mine = await billing.mine()
    intents_before = len(fake_stripe.intents)
    run = await billing.renew(at(mine["currentPeriodEnd"]) + timedelta(minutes=1))
    assert run["skipped"] == 1 and run["paid"] == 0, run
    mine = await billing.mine()
    cycle = mine["cycles"]["nodes"][0]
    assert cycle["status"] == "SKIPPED" and "out of stock" in cycle["skipReason"]
    assert mine["status"] == "ACTIVE" and at(mine["currentPeriodStart"]) == at(cycle["periodStart"])
    assert len(fake_stripe.intents) == intents_before
    assert await scalar(owner_engine, stock, t=shop.tenant_id) == 1
    notice = await scalar(owner_engine, "select payload->>'kind' from outbox where tenant_id = :t and topic = "
                          "'billing.customer_notice' and payload->>'customer_id' = :c", t=shop.tenant_id, c=subject)
    assert notice == "renewal_skipped"


async def test_admin_filters_vendor_view_payment_details_and_dunning_policy(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, other_world: TenantWorld, owner_engine: AsyncEngine,
        app_engine: AsyncEngine, stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, vendor = await variant_and_vendor(owner_engine, shop)
    admin = tokens("tenant_admin", shop)
    plan = await create_plan(gql, admin, variant, trialDays=5)
    other_plan = await create_plan(gql, admin, variant, trialDays=20, name="Long trial")
    subject = f"adm-{uuid.uuid4().hex[:8]}"
    billing = Billing(gql, shop, tokens("customer", shop, subject=subject), app_engine, stripe_client, settings, clock)
    mine = await billing.subscribe(plan["id"])
    theirs = await Billing(gql, shop, tokens("customer", shop, subject=f"b-{subject}"), app_engine, stripe_client,
                           settings, clock).subscribe(other_plan["id"])

    async def listed(token: str, name: str = "admin/AdminCustomerSubscriptions", **variables: Any) -> Any:
        body = await gql(OPS[name], {"first": 50, **variables}, token=token)
        return body

    by_plan = await listed(admin, planId=plan["id"])
    assert [node["id"] for node in by_plan["data"]["customerSubscriptions"]["nodes"]] == [mine["id"]]
    assert by_plan["data"]["customerSubscriptions"]["nodes"][0]["paymentDetails"]["stripeCustomerId"].startswith(
        "cus_")
    soon = at(mine["currentPeriodEnd"]) + timedelta(days=1)
    renewing_soon = await listed(admin, renewsBefore=soon.isoformat(), status="TRIALING")
    ids = [node["id"] for node in renewing_soon["data"]["customerSubscriptions"]["nodes"]]
    assert mine["id"] in ids and theirs["id"] not in ids
    renewing_later = await listed(admin, renewsAfter=soon.isoformat())
    ids = [node["id"] for node in renewing_later["data"]["customerSubscriptions"]["nodes"]]
    assert theirs["id"] in ids and mine["id"] not in ids
    by_vendor = await listed(admin, vendorId=to_global_id("Vendor", vendor))
    assert {mine["id"], theirs["id"]} <= {node["id"] for node in by_vendor["data"]["customerSubscriptions"]["nodes"]}

    # The vendor sees the subscriptions to its plans, not their payment details (field permission).
    own_vendor = tokens("vendor_user", shop, vendor=vendor)
    seen = await listed(own_vendor, "vendor/VendorSubscriptions", planId=plan["id"])
    assert [node["id"] for node in seen["data"]["customerSubscriptions"]["nodes"]] == [mine["id"]]
    guarded = await listed(own_vendor, planId=plan["id"])
    assert guarded["data"]["customerSubscriptions"]["nodes"][0]["paymentDetails"] is None
    assert error_codes(guarded) == ["FORBIDDEN"]
    other_vendor = tokens("vendor_user", shop, vendor=str(uuid.uuid4()))
    assert (await listed(other_vendor, "vendor/VendorSubscriptions"))["data"]["customerSubscriptions"][
        "totalCount"] == 0
    assert (await listed(tokens("tenant_admin", other_world)))["data"]["customerSubscriptions"]["totalCount"] == 0

    # The tenant's dunning policy: set by its admins, refused to others and to bad input.
    policy = await gql(OPS["admin/DunningPolicy"], {}, token=admin)
    assert policy["data"]["dunningPolicy"] == {"retryDays": [1, 3, 7], "finalAction": "CANCEL"}
    changed = await gql(OPS["admin/SetDunningPolicy"], {"retryDays": [2, 4], "finalAction": "PAUSE"}, token=admin)
    assert changed["data"]["setDunningPolicy"] == {"retryDays": [2, 4], "finalAction": "PAUSE"}, changed
    bad = await gql(OPS["admin/SetDunningPolicy"], {"retryDays": [4, 2], "finalAction": "PAUSE"}, token=admin)
    assert error_codes(bad) == ["BAD_USER_INPUT"]
    denied = await gql(OPS["admin/SetDunningPolicy"], {"retryDays": [1], "finalAction": "CANCEL"},
                       token=tokens("store_admin", shop, stores=[str(shop.store_id)]))
    assert error_codes(denied) == ["FORBIDDEN"]

    # With it, a failing renewal is retried at +2 and +4 days and then paused (not canceled).
    card = (await billing.mine())["paymentDetails"]["paymentMethodId"]
    fake_stripe.payment_methods[card]["_alias"] = "pm_card_chargeCustomerFail"
    due = at(mine["trialEnd"]) + timedelta(minutes=1)
    assert (await billing.renew(due))["failed"] == 1
    # Stripe down during the retry: the cycle stays failed and due, its attempt is given back (same key next run).
    fake_stripe.failures.extend([503, 503, 503])
    down = await billing.retry(due + timedelta(days=2, minutes=1))
    assert down["retry"] == 1 and down["failed"] == 0, down
    cycle = (await billing.mine())["cycles"]["nodes"][0]
    assert cycle["status"] == "FAILED" and cycle["attempts"] == 1
    assert at(cycle["nextRetryAt"]) == due + timedelta(days=2)
    assert (await billing.retry(due + timedelta(days=2, minutes=2)))["failed"] == 1
    assert (await billing.retry(due + timedelta(days=4, minutes=1)))["paused"] == 1
    assert (await billing.mine())["status"] == "PAUSED"


async def test_bad_input_unknown_plans_and_currencies_no_region_sells(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, other_world: TenantWorld, owner_engine: AsyncEngine,
        app_engine: AsyncEngine, stripe_client: Any, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    admin = tokens("tenant_admin", shop)
    plan = await create_plan(gql, admin, variant, prices=[{"currencyCode": "usd", "amount": 2500},
                                                          {"currencyCode": "eur", "amount": 2300}])
    billing = Billing(gql, shop, tokens("customer", shop, subject=f"bad-{uuid.uuid4().hex[:8]}"), app_engine,
                      stripe_client, settings, clock)
    base = {"paymentMethodId": "pm_card_visa", "email": "ada@example.com"}
    unknown = await billing.call("storefront/Subscribe", {"input": {
        **base, "planId": to_global_id("SubscriptionPlan", uuid.uuid4()), "currencyCode": "usd"}})
    assert error_codes(unknown) == ["NOT_FOUND"]
    foreign = await gql(OPS["storefront/Subscribe"], {"input": {**base, "planId": plan["id"], "currencyCode": "usd"}},
                        token=tokens("customer", other_world, subject="z"), key=other_world.key)
    assert error_codes(foreign) == ["NOT_FOUND"]
    not_sold = await billing.call("storefront/Subscribe", {"input": {**base, "planId": plan["id"],
                                                                     "currencyCode": "eur"}})
    assert error_codes(not_sold) == ["BAD_USER_INPUT"] and not_sold["errors"][0]["extensions"]["field"] == \
        "currencyCode"
    no_email = await billing.call("storefront/Subscribe", {"input": {
        "paymentMethodId": "pm_card_visa", "planId": plan["id"], "currencyCode": "usd"}})
    assert error_codes(no_email) == ["BAD_USER_INPUT"]
    bad_address = await billing.call("storefront/Subscribe", {"input": {
        **base, "planId": plan["id"], "currencyCode": "usd", "shippingAddress": {**SHIP_TO, "province": "ZZ"}}})
    assert error_codes(bad_address) == ["BAD_USER_INPUT"]
    assert await billing.call("storefront/MySubscriptions", {"first": 5}) == \
        {"data": {"mySubscriptions": {"totalCount": 0, "nodes": []}}}
    guest = await gql(OPS["storefront/MySubscriptions"], {"first": 5}, key=shop.key)
    assert error_codes(guest) == ["UNAUTHENTICATED"]


async def test_customers_and_vendors_follow_their_subscriptions_live(
        server: Server, gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine,
        app_engine: AsyncEngine, stripe_client: Any, settings: Any, clock: Clock) -> None:
    variant, vendor = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant)
    subject = f"live-{uuid.uuid4().hex[:8]}"
    token = tokens("customer", shop, subject=subject)
    billing = Billing(gql, shop, token, app_engine, stripe_client, settings, clock)
    subscribed = await billing.subscribe(plan["id"])
    events = "subscription { subscriptionEvents { type status subscriptionId } }"
    customer = await Client.connect(server.url, token)
    own_vendor = await Client.connect(server.url, tokens("vendor_user", shop, vendor=vendor))
    stranger = await Client.connect(server.url, tokens("customer", shop, subject="eve"))
    other_vendor = await Client.connect(server.url, tokens("vendor_user", shop, vendor=str(uuid.uuid4())))
    try:
        for client in (customer, own_vendor, stranger, other_vendor):
            await client.subscribe(events)
        await billing.ok("storefront/PauseCustomerSubscription", {"id": subscribed["id"]})
        expected = {"type": "subscription.paused", "status": "paused", "subscriptionId": subscribed["id"]}
        assert (await customer.receive())["payload"]["data"]["subscriptionEvents"] == expected
        assert (await own_vendor.receive())["payload"]["data"]["subscriptionEvents"] == expected
        await billing.ok("storefront/CancelCustomerSubscription", {"id": subscribed["id"]})
        canceled = (await customer.receive())["payload"]["data"]["subscriptionEvents"]
        assert canceled["type"] == "subscription.canceled" and canceled["status"] == "canceled"
        assert await stranger.nothing_for(0.5) and await other_vendor.nothing_for(0.5)
    finally:
        for client in (customer, own_vendor, stranger, other_vendor):
            await client.close()


def test_both_jobs_are_registered_with_the_plans_schedules() -> None:
    assert JOBS["process-billing-cycles"].schedule == "5 * * * *" and JOBS["process-billing-cycles"].per_tenant
    assert JOBS["retry-failed-payments"].schedule == "0 */6 * * *" and JOBS["retry-failed-payments"].per_tenant


class Crash(Exception):
    """The runner's process dies (here: an exception) after Stripe answered, before step 3 commits."""


class DiesAfterStripe:
    """The billing port on Stripe, whose runner dies right after Stripe answered a charge."""

    def __init__(self, stripe: Any) -> None:
        self.inner = StripeBilling(stripe)

    async def create_customer(self, **kwargs: Any) -> str:
        return await self.inner.create_customer(**kwargs)

    async def save_payment_method(self, **kwargs: Any) -> Any:
        return await self.inner.save_payment_method(**kwargs)

    async def client_secret(self, intent_id: str) -> tuple[str, str]:
        return await self.inner.client_secret(intent_id)

    async def charge(self, **kwargs: Any) -> Any:
        await self.inner.charge(**kwargs)
        raise Crash


async def test_two_runners_and_a_crash_after_stripe_answered_make_one_charge_and_one_order(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=1)
    subject = f"crash-{uuid.uuid4().hex[:8]}"
    billing = Billing(gql, shop, tokens("customer", shop, subject=subject), app_engine, stripe_client, settings,
                      clock)
    subscribed = await billing.subscribe(plan["id"], shippingAddress=SHIP_TO)
    due = at(subscribed["trialEnd"]) + timedelta(minutes=1)
    orders = "select count(*) from orders where tenant_id = :t and customer_id = :c"

    # The runner dies after Stripe charged: nothing of step 3 is written; the cycle stays charging under its lease.
    with pytest.raises(Crash):
        await runs.process_billing_cycles(app_engine, DiesAfterStripe(stripe_client), settings, shop.tenant_id, due,
                                          PendingEvents())
    mine = await billing.mine()
    [cycle] = mine["cycles"]["nodes"]
    assert cycle["status"] == "CHARGING" and mine["status"] == "TRIALING"
    assert await scalar(owner_engine, orders, t=shop.tenant_id, c=subject) == 0
    assert len(fake_stripe.renewal_intents(cycle["id"])) == 1

    # Inside the lease nobody takes it; after it, two runners at once: the same key, the same PaymentIntent, one
    # order.
    assert (await billing.renew(due + timedelta(minutes=5)))["paid"] == 0
    later = due + renewals.LEASE + timedelta(minutes=1)
    clock.now = later
    first, second = await asyncio.gather(
        process_billing_cycles(app_engine, stripe_client, settings, shop.tenant_id, clock=lambda: later),
        process_billing_cycles(app_engine, stripe_client, settings, shop.tenant_id, clock=lambda: later))
    assert first["paid"] + second["paid"] == 1, (first, second)
    mine = await billing.mine()
    [cycle] = mine["cycles"]["nodes"]
    assert cycle["status"] == "PAID" and cycle["orderId"] and mine["status"] == "ACTIVE"
    assert len(fake_stripe.renewal_intents(cycle["id"])) == 1
    assert len([r for r in fake_stripe.requests if r["path"] == "/v1/payment_intents"
                and r["idempotency_key"] == cycle["id"]]) == 2
    assert await scalar(owner_engine, orders, t=shop.tenant_id, c=subject) == 1
    assert [row["outcome"] for row in cycle["attemptHistory"]["nodes"]] == ["SUCCEEDED"]


async def test_both_jobs_run_through_the_registry_as_cityos_jobs_run_does(server: Server, shop: TenantWorld) -> None:
    services = server.services
    context = JobContext(services.app_engine, services.settings, services.stripe, services.http, services.broker)
    for name in ("process-billing-cycles", "retry-failed-payments"):
        run = await run_now(JOBS[name], context)
        assert run.outcome == "ok", (name, run)


async def test_a_cycle_left_due_is_not_charged_once_the_subscription_is_canceled(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any, clock: Clock) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=1)
    billing = Billing(gql, shop, tokens("customer", shop, subject=f"gone-{uuid.uuid4().hex[:8]}"), app_engine,
                      stripe_client, settings, clock)
    subscribed = await billing.subscribe(plan["id"])
    due = at(subscribed["trialEnd"]) + timedelta(minutes=1)
    fake_stripe.failures.extend([503, 503, 503])
    assert (await billing.renew(due))["retry"] == 1  # Stripe down: the cycle stays due
    await billing.ok("storefront/CancelCustomerSubscription", {"id": subscribed["id"]})
    intents_before = len(fake_stripe.intents)
    run = await billing.renew(due + timedelta(hours=1))
    assert run["skipped"] == 1 and run["paid"] == 0, run
    mine = await billing.mine()
    assert mine["status"] == "CANCELED"
    assert mine["cycles"]["nodes"][0]["status"] == "SKIPPED"
    assert mine["cycles"]["nodes"][0]["skipReason"] == "the subscription is canceled"
    assert len(fake_stripe.intents) == intents_before
