"""Arguments and inputs of the B2B operations."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry

from cityos.domain.b2b.models import (
    ApprovalDecision,
    ApprovalMode,
    ApprovalStatus,
    CompanyRole,
    CompanyStatus,
    InvoiceStatus,
    PaymentMethod,
    PaymentTerms,
    QuoteStatus,
    SpendingPeriod,
)
from cityos.graphql.b2b import types as _registered  # noqa: F401  (registers the enums as GraphQL enums)
from cityos.graphql.commerce.arguments import AddressInput


@strawberry.input(description="A company's details; on update, omitted fields stay as they are.")
class CompanyInput:
    legal_name: str | None = strawberry.field(default=None, description="Legal name (required to create).")
    tax_id: str | None = strawberry.field(default=None, description="Tax (VAT) id.")
    currency_code: str | None = strawberry.field(default=None, description="ISO 4217 code it buys in (required to "
                                                                           "create; fixed afterwards).")
    credit_limit: int | None = strawberry.field(default=None, description="Most it may owe on account, in minor "
                                                                          "units (not below the credit in use).")
    payment_terms: PaymentTerms | None = strawberry.field(default=None, description="How it pays.")
    status: CompanyStatus | None = strawberry.field(default=None, description="Active or suspended.")
    store_id: strawberry.ID | None = strawberry.field(default=None, description="Restrict it to one store "
                                                                                "(global id; on create; see "
                                                                                "storeIds).")
    store_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Restrict it to these stores "
                                                                                      "(global ids; on create; "
                                                                                      "later: setCompanyStores).")
    billing_address: AddressInput | None = strawberry.field(default=None, description="Where invoices go.")
    shipping_address: AddressInput | None = strawberry.field(default=None, description="Where orders ship.")


@strawberry.input(description="A buyer's spending limit; null fields mean no such limit.")
class SpendingLimitInput:
    order_limit: int | None = strawberry.field(default=None, description="Largest purchase without approval "
                                                                          "(minor units).")
    period_limit: int | None = strawberry.field(default=None, description="Most per period without approval.")
    period: SpendingPeriod | None = strawberry.field(default=None, description="The period of periodLimit.")


@strawberry.input(description="A customer to add to a company.")
class CompanyUserInput:
    customer_id: str = strawberry.field(description="The customer's id: their token subject.")
    email: str = strawberry.field(description="Their email.")
    role: CompanyRole = strawberry.field(description="Their company role.")
    limit: SpendingLimitInput | None = strawberry.field(default=None, description="Their spending limit.")


@strawberry.input(description="A company price: for exactly one variant, product or category, from a quantity on, "
                              "a fixed unit price or a percentage off list.")
class PriceListEntryInput:
    min_quantity: int = strawberry.field(default=1, description="From this many units on (≥ 1).")
    variant_id: strawberry.ID | None = strawberry.field(default=None, description="A variant (global id).")
    product_id: strawberry.ID | None = strawberry.field(default=None, description="A product (global id).")
    category_id: strawberry.ID | None = strawberry.field(default=None, description="A category (global id).")
    percent_off: Decimal | None = strawberry.field(default=None, description="Percent off list, (0, 100].")
    unit_amount: int | None = strawberry.field(default=None, description="Fixed unit price in minor units, > 0.")


@strawberry.input(description="A company's price list in one currency (replaces its entries if it exists).")
class PriceListInput:
    name: str = strawberry.field(description="Display name.")
    currency_code: str = strawberry.field(description="ISO 4217 code (the company's).")
    entries: list[PriceListEntryInput] = strawberry.field(description="Its prices.")


@strawberry.input(description="One approval level.")
class ApprovalLevelInput:
    mode: ApprovalMode = strawberry.field(description="ALL or ANY.")
    roles: list[CompanyRole] = strawberry.field(default_factory=list, description="Roles whose holders approve "
                                                                                  "(COMPANY_ADMIN, APPROVER).")
    user_ids: list[str] = strawberry.field(default_factory=list, description="Named approvers (customer ids).")


@strawberry.input(description="From minAmount on, purchases need these levels (replaces the rule at that amount).")
class ApprovalRuleInput:
    min_amount: int = strawberry.field(description="Threshold in minor units (≥ 0).")
    levels: list[ApprovalLevelInput] = strawberry.field(description="1–5 levels, in order.")


@strawberry.input(description="A line of a bulk quote request: a variant by global id or by SKU.")
class QuoteItemInput:
    variant_id: strawberry.ID | None = strawberry.field(default=None, description="The variant (global id), sold "
                                                                                 "in the store.")
    sku: str | None = strawberry.field(default=None, description="Or its SKU in the store.")
    quantity: int = strawberry.field(description="Units (> 0).")


@strawberry.input(description="Request a quote from a cart of yours, or from a list of variants and quantities.")
class RequestQuoteInput:
    cart_id: strawberry.ID | None = strawberry.field(default=None, description="Your open cart (global id).")
    lines: list[QuoteItemInput] = strawberry.field(default_factory=list, description="Or these lines (bulk).")
    message: str | None = strawberry.field(default=None, description="A first message to the seller.")
    valid_days: int | None = strawberry.field(default=None, description="Days the quote stays valid (1–365, "
                                                                        "default 30).")


@strawberry.input(description="A change to one line of a quote.")
class QuoteLineEditInput:
    variant_id: strawberry.ID = strawberry.field(description="The line's variant (global id).")
    quantity: int | None = strawberry.field(default=None, description="New quantity (> 0).")
    unit_price: int | None = strawberry.field(default=None, description="New unit price in minor units (> 0).")


@strawberry.input(description="A new version of a quote: line changes, a message, a new validity.")
class QuoteResponseInput:
    lines: list[QuoteLineEditInput] = strawberry.field(description="The lines changed.")
    message: str | None = strawberry.field(default=None, description="A message with the version.")
    valid_days: int | None = strawberry.field(default=None, description="Valid this many days from now (1–365).")


CompanyIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the company.")]
IdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the object.")]
CompanyArg = Annotated[CompanyInput, strawberry.argument(description="The company's details.")]
CompanyUserArg = Annotated[CompanyUserInput, strawberry.argument(description="Who to add.")]
LimitArg = Annotated[SpendingLimitInput, strawberry.argument(description="The new limit.")]
PriceListArg = Annotated[PriceListInput, strawberry.argument(description="The price list.")]
ApprovalRuleArg = Annotated[ApprovalRuleInput, strawberry.argument(description="The rule.")]
RequestQuoteArg = Annotated[RequestQuoteInput, strawberry.argument(description="What to quote.")]
ResponseArg = Annotated[QuoteResponseInput, strawberry.argument(description="The new version.")]
VersionArg = Annotated[int, strawberry.argument(description="The version accepted (must be the current one).")]
BodyArg = Annotated[str, strawberry.argument(description="The message (1–4000 characters).")]
LevelArg = Annotated[int, strawberry.argument(description="The level decided, as you saw it (0 is the first).")]
DecisionArg = Annotated[ApprovalDecision, strawberry.argument(description="Approve or reject.")]
CommentArg = Annotated[str | None, strawberry.argument(description="Why (kept in the audit trail).")]
QuoteStatusArg = Annotated[QuoteStatus | None, strawberry.argument(description="Only quotes with this status.")]
ApprovalStatusArg = Annotated[ApprovalStatus | None, strawberry.argument(description="Only requests with this "
                                                                                     "status.")]
InvoiceStatusArg = Annotated[InvoiceStatus | None, strawberry.argument(description="Only invoices with this "
                                                                                   "status.")]
PaymentMethodArg = Annotated[PaymentMethod, strawberry.argument(
    description="CARD (a PaymentIntent) or ON_ACCOUNT (the company's credit, invoiced by its payment terms).")]


@strawberry.input(description="An email to invite into a company.")
class CompanyInvitationInput:
    email: str = strawberry.field(description="The email to invite: the invitee accepts signed in with it, verified.")
    role: CompanyRole = strawberry.field(description="The company role it gives.")
    limit: SpendingLimitInput | None = strawberry.field(default=None, description="The spending limit it gives.")


InvitationArg = Annotated[CompanyInvitationInput, strawberry.argument(description="Who to invite, as what.")]
InvitationTokenArg = Annotated[str, strawberry.argument(description="The invitation's token, from its email.")]
StoreIdsArg = Annotated[list[strawberry.ID], strawberry.argument(
    description="The stores (global ids) the company buys in; an empty list: every store of the tenant.")]
