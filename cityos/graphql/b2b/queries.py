"""B2B reads: companies, quotes, approval requests and invoices the caller may read (lists filtered in SQL by the
Cerbos plan): staff their tenant's or stores', company admins their company's, buyers their own, vendors the
quotes with their products."""

from __future__ import annotations

import strawberry

from cityos.domain.b2b import queries as b2b
from cityos.domain.b2b.service import APPROVAL_REQUEST, COMPANY, INVOICE, QUOTE
from cityos.graphql.b2b.arguments import ApprovalStatusArg, InvoiceStatusArg, QuoteStatusArg
from cityos.graphql.b2b.types import (
    APPROVAL_DECLARATION,
    COMPANY_DECLARATION,
    INVOICE_DECLARATION,
    QUOTE_DECLARATION,
    ApprovalRequest,
    Company,
    Invoice,
    Quote,
)
from cityos.graphql.core.context import Info
from cityos.graphql.core.loaders import in_tenant
from cityos.graphql.core.relay import After, Before, Connection, First, Last, PageRequest, page_query, wants_total


@strawberry.type
class B2BQuery:
    @strawberry.field(description="Companies the caller may read, newest first: staff their tenant's (or stores'), "
                                  "company users their own.")
    async def companies(self, info: Info, first: First = None, after: After = None, last: Last = None,
                        before: Before = None) -> Connection[Company]:
        allowed = await info.context.authz.sql_filter("company", "read", COMPANY,
                                                      COMPANY_DECLARATION.plan_attributes)
        listing = b2b.companies(allowed, *in_tenant(info.context.db, COMPANY))
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after, last, before),
                                Company.from_row, listing.order, count=wants_total(info))

    @strawberry.field(description="Quotes the caller may read, newest first: a buyer's own, a company admin's "
                                  "company's, a store's, a vendor's (those with its products).")
    async def quotes(self, info: Info, status: QuoteStatusArg = None, first: First = None, after: After = None,
                     last: Last = None, before: Before = None) -> Connection[Quote]:
        allowed = await info.context.authz.sql_filter("quote", "read", QUOTE, QUOTE_DECLARATION.plan_attributes)
        listing = b2b.quotes(allowed, *in_tenant(info.context.db, QUOTE),
                             status=status.value if status is not None else None)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after, last, before),
                                Quote.from_row, listing.order, count=wants_total(info))

    @strawberry.field(description="Approval requests the caller may read, newest first: the company's admins and "
                                  "approvers all of the company's, a buyer their own.")
    async def approval_requests(self, info: Info, status: ApprovalStatusArg = None, first: First = None,
                                after: After = None, last: Last = None,
                                before: Before = None) -> Connection[ApprovalRequest]:
        allowed = await info.context.authz.sql_filter("approval", "read", APPROVAL_REQUEST,
                                                      APPROVAL_DECLARATION.plan_attributes)
        listing = b2b.approval_requests(allowed, *in_tenant(info.context.db, APPROVAL_REQUEST),
                                        status=status.value if status is not None else None)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after, last, before),
                                ApprovalRequest.from_row, listing.order, count=wants_total(info))

    @strawberry.field(description="Invoices the caller may read, newest first: staff their tenant's, a company "
                                  "admin their company's, a buyer their own.")
    async def invoices(self, info: Info, status: InvoiceStatusArg = None, first: First = None, after: After = None,
                       last: Last = None, before: Before = None) -> Connection[Invoice]:
        allowed = await info.context.authz.sql_filter("invoice", "read", INVOICE, INVOICE_DECLARATION.plan_attributes)
        listing = b2b.invoices(allowed, *in_tenant(info.context.db, INVOICE),
                               status=status.value if status is not None else None)
        return await page_query(info.context.db.execute, listing.statement, PageRequest(first, after, last, before),
                                Invoice.from_row, listing.order, count=wants_total(info))
