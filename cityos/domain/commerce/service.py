"""Cart and checkout use cases over one tenant-scoped connection."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.catalog import rules as pricing
from cityos.domain.catalog.models import PriceTier, Product, Variant, VariantPrice
from cityos.domain.catalog.service import tiers_from_rows
from cityos.domain.commerce import rules
from cityos.domain.commerce.models import (
    Cart,
    CartLine,
    InventoryReservation,
    Region,
    RegionState,
    ShippingOption,
)
from cityos.errors import BadUserInput, NotFound, OutOfStock

CART = table_of(Cart)
LINE = table_of(CartLine)
RESERVATION = table_of(InventoryReservation)
VARIANT = table_of(Variant)
PRODUCT = table_of(Product)
PRICE = table_of(VariantPrice)
TIER = table_of(PriceTier)
OPTION = table_of(ShippingOption)
REGION = table_of(Region)
STATE = table_of(RegionState)
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_LINES = 100
ADDRESS_FIELDS = ("first_name", "last_name", "address_1", "city", "province", "postal_code", "country_code")


@dataclass(frozen=True)
class PricedCart:
    cart: Row[Any]
    lines: list[tuple[Any, rules.PricedLine]]  # (cart line joined with variant and product, its prices)
    totals: rules.Totals
    option: Row[Any] | None


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
                      currency_code: str, customer_id: str | None, email: str | None) -> Row[Any]:
    region = (await connection.execute(select(REGION).where(REGION.c.currency_code == currency_code.lower())
                                       .order_by(REGION.c.created_at).limit(1))).first()
    if region is None:
        raise BadUserInput(f"no region sells in {currency_code.upper()}", field="currencyCode")
    return (await connection.execute(insert(CART).values(
        tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, region_id=region.id,
        currency_code=region.currency_code, customer_id=customer_id,
        email=validate_email(email) if email else None).returning(*CART.c))).one()


def validate_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.match(email) or len(email) > 320:
        raise BadUserInput("not an email address", field="email")
    return email


async def release_reservations(connection: AsyncConnection, cart: Row[Any]) -> None:
    """Give a cart's reserved units back to stock (its checkout is being changed or abandoned)."""
    released = (await connection.execute(delete(RESERVATION).where(RESERVATION.c.cart_id == cart.id)
                                         .returning(RESERVATION.c.variant_id, RESERVATION.c.quantity))).all()
    for variant_id, quantity in released:
        await connection.execute(update(VARIANT).where(VARIANT.c.id == variant_id)
                                 .values(inventory_quantity=VARIANT.c.inventory_quantity + quantity))
    if released or cart.payment_intent_id:
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
    """The address must be complete and inside the cart's region (its country, one of its states)."""
    cleaned = {key: str(value).strip() for key, value in address.items() if value is not None}
    for required in ADDRESS_FIELDS:
        if not cleaned.get(required):
            raise BadUserInput(f"the address needs {required}", field=required)
    region = (await connection.execute(select(REGION).where(REGION.c.id == cart.region_id))).one()
    cleaned["country_code"] = cleaned["country_code"].lower()
    if cleaned["country_code"] != region.country_code:
        raise BadUserInput(f"this store ships to {region.country_code.upper()} only", field="countryCode")
    cleaned["postal_code"] = rules.validate_postal_code(cleaned["country_code"], cleaned["postal_code"])
    province = cleaned["province"].upper()
    code = province if province.startswith(f"{region.country_code.upper()}-") else \
        f"{region.country_code.upper()}-{province}"
    known = (await connection.execute(select(STATE.c.code).where(STATE.c.region_id == region.id,
                                                                STATE.c.code == code))).first()
    if known is None:
        raise BadUserInput(f"unknown state {cleaned['province']!r}", field="province")
    cleaned["province"] = code
    return cleaned


async def priced_cart(connection: AsyncConnection, cart: Row[Any]) -> PricedCart:
    """The cart's lines with list and tier prices, its shipping option and its totals (integer minor units)."""
    rows = (await connection.execute(
        select(LINE.c.id.label("line_id"), LINE.c.quantity, LINE.c.created_at.label("line_created_at"),
               VARIANT.c.id.label("variant_id"), VARIANT.c.sku, VARIANT.c.title.label("variant_title"),
               VARIANT.c.inventory_quantity, PRODUCT.c.id.label("product_id"), PRODUCT.c.title.label("product_title"),
               PRODUCT.c.vendor_id, PRICE.c.amount)
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
    lines = []
    for row in rows:
        if row.amount is None:
            raise BadUserInput(f"{row.sku} has no price in {cart.currency_code.upper()}", field="currencyCode")
        own = [tier for tier in tier_rows if tier.variant_id == row.variant_id]
        tiers = tiers_from_rows(own or [tier for tier in tier_rows if tier.product_id == row.product_id])
        lines.append((row, rules.PricedLine(row.variant_id, row.vendor_id, row.quantity, row.amount,
                                            pricing.unit_price(row.amount, row.quantity, tiers))))
    priced = [line for _, line in lines]
    option = None
    if cart.shipping_option_id is not None:
        option = (await connection.execute(select(OPTION).where(OPTION.c.id == cart.shipping_option_id))).first()
    subtotal = sum(line.total for line in priced)
    shipping = option.amount if option is not None and rules.shipping_offered(option.min_subtotal, subtotal) else 0
    region = (await connection.execute(select(REGION.c.tax_rate).where(REGION.c.id == cart.region_id))).one()
    return PricedCart(cart, lines, rules.cart_totals(priced, shipping, Decimal(region.tax_rate)), option)


async def shipping_options_for(connection: AsyncConnection, cart: Row[Any], subtotal: int) -> list[Row[Any]]:
    options = (await connection.execute(select(OPTION).where(OPTION.c.region_id == cart.region_id, OPTION.c.is_active)
                                        .order_by(OPTION.c.amount, OPTION.c.code))).all()
    return [option for option in options if rules.shipping_offered(option.min_subtotal, subtotal)]


async def choose_shipping_option(connection: AsyncConnection, cart: Row[Any], option_id: uuid.UUID) -> None:
    _require_open(cart)
    subtotal = (await priced_cart(connection, cart)).totals
    offered = await shipping_options_for(connection, cart, subtotal.subtotal - subtotal.discount_total)
    if option_id not in {option.id for option in offered}:
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
    elif not rules.shipping_offered(priced.option.min_subtotal,
                                    priced.totals.subtotal - priced.totals.discount_total):
        problems.append(("shippingOptionId", "the chosen shipping option is no longer offered for this cart"))
    return problems


async def reserve_inventory(connection: AsyncConnection, priced: PricedCart, minutes: int) -> None:
    """Take the cart's units off stock atomically: a conditional decrement per variant, so two checkouts for the
    last unit cannot both succeed (the second sees the first's decrement once it commits, and fails)."""
    cart = priced.cart
    await release_reservations(connection, cart)
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    for row, line in sorted(priced.lines, key=lambda pair: str(pair[1].variant_id)):  # one lock order
        taken = (await connection.execute(
            update(VARIANT).where(VARIANT.c.id == line.variant_id, VARIANT.c.inventory_quantity >= line.quantity)
            .values(inventory_quantity=VARIANT.c.inventory_quantity - line.quantity).returning(VARIANT.c.id))).first()
        if taken is None:
            raise OutOfStock(f"{row.sku} is out of stock", variantId=str(line.variant_id))
        await connection.execute(insert(RESERVATION).values(
            tenant_id=cart.tenant_id, id=uuid.uuid4(), cart_id=cart.id, variant_id=line.variant_id,
            quantity=line.quantity, expires_at=expires))


def payment_idempotency_key(priced: PricedCart) -> str:
    """Derived from the cart and what is being paid for: the same checkout → the same PaymentIntent."""
    fingerprint = "|".join([str(priced.cart.id), priced.cart.currency_code, str(priced.totals.total),
                            *(f"{line.variant_id}:{line.quantity}:{line.unit_price}" for _, line in priced.lines)])
    return f"checkout-{priced.cart.id}-{hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}"


async def ensure_order_id(connection: AsyncConnection, cart: Row[Any]) -> uuid.UUID:
    if cart.order_id is not None:
        return uuid.UUID(str(cart.order_id))
    order_id = uuid.uuid4()
    await connection.execute(update(CART).where(CART.c.id == cart.id).values(order_id=order_id))
    return order_id


async def record_payment_failure(connection: AsyncConnection, cart_id: uuid.UUID, error: dict[str, Any]) -> None:
    await connection.execute(update(CART).where(CART.c.id == cart_id, CART.c.status == "open").values(
        payment_error={key: error.get(key) for key in ("type", "code", "decline_code", "message")},
        updated_at=func.now()))

