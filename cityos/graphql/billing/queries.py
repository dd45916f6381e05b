"""Billing reads: plans (storefronts see the active plans of their store), customer subscriptions (customers their
own, store admins their stores', vendors those to their plans); lists are filtered in SQL by the Cerbos plan."""

from __future__ import annotations

import strawberry

from cityos.auth.authz import ResourceRef
from cityos.domain.billing import dunning
from cityos.domain.billing import queries as billing
from cityos.errors import Unauthenticated
from cityos.graphql.billing.arguments import (
    PlanFilterArg,
    PlanStatusArg,
    PlanStoreId,
    RenewsAfterArg,
    RenewsBeforeArg,
    SubscriptionStatusArg,
    VendorFilterArg,
)
from cityos.graphql.billing.types import (
    CUSTOMER_SUBSCRIPTION,
    PLAN_TABLE,
    SUBSCRIPTION_PLAN,
    SUBSCRIPTION_TABLE,
    CustomerSubscription,
    DunningPolicy,
    SubscriptionPlan,
)
from cityos.graphql.core.context import Info, tenant_of
from cityos.graphql.core.loaders import in_tenant
from cityos.graphql.core.relay import (
    After,
    Before,
    Connection,
    First,
    Last,
    PageRequest,
    from_global_id,
    page_query,
    wants_total,
)


@strawberry.type
class BillingQuery:
    @strawberry.field(description="Subscription plans the caller may read: shoppers the active plans of their store, "
                                  "vendors their own, store admins their stores'.")
    async def subscription_plans(self, info: Info, store_id: PlanStoreId = None, status: PlanStatusArg = None,
                                 first: First = None, after: After = None, last: Last = None,
                                 before: Before = None) -> Connection[SubscriptionPlan]:
        allowed = await info.context.authz.sql_filter("subscription_plan", "read", PLAN_TABLE,
                                                      SUBSCRIPTION_PLAN.plan_attributes)
        store = from_global_id(store_id, "Store")[1] if store_id is not None else None
        listing = billing.plans(allowed, *in_tenant(info.context.db, PLAN_TABLE), store_id=store,
                                status=status.value if status is not None else None)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after, last, before),
                                SubscriptionPlan.from_row, listing.order, count=wants_total(info))

    @strawberry.field(description="Customer subscriptions the caller may read, newest first: a customer's own, a "
                                  "store admin's stores', a vendor's to its plans; filtered by status, plan, vendor "
                                  "and renewal date (the current period's end).")
    async def customer_subscriptions(self, info: Info, status: SubscriptionStatusArg = None,
                                     plan_id: PlanFilterArg = None, vendor_id: VendorFilterArg = None,
                                     renews_after: RenewsAfterArg = None, renews_before: RenewsBeforeArg = None,
                                     first: First = None, after: After = None, last: Last = None,
                                     before: Before = None) -> Connection[CustomerSubscription]:
        where = billing.SubscriptionFilter(
            status=status.value if status is not None else None,
            plan_id=from_global_id(plan_id, "SubscriptionPlan")[1] if plan_id is not None else None,
            vendor_id=from_global_id(vendor_id, "Vendor")[1] if vendor_id is not None else None,
            renews_after=renews_after, renews_before=renews_before)
        return await _subscriptions(info, where, PageRequest(first, after, last, before))

    @strawberry.field(description="The signed-in customer's own subscriptions, newest first (with their cycles).")
    async def my_subscriptions(self, info: Info, status: SubscriptionStatusArg = None, first: First = None,
                               after: After = None, last: Last = None,
                               before: Before = None) -> Connection[CustomerSubscription]:
        principal = info.context.principal
        if not principal.authenticated:
            raise Unauthenticated("sign in as a customer to see your subscriptions")
        where = billing.SubscriptionFilter(status=status.value if status is not None else None,
                                           customer_id=principal.id)
        return await _subscriptions(info, where, PageRequest(first, after, last, before))

    @strawberry.field(description="The tenant's dunning policy: retry days after a declined renewal and what "
                                  "happens after the last failure (tenant admins).")
    async def dunning_policy(self, info: Info) -> DunningPolicy:
        tenant_id = tenant_of(info)
        await info.context.authz.require(ResourceRef.of("billing_settings", str(tenant_id), tenant_id=tenant_id),
                                         "read")
        return DunningPolicy.of(await info.context.db.run(dunning.policy))


async def _subscriptions(info: Info, where: billing.SubscriptionFilter,
                         page: PageRequest) -> Connection[CustomerSubscription]:
    allowed = await info.context.authz.sql_filter("customer_subscription", "read", SUBSCRIPTION_TABLE,
                                                  CUSTOMER_SUBSCRIPTION.plan_attributes)
    listing = billing.subscriptions(allowed, *in_tenant(info.context.db, SUBSCRIPTION_TABLE), where=where)
    return await page_query(info.context.db.execute, listing.statement, page, CustomerSubscription.from_row,
                            listing.order, count=wants_total(info))
