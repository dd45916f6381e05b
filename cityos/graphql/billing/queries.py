"""Billing reads: plans (storefronts see the active plans of their store), customer subscriptions (customers their
own, store admins their stores', vendors those to their plans); lists are filtered in SQL by the Cerbos plan."""

from __future__ import annotations

import strawberry

from cityos.domain.billing import queries as billing
from cityos.graphql.billing.arguments import PlanStatusArg, PlanStoreId, SubscriptionStatusArg
from cityos.graphql.billing.types import (
    CUSTOMER_SUBSCRIPTION,
    PLAN_TABLE,
    SUBSCRIPTION_PLAN,
    SUBSCRIPTION_TABLE,
    CustomerSubscription,
    SubscriptionPlan,
)
from cityos.graphql.core.context import Info
from cityos.graphql.core.loaders import in_tenant
from cityos.graphql.core.relay import After, Before, Connection, First, Last, PageRequest, from_global_id, page_query


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
                                SubscriptionPlan.from_row, listing.order)

    @strawberry.field(description="Customer subscriptions the caller may read, newest first: a customer's own, a "
                                  "store admin's stores', a vendor's to its plans.")
    async def customer_subscriptions(self, info: Info, status: SubscriptionStatusArg = None, first: First = None,
                                     after: After = None, last: Last = None,
                                     before: Before = None) -> Connection[CustomerSubscription]:
        allowed = await info.context.authz.sql_filter("customer_subscription", "read", SUBSCRIPTION_TABLE,
                                                      CUSTOMER_SUBSCRIPTION.plan_attributes)
        listing = billing.subscriptions(allowed, *in_tenant(info.context.db, SUBSCRIPTION_TABLE),
                                        status=status.value if status is not None else None)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after, last, before),
                                CustomerSubscription.from_row, listing.order)
