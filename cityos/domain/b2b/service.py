"""B2B use cases over one tenant-scoped connection: companies and their users, price lists, quotes and their
versions, approvals, quote → order on account, invoices. Every change that must happen once takes a row lock or
a conditional update: a quote is converted once (its row lock, and orders are unique per cart), an approval level
moves forward once (the request's row lock and the level the approver saw), credit is taken atomically
(`credit_used + amount <= credit_limit` in the UPDATE itself, and a CHECK)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos.config import Settings
from cityos.db.engines import tenant_transaction
from cityos.domain.b2b import rules
from cityos.domain.b2b.models import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalRule,
    ApprovalStatus,
    ApprovalStep,
    Company,
    CompanyRole,
    CompanyStatus,
    CompanyStore,
    CompanyUser,
    CompanyUserStatus,
    Invoice,
    InvoiceStatus,
    PaymentTerms,
    Quote,
    QuoteLine,
    QuoteMessage,
    QuoteStatus,
    QuoteVersion,
    SpendingPeriod,
)
from cityos.domain.base import table_of
from cityos.domain.catalog import rules as pricing
from cityos.domain.catalog.models import PriceList, PriceListEntry
from cityos.domain.commerce import rules as commerce_rules
from cityos.domain.commerce import service as carts
from cityos.domain.kernel import unique_or_conflict, validate_email
from cityos.domain.marketplace.ledger import LedgerPolicy, release_sales
from cityos.domain.orders.models import OrderFulfillment, OrderStatus
from cityos.domain.orders.service import (
    ACCOUNTING_TOPIC,
    ORDER,
    NewOrder,
    Settlement,
    change_order_status,
    complete_paid_order,
    place_order,
)
from cityos.domain.platform.outbox import enqueue
from cityos.errors import (
    BadUserInput,
    Conflict,
    CreditHold,
    CreditLimitExceeded,
    Forbidden,
    InvalidStateTransition,
    NotFound,
)
from cityos.realtime.events import PendingEvents, b2b_event

COMPANY = table_of(Company)
COMPANY_USER = table_of(CompanyUser)
COMPANY_STORE = table_of(CompanyStore)
QUOTE = table_of(Quote)
QUOTE_LINE = table_of(QuoteLine)
QUOTE_VERSION = table_of(QuoteVersion)
QUOTE_MESSAGE = table_of(QuoteMessage)
APPROVAL_RULE = table_of(ApprovalRule)
APPROVAL_REQUEST = table_of(ApprovalRequest)
APPROVAL_STEP = table_of(ApprovalStep)
INVOICE = table_of(Invoice)
PRICE_LIST = table_of(PriceList)
PRICE_LIST_ENTRY = table_of(PriceListEntry)
MAX_MESSAGE = 4000
QUOTE_SHIPPING = "b2b-quote"  # the shipping option code of an order from a quote (shipping is in the quote)


def _name(value: str, field: str, limit: int = 255) -> str:
    value = value.strip()
    if not value or len(value) > limit:
        raise BadUserInput(f"{field} must be 1-{limit} characters", field=field)
    return value


# --- companies --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CompanyValues:
    legal_name: str | None = None
    tax_id: str | None = None
    billing_address: dict[str, Any] | None = None
    shipping_address: dict[str, Any] | None = None
    currency_code: str | None = None
    credit_limit: int | None = None
    payment_terms: PaymentTerms | None = None
    status: CompanyStatus | None = None
    store_ids: Sequence[uuid.UUID] | None = None  # restricted to these stores (empty: every store)


def _company_columns(values: CompanyValues) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    if values.legal_name is not None:
        columns["legal_name"] = _name(values.legal_name, "legalName")
    if values.tax_id is not None:
        columns["tax_id"] = _name(values.tax_id, "taxId", 64)
    if values.billing_address is not None:
        columns["billing_address"] = values.billing_address
    if values.shipping_address is not None:
        columns["shipping_address"] = values.shipping_address
    if values.currency_code is not None:
        columns["currency_code"] = values.currency_code.strip().lower()
    if values.credit_limit is not None:
        if values.credit_limit < 0:
            raise BadUserInput("creditLimit must not be negative", field="creditLimit")
        columns["credit_limit"] = values.credit_limit
    if values.payment_terms is not None:
        columns["payment_terms"] = values.payment_terms.value
    if values.status is not None:
        columns["status"] = values.status.value
    return columns


async def create_company(connection: AsyncConnection, *, tenant_id: uuid.UUID, values: CompanyValues) -> Row[Any]:
    if values.legal_name is None or values.currency_code is None:
        raise BadUserInput("a company needs a legal name and a currency", field="legalName")
    columns = _company_columns(values)
    known = (await connection.execute(select(func.count()).select_from(carts.REGION).where(
        carts.REGION.c.currency_code == columns["currency_code"]))).scalar_one()
    if not known:
        raise BadUserInput(f"no region sells in {values.currency_code!r}", field="currencyCode")
    company = (await connection.execute(insert(COMPANY).values(
        tenant_id=tenant_id, id=uuid.uuid4(), **columns).returning(*COMPANY.c))).one()
    return await set_company_stores(connection, company, values.store_ids or ())


async def set_company_stores(connection: AsyncConnection, company: Row[Any],
                             store_ids: Sequence[uuid.UUID]) -> Row[Any]:
    """Restrict the company to these stores (none: every store of the tenant): its company_store rows, and the
    sorted list the policies read (store admins of a listed store manage it)."""
    stores = sorted(set(store_ids), key=str)
    if len(stores) > rules.MAX_COMPANY_STORES:
        raise BadUserInput(f"a company is restricted to at most {rules.MAX_COMPANY_STORES} stores", field="storeIds")
    await connection.execute(delete(COMPANY_STORE).where(COMPANY_STORE.c.company_id == company.id,
                                                         COMPANY_STORE.c.store_id.not_in(stores)))
    if stores:
        await connection.execute(pg_insert(COMPANY_STORE).values([
            {"tenant_id": company.tenant_id, "id": uuid.uuid4(), "company_id": company.id, "store_id": store}
            for store in stores]).on_conflict_do_nothing())
    return (await connection.execute(update(COMPANY).where(COMPANY.c.id == company.id).values(
        store_ids=",".join(str(store) for store in stores), updated_at=func.now()).returning(*COMPANY.c))).one()


def check_store(company: Row[Any], store_id: uuid.UUID) -> None:
    """A company restricted to a list of stores buys (carts, quotes, checkout, its prices) only in those."""
    if not rules.buys_in(company.store_ids, store_id):
        raise BadUserInput("this company does not buy in this store", field="storeId")


async def update_company(connection: AsyncConnection, company: Row[Any], values: CompanyValues) -> Row[Any]:
    columns = _company_columns(values)
    columns.pop("currency_code", None)  # the currency of a company's quotes and credit does not change
    if "credit_limit" in columns:
        locked = (await connection.execute(select(COMPANY.c.credit_used).where(COMPANY.c.id == company.id)
                                           .with_for_update())).scalar_one()
        if columns["credit_limit"] < locked:
            raise BadUserInput(f"{locked} of credit is in use: the limit cannot go below it", field="creditLimit")
    return (await connection.execute(update(COMPANY).where(COMPANY.c.id == company.id).values(
        **columns, updated_at=func.now()).returning(*COMPANY.c))).one()


async def membership(connection: AsyncConnection, company_id: uuid.UUID, customer_id: str) -> Row[Any] | None:
    return (await connection.execute(select(COMPANY_USER).where(
        COMPANY_USER.c.company_id == company_id, COMPANY_USER.c.customer_id == customer_id,
        COMPANY_USER.c.status == CompanyUserStatus.ACTIVE.value))).first()


async def add_company_user(connection: AsyncConnection, company: Row[Any], *, customer_id: str, email: str,
                           role: CompanyRole, limit: rules.SpendingLimit) -> Row[Any]:
    """Invite a customer (their token subject) into the company, or bring a removed one back."""
    customer_id = _name(customer_id, "customerId", 200)
    values = {"email": validate_email(email), "role": role.value, "status": CompanyUserStatus.ACTIVE.value,
              "order_limit": limit.order_limit, "period_limit": limit.period_limit,
              "limit_period": limit.period.value if limit.period else None}
    existing = (await connection.execute(select(COMPANY_USER).where(
        COMPANY_USER.c.company_id == company.id, COMPANY_USER.c.customer_id == customer_id))).first()
    if existing is not None:
        if existing.status == CompanyUserStatus.ACTIVE:
            raise Conflict("this customer is already a user of the company", field="customerId")
        return (await connection.execute(update(COMPANY_USER).where(COMPANY_USER.c.id == existing.id).values(
            **values, updated_at=func.now()).returning(*COMPANY_USER.c))).one()

    async def work() -> Row[Any]:
        return (await connection.execute(insert(COMPANY_USER).values(
            tenant_id=company.tenant_id, id=uuid.uuid4(), company_id=company.id, customer_id=customer_id,
            **values).returning(*COMPANY_USER.c))).one()

    return await unique_or_conflict(connection, work, "this customer is already a user of the company",
                                    "customerId")


async def remove_company_user(connection: AsyncConnection, user: Row[Any]) -> Row[Any]:
    if user.status == CompanyUserStatus.REMOVED:
        raise InvalidStateTransition("this user was already removed", **{"from": "removed", "to": "removed"})
    if user.role == CompanyRole.COMPANY_ADMIN:
        admins = (await connection.execute(select(func.count()).where(
            COMPANY_USER.c.company_id == user.company_id, COMPANY_USER.c.role == CompanyRole.COMPANY_ADMIN.value,
            COMPANY_USER.c.status == CompanyUserStatus.ACTIVE.value))).scalar_one()
        if admins <= 1:
            raise BadUserInput("a company keeps at least one admin", field="id")
    return (await connection.execute(update(COMPANY_USER).where(COMPANY_USER.c.id == user.id).values(
        status=CompanyUserStatus.REMOVED.value, updated_at=func.now()).returning(*COMPANY_USER.c))).one()


async def set_spending_limit(connection: AsyncConnection, user: Row[Any], limit: rules.SpendingLimit) -> Row[Any]:
    return (await connection.execute(update(COMPANY_USER).where(COMPANY_USER.c.id == user.id).values(
        order_limit=limit.order_limit, period_limit=limit.period_limit,
        limit_period=limit.period.value if limit.period else None, updated_at=func.now())
        .returning(*COMPANY_USER.c))).one()


def limit_of(user: Row[Any]) -> rules.SpendingLimit:
    return rules.SpendingLimit(user.order_limit, user.period_limit,
                               SpendingPeriod(user.limit_period) if user.limit_period else None)


COMMITTED = [QuoteStatus.PENDING_APPROVAL.value, QuoteStatus.APPROVED.value, QuoteStatus.ORDERED.value]


async def spending(connection: AsyncConnection, company_id: uuid.UUID, start: datetime, end: datetime,
                   buyer_id: str | None = None) -> dict[str, int]:
    """What each buyer (or one) committed in [start, end): the goods totals of their accepted quotes (when
    accepted) and of their company cart orders not from a quote (when ordered; canceled and refunded ones not)."""
    quoted = select(QUOTE.c.buyer_id.label("buyer"), func.sum(QUOTE.c.accepted_total).label("spent")).where(
        QUOTE.c.company_id == company_id, QUOTE.c.accepted_at >= start, QUOTE.c.accepted_at < end,
        QUOTE.c.status.in_(COMMITTED))
    ordered = select(ORDER.c.customer_id.label("buyer"),
                     func.sum(ORDER.c.subtotal - ORDER.c.discount_total).label("spent")).where(
        ORDER.c.company_id == company_id, ORDER.c.created_at >= start, ORDER.c.created_at < end,
        ORDER.c.status.not_in(["canceled", "refunded"]),
        ORDER.c.cart_id.not_in(select(QUOTE.c.cart_id).where(QUOTE.c.company_id == company_id)))
    if buyer_id is not None:
        quoted, ordered = quoted.where(QUOTE.c.buyer_id == buyer_id), ordered.where(ORDER.c.customer_id == buyer_id)
    totals: dict[str, int] = {}
    for statement, key in ((quoted, QUOTE.c.buyer_id), (ordered, ORDER.c.customer_id)):
        for buyer, amount in (await connection.execute(statement.group_by(key))).all():
            totals[str(buyer)] = totals.get(str(buyer), 0) + int(amount or 0)
    return totals


async def approval_needed(connection: AsyncConnection, company_id: uuid.UUID, buyer: Row[Any], amount: int,
                          now: datetime) -> tuple[list[str], list[rules.Level]]:
    """Why a buyer's purchase of `amount` (goods total) needs approval, and the levels it needs (none: it does not):
    their per-order and period limits (what they committed this period counts), and the company's rules."""
    limit = limit_of(buyer)
    committed = 0
    if limit.period is not None:
        start, end = rules.period_bounds(now, limit.period)
        committed = (await spending(connection, company_id, start, end, buyer.customer_id)).get(buyer.customer_id, 0)
    reasons = rules.over_limit(limit, amount, committed)
    rule_rows = (await connection.execute(select(APPROVAL_RULE).where(APPROVAL_RULE.c.company_id == company_id))).all()
    levels = rules.required_levels(amount, [(row.min_amount, [rules.Level.of(level) for level in row.levels])
                                            for row in rule_rows], reasons)
    if any(row.min_amount <= amount for row in rule_rows):
        reasons = [*reasons, "threshold"]
    return reasons, levels


async def check_cart_purchase(connection: AsyncConnection, cart: Row[Any], now: datetime) -> None:
    """A company cart is checked out directly (startCheckout) only within its buyer's limits and below every
    approval threshold; otherwise INVALID_STATE_TRANSITION (`reasons`): purchases needing approval are placed with
    placeCompanyOrder (the order then waits in pending_approval) or go through a quote."""
    if cart.company_id is None or cart.customer_id is None:
        return
    if cart.status == "awaiting_approval":
        raise InvalidStateTransition("this cart's order waits for approval (pay it with placeCompanyOrder once "
                                     "approved)", **{"from": "awaiting_approval", "to": "checkout"})
    buyer = await membership(connection, cart.company_id, cart.customer_id)
    if buyer is None:
        raise Forbidden("the cart's buyer is no longer a user of its company")
    check_store((await connection.execute(select(COMPANY).where(COMPANY.c.id == cart.company_id))).one(),
                cart.store_id)
    totals = (await carts.priced_cart(connection, cart)).totals
    reasons, levels = await approval_needed(connection, cart.company_id, buyer, totals.subtotal - totals.discount_total,
                                            now)
    if levels:
        raise InvalidStateTransition("this purchase needs the company's approval: place it with placeCompanyOrder "
                                     "(it then waits for the approvers) or request a quote", reasons=reasons,
                                     **{"from": "open", "to": "pending_approval"})


# --- price lists ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PriceEntry:
    min_quantity: int
    variant_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = None
    category_id: uuid.UUID | None = None
    percent_off: Decimal | None = None
    unit_amount: int | None = None

    def __post_init__(self) -> None:
        if sum(target is not None for target in (self.variant_id, self.product_id, self.category_id)) != 1:
            raise BadUserInput("an entry prices exactly one variant, product or category", field="entries")
        if self.unit_amount is not None and self.unit_amount <= 0:
            raise BadUserInput("unitAmount must be positive", field="unitAmount", value=self.unit_amount)
        pricing.Tier(self.min_quantity, percent_off=self.percent_off, unit_amount=self.unit_amount)  # validates


async def set_price_list(connection: AsyncConnection, company: Row[Any], *, name: str, currency_code: str,
                         entries: Sequence[PriceEntry], price_list: Row[Any] | None = None) -> Row[Any]:
    """Create the company's price list (or replace an existing list's entries)."""
    name = _name(name, "name")
    if len({(e.variant_id, e.product_id, e.category_id, e.min_quantity) for e in entries}) != len(entries):
        raise BadUserInput("two entries price the same target from the same quantity", field="entries")
    if price_list is None:
        price_list = (await connection.execute(insert(PRICE_LIST).values(
            tenant_id=company.tenant_id, id=uuid.uuid4(), company_id=company.id, name=name,
            currency_code=currency_code.strip().lower()).returning(*PRICE_LIST.c))).one()
    else:
        price_list = (await connection.execute(update(PRICE_LIST).where(PRICE_LIST.c.id == price_list.id).values(
            name=name, updated_at=func.now()).returning(*PRICE_LIST.c))).one()
        await connection.execute(delete(PRICE_LIST_ENTRY).where(PRICE_LIST_ENTRY.c.price_list_id == price_list.id))
    if entries:
        await connection.execute(insert(PRICE_LIST_ENTRY), [{
            "tenant_id": company.tenant_id, "id": uuid.uuid4(), "price_list_id": price_list.id,
            "variant_id": entry.variant_id, "product_id": entry.product_id, "category_id": entry.category_id,
            "min_quantity": entry.min_quantity, "percent_off": entry.percent_off, "unit_amount": entry.unit_amount}
            for entry in entries])
    return price_list


# --- quotes -----------------------------------------------------------------------------------------------------

def _line_json(row: Any) -> dict[str, Any]:
    return {"variant_id": str(row.variant_id), "product_id": str(row.product_id),
            "vendor_id": str(row.vendor_id) if row.vendor_id else None, "sku": row.sku, "title": row.title,
            "quantity": row.quantity, "list_unit_price": row.list_unit_price, "unit_price": row.unit_price}


async def _lines(connection: AsyncConnection, quote_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (await connection.execute(select(QUOTE_LINE).where(QUOTE_LINE.c.quote_id == quote_id)
                                     .order_by(QUOTE_LINE.c.sku, QUOTE_LINE.c.id))).all()
    return [_line_json(row) for row in rows]


async def load_quote(connection: AsyncConnection, quote_id: uuid.UUID) -> Row[Any]:
    return (await connection.execute(select(QUOTE).where(QUOTE.c.id == quote_id))).one()


async def lock_quote(connection: AsyncConnection, quote_id: uuid.UUID) -> Row[Any]:
    quote = (await connection.execute(select(QUOTE).where(QUOTE.c.id == quote_id).with_for_update())).first()
    if quote is None:
        raise NotFound("no Quote with that id")
    return quote


@dataclass(frozen=True)
class QuoteRequest:
    company: Row[Any]
    buyer: Row[Any]  # the buyer's company_user row
    store_id: uuid.UUID
    now: datetime
    cart: Row[Any] | None = None  # from a cart …
    items: Sequence[tuple[uuid.UUID | str, int]] = ()  # … or from (variant id or SKU, quantity) pairs (bulk)
    message: str | None = None
    valid_days: int | None = None


async def request_quote(connection: AsyncConnection, request: QuoteRequest,
                        events: PendingEvents | None = None) -> Row[Any]:
    """A quote priced as the buyer's cart would be (list, volume tiers, the company's list): version 1."""
    company, buyer = request.company, request.buyer
    if company.status != CompanyStatus.ACTIVE:
        raise InvalidStateTransition("the company is suspended", **{"from": company.status, "to": "requested"})
    check_store(company, request.store_id)
    cart = request.cart
    if cart is None:
        if not request.items:
            raise BadUserInput("a quote needs a cart or at least one line", field="lines")
        if len(request.items) > rules.MAX_QUOTE_LINES:
            raise BadUserInput(f"a quote has at most {rules.MAX_QUOTE_LINES} lines", field="lines")
        for _, quantity in request.items:
            if quantity <= 0:
                raise BadUserInput("a quantity must be positive", field="quantity", value=quantity)
        variants = await _variants_of(connection, request.store_id, request.items)
        cart = await carts.create_cart(connection, tenant_id=company.tenant_id, store_id=request.store_id,
                                       currency_code=company.currency_code, customer_id=buyer.customer_id,
                                       email=buyer.email, company_id=company.id)
        for variant_id, (_, quantity) in zip(variants, request.items, strict=True):
            await carts.set_line_quantity(connection, cart, variant_id, quantity, add=True)
    else:
        if cart.status != "open" or cart.payment_intent_id:
            raise BadUserInput("this cart is in checkout or checked out", field="cartId")
        if cart.currency_code != company.currency_code:
            raise BadUserInput(f"the company buys in {company.currency_code.upper()}", field="cartId")
        await connection.execute(update(carts.CART).where(carts.CART.c.id == cart.id).values(
            company_id=company.id, email=cart.email or buyer.email, updated_at=func.now()))
        cart = await carts.load_cart(connection, cart.id)
    priced = await carts.priced_cart(connection, cart)
    if not priced.lines:
        raise BadUserInput("the cart is empty", field="cartId")
    quote_id = uuid.uuid4()
    vendors = sorted({str(line.vendor_id) for _, line in priced.lines if line.vendor_id})
    valid_until = rules.validity(request.now, request.valid_days)

    async def create() -> Row[Any]:
        return (await connection.execute(insert(QUOTE).values(
            tenant_id=company.tenant_id, id=quote_id, company_id=company.id, store_id=cart.store_id,
            cart_id=cart.id, buyer_id=buyer.customer_id, vendor_ids=",".join(vendors),
            currency_code=cart.currency_code, status=QuoteStatus.REQUESTED.value, version=1,
            valid_until=valid_until).returning(*QUOTE.c))).one()

    quote = await unique_or_conflict(connection, create, "a quote was already requested from this cart", "cartId")
    await connection.execute(insert(QUOTE_LINE), [{
        "tenant_id": company.tenant_id, "id": uuid.uuid4(), "quote_id": quote_id, "variant_id": line.variant_id,
        "product_id": row.product_id, "vendor_id": line.vendor_id, "sku": row.sku,
        "title": f"{row.product_title} — {row.variant_title}", "quantity": line.quantity,
        "list_unit_price": line.list_unit_price, "unit_price": line.unit_price} for row, line in priced.lines])
    lines = await _lines(connection, quote_id)
    await _version(connection, quote, 1, buyer.customer_id, "buyer", None, lines, [], valid_until)
    if request.message:
        await add_message(connection, quote, author_id=buyer.customer_id, author_kind="buyer", vendor_id=None,
                          body=request.message)
    _publish(events, quote, "quote.requested", QuoteStatus.REQUESTED)
    return quote


async def _variants_of(connection: AsyncConnection, store_id: uuid.UUID,
                       items: Sequence[tuple[uuid.UUID | str, int]]) -> list[uuid.UUID]:
    """The variant of each requested line: given by id, or by its SKU among the store's products (an unknown SKU
    is BAD_USER_INPUT naming it; whether the variant is sold in the store is the cart's check)."""
    skus = sorted({item for item, _ in items if isinstance(item, str)})
    found: dict[str, uuid.UUID] = {}
    if skus:
        found = {row.sku: row.id for row in (await connection.execute(
            select(carts.VARIANT.c.sku, carts.VARIANT.c.id).join(carts.PRODUCT, (
                carts.PRODUCT.c.tenant_id == carts.VARIANT.c.tenant_id) & (
                carts.PRODUCT.c.id == carts.VARIANT.c.product_id))
            .where(carts.VARIANT.c.sku.in_(skus), carts.PRODUCT.c.store_id == store_id))).all()}
    missing = [sku for sku in skus if sku not in found]
    if missing:
        raise BadUserInput(f"no variant with SKU {missing[0]!r} in this store", field="lines", sku=missing[0])
    return [found[item] if isinstance(item, str) else item for item, _ in items]


async def _version(connection: AsyncConnection, quote: Row[Any], number: int, author_id: str, author_kind: str,
                   vendor_id: uuid.UUID | None, lines: list[dict[str, Any]], changes: list[dict[str, Any]],
                   valid_until: datetime) -> None:
    await connection.execute(insert(QUOTE_VERSION).values(
        tenant_id=quote.tenant_id, id=uuid.uuid4(), quote_id=quote.id, number=number, author_id=author_id,
        author_kind=author_kind, vendor_id=vendor_id, lines=lines, changes=changes,
        total=rules.lines_total(lines), valid_until=valid_until))


@dataclass(frozen=True)
class Response:
    author_id: str
    author_kind: str  # store | vendor | buyer
    vendor_id: uuid.UUID | None
    edits: Sequence[rules.LineEdit]
    now: datetime
    message: str | None = None
    valid_days: int | None = None


async def respond(connection: AsyncConnection, quote_id: uuid.UUID, response: Response,
                  events: PendingEvents | None = None) -> Row[Any]:
    """A new version: the store or a vendor (its own products' lines only) answers, or the buyer counters."""
    quote = await lock_quote(connection, quote_id)
    if rules.is_expired(quote.valid_until, response.now):
        raise InvalidStateTransition("the quote has expired", **{"from": quote.status, "to": "expired"})
    target = QuoteStatus.COUNTERED if response.author_kind == "buyer" else QuoteStatus.RESPONDED
    rules.check_quote_transition(quote.status, target)
    if response.author_kind == "buyer" and quote.status == QuoteStatus.REQUESTED:
        raise InvalidStateTransition("wait for the seller's answer before countering",
                                     **{"from": quote.status, "to": target.value})
    lines = await _lines(connection, quote.id)
    editable = None
    if response.vendor_id is not None:
        editable = frozenset(uuid.UUID(line["variant_id"]) for line in lines
                             if line["vendor_id"] == str(response.vendor_id))
    new_lines, changes = rules.apply_edits(lines, response.edits, editable)
    for line in new_lines:
        await connection.execute(update(QUOTE_LINE).where(
            QUOTE_LINE.c.quote_id == quote.id, QUOTE_LINE.c.variant_id == uuid.UUID(line["variant_id"])).values(
            quantity=line["quantity"], unit_price=line["unit_price"], updated_at=func.now()))
    valid_until = rules.validity(response.now, response.valid_days) if response.valid_days else quote.valid_until
    number = quote.version + 1
    await _version(connection, quote, number, response.author_id, response.author_kind, response.vendor_id,
                   new_lines, changes, valid_until)
    if response.message:
        await add_message(connection, quote, author_id=response.author_id, author_kind=response.author_kind,
                          vendor_id=response.vendor_id, body=response.message)
    updated = (await connection.execute(update(QUOTE).where(QUOTE.c.id == quote.id).values(
        status=target.value, version=number, valid_until=valid_until, updated_at=func.now())
        .returning(*QUOTE.c))).one()
    _publish(events, updated, f"quote.{target.value}", target)
    return updated


async def add_message(connection: AsyncConnection, quote: Row[Any], *, author_id: str, author_kind: str,
                      vendor_id: uuid.UUID | None, body: str) -> Row[Any]:
    return (await connection.execute(insert(QUOTE_MESSAGE).values(
        tenant_id=quote.tenant_id, id=uuid.uuid4(), quote_id=quote.id, author_id=author_id, author_kind=author_kind,
        vendor_id=vendor_id, body=_name(body, "body", MAX_MESSAGE)).returning(*QUOTE_MESSAGE.c))).one()


async def accept(connection: AsyncConnection, quote_id: uuid.UUID, *, version: int, buyer_id: str, now: datetime,
                 events: PendingEvents | None = None) -> Row[Any]:
    """The buyer accepts the current version. Above their limits or an approval rule's threshold, the quote waits
    in pending_approval with an approval request; otherwise it is approved (ready to order)."""
    quote = await lock_quote(connection, quote_id)
    if quote.buyer_id != buyer_id:
        raise Forbidden("only the buyer who requested the quote accepts it")
    rules.check_acceptable(quote.status, quote.version, version, quote.valid_until, now)
    total = rules.lines_total(await _lines(connection, quote.id))
    buyer = await membership(connection, quote.company_id, buyer_id)
    if buyer is None:
        raise Forbidden("the buyer is no longer a user of the company")
    reasons, levels = await approval_needed(connection, quote.company_id, buyer, total, now)
    target = QuoteStatus.PENDING_APPROVAL if levels else QuoteStatus.APPROVED
    rules.check_quote_transition(quote.status, target)
    updated = (await connection.execute(update(QUOTE).where(QUOTE.c.id == quote.id).values(
        status=target.value, accepted_version=version, accepted_total=total, accepted_at=now,
        updated_at=func.now()).returning(*QUOTE.c))).one()
    if levels:
        request_id = uuid.uuid4()
        await connection.execute(insert(APPROVAL_REQUEST).values(
            tenant_id=quote.tenant_id, id=request_id, company_id=quote.company_id, quote_id=quote.id,
            quote_version=version, buyer_id=buyer_id, amount=total, currency_code=quote.currency_code,
            reasons=reasons, levels=[level.as_json() for level in levels], current_level=0,
            status=ApprovalStatus.PENDING.value))
        if events is not None:
            events.add(b2b_event("approval.requested", tenant_id=quote.tenant_id, company_id=quote.company_id,
                                 approval_request_id=request_id, quote_id=quote.id, buyer_id=buyer_id,
                                 status=ApprovalStatus.PENDING.value, level=0))
    _publish(events, updated, f"quote.{target.value}", target)
    return updated


# --- approvals --------------------------------------------------------------------------------------------------

async def set_approval_rule(connection: AsyncConnection, company: Row[Any], min_amount: int,
                            levels: Sequence[rules.Level]) -> Row[Any]:
    if min_amount < 0:
        raise BadUserInput("minAmount must not be negative", field="minAmount", value=min_amount)
    checked = rules.validate_levels(levels)
    named = {user for level in checked for user in level.users}
    if named:
        members = set((await connection.execute(select(COMPANY_USER.c.customer_id).where(
            COMPANY_USER.c.company_id == company.id, COMPANY_USER.c.customer_id.in_(named),
            COMPANY_USER.c.status == CompanyUserStatus.ACTIVE.value))).scalars())
        if named - members:
            raise BadUserInput("a level names someone who is not a user of the company", field="levels",
                               unknown=sorted(named - members))
    await connection.execute(delete(APPROVAL_RULE).where(APPROVAL_RULE.c.company_id == company.id,
                                                         APPROVAL_RULE.c.min_amount == min_amount))
    return (await connection.execute(insert(APPROVAL_RULE).values(
        tenant_id=company.tenant_id, id=uuid.uuid4(), company_id=company.id, min_amount=min_amount,
        levels=[level.as_json() for level in checked]).returning(*APPROVAL_RULE.c))).one()


async def delete_approval_rule(connection: AsyncConnection, rule: Row[Any]) -> None:
    await connection.execute(delete(APPROVAL_RULE).where(APPROVAL_RULE.c.id == rule.id))


@dataclass(frozen=True)
class Decision:
    approver_id: str
    approver_role: str  # the approver's company role
    level: int  # the level the approver saw (0-based): a level that moved on meanwhile is not decided twice
    decision: ApprovalDecision
    comment: str | None = None


OrderDecided = Callable[[AsyncConnection, Row[Any]], Awaitable[None]]


async def decide(connection: AsyncConnection, request_id: uuid.UUID, decision: Decision,
                 events: PendingEvents | None = None, order_decided: OrderDecided | None = None) -> Row[Any]:
    """One approver's decision, under the request's row lock: two approvers clicking at once are serialized, and
    the second one sees the level already moved (INVALID_STATE_TRANSITION) instead of moving it again. The final
    decision moves the quote, or (a held cart order) `order_decided` pays or cancels the order
    (company_orders.approval_decided) in the same transaction: if that fails, the decision is not recorded."""
    found = (await connection.execute(select(APPROVAL_REQUEST).where(APPROVAL_REQUEST.c.id == request_id)
                                      .with_for_update())).first()
    if found is None:
        raise NotFound("no ApprovalRequest with that id")
    request: Row[Any] = found
    if request.status != ApprovalStatus.PENDING:
        raise InvalidStateTransition(f"the request is already {request.status}",
                                     **{"from": request.status, "to": decision.decision.value})
    if decision.level != request.current_level:
        raise InvalidStateTransition(f"level {decision.level + 1} was already decided; the request is at level "
                                     f"{request.current_level + 1}", **{"from": "pending", "to": "pending",
                                                                        "currentLevel": request.current_level})
    if request.buyer_id == decision.approver_id:
        raise Forbidden("a buyer does not approve their own purchase")
    level = rules.Level.of(request.levels[request.current_level])
    if not level.eligible(decision.approver_id, decision.approver_role):
        raise Forbidden("you are not an approver of this level")
    comment = _name(decision.comment, "comment", 2000) if decision.comment else None

    async def record() -> None:
        await connection.execute(insert(APPROVAL_STEP).values(
            tenant_id=request.tenant_id, id=uuid.uuid4(), request_id=request.id, level=request.current_level,
            approver_id=decision.approver_id, approver_role=decision.approver_role,
            decision=decision.decision.value, comment=comment))

    await unique_or_conflict(connection, record, "you already decided this level", "id")
    values: dict[str, Any] = {}
    quote_status: QuoteStatus | None = None
    if decision.decision is ApprovalDecision.REJECT:
        values["status"] = ApprovalStatus.REJECTED.value
        quote_status = QuoteStatus.REJECTED
    else:
        approvals = [(row.approver_id, row.approver_role) for row in (await connection.execute(
            select(APPROVAL_STEP).where(APPROVAL_STEP.c.request_id == request.id,
                                        APPROVAL_STEP.c.level == request.current_level,
                                        APPROVAL_STEP.c.decision == ApprovalDecision.APPROVE.value))).all()]
        if level.complete(approvals):
            values["current_level"] = request.current_level + 1
            if request.current_level + 1 == len(request.levels):
                values["status"] = ApprovalStatus.APPROVED.value
                quote_status = QuoteStatus.APPROVED
    if values:
        request = (await connection.execute(update(APPROVAL_REQUEST).where(APPROVAL_REQUEST.c.id == request.id)
                                            .values(**values, updated_at=func.now())
                                            .returning(*APPROVAL_REQUEST.c))).one()
    if quote_status is not None and request.order_id is not None:
        if order_decided is None:
            raise InvalidStateTransition("this request is an order's: decide it where orders are placed",
                                         **{"from": "pending", "to": request.status})
        await order_decided(connection, request)
    elif quote_status is not None:
        quote = await lock_quote(connection, request.quote_id)
        rules.check_quote_transition(quote.status, quote_status)
        quote = (await connection.execute(update(QUOTE).where(QUOTE.c.id == quote.id).values(
            status=quote_status.value, updated_at=func.now()).returning(*QUOTE.c))).one()
        _publish(events, quote, f"quote.{quote_status.value}", quote_status)
    if events is not None:
        events.add(b2b_event("approval.decided", tenant_id=request.tenant_id, company_id=request.company_id,
                             approval_request_id=request.id, quote_id=request.quote_id, order_id=request.order_id,
                             buyer_id=request.buyer_id, status=request.status, level=request.current_level))
    return request


# --- quote → order ----------------------------------------------------------------------------------------------

async def orderable_quote(connection: AsyncConnection, quote_id: uuid.UUID, buyer_id: str, now: datetime,
                    lock: bool) -> Row[Any]:
    """The quote, if its buyer may order it now: approved and unexpired (ordered already: CONFLICT)."""
    quote = await lock_quote(connection, quote_id) if lock else await load_quote(connection, quote_id)
    if quote.buyer_id != buyer_id:
        raise Forbidden("only the buyer who requested the quote orders it")
    if quote.status == QuoteStatus.ORDERED:
        raise Conflict("this quote was already converted into an order", field="id", orderId=str(quote.order_id))
    if rules.is_expired(quote.valid_until, now):
        raise InvalidStateTransition("the quote has expired", **{"from": quote.status, "to": "ordered"})
    rules.check_quote_transition(quote.status, QuoteStatus.ORDERED)
    check_store((await connection.execute(select(COMPANY).where(COMPANY.c.id == quote.company_id))).one(),
                quote.store_id)
    return quote


async def _accepted_lines(connection: AsyncConnection, quote: Row[Any], cart: Row[Any],
                          ) -> tuple[list[dict[str, Any]], list[commerce_rules.PricedLine], commerce_rules.Totals]:
    """The accepted version's lines, as priced lines, and their totals (no shipping; the region's tax)."""
    version = (await connection.execute(select(QUOTE_VERSION).where(
        QUOTE_VERSION.c.quote_id == quote.id, QUOTE_VERSION.c.number == quote.accepted_version))).one()
    items: list[dict[str, Any]] = version.lines
    lines = [commerce_rules.PricedLine(uuid.UUID(item["variant_id"]),
                                       uuid.UUID(item["vendor_id"]) if item["vendor_id"] else None,
                                       int(item["quantity"]), int(item["list_unit_price"]), int(item["unit_price"]))
             for item in items]
    rate = (await connection.execute(select(carts.REGION.c.tax_rate).where(
        carts.REGION.c.id == cart.region_id))).scalar_one()
    return items, lines, commerce_rules.cart_totals(lines, 0, Decimal(rate))


async def quote_snapshot(connection: AsyncConnection, quote_id: uuid.UUID, buyer_id: str,
                         now: datetime) -> dict[str, Any]:
    """What a card payment for an approved quote charges for, in checkout's snapshot shape (commerce/service.py):
    the accepted version's lines and prices, its tax, no shipping, the company's shipping address."""
    quote = await orderable_quote(connection, quote_id, buyer_id, now, lock=False)
    cart = await carts.load_cart(connection, quote.cart_id)
    company = (await connection.execute(select(COMPANY).where(COMPANY.c.id == quote.company_id))).one()
    items, _, totals = await _accepted_lines(connection, quote, cart)
    return {"currency_code": quote.currency_code,
            "lines": [{key: item[key] for key in ("variant_id", "product_id", "vendor_id", "sku", "title", "quantity",
                                                  "list_unit_price", "unit_price")} for item in items],
            "totals": {"subtotal": totals.subtotal, "discount_total": totals.discount_total,
                       "shipping_total": totals.shipping_total, "tax_total": totals.tax_total, "total": totals.total},
            "shipping_option": {"id": None, "code": QUOTE_SHIPPING},
            "shipping_address": company.shipping_address or cart.shipping_address or {}}


async def complete_paid_checkout(connection: AsyncConnection, settings: Settings, *, cart_id: uuid.UUID,
                                 intent_id: str, amount_received: int, currency: str,
                                 events: PendingEvents | None = None) -> Settlement:
    """Complete a paid checkout (orders.complete_paid_order, whoever learns of the payment first) and, when the
    cart was a quote's paid by card, record the quote as ordered with its order."""
    settled = await complete_paid_order(connection, settings, cart_id=cart_id, intent_id=intent_id,
                                        amount_received=amount_received, currency=currency, events=events)
    if settled.order is not None:
        ordered = (await connection.execute(update(QUOTE).where(
            QUOTE.c.cart_id == cart_id, QUOTE.c.order_id.is_(None)).values(
            status=QuoteStatus.ORDERED.value, order_id=settled.order.id, updated_at=func.now())
            .returning(*QUOTE.c))).first()
        if ordered is not None:
            _publish(events, ordered, "quote.ordered", QuoteStatus.ORDERED)
    return settled


async def check_credit_hold(connection: AsyncConnection, company_id: uuid.UUID) -> None:
    """A company with an overdue invoice places no new order on account until it is paid (CREDIT_HOLD)."""
    overdue = (await connection.execute(select(func.count()).select_from(INVOICE).where(
        INVOICE.c.company_id == company_id, INVOICE.c.status == InvoiceStatus.OVERDUE.value))).scalar_one()
    if overdue:
        raise CreditHold(f"the company has {overdue} overdue invoice(s): pay them before ordering on account",
                         overdueInvoices=int(overdue))


async def take_credit(connection: AsyncConnection, company_id: uuid.UUID, amount: int) -> Row[Any]:
    """Deduct `amount` from the company's available credit in one conditional UPDATE: of two orders racing for the
    last of the credit, the second waits for the first's row lock, re-checks, and fails CREDIT_LIMIT_EXCEEDED."""
    taken = (await connection.execute(update(COMPANY).where(
        COMPANY.c.id == company_id, COMPANY.c.status == CompanyStatus.ACTIVE.value,
        COMPANY.c.credit_used + amount <= COMPANY.c.credit_limit).values(
        credit_used=COMPANY.c.credit_used + amount, updated_at=func.now()).returning(*COMPANY.c))).first()
    if taken is None:
        company = (await connection.execute(select(COMPANY).where(COMPANY.c.id == company_id))).one()
        available = rules.available_credit(company.credit_limit, company.credit_used)
        raise CreditLimitExceeded(f"the order ({amount}) is above the company's available credit ({available})",
                                  available=available, amount=amount, currencyCode=company.currency_code)
    return taken


@dataclass(frozen=True)
class Converted:
    order: Row[Any]
    invoice: Row[Any]


async def convert_on_account(connection: AsyncConnection, quote_id: uuid.UUID, *, buyer_id: str, now: datetime,
                             ledger_policy: LedgerPolicy, ship: bool, account: bool = False,
                             events: PendingEvents | None = None) -> Converted:
    """The approved quote becomes exactly one order through the order path (vendor split, ledger, fulfilment),
    paid on account: credit is deducted atomically and an invoice due by the payment terms is recorded (and, with
    `account`, the order goes to ERPNext through the outbox: the company as Customer, a Sales Invoice due then). A
    second conversion is CONFLICT."""
    quote = await orderable_quote(connection, quote_id, buyer_id, now, lock=True)
    company = (await connection.execute(select(COMPANY).where(COMPANY.c.id == quote.company_id))).one()
    terms = PaymentTerms(company.payment_terms)
    due = rules.due_date(now, terms)
    await check_credit_hold(connection, company.id)
    cart = await carts.load_cart(connection, quote.cart_id, lock=True)
    if cart.status != "open":
        raise Conflict("the quote's cart was checked out", field="id")
    await carts.release_reservations(connection, cart)
    cart = await carts.load_cart(connection, quote.cart_id)
    items, lines, totals = await _accepted_lines(connection, quote, cart)
    await take_credit(connection, company.id, totals.total)
    await carts.reserve_units(connection, cart, [(line.variant_id, line.quantity, item["sku"])
                                                 for line, item in zip(lines, items, strict=True)], 1)
    order = await place_order(connection, NewOrder(
        cart=cart, order_id=carts.order_id_for(cart), currency_code=quote.currency_code, lines=lines, items=items,
        totals=totals, shipping_address=company.shipping_address or cart.shipping_address or {},
        shipping_option_code=QUOTE_SHIPPING, company_id=company.id, status=OrderStatus.AWAITING_PAYMENT),
        ledger_policy, events, ship=ship, account=False)
    await connection.execute(delete(carts.RESERVATION).where(carts.RESERVATION.c.cart_id == cart.id))
    await connection.execute(update(carts.CART).where(carts.CART.c.id == cart.id).values(
        status="completed", order_id=order.id, completed_at=func.now(), updated_at=func.now()))
    invoice = (await connection.execute(insert(INVOICE).values(
        tenant_id=quote.tenant_id, id=uuid.uuid4(), company_id=company.id, order_id=order.id, quote_id=quote.id,
        buyer_id=buyer_id, amount=totals.total, currency_code=quote.currency_code, payment_terms=terms.value,
        due_at=due, status=InvoiceStatus.OPEN.value).returning(*INVOICE.c))).one()
    if account:  # after the invoice row: the message reads it (domain/accounting)
        await enqueue(connection, tenant_id=quote.tenant_id, topic=ACCOUNTING_TOPIC,
                      payload={"order_id": str(order.id)})
    updated = (await connection.execute(update(QUOTE).where(QUOTE.c.id == quote.id).values(
        status=QuoteStatus.ORDERED.value, order_id=order.id, updated_at=func.now()).returning(*QUOTE.c))).one()
    _publish(events, updated, "quote.ordered", QuoteStatus.ORDERED)
    return Converted(order, invoice)


UNPAID = [InvoiceStatus.OPEN.value, InvoiceStatus.OVERDUE.value]
HANDED_OVER = frozenset({OrderFulfillment.SHIPPED, OrderFulfillment.PARTIALLY_DELIVERED, OrderFulfillment.DELIVERED})


async def pay_invoice(connection: AsyncConnection, invoice_id: uuid.UUID, now: datetime, ledger_policy: LedgerPolicy,
                      account: bool = False, events: PendingEvents | None = None) -> Row[Any]:
    """Record an invoice's payment (open or overdue), once, and give its amount back to the company's available
    credit; its order, awaiting payment, is paid now (and fulfilled if every part was handed over meanwhile), and
    its vendors' sales become payable (ledger.release_sales). With `account`, ERPNext gets the Payment Entry
    through the outbox."""
    paid = (await connection.execute(update(INVOICE).where(
        INVOICE.c.id == invoice_id, INVOICE.c.status.in_(UNPAID)).values(
        status=InvoiceStatus.PAID.value, paid_at=now, updated_at=func.now()).returning(*INVOICE.c))).first()
    if paid is None:
        raise InvalidStateTransition("the invoice is already paid", **{"from": "paid", "to": "paid"})
    await connection.execute(update(COMPANY).where(COMPANY.c.id == paid.company_id).values(
        credit_used=func.greatest(COMPANY.c.credit_used - paid.amount, 0), updated_at=func.now()))
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == paid.order_id).with_for_update())).one()
    if order.status == OrderStatus.AWAITING_PAYMENT:
        await change_order_status(connection, order.id, OrderStatus.PAID.value, events)
        if order.fulfillment_status in HANDED_OVER:
            await change_order_status(connection, order.id, OrderStatus.FULFILLED.value, events)
    await release_sales(connection, order.id, ledger_policy, now)
    if account:
        await enqueue(connection, tenant_id=paid.tenant_id, topic=ACCOUNTING_TOPIC,
                      payload={"order_id": str(paid.order_id)})
    return paid


# --- expiry -----------------------------------------------------------------------------------------------------

EXPIRABLE = [QuoteStatus.REQUESTED, QuoteStatus.RESPONDED, QuoteStatus.COUNTERED, QuoteStatus.PENDING_APPROVAL,
             QuoteStatus.APPROVED]


async def expire_quotes(engine: AsyncEngine, tenant_id: uuid.UUID, now: datetime) -> dict[str, int]:
    """The expire-quotes job for one tenant: every open, pending or approved quote past its validity is expired
    (idempotent: a second run finds none); their pending approval requests are closed as rejected."""
    async with tenant_transaction(engine, tenant_id) as connection:
        expired = (await connection.execute(update(QUOTE).where(
            QUOTE.c.tenant_id == tenant_id, QUOTE.c.status.in_([status.value for status in EXPIRABLE]),
            QUOTE.c.valid_until <= now).values(status=QuoteStatus.EXPIRED.value, updated_at=func.now())
            .returning(QUOTE.c.id))).scalars().all()
        closed = 0
        if expired:
            closed = (await connection.execute(update(APPROVAL_REQUEST).where(
                APPROVAL_REQUEST.c.tenant_id == tenant_id, APPROVAL_REQUEST.c.quote_id.in_(expired),
                APPROVAL_REQUEST.c.status == ApprovalStatus.PENDING.value).values(
                status=ApprovalStatus.REJECTED.value, updated_at=func.now()))).rowcount or 0
    return {"expired": len(expired), "approvals_closed": closed}


def _publish(events: PendingEvents | None, quote: Row[Any], name: str, status: QuoteStatus) -> None:
    if events is not None:
        events.add(b2b_event(name, tenant_id=quote.tenant_id, company_id=quote.company_id, quote_id=quote.id,
                             store_id=quote.store_id, buyer_id=quote.buyer_id, vendor_ids=quote.vendor_ids,
                             status=status.value, version=quote.version))

