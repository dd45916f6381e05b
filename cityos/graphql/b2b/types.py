"""B2B types, declared once. A company's users, price lists, approval rules and spending are read through the
company; a quote's lines, versions and messages through the quote (a vendor sees only its own products' lines);
an approval request's audit trail through the request."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from cityos.domain.b2b import queries as b2b
from cityos.domain.b2b import rules
from cityos.domain.b2b.invitations import INVITATION
from cityos.domain.b2b.models import (
    ApprovalDecision,
    ApprovalMode,
    ApprovalStatus,
    CompanyRole,
    CompanyStatus,
    CompanyUserStatus,
    InvitationStatus,
    InvoiceStatus,
    PaymentMethod,
    PaymentTerms,
    QuoteStatus,
    SpendingPeriod,
)
from cityos.domain.b2b.service import APPROVAL_REQUEST, COMPANY, INVOICE, QUOTE
from cityos.graphql.commerce.types import ORDER_TABLE, Order
from cityos.graphql.core.context import Info
from cityos.graphql.core.nodes import Declaration, Declared, columns, declare
from cityos.graphql.core.permissions import guarded_field
from cityos.graphql.core.relay import After, Connection, First, Node, PageRequest, page_query, to_global_id, wants_total
from cityos.graphql.core.values import Address, Money, described_enum, money, optional_money

described_enum(CompanyStatus, "Whether a company can buy.", {
    CompanyStatus.ACTIVE: "Buying: quotes, orders and credit are open.",
    CompanyStatus.SUSPENDED: "Suspended by the store: no new quotes or orders on account.",
})
described_enum(PaymentTerms, "How a company pays for its orders.", {
    PaymentTerms.PREPAID: "By card at order time (no credit).",
    PaymentTerms.NET_15: "On account: the invoice is due 15 days after the order.",
    PaymentTerms.NET_30: "On account: the invoice is due 30 days after the order.",
    PaymentTerms.NET_60: "On account: the invoice is due 60 days after the order.",
})
described_enum(CompanyRole, "A company user's role in the company.", {
    CompanyRole.COMPANY_ADMIN: "Manages the company's users, limits and approval rules; sees all its purchases.",
    CompanyRole.COMPANY_BUYER: "Requests quotes and orders within their spending limit.",
    CompanyRole.APPROVER: "A buyer who also approves purchases where an approval rule names the role.",
})
described_enum(CompanyUserStatus, "Whether a company user is in the company.", {
    CompanyUserStatus.ACTIVE: "In the company.",
    CompanyUserStatus.REMOVED: "Removed by a company admin: their tokens no longer act for the company.",
})
described_enum(SpendingPeriod, "The period a spending limit resets on (UTC calendar).", {
    SpendingPeriod.MONTH: "Calendar month: resets on the 1st.",
    SpendingPeriod.QUARTER: "Calendar quarter: resets on Jan 1, Apr 1, Jul 1 and Oct 1.",
})
described_enum(QuoteStatus, "Where a quote is in its negotiation.", {
    QuoteStatus.REQUESTED: "Requested by the buyer; waiting for the seller.",
    QuoteStatus.RESPONDED: "The store or a vendor answered with a new version; the buyer may accept or counter.",
    QuoteStatus.COUNTERED: "The buyer countered with a version of their own; waiting for the seller.",
    QuoteStatus.PENDING_APPROVAL: "Accepted by the buyer, waiting for the company's approvers.",
    QuoteStatus.APPROVED: "Accepted (and approved where needed): ready to become an order.",
    QuoteStatus.REJECTED: "An approver rejected it.",
    QuoteStatus.ORDERED: "Converted into its one order.",
    QuoteStatus.EXPIRED: "Its validity date passed before it was ordered.",
})
described_enum(ApprovalStatus, "Where an approval request is.", {
    ApprovalStatus.PENDING: "Waiting for the approvers of its current level.",
    ApprovalStatus.APPROVED: "Every level approved.",
    ApprovalStatus.REJECTED: "An approver rejected it (or its quote expired).",
})
described_enum(ApprovalDecision, "An approver's decision.", {
    ApprovalDecision.APPROVE: "Approve at the current level.",
    ApprovalDecision.REJECT: "Reject the request (and its quote).",
})
described_enum(InvoiceStatus, "Whether an invoice is paid.", {
    InvoiceStatus.OPEN: "Owed: its amount is taken from the company's available credit.",
    InvoiceStatus.PAID: "Paid: its amount is available credit again.",
    InvoiceStatus.OVERDUE: "Open past its due date (marked by the mark-overdue-invoices job): the company is on "
                           "credit hold — no new order on account (CREDIT_HOLD) until it is paid.",
})
described_enum(InvitationStatus, "Where an invitation into a company is.", {
    InvitationStatus.PENDING: "Sent: the invitee accepts it until it expires (inviting the email again sends a new "
                              "token).",
    InvitationStatus.ACCEPTED: "Accepted: the invitee is a user of the company.",
    InvitationStatus.REVOKED: "Revoked by a company admin: its token no longer works.",
})
described_enum(PaymentMethod, "How a company order is paid.", {
    PaymentMethod.CARD: "By card: a Stripe PaymentIntent the buyer confirms (after approval, when one is needed).",
    PaymentMethod.ON_ACCOUNT: "On account: the total is taken from the company's credit and invoiced by its "
                              "payment terms (the order awaits payment until the invoice is paid).",
})


described_enum(ApprovalMode, "How an approval level is complete.", {
    ApprovalMode.ALL: "Every named user, and one holder of every named role, approved.",
    ApprovalMode.ANY: "One eligible approver approved.",
})

COMPANY_DECLARATION = Declaration(
    "Company", COMPANY, "company", {**columns(COMPANY, "tenant_id", "store_ids", company_id="id")},
    fields={"status": lambda row: CompanyStatus(row.status),
            "payment_terms": lambda row: PaymentTerms(row.payment_terms),
            "billing_address": lambda row: Address.from_stored(row.billing_address),
            "shipping_address": lambda row: Address.from_stored(row.shipping_address)})
COMPANY_USER_DECLARATION = Declaration(
    "CompanyUser", b2b.COMPANY_USER, "company_user", columns(b2b.COMPANY_USER, "tenant_id", "company_id",
                                                              "customer_id"),
    fields={"role": lambda row: CompanyRole(row.role), "status": lambda row: CompanyUserStatus(row.status),
            "limit_period": lambda row: SpendingPeriod(row.limit_period) if row.limit_period else None})
PRICE_LIST_DECLARATION = Declaration("PriceList", b2b.PRICE_LIST, "price_list",
                                     columns(b2b.PRICE_LIST, "tenant_id", "company_id"))
QUOTE_DECLARATION = Declaration(
    "Quote", QUOTE, "quote", columns(QUOTE, "tenant_id", "store_id", "company_id", "vendor_ids", "status",
                                     customer_id="buyer_id"),
    fields={"status": lambda row: QuoteStatus(row.status)})
APPROVAL_DECLARATION = Declaration(
    "ApprovalRequest", APPROVAL_REQUEST, "approval", columns(APPROVAL_REQUEST, "tenant_id", "company_id", "status",
                                                              customer_id="buyer_id"),
    fields={"status": lambda row: ApprovalStatus(row.status), "amount": lambda row: money(row.amount,
                                                                                           row.currency_code),
            "payment_method": lambda row: PaymentMethod(row.payment_method) if row.payment_method else None})
INVITATION_DECLARATION = Declaration(
    "CompanyInvitation", INVITATION, "company_invitation", columns(INVITATION, "tenant_id", "company_id", "status",
                                                                   "email"),
    fields={"role": lambda row: CompanyRole(row.role), "status": lambda row: InvitationStatus(row.status)})
INVOICE_DECLARATION = Declaration(
    "Invoice", INVOICE, "invoice", columns(INVOICE, "tenant_id", "company_id", "status", customer_id="buyer_id"),
    fields={"status": lambda row: InvoiceStatus(row.status), "payment_terms": lambda row: PaymentTerms(
        row.payment_terms), "amount": lambda row: money(row.amount, row.currency_code)})


@strawberry.type(description="What one buyer committed in a spending period (accepted quotes' goods totals).")
class BuyerSpending:
    customer_id: str = strawberry.field(description="The buyer's customer id (token subject).")
    spent: Money = strawberry.field(description="Committed in the period.")


@strawberry.type(description="One level of an approval rule or request.")
class ApprovalLevel:
    mode: ApprovalMode = strawberry.field(description="ALL: every named user and one holder of every named role; "
                                                      "ANY: one eligible approver.")
    roles: list[CompanyRole] = strawberry.field(description="Company roles whose holders may approve.")
    user_ids: list[str] = strawberry.field(description="Customer ids (token subjects) who may approve.")

    @classmethod
    def of(cls, data: dict[str, Any]) -> ApprovalLevel:
        return cls(mode=ApprovalMode.ALL if data["mode"] == "all" else ApprovalMode.ANY,
                   roles=[CompanyRole(role) for role in data.get("roles", [])], user_ids=list(data.get("users", [])))


@strawberry.type(description="From a purchase amount on, the levels of approval it needs.")
class ApprovalRule:
    id: strawberry.ID = strawberry.field(description="Opaque id of the rule.")
    min_amount: Money = strawberry.field(description="Purchases of at least this amount need the levels.")
    levels: list[ApprovalLevel] = strawberry.field(description="The levels, in order.")


@strawberry.type(description="A company's price for a variant, a product or a category, from a quantity on.")
class PriceListEntry:
    variant_id: strawberry.ID | None = strawberry.field(description="The variant priced (global id).")
    product_id: strawberry.ID | None = strawberry.field(description="The product priced (global id).")
    category_id: strawberry.ID | None = strawberry.field(description="The category priced (global id).")
    min_quantity: int = strawberry.field(description="From this many units on.")
    percent_off: Decimal | None = strawberry.field(description="Percent off the list price.")
    unit_amount: Money | None = strawberry.field(description="A fixed unit price.")


@strawberry.federation.type(keys=["id"], description="A company's own prices in one currency: the unit price of a "
                                                     "company buyer's line is the lowest of list, volume tiers and "
                                                     "this list.")
@declare(PRICE_LIST_DECLARATION)
class PriceList(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    name: str = strawberry.field(description="Display name.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code of its amounts.")
    pk: strawberry.Private[uuid.UUID]

    @guarded_field("PriceList", "entries", "The list's prices (negotiated values).")
    async def entries(self, info: Info) -> list[PriceListEntry] | None:
        rows = await info.context.loaders.many_by_key(b2b.PRICE_LIST_ENTRY, "price_list_id").load(self.pk)
        return [PriceListEntry(
            variant_id=to_global_id("Variant", row.variant_id) if row.variant_id else None,
            product_id=to_global_id("Product", row.product_id) if row.product_id else None,
            category_id=to_global_id("Category", row.category_id) if row.category_id else None,
            min_quantity=row.min_quantity, percent_off=row.percent_off,
            unit_amount=optional_money(row.unit_amount, self.currency_code))
            for row in sorted(rows, key=lambda row: (str(row.variant_id or row.product_id or row.category_id),
                                                     row.min_quantity))]


@strawberry.federation.type(keys=["id"], description="A customer acting for a company, with a company role and a "
                                                     "spending limit.")
@declare(COMPANY_USER_DECLARATION)
class CompanyUser(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    customer_id: str = strawberry.field(description="The customer's id (token subject).")
    email: str = strawberry.field(description="The user's email.")
    role: CompanyRole = strawberry.field(description="The company role.")
    status: CompanyUserStatus = strawberry.field(description="Whether the user is in the company.")
    limit_period: SpendingPeriod | None = strawberry.field(description="The period the period limit resets on.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    company_pk: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Largest purchase without approval; null: no per-order limit.")
    async def order_limit(self, info: Info) -> Money | None:
        return optional_money(self.row.order_limit, await _currency(info, self.company_pk))

    @strawberry.field(description="Most the user commits per period without approval; null: no period limit.")
    async def period_limit(self, info: Info) -> Money | None:
        return optional_money(self.row.period_limit, await _currency(info, self.company_pk))


async def _readable_order(info: Info, order_id: uuid.UUID) -> Order | None:
    row = await info.context.loaders.by_key(ORDER_TABLE).load(order_id)
    node = Order.from_row(row) if row else None
    return node if node and await info.context.authz.allowed(node.resource(), "read") else None


async def _currency(info: Info, company_id: uuid.UUID) -> str:
    row = await info.context.loaders.by_key(COMPANY).load(company_id)
    return str(row.currency_code) if row else ""


@strawberry.federation.type(keys=["id"], description="A business customer: its users, credit, payment terms, "
                                                     "price lists, approval rules and purchases.")
@declare(COMPANY_DECLARATION)
class Company(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    legal_name: str = strawberry.field(description="The company's legal name.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code it buys and is credited in.")
    payment_terms: PaymentTerms = strawberry.field(description="How it pays.")
    status: CompanyStatus = strawberry.field(description="Whether it can buy.")
    billing_address: Address | None = strawberry.field(description="Where invoices go.")
    shipping_address: Address | None = strawberry.field(description="Where orders from quotes are shipped.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]

    @guarded_field("Company", "tax_id", "The company's tax (VAT) id.")
    def tax_id(self) -> str | None:
        return str(self.row.tax_id) if self.row.tax_id else None

    @guarded_field("Company", "credit_limit", "Most it may owe on account.")
    def credit_limit(self) -> Money | None:
        return money(self.row.credit_limit, self.row.currency_code)

    @strawberry.field(description="The stores it is restricted to (global ids); empty: every store of the tenant.")
    def store_ids(self) -> list[strawberry.ID]:
        return [to_global_id("Store", store) for store in self.row.store_ids.split(",") if store]

    @strawberry.field(description="Whether the company is on credit hold: an invoice is overdue, so no new order on "
                                  "account (CREDIT_HOLD) until it is paid.")
    async def credit_hold(self, info: Info) -> bool:
        return bool(await info.context.db.run(lambda connection: b2b.overdue_invoices(connection, self.pk)))

    @guarded_field("Company", "available_credit", "Credit left: the limit less open invoices.")
    def available_credit(self) -> Money | None:
        return money(rules.available_credit(self.row.credit_limit, self.row.credit_used), self.row.currency_code)

    @strawberry.field(description="The company's users the caller may read (admins: all; buyers: themselves).")
    async def users(self, info: Info) -> list[CompanyUser]:
        rows = await info.context.loaders.many_by_key(b2b.COMPANY_USER, "company_id").load(self.pk)
        visible = await info.context.authz.visible(rows, COMPANY_USER_DECLARATION.resource_of)
        return [CompanyUser.from_row(row) for row in sorted(visible, key=lambda row: (row.created_at, row.id))]

    @strawberry.field(description="The company's price lists the caller may read.")
    async def price_lists(self, info: Info) -> list[PriceList]:
        rows = await info.context.loaders.many_by_key(b2b.PRICE_LIST, "company_id").load(self.pk)
        visible = await info.context.authz.visible(rows, PRICE_LIST_DECLARATION.resource_of)
        return [PriceList.from_row(row) for row in sorted(visible, key=lambda row: (row.created_at, row.id))]

    @strawberry.field(description="Its invitations by email the caller may read (company admins and the tenant's "
                                  "admins), newest first.")
    async def invitations(self, info: Info) -> list[CompanyInvitation]:
        rows = await info.context.loaders.many_by_key(INVITATION, "company_id").load(self.pk)
        visible = await info.context.authz.visible(rows, INVITATION_DECLARATION.resource_of)
        return [CompanyInvitation.from_row(row) for row in sorted(visible, key=lambda row: (row.created_at, row.id),
                                                                    reverse=True)]

    @strawberry.field(description="Its approval rules, by threshold.")
    async def approval_rules(self, info: Info) -> list[ApprovalRule]:
        rows = await info.context.loaders.many_by_key(b2b.APPROVAL_RULE, "company_id").load(self.pk)
        return [ApprovalRule(id=strawberry.ID(str(row.id)), min_amount=money(row.min_amount, self.currency_code),
                             levels=[ApprovalLevel.of(level) for level in row.levels])
                for row in sorted(rows, key=lambda row: row.min_amount)]

    @strawberry.field(description="The company's orders the caller may read (admins: all; buyers: their own), "
                                  "newest first.")
    async def orders(self, info: Info, first: First = None, after: After = None) -> Connection[Order]:
        allowed = await info.context.authz.allowed(self.resource(), "read_purchases")
        listing = b2b.company_orders(self.pk, None if allowed else info.context.principal.id)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after),
                                Order.from_row, listing.order, count=wants_total(info))

    @guarded_field("Company", "spending", "What each buyer committed in the period containing `at` (default now).")
    async def spending(self, info: Info, period: Annotated[SpendingPeriod, strawberry.argument(
            description="Month or quarter.")] = SpendingPeriod.MONTH) -> list[BuyerSpending] | None:
        start, end = rules.period_bounds(datetime.now(UTC), period)
        rows = await info.context.db.run(lambda connection: b2b.spending_by_buyer(connection, self.pk, start, end))
        if not await info.context.authz.allowed(self.resource(), "read_purchases"):
            rows = [row for row in rows if row[0] == info.context.principal.id]
        return [BuyerSpending(customer_id=buyer, spent=money(amount, self.currency_code)) for buyer, amount in rows]


@strawberry.type(description="A quote line as a version stood.")
class QuoteLine:
    variant_id: strawberry.ID = strawberry.field(description="The variant (global id).")
    sku: str = strawberry.field(description="The variant's SKU.")
    title: str = strawberry.field(description="Product and variant title.")
    quantity: int = strawberry.field(description="Units.")
    list_unit_price: Money = strawberry.field(description="The list price of one unit.")
    unit_price: Money = strawberry.field(description="The quoted price of one unit.")
    total: Money = strawberry.field(description="unitPrice × quantity.")

    @classmethod
    def of(cls, line: dict[str, Any], currency: str) -> QuoteLine:
        return cls(variant_id=to_global_id("Variant", line["variant_id"]), sku=line["sku"], title=line["title"],
                   quantity=int(line["quantity"]), list_unit_price=money(int(line["list_unit_price"]), currency),
                   unit_price=money(int(line["unit_price"]), currency),
                   total=money(int(line["unit_price"]) * int(line["quantity"]), currency))


@strawberry.type(description="One change a version made to a line.")
class QuoteChange:
    sku: str = strawberry.field(description="The line's SKU.")
    field: str = strawberry.field(description="quantity or unit_price.")
    old_value: int = strawberry.field(description="Before.")
    new_value: int = strawberry.field(description="After.")


@strawberry.type(description="An immutable response on a quote: who, when, what changed, every line as it stood.")
class QuoteVersion:
    number: int = strawberry.field(description="1 is the request; each response adds one.")
    author_id: str = strawberry.field(description="Who made it (token subject).")
    author_kind: str = strawberry.field(description="buyer, store or vendor.")
    created_at: datetime = strawberry.field(description="When.")
    valid_until: datetime = strawberry.field(description="The validity it gave the quote.")
    total: Money = strawberry.field(description="The goods total of the lines the caller sees.")
    lines: list[QuoteLine] = strawberry.field(description="The lines the caller may see, as they stood.")
    changes: list[QuoteChange] = strawberry.field(description="What it changed.")


@strawberry.type(description="A message on a quote.")
class QuoteMessage:
    author_id: str = strawberry.field(description="Who wrote it (token subject).")
    author_kind: str = strawberry.field(description="buyer, store or vendor.")
    body: str = strawberry.field(description="The text.")
    created_at: datetime = strawberry.field(description="When.")


def _own_lines(info: Info, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A vendor sees only its own products' lines; everyone else who may read the quote sees all."""
    principal = info.context.principal
    if principal.roles & {"vendor_admin", "vendor_user"} and not principal.roles & {"tenant_admin", "store_admin",
                                                                                   "super_admin"}:
        return [line for line in lines if line.get("vendor_id") == principal.vendor_id]
    return lines


@strawberry.federation.type(keys=["id"], description="A buyer's request for prices, negotiated in immutable "
                                                     "versions; accepted (and approved) it becomes one order.")
@declare(QUOTE_DECLARATION)
class Quote(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    status: QuoteStatus = strawberry.field(description="Where the negotiation is.")
    version: int = strawberry.field(description="The current version's number.")
    accepted_version: int | None = strawberry.field(description="The version the buyer accepted.")
    valid_until: datetime = strawberry.field(description="After this the quote expires.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code.")
    buyer_id: str = strawberry.field(description="The requesting buyer (token subject).")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]
    company_pk: strawberry.Private[uuid.UUID]
    order_pk: strawberry.Private[uuid.UUID | None]

    async def _versions(self, info: Info) -> list[Any]:
        rows = await info.context.loaders.many_by_key(b2b.QUOTE_VERSION, "quote_id").load(self.pk)
        return sorted(rows, key=lambda row: row.number)

    @strawberry.field(description="The current version's lines the caller may see.")
    async def lines(self, info: Info) -> list[QuoteLine]:
        current = [row for row in await self._versions(info) if row.number == self.version]
        lines = _own_lines(info, current[0].lines) if current else []
        return [QuoteLine.of(line, self.currency_code) for line in lines]

    @strawberry.field(description="The goods total of the current version's lines the caller may see.")
    async def total(self, info: Info) -> Money:
        current = [row for row in await self._versions(info) if row.number == self.version]
        return money(rules.lines_total(_own_lines(info, current[0].lines) if current else []), self.currency_code)

    @strawberry.field(description="Every version, oldest first.")
    async def versions(self, info: Info) -> list[QuoteVersion]:
        result = []
        for row in await self._versions(info):
            lines = _own_lines(info, row.lines)
            skus = {line["sku"] for line in lines}
            result.append(QuoteVersion(
                number=row.number, author_id=row.author_id, author_kind=row.author_kind, created_at=row.created_at,
                valid_until=row.valid_until, total=money(rules.lines_total(lines), self.currency_code),
                lines=[QuoteLine.of(line, self.currency_code) for line in lines],
                changes=[QuoteChange(sku=change["sku"], field=change["field"], old_value=change["from"],
                                     new_value=change["to"]) for change in row.changes if change["sku"] in skus]))
        return result

    @strawberry.field(description="Messages on the quote, oldest first.")
    async def messages(self, info: Info) -> list[QuoteMessage]:
        rows = await info.context.loaders.many_by_key(b2b.QUOTE_MESSAGE, "quote_id").load(self.pk)
        return [QuoteMessage(author_id=row.author_id, author_kind=row.author_kind, body=row.body,
                             created_at=row.created_at) for row in sorted(rows, key=lambda row: (row.created_at,
                                                                                                  row.id))]

    @strawberry.field(description="The company (null when the caller may not read it).")
    async def company(self, info: Info) -> Company | None:
        row = await info.context.loaders.by_key(COMPANY).load(self.company_pk)
        company = Company.from_row(row) if row else None
        return company if company and await info.context.authz.allowed(company.resource(), "read") else None

    @strawberry.field(description="The order it became (null before, or when the caller may not read it).")
    async def order(self, info: Info) -> Order | None:
        if self.order_pk is None:
            return None
        return await _readable_order(info, self.order_pk)


@strawberry.type(description="One decision in an approval request's audit trail.")
class ApprovalStep:
    level: int = strawberry.field(description="The level decided (0 is the first).")
    approver_id: str = strawberry.field(description="Who decided (token subject).")
    approver_role: CompanyRole = strawberry.field(description="Their company role then.")
    decision: ApprovalDecision = strawberry.field(description="Approve or reject.")
    comment: str | None = strawberry.field(description="Their comment.")
    created_at: datetime = strawberry.field(description="When.")


@strawberry.federation.type(keys=["id"], description="An accepted quote, or a company cart order in "
                                                     "pending_approval, waiting for the company's approvers, level "
                                                     "by level, with its audit trail.")
@declare(APPROVAL_DECLARATION)
class ApprovalRequest(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    status: ApprovalStatus = strawberry.field(description="Where the request is.")
    amount: Money = strawberry.field(description="The purchase's goods total.")
    current_level: int = strawberry.field(description="The level waiting for a decision (0 is the first; equal to "
                                                      "the number of levels once approved).")
    reasons: list[str] = strawberry.field(description="Why approval is needed: order_limit, period_limit, "
                                                      "threshold.")
    buyer_id: str = strawberry.field(description="The buyer (token subject).")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    payment_method: PaymentMethod | None = strawberry.field(description="An order's: how it is paid once "
                                                                        "approved (null for a quote's request).")
    pk: strawberry.Private[uuid.UUID]
    quote_pk: strawberry.Private[uuid.UUID | None]
    order_pk: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The levels, in order.")
    def levels(self) -> list[ApprovalLevel]:
        return [ApprovalLevel.of(level) for level in self.row.levels]

    @strawberry.field(description="Every decision, in order (the audit trail).")
    async def steps(self, info: Info) -> list[ApprovalStep]:
        rows = await info.context.loaders.many_by_key(b2b.APPROVAL_STEP, "request_id").load(self.pk)
        return [ApprovalStep(level=row.level, approver_id=row.approver_id, approver_role=CompanyRole(
            row.approver_role), decision=ApprovalDecision(row.decision), comment=row.comment,
            created_at=row.created_at) for row in sorted(rows, key=lambda row: (row.created_at, row.id))]

    @strawberry.field(description="The order waiting for approval (null for a quote's request, or when the caller "
                                  "may not read it).")
    async def order(self, info: Info) -> Order | None:
        return await _readable_order(info, self.order_pk) if self.order_pk else None

    @strawberry.field(description="The quote (null for an order's request, or when the caller may not read it).")
    async def quote(self, info: Info) -> Quote | None:
        if self.quote_pk is None:
            return None
        row = await info.context.loaders.by_key(QUOTE).load(self.quote_pk)
        quote = Quote.from_row(row) if row else None
        return quote if quote and await info.context.authz.allowed(quote.resource(), "read") else None


@strawberry.federation.type(keys=["id"], description="What an order on account owes, due by the payment terms; "
                                                     "paying it restores the company's credit.")
@declare(INVOICE_DECLARATION)
class Invoice(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    amount: Money = strawberry.field(description="The order's total.")
    status: InvoiceStatus = strawberry.field(description="Open, overdue or paid.")
    payment_terms: PaymentTerms = strawberry.field(description="The terms it was issued under.")
    due_at: datetime = strawberry.field(description="When it is due.")
    paid_at: datetime | None = strawberry.field(description="When it was paid.")
    overdue_at: datetime | None = strawberry.field(description="When it was marked overdue.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    order_pk: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The order (null when the caller may not read it).")
    async def order(self, info: Info) -> Order | None:
        return await _readable_order(info, self.order_pk)


@strawberry.federation.type(keys=["id"], description="An invitation of an email into a company, with a role and a "
                                                     "spending limit (its token is never shown again).")
@declare(INVITATION_DECLARATION)
class CompanyInvitation(Node, Declared):
    row: strawberry.Private[Any]
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    email: str = strawberry.field(description="The invited email.")
    role: CompanyRole = strawberry.field(description="The company role it gives.")
    status: InvitationStatus = strawberry.field(description="Pending, accepted or revoked.")
    expires_at: datetime = strawberry.field(description="Until when a pending invitation is accepted.")
    accepted_by: str | None = strawberry.field(description="The customer (token subject) who accepted it.")
    accepted_at: datetime | None = strawberry.field(description="When it was accepted.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    pk: strawberry.Private[uuid.UUID]
