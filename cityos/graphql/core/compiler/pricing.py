"""Volume pricing in the compiled read path: `Variant.tiers(currencyCode)`, `Variant.unitPrice(currencyCode,
quantity)` and `PriceTier.unitAmount` as rows selected for their parent's row.

The unit price is the catalog's one pricing rule, `rules.unit_price`, written in SQL next to it
(`cityos.domain.catalog.queries.unit_price`, held equal to the Python rule by a hypothesis property test on random
prices, tiers and quantities) rather than computed in Python over the compiled JSON: a compiled root field's text
goes into the response unparsed, and a price computed in Python would need the tiers parsed back out of it and the
response re-serialised, which is the per-field cost compiling removes. Company price lists do not enter
`Variant.unitPrice` (its resolver applies the variant's volume tiers only: a company buyer's price-list prices
are cart prices), so no principal shape needs to fall back for it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cityos.domain.catalog import queries as catalog
from cityos.domain.catalog.rules import MAX_LINE_QUANTITY

TIER_TABLE = catalog.PRICE_TIER
PRICE_TABLE = catalog.PRICE


def _currency(given: dict[str, Any]) -> str:
    return str(given["currencyCode"]).lower()


def tier_arguments(given: dict[str, Any]) -> dict[str, Any]:
    return {"currency": _currency(given)}


def unit_price_arguments(given: dict[str, Any]) -> dict[str, Any]:
    """As `Variant.unit_price` takes them: `rules.validate_quantity` rejects a quantity outside 1…10,000."""
    quantity = given["quantity"]
    if not 1 <= quantity <= MAX_LINE_QUANTITY:
        raise ValueError("the resolver reports the quantity")
    return {"currency": _currency(given), "quantity": int(quantity)}


def _tiers_of(variant: Any, currency: str) -> Any:
    return catalog.variant_tiers(tenant_id=variant.c.tenant_id, variant_id=variant.c.id,
                                 product_id=variant.c.product_id, currency_code=currency)


def tier_rows(variant: Any, arguments: dict[str, Any]) -> Any:
    """`Variant._tier_rows`: the variant's own tiers (else its product's) in the currency."""
    tiers = _tiers_of(variant, arguments["currency"])
    return select(tiers)


def tier_order(rows: Any) -> list[Any]:
    """Loaded by (created_at, id), then sorted by min_quantity (a stable sort)."""
    return [rows.c.min_quantity, rows.c.created_at, rows.c.id]


def unit_price_rows(variant: Any, arguments: dict[str, Any]) -> Any:
    """The variant's list price in the currency (the first by (created_at, id), as the loader returns them) as
    `Money(amount=unit_price(…), currency_code=…)`; no row (null) without one."""
    price = PRICE_TABLE.alias()
    currency = arguments["currency"]
    amount = catalog.unit_price(price.c.amount, arguments["quantity"], _tiers_of(variant, currency))
    return select(amount.label("amount"), price.c.currency_code, price.c.created_at, price.c.id).where(
        price.c.variant_id == variant.c.id, price.c.tenant_id == variant.c.tenant_id,
        price.c.currency_code == currency)


def price_order(rows: Any) -> list[Any]:
    return [rows.c.created_at, rows.c.id]


def unit_amount_rows(tier: Any, _arguments: dict[str, Any]) -> Any:
    """`optional_money(row.unit_amount, row.currency_code)`: null for a percentage tier."""
    return select(tier.c.unit_amount.label("amount"), tier.c.currency_code).where(tier.c.unit_amount.is_not(None))
