"""`subscriptionEvents` (graphql-transport-ws): live changes of customer subscriptions — renewed, payment failed,
action required, canceled, paused, resumed, plan changed, cycle skipped — for the customer (their own) and for a
vendor's users (the subscriptions to the vendor's plans).

Like the order events (graphql/orders/subscriptions.py): events are published after commit, each one is
authorized again for the subscriber (Cerbos `read` on the customer_subscription it is about) before it is sent,
a subscriber that falls behind is cut off with close code 4413, and the stream ends with UNAUTHENTICATED when the
token expires.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry

from cityos.auth.authz import ResourceRef
from cityos.errors import Forbidden, Unauthenticated
from cityos.graphql.core.context import Info
from cityos.graphql.core.relay import to_global_id
from cityos.realtime import SubscriberTooSlow
from cityos.realtime.events import customer_subscriptions_channel, vendor_subscriptions_channel

SUBSCRIBER_TOO_SLOW = 4413


@strawberry.type(description="A change to a customer subscription.")
class CustomerSubscriptionEvent:
    type: str = strawberry.field(description="subscription.renewed | subscription.payment_failed | "
                                             "subscription.action_required | subscription.canceled | "
                                             "subscription.paused | subscription.resumed | "
                                             "subscription.plan_changed | subscription.cycle_skipped | "
                                             "subscription.started | subscription.expired")
    subscription_id: strawberry.ID = strawberry.field(description="Global id of the CustomerSubscription.")
    status: str = strawberry.field(description="The subscription's status after the change (lower case).")
    cycle_id: strawberry.ID | None = strawberry.field(description="The billing cycle concerned, if any.")
    order_id: strawberry.ID | None = strawberry.field(description="Global id of the renewal order (renewed).")
    decline_code: str | None = strawberry.field(description="Stripe's decline code (payment failed).")
    at: datetime = strawberry.field(description="When it happened (ISO 8601, UTC).")

    @classmethod
    def of(cls, payload: dict[str, Any]) -> CustomerSubscriptionEvent:
        return cls(type=payload["type"], status=payload["status"],
                   subscription_id=to_global_id("CustomerSubscription", payload["subscription_id"]),
                   cycle_id=strawberry.ID(payload["cycle_id"]) if payload.get("cycle_id") else None,
                   order_id=to_global_id("Order", payload["order_id"]) if payload.get("order_id") else None,
                   decline_code=payload.get("decline_code"), at=datetime.fromisoformat(payload["at"]))


def subscription_resource(payload: dict[str, Any]) -> ResourceRef:
    return ResourceRef.of("customer_subscription", payload["subscription_id"], tenant_id=payload["tenant_id"],
                          store_id=payload["store_id"], vendor_id=payload.get("vendor_id") or "",
                          customer_id=payload.get("customer_id") or "")


@strawberry.type
class BillingSubscription:
    @strawberry.subscription(description="Live changes of customer subscriptions: a customer's own, or, for a "
                                          "vendor's admins and users, the subscriptions to the vendor's plans.")
    async def subscription_events(self, info: Info) -> AsyncGenerator[CustomerSubscriptionEvent, None]:
        context = info.context
        principal = context.principal
        if not principal.authenticated or principal.tenant_id is None:
            raise Unauthenticated("sign in to follow your subscriptions")
        if principal.vendor_id:
            channel = vendor_subscriptions_channel(principal.vendor_id)
        elif "customer" in principal.roles:
            channel = customer_subscriptions_channel(principal.tenant_id, principal.id)
        else:
            raise Forbidden("subscription events are for customers and vendors")
        async with await context.services.broker.subscribe(channel) as subscription:
            while True:
                remaining = principal.expires_at - time.time() if principal.expires_at else None
                if remaining is not None and remaining <= 0:
                    raise Unauthenticated("the token has expired: reconnect with a fresh one")
                try:
                    payload = await asyncio.wait_for(subscription.get(), remaining)
                except TimeoutError:
                    raise Unauthenticated("the token has expired: reconnect with a fresh one") from None
                except SubscriberTooSlow:
                    socket = context.response
                    if socket is not None and hasattr(socket, "close"):
                        await socket.close(code=SUBSCRIBER_TOO_SLOW, reason="subscriber too slow: events dropped")
                    return
                if payload.get("tenant_id") != str(principal.tenant_id):
                    continue
                if await context.authz.allowed(subscription_resource(payload), "read"):
                    yield CustomerSubscriptionEvent.of(payload)
