"""Promotion rules: eligibility, each action, the stacking precedence, the allocation to lines and the funding split
(property tests: never negative, never above the lines, independent of creation order, exact sums)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.domain.marketplace.rules import Commission, PromotionFunding, reversed_share
from cityos.domain.promotions import rules
from cityos.domain.promotions.models import PromotionAction as A
from cityos.domain.promotions.models import PromotionFunding as F
from cityos.domain.promotions.models import PromotionStacking as S
from cityos.errors import BadUserInput, Forbidden, PromotionExhausted, PromotionExpired

V1, V2 = uuid.UUID(int=1), uuid.UUID(int=2)
P1, P2, P3 = uuid.UUID(int=11), uuid.UUID(int=12), uuid.UUID(int=13)
C1 = uuid.UUID(int=21)


def line(product: uuid.UUID = P1, vendor: uuid.UUID | None = V1, quantity: int = 1, unit: int = 1000,
         categories: frozenset[uuid.UUID] = frozenset()) -> rules.Line:
    return rules.Line(product, vendor, categories, quantity, unit)


def promo(action: A, n: int = 1, **fields: object) -> rules.Promotion:
    return rules.Promotion(uuid.UUID(int=100 + n), action, **fields)  # type: ignore[arg-type]


SHOPPER = rules.Shopper("alice")


def test_each_action() -> None:
    lines = [line(P1, V1, 2, 1000), line(P2, V2, 1, 3000)]  # 2000 + 3000
    assert rules.best([promo(A.ORDER_PERCENT, percent=Decimal(10))], lines, SHOPPER).line_discounts == (200, 300)
    assert rules.best([promo(A.ORDER_FIXED, amount=1001)], lines, SHOPPER).line_discounts == (400, 601)
    only_p2 = rules.Conditions(product_ids=frozenset({P2}))
    assert rules.best([promo(A.LINES_PERCENT, percent=Decimal(50), conditions=only_p2)], lines,
                      SHOPPER).line_discounts == (0, 1500)
    assert rules.best([promo(A.LINES_FIXED, amount=5000, conditions=only_p2)], lines,
                      SHOPPER).line_discounts == (0, 3000)  # never above the lines it applies to
    tiers = (rules.Tier(1000, 100), rules.Tier(4000, 250), rules.Tier(9000, 900))
    assert rules.best([promo(A.TIERED, tiers=tiers)], lines, SHOPPER).total == 250
    shipping = rules.best([promo(A.FREE_SHIPPING)], lines, SHOPPER, shipping=500)
    assert shipping.free_shipping and shipping.total == 0
    # buy 2 get 1: 3 units → the cheapest one free
    assert rules.best([promo(A.BUY_X_GET_Y, buy_quantity=2, get_quantity=1)], lines, SHOPPER).line_discounts == \
        (1000, 0)
    half = promo(A.BUY_X_GET_Y, buy_quantity=1, get_quantity=1, percent=Decimal(50))
    assert rules.best([half], lines, SHOPPER).line_discounts == (500, 0)


def test_each_condition() -> None:
    lines = [line(P1, V1, 1, 2000, frozenset({C1})), line(P2, V2, 1, 3000)]
    ten = {"action": A.ORDER_PERCENT, "percent": Decimal(10)}

    def applies(conditions: rules.Conditions, shopper: rules.Shopper = SHOPPER) -> bool:
        return rules.eligible(promo(conditions=conditions, **ten), lines, shopper)  # type: ignore[arg-type]

    assert applies(rules.Conditions(min_subtotal=5000)) and not applies(rules.Conditions(min_subtotal=5001))
    assert applies(rules.Conditions(product_ids=frozenset({P2})))
    assert not applies(rules.Conditions(product_ids=frozenset({P3})))
    assert applies(rules.Conditions(category_ids=frozenset({C1})))
    assert not applies(rules.Conditions(category_ids=frozenset({uuid.UUID(int=99)})))
    assert applies(rules.Conditions(vendor_ids=frozenset({V2})))
    assert not applies(rules.Conditions(vendor_ids=frozenset({uuid.UUID(int=98)})))
    assert applies(rules.Conditions(customer_ids=frozenset({"alice"})))
    assert not applies(rules.Conditions(customer_ids=frozenset({"bob"})))
    assert applies(rules.Conditions(company_ids=frozenset({C1})), rules.Shopper("alice", C1))
    assert not applies(rules.Conditions(company_ids=frozenset({C1})))
    assert applies(rules.Conditions(first_order=True))
    assert not applies(rules.Conditions(first_order=True), rules.Shopper("alice", None, True))
    assert not applies(rules.Conditions(first_order=True), rules.Shopper(None))
    # A vendor's promotion reaches only its lines; with none of them in the cart it does not apply.
    vendor_promo = promo(A.ORDER_PERCENT, percent=Decimal(10), vendor_id=V2)
    assert rules.best([vendor_promo], lines, SHOPPER).line_discounts == (0, 300)
    assert not rules.eligible(vendor_promo, lines[:1], SHOPPER)


def test_stacking_precedence() -> None:
    lines = [line(P1, V1, 1, 10000)]
    ten = promo(A.ORDER_PERCENT, 1, percent=Decimal(10))
    five_off = promo(A.ORDER_FIXED, 2, amount=500)
    exclusive_15 = promo(A.ORDER_PERCENT, 3, percent=Decimal(15), stacking=S.EXCLUSIVE)
    # combinables stack: 10 % of 10000, then 500 off what is left
    assert rules.best([ten, five_off], lines, SHOPPER).total == 1500
    # an exclusive one wins only when it saves more than the combinables together
    assert rules.best([ten, five_off, exclusive_15], lines, SHOPPER).total == 1500
    exclusive_20 = promo(A.ORDER_PERCENT, 4, percent=Decimal(20), stacking=S.EXCLUSIVE)
    outcome = rules.best([ten, five_off, exclusive_20], lines, SHOPPER)
    assert [item.promotion_id for item in outcome.applied] == [exclusive_20.id] and outcome.total == 2000
    # priority orders the combinables: the fixed amount first, then 10 % of what is left
    first = promo(A.ORDER_FIXED, 5, amount=500, priority=1)
    assert rules.best([ten, first], lines, SHOPPER).line_discounts == (500 + 950,)


def test_validation_and_errors() -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    checks = {"currency_code": "usd", "funding": F.PLATFORM, "starts_at": None, "ends_at": None,
              "usage_limit": None, "per_customer_limit": None, "max_cycles": None}
    for percent in (Decimal(0), Decimal(-1), Decimal(101), Decimal("NaN")):
        with pytest.raises(BadUserInput):
            rules.validate(promo(A.ORDER_PERCENT, percent=percent), **checks)  # type: ignore[arg-type]
    with pytest.raises(BadUserInput):
        rules.validate(promo(A.ORDER_FIXED, amount=100), **{**checks, "currency_code": None})  # type: ignore[arg-type]
    with pytest.raises(BadUserInput):
        rules.validate(promo(A.ORDER_FIXED, amount=100), **{**checks, "funding": F.VENDOR})  # type: ignore[arg-type]
    with pytest.raises(BadUserInput):  # free shipping is the store's, never a vendor's
        rules.validate(promo(A.FREE_SHIPPING, vendor_id=V1), **checks)  # type: ignore[arg-type]
    with pytest.raises(Forbidden):
        rules.check_vendor_targets(V1, [V1, V2], rules.Conditions())
    rules.check_vendor_targets(V1, [V1], rules.Conditions(vendor_ids=frozenset({V1})))
    with pytest.raises(PromotionExpired) as later:
        rules.check_window(now + timedelta(days=1), None, now)
    assert later.value.extensions["reason"] == "not_started"
    with pytest.raises(PromotionExpired) as ended:
        rules.check_window(None, now, now)
    assert ended.value.extensions["reason"] == "expired"
    with pytest.raises(PromotionExhausted):
        rules.check_uses(1, 1, None, 0)
    with pytest.raises(PromotionExhausted) as mine:
        rules.check_uses(None, 9, 1, 1)
    assert mine.value.extensions["limit"] == "per_customer_limit"
    assert rules.normalize_code("  Summer-10 ") == "Summer-10"
    with pytest.raises(BadUserInput):
        rules.normalize_code("no spaces")


lines_strategy = st.lists(st.builds(
    line, st.sampled_from([P1, P2, P3]), st.sampled_from([V1, V2, None]), st.integers(1, 5), st.integers(0, 20000),
    st.sampled_from([frozenset(), frozenset({C1})])), min_size=1, max_size=6)


@st.composite
def promotions_strategy(draw: st.DrawFn) -> list[rules.Promotion]:
    found = []
    for n in range(draw(st.integers(0, 5))):
        action = draw(st.sampled_from(list(A)))
        fields: dict[str, object] = {
            "stacking": draw(st.sampled_from(list(S))), "priority": draw(st.integers(0, 2)),
            "vendor_id": draw(st.sampled_from([None, V1, V2])),
            "conditions": rules.Conditions(product_ids=draw(st.sampled_from([frozenset(), frozenset({P1})])),
                                           min_subtotal=draw(st.sampled_from([None, 0, 5000])))}
        if action in (A.ORDER_PERCENT, A.LINES_PERCENT):
            fields["percent"] = Decimal(draw(st.integers(1, 10000))) / 100
        if action in (A.ORDER_FIXED, A.LINES_FIXED):
            fields["amount"] = draw(st.integers(1, 30000))
        if action == A.BUY_X_GET_Y:
            fields |= {"buy_quantity": draw(st.integers(1, 3)), "get_quantity": draw(st.integers(1, 2)),
                       "percent": draw(st.sampled_from([None, Decimal(50)]))}
        if action == A.TIERED:
            fields["tiers"] = (rules.Tier(1000, 100), rules.Tier(5000, 700))
        found.append(promo(action, n, **fields))
    return found


@given(lines_strategy, promotions_strategy(), st.randoms(), st.integers(0, 2000))
def test_never_negative_never_above_the_lines_order_free_and_exact(lines: list[rules.Line],
                                                                    promotions: list[rules.Promotion],
                                                                    random: object, shipping: int) -> None:
    outcome = rules.best(promotions, lines, SHOPPER, shipping)
    for index, current in enumerate(lines):
        assert 0 <= outcome.line_discounts[index] <= current.amount
        assert outcome.line_discounts[index] == sum(item.lines[index] for item in outcome.applied)
    for item in outcome.applied:
        assert all(part >= 0 for part in item.lines)
        promotion = next(p for p in promotions if p.id == item.promotion_id)
        reach = rules.targets(promotion, lines)  # nothing off a line the promotion does not reach
        assert all(part == 0 for part, reached in zip(item.lines, reach, strict=True) if not reached)
        assert rules.eligible(promotion, lines, SHOPPER)
    shuffled = list(promotions)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert rules.best(shuffled, lines, SHOPPER, shipping) == outcome  # creation order never matters
    exclusive = [item for item in outcome.applied
                 if next(p for p in promotions if p.id == item.promotion_id).stacking == S.EXCLUSIVE]
    assert not exclusive or len(outcome.applied) == 1


@given(st.integers(0, 10**7), st.integers(0, 1000000))
def test_funding_split_sums_exactly(part: int, share: int) -> None:
    funded = rules.funded(part, Decimal(share) / 10000)
    assert funded.platform + funded.vendor == part and funded.platform >= 0 and funded.vendor >= 0


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 100), st.integers(1, 10), st.data())
def test_ledger_funding_and_refunds_stay_exact(paid: int, discount: int, vendor_percent: int, quantity: int,
                                               data: st.DataObject) -> None:
    vendor_funded = discount * vendor_percent // 100
    funding = PromotionFunding.of_line(paid, discount, vendor_funded)
    commission = data.draw(st.integers(0, funding.commission_base))
    share = funding.share(Commission(commission, funding.commission_base - commission, None))
    assert share.commission + share.vendor == paid and share.vendor >= 0
    # refunding every unit, in any steps, reverses exactly the sale
    cuts = sorted(data.draw(st.lists(st.integers(1, quantity - 1), unique=True, max_size=3))) if quantity > 1 else []
    bounds = [0, *cuts, quantity]
    parts = [reversed_share(paid, share.commission, quantity, start, end - start)
             for start, end in itertools.pairwise(bounds)]
    assert sum(part.commission for part in parts) == share.commission
    assert sum(part.vendor for part in parts) == share.vendor
    assert all(part.vendor >= 0 for part in parts)


def test_platform_funding_keeps_the_vendor_share_vendor_funding_shrinks_it() -> None:
    platform = PromotionFunding.of_line(9000, 1000, 0)
    vendor = PromotionFunding.of_line(9000, 1000, 1000)
    assert platform.commission_base == 10000 and vendor.commission_base == 9000
    taken = Commission(1000, 9000, None)  # 10 % of 10000
    assert platform.share(taken).vendor == 9000 and platform.share(taken).commission == 0
    taken = Commission(900, 8100, None)  # 10 % of 9000
    assert vendor.share(taken).vendor == 8100 and vendor.share(taken).commission == 900
