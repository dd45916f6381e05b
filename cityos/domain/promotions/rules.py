"""Pure promotion rules: validation, eligibility (conditions), what each action takes off, the stacking precedence,
the allocation of a discount to lines and the funding split.

Written down:
- **Eligibility.** A promotion applies to a cart when every condition it sets holds, on the cart as priced before
  any promotion (list prices after volume and company pricing): the cart's subtotal is at least `min_subtotal`;
  some line is one of `product_ids`, in one of `category_ids`, or sold by one of `vendor_ids` (each list set is
  one condition); the cart's customer is one of `customer_ids`; its company one of `company_ids`; with
  `first_order`, the customer has no order yet. A vendor's promotion only ever reaches that vendor's lines.
- **Target lines.** `order_*`, `tiered` and `free_shipping` reach every line of the cart (a vendor's promotion:
  every line of the vendor); `lines_*` and `buy_x_get_y` the lines matching its product / category / vendor
  lists (all lines when it sets none), again only the vendor's own for a vendor's promotion.
- **Actions,** on the target lines' amounts still left after the promotions applied before it:
  percent → round_half_up(amount × percent / 100); fixed → min(amount, what is left); tiered → the amount of the
  highest tier whose threshold the target subtotal reaches (capped like fixed); buy X get Y → for every X + Y
  units, Y units (the cheapest, by unit price, ties to the earlier line) at `percent` off (100: free);
  free shipping → the chosen shipping option's price is waived (no line discount; a store's promotion only, the
  shipping is not charged at all, vendors' own options included: the vendor orders' shipping is 0).
- **Allocation.** A promotion's discount is split over its target lines by the largest-remainder rule
  (kernel.allocate) on the amounts left; since a discount never exceeds the amount left, no line's part does
  either: lines never go negative and the parts sum exactly to the discount.
- **Stacking precedence.** Promotions are ordered by precedence: higher `priority` first, then the larger
  discount on its own, then the smaller id (so the input order, which is creation order, never matters).
  Candidates are: every exclusive promotion on its own, and all combinable promotions together (applied in
  precedence order, each on what the ones before it left). The candidate with the largest total saving (line
  discounts + waived shipping) wins; a tie goes to the candidate whose first promotion comes first by precedence.
- **Funding.** Per line, the vendor funds round_half_up(part × vendor_share_percent / 100) (platform: 0 %,
  vendor: 100 %, split: the percent given) and the platform the rest: both sum exactly to the line's part.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from cityos.domain.kernel import allocate, round_half_up
from cityos.domain.promotions.models import PromotionAction, PromotionFunding, PromotionStacking
from cityos.errors import BadUserInput, Forbidden, PromotionExhausted, PromotionExpired

HUNDRED = Decimal(100)
CODE_LENGTH = 64
LINE_ACTIONS = frozenset({PromotionAction.LINES_PERCENT, PromotionAction.LINES_FIXED, PromotionAction.BUY_X_GET_Y})
PERCENT_ACTIONS = frozenset({PromotionAction.ORDER_PERCENT, PromotionAction.LINES_PERCENT})
FIXED_ACTIONS = frozenset({PromotionAction.ORDER_FIXED, PromotionAction.LINES_FIXED})


@dataclass(frozen=True)
class Tier:
    threshold: int  # the target subtotal from which it applies
    amount: int  # taken off


@dataclass(frozen=True)
class Conditions:
    min_subtotal: int | None = None
    product_ids: frozenset[uuid.UUID] = frozenset()
    category_ids: frozenset[uuid.UUID] = frozenset()
    vendor_ids: frozenset[uuid.UUID] = frozenset()
    customer_ids: frozenset[str] = frozenset()
    company_ids: frozenset[uuid.UUID] = frozenset()
    first_order: bool = False

    def as_json(self) -> dict[str, object]:
        return {"min_subtotal": self.min_subtotal, "product_ids": sorted(map(str, self.product_ids)),
                "category_ids": sorted(map(str, self.category_ids)), "vendor_ids": sorted(map(str, self.vendor_ids)),
                "customer_ids": sorted(self.customer_ids), "company_ids": sorted(map(str, self.company_ids)),
                "first_order": self.first_order}

    @classmethod
    def of_json(cls, data: dict[str, object] | None) -> Conditions:
        data = data or {}

        def ids(key: str) -> frozenset[uuid.UUID]:
            return frozenset(uuid.UUID(str(value)) for value in data.get(key) or ())  # type: ignore[attr-defined]

        minimum = data.get("min_subtotal")
        return cls(int(minimum) if minimum is not None else None,  # type: ignore[call-overload]
                   ids("product_ids"), ids("category_ids"), ids("vendor_ids"),
                   frozenset(str(value) for value in data.get("customer_ids") or ()),  # type: ignore[attr-defined]
                   ids("company_ids"), bool(data.get("first_order")))


NO_CONDITIONS = Conditions()


@dataclass(frozen=True)
class Promotion:
    """A promotion as the rules see it."""

    id: uuid.UUID
    action: PromotionAction
    stacking: PromotionStacking = PromotionStacking.COMBINABLE
    priority: int = 0
    percent: Decimal | None = None
    amount: int | None = None
    buy_quantity: int | None = None
    get_quantity: int | None = None
    tiers: tuple[Tier, ...] = ()
    conditions: Conditions = NO_CONDITIONS
    vendor_id: uuid.UUID | None = None  # a vendor's own promotion: only its lines
    vendor_share_percent: Decimal = Decimal(0)


@dataclass(frozen=True)
class Line:
    """A cart line as the rules see it: its amount after volume pricing, before promotions."""

    product_id: uuid.UUID
    vendor_id: uuid.UUID | None
    category_ids: frozenset[uuid.UUID]
    quantity: int
    unit_price: int

    @property
    def amount(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Shopper:
    customer_id: str | None = None
    company_id: uuid.UUID | None = None
    has_ordered: bool = False


@dataclass(frozen=True)
class Applied:
    """What one promotion took off: its part per line (in the cart's line order) and whether it waives shipping."""

    promotion_id: uuid.UUID
    lines: tuple[int, ...]
    free_shipping: bool = False

    @property
    def amount(self) -> int:
        return sum(self.lines)


@dataclass(frozen=True)
class Outcome:
    applied: tuple[Applied, ...] = ()
    line_discounts: tuple[int, ...] = ()

    @property
    def free_shipping(self) -> bool:
        return any(item.free_shipping for item in self.applied)

    @property
    def total(self) -> int:
        return sum(self.line_discounts)


# --- validation ---------------------------------------------------------------------------------------------------

def normalize_code(code: str) -> str:
    """Codes are matched case-insensitively; stored as given (trimmed). 1–64 letters, digits, - and _."""
    cleaned = code.strip()
    if not cleaned or len(cleaned) > CODE_LENGTH or not all(ch.isalnum() or ch in "-_" for ch in cleaned):
        raise BadUserInput("a promotion code is 1–64 letters, digits, - or _", field="code")
    return cleaned


def validate(promotion: Promotion, *, currency_code: str | None, funding: PromotionFunding,
             starts_at: datetime | None, ends_at: datetime | None, usage_limit: int | None,
             per_customer_limit: int | None, max_cycles: int | None) -> None:
    """BAD_USER_INPUT (naming the field) for a promotion that cannot work as given."""
    action = promotion.action
    if action in PERCENT_ACTIONS or (action == PromotionAction.BUY_X_GET_Y and promotion.percent is not None):
        if promotion.percent is None:
            raise BadUserInput("a percent promotion needs a percent", field="percent")
        if not promotion.percent.is_finite() or not Decimal(0) < promotion.percent <= HUNDRED:
            raise BadUserInput("percent must be above 0 and at most 100", field="percent")
        exponent = promotion.percent.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < -4:
            raise BadUserInput("percent has at most 4 decimal places", field="percent")
    elif promotion.percent is not None:
        raise BadUserInput(f"{action.value} takes no percent", field="percent")
    if action in FIXED_ACTIONS:
        if promotion.amount is None or promotion.amount <= 0:
            raise BadUserInput("a fixed promotion needs a positive amount (minor units)", field="amount")
    elif promotion.amount is not None:
        raise BadUserInput(f"{action.value} takes no amount", field="amount")
    if action == PromotionAction.BUY_X_GET_Y:
        if not promotion.buy_quantity or promotion.buy_quantity < 1 or not promotion.get_quantity or \
                promotion.get_quantity < 1:
            raise BadUserInput("buy X get Y needs buyQuantity and getQuantity of at least 1", field="buyQuantity")
    elif promotion.buy_quantity is not None or promotion.get_quantity is not None:
        raise BadUserInput("only buy X get Y takes buyQuantity and getQuantity", field="buyQuantity")
    if action == PromotionAction.TIERED:
        if not promotion.tiers:
            raise BadUserInput("a tiered promotion needs tiers", field="tiers")
        previous = 0
        for tier in promotion.tiers:
            if tier.threshold <= previous or tier.amount <= 0 or tier.amount > tier.threshold:
                raise BadUserInput("tiers rise strictly by threshold (above 0), each taking off a positive amount "
                                   "no larger than its threshold", field="tiers")
            previous = tier.threshold
    elif promotion.tiers:
        raise BadUserInput("only a tiered promotion takes tiers", field="tiers")
    if (action in FIXED_ACTIONS or action == PromotionAction.TIERED) and not currency_code:
        raise BadUserInput("fixed and tiered amounts need a currencyCode", field="currencyCode")
    share = promotion.vendor_share_percent
    if not share.is_finite() or not Decimal(0) <= share <= HUNDRED:
        raise BadUserInput("vendorSharePercent must be between 0 and 100", field="vendorSharePercent")
    if funding == PromotionFunding.SPLIT and not Decimal(0) < share < HUNDRED:
        raise BadUserInput("a split promotion names the vendor's percent, above 0 and below 100",
                           field="vendorSharePercent")
    if action == PromotionAction.FREE_SHIPPING and promotion.vendor_id is not None:
        raise BadUserInput("free shipping is a store's promotion, not a vendor's", field="action")
    if funding != PromotionFunding.PLATFORM and promotion.vendor_id is None:
        raise BadUserInput("only a vendor's promotion (vendorId) can be funded by the vendor", field="funding")
    if starts_at is not None and ends_at is not None and starts_at >= ends_at:
        raise BadUserInput("startsAt must be before endsAt", field="startsAt")
    for name, value in (("usageLimit", usage_limit), ("perCustomerLimit", per_customer_limit),
                        ("maxCycles", max_cycles)):
        if value is not None and value < 1:
            raise BadUserInput(f"{name} must be at least 1", field=name)
    minimum = promotion.conditions.min_subtotal
    if minimum is not None and minimum < 0:
        raise BadUserInput("minSubtotal must not be negative", field="minSubtotal")


def vendor_share_of(funding: PromotionFunding, percent: Decimal | None) -> Decimal:
    if funding == PromotionFunding.PLATFORM:
        return Decimal(0)
    if funding == PromotionFunding.VENDOR:
        return HUNDRED
    return percent if percent is not None else Decimal(-1)  # validate() refuses a split without a percent


def check_vendor_targets(vendor_id: uuid.UUID, product_vendors: Iterable[uuid.UUID | None],
                         conditions: Conditions) -> None:
    """A vendor's promotion may only target its own products (and name no other vendor): FORBIDDEN otherwise."""
    if any(owner != vendor_id for owner in product_vendors):
        raise Forbidden("a vendor's promotion may only target its own products", field="productIds")
    if conditions.vendor_ids - {vendor_id}:
        raise Forbidden("a vendor's promotion may only target its own products", field="vendorIds")


def check_window(starts_at: datetime | None, ends_at: datetime | None, now: datetime) -> None:
    """PROMOTION_EXPIRED, saying whether it has ended or not started yet."""
    if starts_at is not None and now < starts_at:
        raise PromotionExpired(f"this promotion code starts at {starts_at.isoformat()}: it has not started yet",
                               reason="not_started", startsAt=starts_at.isoformat())
    if ends_at is not None and now >= ends_at:
        raise PromotionExpired(f"this promotion code ended at {ends_at.isoformat()}", reason="expired",
                               endsAt=ends_at.isoformat())


def check_uses(usage_limit: int | None, times_used: int, per_customer_limit: int | None, customer_uses: int) -> None:
    """PROMOTION_EXHAUSTED, saying which limit is reached."""
    if usage_limit is not None and times_used >= usage_limit:
        raise PromotionExhausted("this promotion code has no uses left", limit="usage_limit")
    if per_customer_limit is not None and customer_uses >= per_customer_limit:
        raise PromotionExhausted("you have used this promotion code as often as it allows",
                                 limit="per_customer_limit")


# --- eligibility and actions --------------------------------------------------------------------------------------

def _matches(line: Line, conditions: Conditions) -> bool:
    """The line is one of the promotion's products / categories / vendors (each list given is one test)."""
    if conditions.product_ids and line.product_id not in conditions.product_ids:
        return False
    if conditions.category_ids and not line.category_ids & conditions.category_ids:
        return False
    return not (conditions.vendor_ids and line.vendor_id not in conditions.vendor_ids)


def eligible(promotion: Promotion, lines: Sequence[Line], shopper: Shopper) -> bool:
    conditions = promotion.conditions
    own = [line for line in lines if promotion.vendor_id is None or line.vendor_id == promotion.vendor_id]
    if not own:
        return False
    if conditions.min_subtotal is not None and sum(line.amount for line in lines) < conditions.min_subtotal:
        return False
    if not any(_matches(line, conditions) for line in own):
        return False
    if conditions.customer_ids and shopper.customer_id not in conditions.customer_ids:
        return False
    if conditions.company_ids and shopper.company_id not in conditions.company_ids:
        return False
    return not (conditions.first_order and (shopper.customer_id is None or shopper.has_ordered))


def targets(promotion: Promotion, lines: Sequence[Line]) -> list[bool]:
    """Which lines the promotion's action reaches (module rules)."""
    own = [promotion.vendor_id is None or line.vendor_id == promotion.vendor_id for line in lines]
    if promotion.action in LINE_ACTIONS:
        return [mine and _matches(line, promotion.conditions) for mine, line in zip(own, lines, strict=True)]
    return own


def _percent_of(amount: int, percent: Decimal) -> int:
    return min(amount, round_half_up(Decimal(amount) * percent / HUNDRED))


def _spread(total: int, left: Sequence[int], reach: Sequence[bool]) -> tuple[int, ...]:
    """`total` (≤ what the reached lines have left) over the reached lines by largest remainder on what they left."""
    indexes = [index for index, reached in enumerate(reach) if reached]
    parts = allocate(total, [left[index] for index in indexes]) if indexes else []
    spread = [0] * len(left)
    for index, part in zip(indexes, parts, strict=True):
        spread[index] = part
    return tuple(spread)


def _buy_x_get_y(promotion: Promotion, lines: Sequence[Line], left: Sequence[int],
                 reach: Sequence[bool]) -> tuple[int, ...]:
    buy, get = promotion.buy_quantity or 0, promotion.get_quantity or 0
    percent = promotion.percent if promotion.percent is not None else HUNDRED
    units = sum(line.quantity for line, reached in zip(lines, reach, strict=True) if reached)
    free = units // (buy + get) * get if buy + get else 0
    parts = [0] * len(lines)
    by_price = sorted((index for index, reached in enumerate(reach) if reached),
                      key=lambda index: (lines[index].unit_price, index))
    for index in by_price:
        if free <= 0:
            break
        count = min(free, lines[index].quantity)
        free -= count
        unit_parts = allocate(left[index], [1] * lines[index].quantity)  # what each unit has left
        parts[index] = _percent_of(sum(sorted(unit_parts)[:count]), percent)
    return tuple(parts)


def action_parts(promotion: Promotion, lines: Sequence[Line], left: Sequence[int]) -> Applied:
    """What the promotion takes off each line, given what each line has left."""
    reach = targets(promotion, lines)
    reached = sum(amount for amount, hit in zip(left, reach, strict=True) if hit)
    action = promotion.action
    if action == PromotionAction.FREE_SHIPPING:
        return Applied(promotion.id, tuple(0 for _ in lines), free_shipping=True)
    if action == PromotionAction.BUY_X_GET_Y:
        return Applied(promotion.id, _buy_x_get_y(promotion, lines, left, reach))
    if action in PERCENT_ACTIONS:
        total = _percent_of(reached, promotion.percent or Decimal(0))
    elif action in FIXED_ACTIONS:
        total = min(reached, promotion.amount or 0)
    else:  # tiered
        reached_tiers = [tier for tier in promotion.tiers if reached >= tier.threshold]
        total = min(reached, max(reached_tiers, key=lambda tier: tier.threshold).amount) if reached_tiers else 0
    return Applied(promotion.id, _spread(total, left, reach))


def _apply_in_order(promotions: Sequence[Promotion], lines: Sequence[Line]) -> tuple[Applied, ...]:
    left = [line.amount for line in lines]
    applied = []
    for promotion in promotions:
        parts = action_parts(promotion, lines, left)
        left = [amount - part for amount, part in zip(left, parts.lines, strict=True)]
        applied.append(parts)
    return tuple(applied)


def _saving(applied: Sequence[Applied], shipping: int) -> int:
    return sum(item.amount for item in applied) + (shipping if any(item.free_shipping for item in applied) else 0)


def best(promotions: Iterable[Promotion], lines: Sequence[Line], shopper: Shopper, shipping: int = 0) -> Outcome:
    """The promotions that apply to the cart and what each takes off (module rules: eligibility, stacking
    precedence, allocation). `shipping`: the price of the chosen option, to weigh free shipping."""
    candidates = [promotion for promotion in promotions if eligible(promotion, lines, shopper)]
    if not candidates:
        return Outcome((), tuple(0 for _ in lines))
    alone = {promotion.id: _saving(_apply_in_order([promotion], lines), shipping) for promotion in candidates}
    ordered = sorted(candidates, key=lambda promotion: (-promotion.priority, -alone[promotion.id], str(promotion.id)))
    rank = {promotion.id: index for index, promotion in enumerate(ordered)}
    sets = [[promotion] for promotion in ordered if promotion.stacking == PromotionStacking.EXCLUSIVE]
    combinable = [promotion for promotion in ordered if promotion.stacking == PromotionStacking.COMBINABLE]
    if combinable:
        sets.append(combinable)
    scored = [(_apply_in_order(chosen, lines), chosen) for chosen in sets]
    applied, _ = min(scored, key=lambda item: (-_saving(item[0], shipping), rank[item[1][0].id]))
    kept = tuple(item for item in applied if item.amount > 0 or item.free_shipping)
    discounts = tuple(sum(item.lines[index] for item in kept) for index in range(len(lines)))
    return Outcome(kept, discounts)


@dataclass(frozen=True)
class Funded:
    platform: int
    vendor: int


def funded(part: int, vendor_share_percent: Decimal) -> Funded:
    """Who funds a line's part of a discount (module rules): the vendor's share rounded half up, the rest the
    platform's; they sum exactly to `part`."""
    vendor = min(part, round_half_up(Decimal(part) * vendor_share_percent / HUNDRED))
    return Funded(part - vendor, vendor)

