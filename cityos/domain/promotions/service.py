"""Promotion use cases over one tenant-scoped connection: create, change, approve, archive and delete promotions;
apply and remove a cart's codes; evaluate a cart's promotions (codes applied and automatic ones); count a use when
an order is created (a redemption row each; never above the limit, even when buyers race for the last use) and
release it when the order is canceled; a subscription's promotion for N renewals; campaign reports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, column, func, insert, or_, select, table, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.catalog.models import Product, ProductCategory
from cityos.domain.kernel import unique_or_conflict
from cityos.domain.promotions import rules
from cityos.domain.promotions.models import (
    CartPromotion,
    OrderLinePromotion,
    Promotion,
    PromotionAction,
    PromotionFunding,
    PromotionRedemption,
    PromotionSettings,
    PromotionStacking,
    PromotionStatus,
    RedemptionStatus,
    SubscriptionPromotion,
)
from cityos.errors import BadUserInput, Conflict, InvalidStateTransition, NotFound, PromotionExhausted

PROMOTION = table_of(Promotion)
SETTINGS = table_of(PromotionSettings)
CART_PROMOTION = table_of(CartPromotion)
REDEMPTION = table_of(PromotionRedemption)
LINE_PROMOTION = table_of(OrderLinePromotion)
SUBSCRIPTION_PROMOTION = table_of(SubscriptionPromotion)
PRODUCT = table_of(Product)
PRODUCT_CATEGORY = table_of(ProductCategory)
# The orders table, read (not owned) for the first-order condition: the orders context builds on this one, so it is
# named here by its columns rather than imported.
ORDERS = table("orders", column("tenant_id"), column("customer_id"), column("status"))
NAME_LENGTH = 200


@dataclass(frozen=True)
class Spec:
    """Everything that defines a promotion (create takes it whole; update replaces some of it)."""

    name: str
    action: PromotionAction
    code: str | None = None
    vendor_id: uuid.UUID | None = None
    percent: Decimal | None = None
    amount: int | None = None
    currency_code: str | None = None
    buy_quantity: int | None = None
    get_quantity: int | None = None
    tiers: tuple[rules.Tier, ...] = ()
    conditions: rules.Conditions = rules.NO_CONDITIONS
    stacking: PromotionStacking = PromotionStacking.COMBINABLE
    priority: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    per_customer_limit: int | None = None
    funding: PromotionFunding = PromotionFunding.PLATFORM
    vendor_share_percent: Decimal | None = None  # split only: the vendor's percent
    max_cycles: int | None = None

    def rules_view(self, id: uuid.UUID) -> rules.Promotion:
        return rules.Promotion(id, self.action, self.stacking, self.priority, self.percent, self.amount,
                               self.buy_quantity, self.get_quantity, self.tiers, self.conditions, self.vendor_id,
                               rules.vendor_share_of(self.funding, self.vendor_share_percent))


def spec_of(row: Any) -> Spec:
    return Spec(name=row.name, action=PromotionAction(row.action), code=row.code, vendor_id=row.vendor_id,
                percent=row.percent, amount=row.amount, currency_code=row.currency_code,
                buy_quantity=row.buy_quantity, get_quantity=row.get_quantity, tiers=tiers_of(row.tiers),
                conditions=rules.Conditions.of_json(row.conditions), stacking=PromotionStacking(row.stacking),
                priority=row.priority, starts_at=row.starts_at, ends_at=row.ends_at, usage_limit=row.usage_limit,
                per_customer_limit=row.per_customer_limit, funding=PromotionFunding(row.funding),
                vendor_share_percent=row.vendor_share_percent if row.funding == PromotionFunding.SPLIT else None,
                max_cycles=row.max_cycles)


def tiers_of(data: Sequence[dict[str, Any]] | None) -> tuple[rules.Tier, ...]:
    return tuple(rules.Tier(int(tier["threshold"]), int(tier["amount"])) for tier in data or ())


def promotion_of(row: Any) -> rules.Promotion:
    return spec_of(row).rules_view(row.id)


async def _checked(connection: AsyncConnection, store_id: uuid.UUID, spec: Spec) -> dict[str, Any]:
    """The promotion's columns, validated: BAD_USER_INPUT for what cannot work, FORBIDDEN for a vendor's promotion
    reaching another vendor's products."""
    name = spec.name.strip()
    if not name or len(name) > NAME_LENGTH:
        raise BadUserInput(f"a promotion's name is 1–{NAME_LENGTH} characters", field="name")
    code = rules.normalize_code(spec.code) if spec.code is not None else None
    currency = spec.currency_code.lower() if spec.currency_code else None
    if spec.vendor_share_percent is not None and spec.funding != PromotionFunding.SPLIT:
        raise BadUserInput("vendorSharePercent is for a split promotion only", field="vendorSharePercent")
    view = spec.rules_view(uuid.uuid4())
    rules.validate(view, currency_code=currency, funding=spec.funding, starts_at=spec.starts_at,
                   ends_at=spec.ends_at, usage_limit=spec.usage_limit, per_customer_limit=spec.per_customer_limit,
                   max_cycles=spec.max_cycles)
    if spec.conditions.product_ids:
        owners = dict((await connection.execute(select(PRODUCT.c.id, PRODUCT.c.vendor_id).where(
            PRODUCT.c.id.in_(spec.conditions.product_ids), PRODUCT.c.store_id == store_id))).all())
        if set(owners) != set(spec.conditions.product_ids):
            raise BadUserInput("productIds names a product that is not in the promotion's store", field="productIds")
        if spec.vendor_id is not None:
            rules.check_vendor_targets(spec.vendor_id, owners.values(), spec.conditions)
    elif spec.vendor_id is not None:
        rules.check_vendor_targets(spec.vendor_id, (), spec.conditions)
    return {"name": name, "code": code, "vendor_id": spec.vendor_id, "action": spec.action.value,
            "percent": spec.percent, "amount": spec.amount, "currency_code": currency,
            "buy_quantity": spec.buy_quantity, "get_quantity": spec.get_quantity,
            "tiers": [{"threshold": tier.threshold, "amount": tier.amount} for tier in spec.tiers] or None,
            "conditions": spec.conditions.as_json(), "stacking": spec.stacking.value, "priority": spec.priority,
            "starts_at": spec.starts_at, "ends_at": spec.ends_at, "usage_limit": spec.usage_limit,
            "per_customer_limit": spec.per_customer_limit, "funding": spec.funding.value,
            "vendor_share_percent": view.vendor_share_percent, "max_cycles": spec.max_cycles}


CODE_TAKEN = "another promotion of this store has that code (codes are case-insensitive)"


async def create_promotion(connection: AsyncConnection, *, tenant_id: uuid.UUID, store_id: uuid.UUID, spec: Spec,
                           active: bool) -> Row[Any]:
    """`active`: false when the store approves vendors' promotions first (the caller asked Cerbos)."""
    values = await _checked(connection, store_id, spec)
    status = PromotionStatus.ACTIVE if active else PromotionStatus.PENDING_APPROVAL

    async def work() -> Row[Any]:
        return (await connection.execute(insert(PROMOTION).values(
            tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, status=status.value, **values)
            .returning(*PROMOTION.c))).one()

    return await unique_or_conflict(connection, work, CODE_TAKEN, "code")


async def update_promotion(connection: AsyncConnection, row: Any, changes: dict[str, Any],
                           active: bool | None = None) -> Row[Any]:
    """Replace some of the promotion's definition (`changes`: Spec fields). An archived promotion does not change.
    `active` False: a vendor's change goes back to approval."""
    if row.status == PromotionStatus.ARCHIVED:
        raise InvalidStateTransition("an archived promotion does not change",
                                     **{"from": row.status, "to": row.status})
    values = await _checked(connection, row.store_id, replace(spec_of(row), **changes))
    if active is False:
        values["status"] = PromotionStatus.PENDING_APPROVAL.value

    async def work() -> Row[Any]:
        return (await connection.execute(update(PROMOTION).where(PROMOTION.c.id == row.id).values(
            updated_at=func.now(), **values).returning(*PROMOTION.c))).one()

    return await unique_or_conflict(connection, work, CODE_TAKEN, "code")


async def set_status(connection: AsyncConnection, row: Any, target: PromotionStatus,
                     approved_by: str | None = None) -> Row[Any]:
    """approve: pending_approval → active; archive: any → archived (no new uses; past ones stay reported)."""
    allowed = {PromotionStatus.ACTIVE: {PromotionStatus.PENDING_APPROVAL.value},
               PromotionStatus.ARCHIVED: {PromotionStatus.PENDING_APPROVAL.value, PromotionStatus.ACTIVE.value}}
    if row.status not in allowed.get(target, set()):
        raise InvalidStateTransition(f"a promotion cannot go from {row.status} to {target.value}",
                                     **{"from": row.status, "to": target.value})
    values: dict[str, Any] = {"status": target.value, "updated_at": func.now()}
    if approved_by is not None:
        values |= {"approved_by": approved_by[:200], "approved_at": func.now()}
    return (await connection.execute(update(PROMOTION).where(PROMOTION.c.id == row.id).values(**values)
                                     .returning(*PROMOTION.c))).one()


async def delete_promotion(connection: AsyncConnection, row: Any) -> None:
    """Delete a promotion never used (its codes leave the carts); a used one is archived instead (CONFLICT), so
    its redemptions stay in the reports."""
    used = (await connection.execute(select(REDEMPTION.c.id).where(REDEMPTION.c.promotion_id == row.id).limit(1)))
    if used.first() is not None or row.times_used:
        raise Conflict("this promotion was used: archive it instead (its uses stay in the reports)", field="id")
    await connection.execute(PROMOTION.delete().where(PROMOTION.c.id == row.id))


async def vendor_approval_required(connection: AsyncConnection, store_id: uuid.UUID) -> bool:
    return bool((await connection.execute(select(SETTINGS.c.vendor_approval_required).where(
        SETTINGS.c.store_id == store_id))).scalar())


async def set_vendor_approval(connection: AsyncConnection, tenant_id: uuid.UUID, store_id: uuid.UUID,
                              required: bool) -> bool:
    statement = pg_insert(SETTINGS).values(tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id,
                                           vendor_approval_required=required)
    await connection.execute(statement.on_conflict_do_update(
        index_elements=["tenant_id", "store_id"],
        set_={"vendor_approval_required": required, "updated_at": func.now()}))
    return required


# --- carts ---------------------------------------------------------------------------------------------------------

def customer_key(customer_id: str | None, email: str | None) -> str | None:
    """Whose uses a per-customer limit counts: the signed-in customer, else the email given at checkout."""
    return customer_id or (email.lower() if email else None)


async def _customer_uses(connection: AsyncConnection, promotion_ids: Sequence[uuid.UUID],
                         key: str | None) -> dict[uuid.UUID, int]:
    if key is None or not promotion_ids:
        return {}
    return dict((await connection.execute(
        select(REDEMPTION.c.promotion_id, func.count()).where(
            REDEMPTION.c.promotion_id.in_(promotion_ids), REDEMPTION.c.customer_key == key,
            REDEMPTION.c.status == RedemptionStatus.ACTIVE.value).group_by(REDEMPTION.c.promotion_id))).all())


async def apply_code(connection: AsyncConnection, cart: Any, code: str, now: datetime) -> Row[Any]:
    """Attach a code to the cart: NOT_FOUND for an unknown code (or another store's), PROMOTION_EXPIRED outside its
    dates, PROMOTION_EXHAUSTED without uses left. It applies whenever its conditions hold."""
    wanted = rules.normalize_code(code)
    row = (await connection.execute(select(PROMOTION).where(
        PROMOTION.c.store_id == cart.store_id, func.lower(PROMOTION.c.code) == wanted.lower(),
        PROMOTION.c.status == PromotionStatus.ACTIVE.value))).first()
    if row is None:
        raise NotFound("no promotion with that code in this store", field="code")
    if row.currency_code is not None and row.currency_code != cart.currency_code:
        raise BadUserInput(f"this promotion is for carts in {row.currency_code.upper()}", field="code")
    rules.check_window(row.starts_at, row.ends_at, now)
    key = customer_key(cart.customer_id, cart.email)
    rules.check_uses(row.usage_limit, row.times_used, row.per_customer_limit,
                     (await _customer_uses(connection, [row.id], key)).get(row.id, 0))
    await connection.execute(pg_insert(CART_PROMOTION).values(
        tenant_id=cart.tenant_id, id=uuid.uuid4(), cart_id=cart.id, promotion_id=row.id, code=row.code)
        .on_conflict_do_nothing())
    return row


async def remove_code(connection: AsyncConnection, cart: Any, code: str) -> None:
    removed = (await connection.execute(CART_PROMOTION.delete().where(
        CART_PROMOTION.c.cart_id == cart.id, func.lower(CART_PROMOTION.c.code) == code.strip().lower())
        .returning(CART_PROMOTION.c.id))).first()
    if removed is None:
        raise NotFound("this code is not applied to the cart", field="code")


async def cart_codes(connection: AsyncConnection, cart_id: uuid.UUID) -> list[str]:
    return list((await connection.execute(select(CART_PROMOTION.c.code).where(CART_PROMOTION.c.cart_id == cart_id)
                                          .order_by(CART_PROMOTION.c.created_at, CART_PROMOTION.c.id))).scalars())


@dataclass(frozen=True)
class CartLineFacts:
    product_id: uuid.UUID
    vendor_id: uuid.UUID | None
    quantity: int
    unit_price: int


@dataclass(frozen=True)
class AppliedPromotion:
    """One promotion applied to a cart: its part of each line (the cart's line order) and free shipping."""

    promotion_id: uuid.UUID
    name: str
    code: str | None
    vendor_id: uuid.UUID | None
    vendor_share_percent: Decimal
    lines: tuple[int, ...]
    free_shipping: bool

    @property
    def amount(self) -> int:
        return sum(self.lines)

    def funding(self) -> list[rules.Funded]:
        return [rules.funded(part, self.vendor_share_percent) for part in self.lines]


@dataclass(frozen=True)
class Evaluation:
    applied: tuple[AppliedPromotion, ...]
    line_discounts: tuple[int, ...]

    @property
    def free_shipping(self) -> bool:
        return any(item.free_shipping for item in self.applied)

    def vendor_funded(self) -> list[int]:
        """Per line, the part of its promotion discount its vendor funds."""
        funded = [0] * len(self.line_discounts)
        for item in self.applied:
            for index, part in enumerate(item.funding()):
                funded[index] += part.vendor
        return funded


def no_promotions(count: int) -> Evaluation:
    return Evaluation((), tuple(0 for _ in range(count)))


NO_PROMOTIONS = no_promotions(0)


async def candidates(connection: AsyncConnection, *, store_id: uuid.UUID, currency_code: str, now: datetime,
                     promotion_ids: Any, key: str | None) -> list[Row[Any]]:
    """Active promotions of the store in their dates with uses left (overall and for `key`): the automatic ones and
    those of `promotion_ids` (a statement or a list: the codes applied)."""
    rows = (await connection.execute(select(PROMOTION).where(
        PROMOTION.c.store_id == store_id, PROMOTION.c.status == PromotionStatus.ACTIVE.value,
        or_(PROMOTION.c.code.is_(None), PROMOTION.c.id.in_(promotion_ids)),
        or_(PROMOTION.c.currency_code.is_(None), PROMOTION.c.currency_code == currency_code),
        or_(PROMOTION.c.starts_at.is_(None), PROMOTION.c.starts_at <= now),
        or_(PROMOTION.c.ends_at.is_(None), PROMOTION.c.ends_at > now),
        or_(PROMOTION.c.usage_limit.is_(None), PROMOTION.c.times_used < PROMOTION.c.usage_limit)))).all()
    limited = [row.id for row in rows if row.per_customer_limit is not None]
    used = await _customer_uses(connection, limited, key)
    return [row for row in rows if row.per_customer_limit is None or used.get(row.id, 0) < row.per_customer_limit]


async def evaluate(connection: AsyncConnection, cart: Any, lines: Sequence[CartLineFacts], shipping: int,
                   now: datetime) -> Evaluation:
    """The cart's promotions (codes applied and automatic ones) as the rules apply them to its lines."""
    if not lines:
        return no_promotions(0)
    rows = await candidates(
        connection, store_id=cart.store_id, currency_code=cart.currency_code, now=now,
        promotion_ids=select(CART_PROMOTION.c.promotion_id).where(CART_PROMOTION.c.cart_id == cart.id),
        key=customer_key(cart.customer_id, cart.email))
    return await evaluate_rows(connection, rows, lines, shipping, customer_id=cart.customer_id,
                               company_id=cart.company_id)


async def evaluate_rows(connection: AsyncConnection, rows: Sequence[Any], lines: Sequence[CartLineFacts],
                        shipping: int, *, customer_id: str | None, company_id: uuid.UUID | None) -> Evaluation:
    if not rows:
        return no_promotions(len(lines))
    promotions = {row.id: promotion_of(row) for row in rows}
    categories: dict[uuid.UUID, set[uuid.UUID]] = {}
    if any(promotion.conditions.category_ids for promotion in promotions.values()):
        for product_id, category_id in (await connection.execute(select(
                PRODUCT_CATEGORY.c.product_id, PRODUCT_CATEGORY.c.category_id).where(
                PRODUCT_CATEGORY.c.product_id.in_({line.product_id for line in lines})))).all():
            categories.setdefault(product_id, set()).add(category_id)
    has_ordered = False
    if customer_id is not None and any(promotion.conditions.first_order for promotion in promotions.values()):
        has_ordered = (await connection.execute(select(ORDERS.c.customer_id).where(
            ORDERS.c.customer_id == customer_id, ORDERS.c.status != "canceled").limit(1))).first() is not None
    outcome = rules.best(
        promotions.values(),
        [rules.Line(line.product_id, line.vendor_id, frozenset(categories.get(line.product_id, set())),
                    line.quantity, line.unit_price) for line in lines],
        rules.Shopper(customer_id, company_id, has_ordered), shipping)
    by_id = {row.id: row for row in rows}
    return Evaluation(tuple(AppliedPromotion(
        item.promotion_id, by_id[item.promotion_id].name, by_id[item.promotion_id].code,
        by_id[item.promotion_id].vendor_id, promotions[item.promotion_id].vendor_share_percent, item.lines,
        item.free_shipping) for item in outcome.applied), outcome.line_discounts)


# --- orders --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OrderLineRef:
    id: uuid.UUID
    vendor_order_id: uuid.UUID | None
    vendor_id: uuid.UUID | None


async def redeem(connection: AsyncConnection, *, tenant_id: uuid.UUID, order_id: uuid.UUID, key: str | None,
                 currency_code: str, order_total: int, applied: Sequence[dict[str, Any]],
                 lines: Sequence[OrderLineRef]) -> None:
    """Count one use of each promotion the order got (a redemption row each) and record each line's part and who
    funds it. The use is taken with one conditional UPDATE (times_used < usage_limit), so buyers racing for the
    last use queue on the promotion's row and only one gets it; the others — and a customer past its own limit —
    get PROMOTION_EXHAUSTED, and the caller refunds their payment. `applied`: the checkout snapshot's
    promotions (cityos.domain.commerce.service.checkout_snapshot)."""
    for item in sorted(applied, key=lambda entry: str(entry["promotion_id"])):  # one lock order
        promotion_id = uuid.UUID(str(item["promotion_id"]))
        taken = (await connection.execute(update(PROMOTION).where(
            PROMOTION.c.id == promotion_id,
            or_(PROMOTION.c.usage_limit.is_(None), PROMOTION.c.times_used < PROMOTION.c.usage_limit))
            .values(times_used=PROMOTION.c.times_used + 1).returning(PROMOTION.c.per_customer_limit))).first()
        if taken is None:
            raise PromotionExhausted(f"the promotion {item.get('code') or item.get('name')} ran out of uses",
                                     limit="usage_limit")
        if taken.per_customer_limit is not None and \
                (await _customer_uses(connection, [promotion_id], key)).get(promotion_id, 0) >= \
                taken.per_customer_limit:
            raise PromotionExhausted("the customer has used this promotion as often as it allows",
                                     limit="per_customer_limit")
        parts = [int(part) for part in item["lines"]]
        await connection.execute(insert(REDEMPTION).values(
            tenant_id=tenant_id, id=uuid.uuid4(), promotion_id=promotion_id, order_id=order_id, customer_key=key,
            status=RedemptionStatus.ACTIVE.value, currency_code=currency_code, amount=sum(parts),
            shipping_amount=int(item.get("shipping_amount") or 0), order_total=order_total))
        share = Decimal(str(item["vendor_share_percent"]))
        rows = [{"tenant_id": tenant_id, "id": uuid.uuid4(), "order_id": order_id, "vendor_order_id":
                 line.vendor_order_id, "order_line_id": line.id, "promotion_id": promotion_id,
                 "vendor_id": line.vendor_id, "amount": part, "platform_amount": funded.platform,
                 "vendor_amount": funded.vendor}
                for line, part in zip(lines, parts, strict=True) if part
                for funded in [rules.funded(part, share)]]
        if rows:
            await connection.execute(insert(LINE_PROMOTION), rows)


async def release(connection: AsyncConnection, order_id: uuid.UUID) -> int:
    """The order was canceled: its uses count no more (once: only active redemptions are released)."""
    released = (await connection.execute(update(REDEMPTION).where(
        REDEMPTION.c.order_id == order_id, REDEMPTION.c.status == RedemptionStatus.ACTIVE.value)
        .values(status=RedemptionStatus.RELEASED.value, updated_at=func.now())
        .returning(REDEMPTION.c.promotion_id))).scalars().all()
    for promotion_id in sorted(released, key=str):
        await connection.execute(update(PROMOTION).where(PROMOTION.c.id == promotion_id, PROMOTION.c.times_used > 0)
                                 .values(times_used=PROMOTION.c.times_used - 1))
    return len(released)


# --- subscriptions -------------------------------------------------------------------------------------------------

async def attach_to_subscription(connection: AsyncConnection, subscription: Any, code: str,
                                 now: datetime) -> Row[Any]:
    """A subscription carries the promotion of `code` into its renewals, for the promotion's `max_cycles`
    renewals (null: every one). Checked like a cart's code (NOT_FOUND, PROMOTION_EXPIRED, PROMOTION_EXHAUSTED)."""
    wanted = rules.normalize_code(code)
    row = (await connection.execute(select(PROMOTION).where(
        PROMOTION.c.store_id == subscription.store_id, func.lower(PROMOTION.c.code) == wanted.lower(),
        PROMOTION.c.status == PromotionStatus.ACTIVE.value))).first()
    if row is None:
        raise NotFound("no promotion with that code in this store", field="code")
    rules.check_window(row.starts_at, row.ends_at, now)
    rules.check_uses(row.usage_limit, row.times_used, row.per_customer_limit,
                     (await _customer_uses(connection, [row.id], subscription.customer_id)).get(row.id, 0))
    statement = pg_insert(SUBSCRIPTION_PROMOTION).values(
        tenant_id=subscription.tenant_id, id=uuid.uuid4(), subscription_id=subscription.id, promotion_id=row.id,
        cycles=row.max_cycles, cycles_used=0)
    await connection.execute(statement.on_conflict_do_update(
        index_elements=["tenant_id", "subscription_id"],
        set_={"promotion_id": row.id, "cycles": row.max_cycles, "cycles_used": 0, "updated_at": func.now()}))
    return row


async def renewal_promotion(connection: AsyncConnection, subscription: Any, lines: Sequence[CartLineFacts],
                            now: datetime) -> tuple[Evaluation, uuid.UUID | None]:
    """The promotion a renewal of the subscription gets, if it carries one with cycles left (and the promotion is
    still active and in its dates): the evaluation and the carrier row's id to count the cycle with."""
    carried = (await connection.execute(select(SUBSCRIPTION_PROMOTION).where(
        SUBSCRIPTION_PROMOTION.c.subscription_id == subscription.id,
        or_(SUBSCRIPTION_PROMOTION.c.cycles.is_(None),
            SUBSCRIPTION_PROMOTION.c.cycles_used < SUBSCRIPTION_PROMOTION.c.cycles)))).first()
    if carried is None:
        return no_promotions(len(lines)), None
    rows = [row for row in await candidates(
        connection, store_id=subscription.store_id, currency_code=subscription.currency_code, now=now,
        promotion_ids=[carried.promotion_id], key=customer_key(subscription.customer_id, subscription.email))
        if row.id == carried.promotion_id]
    evaluation = await evaluate_rows(connection, rows, lines, 0, customer_id=None, company_id=None)
    return evaluation, carried.id if evaluation.applied else None


async def count_cycle(connection: AsyncConnection, carrier_id: uuid.UUID) -> None:
    await connection.execute(update(SUBSCRIPTION_PROMOTION).where(
        SUBSCRIPTION_PROMOTION.c.id == carrier_id,
        or_(SUBSCRIPTION_PROMOTION.c.cycles.is_(None),
            SUBSCRIPTION_PROMOTION.c.cycles_used < SUBSCRIPTION_PROMOTION.c.cycles))
        .values(cycles_used=SUBSCRIPTION_PROMOTION.c.cycles_used + 1, updated_at=func.now()))


@dataclass(frozen=True)
class RenewalDiscount:
    """The promotion a renewal carries, per line of its order: each line's part of the discount and the part of it
    the line's vendor funds, and the snapshot's `promotions` entry (empty when none applies)."""

    line_discounts: list[int]
    vendor_funded: list[int]
    applied: list[dict[str, Any]]


async def discount_renewal(connection: AsyncConnection, subscription: Any, lines: Sequence[CartLineFacts],
                           now: datetime) -> RenewalDiscount:
    """What the promotion the subscription carries takes off a renewal order's `lines` (billing/renewals.py prices
    and taxes the order like a checkout, after this), counting one of its cycles; nothing when it carries none, or
    its cycles are used up."""
    evaluation, carrier = await renewal_promotion(connection, subscription, lines, now)
    if carrier is None:
        return RenewalDiscount([0] * len(lines), [0] * len(lines), [])
    await count_cycle(connection, carrier)
    applied = [{"promotion_id": str(item.promotion_id), "code": item.code, "name": item.name,
                "vendor_share_percent": str(item.vendor_share_percent), "lines": list(item.lines),
                "shipping_amount": 0} for item in evaluation.applied]
    return RenewalDiscount(list(evaluation.line_discounts), list(evaluation.vendor_funded()), applied)


# --- reporting -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CurrencyReport:
    currency_code: str
    uses: int
    discount: int  # taken off lines
    shipping_discount: int  # shipping waived (free shipping: nobody charges it, vendors' own options included)
    revenue: int  # what the orders that used it came to
    platform_funded: int
    vendor_funded: int


async def report(connection: AsyncConnection, promotion_id: uuid.UUID) -> list[CurrencyReport]:
    """A promotion's campaign figures per currency: uses (not released), the discount given (lines and shipping),
    the revenue of those orders, and who funded the line discounts."""
    active = and_(REDEMPTION.c.promotion_id == promotion_id, REDEMPTION.c.status == RedemptionStatus.ACTIVE.value)
    totals = (await connection.execute(select(
        REDEMPTION.c.currency_code, func.count(), func.coalesce(func.sum(REDEMPTION.c.amount), 0),
        func.coalesce(func.sum(REDEMPTION.c.shipping_amount), 0), func.coalesce(func.sum(REDEMPTION.c.order_total), 0))
        .where(active).group_by(REDEMPTION.c.currency_code).order_by(REDEMPTION.c.currency_code))).all()
    funders = {row.currency_code: (int(row.platform), int(row.vendor)) for row in (await connection.execute(select(
        REDEMPTION.c.currency_code, func.coalesce(func.sum(LINE_PROMOTION.c.platform_amount), 0).label("platform"),
        func.coalesce(func.sum(LINE_PROMOTION.c.vendor_amount), 0).label("vendor"))
        .join(LINE_PROMOTION, and_(LINE_PROMOTION.c.tenant_id == REDEMPTION.c.tenant_id,
                                   LINE_PROMOTION.c.order_id == REDEMPTION.c.order_id,
                                   LINE_PROMOTION.c.promotion_id == REDEMPTION.c.promotion_id))
        .where(active).group_by(REDEMPTION.c.currency_code))).all()}
    return [CurrencyReport(currency, int(uses), int(discount), int(shipping), int(revenue),
                           *funders.get(currency, (0, 0)))
            for currency, uses, discount, shipping, revenue in totals]
