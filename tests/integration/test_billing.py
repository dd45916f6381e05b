"""Recurring billing over HTTP against the real database, Cerbos and the fake Stripe (through the stripe SDK):
plans and their permissions, subscribing (SetupIntent for a trial, a first charge otherwise), and the
process-billing-cycles job with time moved forward through its clock seam."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import create_app_engine
from cityos.graphql.core.relay import to_global_id
from cityos.integrations.stripe.client import create_stripe_client
from cityos.jobs.billing import process_billing_cycles
from cityos.jobs.registry import JOBS
from tests.commerce_flow import OPS, shop
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.fakes.stripe import FakeStripe

__all__ = ["shop"]


@pytest.fixture
def stripe_client(settings: Any) -> Any:
    return create_stripe_client(settings)


@pytest.fixture
async def app_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_app_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


async def variant_and_vendor(owner_engine: AsyncEngine, world: TenantWorld, sku: str = "NW-TEE-S") -> tuple[str, str]:
    async with owner_engine.connect() as connection:
        row = (await connection.execute(text(
            "select v.id, p.vendor_id from variant v join product p on p.id = v.product_id "
            "and p.tenant_id = v.tenant_id where v.tenant_id = :t and v.sku = :sku"),
            {"t": world.tenant_id, "sku": sku})).one()
    return to_global_id("Variant", row.id), str(row.vendor_id)


PLAN = {"name": "Tee of the month", "interval": "MONTH", "intervalCount": 1, "trialDays": 14,
        "prices": [{"currencyCode": "usd", "amount": 2500}]}


async def create_plan(gql: GraphQLClient, token: str, variant: str, **overrides: Any) -> dict[str, Any]:
    body = await gql(OPS["admin/CreateSubscriptionPlan"], {"input": {**PLAN, "variantId": variant, **overrides}},
                     token=token)
    assert "errors" not in body, body
    plan: dict[str, Any] = body["data"]["createSubscriptionPlan"]
    return plan


async def subscribe(gql: GraphQLClient, world: TenantWorld, token: str, plan: str,
                    payment_method: str = "pm_card_visa", **overrides: Any) -> dict[str, Any]:
    return await gql(OPS["storefront/Subscribe"], {"input": {
        "planId": plan, "currencyCode": "usd", "paymentMethodId": payment_method, "email": "ada@example.com",
        **overrides}}, token=token, key=world.key)


async def my_subscriptions(gql: GraphQLClient, world: TenantWorld, token: str) -> list[dict[str, Any]]:
    body = await gql(OPS["storefront/CustomerSubscriptions"], {"first": 10}, token=token, key=world.key)
    assert "errors" not in body, body
    nodes: list[dict[str, Any]] = body["data"]["customerSubscriptions"]["nodes"]
    return nodes


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def renewal_requests(stripe: FakeStripe, cycle_id: str) -> list[dict[str, Any]]:
    return [request for request in stripe.requests
            if request["path"] == "/v1/payment_intents" and request["idempotency_key"] == cycle_id]


async def test_vendors_manage_their_own_plans_and_store_admins_all(gql: GraphQLClient, tokens: Tokens,
                                                                   shop: TenantWorld, owner_engine: AsyncEngine,
                                                                   ) -> None:
    variant, vendor = await variant_and_vendor(owner_engine, shop)
    own_vendor = tokens("vendor_admin", shop, vendor=vendor)
    plan = await create_plan(gql, own_vendor, variant, prices=[{"currencyCode": "usd", "amount": 2500,
                                                                 "setupFee": 300}])
    assert plan["status"] == "ACTIVE" and plan["interval"] == "MONTH" and plan["trialDays"] == 14
    assert plan["prices"] == [{"amount": {"amount": 2500, "currencyCode": "usd"},
                               "setupFee": {"amount": 300, "currencyCode": "usd"}}]
    assert plan["variant"]["id"] == variant

    other_vendor = tokens("vendor_admin", shop, vendor=str(uuid.uuid4()))
    denied = await gql(OPS["admin/CreateSubscriptionPlan"], {"input": {**PLAN, "variantId": variant}},
                       token=other_vendor)
    assert error_codes(denied) == ["FORBIDDEN"]
    denied = await gql(OPS["admin/UpdateSubscriptionPlan"], {"id": plan["id"], "input": {"name": "Mine now"}},
                       token=other_vendor)
    assert error_codes(denied) == ["FORBIDDEN"]

    store_admin = tokens("store_admin", shop, stores=[str(shop.store_id)])
    updated = await gql(OPS["admin/UpdateSubscriptionPlan"], {"id": plan["id"], "input": {
        "name": "Two tees a quarter", "intervalCount": 3, "prices": [{"currencyCode": "usd", "amount": 6000}]}},
        token=store_admin)
    assert updated["data"]["updateSubscriptionPlan"]["intervalCount"] == 3, updated
    assert updated["data"]["updateSubscriptionPlan"]["prices"][0]["amount"]["amount"] == 6000

    bad = await gql(OPS["admin/CreateSubscriptionPlan"], {"input": {**PLAN, "variantId": variant, "intervalCount": 0}},
                    token=store_admin)
    assert error_codes(bad) == ["BAD_USER_INPUT"] and bad["errors"][0]["extensions"]["field"] == "intervalCount"
    bad = await gql(OPS["admin/CreateSubscriptionPlan"], {"input": {**PLAN, "variantId": variant, "prices": [
        {"currencyCode": "xxx", "amount": 100}]}}, token=store_admin)
    assert error_codes(bad) == ["BAD_USER_INPUT"]

    # Shoppers see the active plans of their store; archived plans leave the storefront.
    listed = await gql(OPS["admin/SubscriptionPlans"], {"first": 10}, key=shop.key)
    assert [node["id"] for node in listed["data"]["subscriptionPlans"]["nodes"]] == [plan["id"]]
    archived = await gql(OPS["admin/ArchiveSubscriptionPlan"], {"id": plan["id"]}, token=own_vendor)
    assert archived["data"]["archiveSubscriptionPlan"]["status"] == "ARCHIVED"
    listed = await gql(OPS["admin/SubscriptionPlans"], {"first": 10}, key=shop.key)
    assert listed["data"]["subscriptionPlans"]["totalCount"] == 0
    admin_list = await gql(OPS["admin/SubscriptionPlans"], {"status": "ARCHIVED", "first": 10}, token=store_admin)
    assert [node["id"] for node in admin_list["data"]["subscriptionPlans"]["nodes"]] == [plan["id"]]


async def test_a_trial_renews_once_with_two_runners_then_a_decline_is_past_due(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    admin = tokens("tenant_admin", shop)
    plan = await create_plan(gql, admin, variant)
    customer = tokens("customer", shop, subject=f"ada-{uuid.uuid4().hex[:8]}")

    # A trial without a setup fee: the card is saved by a SetupIntent; nothing is charged.
    intents_before = len(fake_stripe.intents)
    body = await subscribe(gql, shop, customer, plan["id"])
    assert "errors" not in body, body
    subscribed = body["data"]["subscribe"]
    assert subscribed["status"] == "TRIALING" and subscribed["plan"]["id"] == plan["id"]
    assert subscribed["amount"] == {"amount": 2500, "currencyCode": "usd"}
    trial_end = at(subscribed["trialEnd"])
    assert trial_end - at(subscribed["currentPeriodStart"]) == timedelta(days=14)
    assert at(subscribed["currentPeriodEnd"]) == trial_end
    assert len(fake_stripe.intents) == intents_before
    setups = [setup for setup in fake_stripe.setup_intents.values()
              if setup["metadata"].get("plan_id") and setup["status"] == "succeeded"]
    assert setups and fake_stripe.payment_methods[setups[-1]["payment_method"]]["customer"] == setups[-1]["customer"]

    # Nothing is due before the trial ends.
    assert (await process_billing_cycles(app_engine, stripe_client, settings, shop.tenant_id,
                                         clock=lambda: trial_end - timedelta(minutes=1)))["claimed"] == 0

    # Past the trial, two runners at once: one cycle, one charge.
    later = trial_end + timedelta(hours=1)
    first, second = await asyncio.gather(
        process_billing_cycles(app_engine, stripe_client, settings, shop.tenant_id, clock=lambda: later),
        process_billing_cycles(app_engine, stripe_client, settings, shop.tenant_id, clock=lambda: later))
    assert first["claimed"] + second["claimed"] == 1 and first["paid"] + second["paid"] == 1, (first, second)
    [mine] = await my_subscriptions(gql, shop, customer)
    assert mine["status"] == "ACTIVE"
    [cycle] = mine["cycles"]["nodes"]
    # The shop's region adds 8.25 % tax to its prices: 2500 + 206 (206.25 rounded half up).
    assert cycle["status"] == "PAID" and cycle["periodIndex"] == 0 and cycle["amount"]["amount"] == 2706
    assert at(cycle["periodStart"]) == trial_end and at(mine["currentPeriodStart"]) == trial_end
    assert at(mine["currentPeriodEnd"]) == at(cycle["periodEnd"]) > trial_end + timedelta(days=27)
    charges = renewal_requests(fake_stripe, cycle["id"])
    assert len(charges) == 1
    intent = fake_stripe.intents[cycle["paymentIntentId"]]
    assert intent["status"] == "succeeded" and intent["amount_received"] == 2706
    assert intent["metadata"]["billing_cycle_id"] == cycle["id"]

    # Running again in the same period changes nothing.
    again = await process_billing_cycles(app_engine, stripe_client, settings, shop.tenant_id, clock=lambda: later)
    assert again["claimed"] == 0 and again["paid"] == 0
    assert len(renewal_requests(fake_stripe, cycle["id"])) == 1

    # A runner that died after Stripe's answer: the cycle is left charging, its lease runs out, the next run
    # charges with the same key and Stripe answers with the first PaymentIntent — still one charge.
    next_period = at(mine["currentPeriodEnd"]) + timedelta(minutes=5)
    crashed = await process_billing_cycles(app_engine, stripe_client, settings, shop.tenant_id,
                                           clock=lambda: next_period)
    assert crashed["paid"] == 1
    [mine] = await my_subscriptions(gql, shop, customer)
    second_cycle = mine["cycles"]["nodes"][0]
    assert second_cycle["periodIndex"] == 1 and second_cycle["status"] == "PAID"
    async with owner_engine.begin() as connection:  # pretend step 3 never happened
        await connection.execute(text(
            "update billing_cycle set status = 'charging', lease_until = :expired where tenant_id = :t and "
            "period_index = 1"), {"t": shop.tenant_id, "expired": next_period - timedelta(seconds=1)})
    recovered = await process_billing_cycles(app_engine, stripe_client, settings, shop.tenant_id,
                                             clock=lambda: next_period)
    assert recovered["paid"] == 1
    replays = renewal_requests(fake_stripe, second_cycle["id"])
    assert len(replays) == 2  # the same key twice …
    paid_for_cycle = [i for i in fake_stripe.intents.values()
                      if i["metadata"].get("billing_cycle_id") == second_cycle["id"]]
    assert len(paid_for_cycle) == 1  # … one PaymentIntent


async def test_a_declined_renewal_is_past_due_with_stripes_decline_code(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        stripe_client: Any, fake_stripe: FakeStripe, settings: Any) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=7)
    customer = tokens("customer", shop, subject=f"bo-{uuid.uuid4().hex[:8]}")
    # This card attaches (the SetupIntent succeeds) and every later charge is declined.
    body = await subscribe(gql, shop, customer, plan["id"], payment_method="pm_card_chargeCustomerFail")
    assert body["data"]["subscribe"]["status"] == "TRIALING", body
    later = at(body["data"]["subscribe"]["trialEnd"]) + timedelta(minutes=1)

    # Stripe down first: the cycle stays due (nothing half-written), the next run charges it.
    fake_stripe.failures.extend([503, 503, 503])
    down = await process_billing_cycles(app_engine, stripe_client, settings, shop.tenant_id, clock=lambda: later)
    assert down["claimed"] == 1 and down["retry"] == 1
    [mine] = await my_subscriptions(gql, shop, customer)
    assert mine["status"] == "TRIALING" and mine["cycles"]["nodes"][0]["status"] == "PENDING"

    declined = await process_billing_cycles(app_engine, stripe_client, settings, shop.tenant_id, clock=lambda: later)
    assert declined["failed"] == 1, declined
    [mine] = await my_subscriptions(gql, shop, customer)
    assert mine["status"] == "PAST_DUE" and mine["lastDeclineCode"] == "generic_decline"
    [cycle] = mine["cycles"]["nodes"]
    assert cycle["status"] == "FAILED" and cycle["declineCode"] == "generic_decline"
    assert cycle["failureMessage"] == "Your card was declined."
    assert fake_stripe.intents[cycle["paymentIntentId"]]["status"] == "requires_payment_method"
    # A past-due subscription is not billed again by this job (dunning retries it).
    assert (await process_billing_cycles(app_engine, stripe_client, settings, shop.tenant_id,
                                         clock=lambda: later + timedelta(days=40)))["claimed"] == 0


async def test_subscribing_without_a_trial_charges_at_once_and_refuses_bad_input(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, other_world: TenantWorld, owner_engine: AsyncEngine,
        fake_stripe: FakeStripe) -> None:
    variant, _ = await variant_and_vendor(owner_engine, shop)
    plan = await create_plan(gql, tokens("tenant_admin", shop), variant, trialDays=0, interval="WEEK",
                             prices=[{"currencyCode": "usd", "amount": 900, "setupFee": 100}])
    customer = tokens("customer", shop, subject=f"cy-{uuid.uuid4().hex[:8]}")
    body = await subscribe(gql, shop, customer, plan["id"], quantity=2)
    assert "errors" not in body, body
    subscribed = body["data"]["subscribe"]
    assert subscribed["status"] == "ACTIVE" and subscribed["amount"]["amount"] == 1800
    assert at(subscribed["currentPeriodEnd"]) - at(subscribed["currentPeriodStart"]) == timedelta(weeks=1)
    [cycle] = (await my_subscriptions(gql, shop, customer))[0]["cycles"]["nodes"]
    [first] = fake_stripe.renewal_intents(cycle["id"])
    # Two units of the first week and the setup fee, taxed at 8.25 % (1900 + 156.75 → 157): one order, like a
    # renewal's, the card saved for off-session renewals.
    assert first["amount"] == 2057 and first["transfer_group"] == f"billing-cycle-{cycle['id']}"
    assert first["status"] == "succeeded" and first["setup_future_usage"] == "off_session"
    assert fake_stripe.payment_methods[first["payment_method"]]["customer"] == first["customer"]
    assert cycle["status"] == "PAID" and cycle["periodIndex"] == 0 and cycle["chargedAt"]

    stock = "select inventory_quantity from variant where tenant_id = :t and sku = 'NW-TEE-S'"
    async with owner_engine.connect() as connection:
        before = (await connection.execute(text(stock), {"t": shop.tenant_id})).scalar_one()
    declined = await subscribe(gql, shop, customer, plan["id"],
                               payment_method="pm_card_chargeDeclinedInsufficientFunds")
    assert error_codes(declined) == ["PAYMENT_FAILED"], declined
    async with owner_engine.connect() as connection:  # nothing stays: no subscription, the units back in stock
        assert (await connection.execute(text(stock), {"t": shop.tenant_id})).scalar_one() == before
    assert len(await my_subscriptions(gql, shop, customer)) == 1
    assert declined["errors"][0]["extensions"]["decline_code"] == "insufficient_funds"
    assert declined["errors"][0]["extensions"]["provider_code"] == "card_declined"

    no_price = await subscribe(gql, shop, customer, plan["id"], currencyCode="eur")
    assert error_codes(no_price) == ["BAD_USER_INPUT"] and no_price["errors"][0]["extensions"]["field"] == \
        "currencyCode"
    foreign = await subscribe(gql, other_world, tokens("customer", other_world, subject="z"), plan["id"])
    assert error_codes(foreign) == ["NOT_FOUND"]
    guest = await gql(OPS["storefront/Subscribe"], {"input": {"planId": plan["id"], "currencyCode": "usd",
                                                              "paymentMethodId": "pm_card_visa"}}, key=shop.key)
    assert error_codes(guest) == ["UNAUTHENTICATED"]
    # Another customer sees none of it; the store's admins see it.
    assert await my_subscriptions(gql, shop, tokens("customer", shop, subject="someone-else")) == []
    admin_view = await gql(OPS["storefront/CustomerSubscriptions"], {"first": 10},
                           token=tokens("store_admin", shop, stores=[str(shop.store_id)]))
    assert [node["id"] for node in admin_view["data"]["customerSubscriptions"]["nodes"]] == [subscribed["id"]]


def test_the_job_is_registered_with_the_plans_schedule() -> None:
    job = JOBS["process-billing-cycles"]
    assert job.schedule == "5 * * * *" and job.per_tenant
