"""Cart and checkout use cases over one tenant-scoped connection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.catalog import rules as pricing
from cityos.domain.catalog.models import (
    PriceList,
    PriceListEntry,
    PriceTier,
    Product,
    ProductCategory,
    Variant,
    VariantPrice,
)
from cityos.domain.catalog.service import tiers_from_rows
from cityos.domain.commerce import rules
from cityos.domain.commerce.models import (
    Cart,
    CartLine,
    CheckoutAttempt,
    InventoryReservation,
    Region,
    RegionState,
    ShippingOption,
)
from cityos.domain.kernel import validate_email
from cityos.domain.platform.outbox import enqueue
from cityos.domain.promotions import service as promotions
from cityos.errors import BadUserInput, NotFound, OutOfStock

CART = table_of(Cart)
LINE = table_of(CartLine)
RESERVATION = table_of(InventoryReservation)
ATTEMPT = table_of(CheckoutAttempt)
VARIANT = table_of(Variant)
PRODUCT = table_of(Product)
PRICE = table_of(VariantPrice)
TIER = table_of(PriceTier)
PRICE_LIST = table_of(PriceList)
PRICE_LIST_ENTRY = table_of(PriceListEntry)
PRODUCT_CATEGORY = table_of(ProductCategory)
OPTION = table_of(ShippingOption)
REGION = table_of(Region)
STATE = table_of(RegionState)
MAX_LINES = 100
ADDRESS_FIELDS = ("first_name", "last_name", "address_1", "city", "province", "postal_code", "country_code")


@dataclass(frozen=True)
class PricedCart:
    cart: Row[Any]
    lines: list[tuple[Any, rules.PricedLine]]  # (cart line joined with variant and product, its prices)
    totals: rules.Totals
    option: Row[Any] | None
    shipping: rules.ShippingQuote | None = None  # the chosen option's price for this cart; None: not offered
    promotions: promotions.Evaluation = promotions.NO_PROMOTIONS  # what the cart's promotions take off
    shipping_waived: int = 0  # what the chosen option would cost without a free-shipping promotion


async def load_cart(connection: AsyncConnection, cart_id: uuid.UUID, *, lock: bool = False) -> Row[Any]:
    statement = select(CART).where(CART.c.id == cart_id)
    row = (await connection.execute(statement.with_for_update() if lock else statement)).first()
    if row is None:
        raise NotFound("no cart with that id")
    return row


def _require_open(cart: Row[Any]) -> None:
    if cart.status != "open":
        raise BadUserInput("this cart is already checked out", field="cartId")


async def create_cart(connection: AsyncConnection, *, tenant_id: uuid.UUID, store_id: uuid.UUID,
                      currency_code: str, customer_id: str | None, email: str | None,
                      company_id: uuid.UUID | None = None, region_id: uuid.UUID | None = None) -> Row[Any]:
    """A cart in a region: the one named (its currency is the cart's), else the oldest region selling in
    `currency_code`."""
    if region_id is not None:
        region = (await connection.execute(select(REGION).where(REGION.c.id == region_id))).first()
        if region is None:
            raise BadUserInput("no region with that id", field="regionId")
    else:
        region = (await connection.execute(select(REGION).where(REGION.c.currency_code == currency_code.lower())
                                           .order_by(REGION.c.created_at).limit(1))).first()
    if region is None:
        raise BadUserInput(f"no region sells in {currency_code.upper()}", field="currencyCode")
    return (await connection.execute(insert(CART).values(
        tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, region_id=region.id,
        currency_code=region.currency_code, customer_id=customer_id, company_id=company_id,
        email=validate_email(email) if email else None).returning(*CART.c))).one()


async def return_reserved_units(connection: AsyncConnection, cart_id: uuid.UUID) -> None:
    """Give a cart's reserved units back to stock."""
    released = (await connection.execute(delete(RESERVATION).where(RESERVATION.c.cart_id == cart_id)
                                         .returning(RESERVATION.c.variant_id, RESERVATION.c.quantity))).all()
    for variant_id, quantity in released:
        await connection.execute(update(VARIANT).where(VARIANT.c.id == variant_id)
                                 .values(inventory_quantity=VARIANT.c.inventory_quantity + quantity))


async def release_reservations(connection: AsyncConnection, cart: Row[Any]) -> None:
    """The cart is being changed: its reserved units go back to stock and its checkout ends (the attempt is
    superseded and its PaymentIntent canceled at Stripe by the outbox, after this transaction commits)."""
    await return_reserved_units(connection, cart.id)
    await supersede_checkout(connection, cart, "the cart changed after its checkout started")


async def supersede_checkout(connection: AsyncConnection, cart: Row[Any], reason: str) -> None:
    """End the cart's current checkout: its pending attempt becomes superseded and its PaymentIntent is canceled
    through Stripe by the outbox dispatcher (never under this row lock). If the customer pays it anyway (another
    tab), the payment_intent.succeeded webhook refunds it."""
    if not cart.payment_intent_id:
        return
    attempt = (await connection.execute(update(ATTEMPT).where(
        ATTEMPT.c.cart_id == cart.id, ATTEMPT.c.payment_intent_id == cart.payment_intent_id,
        ATTEMPT.c.status == "pending").values(status="superseded", reason=reason, updated_at=func.now())
        .returning(ATTEMPT.c.id))).scalar()
    await enqueue(connection, tenant_id=cart.tenant_id, topic="stripe.cancel_payment_intent",
                  payload={"payment_intent_id": cart.payment_intent_id,
                           "attempt_id": str(attempt) if attempt else None})
    await connection.execute(update(CART).where(CART.c.id == cart.id)
                             .values(payment_intent_id=None, updated_at=func.now()))


async def _sellable_variant(connection: AsyncConnection, cart: Row[Any], variant_id: uuid.UUID) -> Row[Any]:
    row = (await connection.execute(
        select(VARIANT, PRODUCT.c.status, PRODUCT.c.store_id.label("product_store_id"))
        .join(PRODUCT, and_(PRODUCT.c.tenant_id == VARIANT.c.tenant_id, PRODUCT.c.id == VARIANT.c.product_id))
        .where(VARIANT.c.id == variant_id))).first()
    if row is None or row.product_store_id != cart.store_id or row.status != "published":
        raise BadUserInput("unknown variant for this store", field="variantId")
    price = (await connection.execute(select(PRICE.c.amount).where(
        PRICE.c.variant_id == variant_id, PRICE.c.currency_code == cart.currency_code))).first()
    if price is None:
        raise BadUserInput(f"this variant has no price in {cart.currency_code.upper()}", field="variantId")
    return row


async def set_line_quantity(connection: AsyncConnection, cart: Row[Any], variant_id: uuid.UUID, quantity: int,
                            *, add: bool) -> None:
    """Add `quantity` units of a variant (add=True) or set its line to `quantity`."""
    _require_open(cart)
    pricing.validate_quantity(quantity)
    variant = await _sellable_variant(connection, cart, variant_id)
    current = (await connection.execute(select(LINE.c.quantity).where(
        LINE.c.cart_id == cart.id, LINE.c.variant_id == variant_id))).scalar()
    wanted = pricing.validate_quantity((current or 0) + quantity if add else quantity)
    if current is None:
        count = (await connection.execute(select(func.count()).where(LINE.c.cart_id == cart.id))).scalar_one()
        if count >= MAX_LINES:
            raise BadUserInput(f"a cart holds at most {MAX_LINES} lines", field="variantId")
    await release_reservations(connection, cart)
    if wanted > variant.inventory_quantity:
        raise OutOfStock(f"only {variant.inventory_quantity} left of {variant.sku}", variantId=str(variant_id))
    statement = pg_insert(LINE).values(tenant_id=cart.tenant_id, id=uuid.uuid4(), cart_id=cart.id,
                                       variant_id=variant_id, quantity=wanted)
    await connection.execute(statement.on_conflict_do_update(
        index_elements=["tenant_id", "cart_id", "variant_id"],
        set_={"quantity": statement.excluded.quantity, "updated_at": func.now()}))


async def remove_line(connection: AsyncConnection, cart: Row[Any], line_id: uuid.UUID) -> None:
    _require_open(cart)
    removed = (await connection.execute(delete(LINE).where(LINE.c.id == line_id, LINE.c.cart_id == cart.id)
                                        .returning(LINE.c.id))).first()
    if removed is None:
        raise NotFound("no such line in this cart")
    await release_reservations(connection, cart)


async def apply_promotion_code(connection: AsyncConnection, cart: Row[Any], code: str, now: datetime) -> None:
    """Apply a promotion code to the cart (promotions/service.apply_code says when it is refused); the cart
    changed, so a started checkout ends."""
    _require_open(cart)
    await promotions.apply_code(connection, cart, code, now)
    await release_reservations(connection, cart)


async def remove_promotion_code(connection: AsyncConnection, cart: Row[Any], code: str) -> None:
    _require_open(cart)
    await promotions.remove_code(connection, cart, code)
    await release_reservations(connection, cart)


async def line_variant(connection: AsyncConnection, cart: Row[Any], line_id: uuid.UUID) -> uuid.UUID:
    variant = (await connection.execute(select(LINE.c.variant_id).where(
        LINE.c.id == line_id, LINE.c.cart_id == cart.id))).scalar()
    if variant is None:
        raise NotFound("no such line in this cart")
    return uuid.UUID(str(variant))


async def update_cart(connection: AsyncConnection, cart: Row[Any], **values: Any) -> None:
    _require_open(cart)
    await connection.execute(update(CART).where(CART.c.id == cart.id).values(updated_at=func.now(), **values))


async def validate_address(connection: AsyncConnection, cart: Row[Any], address: dict[str, Any]) -> dict[str, Any]:
    """The address must be complete and inside the cart's region: one of its countries and, where the region lists
    states for that country, one of them."""
    cleaned = {key: str(value).strip() for key, value in address.items() if value is not None}
    for required in ADDRESS_FIELDS:
        if not cleaned.get(required):
            raise BadUserInput(f"the address needs {required}", field=required)
    region = (await connection.execute(select(REGION).where(REGION.c.id == cart.region_id))).one()
    countries = list(region.country_codes or [region.country_code])
    cleaned["country_code"] = cleaned["country_code"].lower()
    if cleaned["country_code"] not in countries:
        raise BadUserInput(f"this store ships to {', '.join(c.upper() for c in countries)} only",
                           field="countryCode")
    cleaned["postal_code"] = rules.validate_postal_code(cleaned["country_code"], cleaned["postal_code"])
    country = cleaned["country_code"].upper()
    province = cleaned["province"].upper()
    code = province if province.startswith(f"{country}-") else f"{country}-{province}"
    states = {row.code for row in (await connection.execute(select(STATE.c.code).where(
        STATE.c.region_id == region.id, STATE.c.code.startswith(f"{country}-")))).all()}
    if states and code not in states:
        raise BadUserInput(f"unknown state {cleaned['province']!r}", field="province")
    cleaned["province"] = code
    return cleaned


def shipping_rate(option: Row[Any]) -> rules.ShippingRate:
    return rules.ShippingRate(option.amount, option.min_subtotal, option.free_above,
                              tuple(rules.WeightBand(band.get("up_to_grams"), int(band["amount"]))
                                    for band in option.weight_bands or ()))


def parcels_of(lines: list[tuple[Any, rules.PricedLine]]) -> list[rules.Parcel]:
    """The cart's items by vendor (in the order vendors first appear): discounted subtotal and weight."""
    parcels: dict[uuid.UUID | None, tuple[int, int]] = {}
    for row, line in lines:
        subtotal, weight = parcels.get(line.vendor_id, (0, 0))
        parcels[line.vendor_id] = (subtotal + line.total, weight + (row.weight_grams or 0) * line.quantity)
    return [rules.Parcel(vendor, subtotal, weight) for vendor, (subtotal, weight) in parcels.items()]


async def shipping_quotes(connection: AsyncConnection, region_id: uuid.UUID, parcels: list[rules.Parcel],
                          option_id: uuid.UUID | None = None) -> list[tuple[Row[Any], rules.ShippingQuote]]:
    """The store's active options of the region (or the one `option_id`) that are offered for these parcels, each
    with its quote: the vendors' own options of the same code price their items (commerce rules)."""
    statement = select(OPTION).where(OPTION.c.region_id == region_id, OPTION.c.is_active)
    options = (await connection.execute(statement.order_by(OPTION.c.amount, OPTION.c.code))).all()
    quoted = []
    for option in options:
        if option.vendor_id is not None or (option_id is not None and option.id != option_id):
            continue
        vendor_rates = {row.vendor_id: shipping_rate(row) for row in options
                        if row.vendor_id is not None and row.code == option.code}
        quote = rules.quote_shipping(parcels, shipping_rate(option), vendor_rates)
        if quote is not None:
            quoted.append((option, quote))
    return sorted(quoted, key=lambda item: (item[1].total, item[0].code))


async def tax_rate_of(connection: AsyncConnection, cart: Row[Any]) -> tuple[Decimal, bool]:
    """The cart's tax rate (its shipping state's when the region sets one, else the region's) and whether the
    region's prices include tax."""
    region = (await connection.execute(select(REGION.c.tax_rate, REGION.c.tax_inclusive)
                                       .where(REGION.c.id == cart.region_id))).one()
    province = (cart.shipping_address or {}).get("province")
    if province:
        state_rate = (await connection.execute(select(STATE.c.tax_rate).where(
            STATE.c.region_id == cart.region_id, STATE.c.code == province))).scalar()
        if state_rate is not None:
            return Decimal(state_rate), bool(region.tax_inclusive)
    return Decimal(region.tax_rate), bool(region.tax_inclusive)


async def priced_cart(connection: AsyncConnection, cart: Row[Any]) -> PricedCart:
    """The cart's lines with list and tier prices, its shipping option and its totals (integer minor units)."""
    rows = (await connection.execute(
        select(LINE.c.id.label("line_id"), LINE.c.quantity, LINE.c.created_at.label("line_created_at"),
               VARIANT.c.id.label("variant_id"), VARIANT.c.sku, VARIANT.c.title.label("variant_title"),
               VARIANT.c.inventory_quantity, VARIANT.c.weight_grams, PRODUCT.c.id.label("product_id"),
               PRODUCT.c.title.label("product_title"), PRODUCT.c.vendor_id, PRICE.c.amount)
        .join(VARIANT, and_(VARIANT.c.tenant_id == LINE.c.tenant_id, VARIANT.c.id == LINE.c.variant_id))
        .join(PRODUCT, and_(PRODUCT.c.tenant_id == VARIANT.c.tenant_id, PRODUCT.c.id == VARIANT.c.product_id))
        .outerjoin(PRICE, and_(PRICE.c.tenant_id == VARIANT.c.tenant_id, PRICE.c.variant_id == VARIANT.c.id,
                               PRICE.c.currency_code == cart.currency_code))
        .where(LINE.c.cart_id == cart.id).order_by(LINE.c.created_at, LINE.c.id))).all()
    variant_ids = [row.variant_id for row in rows]
    product_ids = [row.product_id for row in rows]
    tier_rows = (await connection.execute(select(TIER).where(
        TIER.c.currency_code == cart.currency_code,
        (TIER.c.variant_id.in_(variant_ids)) | (TIER.c.product_id.in_(product_ids))))).all()
    company_entries = await company_price_entries(connection, cart.company_id, cart.currency_code, variant_ids,
                                                  product_ids)
    lines = []
    for row in rows:
        if row.amount is None:
            raise BadUserInput(f"{row.sku} has no price in {cart.currency_code.upper()}", field="currencyCode")
        own = [tier for tier in tier_rows if tier.variant_id == row.variant_id]
        tiers = tiers_from_rows(own or [tier for tier in tier_rows if tier.product_id == row.product_id])
        company = tiers_from_rows(company_entries.get(row.variant_id, []) + company_entries.get(row.product_id, []))
        lines.append((row, rules.PricedLine(row.variant_id, row.vendor_id, row.quantity, row.amount,
                                            pricing.unit_price(row.amount, row.quantity, tiers, company))))
    option, quote = None, None
    if cart.shipping_option_id is not None:
        option = (await connection.execute(select(OPTION).where(OPTION.c.id == cart.shipping_option_id))).first()
    # Promotions (codes applied, automatic ones) on the lines as volume-priced; the shipping before them only
    # weighs free shipping against the other promotions.
    before = await _quote(connection, cart, lines) if option is not None else None
    applied = await promotions.evaluate(
        connection, cart, [promotions.CartLineFacts(row.product_id, line.vendor_id, line.quantity, line.unit_price)
                           for row, line in lines], before.total if before is not None else 0, datetime.now(UTC))
    if applied.applied:
        funded = applied.vendor_funded()
        lines = [(row, replace(line, promotion_discount=discount, promotion_vendor_funded=vendor))
                 for (row, line), discount, vendor in zip(lines, applied.line_discounts, funded, strict=True)]
        quote = await _quote(connection, cart, lines) if option is not None else None
    else:
        quote = before
    waived = 0
    if quote is not None and applied.free_shipping:
        waived = quote.total
        quote = rules.ShippingQuote(0, {vendor: 0 for vendor in quote.vendors})
    rate, inclusive = await tax_rate_of(connection, cart)
    totals = rules.cart_totals([line for _, line in lines], quote.total if quote is not None else 0, rate, inclusive)
    return PricedCart(cart, lines, totals, option, quote, applied, waived)


async def _quote(connection: AsyncConnection, cart: Row[Any],
                 lines: list[tuple[Any, rules.PricedLine]]) -> rules.ShippingQuote | None:
    quotes = await shipping_quotes(connection, cart.region_id, parcels_of(lines), cart.shipping_option_id)
    return quotes[0][1] if quotes else None


async def company_price_entries(connection: AsyncConnection, company_id: uuid.UUID | None, currency_code: str,
                                variant_ids: list[uuid.UUID], product_ids: list[uuid.UUID],
                                ) -> dict[uuid.UUID, list[Any]]:
    """The company's price-list entries in the currency that reach these variants and products, keyed by the
    variant or product they price (a category's entries are keyed by each of the given products in it)."""
    if company_id is None or not variant_ids:
        return {}
    categories = select(PRODUCT_CATEGORY.c.category_id).where(PRODUCT_CATEGORY.c.product_id.in_(product_ids))
    rows = (await connection.execute(
        select(PRICE_LIST_ENTRY).join(PRICE_LIST, and_(PRICE_LIST.c.tenant_id == PRICE_LIST_ENTRY.c.tenant_id,
                                                       PRICE_LIST.c.id == PRICE_LIST_ENTRY.c.price_list_id))
        .where(PRICE_LIST.c.company_id == company_id, PRICE_LIST.c.currency_code == currency_code,
               PRICE_LIST_ENTRY.c.variant_id.in_(variant_ids) | PRICE_LIST_ENTRY.c.product_id.in_(product_ids)
               | PRICE_LIST_ENTRY.c.category_id.in_(categories)))).all()
    members: dict[uuid.UUID, list[uuid.UUID]] = {}
    if any(row.category_id is not None for row in rows):
        for product_id, category_id in (await connection.execute(
                select(PRODUCT_CATEGORY.c.product_id, PRODUCT_CATEGORY.c.category_id)
                .where(PRODUCT_CATEGORY.c.product_id.in_(product_ids)))).all():
            members.setdefault(category_id, []).append(product_id)
    found: dict[uuid.UUID, list[Any]] = {}
    for row in rows:
        for key in [row.variant_id or row.product_id] if row.category_id is None else members.get(row.category_id, []):
            found.setdefault(key, []).append(row)
    return found


async def shipping_options_for(connection: AsyncConnection, cart: Row[Any],
                               priced: PricedCart) -> list[tuple[Row[Any], rules.ShippingQuote]]:
    return await shipping_quotes(connection, cart.region_id, parcels_of(priced.lines))


async def choose_shipping_option(connection: AsyncConnection, cart: Row[Any], option_id: uuid.UUID) -> None:
    _require_open(cart)
    priced = await priced_cart(connection, cart)
    offered = await shipping_options_for(connection, cart, priced)
    if option_id not in {option.id for option, _ in offered}:
        raise BadUserInput("this shipping option is not offered for this cart", field="shippingOptionId")
    await release_reservations(connection, cart)
    await update_cart(connection, cart, shipping_option_id=option_id)


def checkout_problems(priced: PricedCart) -> list[tuple[str, str]]:
    cart = priced.cart
    problems = []
    if not priced.lines:
        problems.append(("lines", "the cart is empty"))
    if not cart.email:
        problems.append(("email", "the cart needs an email"))
    if not cart.shipping_address:
        problems.append(("shippingAddress", "the cart needs a shipping address"))
    if priced.option is None:
        problems.append(("shippingOptionId", "the cart needs a shipping option"))
    elif priced.shipping is None:
        problems.append(("shippingOptionId", "the chosen shipping option is no longer offered for this cart"))
    if priced.lines and priced.totals.total <= 0:  # promotions took everything off: nothing to charge a card for
        problems.append(("code", "the promotions leave nothing to pay: a card cannot be charged 0"))
    return problems


async def reserve_units(connection: AsyncConnection, cart: Row[Any], units: list[tuple[uuid.UUID, int, str]],
                        minutes: int) -> None:
    """Reserve (variant, quantity, sku) units for the cart, after giving back what it held."""
    await return_reserved_units(connection, cart.id)
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    for variant_id, quantity, sku in sorted(units, key=lambda unit: str(unit[0])):  # one lock order
        taken = (await connection.execute(
            update(VARIANT).where(VARIANT.c.id == variant_id, VARIANT.c.inventory_quantity >= quantity)
            .values(inventory_quantity=VARIANT.c.inventory_quantity - quantity).returning(VARIANT.c.id))).first()
        if taken is None:
            raise OutOfStock(f"{sku} is out of stock", variantId=str(variant_id))
        await connection.execute(insert(RESERVATION).values(
            tenant_id=cart.tenant_id, id=uuid.uuid4(), cart_id=cart.id, variant_id=variant_id,
            quantity=quantity, expires_at=expires))


def checkout_snapshot(priced: PricedCart) -> dict[str, Any]:
    """What a checkout charges for, frozen: the order of a payment is built from this, never from the cart as it
    is when the payment lands (the cart may have changed in another tab)."""
    cart, totals = priced.cart, priced.totals
    return {
        "currency_code": cart.currency_code,
        "lines": [{"variant_id": str(line.variant_id), "product_id": str(row.product_id),
                   "vendor_id": str(line.vendor_id) if line.vendor_id else None, "sku": row.sku,
                   "title": f"{row.product_title} — {row.variant_title}", "quantity": line.quantity,
                   "list_unit_price": line.list_unit_price, "unit_price": line.unit_price,
                   **({"promotion_discount": line.promotion_discount,
                       "promotion_vendor_funded": line.promotion_vendor_funded} if line.promotion_discount else {})}
                  for row, line in priced.lines],
        "totals": {"subtotal": totals.subtotal, "discount_total": totals.discount_total,
                   "shipping_total": totals.shipping_total, "tax_total": totals.tax_total, "total": totals.total,
                   "tax_inclusive": totals.tax_inclusive},
        "shipping_option": ({"id": str(priced.option.id), "code": priced.option.code}
                            if priced.option is not None else None),
        "vendor_shipping": ({str(vendor): amount for vendor, amount in priced.shipping.vendors.items()}
                            if priced.shipping is not None else {}),
        "shipping_address": cart.shipping_address,
        **({"promotions": promotion_snapshot(priced)} if priced.promotions.applied else {}),
    }


def promotion_snapshot(priced: PricedCart) -> list[dict[str, Any]]:
    """The promotions a checkout charges with: each one's part of every line (in the snapshot's line order), the
    shipping it waives, and the vendor's funding percent (the order's redemptions are recorded from this)."""
    waiver = next((item.promotion_id for item in priced.promotions.applied if item.free_shipping), None)
    return [{"promotion_id": str(item.promotion_id), "code": item.code, "name": item.name,
             "vendor_share_percent": str(item.vendor_share_percent), "lines": list(item.lines),
             "shipping_amount": priced.shipping_waived if item.promotion_id == waiver else 0}
            for item in priced.promotions.applied]


def snapshot_fingerprint(snapshot: dict[str, Any]) -> str:
    """SHA-256 of the snapshot in a canonical form: the same contents → the same fingerprint."""
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def payment_idempotency_key(cart_id: uuid.UUID, fingerprint: str, sequence: int) -> str:
    """Derived from the cart, what is paid for and the cart's attempt number: the same checkout retried → the
    same PaymentIntent; the same contents after a change (A → B → A) → a new one (the first was canceled)."""
    return f"checkout-{cart_id}-{fingerprint[:16]}-{sequence}"


def order_access_token(secret: str, tenant_id: uuid.UUID, cart_id: uuid.UUID) -> str:
    """The capability a buyer gets from startCheckout to read the order the cart becomes: an HMAC of the cart
    under COOKIE_SECRET (so every startCheckout of the cart returns the same token and a page refresh keeps
    working). Only its SHA-256 is stored (`cart.access_token_hash`, `orders.access_token_hash`)."""
    digest = hmac.new(secret.encode(), f"cityos-order-access:{tenant_id}:{cart_id}".encode(), hashlib.sha256)
    return "oat_" + base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def access_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def snapshot_lines(snapshot: dict[str, Any]) -> list[rules.PricedLine]:
    return [rules.PricedLine(uuid.UUID(line["variant_id"]),
                             uuid.UUID(line["vendor_id"]) if line.get("vendor_id") else None,
                             int(line["quantity"]), int(line["list_unit_price"]), int(line["unit_price"]),
                             int(line.get("promotion_discount", 0)), int(line.get("promotion_vendor_funded", 0)))
            for line in snapshot["lines"]]


async def current_attempt(connection: AsyncConnection, cart: Row[Any]) -> Row[Any] | None:
    if not cart.payment_intent_id:
        return None
    return (await connection.execute(select(ATTEMPT).where(
        ATTEMPT.c.cart_id == cart.id, ATTEMPT.c.payment_intent_id == cart.payment_intent_id))).first()


async def attempt_count(connection: AsyncConnection, cart_id: uuid.UUID) -> int:
    return int((await connection.execute(select(func.count()).where(ATTEMPT.c.cart_id == cart_id))).scalar_one())


ORDER_ID_NAMESPACE = uuid.UUID("6f1c1b64-7c0e-4a55-9d43-2b8a3c7e9d10")


def order_id_for(cart: Row[Any]) -> uuid.UUID:
    """The id the cart's order will have, known when checkout starts (the PaymentIntent's transfer_group):
    derived from the cart, so concurrent first checkouts agree on it. Reading an order needs more than its id."""
    return uuid.UUID(str(cart.order_id)) if cart.order_id is not None else uuid.uuid5(ORDER_ID_NAMESPACE, str(cart.id))


async def record_payment_failure(connection: AsyncConnection, cart_id: uuid.UUID, error: dict[str, Any]) -> None:
    await connection.execute(update(CART).where(CART.c.id == cart_id, CART.c.status == "open").values(
        payment_error={key: error.get(key) for key in ("type", "code", "decline_code", "message")},
        updated_at=func.now()))

