"""GraphQL types of refunds and returns (declared once: table, Cerbos kind, attributes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy.engine import Row

from cityos.domain.base import table_of
from cityos.domain.orders.models import OrderReturn as ReturnModel
from cityos.domain.orders.models import Refund as RefundModel
from cityos.domain.orders.models import RefundLine as RefundLineModel
from cityos.domain.orders.models import RefundStatus, ReturnStatus, ReversalStatus
from cityos.domain.orders.models import RefundTransferReversal as ReversalModel
from cityos.domain.orders.models import ReturnLine as ReturnLineModel
from cityos.graphql.core.context import Info
from cityos.graphql.core.nodes import Attribute, Declaration, Declared, columns, declare
from cityos.graphql.core.relay import Node, to_global_id
from cityos.graphql.core.values import Money, described_enum, money

REFUND_TABLE = table_of(RefundModel)
REFUND_LINE_TABLE = table_of(RefundLineModel)
REVERSAL_TABLE = table_of(ReversalModel)
RETURN_TABLE = table_of(ReturnModel)
RETURN_LINE_TABLE = table_of(ReturnLineModel)

described_enum(RefundStatus, "Where a refund is at Stripe.", {
    RefundStatus.PENDING: "Written, not yet taken by Stripe, or Stripe is still processing it.",
    RefundStatus.SUCCEEDED: "The money went back to the buyer.",
    RefundStatus.FAILED: "Stripe refused it or it failed later (failureReason); the ledger is untouched or "
                         "restored.",
    RefundStatus.REQUIRES_ACTION: "Stripe needs more from the buyer before it can refund.",
    RefundStatus.CANCELED: "Canceled at Stripe.",
})
described_enum(ReversalStatus, "How a refunded vendor share that was already paid out is recovered.", {
    ReversalStatus.PENDING: "To be reversed from the vendor's transfer.",
    ReversalStatus.REVERSED: "Reversed from the vendor's transfer at Stripe.",
    ReversalStatus.DEBT: "The vendor's balance could not cover it: a debt netted from its next payout.",
})
described_enum(ReturnStatus, "Where a return is: requested → approved → received → refunded, or rejected.", {
    ReturnStatus.REQUESTED: "The buyer asked to return the lines.",
    ReturnStatus.APPROVED: "The store or vendor accepted it; the buyer sends the items back.",
    ReturnStatus.REJECTED: "The store or vendor refused it (decisionNote says why).",
    ReturnStatus.RECEIVED: "The items arrived; the refund is under way (or failed: see the refund).",
    ReturnStatus.REFUNDED: "The refund was taken by Stripe.",
})


def _vendor_id(row: Any) -> str:
    return str(row.vendor_id) if row.vendor_id else ""


REFUND = Declaration(
    "Refund", REFUND_TABLE, "refund",
    {**columns(REFUND_TABLE, "tenant_id", "store_id"),
     "vendor_id": Attribute(REFUND_TABLE.c.vendor_id, _vendor_id)},
    fields={"amount": lambda row: money(row.amount, row.currency_code),
            "shipping_amount": lambda row: money(row.shipping_amount, row.currency_code),
            "status": lambda row: RefundStatus(row.status),
            "order_id": lambda row: to_global_id("Order", row.order_id),
            "return_id": lambda row: to_global_id("Return", row.return_id) if row.return_id else None})
RETURN = Declaration(
    "Return", RETURN_TABLE, "order_return",
    {**columns(RETURN_TABLE, "tenant_id", "store_id"),
     "vendor_id": Attribute(RETURN_TABLE.c.vendor_id, _vendor_id),
     "customer_id": Attribute(RETURN_TABLE.c.customer_id, lambda row: row.customer_id or "")},
    fields={"status": lambda row: ReturnStatus(row.status),
            "order_id": lambda row: to_global_id("Order", row.order_id),
            "refund_id": lambda row: to_global_id("Refund", row.refund_id) if row.refund_id else None})


@strawberry.type(description="Units of one order line a refund gives back.")
class RefundLine:
    order_line_id: strawberry.ID = strawberry.field(description="Global id of the order line.")
    quantity: int = strawberry.field(description="Units refunded.")
    amount: Money = strawberry.field(description="Their part of the line's total (largest-remainder split).")
    tax_amount: Money = strawberry.field(description="Their part of the line's tax.")
    restock: bool = strawberry.field(description="Whether the units went back to stock.")
    unstocked: int = strawberry.field(description="Restocked units taken out of stock again because the refund "
                                                  "failed after it was accepted.")
    restock_shortfall: int = strawberry.field(description="Restocked units that could not be taken back when the "
                                                          "refund failed: sold again meanwhile (stock never goes "
                                                          "below zero); the store reconciles them.")

    @classmethod
    def of(cls, row: Row[Any], currency_code: str) -> RefundLine:
        return cls(order_line_id=to_global_id("OrderLine", row.order_line_id), quantity=row.quantity,
                   amount=money(row.amount, currency_code), tax_amount=money(row.tax_amount, currency_code),
                   restock=row.restock, unstocked=row.unstocked, restock_shortfall=row.unstock_shortfall)


@strawberry.type(description="A refunded vendor share that a payout had already transferred, taken back from that "
                             "transfer (or, when the vendor's balance could not cover it, netted from its next "
                             "payout).")
class TransferReversal:
    amount: Money = strawberry.field(description="The vendor share taken back.")
    status: ReversalStatus = strawberry.field(description="reversed at Stripe, pending, or a debt.")
    payout_id: strawberry.ID = strawberry.field(description="Global id of the payout whose transfer it was.")
    stripe_transfer_id: str = strawberry.field(description="The transfer (tr_…).")
    stripe_reversal_id: str | None = strawberry.field(description="The reversal (trr_…), once made.")
    failure_reason: str | None = strawberry.field(description="Why it could not be reversed.")


@strawberry.federation.type(keys=["id"], description="Money given back to a buyer through Stripe: units of some "
                                                     "lines (their goods and tax share) and optionally the shipping.")
@declare(REFUND)
class Refund(Node, Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    order_id: strawberry.ID = strawberry.field(description="Global id of the order refunded.")
    return_id: strawberry.ID | None = strawberry.field(description="The return this refund settles, if any.")
    amount: Money = strawberry.field(description="The whole amount given back.")
    shipping_amount: Money = strawberry.field(description="Of which shipping and its tax.")
    reason: str = strawberry.field(description="requested_by_customer | duplicate | fraudulent (Stripe's reasons).")
    note: str | None = strawberry.field(description="The admin's note.")
    status: RefundStatus = strawberry.field(description="Where the refund is at Stripe.")
    stripe_refund_id: str | None = strawberry.field(description="The Stripe refund (re_…), once Stripe took it.")
    failure_reason: str | None = strawberry.field(description="Why Stripe refused it or it failed.")
    requested_by: str = strawberry.field(description="Who asked for it (the token's subject).")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    row: strawberry.Private[Any]

    @strawberry.field(description="The units refunded, line by line.")
    async def lines(self, info: Info) -> list[RefundLine]:
        rows = await info.context.loaders.many_by_key(REFUND_LINE_TABLE, "refund_id").load(self.row.id)
        return [RefundLine.of(row, self.row.currency_code) for row in sorted(rows, key=lambda r: r.created_at)]

    @strawberry.field(description="Vendor shares taken back from transfers already made.")
    async def transfer_reversals(self, info: Info) -> list[TransferReversal]:
        rows = await info.context.loaders.many_by_key(REVERSAL_TABLE, "refund_id").load(self.row.id)
        return [TransferReversal(amount=money(row.amount, row.currency_code), status=ReversalStatus(row.status),
                                 payout_id=to_global_id("Payout", row.payout_id),
                                 stripe_transfer_id=row.stripe_transfer_id, stripe_reversal_id=row.stripe_reversal_id,
                                 failure_reason=row.failure_reason) for row in rows]


@strawberry.type(description="Units of one order line asked back.")
class ReturnLine:
    order_line_id: strawberry.ID = strawberry.field(description="Global id of the order line.")
    quantity: int = strawberry.field(description="Units to return.")
    restock: bool | None = strawberry.field(description="Whether the received units went back to stock (null until "
                                                        "received).")


@strawberry.federation.type(keys=["id"], description="A buyer's return of delivered lines, with a reason.")
@declare(RETURN)
class Return(Node, Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    order_id: strawberry.ID = strawberry.field(description="Global id of the order.")
    status: ReturnStatus = strawberry.field(description="Where the return is.")
    reason: str = strawberry.field(description="Why the buyer returns the items.")
    decision_note: str | None = strawberry.field(description="The store's or vendor's note on its decision.")
    refund_id: strawberry.ID | None = strawberry.field(description="The refund made when the items were received.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    row: strawberry.Private[Any]

    @strawberry.field(description="The lines asked back.")
    async def lines(self, info: Info) -> list[ReturnLine]:
        rows = await info.context.loaders.many_by_key(RETURN_LINE_TABLE, "return_id").load(self.row.id)
        return [ReturnLine(order_line_id=to_global_id("OrderLine", row.order_line_id), quantity=row.quantity,
                           restock=row.restock) for row in sorted(rows, key=lambda r: r.created_at)]


@strawberry.type(description="What a vendor owes back: a refunded vendor share already paid out that its transfer "
                             "could not give back (the vendor's Stripe balance did not cover it). The vendor's next "
                             "payout nets it.")
class VendorDebt:
    vendor_id: strawberry.ID = strawberry.field(description="Global id of the vendor that owes it.")
    amount: Money = strawberry.field(description="The vendor share to give back.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    outstanding: Money = strawberry.field(description="What is still owed: the amount until a payout nets it, then "
                                                      "zero.")
    refund_id: strawberry.ID = strawberry.field(description="Global id of the refund it comes from.")
    order_id: strawberry.ID = strawberry.field(description="Global id of the refunded order.")
    payout_id: strawberry.ID = strawberry.field(description="Global id of the payout whose transfer could not be "
                                                            "reversed.")
    stripe_transfer_id: str = strawberry.field(description="That payout's transfer (tr_…).")
    failure_reason: str | None = strawberry.field(description="Why Stripe could not reverse it (e.g. "
                                                              "balance_insufficient).")
    netted_by_payout_id: strawberry.ID | None = strawberry.field(
        description="Global id of the payout that nets it (pending or paid); null while it is outstanding.")
    created_at: datetime = strawberry.field(description="When the reversal was asked for (ISO 8601, UTC).")

    @classmethod
    def from_row(cls, row: Row[Any]) -> VendorDebt:
        netted = row.netted_by_payout_id
        return cls(vendor_id=to_global_id("Vendor", row.vendor_id), amount=money(row.amount, row.currency_code),
                   currency_code=row.currency_code,
                   outstanding=money(0 if netted else row.amount, row.currency_code),
                   refund_id=to_global_id("Refund", row.refund_id), order_id=to_global_id("Order", row.order_id),
                   payout_id=to_global_id("Payout", row.payout_id), stripe_transfer_id=row.stripe_transfer_id,
                   failure_reason=row.failure_reason,
                   netted_by_payout_id=to_global_id("Payout", netted) if netted else None,
                   created_at=row.created_at)
