"""Billing mutations: plans (vendors their own, store admins all of the store's — Cerbos) and subscribing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.auth.authz import ResourceRef
from cityos.domain.billing import cart as billing_cart
from cityos.domain.billing import dunning, runs, selfservice, service, subscribing
from cityos.domain.billing import queries as billing
from cityos.domain.billing.models import SubscriptionPlanStatus
from cityos.domain.commerce import service as carts
from cityos.errors import BadUserInput, Forbidden, NotFound, Unauthenticated
from cityos.graphql.billing.arguments import (
    AtPeriodEnd,
    CartPlanQuantity,
    CreatePlan,
    FinalActionArg,
    NewPlanId,
    PaymentMethodArg,
    PlanChanges,
    PlanIdArg,
    RetryDaysArg,
    Subscribe,
    SubscriptionIdArg,
    SubscriptionPlanPriceInput,
)
from cityos.graphql.billing.types import (
    PLAN_TABLE,
    SUBSCRIPTION_TABLE,
    CustomerSubscription,
    DunningPolicy,
    SubscriptionPaymentConfirmation,
    SubscriptionPlan,
    SubscriptionPlanChange,
)
from cityos.graphql.commerce.arguments import CartIdArg
from cityos.graphql.commerce.queries import cart_for
from cityos.graphql.commerce.types import Cart
from cityos.graphql.core.context import Info, tenant_of
from cityos.graphql.core.nodes import node_by_global_id
from cityos.graphql.core.values import money
from cityos.integrations.stripe.billing import StripeBilling


def _payment_method(payment_method_id: str) -> str:
    if not payment_method_id.startswith("pm_") or len(payment_method_id) > 255:
        raise BadUserInput("paymentMethodId must be a Stripe PaymentMethod id (pm_…)", field="paymentMethodId")
    return payment_method_id


async def _subscription(info: Info, id: strawberry.ID, action: str) -> CustomerSubscription:
    """The subscription, if the caller may `action` it (NOT_FOUND for another tenant's or an unknown id)."""
    tenant_of(info)
    subscription: CustomerSubscription = await node_by_global_id(info, id, "CustomerSubscription", action)
    return subscription


def _now(info: Info) -> datetime:
    """The services' clock (the time seam tests move forward with the billing jobs)."""
    return info.context.services.clock()


def _prices(prices: list[SubscriptionPlanPriceInput] | None) -> list[service.PlanPrice] | None:
    if prices is None:
        return None
    return [service.PlanPrice(price.currency_code, price.amount, price.setup_fee) for price in prices]


async def _plan_row(info: Info, plan: SubscriptionPlan) -> Any:
    return await info.context.loaders.by_key(PLAN_TABLE).load(plan.pk)


@strawberry.type
class BillingMutation:
    @strawberry.mutation(description="Sell a variant on a schedule. Vendors create plans for their own products, "
                                     "store admins for any product of their stores.")
    async def create_subscription_plan(self, info: Info, input: CreatePlan) -> SubscriptionPlan:
        tenant_id = tenant_of(info)
        variant: Any = await node_by_global_id(info, input.variant_id, "Variant")
        owner = await info.context.db.run(lambda connection: service.variant_owner(connection, variant.pk))
        if owner is None:
            raise NotFound("no Variant with that id")
        await info.context.authz.require(ResourceRef.of(
            "subscription_plan", "new", tenant_id=tenant_id, store_id=owner.store_id, vendor_id=owner.vendor_id,
            status=SubscriptionPlanStatus.ACTIVE.value), "create")
        prices = _prices(input.prices) or []

        async def work(connection: AsyncConnection) -> Any:
            return await service.create_plan(connection, tenant_id=tenant_id, owner=owner, name=input.name,
                                             interval=input.interval, interval_count=input.interval_count,
                                             trial_days=input.trial_days, prices=prices)

        return SubscriptionPlan.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Change a plan's name, schedule, trial or prices.")
    async def update_subscription_plan(self, info: Info, id: PlanIdArg, input: PlanChanges) -> SubscriptionPlan:
        tenant_of(info)
        plan: SubscriptionPlan = await node_by_global_id(info, id, "SubscriptionPlan", "update")
        row = await _plan_row(info, plan)
        changes = service.PlanChanges(name=input.name, interval=input.interval, interval_count=input.interval_count,
                                      trial_days=input.trial_days, prices=_prices(input.prices))
        updated = await info.context.db.mutate(
            lambda connection: service.update_plan(connection, plan=row, changes=changes))
        info.context.loaders.many_by_key(billing.PLAN_PRICE, "plan_id").clear(plan.pk)
        return SubscriptionPlan.from_row(updated)

    @strawberry.mutation(description="Stop offering a plan: no new subscriptions; existing ones go on renewing.")
    async def archive_subscription_plan(self, info: Info, id: PlanIdArg) -> SubscriptionPlan:
        tenant_of(info)
        plan: SubscriptionPlan = await node_by_global_id(info, id, "SubscriptionPlan", "archive")
        row = await _plan_row(info, plan)
        return SubscriptionPlan.from_row(await info.context.db.mutate(
            lambda connection: service.archive_plan(connection, plan=row)))

    @strawberry.mutation(description="Subscribe the signed-in customer to a plan: the card is saved for off-session "
                                     "renewals — with a trial by a SetupIntent (the setup fee comes with the first "
                                     "renewal), without one by the first charge, an order like a renewal's (first "
                                     "period and setup fee, taxed). A declined card is PAYMENT_FAILED with Stripe's "
                                     "codes. One the bank wants authenticated (3-D Secure) leaves the subscription "
                                     "INCOMPLETE with authenticationClientSecret for Stripe.js; Stripe's webhooks "
                                     "then move it on.")
    async def subscribe(self, info: Info, input: Subscribe) -> CustomerSubscription:
        principal = info.context.principal
        if not principal.authenticated:
            raise Unauthenticated("sign in as a customer to subscribe")
        tenant_id = tenant_of(info)
        if "customer" not in principal.roles:
            raise Forbidden("only customers subscribe")
        plan: SubscriptionPlan = await node_by_global_id(info, input.plan_id, "SubscriptionPlan")
        await info.context.authz.require(ResourceRef.of(
            "customer_subscription", "new", tenant_id=tenant_id, store_id=plan.store_pk, vendor_id=plan.vendor_pk,
            customer_id=principal.id), "create")
        _payment_method(input.payment_method_id)
        price = await info.context.db.run(
            lambda connection: billing.plan_price(connection, plan.pk, input.currency_code))
        if price is None:
            raise BadUserInput(f"this plan has no price in {input.currency_code!r}", field="currencyCode")
        wanted = strawberry.asdict(input.shipping_address) if input.shipping_address is not None else None
        address = await info.context.db.run(
            lambda connection: service.renewal_region(connection, price.currency_code, wanted))
        row = await _plan_row(info, plan)
        request = service.SubscribeRequest(plan=row, price=price, customer_id=principal.id, email=input.email,
                                           payment_method=input.payment_method_id, now=_now(info),
                                           quantity=input.quantity, shipping_address=address)
        services = info.context.services
        created = await subscribing.subscribe(services.app_engine, services.settings, info.context.db.mutate,
                                              StripeBilling(services.stripe), request, info.context.events)
        subscription = CustomerSubscription.from_row(created.subscription)
        subscription.authentication_secret = created.client_secret
        return subscription

    @strawberry.mutation(description="Put a subscription plan (without a trial) in the signed-in customer's cart, "
                                     "or set its quantity (0 takes it out). At checkout the cart's PaymentIntent pays "
                                     "each plan's first period and setup fee and saves the card; the order starts "
                                     "the subscriptions. A cart holds products or subscriptions, not both "
                                     "(BAD_USER_INPUT).")
    async def add_subscription_to_cart(self, info: Info, cart_id: CartIdArg, plan_id: PlanIdArg,
                                       quantity: CartPlanQuantity = 1) -> Cart:
        cart = await cart_for(info, cart_id)
        plan: SubscriptionPlan = await node_by_global_id(info, plan_id, "SubscriptionPlan")
        row = await _plan_row(info, plan)

        async def work(connection: AsyncConnection) -> Any:
            locked = await carts.load_cart(connection, cart.row.id, lock=True)
            await billing_cart.add_to_cart(connection, locked, row, quantity)
            return await carts.load_cart(connection, cart.row.id)

        return Cart.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Cancel a subscription: now (no more charges; a failed renewal is not "
                                     "retried) or at the end of the paid period. Canceling a canceled subscription "
                                     "is INVALID_STATE_TRANSITION.")
    async def cancel_customer_subscription(self, info: Info, id: SubscriptionIdArg,
                                           at_period_end: AtPeriodEnd = False) -> CustomerSubscription:
        subscription = await _subscription(info, id, "cancel")
        events = info.context.events
        return CustomerSubscription.from_row(await info.context.db.mutate(lambda connection: selfservice.cancel(
            connection, subscription.pk, at_period_end=at_period_end, now=_now(info), events=events)))

    @strawberry.mutation(description="Pause a subscription: no renewals until it is resumed.")
    async def pause_customer_subscription(self, info: Info, id: SubscriptionIdArg) -> CustomerSubscription:
        subscription = await _subscription(info, id, "pause")
        events = info.context.events
        return CustomerSubscription.from_row(await info.context.db.mutate(lambda connection: selfservice.pause(
            connection, subscription.pk, now=_now(info), events=events)))

    @strawberry.mutation(description="Resume a paused subscription. After its paid period, billing restarts from "
                                     "now (paused time is never billed).")
    async def resume_customer_subscription(self, info: Info, id: SubscriptionIdArg) -> CustomerSubscription:
        subscription = await _subscription(info, id, "resume")
        events = info.context.events
        return CustomerSubscription.from_row(await info.context.db.mutate(lambda connection: selfservice.resume(
            connection, subscription.pk, now=_now(info), events=events)))

    @strawberry.mutation(description="Skip the next billing cycle: it is neither charged nor shipped.")
    async def skip_next_billing_cycle(self, info: Info, id: SubscriptionIdArg) -> CustomerSubscription:
        subscription = await _subscription(info, id, "skip")
        return CustomerSubscription.from_row(await info.context.db.mutate(
            lambda connection: selfservice.skip_next(connection, subscription.pk)))

    @strawberry.mutation(description="Move a subscription to another plan of its store. The unused time of the "
                                     "current period is credited (pro rata, rounded half up in minor units) and "
                                     "the new plan starts now, charged at the next run less the credit.")
    async def change_subscription_plan(self, info: Info, id: SubscriptionIdArg,
                                       plan_id: NewPlanId) -> SubscriptionPlanChange:
        subscription = await _subscription(info, id, "change_plan")
        plan: SubscriptionPlan = await node_by_global_id(info, plan_id, "SubscriptionPlan")
        row = await _plan_row(info, plan)
        events = info.context.events
        change = await info.context.db.mutate(lambda connection: selfservice.change_plan(
            connection, subscription.pk, row, now=_now(info), events=events))
        return SubscriptionPlanChange(subscription=CustomerSubscription.from_row(change.subscription),
                                      credit=money(change.credit, change.subscription.currency_code))

    @strawberry.mutation(description="Save a new card for the renewals (a Stripe SetupIntent). A renewal waiting "
                                     "for the customer's authentication (SCA) is charged off-session with the new "
                                     "card once, at once; another past-due renewal is retried with it at the next "
                                     "dunning run.")
    async def update_subscription_payment_method(self, info: Info, id: SubscriptionIdArg,
                                                 payment_method_id: PaymentMethodArg) -> CustomerSubscription:
        tenant_id = tenant_of(info)
        subscription = await _subscription(info, id, "update_payment_method")
        row = await info.context.loaders.by_key(SUBSCRIPTION_TABLE).load(subscription.pk)
        services, now = info.context.services, _now(info)
        gateway = StripeBilling(services.stripe)
        card = await selfservice.save_card(gateway, row, _payment_method(payment_method_id))
        await runs.retry_with_new_card(services.app_engine, gateway, services.settings, tenant_id, row.id, card, now,
                                       info.context.events)
        updated = await selfservice.use_card(info.context.db.mutate, row.id, card, now)
        return CustomerSubscription.from_row(updated)

    @strawberry.mutation(description="A renewal the bank wants the customer to authenticate (SCA): the client "
                                     "secret of its PaymentIntent, for Stripe.js to confirm on-session. The "
                                     "payment_intent.succeeded webhook then records it (and its renewal order).")
    async def confirm_subscription_payment(self, info: Info,
                                           id: SubscriptionIdArg) -> SubscriptionPaymentConfirmation:
        subscription = await _subscription(info, id, "confirm_payment")
        cycle = await info.context.db.run(lambda connection: selfservice.cycle_to_confirm(connection, subscription.pk))
        status, secret = await StripeBilling(info.context.services.stripe).client_secret(str(cycle.payment_intent_id))
        return SubscriptionPaymentConfirmation(payment_intent_id=str(cycle.payment_intent_id), client_secret=secret,
                                               status=status, cycle_id=strawberry.ID(str(cycle.id)))

    @strawberry.mutation(description="Set the tenant's dunning policy (tenant admins).")
    async def set_dunning_policy(self, info: Info, retry_days: RetryDaysArg,
                                 final_action: FinalActionArg) -> DunningPolicy:
        tenant_id = tenant_of(info)
        await info.context.authz.require(ResourceRef.of("billing_settings", str(tenant_id), tenant_id=tenant_id),
                                         "update")
        return DunningPolicy.of(await info.context.db.mutate(
            lambda connection: dunning.set_policy(connection, tenant_id, retry_days, final_action)))
