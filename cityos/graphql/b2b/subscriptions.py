"""Live B2B events (graphql-transport-ws): quote and approval changes for the buyer, the company's admins and
approvers, the store's admins and the vendors on a quote. Each event is authorized again for each subscriber
(Cerbos `read` on the quote or approval request it is about), like the order events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any

import strawberry

from cityos.auth.authz import ResourceRef
from cityos.domain.b2b.models import ApprovalStatus, QuoteStatus
from cityos.errors import Forbidden
from cityos.graphql.b2b import types as _registered  # noqa: F401  (registers the enums as GraphQL enums)
from cityos.graphql.core.context import Info
from cityos.graphql.core.nodes import node_by_global_id
from cityos.graphql.core.relay import to_global_id
from cityos.graphql.orders.subscriptions import live_events


@strawberry.type(description="A change to a quote or to its approval request.")
class LiveQuoteEvent:
    type: str = strawberry.field(description="quote.requested | quote.responded | quote.countered | "
                                             "quote.pending_approval | quote.approved | quote.rejected | "
                                             "quote.ordered | approval.requested | approval.decided")
    quote_id: strawberry.ID | None = strawberry.field(description="Global id of the quote (null for a company "
                                                                  "order's approval events).")
    order_id: strawberry.ID | None = strawberry.field(description="Global id of the order waiting for approval, for "
                                                                  "a company order's approval events.")
    quote_status: QuoteStatus | None = strawberry.field(description="The quote's status after a quote event.")
    version: int | None = strawberry.field(description="The quote's current version after a quote event.")
    approval_request_id: strawberry.ID | None = strawberry.field(description="Global id of the approval request, "
                                                                             "for approval events.")
    approval_status: ApprovalStatus | None = strawberry.field(description="The request's status after an approval "
                                                                          "event.")
    level: int | None = strawberry.field(description="The request's current level after an approval event.")
    at: datetime = strawberry.field(description="When the change happened (ISO 8601, UTC).")

    @classmethod
    def of(cls, payload: dict[str, Any]) -> LiveQuoteEvent:
        approval = str(payload["type"]).startswith("approval.")
        request = payload.get("approval_request_id")
        quote, order = payload.get("quote_id"), payload.get("order_id")
        return cls(type=payload["type"], quote_id=to_global_id("Quote", quote) if quote else None,
                   order_id=to_global_id("Order", order) if order else None,
                   quote_status=None if approval else QuoteStatus(payload["status"]),
                   version=None if approval else payload.get("version"),
                   approval_request_id=to_global_id("ApprovalRequest", request) if request else None,
                   approval_status=ApprovalStatus(payload["status"]) if approval else None,
                   level=payload.get("level") if approval else None, at=datetime.fromisoformat(payload["at"]))


def quote_resource(payload: dict[str, Any]) -> ResourceRef | None:
    if not str(payload.get("type", "")).startswith("quote."):
        return None
    return ResourceRef.of("quote", payload["quote_id"], tenant_id=payload["tenant_id"],
                          store_id=payload.get("store_id") or "", company_id=payload["company_id"],
                          customer_id=payload["buyer_id"], vendor_ids=payload.get("vendor_ids") or "",
                          status=payload["status"])


def approval_resource(payload: dict[str, Any]) -> ResourceRef | None:
    if not str(payload.get("type", "")).startswith("approval."):
        return None
    return ResourceRef.of("approval", payload["approval_request_id"], tenant_id=payload["tenant_id"],
                          company_id=payload["company_id"], customer_id=payload["buyer_id"],
                          status=payload["status"])


QuoteStoreArg = Annotated[strawberry.ID | None, strawberry.argument(
    description="Store admins: the store whose quotes to follow (global id). Company users and vendors omit it.")]


@strawberry.type
class B2BSubscription:
    @strawberry.subscription(description="Quote changes the caller may read: a company's users follow their "
                                         "company's (buyers their own), vendors the quotes with their products, "
                                         "store admins a store's (storeId).")
    async def quote_events(self, info: Info, store_id: QuoteStoreArg = None) -> AsyncGenerator[LiveQuoteEvent, None]:
        principal = info.context.principal
        if store_id is not None:
            store: Any = await node_by_global_id(info, store_id, "Store", "watch_orders")
            channel = f"quote-store:{store.pk}"
        elif principal.company_role and principal.company_id:
            channel = f"company:{uuid.UUID(principal.company_id)}"
        elif principal.vendor_id:
            channel = f"quote-vendor:{principal.vendor_id}"
        else:
            raise Forbidden("quote events are for company users, vendors, and store admins (with storeId)")
        async for update in live_events(info, channel, quote_resource, LiveQuoteEvent.of):
            yield update

    @strawberry.subscription(description="Approval requests of the caller's company as they are raised and "
                                         "decided (admins and approvers all; a buyer their own).")
    async def approval_events(self, info: Info) -> AsyncGenerator[LiveQuoteEvent, None]:
        principal = info.context.principal
        if not principal.company_role or not principal.company_id:
            raise Forbidden("approval events are for company users")
        async for update in live_events(info, f"company:{uuid.UUID(principal.company_id)}", approval_resource,
                                        LiveQuoteEvent.of):
            yield update
