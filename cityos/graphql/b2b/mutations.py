"""B2B mutations. Thin: find the objects, ask Cerbos, call the domain (cityos/domain/b2b/service.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.auth.authz import ResourceRef
from cityos.domain.b2b import company_orders, invitations, rules, service
from cityos.domain.b2b.models import PaymentMethod
from cityos.domain.b2b.service import COMPANY, QUOTE
from cityos.domain.commerce import checkout
from cityos.domain.commerce import service as carts
from cityos.domain.marketplace.ledger import LedgerPolicy
from cityos.errors import NO_STORE_CONTEXT, BadUserInput, Forbidden, Unauthenticated
from cityos.graphql.b2b.arguments import (
    ApprovalRuleArg,
    BodyArg,
    CommentArg,
    CompanyArg,
    CompanyIdArg,
    CompanyInput,
    CompanyUserArg,
    DecisionArg,
    IdArg,
    InvitationArg,
    InvitationTokenArg,
    LevelArg,
    LimitArg,
    PaymentMethodArg,
    PriceListArg,
    RequestQuoteArg,
    ResponseArg,
    SpendingLimitInput,
    StoreIdsArg,
    VersionArg,
)
from cityos.graphql.b2b.types import (
    ApprovalRequest,
    Company,
    CompanyInvitation,
    CompanyUser,
    Invoice,
    PriceList,
    Quote,
)
from cityos.graphql.commerce.arguments import CartIdArg
from cityos.graphql.commerce.queries import cart_for
from cityos.graphql.commerce.types import CheckoutSession, Order
from cityos.graphql.core.context import Info, tenant_of
from cityos.graphql.core.nodes import node_by_global_id
from cityos.graphql.core.relay import from_global_id, to_global_id
from cityos.integrations.stripe.checkout import StripePayments


def _now() -> datetime:
    return datetime.now(UTC)


def _limit(value: SpendingLimitInput | None) -> rules.SpendingLimit:
    if value is None:
        return rules.SpendingLimit()
    return rules.SpendingLimit(value.order_limit, value.period_limit, value.period)


def _address(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return {key: str(item).strip() for key, item in value.__dict__.items() if item is not None}


def _values(data: CompanyInput, store_ids: list[uuid.UUID] | None = None) -> service.CompanyValues:
    return service.CompanyValues(legal_name=data.legal_name, tax_id=data.tax_id, currency_code=data.currency_code,
                                 credit_limit=data.credit_limit, payment_terms=data.payment_terms,
                                 status=data.status, store_ids=store_ids,
                                 billing_address=_address(data.billing_address),
                                 shipping_address=_address(data.shipping_address))


async def _stores(info: Info, global_ids: list[strawberry.ID]) -> list[uuid.UUID]:
    """The stores named (this tenant's, by RLS; each one the caller administers: Cerbos `update` on the store)."""
    stores = []
    for global_id in global_ids:
        store: Any = await node_by_global_id(info, global_id, "Store", "update")
        stores.append(store.pk)
    return stores


def _local(global_id: strawberry.ID | None, type_name: str) -> uuid.UUID | None:
    return from_global_id(global_id, type_name)[1] if global_id is not None else None


async def _row(info: Info, node: Any, table: Any) -> Any:
    return await info.context.loaders.by_key(table).load(node.pk)


def _author(info: Info, quote: Quote) -> tuple[str, uuid.UUID | None]:
    """Who answers a quote: the store (its admins) or a vendor (vendor roles: only its own lines)."""
    principal = info.context.principal
    if principal.roles & {"super_admin", "tenant_admin", "store_admin"}:
        return "store", None
    if principal.vendor_id:
        try:
            return "vendor", uuid.UUID(principal.vendor_id)
        except ValueError:
            raise Forbidden("not a vendor of this quote") from None
    raise Forbidden("only the store or a vendor on the quote responds")


def _edits(input: Any) -> list[rules.LineEdit]:
    return [rules.LineEdit(from_global_id(line.variant_id, "Variant")[1], line.quantity, line.unit_price)
            for line in input.lines]


@strawberry.type(description="What converting a quote made: its order and, on account, its invoice.")
class ConvertedQuote:
    quote: Quote = strawberry.field(description="The quote, now ordered.")
    order: Order = strawberry.field(description="The one order it became.")
    invoice: Invoice = strawberry.field(description="The invoice due by the company's payment terms.")


@strawberry.type(description="What placing a company cart's order did: held for approval (order and approval "
                             "request), placed on account (order and invoice), or a card checkout to confirm.")
class CompanyCheckout:
    order: Order | None = strawberry.field(description="The order: PENDING_APPROVAL, AWAITING_PAYMENT (on account) or "
                                                       "PENDING (approved, to pay by card); null before a card "
                                                       "payment of an order that needed no approval.")
    approval_request: ApprovalRequest | None = strawberry.field(description="The approval request it waits for.")
    invoice: Invoice | None = strawberry.field(description="On account: the invoice due by the payment terms.")
    checkout: CheckoutSession | None = strawberry.field(description="By card: the PaymentIntent to confirm with "
                                                                    "Stripe.js, then completeCheckout(cartId).")


def _placement(info: Info, method: PaymentMethod) -> company_orders.Placement:
    settings = info.context.settings
    return company_orders.Placement(method=method, now=_now(), ledger_policy=LedgerPolicy.of(settings),
                                    ship=bool(settings.FLEETBASE_URL), account=bool(settings.ERPNEXT_URL),
                                    hold_minutes=settings.CITYOS_APPROVAL_HOLD_HOURS * 60)


async def _card_checkout(info: Info, cart_id: uuid.UUID, held: Any) -> CheckoutSession:
    """The card checkout of a company cart: the cart as priced now, or an approved held order's own snapshot."""
    settings = info.context.settings
    cart = await info.context.db.run(lambda connection: carts.load_cart(connection, cart_id))
    options: dict[str, Any] = {}
    if held is not None:
        async def snapshot(connection: AsyncConnection, _cart: Any) -> dict[str, Any]:
            return await company_orders.held_order_snapshot(connection, held.id)

        options = {"snapshot_of": snapshot, "payable": frozenset({"awaiting_approval"})}
    started = await checkout.start_checkout(info.context.db, cart, StripePayments(info.context.services.stripe),
                                            cookie_secret=settings.COOKIE_SECRET,
                                            reservation_minutes=settings.CITYOS_RESERVATION_MINUTES, **options)
    return CheckoutSession(payment_intent_id=started.payment_intent_id, client_secret=started.client_secret,
                           amount=started.amount, currency_code=started.currency_code,
                           order_id=to_global_id("Order", started.order_id),
                           publishable_key=settings.STRIPE_PUBLISHABLE_KEY,
                           order_access_token=started.order_access_token)


@strawberry.type
class B2BMutation:
    @strawberry.mutation(description="A company buyer's checkout of their cart. Above their spending limits or an "
                                     "approval threshold the order waits in PENDING_APPROVAL (no payment; stock held "
                                     "CITYOS_APPROVAL_HOLD_HOURS) for the company's approval levels, as quotes do; "
                                     "otherwise, or once finally approved: ON_ACCOUNT takes the company's credit "
                                     "(CREDIT_LIMIT_EXCEEDED, CREDIT_HOLD when an invoice is overdue) and invoices "
                                     "it, CARD returns the PaymentIntent (call again after approval). Rejected: "
                                     "canceled, stock released.")
    async def place_company_order(self, info: Info, cart_id: CartIdArg,
                                  payment_method: PaymentMethodArg) -> CompanyCheckout:
        tenant_id = tenant_of(info)
        principal = info.context.principal
        if not principal.company_role or not principal.company_id:
            raise Forbidden("only company users place company orders")
        cart = await cart_for(info, cart_id, "checkout")
        if cart.row.company_id is None or str(cart.row.company_id) != principal.company_id:
            raise Forbidden("this cart is not your company's")
        await info.context.authz.require(ResourceRef.of("company", cart.row.company_id, tenant_id=tenant_id,
                                                        store_ids="", company_id=cart.row.company_id),
                                         "place_order")
        placement = _placement(info, payment_method)
        placed = await info.context.db.mutate(lambda connection: company_orders.place_company_order(
            connection, cart.row.id, principal.id, placement, info.context.events))
        session = await _card_checkout(info, cart.row.id, placed.order) if placed.pay_by_card else None
        return CompanyCheckout(
            order=Order.from_row(placed.order) if placed.order is not None else None,
            approval_request=ApprovalRequest.from_row(placed.approval_request) if placed.approval_request else None,
            invoice=Invoice.from_row(placed.invoice) if placed.invoice is not None else None, checkout=session)

    @strawberry.mutation(description="Create a company account (tenant and store admins).")
    async def create_company(self, info: Info, input: CompanyArg) -> Company:
        tenant_id = tenant_of(info)
        given = [*([input.store_id] if input.store_id is not None else []), *(input.store_ids or [])]
        store_ids = await _stores(info, given)
        await info.context.authz.require(ResourceRef.of("company", "new", tenant_id=tenant_id,
                                                        store_ids=",".join(sorted(map(str, store_ids))),
                                                        company_id=""), "create")
        values = _values(input, store_ids)
        return Company.from_row(await info.context.db.mutate(
            lambda connection: service.create_company(connection, tenant_id=tenant_id, values=values)))

    @strawberry.mutation(description="Restrict a company to a list of stores (an empty list: every store of the "
                                     "tenant). Its carts, quotes, checkout and company prices only work in those "
                                     "stores (BAD_USER_INPUT elsewhere). Tenant admins; store admins of a listed "
                                     "store add and remove only stores they administer, and keep one of them.")
    async def set_company_stores(self, info: Info, company_id: CompanyIdArg, store_ids: StoreIdsArg) -> Company:
        tenant_id = tenant_of(info)
        company: Company = await node_by_global_id(info, company_id, "Company", "update")
        stores = await _stores(info, store_ids)
        removed = {store for store in company.row.store_ids.split(",") if store} - {str(store) for store in stores}
        await _stores(info, [to_global_id("Store", store) for store in sorted(removed)])  # theirs to remove, too
        # The company as it will be must still be the caller's to manage (a store admin cannot hand it away).
        await info.context.authz.require(ResourceRef.of("company", company.pk, tenant_id=tenant_id,
                                                        store_ids=",".join(sorted(map(str, stores))),
                                                        company_id=company.pk), "update")
        row = await _row(info, company, COMPANY)
        return Company.from_row(await info.context.db.mutate(
            lambda connection: service.set_company_stores(connection, row, stores)))

    @strawberry.mutation(description="Change a company's details, credit limit, payment terms or status (tenant and "
                                     "store admins).")
    async def update_company(self, info: Info, id: IdArg, input: CompanyArg) -> Company:
        tenant_of(info)
        company: Company = await node_by_global_id(info, id, "Company", "update")
        row = await _row(info, company, COMPANY)
        values = _values(input)
        return Company.from_row(await info.context.db.mutate(
            lambda connection: service.update_company(connection, row, values)))

    @strawberry.mutation(description="Add a customer to a company with a role and a spending limit (company admins "
                                     "of the company, store admins).")
    async def invite_company_user(self, info: Info, company_id: CompanyIdArg, input: CompanyUserArg) -> CompanyUser:
        tenant_of(info)
        company: Company = await node_by_global_id(info, company_id, "Company", "manage_users")
        row = await _row(info, company, COMPANY)
        limit = _limit(input.limit)
        return CompanyUser.from_row(await info.context.db.mutate(lambda connection: service.add_company_user(
            connection, row, customer_id=input.customer_id, email=input.email, role=input.role, limit=limit)))

    @strawberry.mutation(description="Invite an email into the company with a role and a spending limit (company "
                                     "admins, tenant admins): a `b2b.invitation` outbox message carries the token "
                                     "to mail (stored only hashed), valid 7 days. Inviting the same email again "
                                     "sends a new token (the old one stops working). CONFLICT if the email is "
                                     "already a user.")
    async def invite_company_user_by_email(self, info: Info, company_id: CompanyIdArg,
                                           input: InvitationArg) -> CompanyInvitation:
        tenant_of(info)
        company: Company = await node_by_global_id(info, company_id, "Company", "manage_users")
        row = await _row(info, company, COMPANY)
        limit, inviter, now = _limit(input.limit), info.context.principal.id, _now()
        invited, _ = await info.context.db.mutate(lambda connection: invitations.invite(
            connection, row, email=input.email, role=input.role, limit=limit, invited_by=inviter, now=now))
        return CompanyInvitation.from_row(invited)

    @strawberry.mutation(description="Revoke a pending invitation: its token no longer works.")
    async def revoke_company_invitation(self, info: Info, id: IdArg) -> CompanyInvitation:
        tenant_of(info)
        invitation: CompanyInvitation = await node_by_global_id(info, id, "CompanyInvitation", "revoke")
        return CompanyInvitation.from_row(await info.context.db.mutate(
            lambda connection: invitations.revoke(connection, invitation.pk)))

    @strawberry.mutation(description="Accept an invitation: signed in with the invited email, verified "
                                     "(email_verified), you become a user of the company with its role and limit. "
                                     "A revoked, accepted or expired invitation is INVALID_STATE_TRANSITION; an "
                                     "unknown token NOT_FOUND; another email FORBIDDEN.")
    async def accept_company_invitation(self, info: Info, token: InvitationTokenArg) -> CompanyUser:
        tenant_id = tenant_of(info)
        principal = info.context.principal
        if not principal.authenticated:
            raise Unauthenticated("sign in with the invited email to accept")
        if len(token) > 200:
            raise BadUserInput("not an invitation token", field="token")
        now = _now()

        async def work(connection: AsyncConnection) -> Any:
            found = await invitations.find(connection, token)
            await info.context.authz.require(ResourceRef.of(
                "company_invitation", found.id, tenant_id=tenant_id, company_id=found.company_id,
                status=found.status, email=found.email), "accept")
            return await invitations.accept(connection, found, customer_id=principal.id, email=principal.email,
                                            now=now)

        return CompanyUser.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Remove a user from their company (a company keeps one admin).")
    async def remove_company_user(self, info: Info, id: IdArg) -> CompanyUser:
        tenant_of(info)
        user: CompanyUser = await node_by_global_id(info, id, "CompanyUser", "delete")
        return CompanyUser.from_row(await info.context.db.mutate(
            lambda connection: service.remove_company_user(connection, user.row)))

    @strawberry.mutation(description="Set a company user's spending limit (per order, per month or quarter).")
    async def set_spending_limit(self, info: Info, id: IdArg, input: LimitArg) -> CompanyUser:
        tenant_of(info)
        user: CompanyUser = await node_by_global_id(info, id, "CompanyUser", "set_limit")
        limit = _limit(input)
        return CompanyUser.from_row(await info.context.db.mutate(
            lambda connection: service.set_spending_limit(connection, user.row, limit)))

    @strawberry.mutation(description="Set the company's price list in a currency: fixed prices or percent off per "
                                     "variant, product or category, with volume tiers (store admins).")
    async def set_company_price_list(self, info: Info, company_id: CompanyIdArg, input: PriceListArg) -> PriceList:
        tenant_id = tenant_of(info)
        company: Company = await node_by_global_id(info, company_id, "Company")
        await info.context.authz.require(ResourceRef.of("price_list", "new", tenant_id=tenant_id,
                                                        company_id=company.pk), "update")
        if input.currency_code.strip().lower() != company.currency_code:
            raise BadUserInput(f"the company buys in {company.currency_code}", field="currencyCode")
        entries = [service.PriceEntry(
            entry.min_quantity, variant_id=_local(entry.variant_id, "Variant"),
            product_id=_local(entry.product_id, "Product"), category_id=_local(entry.category_id, "Category"),
            percent_off=entry.percent_off, unit_amount=entry.unit_amount) for entry in input.entries]
        row = await _row(info, company, COMPANY)
        existing = [item for item in await info.context.loaders.many_by_key(service.PRICE_LIST, "company_id").load(
            company.pk) if item.currency_code == company.currency_code]
        created = await info.context.db.mutate(lambda connection: service.set_price_list(
            connection, row, name=input.name, currency_code=input.currency_code, entries=entries,
            price_list=existing[0] if existing else None))
        info.context.loaders.many_by_key(service.PRICE_LIST_ENTRY, "price_list_id").clear(created.id)
        return PriceList.from_row(created)

    @strawberry.mutation(description="Set the approval rule at a threshold: purchases from minAmount on need its "
                                     "levels (company admins).")
    async def set_approval_rule(self, info: Info, company_id: CompanyIdArg, input: ApprovalRuleArg) -> Company:
        tenant_of(info)
        company: Company = await node_by_global_id(info, company_id, "Company", "manage_approvals")
        row = await _row(info, company, COMPANY)
        levels = [rules.Level(level.mode.value, tuple(role.value for role in level.roles), tuple(level.user_ids))
                  for level in input.levels]
        await info.context.db.mutate(lambda connection: service.set_approval_rule(connection, row, input.min_amount,
                                                                                  levels))
        info.context.loaders.many_by_key(service.APPROVAL_RULE, "company_id").clear(company.pk)
        return company

    @strawberry.mutation(description="Request a quote from your cart or a list of SKUs and quantities, priced with "
                                     "volume tiers and your company's list (company buyers and admins).")
    async def request_quote(self, info: Info, input: RequestQuoteArg) -> Quote:
        principal = info.context.principal
        tenant_id = tenant_of(info)
        if info.context.store is None:
            raise Unauthenticated(NO_STORE_CONTEXT)
        if not principal.company_role or not principal.company_id:
            raise Forbidden("only company users request quotes")
        company_id = uuid.UUID(principal.company_id)
        await info.context.authz.require(ResourceRef.of(
            "quote", "new", tenant_id=tenant_id, store_id=info.context.store.store_id, company_id=company_id,
            customer_id=principal.id, vendor_ids="", status="requested"), "create")
        cart = None
        if input.cart_id is not None:
            cart_node: Any = await node_by_global_id(info, input.cart_id, "Cart", "update")
            cart = cart_node.row
            if cart.customer_id != principal.id:
                raise Forbidden("quote your own cart")
        items: list[tuple[uuid.UUID | str, int]] = []
        for item in input.lines:
            if (item.variant_id is None) == (item.sku is None):
                raise BadUserInput("a line names its variant by variantId or by sku", field="lines")
            items.append((from_global_id(item.variant_id, "Variant")[1] if item.variant_id else str(item.sku),
                          item.quantity))
        store_id = info.context.store.store_id

        async def work(connection: AsyncConnection) -> Any:
            company = (await connection.execute(service.COMPANY.select().where(
                service.COMPANY.c.id == company_id))).one()
            buyer = await service.membership(connection, company_id, principal.id)
            if buyer is None:
                raise Forbidden("not a user of this company")
            return await service.request_quote(connection, service.QuoteRequest(
                company=company, buyer=buyer, store_id=store_id, now=_now(), cart=cart, items=items,
                message=input.message, valid_days=input.valid_days), info.context.events)

        return Quote.from_row(await info.context.db.mutate(work))

    @strawberry.mutation(description="Answer a quote with a new version: prices and quantities line by line (store "
                                     "admins; a vendor only its own products' lines).")
    async def respond_to_quote(self, info: Info, id: IdArg, input: ResponseArg) -> Quote:
        tenant_of(info)
        quote: Quote = await node_by_global_id(info, id, "Quote", "respond")
        kind, vendor_id = _author(info, quote)
        response = service.Response(author_id=info.context.principal.id, author_kind=kind, vendor_id=vendor_id,
                                    edits=_edits(input), now=_now(), message=input.message,
                                    valid_days=input.valid_days)
        return await _respond(info, quote, response)

    @strawberry.mutation(description="Counter the seller's version with one of your own (the buyer).")
    async def counter_quote(self, info: Info, id: IdArg, input: ResponseArg) -> Quote:
        tenant_of(info)
        quote: Quote = await node_by_global_id(info, id, "Quote", "counter")
        response = service.Response(author_id=info.context.principal.id, author_kind="buyer", vendor_id=None,
                                    edits=_edits(input), now=_now(), message=input.message)
        return await _respond(info, quote, response)

    @strawberry.mutation(description="Write a message on a quote (the buyer, the company's admins, the store, "
                                     "vendors on the quote).")
    async def add_quote_message(self, info: Info, id: IdArg, body: BodyArg) -> Quote:
        tenant_of(info)
        quote: Quote = await node_by_global_id(info, id, "Quote", "message")
        principal = info.context.principal
        kind, vendor_id = ("buyer", None) if principal.company_role else _author(info, quote)
        row = await _row(info, quote, QUOTE)
        await info.context.db.mutate(lambda connection: service.add_message(
            connection, row, author_id=principal.id, author_kind=kind, vendor_id=vendor_id, body=body))
        info.context.loaders.many_by_key(service.QUOTE_MESSAGE, "quote_id").clear(quote.pk)
        return quote

    @strawberry.mutation(description="Accept the current version: above your limits or an approval threshold it "
                                     "waits for approval, otherwise it is ready to order. An old version, an "
                                     "expired or a rejected quote is INVALID_STATE_TRANSITION.")
    async def accept_quote(self, info: Info, id: IdArg, version: VersionArg) -> Quote:
        tenant_of(info)
        quote: Quote = await node_by_global_id(info, id, "Quote", "accept")
        buyer = info.context.principal.id
        return Quote.from_row(await info.context.db.mutate(lambda connection: service.accept(
            connection, quote.pk, version=version, buyer_id=buyer, now=_now(), events=info.context.events)))

    @strawberry.mutation(description="Approve or reject an approval request at the level you saw; a level moves "
                                     "forward once, even when two approvers decide at the same time.")
    async def decide_approval(self, info: Info, id: IdArg, level: LevelArg, decision: DecisionArg,
                              comment: CommentArg = None) -> ApprovalRequest:
        tenant_of(info)
        request: ApprovalRequest = await node_by_global_id(info, id, "ApprovalRequest", "approve")
        principal = info.context.principal
        step = service.Decision(approver_id=principal.id, approver_role=principal.company_role, level=level,
                                decision=decision, comment=comment)
        placement = _placement(info, PaymentMethod.ON_ACCOUNT)
        events = info.context.events

        async def order_decided(connection: AsyncConnection, decided: Any) -> None:
            await company_orders.approval_decided(connection, decided, placement, events)

        return ApprovalRequest.from_row(await info.context.db.mutate(
            lambda connection: service.decide(connection, request.pk, step, events, order_decided)))

    @strawberry.mutation(description="Turn an approved quote into its one order, paid on account: the total is "
                                     "taken from the company's credit (CREDIT_LIMIT_EXCEEDED with the available "
                                     "amount when it does not fit) and an invoice due by the payment terms is "
                                     "recorded. A second conversion is CONFLICT.")
    async def convert_quote_to_order(self, info: Info, id: IdArg) -> ConvertedQuote:
        tenant_of(info)
        quote: Quote = await node_by_global_id(info, id, "Quote", "convert")
        principal, settings = info.context.principal, info.context.settings
        converted = await info.context.db.mutate(lambda connection: service.convert_on_account(
            connection, quote.pk, buyer_id=principal.id, now=_now(), ledger_policy=LedgerPolicy.of(settings),
            ship=bool(settings.FLEETBASE_URL), account=bool(settings.ERPNEXT_URL), events=info.context.events))
        row = await info.context.db.run(lambda connection: service.load_quote(connection, quote.pk))
        return ConvertedQuote(quote=Quote.from_row(row), order=Order.from_row(converted.order),
                              invoice=Invoice.from_row(converted.invoice))

    @strawberry.mutation(description="Pay an approved quote by card instead: its PaymentIntent for the accepted "
                                     "version's total (the checkout of the quote's cart, priced as quoted); confirm "
                                     "it with Stripe.js, then completeCheckout(cartId) (or the webhook) makes the "
                                     "one order and marks the quote ordered.")
    async def start_quote_checkout(self, info: Info, id: IdArg) -> CheckoutSession:
        tenant_of(info)
        quote: Quote = await node_by_global_id(info, id, "Quote", "convert")
        principal, settings = info.context.principal, info.context.settings
        now = _now()
        await info.context.db.run(lambda connection: service.orderable_quote(connection, quote.pk, principal.id, now,
                                                                             lock=False))
        cart = await info.context.db.run(lambda connection: carts.load_cart(connection, quote.row.cart_id))

        async def snapshot(connection: AsyncConnection, _cart: Any) -> dict[str, Any]:
            return await service.quote_snapshot(connection, quote.pk, principal.id, now)

        started = await checkout.start_checkout(info.context.db, cart, StripePayments(info.context.services.stripe),
                                                cookie_secret=settings.COOKIE_SECRET,
                                                reservation_minutes=settings.CITYOS_RESERVATION_MINUTES,
                                                snapshot_of=snapshot)
        return CheckoutSession(payment_intent_id=started.payment_intent_id, client_secret=started.client_secret,
                               amount=started.amount, currency_code=started.currency_code,
                               order_id=to_global_id("Order", started.order_id),
                               publishable_key=settings.STRIPE_PUBLISHABLE_KEY,
                               order_access_token=started.order_access_token)

    @strawberry.mutation(description="Record an invoice's payment: its amount is available credit again (tenant and "
                                     "store admins).")
    async def pay_invoice(self, info: Info, id: IdArg) -> Invoice:
        tenant_of(info)
        invoice: Invoice = await node_by_global_id(info, id, "Invoice", "pay")
        account = bool(info.context.settings.ERPNEXT_URL)
        policy = LedgerPolicy.of(info.context.settings)
        return Invoice.from_row(await info.context.db.mutate(lambda connection: service.pay_invoice(
            connection, invoice.row.id, _now(), policy, account, info.context.events)))


async def _respond(info: Info, quote: Quote, response: service.Response) -> Quote:
    updated = await info.context.db.mutate(
        lambda connection: service.respond(connection, quote.pk, response, info.context.events))
    info.context.loaders.many_by_key(service.QUOTE_VERSION, "quote_id").clear(quote.pk)
    return Quote.from_row(updated)

