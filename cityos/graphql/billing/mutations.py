"""Billing mutations: plans (vendors their own, store admins all of the store's — Cerbos) and subscribing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.auth.authz import ResourceRef
from cityos.domain.billing import queries as billing
from cityos.domain.billing import service
from cityos.domain.billing.models import SubscriptionPlanStatus
from cityos.errors import BadUserInput, Forbidden, NotFound, Unauthenticated
from cityos.graphql.billing.arguments import (
    CreatePlan,
    PlanChanges,
    PlanIdArg,
    Subscribe,
    SubscriptionPlanPriceInput,
)
from cityos.graphql.billing.types import PLAN_TABLE, CustomerSubscription, SubscriptionPlan
from cityos.graphql.core.context import Info, tenant_of
from cityos.graphql.core.nodes import node_by_global_id
from cityos.integrations.stripe.billing import StripeBilling


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
                                     "renewals (a SetupIntent for a trial without a setup fee, else the first "
                                     "charge). A declined card is PAYMENT_FAILED with Stripe's codes.")
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
        if not input.payment_method_id.startswith("pm_") or len(input.payment_method_id) > 255:
            raise BadUserInput("paymentMethodId must be a Stripe PaymentMethod id (pm_…)", field="paymentMethodId")
        price = await info.context.db.run(
            lambda connection: billing.plan_price(connection, plan.pk, input.currency_code))
        if price is None:
            raise BadUserInput(f"this plan has no price in {input.currency_code!r}", field="currencyCode")
        row = await _plan_row(info, plan)
        request = service.SubscribeRequest(plan=row, price=price, customer_id=principal.id, email=input.email,
                                           payment_method=input.payment_method_id, now=datetime.now(UTC),
                                           quantity=input.quantity)
        created = await service.subscribe(info.context.db.mutate, StripeBilling(info.context.services.stripe),
                                          request)
        return CustomerSubscription.from_row(created)
