"""Pure rules of store set-up: tax inclusive and exclusive, shipping prices (free above, weight bands), per-vendor
shipping in one checkout, and the split of a cart across vendors with their own shipping."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityos.domain.commerce import rules
from cityos.errors import BadUserInput

RATES = st.decimals(min_value=Decimal(0), max_value=Decimal("0.9999"), places=4)
AMOUNTS = st.integers(min_value=0, max_value=10**9)
VENDORS = [uuid.UUID(int=index + 1) for index in range(4)]


def test_tax_exclusive_and_inclusive_half_cents() -> None:
    assert rules.tax_amount(8200, Decimal("0.0725")) == 595  # 594.5 rounds half up
    assert rules.tax_amount(1190, Decimal("0.19"), inclusive=True) == 190  # 1190 / 1.19 = 1000 exactly
    assert rules.tax_amount(1000, Decimal("0.19"), inclusive=True) == 160  # 1000 / 1.19 = 840.34 → 840
    assert rules.tax_amount(0, Decimal("0.19"), inclusive=True) == 0


@given(AMOUNTS, RATES)
def test_inclusive_tax_is_the_part_the_rate_accounts_for(taxable: int, rate: Decimal) -> None:
    tax = rules.tax_amount(taxable, rate, inclusive=True)
    assert 0 <= tax <= taxable
    net = taxable - tax
    # adding the exclusive tax to the net gives back the gross, within the half cent of each rounding
    assert abs(net + net * rate - taxable) <= 1 + rate


@given(AMOUNTS, AMOUNTS, RATES)
def test_tax_never_falls_when_the_taxable_amount_grows(a: int, b: int, rate: Decimal) -> None:
    low, high = sorted((a, b))
    for inclusive in (False, True):
        assert rules.tax_amount(low, rate, inclusive) <= rules.tax_amount(high, rate, inclusive)


@pytest.mark.parametrize("rate", [Decimal(-1), Decimal(1), Decimal("0.12345"), Decimal("NaN")])
def test_bad_tax_rates(rate: Decimal) -> None:
    with pytest.raises(BadUserInput):
        rules.validate_tax_rate(rate, "taxRate")


def test_totals_inclusive_do_not_add_the_tax() -> None:
    line = rules.PricedLine(uuid.uuid4(), None, 1, 1190, 1190)
    totals = rules.cart_totals([line], 0, Decimal("0.19"), tax_inclusive=True)
    assert (totals.tax_total, totals.total) == (190, 1190)
    assert rules.cart_totals([line], 0, Decimal("0.19")).total == 1190 + 226


BANDS = (rules.WeightBand(1000, 300), rules.WeightBand(5000, 700), rules.WeightBand(None, 1500))


def test_shipping_price_flat_free_above_and_bands() -> None:
    flat = rules.ShippingRate(500, free_above=10000)
    assert rules.shipping_price(flat, 9999, 0) == 500
    assert rules.shipping_price(flat, 10000, 0) == 0
    assert rules.shipping_price(rules.ShippingRate(0, min_subtotal=5000), 4999, 0) is None
    banded = rules.ShippingRate(0, bands=BANDS)
    assert [rules.shipping_price(banded, 1, grams) for grams in (0, 1000, 1001, 5000, 5001, 10**6)] == \
        [300, 300, 700, 700, 1500, 1500]
    closed = rules.ShippingRate(0, bands=BANDS[:2])
    assert rules.shipping_price(closed, 1, 5001) is None  # heavier than every band: not offered


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6))
def test_band_prices_never_fall_as_parcels_get_heavier(a: int, b: int) -> None:
    light, heavy = sorted((a, b))
    rate = rules.ShippingRate(0, bands=BANDS)
    assert rules.shipping_price(rate, 1, light) <= rules.shipping_price(rate, 1, heavy)  # type: ignore[operator]


@pytest.mark.parametrize("bands", [
    [rules.WeightBand(None, 1), rules.WeightBand(10, 1)],  # open band not last
    [rules.WeightBand(10, 1), rules.WeightBand(10, 2)],  # not rising
    [rules.WeightBand(0, 1)],  # zero limit
    [rules.WeightBand(10, -1)],  # negative amount
])
def test_bad_weight_bands(bands: list[rules.WeightBand]) -> None:
    with pytest.raises(BadUserInput):
        rules.validate_weight_bands(bands)


def test_each_vendor_with_its_own_option_is_charged_on_its_own() -> None:
    parcels = [rules.Parcel(VENDORS[0], 4000, 1200), rules.Parcel(VENDORS[1], 3000, 500),
               rules.Parcel(VENDORS[2], 2000, 100)]
    store = rules.ShippingRate(500, free_above=10000)
    quote = rules.quote_shipping(parcels, store, {VENDORS[0]: rules.ShippingRate(0, bands=BANDS)})
    assert quote == rules.ShippingQuote(500, {VENDORS[0]: 700})  # the others ship together at the store's price
    assert quote is not None and quote.total == 1200
    every = {vendor: rules.ShippingRate(250) for vendor in VENDORS[:3]}
    assert rules.quote_shipping(parcels, store, every) == rules.ShippingQuote(0, dict.fromkeys(VENDORS[:3], 250))
    refused = {VENDORS[0]: rules.ShippingRate(0, bands=BANDS[:1])}  # 1200 g is over its only band
    assert rules.quote_shipping(parcels, store, refused) is None


@st.composite
def carts(draw: st.DrawFn) -> tuple[list[rules.PricedLine], dict[uuid.UUID, int], int, int]:
    lines = [rules.PricedLine(uuid.uuid4(), draw(st.sampled_from([None, *VENDORS])),
                              draw(st.integers(1, 20)), price, price - draw(st.integers(0, price)))
             for price in draw(st.lists(st.integers(0, 100_000), min_size=1, max_size=8))]
    vendors = {line.vendor_id for line in lines if line.vendor_id is not None}
    own = {vendor: draw(st.integers(0, 5000)) for vendor in vendors if draw(st.booleans())}
    shared_vendors = {line.vendor_id for line in lines} - set(own)
    shared = draw(st.integers(0, 5000)) if shared_vendors else 0
    return lines, own, shared, draw(st.integers(0, 10**6))


@given(carts(), st.booleans())
def test_split_with_own_shipping_sums_exactly_and_gives_each_vendor_its_own(
        cart: tuple[list[rules.PricedLine], dict[uuid.UUID, int], int, int], inclusive: bool) -> None:
    lines, own, shared, tax = cart
    subtotal = sum(line.subtotal for line in lines)
    discount = sum(line.discount for line in lines)
    totals = rules.Totals(subtotal, discount, shared + sum(own.values()), tax, inclusive)
    parts = rules.split_by_vendor(lines, totals, own)
    for column in ("subtotal", "discount_total", "shipping_total", "tax_total", "total"):
        assert sum(getattr(part, column) for part in parts.values()) == getattr(totals, column), column
    for vendor, amount in own.items():
        assert parts[vendor].shipping_total == amount
