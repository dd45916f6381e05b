"""Refunds and returns. Thin: authorize with Cerbos, map arguments, call the domain (orders/refunds.py,
orders/returns.py) and the Stripe sender (integrations/stripe/refunds.py)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.commerce.rules import check_manual_transition
from cityos.domain.fulfillment import service as fulfillment
from cityos.domain.orders import refunds, returns, rules
from cityos.errors import NotFound, PaymentFailed
from cityos.graphql.commerce.arguments import NewOrderStatus, OrderIdArg
from cityos.graphql.commerce.types import ORDER_TABLE, Order, VendorOrder
from cityos.graphql.core.context import Info, tenant_of
from cityos.graphql.core.nodes import load_node, node_by_global_id
from cityos.graphql.core.relay import from_global_id, to_global_id
from cityos.graphql.core.values import described_enum
from cityos.graphql.orders.types import RETURN_TABLE, Refund, Return
from cityos.integrations.stripe.refunds import make_refund


class RefundReason(StrEnum):
    REQUESTED_BY_CUSTOMER = "requested_by_customer"
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"


described_enum(RefundReason, "Why the money goes back (Stripe's refund reasons).", {
    RefundReason.REQUESTED_BY_CUSTOMER: "The buyer asked for it.",
    RefundReason.DUPLICATE: "The buyer paid twice.",
    RefundReason.FRAUDULENT: "The payment was fraudulent.",
})


@strawberry.input(description="Units of one order line to refund.")
class RefundLineInput:
    line_id: strawberry.ID = strawberry.field(description="Global id of the order line.")
    quantity: int = strawberry.field(description="Units to refund (at most those not refunded yet).")
    restock: bool = strawberry.field(default=False, description="Put the units back in stock.")


@strawberry.input(description="What to refund: units of lines, and optionally the shipping.")
class RefundInput:
    lines: list[RefundLineInput] = strawberry.field(default_factory=list, description="Units of lines to refund.")
    refund_shipping: bool = strawberry.field(default=False, description="Also refund the shipping and its tax "
                                                                        "(once).")
    reason: RefundReason = strawberry.field(default=RefundReason.REQUESTED_BY_CUSTOMER,
                                            description="Why (sent to Stripe).")
    note: str | None = strawberry.field(default=None, description="A note for the store (at most 500 characters).")


@strawberry.input(description="Units of one order line to return.")
class ReturnLineInput:
    line_id: strawberry.ID = strawberry.field(description="Global id of the order line.")
    quantity: int = strawberry.field(description="Units to return.")


@strawberry.input(description="Whether a received line goes back to stock.")
class ReceivedLineInput:
    line_id: strawberry.ID = strawberry.field(description="Global id of the order line.")
    restock: bool = strawberry.field(description="Put the units back in stock (default for unnamed lines: yes).")


RefundArg = Annotated[RefundInput, strawberry.argument(description="What to refund.")]
VendorOrderIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the vendor order.")]
ReturnIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the return.")]
ReturnLines = Annotated[list[ReturnLineInput], strawberry.argument(description="The lines and units to return.")]
Reason = Annotated[str, strawberry.argument(description="Why the buyer returns them (1–500 characters).")]
Note = Annotated[str | None, strawberry.argument(description="A note on the decision (at most 500 characters).")]
ReceivedLines = Annotated[list[ReceivedLineInput] | None, strawberry.argument(
    description="Per line: restock or not (lines not named are restocked).")]


def _requests(input: RefundInput) -> list[rules.LineRequest]:
    return [rules.LineRequest(from_global_id(line.line_id, "OrderLine")[1], line.quantity, line.restock)
            for line in input.lines]


async def _refunded(info: Info, order: Order, request: refunds.RefundRequest) -> Refund:
    """Make the refund now; a refusal by Stripe leaves the refund `failed` (ledger untouched) and is an error."""
    principal = info.context.principal
    row = await make_refund(info.context.services, tenant_of(info), info.context.db.audit_actor,
                            info.context.db.action, lambda connection: refunds.start_refund(
                                connection, order.row.id, request, principal.id))
    if row.status == "failed":
        raise PaymentFailed(f"Stripe refused the refund: {row.failure_reason}; nothing was refunded and the "
                            f"ledger is unchanged", provider_code="refund_failed",
                            refundId=to_global_id("Refund", row.id))
    return Refund.from_row(row)


@strawberry.type
class OrdersMutation:
    @strawberry.mutation(description="Refund units of an order's lines (restocked or not, per line) and optionally "
                                     "its shipping, through Stripe. Never more than was captured minus earlier "
                                     "refunds: BAD_USER_INPUT with extensions.refundable otherwise; an unpaid order "
                                     "is INVALID_STATE_TRANSITION; Stripe's refusal is PAYMENT_FAILED (the refund "
                                     "is kept as failed). Store and tenant admins.")
    async def refund_order(self, info: Info, order_id: OrderIdArg, input: RefundArg) -> Refund:
        order: Order = await node_by_global_id(info, order_id, "Order", "refund")
        return await _refunded(info, order, refunds.RefundRequest(
            lines=_requests(input), refund_shipping=input.refund_shipping, reason=input.reason.value,
            note=input.note))

    @strawberry.mutation(description="A vendor refunds lines of its own vendor order (when the tenant's policy "
                                     "allows vendors to; store admins may always). The shipping is the store's to "
                                     "refund.")
    async def refund_vendor_order(self, info: Info, vendor_order_id: VendorOrderIdArg, input: RefundArg) -> Refund:
        part: VendorOrder = await load_node(info, vendor_order_id, "VendorOrder")
        if not await info.context.authz.allowed(part.resource(), "read"):
            raise NotFound("no VendorOrder with that id")  # another vendor's order does not exist for this one
        await info.context.authz.require(part.resource(), "refund")
        order = Order.from_row(await info.context.loaders.by_key(ORDER_TABLE).load(part.row.order_id))
        return await _refunded(info, order, refunds.RefundRequest(
            lines=_requests(input), refund_shipping=input.refund_shipping, reason=input.reason.value,
            note=input.note, vendor_id=part.row.vendor_id))

    @strawberry.mutation(description="Move an order along its state machine (pending → paid → fulfilled → "
                                     "completed; canceled; refunded). Canceling or refunding a paid order gives "
                                     "back everything not refunded yet through Stripe first (a cancellation "
                                     "restocks the units); the order takes the new status once Stripe took the "
                                     "refund. INVALID_STATE_TRANSITION otherwise.")
    async def update_order_status(self, info: Info, id: OrderIdArg, status: NewOrderStatus) -> Order:
        order: Order = await node_by_global_id(info, id, "Order", "update")
        target = check_manual_transition(order.row.status, status.value).value  # before any money moves
        if target in ("canceled", "refunded") and order.row.status in rules.REFUNDABLE_STATUSES:
            left = await info.context.db.run(lambda connection: refunds.order_amounts(connection, order.row))
            if order.row.total - left.refunded > 0:
                await info.context.authz.require(order.resource(), "refund")
                await _refunded(info, order, refunds.RefundRequest(lines=[], everything=True, order_status=target))
                row = await info.context.db.run(lambda connection: _order_row(connection, order.row.id))
                if row.status == "canceled":
                    await info.context.db.mutate(lambda connection: fulfillment.stop_shipments(connection, row))
                return Order.from_row(row)
        changed = await info.context.db.mutate(lambda connection: fulfillment.update_order_status(
            connection, order.row.id, target, info.context.events))
        return Order.from_row(changed)

    @strawberry.mutation(description="Ask to return delivered lines of an order, with a reason, within the store's "
                                     "return window (the buyer, or an admin for them).")
    async def request_return(self, info: Info, order_id: OrderIdArg, lines: ReturnLines, reason: Reason) -> Return:
        order: Order = await node_by_global_id(info, order_id, "Order", "return")
        wanted = [(from_global_id(line.line_id, "OrderLine")[1], line.quantity) for line in lines]
        row = await info.context.db.mutate(lambda connection: returns.request_return(
            connection, order.row.id, wanted, reason, info.context.principal.id, info.context.events,
            fulfillment.delivered_at))
        return Return.from_row(row)

    @strawberry.mutation(description="Approve a requested return (store admins, or the vendor whose lines they all "
                                     "are).")
    async def approve_return(self, info: Info, id: ReturnIdArg, note: Note = None) -> Return:
        found: Return = await node_by_global_id(info, id, "Return", "decide")
        row = await info.context.db.mutate(lambda connection: returns.decide_return(
            connection, found.row.id, True, note, info.context.events))
        return Return.from_row(row)

    @strawberry.mutation(description="Reject a requested return, with a note for the buyer.")
    async def reject_return(self, info: Info, id: ReturnIdArg, note: Note = None) -> Return:
        found: Return = await node_by_global_id(info, id, "Return", "decide")
        row = await info.context.db.mutate(lambda connection: returns.decide_return(
            connection, found.row.id, False, note, info.context.events))
        return Return.from_row(row)

    @strawberry.mutation(description="The returned items arrived: restock them (or not, per line) and refund those "
                                     "units through Stripe. The return is refunded once Stripe took the refund; "
                                     "Stripe's refusal is PAYMENT_FAILED and the return stays received.")
    async def receive_return(self, info: Info, id: ReturnIdArg, lines: ReceivedLines = None) -> Return:
        found: Return = await node_by_global_id(info, id, "Return", "receive")
        restock = {from_global_id(line.line_id, "OrderLine")[1]: line.restock for line in lines or []}
        principal = info.context.principal
        refund = await make_refund(info.context.services, tenant_of(info), info.context.db.audit_actor,
                                   info.context.db.action, lambda connection: returns.receive_return(
                                       connection, found.row.id, restock, principal.id))
        if refund.status == "failed":
            raise PaymentFailed(f"Stripe refused the return's refund: {refund.failure_reason}",
                                provider_code="refund_failed", refundId=to_global_id("Refund", refund.id))
        row = await info.context.db.run(lambda connection: _return_row(connection, found.row.id))
        return Return.from_row(row)


async def _order_row(connection: AsyncConnection, order_id: Any) -> Any:
    return (await connection.execute(select(ORDER_TABLE).where(ORDER_TABLE.c.id == order_id))).one()


async def _return_row(connection: AsyncConnection, return_id: Any) -> Any:
    return (await connection.execute(select(RETURN_TABLE).where(RETURN_TABLE.c.id == return_id))).one()
